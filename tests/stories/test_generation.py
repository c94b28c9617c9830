"""The story studio's image generations through the HTTP API with the local image provider:
each a job whose success writes a draft, announced on the project's socket."""

from __future__ import annotations

import uuid

from creativeflow.platform import Platform
from creativeflow.realtime.models import subject_channel
from tests.factories import UserFactory
from tests.stories.generation_helpers import (
    dispatch_events,
    finished_job,
    generated_draft,
    messages_of,
    studio,
)
from tests.stories.test_identity_lock import solid, upload_design
from tests.stories.test_projects import share


async def test_a_panel_image_is_generated_from_its_prompt_into_a_draft(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    made = await studio(user)
    panel = made["panels"][0]
    socket = await platform.realtime.subscribe(subject_channel(made["project"]["id"]))
    try:
        response = await user.post(
            f"/api/v1/panels/{panel['id']}/generate-image", json={"count": 2, "seed": 7}
        )
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["subject_type"] == "project" and job["subject_id"] == made["project"]["id"]
        assert response.headers["location"] == f"/api/v1/jobs/{job['id']}"
        built = (await user.get(f"/api/v1/panels/{panel['id']}/prompt")).json()
        sent = job["input"]
        assert sent["prompt"] == built["prompt"] and "red scarf" in sent["prompt"]
        assert sent["negative_prompt"] == "blurry, extra fingers"
        assert (sent["width"], sent["height"]) == (704, 1024)  # 2:3, long side 1024
        assert sent["palette"] == ["#1b3a4b", "#f2c14e"]

        finished = await finished_job(user, platform, job["id"])
        draft = (await user.get(f"/api/v1/drafts/{finished['result']['draft_id']}")).json()
        assert await dispatch_events(platform) >= 2  # the draft's and the job's ending
        ready = await messages_of(socket, "draft_ready")
    finally:
        await platform.realtime.unsubscribe(socket)
    assert draft["status"] == "pending" and draft["kind"] == "image"
    assert (draft["target_type"], draft["target_id"]) == ("panel", panel["id"])
    assert draft["operation"] == "panel_image" and draft["job_id"] == job["id"]
    assert draft["prompt"] == built["prompt"] and draft["provider"] == "local"
    assert [variant["index"] for variant in draft["variants"]] == [0, 1]
    assert [variant["seed"] for variant in draft["variants"]] == [7, 8]
    assert [message.data["draft_id"] for message in ready] == [draft["id"]]
    for variant in draft["variants"]:
        image = await user.get(f"/api/v1/images/{variant['image_id']}/metadata")
        assert image.status_code == 200, image.text
    usage = (await user.get("/api/v1/usage")).json()
    assert sum(row["images"] for row in usage["items"]) == 2


async def test_selecting_a_draft_sets_the_panels_image_and_restore_puts_the_old_one_back(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    made = await studio(user)
    panel = made["panels"][0]
    url = f"/api/v1/panels/{panel['id']}/generate-image"
    first = await generated_draft(user, platform, url)
    second = await generated_draft(user, platform, url, {"count": 2, "seed": 3})
    socket = await platform.realtime.subscribe(subject_channel(made["project"]["id"]))
    try:
        chosen = await user.post(f"/api/v1/drafts/{first['id']}/select", json={"variant": 0})
        assert chosen.status_code == 200, chosen.text
        updates = await messages_of(socket, "content_update")
    finally:
        await platform.realtime.unsubscribe(socket)
    assert {(m.data["entity"], m.data["id"]) for m in updates} >= {
        ("panel", panel["id"]),
        ("draft", first["id"]),
    }
    first_image = first["variants"][0]["image_id"]
    read = (await user.get(f"/api/v1/panels/{panel['id']}")).json()
    assert read["selected_image_id"] == first_image
    assert chosen.json()["status"] == "selected" and chosen.json()["selected_variant"] == 0
    assert chosen.json()["history"][0]["previous"] == {"selected_image_id": None}

    replaced = await user.post(f"/api/v1/drafts/{second['id']}/select", json={"variant": 1})
    assert replaced.json()["history"][0]["previous"] == {"selected_image_id": first_image}
    again = await user.post(f"/api/v1/drafts/{second['id']}/select", json={"variant": 1})
    assert again.status_code == 409
    out_of_range = await user.post(f"/api/v1/drafts/{second['id']}/select", json={"variant": 5})
    assert out_of_range.status_code == 422
    assert out_of_range.json()["errors"][0]["field"] == "variant"

    restored = await user.post(f"/api/v1/drafts/{second['id']}/restore")
    assert restored.status_code == 200, restored.text
    assert restored.json()["status"] == "pending"
    read = (await user.get(f"/api/v1/panels/{panel['id']}")).json()
    assert read["selected_image_id"] == first_image
    assert (await user.post(f"/api/v1/drafts/{second['id']}/restore")).status_code == 409


async def test_a_stale_version_is_refused(users: UserFactory, platform: Platform) -> None:
    user = await users.create()
    made = await studio(user)
    draft = await generated_draft(
        user, platform, f"/api/v1/panels/{made['panels'][0]['id']}/generate-image"
    )
    url = f"/api/v1/drafts/{draft['id']}"
    assert (await user.post(f"{url}/select", json={"version": draft["version"]})).status_code == 200
    stale = await user.post(f"{url}/restore", headers={"If-Match": f'"{draft["version"]}"'})
    assert stale.status_code == 409 and stale.json()["code"] == "VERSION_CONFLICT"


async def test_cover_sheet_design_and_background_drafts_land_on_their_targets(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    made = await studio(user, panels=1)
    character, location, chapter = made["character"], made["location"], made["chapter"]

    cover = await generated_draft(
        user, platform, f"/api/v1/chapters/{chapter['id']}/generate-cover"
    )
    assert (cover["target_type"], cover["operation"]) == ("cover", "cover")
    assert "The Storm" in cover["prompt"] and "Mara (red scarf" in cover["prompt"]
    assert (cover["parameters"]["width"], cover["parameters"]["height"]) == (704, 1024)
    await user.post(f"/api/v1/drafts/{cover['id']}/select")
    read = (await user.get(f"/api/v1/chapters/{chapter['id']}")).json()
    assert read["cover_image_id"] == cover["variants"][0]["image_id"]

    sheet = await generated_draft(
        user, platform, f"/api/v1/characters/{character['id']}/generate-sheet"
    )
    assert sheet["operation"] == "character_sheet"
    assert "front view, side view, back view" in sheet["prompt"]
    assert (sheet["parameters"]["width"], sheet["parameters"]["height"]) == (1024, 576)
    await user.post(f"/api/v1/drafts/{sheet['id']}/select")
    designs = (await user.get(f"/api/v1/characters/{character['id']}")).json()["designs"]
    assert [(d["image_id"], d["label"], d["primary"]) for d in designs] == [
        (sheet["variants"][0]["image_id"], "turnaround sheet", True)
    ]

    design = await generated_draft(
        user, platform, "/api/v1/generate/character-design", {"character_id": character["id"]}
    )
    assert design["target_id"] == character["id"] and "full-body" in design["prompt"]
    # The sheet is a reference now: with no palette of its own, the design takes the style
    # guide's.
    assert design["parameters"]["reference_image_ids"] == [sheet["variants"][0]["image_id"]]

    background = await generated_draft(
        user,
        platform,
        "/api/v1/generate/background",
        {"location_id": location["id"], "time_of_day": "dusk"},
    )
    assert background["target_type"] == "location"
    assert "no characters" in background["prompt"] and "dusk" in background["prompt"]
    restored = await user.post(f"/api/v1/drafts/{sheet['id']}/restore")
    assert restored.status_code == 200
    assert (await user.get(f"/api/v1/characters/{character['id']}")).json()["designs"] == []


async def test_variations_and_style_transfer_start_from_the_panels_image(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    made = await studio(user, panels=1)
    panel = made["panels"][0]
    none_yet = await user.post(f"/api/v1/panels/{panel['id']}/variations")
    assert none_yet.status_code == 409 and none_yet.json()["code"] == "PANEL_HAS_NO_IMAGE"
    first = await generated_draft(user, platform, f"/api/v1/panels/{panel['id']}/generate-image")
    await user.post(f"/api/v1/drafts/{first['id']}/select")
    source = first["variants"][0]["image_id"]

    variation = await generated_draft(
        user, platform, f"/api/v1/panels/{panel['id']}/variations", {"count": 2}
    )
    assert variation["operation"] == "variation"
    assert variation["parameters"]["source_image_id"] == source
    styled = await generated_draft(
        user,
        platform,
        f"/api/v1/panels/{panel['id']}/style-transfer",
        {"style": "noir", "strength": 0.8},
    )
    assert styled["operation"] == "style_transfer" and styled["parameters"]["style"] == "noir"
    meta = (await user.get(f"/api/v1/images/{styled['variants'][0]['image_id']}/metadata")).json()
    assert meta["source_image_id"] == source
    missing_style = await user.post(f"/api/v1/panels/{panel['id']}/style-transfer", json={})
    assert missing_style.status_code == 422
    assert missing_style.json()["errors"][0]["field"] == "style"


async def test_feedback_and_revise_make_a_linked_draft(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    made = await studio(user, panels=1)
    draft = await generated_draft(
        user,
        platform,
        f"/api/v1/panels/{made['panels'][0]['id']}/generate-image",
        {"count": 2, "seed": 40},
    )
    url = f"/api/v1/drafts/{draft['id']}"
    liked = await user.post(f"{url}/feedback", json={"variant": 1, "rating": 5})
    assert liked.status_code == 201, liked.text
    noted = await user.post(f"{url}/feedback", json={"variant": 0, "comment": "more rain"})
    assert noted.status_code == 201
    empty = await user.post(f"{url}/feedback", json={"variant": 0})
    assert empty.status_code == 422
    read = (await user.get(url)).json()
    assert [[f["rating"] for f in v["feedback"]] for v in read["variants"]] == [[None], [5]]

    revised = await user.post(f"{url}/revise", json={"instructions": "lightning in the sky"})
    assert revised.status_code == 202, revised.text
    job = revised.json()
    assert job["input"]["prompt"] == f"{draft['prompt']}, lightning in the sky, more rain"
    assert job["input"]["seed"] == 41  # the liked variant's
    finished = await finished_job(user, platform, job["id"])
    new = (await user.get(f"/api/v1/drafts/{finished['result']['draft_id']}")).json()
    assert new["revises_id"] == draft["id"] and new["variants"][0]["seed"] == 41


async def test_a_panel_sequence_is_one_group_and_cancel_keeps_what_finished(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    made = await studio(user, panels=5)
    response = await user.post(
        "/api/v1/generate/panel-sequence", json={"scene_id": made["scene"]["id"], "seed": 1}
    )
    assert response.status_code == 202, response.text
    group = response.json()
    assert group["kind"] == "stories.panel_sequence" and group["status"] == "running"
    children = (await user.get("/api/v1/jobs", params={"parent_id": group["id"]})).json()
    assert children["total"] == 5
    order = [panel["id"] for panel in made["panels"]]
    by_panel = {child["input"]["target_id"]: child for child in children["items"]}
    assert sorted(by_panel, key=order.index) == order
    assert [by_panel[pid]["input"]["seed"] for pid in order] == [1, 2, 3, 4, 5]

    assert await platform.jobs.runner.run_next()
    assert await platform.jobs.runner.run_next()
    halfway = (await user.get(f"/api/v1/jobs/{group['id']}")).json()
    assert halfway["progress"] == 0.4
    history = (await user.get("/api/v1/generate/history")).json()
    assert group["id"] in {job["id"] for job in history["items"]}  # with its panels' jobs
    assert history["total"] == 6
    cancelled = await user.post(f"/api/v1/generate/cancel/{group['id']}")
    assert cancelled.json()["status"] == "cancelled", cancelled.text
    assert await platform.jobs.drain() == 0
    drafts = (await user.get("/api/v1/drafts", params={"project_id": made["project"]["id"]})).json()
    assert drafts["total"] == 2
    children = (await user.get("/api/v1/jobs", params={"parent_id": group["id"]})).json()
    assert sorted(child["status"] for child in children["items"]) == [
        "cancelled",
        "cancelled",
        "cancelled",
        "succeeded",
        "succeeded",
    ]


async def test_auto_panel_fills_only_panels_without_an_image(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    made = await studio(user, panels=3)
    first = await generated_draft(
        user, platform, f"/api/v1/panels/{made['panels'][0]['id']}/generate-image"
    )
    await user.post(f"/api/v1/drafts/{first['id']}/select")
    response = await user.post(
        "/api/v1/workflow/auto-panel", json={"scene_id": made["scene"]["id"]}
    )
    assert response.status_code == 202, response.text
    assert response.json()["input"]["panel_ids"] == [p["id"] for p in made["panels"][1:]]
    await platform.jobs.drain()
    assert (await user.get(f"/api/v1/jobs/{response.json()['id']}")).json()["status"] == "succeeded"
    pending = (await user.get("/api/v1/drafts/pending")).json()
    assert {draft["target_id"] for draft in pending["items"]} == {
        p["id"] for p in made["panels"][1:]
    }
    bulk = await user.post(
        "/api/v1/drafts/bulk-action",
        json={"action": "select_first", "draft_ids": [d["id"] for d in pending["items"]]},
    )
    assert bulk.status_code == 200, bulk.text
    nothing_left = await user.post(
        "/api/v1/workflow/auto-panel", json={"scene_id": made["scene"]["id"]}
    )
    assert nothing_left.status_code == 422
    assert nothing_left.json()["errors"][0]["field"] == "scene_id"


async def test_bad_generation_requests_name_the_field_and_submit_nothing(
    users: UserFactory,
) -> None:
    user = await users.create()
    made = await studio(user, panels=1)
    panel_id = made["panels"][0]["id"]
    cases = [
        (f"/api/v1/panels/{panel_id}/generate-image", {"count": 9}, "count"),
        ("/api/v1/generate/panel-sequence", {}, None),
        (
            "/api/v1/generate/panel-sequence",
            {"panel_ids": [panel_id, panel_id]},
            None,
        ),
        (
            "/api/v1/generate/panel-sequence",
            {"panel_ids": [panel_id, str(uuid.uuid4())]},
            "panel_ids[1]",
        ),
        ("/api/v1/generate/background", {"location_id": "nope"}, "location_id"),
    ]
    for url, body, field in cases:
        response = await user.post(url, json=body)
        assert response.status_code == 422, (url, response.text)
        if field is not None:
            assert response.json()["errors"][0]["field"] == field, response.text
    jobs = (await user.get("/api/v1/jobs")).json()
    assert jobs["total"] == 0


async def test_the_same_idempotency_key_gives_the_same_generation(users: UserFactory) -> None:
    user = await users.create()
    made = await studio(user, panels=1)
    url = f"/api/v1/panels/{made['panels'][0]['id']}/generate-image"
    headers = {**user.headers, "Idempotency-Key": "panel-one"}
    first = await user.client.post(url, json={"seed": 1}, headers=headers)
    again = await user.client.post(url, json={"seed": 1}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    different = await user.client.post(url, json={"seed": 2}, headers=headers)
    assert different.status_code == 409 and different.json()["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_members_generate_and_decide_by_role_and_strangers_get_404(
    users: UserFactory, platform: Platform
) -> None:
    owner, editor, viewer, stranger = (
        await users.create(),
        await users.create(),
        await users.create(),
        await users.create(),
    )
    made = await studio(owner, panels=1)
    await share(owner, made["project"], editor, "editor")
    await share(owner, made["project"], viewer, "viewer")
    url = f"/api/v1/panels/{made['panels'][0]['id']}/generate-image"
    assert (await stranger.post(url)).status_code == 404
    assert (await viewer.post(url)).status_code == 403
    draft = await generated_draft(editor, platform, url)
    draft_url = f"/api/v1/drafts/{draft['id']}"

    assert (await stranger.get(draft_url)).status_code == 404
    assert (await stranger.post(f"{draft_url}/select")).status_code == 404
    assert (await stranger.get("/api/v1/drafts")).json()["total"] == 0
    listed = await stranger.get("/api/v1/drafts", params={"project_id": made["project"]["id"]})
    assert listed.status_code == 404
    assert (await viewer.get(draft_url)).status_code == 200
    assert (await viewer.post(f"{draft_url}/select")).status_code == 403
    assert (await viewer.post(f"{draft_url}/revise")).status_code == 403
    assert (await owner.get("/api/v1/drafts")).json()["total"] == 1
    job = await stranger.get(f"/api/v1/jobs/{draft['job_id']}")
    assert job.status_code == 404
    assert (await viewer.get(f"/api/v1/jobs/{draft['job_id']}")).status_code == 200


async def test_a_locked_characters_drift_is_checked_on_each_new_panel_image(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    made = await studio(user, panels=1)
    character = made["character"]
    await upload_design(user, character["id"], solid((0, 200, 0)), primary=True)
    url = f"/api/v1/panels/{made['panels'][0]['id']}/generate-image"

    unlocked = await generated_draft(user, platform, url)
    assert unlocked["warnings"] == [] and unlocked["variants"][0]["drift"] == {}

    locked = await user.patch(f"/api/v1/characters/{character['id']}", json={"locked": True})
    assert locked.status_code == 200, locked.text
    checked = await generated_draft(user, platform, url, {"count": 2})
    assert "always drawn the same" in checked["prompt"]
    assert [warning["variant"] for warning in checked["warnings"]] == [0, 1]
    warning = checked["warnings"][0]
    assert warning["code"] == "CHARACTER_DRIFT" and warning["character_id"] == character["id"]
    assert warning["drift"] > warning["threshold"]
    assert checked["variants"][0]["drift"] == {character["id"]: warning["drift"]}
