"""The six text tasks run about a story's things (`POST /tasks/execute` with a `context`): the
input gathered from the project, chapter, scene, panel or character, the client's fields
winning, the job belonging to the project, access, and the bounds of what is gathered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import event

from creativeflow.platform import Platform
from creativeflow.providers.tasks import (
    CONTEXT_MAX_LENGTH,
    DESCRIPTION_MAX_LENGTH,
    SCENE_TEXT_MAX_LENGTH,
    TASKS,
    TaskType,
)
from tests.factories import TestUser as SignedInUser
from tests.factories import UserFactory
from tests.stories.helpers import chapter, panel, post, project, scene

EXECUTE = "/api/v1/tasks/execute"


@dataclass
class Story:
    owner: SignedInUser
    project: dict[str, Any]
    first: dict[str, Any]
    second: dict[str, Any]
    scene: dict[str, Any]
    climb: dict[str, Any]
    lamp: dict[str, Any]
    mara: dict[str, Any]
    jonah: dict[str, Any]


async def build_story(owner: SignedInUser) -> Story:
    book = await post(
        owner,
        "/api/v1/projects",
        {
            "title": "The Lighthouse",
            "logline": "A keeper's daughter finds the lamp dark.",
            "synopsis": "When the lamp fails on the night of the storm, Mara must relight it.",
            "genres": ["mystery"],
        },
    )
    pid = book["id"]
    put = await owner.put(
        f"/api/v1/projects/{pid}/style-guide",
        json={
            "art_style": "ink and watercolour",
            "palette": ["#1b4965", "#f4d35e"],
            "aspect_ratio": "2:3",
            "negative_prompt": "blurry, extra fingers, text",
        },
    )
    assert put.status_code == 200, put.text
    mara = await post(
        owner,
        f"/api/v1/projects/{pid}/characters",
        {
            "name": "Mara",
            "role": "protagonist",
            "description": "The keeper's daughter, sixteen.",
            "appearance": ["red scarf", "freckles"],
            "personality": "stubborn, curious; afraid of heights",
        },
    )
    jonah = await post(
        owner,
        f"/api/v1/projects/{pid}/characters",
        {"name": "Jonah", "role": "supporting", "appearance": ["oilskin coat"]},
    )
    tower = await post(
        owner,
        f"/api/v1/projects/{pid}/locations",
        {"name": "Lamp room", "setting": "interior", "description": "glass and brass"},
    )
    first = await chapter(
        owner, pid, "The Storm", summary="Mara's father rows out and does not come back."
    )
    second = await chapter(owner, pid, "The Dark Lamp", summary="Mara climbs to the lamp.")
    stairs = await scene(
        owner,
        second["id"],
        "The stairs",
        summary="Mara climbs the tower and finds Jonah asleep.",
        mood="tense",
    )
    climb = await panel(
        owner,
        stairs["id"],
        "Mara climbs the spiral stairs",
        character_ids=[mara["id"]],
        location_id=tower["id"],
        dialogue=[{"kind": "thought", "text": "Why is it dark?", "speaker_id": mara["id"]}],
    )
    lamp = await panel(
        owner,
        stairs["id"],
        "Jonah asleep beside the cold lamp",
        character_ids=[jonah["id"], mara["id"]],
        dialogue=[{"text": "Jonah, wake up!", "speaker_id": mara["id"]}],
    )
    await post(
        owner,
        f"/api/v1/projects/{pid}/instructions",
        {"text": "Keep the sea always in view", "category": "continuity"},
    )
    await post(
        owner,
        f"/api/v1/scenes/{stairs['id']}/instructions",
        {"text": "Storm light: cold blues", "category": "style"},
    )
    return Story(owner, book, first, second, stairs, climb, lamp, mara, jonah)


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    # Some tests here start more tasks than the generation limit allows in a minute.
    return {"rate_limit_generation": "1000/minute"}


@pytest.fixture
async def story(users: UserFactory) -> Story:
    return await build_story(await users.create())


async def run(
    user: SignedInUser, task: str, context_type: str, target_id: str, **body: Any
) -> dict[str, Any]:
    response = await user.post(
        EXECUTE,
        json={"task_type": task, "context": {"type": context_type, "id": target_id}, **body},
    )
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job


async def result_of(user: SignedInUser, platform: Platform, job_id: str) -> dict[str, Any]:
    await platform.jobs.drain()
    response = await user.get(f"/api/v1/tasks/{job_id}/result")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def target(story: Story, kind: str) -> tuple[str, str]:
    return {
        "scene": ("scene", story.scene["id"]),
        "panel": ("panel", story.lamp["id"]),
        "climb": ("panel", story.climb["id"]),
        "character": ("character", story.mara["id"]),
        "chapter": ("chapter", story.second["id"]),
        "project": ("project", story.project["id"]),
    }[kind]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


# What each task must have been given: (field, a fact it holds).
CASES: list[tuple[TaskType, str, list[tuple[str, Any]]]] = [
    (
        TaskType.SCENE_SUMMARY,
        "scene",
        [
            ("scene_text", "Mara climbs the tower and finds Jonah asleep."),
            ("scene_text", "Mara climbs the spiral stairs."),
            ("scene_text", "Mara (thinking): Why is it dark?"),
            ("scene_text", "Mara: Jonah, wake up!"),
            ("title", "The stairs"),
            ("characters", ["Mara", "Jonah"]),
        ],
    ),
    (
        TaskType.PANEL_DESCRIPTION,
        "scene",
        [
            ("scene_text", "Jonah asleep beside the cold lamp."),
            ("panel_count", 2),
            ("style", "ink and watercolour"),
            ("characters", ["Mara", "Jonah"]),
        ],
    ),
    (
        TaskType.DIALOGUE,
        "panel",
        [
            ("situation", "Jonah asleep beside the cold lamp"),
            ("situation", "Mara climbs the tower and finds Jonah asleep."),
            ("situation", "Instructions:\n- Keep the sea always in view\n- Storm light"),
            ("characters", ["Jonah", "Mara"]),
            ("tone", "tense"),
        ],
    ),
    (
        TaskType.VISUAL_PROMPT,
        "climb",
        [
            ("description", "Mara climbs the spiral stairs"),
            ("description", "Mara (red scarf, freckles)"),
            ("description", "Lamp room: interior, glass and brass"),
            ("description", "Instructions:"),
            ("style", "ink and watercolour"),
            ("palette", ["#1b4965", "#f4d35e"]),
            ("characters", ["Mara"]),
            ("location", "Lamp room"),
            ("mood", "tense"),
            ("aspect", "2:3"),
            ("avoid", ["blurry", "extra fingers", "text"]),
        ],
    ),
    (
        TaskType.CHARACTER_PROFILE,
        "character",
        [
            ("name", "Mara"),
            ("description", "The keeper's daughter, sixteen."),
            ("description", "Appearance: red scarf, freckles."),
            ("traits", ["stubborn", "curious", "afraid of heights"]),
            ("role", "protagonist"),
            ("story_context", "The Lighthouse: A keeper's daughter finds the lamp dark."),
            ("story_context", "Chapter 1, The Storm: Mara's father rows out"),
            ("story_context", "- The stairs: Mara climbs the tower and finds Jonah asleep."),
            ("story_context", "Other characters: Jonah (supporting)"),
            ("story_context", "Instructions:\n- Keep the sea always in view"),
        ],
    ),
    (
        TaskType.CHAPTER_OUTLINE,
        "chapter",
        [
            ("premise", "A keeper's daughter finds the lamp dark."),
            ("premise", "When the lamp fails on the night of the storm"),
            (
                "previous_chapters",
                ["Mara's father rows out and does not come back."],
            ),
            ("title", "The Dark Lamp"),
            ("chapter_number", 2),
            ("synopsis", "Mara climbs to the lamp."),
            ("synopsis", "Instructions:\n- Keep the sea always in view"),
            ("characters", ["Mara", "Jonah"]),
        ],
    ),
    (
        TaskType.CHAPTER_OUTLINE,
        "project",
        [
            ("premise", "A keeper's daughter finds the lamp dark."),
            (
                "previous_chapters",
                [
                    "Mara's father rows out and does not come back.",
                    "Mara climbs to the lamp.",
                ],
            ),
            ("chapter_number", 3),
            ("synopsis", "Instructions:\n- Keep the sea always in view"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("task", "about", "facts"), CASES, ids=[f"{task.value}-{about}" for task, about, _ in CASES]
)
async def test_each_task_gathers_its_input_from_what_it_is_about(
    story: Story, platform: Platform, task: TaskType, about: str, facts: list[tuple[str, Any]]
) -> None:
    kind, target_id = target(story, about)
    job = await run(story.owner, task.value, kind, target_id, seed=5)
    assert (job["subject_type"], job["subject_id"]) == ("project", story.project["id"])
    given = job["input"]["input"]
    for field, fact in facts:
        if isinstance(fact, str) and isinstance(given.get(field), str):
            assert fact in given[field], (field, given[field])
        else:
            assert given.get(field) == fact, (field, given.get(field))
    # The gathered input is the task's valid input: the prompt can be built again from it.
    TASKS[task].input_model.model_validate(given)
    context = job["input"]["context"]
    assert (context["type"], context["id"]) == (kind, target_id)
    assert context["overridden"] == [] and set(context["gathered"]) <= set(given)
    assert context["sources"]["project"] == story.project["id"]

    result = await result_of(story.owner, platform, job["id"])
    assert result["provider"] == "local" and result["task_type"] == task.value
    TASKS[task].output_model.model_validate(result["output"])
    assert result["context"] == context
    for field, fact in facts:
        if isinstance(fact, str) and field != "aspect":
            assert fact.split("\n")[0] in result["prompt"], (field, fact)


async def test_the_sources_name_what_was_read(story: Story) -> None:
    job = await run(story.owner, "dialogue", "panel", story.lamp["id"])
    sources = job["input"]["context"]["sources"]
    assert sources["panel"] == story.lamp["id"] and sources["scene"] == story.scene["id"]
    assert sources["characters"] == [story.jonah["id"], story.mara["id"]]
    assert len(sources["instructions"]) == 2

    profile = await run(story.owner, "character_profile", "character", story.mara["id"])
    sources = profile["input"]["context"]["sources"]
    assert sources["chapters"] == [story.first["id"], story.second["id"]]
    assert sources["scenes"] == [story.scene["id"]]
    assert sources["characters"] == [story.jonah["id"]]


async def test_the_clients_input_fields_win(story: Story, platform: Platform) -> None:
    job = await run(
        story.owner,
        "dialogue",
        "panel",
        story.lamp["id"],
        input={"tone": "humorous", "characters": ["Jonah"], "options": 2},
    )
    given = job["input"]["input"]
    assert given["tone"] == "humorous" and given["characters"] == ["Jonah"]
    assert given["options"] == 2
    assert "Jonah asleep beside the cold lamp" in given["situation"]
    context = job["input"]["context"]
    assert context["overridden"] == ["characters", "tone"]
    assert "options" not in context["gathered"]
    output = (await result_of(story.owner, platform, job["id"]))["output"]
    assert len(output["options"]) == 2
    assert {line["character"] for option in output["options"] for line in option["lines"]} == {
        "Jonah"
    }


async def test_the_merged_input_is_validated_naming_the_input_field(story: Story) -> None:
    response = await story.owner.post(
        EXECUTE,
        json={
            "task_type": "panel_description",
            "context": {"type": "scene", "id": story.scene["id"]},
            "input": {"panel_count": 40, "temperatur": 1},
        },
    )
    assert response.status_code == 422
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"input.panel_count", "input.temperatur"}


async def test_a_task_about_what_it_does_not_take_is_refused_naming_the_type(
    story: Story,
) -> None:
    response = await story.owner.post(
        EXECUTE,
        json={"task_type": "dialogue", "context": {"type": "chapter", "id": story.first["id"]}},
    )
    assert response.status_code == 422
    problem = response.json()
    assert [error["field"] for error in problem["errors"]] == ["context.type"]
    assert "it takes: panel" in problem["errors"][0]["message"]

    unknown = await story.owner.post(
        EXECUTE,
        json={"task_type": "dialogue", "context": {"type": "location", "id": story.first["id"]}},
    )
    assert unknown.status_code == 422
    assert [error["field"] for error in unknown.json()["errors"]] == ["context.type"]

    bare = await story.owner.post(EXECUTE, json={"task_type": "dialogue"})
    assert bare.status_code == 422
    assert [error["field"] for error in bare.json()["errors"]] == ["input"]


async def test_the_catalog_lists_the_context_types_of_each_task(users: UserFactory) -> None:
    user = await users.create()
    catalog = {entry["name"]: entry for entry in (await user.get("/api/v1/tasks/types")).json()}
    assert {name: entry["context_types"] for name, entry in catalog.items()} == {
        "scene_summary": ["scene"],
        "character_profile": ["character"],
        "panel_description": ["scene"],
        "dialogue": ["panel"],
        "chapter_outline": ["project", "chapter"],
        "visual_prompt": ["panel"],
    }


async def test_another_users_target_is_404_and_starts_nothing(
    story: Story, users: UserFactory
) -> None:
    stranger = await users.create()
    for task, kind, target_id, code in [
        ("dialogue", "panel", story.lamp["id"], "PANEL_NOT_FOUND"),
        ("scene_summary", "scene", story.scene["id"], "SCENE_NOT_FOUND"),
        ("character_profile", "character", story.mara["id"], "CHARACTER_NOT_FOUND"),
        ("chapter_outline", "chapter", story.first["id"], "CHAPTER_NOT_FOUND"),
        ("chapter_outline", "project", story.project["id"], "PROJECT_NOT_FOUND"),
    ]:
        response = await stranger.post(
            EXECUTE, json={"task_type": task, "context": {"type": kind, "id": target_id}}
        )
        assert response.status_code == 404, response.text
        assert response.json()["code"] == code
    missing = await story.owner.post(
        EXECUTE,
        json={
            "task_type": "dialogue",
            "context": {"type": "panel", "id": "01900000-0000-7000-8000-000000000000"},
        },
    )
    assert missing.status_code == 404 and missing.json()["code"] == "PANEL_NOT_FOUND"
    assert (await stranger.get("/api/v1/jobs")).json()["total"] == 0


async def test_a_viewer_may_run_one_and_every_member_sees_the_job(
    story: Story, users: UserFactory, platform: Platform
) -> None:
    viewer, stranger = await users.create(), await users.create()
    added = await story.owner.post(
        f"/api/v1/projects/{story.project['id']}/members",
        json={"user": viewer.username, "role": "viewer"},
    )
    assert added.status_code == 201, added.text
    job = await run(viewer, "scene_summary", "scene", story.scene["id"])
    assert job["owner_id"] == viewer.id

    seen = await story.owner.get(f"/api/v1/jobs/{job['id']}")
    assert seen.status_code == 200 and seen.json()["subject_id"] == story.project["id"]
    assert (await stranger.get(f"/api/v1/jobs/{job['id']}")).status_code == 404
    await platform.jobs.drain()
    result = await story.owner.get(f"/api/v1/tasks/{job['id']}/result")
    assert result.status_code == 200 and result.json()["context"]["id"] == story.scene["id"]
    listed = await story.owner.get(
        "/api/v1/jobs",
        params={"subject_type": "project", "subject_id": story.project["id"]},
    )
    assert [item["id"] for item in listed.json()["items"]] == [job["id"]]


async def test_a_key_that_may_not_read_stories_gathers_nothing(story: Story) -> None:
    created = await story.owner.post(
        "/api/v1/auth/api-keys", json={"name": "generate only", "scopes": ["generation:create"]}
    )
    assert created.status_code == 201, created.text
    refused = await story.owner.client.post(
        EXECUTE,
        json={"task_type": "dialogue", "context": {"type": "panel", "id": story.lamp["id"]}},
        headers={"X-API-Key": created.json()["key"]},
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "PERMISSION_DENIED"


async def test_dialogue_needs_someone_to_speak(story: Story, users: UserFactory) -> None:
    owner = await users.create()
    book = await project(owner)
    chapter_one = await chapter(owner, book["id"], "One")
    empty_scene = await scene(owner, chapter_one["id"], "Empty room", mood="melancholy")
    silent = await panel(owner, empty_scene["id"], "An empty chair")
    response = await owner.post(
        EXECUTE, json={"task_type": "dialogue", "context": {"type": "panel", "id": silent["id"]}}
    )
    assert response.status_code == 422
    problem = response.json()
    assert [error["field"] for error in problem["errors"]] == ["context"]
    assert "no characters" in problem["errors"][0]["message"]

    job = await run(owner, "dialogue", "panel", silent["id"], input={"characters": ["Ghost"]})
    assert job["input"]["input"]["characters"] == ["Ghost"]
    assert job["input"]["input"]["tone"] == "melancholic"

    # A panel without cast falls back to the project's protagonists.
    lone = await panel(story.owner, story.scene["id"], "The door creaks")
    fallback = await run(story.owner, "dialogue", "panel", lone["id"])
    assert fallback["input"]["input"]["characters"] == ["Mara"]


async def test_a_long_story_is_cut_to_the_limits_never_refused(
    story: Story, platform: Platform
) -> None:
    long_text = " ".join(["The storm shook the lighthouse all night long."] * 400)  # 18 KB
    for _ in range(2):
        await panel(story.owner, story.scene["id"], long_text)
    giant = await post(
        story.owner,
        f"/api/v1/projects/{story.project['id']}/characters",
        {
            "name": "N" * 120,
            "description": long_text,
            "personality": ", ".join(f"trait {i}" for i in range(40)),
        },
    )
    for number in range(3):
        await chapter(story.owner, story.project["id"], f"Long {number}", summary=long_text)
    summary = await run(story.owner, "scene_summary", "scene", story.scene["id"])
    text = summary["input"]["input"]["scene_text"]
    assert len(text) <= SCENE_TEXT_MAX_LENGTH and text.endswith("…")
    assert text.startswith("The stairs.")
    names = summary["input"]["input"]["characters"]
    assert len(names) == 3 and max(len(name) for name in names) <= 80

    outline = await run(story.owner, "panel_description", "scene", story.scene["id"])
    assert outline["input"]["input"]["panel_count"] == 4

    profile = await run(story.owner, "character_profile", "character", giant["id"])
    given = profile["input"]["input"]
    assert len(given["name"]) <= 80 and len(given["traits"]) == 20
    assert len(given["description"]) <= DESCRIPTION_MAX_LENGTH
    assert len(given["story_context"]) <= CONTEXT_MAX_LENGTH
    # The directions keep their place at the end however long the story before them.
    assert given["story_context"].endswith("- Keep the sea always in view")

    later = await run(story.owner, "chapter_outline", "project", story.project["id"])
    previous = later["input"]["input"]["previous_chapters"]
    assert len(previous) == 5 and all(len(line) <= 2000 for line in previous)
    for job in (summary, outline, profile, later):
        await result_of(story.owner, platform, job["id"])


async def test_a_replayed_idempotency_key_is_the_same_request_after_the_story_changed(
    story: Story,
) -> None:
    body = {"task_type": "scene_summary", "context": {"type": "scene", "id": story.scene["id"]}}
    headers = {"Idempotency-Key": "summary-stairs"}
    first = await story.owner.post(EXECUTE, json=body, headers=headers)
    assert first.status_code == 202
    changed = await story.owner.patch(
        f"/api/v1/scenes/{story.scene['id']}", json={"summary": "Something else entirely."}
    )
    assert changed.status_code == 200, changed.text
    again = await story.owner.post(EXECUTE, json=body, headers=headers)
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    other = await story.owner.post(
        EXECUTE, json={**body, "input": {"max_sentences": 1}}, headers=headers
    )
    assert other.status_code == 409


async def test_the_subject_is_the_contexts_project(story: Story, users: UserFactory) -> None:
    other = await project(story.owner, "Another book")
    response = await story.owner.post(
        EXECUTE,
        json={
            "task_type": "scene_summary",
            "context": {"type": "scene", "id": story.scene["id"]},
            "subject_type": "project",
            "subject_id": other["id"],
        },
    )
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["subject_id"]
    same = await run(
        story.owner,
        "scene_summary",
        "scene",
        story.scene["id"],
        subject_type="project",
        subject_id=story.project["id"],
    )
    assert same["subject_id"] == story.project["id"]


async def test_gathering_costs_the_same_statements_whatever_the_storys_size(
    story: Story, platform: Platform
) -> None:
    """Each gatherer reads in a fixed number of statements: a scene of twelve panels, a
    character in many scenes, a chapter after many chapters cost what small ones do."""
    counted: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        counted.append(statement)

    async def statements(task: str, kind: str, target_id: str) -> int:
        await run(story.owner, task, kind, target_id)  # warm the principal cache
        counted.clear()
        event.listen(platform.engine.sync_engine, "before_cursor_execute", count)
        try:
            await run(story.owner, task, kind, target_id)
        finally:
            event.remove(platform.engine.sync_engine, "before_cursor_execute", count)
        return len(counted)

    before = {
        (task, kind): await statements(task, *target(story, kind))
        for task, kind in [
            ("scene_summary", "scene"),
            ("dialogue", "panel"),
            ("visual_prompt", "climb"),
            ("character_profile", "character"),
            ("chapter_outline", "chapter"),
        ]
    }
    pid = story.project["id"]
    for number in range(3):
        extra = await chapter(story.owner, pid, f"Extra {number}", summary="More happens.")
        more = await scene(story.owner, extra["id"], f"More {number}", summary="Mara again.")
        for _ in range(3):
            await panel(story.owner, more["id"], "Mara again", character_ids=[story.mara["id"]])
            await panel(
                story.owner,
                story.scene["id"],
                "Jonah wakes",
                character_ids=[story.jonah["id"], story.mara["id"]],
            )
    await chapter(story.owner, pid, "Last", position=1)
    story.second = (await story.owner.get(f"/api/v1/chapters/{story.second['id']}")).json()
    after = {(task, kind): await statements(task, *target(story, kind)) for task, kind in before}
    assert after == before
