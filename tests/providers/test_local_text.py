"""The offline text provider: every task answered from its inputs, deterministically per seed,
and JSON Schemas of later analyses filled from the inputs' text."""

from __future__ import annotations

import itertools
import json
import re
from datetime import date
from enum import StrEnum
from typing import Any, Literal

import pytest
from pydantic import BaseModel, EmailStr, Field

from creativeflow.providers.base import TextProvider, TextRequest, TextResult
from creativeflow.providers.errors import ProviderRejected, ProviderTimeout
from creativeflow.providers.local_text import LocalTextProvider
from creativeflow.providers.nlp import count_tokens, split_sentences
from creativeflow.providers.tasks import TASKS, TaskType, material_of, parse_output

STORY = """Rain hammered the tin roofs of the Harbor District as Mira Vale slipped through the \
crowd. She clutched the stolen ledger under her coat, its pages heavy with the names of every \
smuggler in the port.

Behind her, Jun pushed past a fish seller. "Mira, wait!" he shouted. She did not slow down. The \
ledger was the only proof that Captain Okafor had sold the lighthouse to the smugglers.

At the end of the pier, Mira stopped. Okafor stood beneath the broken lighthouse, a lantern in \
one hand and a knife in the other. "Give me the ledger, girl," he said. Jun caught up, \
breathless, and stepped between them.

Mira opened the ledger and held it over the black water. "One more step and the names go to \
the sea," she said. Okafor laughed, but his eyes followed the pages. Jun reached for Mira's \
hand, and for a moment the rain was the only sound on the pier."""

PROFILE = (
    "Mira Vale is a stubborn, curious courier in the port city of Saltmere. She has cropped "
    "black hair and wears a salt-stained green coat. Her brother Jun follows her everywhere. "
    "She wants to expose the smugglers who drowned her father."
)
SITUATION = (
    "Mira and Jun argue on the pier about whether to hand the stolen ledger to Captain Okafor "
    "or drop it into the sea before the smugglers arrive."
)
KOREAN = (
    "민수는 비 오는 밤에 항구로 달려갔다. 그는 도둑맞은 장부를 품에 안고 있었다. 지우가 민수를 "
    "불렀지만 민수는 멈추지 않았다. 장부에는 밀수꾼들의 이름이 적혀 있었다. 등대 아래에서 선장이 "
    "장부를 기다리고 있었다."
)

INPUTS: dict[TaskType, dict[str, Any]] = {
    TaskType.SCENE_SUMMARY: {"scene_text": STORY, "max_sentences": 3},
    TaskType.CHARACTER_PROFILE: {
        "name": "Mira Vale",
        "description": PROFILE,
        "role": "protagonist",
        "traits": ["reckless"],
        "story_context": STORY,
    },
    TaskType.PANEL_DESCRIPTION: {"scene_text": STORY, "panel_count": 6, "style": "noir ink"},
    TaskType.DIALOGUE: {"situation": SITUATION, "characters": ["Mira", "Jun"], "options": 3},
    TaskType.CHAPTER_OUTLINE: {
        "premise": "A courier steals a ledger proving the harbour captain sold the lighthouse.",
        "synopsis": STORY,
        "characters": ["Mira Vale", "Jun", "Okafor"],
        "previous_chapters": [
            "Mira carried a sealed package to the lighthouse. She found a ledger."
        ],
        "scene_count": 5,
    },
    TaskType.VISUAL_PROMPT: {
        "description": "Mira stands at the end of a rain-soaked pier, holding a stolen ledger "
        "over black water while a captain with a lantern watches from the broken lighthouse.",
        "style": "noir ink",
        "palette": ["#0B1D2A", "#e0a030"],
        "aspect": "16:9",
        "avoid": ["sunshine"],
    },
}


@pytest.fixture
async def provider() -> LocalTextProvider:
    return LocalTextProvider()


