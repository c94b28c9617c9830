"""The six LLM task types: their input limits, the requests written for remote models, and the
validation of what a provider answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from creativeflow.providers.errors import MalformedResponse
from creativeflow.providers.tasks import (
    TASKS,
    DialogueInput,
    PanelDescriptionInput,
    SceneSummaryInput,
    ShotType,
    TaskType,
    parse_output,
    task_catalog,
    validate_input,
)

SCENE = (
    "Rain hammered the tin roofs as Mira slipped through the crowd. She clutched the stolen "
    'ledger under her coat. "Mira, wait!" Jun shouted from the pier.'
)

VALID_INPUTS: dict[TaskType, dict[str, Any]] = {
    TaskType.SCENE_SUMMARY: {"scene_text": SCENE},
    TaskType.CHARACTER_PROFILE: {"name": "Mira", "description": "A stubborn courier."},
    TaskType.PANEL_DESCRIPTION: {"scene_text": SCENE, "panel_count": 3},
    TaskType.DIALOGUE: {"situation": "They argue about the ledger.", "characters": ["Mira"]},
    TaskType.CHAPTER_OUTLINE: {"premise": "A courier steals a ledger."},
    TaskType.VISUAL_PROMPT: {"description": "A girl on a pier in the rain."},
}

VALID_OUTPUT = {
    "panels": [
        {
            "index": 1,
            "shot": "establishing",
            "description": "The harbour in the rain.",
            "characters": ["Mira"],
            "dialogue_hint": None,
            "camera": "high angle, wide lens",
        }
    ]
}


def test_the_six_task_types_of_the_spec() -> None:
    assert {task.value for task in TaskType} == {
        "scene_summary",
        "character_profile",
        "panel_description",
        "dialogue",
        "chapter_outline",
        "visual_prompt",
    }
    assert set(TASKS) == set(TaskType)
    assert all(TASKS[task].type is task for task in TaskType)


@pytest.mark.parametrize("task", list(TaskType))
def test_inputs_refuse_unknown_fields(task: TaskType) -> None:
    validate_input(task, VALID_INPUTS[task])
    with pytest.raises(ValidationError) as caught:
        validate_input(task, {**VALID_INPUTS[task], "temperatur": 0.5})
    assert caught.value.errors()[0]["loc"] == ("temperatur",)


@pytest.mark.parametrize(
    ("task", "change", "field"),
    [
        (TaskType.SCENE_SUMMARY, {"scene_text": "x" * 20_001}, "scene_text"),
        (TaskType.SCENE_SUMMARY, {"scene_text": "   "}, "scene_text"),
        (TaskType.SCENE_SUMMARY, {"max_sentences": 11}, "max_sentences"),
        (TaskType.SCENE_SUMMARY, {"characters": ["A"] * 21}, "characters"),
        (TaskType.PANEL_DESCRIPTION, {"panel_count": 13}, "panel_count"),
        (TaskType.PANEL_DESCRIPTION, {"panel_count": 0}, "panel_count"),
        (TaskType.DIALOGUE, {"characters": []}, "characters"),
        (TaskType.DIALOGUE, {"characters": [f"C{i}" for i in range(7)]}, "characters"),
        (TaskType.DIALOGUE, {"options": 6}, "options"),
        (TaskType.DIALOGUE, {"tone": "sarcastic-ish"}, "tone"),
        (TaskType.CHAPTER_OUTLINE, {"scene_count": 21}, "scene_count"),
        (TaskType.CHARACTER_PROFILE, {"name": "N" * 81}, "name"),
        (TaskType.VISUAL_PROMPT, {"palette": ["#12345g"]}, "palette"),
        (TaskType.VISUAL_PROMPT, {"aspect": "5:4"}, "aspect"),
    ],
)
def test_inputs_have_real_limits(task: TaskType, change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_input(task, {**VALID_INPUTS[task], **change})
    assert caught.value.errors()[0]["loc"][0] == field


def test_inputs_are_trimmed_and_defaulted() -> None:
    data = SceneSummaryInput.model_validate({"scene_text": f"  {SCENE}\n"})
    assert data.scene_text == SCENE
    assert data.max_sentences == 3
    assert data.characters == []


def test_build_request_writes_a_prompt_for_a_remote_model() -> None:
    spec = TASKS[TaskType.PANEL_DESCRIPTION]
    data = PanelDescriptionInput(scene_text=SCENE, panel_count=5, style="noir ink")
    request = spec.build_request(data, seed=42, timeout=7.5)

    assert request.task == "panel_description"
    assert request.inputs == data.model_dump(mode="json")
    assert request.output_schema == spec.output_model.model_json_schema()
    assert request.seed == 42
    assert request.timeout == 7.5
    assert request.temperature == spec.temperature
    assert request.max_tokens == spec.max_tokens
    assert "storyboard artist" in request.system
    assert "exactly 5 panels" in request.prompt
    assert SCENE in request.prompt
    assert "- Style: noir ink" in request.prompt
    # The schema the answer must match is in the prompt, as JSON.
    schema_text = request.prompt.split("JSON Schema:\n", 1)[1]
    assert json.loads(schema_text) == request.output_schema


def test_prompt_leaves_out_unset_inputs_and_lists_names() -> None:
    request = TASKS[TaskType.DIALOGUE].build_request(
        DialogueInput(situation="They argue.", characters=["Mira", "Jun"]), seed=None, timeout=5
    )
    facts = request.prompt.split("JSON Schema:", 1)[0]
    assert "- Characters: Mira, Jun" in facts
    assert "- Tone" not in facts
    assert "Write 3 alternative exchanges" in request.prompt


def test_temperature_suits_the_task_and_can_be_overridden() -> None:
    summary = TASKS[TaskType.SCENE_SUMMARY]
    dialogue = TASKS[TaskType.DIALOGUE]
    assert summary.temperature <= 0.3 < 0.8 <= dialogue.temperature
    data = SceneSummaryInput(scene_text=SCENE)
    assert summary.build_request(data, seed=1, temperature=0.0, timeout=5).temperature == 0.0


def test_build_request_refuses_another_tasks_input() -> None:
    with pytest.raises(TypeError):
        TASKS[TaskType.DIALOGUE].build_request(
            SceneSummaryInput(scene_text=SCENE), seed=None, timeout=5
        )


def test_parse_output_accepts_objects_json_and_fenced_json() -> None:
    task = TaskType.PANEL_DESCRIPTION
    text = json.dumps(VALID_OUTPUT)
    for answer in (
        VALID_OUTPUT,
        text,
        f"```json\n{text}\n```",
        f"Here are the panels:\n```\n{text}\n```\nEnjoy!",
    ):
        parsed = parse_output(task, answer, "openai")
        assert parsed.model_dump(mode="json") == VALID_OUTPUT


def test_parse_output_normalises_shots_and_drops_stray_keys() -> None:
    panel = {**VALID_OUTPUT["panels"][0], "shot": "Close-up shot", "mood": "grim"}
    parsed = parse_output(TaskType.PANEL_DESCRIPTION, {"panels": [panel], "notes": "x"}, "x")
    dumped = parsed.model_dump()
    assert dumped["panels"][0]["shot"] is ShotType.CLOSE_UP
    assert "mood" not in dumped["panels"][0]
    assert "notes" not in dumped


def test_parse_output_bad_json_is_malformed() -> None:
    with pytest.raises(MalformedResponse) as caught:
        parse_output(TaskType.SCENE_SUMMARY, '{"summary": "cut off', "ollama")
    assert caught.value.provider == "ollama"
    assert "invalid JSON" in caught.value.message
    with pytest.raises(MalformedResponse, match="not an object"):
        parse_output(TaskType.SCENE_SUMMARY, "[1, 2]", "ollama")


def test_parse_output_names_the_first_invalid_field() -> None:
    wrong = {"panels": [{**VALID_OUTPUT["panels"][0], "shot": "sideways"}]}
    with pytest.raises(MalformedResponse) as caught:
        parse_output(TaskType.PANEL_DESCRIPTION, wrong, "openai")
    assert "'panels.0.shot'" in caught.value.message
    assert caught.value.code == "PROVIDER_MALFORMED_RESPONSE"

    missing = {"summary": "S", "key_points": [], "characters": [], "keywords": []}
    with pytest.raises(MalformedResponse, match="'mood'"):
        parse_output(TaskType.SCENE_SUMMARY, json.dumps(missing), "openai")


def test_catalog_lists_every_task_with_its_schemas() -> None:
    catalog = {entry["name"]: entry for entry in task_catalog()}
    assert set(catalog) == {task.value for task in TaskType}
    summary = catalog["scene_summary"]
    assert summary["title"] and summary["description"]
    assert summary["input_schema"]["required"] == ["scene_text"]
    assert summary["input_schema"]["additionalProperties"] is False
    assert summary["input_schema"]["properties"]["max_sentences"]["maximum"] == 10
    assert set(summary["output_schema"]["properties"]) == {
        "summary",
        "key_points",
        "characters",
        "keywords",
        "mood",
    }
    panels = catalog["panel_description"]["output_schema"]
    assert panels["$defs"]["Panel"]["additionalProperties"] is False
    assert "description" in catalog["dialogue"]["input_schema"]["properties"]["options"]
    json.dumps(catalog)  # plain JSON, ready for the route
