"""The story workflows through the HTTP API with the local providers: a scene's text made into
a storyboard draft, a whole chapter generated as one job group, and what to do next."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from creativeflow.platform import Platform
from creativeflow.realtime.models import subject_channel
from tests.factories import TestUser as SignedInUser
from tests.factories import UserFactory
from tests.stories.generation_helpers import (
    dispatch_events,
    finished_job,
    generated_draft,
    messages_of,
    studio,
)
from tests.stories.helpers import chapter, panel, post, scene
from tests.stories.test_projects import share

SCENE_TEXT = """Rain hammers the Lighthouse. Mara climbs the stairs with a lantern.

"The lamp is failing," Mara said. "We have an hour."

Jonah waits at the top. "Then we fix it," said Jonah, handing her a wrench."""


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"rate_limit_generation": "1000/minute"}


async def cast_of_two(user: SignedInUser) -> dict[str, Any]:
    """The studio (Mara, the Lighthouse) with Jonah, a second location and an empty scene."""
    made = await studio(user, panels=0)
    pid = made["project"]["id"]
    made["jonah"] = await post(
        user, f"/api/v1/projects/{pid}/characters", {"name": "Jonah Reyes", "role": "supporting"}
    )
    made["harbour"] = await post(user, f"/api/v1/projects/{pid}/locations", {"name": "Harbour"})
    return made


async def panels_of(user: SignedInUser, scene_id: str) -> list[dict[str, Any]]:
    response = await user.get(f"/api/v1/scenes/{scene_id}/panels", params={"limit": 100})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def scenes_of(user: SignedInUser, chapter_id: str) -> list[dict[str, Any]]:
    response = await user.get(f"/api/v1/chapters/{chapter_id}/scenes", params={"limit": 100})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def children_of(user: SignedInUser, group_id: str) -> list[dict[str, Any]]:
    response = await user.get("/api/v1/jobs", params={"parent_id": group_id, "limit": 100})
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def bubble(text: str, speaker_id: str | None, kind: str = "speech") -> dict[str, Any]:
    return {"kind": kind, "text": text, "speaker_id": speaker_id, "position_hint": None}


async def suggested(user: SignedInUser, project_id: str) -> dict[str, dict[str, Any]]:
    response = await user.get("/api/v1/workflow/suggestions", params={"project_id": project_id})
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [item["priority"] for item in items] == sorted(item["priority"] for item in items)
    return {item["code"]: item for item in items}


# -- storyboards -------------------------------------------------------------------------------


async def test_a_scenes_text_becomes_a_storyboard_draft_and_selecting_it_makes_the_panels(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    made = await cast_of_two(user)
    mara, jonah = made["character"]["id"], made["jonah"]["id"]
    tower, scene_id = made["location"]["id"], made["scene"]["id"]

    response = await user.post(
        "/api/v1/workflow/storyboard", json={"scene_id": scene_id, "text": SCENE_TEXT, "seed": 3}
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["kind"] == "stories.storyboard"
    assert job["subject_id"] == made["project"]["id"]
    assert job["input"]["task"]["panel_count"] == 3  # one panel a paragraph
    assert job["input"]["task"]["style"] == "ink and watercolour"
    finished = await finished_job(user, platform, job["id"])
    assert finished["result"]["panel_count"] == 3 and finished["result"]["bubble_count"] == 3
    draft = (await user.get(f"/api/v1/drafts/{finished['result']['draft_id']}")).json()
    assert (draft["kind"], draft["operation"]) == ("storyboard", "storyboard")
    assert (draft["target_type"], draft["target_id"]) == ("scene", scene_id)
    assert draft["status"] == "pending" and draft["provider"] == "local"
    assert await panels_of(user, scene_id) == []  # nothing written before it is chosen

    first, second, third = draft["variants"][0]["panels"]
    assert first["shot"] == "establishing" and first["character_ids"] == [mara]
    assert [p["location_id"] for p in (first, second, third)] == [tower, tower, tower]
    assert first["dialogue"] == []
    assert second["character_ids"] == [mara]
    assert second["dialogue"] == [
        bubble("The lamp is failing.", mara),
        bubble("We have an hour.", mara),
    ]
    assert third["character_ids"] == [jonah]  # "Jonah" is Jonah Reyes
    assert third["dialogue"] == [bubble("Then we fix it.", jonah)]
    assert all(p["notes"].startswith("Camera: ") for p in (first, second, third))

    socket = await platform.realtime.subscribe(subject_channel(made["project"]["id"]))
    try:
        chosen = await user.post(f"/api/v1/drafts/{draft['id']}/select")
        assert chosen.status_code == 200, chosen.text
        await dispatch_events(platform)
        updates = await messages_of(socket, "content_update")
    finally:
        await platform.realtime.unsubscribe(socket)
    created = await panels_of(user, scene_id)
    assert [p["description"] for p in created] == [p["description"] for p in (first, second, third)]
    assert [p["character_ids"] for p in created] == [[mara], [mara], [jonah]]
    assert created[1]["dialogue"][0]["speaker_id"] == mara
    assert {p["location_id"] for p in created} == {tower}
    assert {m.data["id"] for m in updates if m.data["entity"] == "panel"} == {
        p["id"] for p in created
    }
    restored = await user.post(f"/api/v1/drafts/{draft['id']}/restore")
    assert restored.status_code == 200, restored.text
    assert await panels_of(user, scene_id) == []


async def test_a_breakdown_storyboards_the_scenes_own_text(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    made = await cast_of_two(user)
    mara, jonah = made["character"]["id"], made["jonah"]["id"]
    harbour = made["harbour"]["id"]
    docks = await scene(
        user,
        made["chapter"]["id"],
        "Docks",
        summary='Jonah waits at the Harbour. "She is late," Jonah said.',
        notes="MARA: I am here.\nCaption: Dawn.",
    )
    url = f"/api/v1/scenes/{docks['id']}/breakdown"
    draft = await generated_draft(user, platform, url)
    job = (await user.get(f"/api/v1/jobs/{draft['job_id']}")).json()
    assert job["input"]["workflow"] == "breakdown"
    assert job["input"]["task"]["scene_text"].startswith("Docks.")
    assert job["input"]["task"]["panel_count"] == 2  # the summary and the notes
    panels = draft["variants"][0]["panels"]
    assert [p["location_id"] for p in panels] == [harbour, harbour]
    bubbles = [said for p in panels for said in p["dialogue"]]
    assert bubbles == [
        bubble("She is late.", jonah),
        bubble("I am here.", mara),
        bubble("Dawn.", None, "caption"),
    ]
    assert mara in panels[-1]["character_ids"]  # she speaks in it

    asked = await generated_draft(user, platform, url, {"panel_count": 4, "seed": 1})
    assert len(asked["variants"][0]["panels"]) == 4
    title_only = await scene(user, made["chapter"]["id"], "Blank")
    empty = await user.post(f"/api/v1/scenes/{title_only['id']}/breakdown")
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "text"


async def test_a_storyboard_keeps_unknown_speakers_and_the_same_key_gives_the_same_job(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    made = await cast_of_two(user)
    text = 'ORU: Who goes there?\n\nMara lifts the lantern. "Only me."'
    headers = {**user.headers, "Idempotency-Key": "board-1"}
    body = {"scene_id": made["scene"]["id"], "text": text}
    first = await user.client.post("/api/v1/workflow/storyboard", json=body, headers=headers)
    again = await user.client.post("/api/v1/workflow/storyboard", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    finished = await finished_job(user, platform, first.json()["id"])
    draft = (await user.get(f"/api/v1/drafts/{finished['result']['draft_id']}")).json()
    bubbles = [said for p in draft["variants"][0]["panels"] for said in p["dialogue"]]
    assert bubbles == [
        bubble("Oru: Who goes there?", None),
        bubble("Only me.", made["character"]["id"]),
    ]


# -- generated chapters ------------------------------------------------------------------------


OUTLINE = {
    "scenes": [
        {
            "title": "The climb",
            "summary": 'Mara climbs the Lighthouse stairs. "Almost there," Mara said.',
            "characters": ["Mara"],
        },
        {
            "title": "The lamp",
            "summary": "Jonah Reyes waits by the dead lamp. He hands Mara a wrench.",
        },
    ]
}


async def test_a_chapter_is_generated_into_scenes_and_panels_as_one_group(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    made = await cast_of_two(user)
    chapter_id = made["chapter"]["id"]
    response = await user.post(
        "/api/v1/workflow/generate-chapter",
        json={"chapter_id": chapter_id, "outline": OUTLINE, "panels_per_scene": 2, "seed": 5},
    )
    assert response.status_code == 202, response.text
    group = response.json()
    assert group["kind"] == "stories.generate_chapter" and group["status"] == "running"
    stages = await children_of(user, group["id"])
    assert [stage["kind"] for stage in stages] == ["stories.chapter_plan"]

    assert await platform.jobs.runner.run_next()  # the plan
    planned = (await user.get(f"/api/v1/jobs/{group['id']}")).json()
    assert planned["status"] == "running" and planned["progress"] == pytest.approx(1 / 3)
    scenes = await scenes_of(user, chapter_id)
    assert [s["title"] for s in scenes] == ["Stairs", "The climb", "The lamp"]  # appended
    await platform.jobs.drain()

    ended = (await user.get(f"/api/v1/jobs/{group['id']}")).json()
    assert ended["status"] == "succeeded", ended
    assert ended["result"]["children"] == 3 and ended["result"]["succeeded"] == 3
    climb, lamp = scenes[1]["id"], scenes[2]["id"]
    climbing = await panels_of(user, climb)
    assert len(climbing) == 2 and len(await panels_of(user, lamp)) == 2
    assert all(p["location_id"] == made["location"]["id"] for p in climbing)
    spoken = [said for p in climbing for said in p["dialogue"]]
    assert spoken == [bubble("Almost there.", made["character"]["id"])]
    lamp_cast = [p["character_ids"] for p in await panels_of(user, lamp)]
    assert lamp_cast == [[made["jonah"]["id"]], [made["character"]["id"]]]
    pending = (await user.get("/api/v1/drafts/pending")).json()
    assert pending["total"] == 0  # a generated chapter writes no storyboard draft

    from_task = await user.post(
        "/api/v1/workflow/generate-chapter", json={"chapter_id": chapter_id, "scene_count": 3}
    )
    assert from_task.status_code == 202, from_task.text
    plan = (await children_of(user, from_task.json()["id"]))[0]
    assert plan["input"]["task"]["scene_count"] == 3
    assert plan["input"]["task"]["title"] == "The Storm"
    await platform.jobs.drain()
    done = (await user.get(f"/api/v1/jobs/{from_task.json()['id']}")).json()
    assert done["status"] == "succeeded" and done["result"]["children"] == 4
    assert len(await scenes_of(user, chapter_id)) == 6
    usage = (await user.get("/api/v1/usage")).json()
    assert sum(row["calls"] for row in usage["items"]) == 2 + 1 + 3  # storyboards, outline


async def test_a_chapter_with_images_leaves_an_image_draft_per_panel(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    made = await cast_of_two(user)
    response = await user.post(
        "/api/v1/workflow/generate-chapter",
        json={
            "chapter_id": made["chapter"]["id"],
            "outline": {"scenes": OUTLINE["scenes"][:1]},
            "panels_per_scene": 2,
            "images": True,
            "count": 2,
            "seed": 11,
        },
    )
    assert response.status_code == 202, response.text
    group_id = response.json()["id"]
    await platform.jobs.drain()
    ended = (await user.get(f"/api/v1/jobs/{group_id}")).json()
    assert ended["status"] == "succeeded", ended
    assert [child["kind"] for child in await children_of(user, group_id)].count(
        "stories.generate_image"
    ) == 2
    assert ended["result"]["children"] == 4  # plan, storyboard, two images
    new_scene = (await scenes_of(user, made["chapter"]["id"]))[-1]
    panels = await panels_of(user, new_scene["id"])
    pending = (await user.get("/api/v1/drafts/pending")).json()
    assert pending["total"] == 2
    assert {d["target_id"] for d in pending["items"]} == {p["id"] for p in panels}
    assert all(d["kind"] == "image" and len(d["variants"]) == 2 for d in pending["items"])
    assert all(p["selected_image_id"] is None for p in panels)  # drafts wait for review


async def test_cancelling_a_generated_chapter_keeps_the_stages_that_finished(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    made = await cast_of_two(user)
    chapter_id = made["chapter"]["id"]
    three = {"scenes": [*OUTLINE["scenes"], {"title": "Dawn", "summary": "The light returns."}]}
    response = await user.post(
        "/api/v1/workflow/generate-chapter",
        json={"chapter_id": chapter_id, "outline": three, "panels_per_scene": 1, "images": True},
    )
    group_id = response.json()["id"]
    assert await platform.jobs.runner.run_next()  # the plan
    assert await platform.jobs.runner.run_next()  # one scene's storyboard
    cancelled = await user.post(f"/api/v1/jobs/{group_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert await platform.jobs.drain() == 0
    statuses = sorted(child["status"] for child in await children_of(user, group_id))
    # The plan and one storyboard finished; two storyboards and the one image never ran.
    assert statuses == ["cancelled", "cancelled", "cancelled", "succeeded", "succeeded"]
    scenes = (await scenes_of(user, chapter_id))[1:]
    assert len(scenes) == 3
    counts = sorted([len(await panels_of(user, s["id"])) for s in scenes])
    assert counts == [0, 0, 1]
    assert (await user.get("/api/v1/drafts/pending")).json()["total"] == 0


# -- suggestions -------------------------------------------------------------------------------


async def test_suggestions_follow_the_project_as_it_changes(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    blank = await post(user, "/api/v1/projects", {"title": "Blank"})
    fresh = await suggested(user, blank["id"])
    assert list(fresh) == ["NO_CHAPTERS", "STYLE_GUIDE_MISSING"]
    assert fresh["NO_CHAPTERS"]["action"] == {
        "method": "POST",
        "path": f"/api/v1/projects/{blank['id']}/chapters",
        "body": {"title": "Chapter 1"},
    }

    made = await studio(user, panels=2)
    pid, scene_id = made["project"]["id"], made["scene"]["id"]
    mara = made["character"]["id"]
    before = await suggested(user, pid)
    assert set(before) == {
        "CHARACTERS_WITHOUT_DESIGN",
        "PANELS_WITHOUT_IMAGES",
        "CHAPTERS_WITHOUT_COVER",
    }
    missing = before["PANELS_WITHOUT_IMAGES"]
    assert missing["count"] == 2
    assert missing["examples"] == [p["id"] for p in made["panels"]]
    assert missing["action"] == {
        "method": "POST",
        "path": "/api/v1/workflow/auto-panel",
        "body": {"scene_id": scene_id},
    }
    assert before["CHARACTERS_WITHOUT_DESIGN"]["action"]["body"] == {"character_id": mara}
    cover = before["CHAPTERS_WITHOUT_COVER"]["action"]["path"]
    assert cover == f"/api/v1/chapters/{made['chapter']['id']}/generate-cover"

    filled = await user.post(missing["action"]["path"], json=missing["action"]["body"])
    assert filled.status_code == 202, filled.text
    await platform.jobs.drain()
    waiting = await suggested(user, pid)
    assert "PANELS_WITHOUT_IMAGES" not in waiting  # their drafts wait instead
    assert waiting["DRAFTS_PENDING"]["count"] == 2
    assert waiting["DRAFTS_PENDING"]["details"] == {"panel": 2}
    assert waiting["DRAFTS_PENDING"]["action"]["path"] == (
        f"/api/v1/drafts/pending?project_id={pid}"
    )
    pending = (await user.get(waiting["DRAFTS_PENDING"]["action"]["path"])).json()
    chosen = await user.post(
        "/api/v1/drafts/bulk-action",
        json={"action": "select_first", "draft_ids": [d["id"] for d in pending["items"]]},
    )
    assert chosen.status_code == 200, chosen.text
    after = await suggested(user, pid)
    assert "PANELS_WITHOUT_IMAGES" not in after and "DRAFTS_PENDING" not in after

    locked = await user.patch(f"/api/v1/characters/{mara}", json={"locked": True})
    assert locked.status_code == 200, locked.text
    quiet = await scene(user, made["chapter"]["id"], "Quiet", summary="Mara sits by the lamp.")
    second = await chapter(user, pid, "Empty")
    jonah = await post(user, f"/api/v1/projects/{pid}/characters", {"name": "Jonah"})
    calls = [{"text": "Mara!", "speaker_id": jonah["id"]}]
    talk = await panel(user, scene_id, "Jonah calls up the stairs", dialogue=calls)
    later = await suggested(user, pid)
    assert list(later) == [
        "LOCKED_CHARACTERS_WITHOUT_PRIMARY_DESIGN",
        "CHARACTERS_WITHOUT_DESIGN",
        "EMPTY_CHAPTERS",
        "SCENES_WITHOUT_PANELS",
        "SPEAKERS_NOT_CAST",
        "PANELS_WITHOUT_IMAGES",
        "CHAPTERS_WITHOUT_COVER",
    ]
    assert later["LOCKED_CHARACTERS_WITHOUT_PRIMARY_DESIGN"]["examples"] == [mara]
    assert later["CHARACTERS_WITHOUT_DESIGN"]["count"] == 2
    assert later["EMPTY_CHAPTERS"]["action"]["body"] == {"chapter_id": second["id"]}
    assert later["SCENES_WITHOUT_PANELS"]["action"] == {
        "method": "POST",
        "path": "/api/v1/workflow/storyboard",
        "body": {"scene_id": quiet["id"]},
    }
    assert later["SPEAKERS_NOT_CAST"]["examples"] == [talk["id"]]
    fix = later["SPEAKERS_NOT_CAST"]["action"]
    assert fix == {
        "method": "PATCH",
        "path": f"/api/v1/panels/{talk['id']}",
        "body": {"character_ids": [jonah["id"]]},
    }
    assert (await user.patch(fix["path"], json=fix["body"])).status_code == 200
    assert later["PANELS_WITHOUT_IMAGES"]["examples"] == [talk["id"]]
    assert later["CHAPTERS_WITHOUT_COVER"]["count"] == 2
    storyboard = later["SCENES_WITHOUT_PANELS"]["action"]
    boarded = await user.post(storyboard["path"], json=storyboard["body"])
    assert boarded.status_code == 202, boarded.text
    await platform.jobs.drain()
    last = await suggested(user, pid)
    assert "SPEAKERS_NOT_CAST" not in last and "SCENES_WITHOUT_PANELS" not in last
    assert last["DRAFTS_PENDING"]["details"] == {"scene": 1}
    page = await user.get(
        "/api/v1/workflow/suggestions", params={"project_id": pid, "limit": 2, "offset": 1}
    )
    assert page.json()["total"] == 6 and page.json()["has_more"] is True
    assert [item["code"] for item in page.json()["items"]] == [
        "LOCKED_CHARACTERS_WITHOUT_PRIMARY_DESIGN",
        "CHARACTERS_WITHOUT_DESIGN",
    ]


# -- access and bad input ----------------------------------------------------------------------


async def test_strangers_get_404_viewers_read_suggestions_but_generate_nothing(
    users: UserFactory, platform: Platform
) -> None:
    owner, editor, viewer, stranger = (
        await users.create(),
        await users.create(),
        await users.create(),
        await users.create(),
    )
    made = await cast_of_two(owner)
    await share(owner, made["project"], editor, "editor")
    await share(owner, made["project"], viewer, "viewer")
    scene_id, chapter_id = made["scene"]["id"], made["chapter"]["id"]
    writes = [
        ("/api/v1/workflow/storyboard", {"scene_id": scene_id, "text": SCENE_TEXT}),
        (f"/api/v1/scenes/{scene_id}/breakdown", {"text": SCENE_TEXT}),
        ("/api/v1/workflow/generate-chapter", {"chapter_id": chapter_id, "outline": OUTLINE}),
    ]
    for url, body in writes:
        assert (await stranger.post(url, json=body)).status_code == 404, url
        refused = await viewer.post(url, json=body)
        assert refused.status_code == 403, (url, refused.text)
        assert (await editor.post(url, json=body)).status_code == 202, url
    suggestions = "/api/v1/workflow/suggestions"
    params = {"project_id": made["project"]["id"]}
    assert (await stranger.get(suggestions, params=params)).status_code == 404
    assert (await viewer.get(suggestions, params=params)).status_code == 200
    assert (await stranger.get("/api/v1/jobs")).json()["total"] == 0
    assert (await owner.get("/api/v1/jobs")).json()["total"] == 4  # 2 jobs, a group, its plan


async def test_bad_workflow_requests_name_the_field_and_submit_nothing(
    users: UserFactory,
) -> None:
    user = await users.create()
    made = await cast_of_two(user)
    scene_id, chapter_id = made["scene"]["id"], made["chapter"]["id"]
    cases = [
        ("/api/v1/workflow/storyboard", {"text": SCENE_TEXT}, "scene_id"),
        ("/api/v1/workflow/storyboard", {"scene_id": scene_id, "panel_count": 13}, "panel_count"),
        ("/api/v1/workflow/storyboard", {"scene_id": scene_id, "text": ""}, "text"),
        ("/api/v1/workflow/storyboard", {"scene_id": scene_id, "extra": 1}, "extra"),
        (f"/api/v1/scenes/{scene_id}/breakdown", {"panel_count": 0}, "panel_count"),
        ("/api/v1/scenes/nope/breakdown", {}, "scene_id"),
        (
            "/api/v1/workflow/generate-chapter",
            {"chapter_id": chapter_id, "scene_count": 21},
            "scene_count",
        ),
        (
            "/api/v1/workflow/generate-chapter",
            {"chapter_id": chapter_id, "outline": {"scenes": []}},
            "outline.scenes",
        ),
        (
            "/api/v1/workflow/generate-chapter",
            {"chapter_id": chapter_id, "outline": {"scenes": [{"title": "No summary"}]}},
            "outline.scenes.0.summary",
        ),
        (
            "/api/v1/workflow/generate-chapter",
            {"chapter_id": chapter_id, "panels_per_scene": 13, "count": 9},
            "panels_per_scene",
        ),
    ]
    for url, body, field in cases:
        response = await user.post(url, json=body)
        assert response.status_code == 422, (url, body, response.text)
        assert field in [error["field"] for error in response.json()["errors"]], response.text
    unknown = await user.post(
        "/api/v1/workflow/storyboard", json={"scene_id": str(uuid.uuid4()), "text": "x"}
    )
    assert unknown.status_code == 404
    bad_project = await user.get("/api/v1/workflow/suggestions", params={"project_id": "x"})
    assert bad_project.status_code == 422
    assert bad_project.json()["errors"][0]["field"] == "project_id"
    assert (await user.get("/api/v1/jobs")).json()["total"] == 0