async def run(
    provider: LocalTextProvider, task: TaskType, inputs: dict[str, Any], seed: int | None = 7
) -> tuple[dict[str, Any], TextResult]:
    spec = TASKS[task]
    request = spec.build_request(spec.input_model.model_validate(inputs), seed=seed, timeout=10)
    result = await provider.complete(request)
    assert isinstance(result.output, dict)
    return parse_output(task, result.output, result.provider).model_dump(mode="json"), result


def story_words(text: str = STORY) -> set[str]:
    return {word.lower() for word in re.findall(r"[\w'-]+", text)}


@pytest.mark.parametrize("task", list(TaskType))
async def test_every_task_gives_a_valid_answer(provider: LocalTextProvider, task: TaskType) -> None:
    spec = TASKS[task]
    request = spec.build_request(spec.input_model.model_validate(INPUTS[task]), seed=7, timeout=10)
    result = await provider.complete(request)
    output = parse_output(task, result.output, result.provider).model_dump(mode="json")
    assert output == result.output  # already exactly the output model
    assert isinstance(provider, TextProvider)
    assert (result.provider, result.model) == ("local", "local-nlp-1")
    assert result.seed == 7
    assert result.metadata["local"] is True
    assert result.metadata["method"]
    assert result.duration_ms >= 0
    answer = json.dumps(result.output, ensure_ascii=False)
    assert result.usage.output_tokens == count_tokens(answer)
    assert result.usage.input_tokens >= count_tokens(request.prompt)


async def test_scene_summary_is_extracted_from_the_scene(provider: LocalTextProvider) -> None:
    output, _ = await run(provider, TaskType.SCENE_SUMMARY, INPUTS[TaskType.SCENE_SUMMARY])
    sentences = split_sentences(STORY)
    picked = split_sentences(output["summary"])
    assert 1 <= len(picked) <= 3
    assert all(sentence in sentences for sentence in picked)
    assert [sentences.index(s) for s in picked] == sorted(sentences.index(s) for s in picked)
    assert all(point.lower() in STORY.lower() for point in output["key_points"])
    # Mira is named most often, then Jun and Okafor; "Rain" or "Harbor District" are not people.
    assert output["characters"] == ["Mira Vale", "Jun", "Okafor"]
    assert output["keywords"] and set(map(str.lower, output["keywords"])) <= story_words()
    assert "ledger" in output["keywords"]
    assert output["mood"] != "neutral"


async def test_summary_length_follows_max_sentences(provider: LocalTextProvider) -> None:
    short, _ = await run(
        provider, TaskType.SCENE_SUMMARY, {"scene_text": STORY, "max_sentences": 1}
    )
    long, _ = await run(provider, TaskType.SCENE_SUMMARY, {"scene_text": STORY, "max_sentences": 6})
    assert len(split_sentences(short["summary"])) == 1
    assert len(split_sentences(long["summary"])) == 6


async def test_known_characters_are_spelled_as_given(provider: LocalTextProvider) -> None:
    inputs = {"scene_text": STORY, "characters": ["Okafor", "Jun", "Nobody Here"]}
    output, _ = await run(provider, TaskType.SCENE_SUMMARY, inputs)
    assert "Nobody Here" not in output["characters"]
    assert {"Okafor", "Jun", "Mira Vale"} <= set(output["characters"])


@pytest.mark.parametrize("count", [1, 4, 6, 12])
async def test_panels_follow_the_scene(provider: LocalTextProvider, count: int) -> None:
    inputs = {"scene_text": STORY, "panel_count": count, "characters": ["Mira", "Jun", "Okafor"]}
    output, _ = await run(provider, TaskType.PANEL_DESCRIPTION, inputs)
    panels = output["panels"]
    assert [panel["index"] for panel in panels] == list(range(1, count + 1))
    assert panels[0]["shot"] == "establishing"
    assert panels[0]["description"].startswith("Harbor District.")
    for panel in panels:
        assert set(panel["characters"]) <= {"Mira", "Jun", "Okafor"}
        if panel["dialogue_hint"]:
            assert panel["dialogue_hint"] in STORY
        assert panel["camera"]
    described = " ".join(panel["description"] for panel in panels)
    assert "Okafor laughed" in described  # every beat of the scene is drawn somewhere
    if count == 6:
        assert any(panel["dialogue_hint"] == "Mira, wait!" for panel in panels)


