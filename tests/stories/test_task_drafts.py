"""A text task run about the story leaves a draft; selecting it writes the output into the
story, and restoring undoes it."""

from __future__ import annotations

from typing import Any

from creativeflow.platform import Platform
from tests.factories import TestUser as SignedInUser
from tests.factories import UserFactory
from tests.stories.test_task_context import build_story, result_of, run


async def task_draft(
    user: SignedInUser, platform: Platform, task: str, about: str, target_id: str, **body: Any
) -> dict[str, Any]:
    job = await run(user, task, about, target_id, **body)
    result = await result_of(user, platform, job["id"])
    draft = await user.get(f"/api/v1/drafts/{result['draft_id']}")
    assert draft.status_code == 200, draft.text
    found: dict[str, Any] = draft.json()
    assert found["job_id"] == job["id"] and found["status"] == "pending"
    return found


async def test_dialogue_options_become_variants_and_a_chosen_one_the_panels_bubbles(
    users: UserFactory, platform: Platform
) -> None:
    story = await build_story(await users.create())
    owner, lamp = story.owner, story.lamp
    draft = await task_draft(owner, platform, "dialogue", "panel", lamp["id"])
    assert (draft["kind"], draft["operation"], draft["target_type"]) == (
        "text",
        "dialogue",
        "panel",
    )
    assert len(draft["variants"]) == 3  # the task's default number of options
    option = draft["variants"][1]
    assert option["text"].splitlines()[0].split(":")[0] in {"Mara", "Jonah"}

    chosen = await owner.post(f"/api/v1/drafts/{draft['id']}/select", json={"variant": 1})
    assert chosen.status_code == 200, chosen.text
    bubbles = (await owner.get(f"/api/v1/panels/{lamp['id']}")).json()["dialogue"]
    speakers = {"Mara": story.mara["id"], "Jonah": story.jonah["id"]}
    assert [(b["speaker_id"], b["text"]) for b in bubbles] == [
        (speakers[line["character"]], line["text"]) for line in option["output"]["lines"]
    ]
    await owner.post(f"/api/v1/drafts/{draft['id']}/restore")
    bubbles = (await owner.get(f"/api/v1/panels/{lamp['id']}")).json()["dialogue"]
    assert [b["text"] for b in bubbles] == ["Jonah, wake up!"]


async def test_an_outline_of_the_next_chapter_becomes_a_chapter_with_its_scenes(
    users: UserFactory, platform: Platform
) -> None:
    story = await build_story(await users.create())
    owner, pid = story.owner, story.project["id"]
    draft = await task_draft(
        owner, platform, "chapter_outline", "project", pid, input={"scene_count": 3}
    )
    assert draft["target_type"] == "project"
    outline = draft["variants"][0]["output"]
    await owner.post(f"/api/v1/drafts/{draft['id']}/select")
    chapters = (await owner.get(f"/api/v1/projects/{pid}/chapters")).json()["items"]
    assert [c["title"] for c in chapters][-1] == outline["title"]
    new = chapters[-1]
    assert new["summary"] == outline["logline"] and new["scene_count"] == 3
    await owner.post(f"/api/v1/drafts/{draft['id']}/restore")
    assert (await owner.get(f"/api/v1/projects/{pid}/chapters")).json()["total"] == 2


async def test_summaries_prompts_and_profiles_land_on_their_targets(
    users: UserFactory, platform: Platform
) -> None:
    story = await build_story(await users.create())
    owner = story.owner
    summary = await task_draft(owner, platform, "scene_summary", "scene", story.scene["id"])
    await owner.post(f"/api/v1/drafts/{summary['id']}/select")
    scene = (await owner.get(f"/api/v1/scenes/{story.scene['id']}")).json()
    assert scene["summary"] == summary["variants"][0]["text"]

    prompt = await task_draft(owner, platform, "visual_prompt", "panel", story.climb["id"])
    await owner.post(f"/api/v1/drafts/{prompt['id']}/select")
    kept = (await owner.get(f"/api/v1/panels/{story.climb['id']}/prompt")).json()
    assert kept["stored_prompt"] == prompt["variants"][0]["text"]
    await owner.post(f"/api/v1/drafts/{prompt['id']}/restore")
    kept = (await owner.get(f"/api/v1/panels/{story.climb['id']}/prompt")).json()
    assert kept["stored_prompt"] is None

    profile = await task_draft(owner, platform, "character_profile", "character", story.mara["id"])
    await owner.post(f"/api/v1/drafts/{profile['id']}/select")
    mara = (await owner.get(f"/api/v1/characters/{story.mara['id']}")).json()
    assert mara["description"] == profile["variants"][0]["output"]["summary"]


async def test_panel_descriptions_of_a_scene_are_a_storyboard_that_select_writes(
    users: UserFactory, platform: Platform
) -> None:
    story = await build_story(await users.create())
    owner, scene_id = story.owner, story.scene["id"]
    draft = await task_draft(
        owner, platform, "panel_description", "scene", scene_id, input={"panel_count": 3}
    )
    assert (draft["kind"], draft["operation"]) == ("storyboard", "storyboard")
    panels = draft["variants"][0]["panels"]
    assert len(panels) == 3 and all(panel["description"] for panel in panels)
    # Laid out as the storyboard workflow does: the cast found by name in each panel.
    cast = {cid for panel in panels for cid in panel["character_ids"]}
    assert story.mara["id"] in cast
    before = (await owner.get(f"/api/v1/scenes/{scene_id}/panels")).json()["total"]
    await owner.post(f"/api/v1/drafts/{draft['id']}/select")
    after = (await owner.get(f"/api/v1/scenes/{scene_id}/panels")).json()
    assert after["total"] == before + 3
    assert [p["description"] for p in after["items"][before:]] == [p["description"] for p in panels]


async def test_a_task_about_nothing_stored_leaves_no_draft(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    response = await user.post(
        "/api/v1/tasks/execute",
        json={"task_type": "scene_summary", "input": {"scene_text": "Mara climbs the stairs."}},
    )
    result = await result_of(user, platform, response.json()["id"])
    assert result["draft_id"] is None
    assert (await user.get("/api/v1/drafts")).json()["total"] == 0


async def test_a_text_draft_is_revised_by_running_its_task_again_with_the_notes(
    users: UserFactory, platform: Platform
) -> None:
    story = await build_story(await users.create())
    owner = story.owner
    draft = await task_draft(owner, platform, "dialogue", "panel", story.lamp["id"], seed=4)
    await owner.post(
        f"/api/v1/drafts/{draft['id']}/feedback", json={"variant": 0, "comment": "shorter lines"}
    )
    revised = await owner.post(
        f"/api/v1/drafts/{draft['id']}/revise", json={"instructions": "Jonah is grumpy"}
    )
    assert revised.status_code == 202, revised.text
    job = revised.json()
    assert job["kind"] == "providers.text_task"
    assert job["input"]["revision_notes"] == ["Jonah is grumpy", "shorter lines"]
    assert job["input"]["input"] == draft["parameters"]["input"]  # the task as it ran
    result = await result_of(owner, platform, job["id"])
    new = (await owner.get(f"/api/v1/drafts/{result['draft_id']}")).json()
    assert new["revises_id"] == draft["id"] and new["operation"] == "dialogue"
    assert "apply these notes:\n- Jonah is grumpy\n- shorter lines" in new["prompt"]