async def test_more_panels_than_sentences_cut_clauses_then_react(
    provider: LocalTextProvider,
) -> None:
    scene = "Jun ran down the pier, shouting her name, waving the lantern."
    output, _ = await run(
        provider, TaskType.PANEL_DESCRIPTION, {"scene_text": scene, "panel_count": 5}
    )
    descriptions = [panel["description"] for panel in output["panels"]]
    assert descriptions[:3] == [
        "Jun ran down the pier.",
        "Shouting her name.",
        "Waving the lantern.",
    ]
    assert descriptions[3].startswith("Reaction:")
    assert output["panels"][4]["shot"] == "close_up"


async def test_dialogue_uses_the_characters_and_the_situation(provider: LocalTextProvider) -> None:
    output, _ = await run(provider, TaskType.DIALOGUE, INPUTS[TaskType.DIALOGUE])
    options = output["options"]
    assert len(options) == 3
    assert len({option["tone"] for option in options}) == 3  # no tone given: contrasting tones
    for option in options:
        assert len(option["lines"]) == 4
        speakers = [line["character"] for line in option["lines"]]
        assert set(speakers) == {"Mira", "Jun"}
        assert all(a != b for a, b in itertools.pairwise(speakers))
    text = " ".join(line["text"] for option in options for line in option["lines"]).lower()
    assert "the stolen ledger" in text


async def test_dialogue_keeps_the_tone_asked_for(provider: LocalTextProvider) -> None:
    inputs = {**INPUTS[TaskType.DIALOGUE], "tone": "tense", "options": 2, "lines_per_option": 7}
    output, _ = await run(provider, TaskType.DIALOGUE, inputs)
    assert [option["tone"] for option in output["options"]] == ["tense", "tense"]
    assert all(len(option["lines"]) == 7 for option in output["options"])


async def test_character_profile_reads_the_description(provider: LocalTextProvider) -> None:
    output, _ = await run(provider, TaskType.CHARACTER_PROFILE, INPUTS[TaskType.CHARACTER_PROFILE])
    assert output["name"] == "Mira Vale"
    assert output["summary"].startswith("Mira Vale is the story's protagonist.")
    assert output["personality"][:3] == ["reckless", "stubborn", "curious"]
    assert "cropped black hair" in output["appearance"]
    assert output["motivations"][0] == "Wants to expose the smugglers who drowned her father"
    relations = {r["character"]: r["relationship"] for r in output["relationships"]}
    assert relations["Jun"] == "brother"
    assert "Okafor" in relations
    assert "Saltmere" not in relations  # "the port city of Saltmere" is a place
    assert 'Sample line: "Mira, wait!"' in output["voice"]


async def test_chapter_outline_spreads_the_synopsis(provider: LocalTextProvider) -> None:
    output, _ = await run(provider, TaskType.CHAPTER_OUTLINE, INPUTS[TaskType.CHAPTER_OUTLINE])
    scenes = output["scenes"]
    assert [scene["index"] for scene in scenes] == [1, 2, 3, 4, 5]
    assert scenes[0]["summary"].startswith("Picking up from the last chapter (She found a ledger)")
    assert scenes[0]["title"].startswith("Opening: ") and scenes[-1]["title"].startswith("Turn: ")
    sentences = split_sentences(STORY)
    for scene in scenes:
        assert set(scene["characters"]) <= {"Mira Vale", "Jun", "Okafor"}
        assert any(sentence in scene["summary"] for sentence in sentences)
    assert output["logline"] in sentences
    assert "ledger" in output["title"].lower()


async def test_chapter_outline_plans_scenes_the_premise_does_not_cover(
    provider: LocalTextProvider,
) -> None:
    inputs = {
        "premise": "Mira steals the harbour ledger.",
        "characters": ["Mira"],
        "scene_count": 8,
    }
    output, _ = await run(provider, TaskType.CHAPTER_OUTLINE, inputs)
    assert len(output["scenes"]) == 8
    assert output["scenes"][0]["summary"] == "Mira steals the harbour ledger."
    assert all(scene["characters"] == ["Mira"] for scene in output["scenes"])
    assert len({scene["summary"] for scene in output["scenes"]}) > 4


async def test_visual_prompt_composes_description_style_and_palette(
    provider: LocalTextProvider,
) -> None:
    output, _ = await run(provider, TaskType.VISUAL_PROMPT, INPUTS[TaskType.VISUAL_PROMPT])
    parts = output["prompt"].split(", ")
    assert parts[0].startswith("Mira stands at the end of a rain-soaked pier")
    assert "noir ink style" in parts
    assert "colour palette of navy and gold" in parts
    assert output["palette"] == ["#0b1d2a", "#e0a030"]
    assert output["aspect_ratio"] == "16:9"
    assert output["style"] == "noir ink"
    assert output["negative_prompt"].endswith("sunshine")
    assert "blurry" in output["negative_prompt"]


async def test_same_seed_same_answer(provider: LocalTextProvider) -> None:
    for task, inputs in INPUTS.items():
        first, _ = await run(provider, task, inputs, seed=123)
        again, _ = await run(provider, task, inputs, seed=123)
        assert first == again, task


@pytest.mark.parametrize(
    "task", [TaskType.DIALOGUE, TaskType.PANEL_DESCRIPTION, TaskType.VISUAL_PROMPT]
)
async def test_other_seeds_make_other_choices(provider: LocalTextProvider, task: TaskType) -> None:
    answers = {json.dumps((await run(provider, task, INPUTS[task], seed=s))[0]) for s in range(6)}
    assert len(answers) > 1


async def test_unseeded_requests_get_a_seed_from_their_content(provider: LocalTextProvider) -> None:
    first, result = await run(provider, TaskType.DIALOGUE, INPUTS[TaskType.DIALOGUE], seed=None)
    again, repeat = await run(provider, TaskType.DIALOGUE, INPUTS[TaskType.DIALOGUE], seed=None)
    assert isinstance(result.seed, int)
    assert repeat.seed == result.seed and again == first
    other = {**INPUTS[TaskType.DIALOGUE], "options": 2}
    _, changed = await run(provider, TaskType.DIALOGUE, other, seed=None)
    assert changed.seed != result.seed
    seeded, _ = await run(provider, TaskType.DIALOGUE, INPUTS[TaskType.DIALOGUE], seed=result.seed)
    assert seeded == first  # the reported seed reproduces the answer


async def test_korean_text_gives_keywords_and_panels(provider: LocalTextProvider) -> None:
    inputs = {"scene_text": KOREAN, "characters": ["민수", "지우"], "max_sentences": 2}
    output, _ = await run(provider, TaskType.SCENE_SUMMARY, inputs)
    assert output["keywords"]
    assert all(keyword in KOREAN for keyword in output["keywords"])
    assert "장부" in output["keywords"]  # 장부를, 장부에는: one word without its particles
    assert output["characters"] == ["민수", "지우"]
    assert all(sentence in KOREAN for sentence in split_sentences(output["summary"]))
    panels, _ = await run(
        provider, TaskType.PANEL_DESCRIPTION, {"scene_text": KOREAN, "panel_count": 3}
    )
    assert len(panels["panels"]) == 3
    prompt, _ = await run(provider, TaskType.VISUAL_PROMPT, {"description": KOREAN})
    assert prompt["prompt"].startswith("민수는 비 오는 밤에 항구로 달려갔다")


async def test_invalid_task_inputs_are_rejected(provider: LocalTextProvider) -> None:
    request = TextRequest(task="panel_description", prompt="", inputs={"panel_count": 3})
    with pytest.raises(ProviderRejected, match="'scene_text'") as caught:
        await provider.complete(request)
    assert caught.value.provider == "local"


async def test_a_deadline_in_the_past_times_out(provider: LocalTextProvider) -> None:
    request = TextRequest(task="summary", prompt=STORY, timeout=0)
    with pytest.raises(ProviderTimeout):
        await provider.complete(request)


async def test_free_text_without_a_schema_is_an_extractive_summary(
    provider: LocalTextProvider,
) -> None:
    result = await provider.complete(TextRequest(task="notes", prompt=STORY, seed=1))
    assert isinstance(result.output, str)
    assert result.metadata["method"] == "extractive-summary"
    sentences = split_sentences(STORY)
    assert all(sentence in sentences for sentence in split_sentences(result.output))
    assert 1 <= len(split_sentences(result.output)) <= 5


def test_sentences_survive_abbreviations_and_quoted_speech() -> None:
    text = 'Dr. Okafor waved. "Run!" she said. Mr. Vale left at 9 p.m. and J. R. followed.\n\nEnd'
    assert split_sentences(text) == [
        "Dr. Okafor waved.",
        '"Run!" she said.',
        "Mr. Vale left at 9 p.m. and J. R. followed.",
        "End",
    ]


# -- schema filling ----------------------------------------------------------------------------

BRAND = {
    "brand_name": "Hanul Ceramics",
    "industry": "Handmade ceramic tableware",
    "target_audience": "Urban couples in their thirties who cook at home and shop on Instagram",
    "challenges": "Hanul Ceramics sells celadon bowls but its online store gets little traffic. "
    "Competitors sell cheaper mass-produced tableware. The brand has no YouTube channel, few "
    "reviews and little social media reach. Customers love the glaze and the story of the kiln "
    "in Icheon.",
}


class Opportunity(BaseModel):
    title: str
    description: str
    estimated_tam: float
    confidence: float = Field(ge=0, le=1)


class ProductIdea(BaseModel):
    name: str
    description: str
    target_segment: str
    unique_value_prop: str


class Influencer(BaseModel):
    platform: Literal["instagram", "youtube", "tiktok", "blog"]
    niche: str
    follower_range: str


class BrandAnalysis(BaseModel):
    """artnex.md "AI Integration Guide": the brand analysis asked of GPT."""

    opportunities: list[Opportunity] = Field(min_length=3, max_length=3)
    product_ideas: list[ProductIdea] = Field(min_length=5, max_length=5)
    keywords: list[str] = Field(min_length=10, max_length=10)
    influencers: list[Influencer] = Field(min_length=5, max_length=5)
    positioning_strategy: str


async def fill(provider: LocalTextProvider, schema: dict[str, Any], seed: int = 3) -> Any:
    request = TextRequest(
        task="analysis", prompt="Analyse.", inputs=BRAND, output_schema=schema, seed=seed
    )
    result = await provider.complete(request)
    assert result.metadata["method"] == "schema-fill+key-phrases"
    return result.output


def check_with_jsonschema(instance: Any, schema: dict[str, Any]) -> None:
    """A second, independent validator where the environment has one."""
    try:
        import jsonschema
    except ImportError:
        return
    jsonschema.Draft202012Validator(schema).validate(instance)


async def test_artnex_brand_analysis_is_filled_from_the_inputs(
    provider: LocalTextProvider,
) -> None:
    schema = BrandAnalysis.model_json_schema()
    output = await fill(provider, schema)
    analysis = BrandAnalysis.model_validate(output)
    check_with_jsonschema(output, schema)
    text = " ".join(BRAND.values()).lower()
    assert all(keyword.lower() in text for keyword in analysis.keywords)
    assert len(set(analysis.keywords)) == 10
    assert len({o.title for o in analysis.opportunities}) == 3
    assert all(o.description.lower() in text for o in analysis.opportunities)
    # Platforms the inputs mention come first, then the others: the list is not one value.
    assert [i.platform for i in analysis.influencers[:2]] == ["instagram", "youtube"]
    assert analysis.positioning_strategy.lower() in text
    assert await fill(provider, schema) == output


class Channel(StrEnum):
    EMAIL = "email"
    SOCIAL = "social"
    PRINT = "print"


class Node(BaseModel):
    label: str
    children: list[Node] = Field(default_factory=list)


class Metric(BaseModel):
    name: str = Field(min_length=3, max_length=12)
    value: int = Field(gt=0, lt=10, multiple_of=3)
    share: float = Field(ge=0.5, le=0.75)
    trend: Literal["up"] = "up"


class Plan(BaseModel):
    channel: Channel
    backup_channel: Channel | None = None
    contact: EmailStr
    launch: date
    summary: str = Field(min_length=200)
    metrics: list[Metric] = Field(min_length=2, max_length=4)
    tags: set[str] = Field(max_length=5)
    pair: tuple[str, int]
    enabled: bool
    budget: int | None = Field(default=None, ge=1000, le=5000)
    tree: Node
    scores: dict[str, float]


async def test_nested_schema_with_defs_enums_and_bounds(provider: LocalTextProvider) -> None:
    schema = Plan.model_json_schema()
    assert "$defs" in schema and "anyOf" in json.dumps(schema)
    output = await fill(provider, schema)
    plan = Plan.model_validate(output)
    check_with_jsonschema(output, schema)
    assert output["channel"] == "social"  # the one channel the inputs mention
    assert all(metric.value in (3, 6, 9) for metric in plan.metrics)
    assert all(0.5 <= metric.share <= 0.75 for metric in plan.metrics)
    assert plan.budget is not None and 1000 <= plan.budget <= 5000
    assert len(plan.summary) >= 200
    assert isinstance(output["pair"][0], str) and isinstance(output["pair"][1], int)
    assert output["contact"].endswith("@example.com")
    assert plan.scores and all(isinstance(v, float) for v in plan.scores.values())


async def test_recursive_and_hand_written_schemas_stay_valid(provider: LocalTextProvider) -> None:
    schema = {
        "type": "object",
        "required": ["id", "kind", "items", "ratio", "note"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "kind": {"const": "report"},
            "items": {
                "type": "array",
                "minItems": 4,
                "maxItems": 4,
                "uniqueItems": True,
                "items": {"type": "string", "enum": ["a", "b"]},
            },
            "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "note": {"type": ["string", "null"], "maxLength": 10},
            "site": {"type": "string", "format": "uri"},
            "node": {"$ref": "#/$defs/node"},
        },
        "$defs": {
            "node": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "next": {"$ref": "#/$defs/node"}},
            }
        },
    }
    output = await fill(provider, schema)
    assert output["kind"] == "report"
    assert 0 < output["ratio"] < 1
    assert len(output["note"]) <= 10
    assert output["site"].startswith("https://example.com/")
    depth, node = 0, output["node"]
    while "next" in node:
        depth, node = depth + 1, node["next"]
    assert 0 < depth < 20  # recursion stops
    # Two enum values cannot make four unique items; everything else validates.
    schema["properties"]["items"]["uniqueItems"] = False
    check_with_jsonschema(output, schema)


def test_material_of_leaves_the_directions_out() -> None:
    assert material_of("Mira runs.\n\nInstructions:\n- Keep it short") == "Mira runs."
    assert material_of("Instructions:\n- Keep it short") == ""
    assert material_of("Mira reads the Instructions: page one.") == (
        "Mira reads the Instructions: page one."
    )


async def test_directions_are_not_taken_for_story(provider: LocalTextProvider) -> None:
    """The local provider cannot follow an "Instructions:" block (what a task run about a
    story's thing adds); it must not make scenes or topics of it either."""
    directed = {
        "premise": "Mira steals the harbour ledger.",
        "synopsis": "Instructions:\n- Keep the sea always in view",
        "characters": ["Mira"],
        "scene_count": 3,
    }
    output, _ = await run(provider, TaskType.CHAPTER_OUTLINE, directed)
    plain, _ = await run(provider, TaskType.CHAPTER_OUTLINE, {**directed, "synopsis": None})
    assert output == plain
    assert "Instructions" not in json.dumps(output)

    situation = f"{SITUATION}\n\nInstructions:\n- Whisper about the velvet armchair"
    spoken, _ = await run(
        provider, TaskType.DIALOGUE, {**INPUTS[TaskType.DIALOGUE], "situation": situation}
    )
    assert "armchair" not in json.dumps(spoken)
