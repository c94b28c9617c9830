"""`POST /workflow/consistency-check`: per character, the drift of each panel image from its
primary design and the panels over the threshold; the text inconsistencies of the panels; in
the request for a few panel images, as a `stories.consistency_check` job for more."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from creativeflow.assets.service import ImageService
from creativeflow.platform import Platform
from creativeflow.stories.consistency import service as consistency_service
from creativeflow.stories.consistency.features import ImageFeatures, features_of
from tests.factories import TestUser as SignedInUser
from tests.factories import UserFactory
from tests.stories.helpers import chapter, panel, post, project, scene
from tests.stories.test_drift import GREEN, character, encoded, unrelated
from tests.stories.test_identity_lock import solid, upload_design

CHECK = "/api/v1/workflow/consistency-check"
PROJECTS = "/api/v1/projects"


async def share(owner: SignedInUser, project_id: str, member: SignedInUser, role: str) -> None:
    response = await owner.post(
        f"{PROJECTS}/{project_id}/members", json={"user": member.username, "role": role}
    )
    assert response.status_code == 201, response.text


async def show(user: SignedInUser, project_id: str, panel_id: str, data: bytes) -> str:
    """Upload an image for the project and make it the panel's."""
    uploaded = await user.post(
        "/api/v1/images/upload",
        files={"file": ("panel.png", data, "image/png")},
        data={"subject_type": "project", "subject_id": project_id},
    )
    assert uploaded.status_code == 201, uploaded.text
    image_id: str = uploaded.json()["id"]
    changed = await user.patch(f"/api/v1/panels/{panel_id}", json={"selected_image_id": image_id})
    assert changed.status_code == 200, changed.text
    return image_id


async def check(user: SignedInUser, **body: Any) -> dict[str, Any]:
    response = await user.post(CHECK, json=body)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


@dataclass
class Studio:
    book: dict[str, Any]
    mara: dict[str, Any]
    jonah: dict[str, Any]
    one: dict[str, Any]
    two: dict[str, Any]
    panels: list[dict[str, Any]]  # same, unrelated, recoloured (chapter one), in chapter two
    images: list[str]


async def studio(owner: SignedInUser) -> Studio:
    """Mara's primary design is `character()`; Jonah's a grey square. Chapter one: Mara drawn
    as designed, as something else altogether, in a green jacket; then a panel of both with
    no image. Chapter two: Jonah drawn as designed. Ivo has no designs, Nell no primary one."""
    book = await project(owner)
    base = f"{PROJECTS}/{book['id']}/characters"
    mara = await post(owner, base, {"name": "Mara", "locked": True})
    jonah = await post(owner, base, {"name": "Jonah"})
    await post(owner, base, {"name": "Ivo"})
    nell = await post(owner, base, {"name": "Nell"})
    await upload_design(owner, mara["id"], encoded(character()), primary=True)
    await upload_design(owner, mara["id"], encoded(unrelated()))  # not primary: not compared
    await upload_design(owner, jonah["id"], solid((128, 128, 128)), primary=True)
    await upload_design(owner, nell["id"], solid((10, 10, 10)))
    one = await chapter(owner, book["id"], "One")
    two = await chapter(owner, book["id"], "Two")
    stairs = await scene(owner, one["id"], "Stairs")
    harbour = await scene(owner, two["id"], "Harbour")
    panels = [
        await panel(owner, stairs["id"], f"Mara, take {n}", character_ids=[mara["id"]])
        for n in (1, 2, 3)
    ]
    await panel(owner, stairs["id"], "Both", character_ids=[mara["id"], jonah["id"]])
    panels.append(await panel(owner, harbour["id"], "Jonah waits", character_ids=[jonah["id"]]))
    images = []
    for made, picture in zip(
        panels,
        [
            encoded(character()),
            encoded(unrelated()),
            encoded(character(jacket=GREEN)),
            solid((128, 128, 128)),
        ],
        strict=True,
    ):
        images.append(await show(owner, book["id"], made["id"], picture))
    return Studio(book, mara, jonah, one, two, panels, images)


def drifts(report: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [c for c in report["characters"] if c["name"] == name]
    return found


async def test_each_characters_panels_drift_and_those_over_the_threshold(
    users: UserFactory,
) -> None:
    owner = await users.create()
    s = await studio(owner)

    report = await check(owner, project_id=s.book["id"])

    assert report["threshold"] == 0.1 and report["panels"] == 5 and report["images"] == 4
    assert report["chapter_id"] is None and report["character_ids"] is None
    assert [c["name"] for c in report["characters"]] == ["Jonah", "Mara"]
    mara = drifts(report, "Mara")
    assert mara["locked"] is True and len(mara["reference_image_ids"]) == 1
    same, other, green = mara["panels"]
    assert [p["panel_id"] for p in mara["panels"]] == [p["id"] for p in s.panels[:3]]
    assert [p["image_id"] for p in mara["panels"]] == s.images[:3]
    assert same["drift"] < 0.01 and not same["over_threshold"]
    assert other["drift"] > 0.3 and other["over_threshold"]
    assert 0.1 < green["drift"] < 0.3 and green["over_threshold"]
    assert mara["over_threshold"] == [s.panels[1]["id"], s.panels[2]["id"]]
    assert mara["max_drift"] == other["drift"] and mara["panels_without_image"] == 1
    assert (same["chapter_id"], same["chapter_position"], same["scene_position"]) == (
        s.one["id"],
        1,
        1,
    )
    assert [p["panel_position"] for p in mara["panels"]] == [1, 2, 3]
    jonah = drifts(report, "Jonah")
    [waits] = jonah["panels"]
    assert (
        waits["drift"] < 0.01 and waits["chapter_position"] == 2 and jonah["over_threshold"] == []
    )
    assert [(u["name"], u["reason"]) for u in report["unchecked"]] == [
        ("Ivo", "NO_DESIGNS"),
        ("Nell", "NO_PRIMARY_DESIGN"),
    ]
    assert report["issues"] == [] and report["image_problems"] == []


async def test_the_threshold_decides_what_is_flagged(users: UserFactory) -> None:
    owner = await users.create()
    s = await studio(owner)

    looser = drifts(await check(owner, project_id=s.book["id"], threshold=0.3), "Mara")
    loosest = drifts(await check(owner, project_id=s.book["id"], threshold=1), "Mara")
    strict = drifts(await check(owner, project_id=s.book["id"], threshold=0), "Jonah")

    assert looser["over_threshold"] == [s.panels[1]["id"]]
    assert loosest["over_threshold"] == []
    assert strict["over_threshold"] == [] and strict["panels"][0]["drift"] == 0  # 0 is not above 0


async def test_a_chapter_and_some_characters(users: UserFactory) -> None:
    owner = await users.create()
    s = await studio(owner)

    chapter_two = await check(owner, project_id=s.book["id"], chapter_id=s.two["id"])
    only_jonah = await check(owner, project_id=s.book["id"], character_ids=[s.jonah["id"]])

    assert chapter_two["panels"] == 1 and chapter_two["images"] == 1
    assert drifts(chapter_two, "Mara")["panels"] == []
    assert [p["panel_id"] for p in drifts(chapter_two, "Jonah")["panels"]] == [s.panels[3]["id"]]
    assert only_jonah["character_ids"] == [s.jonah["id"]]
    assert [c["name"] for c in only_jonah["characters"]] == ["Jonah"]
    assert only_jonah["unchecked"] == [] and only_jonah["images"] == 1


async def test_text_inconsistencies_are_found_and_a_consistent_panel_has_none(
    users: UserFactory,
) -> None:
    owner = await users.create()
    book = await project(owner)
    base = f"{PROJECTS}/{book['id']}"
    mara = await post(owner, f"{base}/characters", {"name": "Mara"})
    jonah = await post(owner, f"{base}/characters", {"name": "Jonah"})
    ghost = await post(owner, f"{base}/characters", {"name": "Old Tom"})
    lighthouse = await post(owner, f"{base}/locations", {"name": "Lighthouse"})
    harbour = await post(owner, f"{base}/locations", {"name": "The Harbour"})
    one = await chapter(owner, book["id"], "One")
    await chapter(owner, book["id"], "Two", position=1)  # "One" is the second chapter
    stairs = await scene(owner, one["id"], "Stairs")
    here = {"location_id": lighthouse["id"]}

    def says(text: str, speaker: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"kind": "speech", "text": text, "speaker_id": speaker["id"] if speaker else None}

    consistent = await panel(
        owner,
        stairs["id"],
        "Mara climbs the LIGHTHOUSE stairs",
        character_ids=[mara["id"]],
        dialogue=[says("Nearly there, Mara.", mara), says("I ran a marathon for this")],
        **here,
    )
    named = await panel(
        owner,
        stairs["id"],
        "Mara alone",
        character_ids=[mara["id"]],
        dialogue=[says("Where is jonah?", mara), says("JONAH! Jonah's gone.", mara)],
        **here,
    )
    elsewhere = await panel(
        owner,
        stairs["id"],
        "Mara looks down at the   harbour's boats",
        character_ids=[mara["id"]],
        dialogue=[{"kind": "caption", "text": "Meanwhile, at the lighthouse"}],
        **here,
    )
    nowhere = await panel(owner, stairs["id"], "Fog over the harbour")
    speaker = await panel(
        owner,
        stairs["id"],
        "Mara listens",
        character_ids=[mara["id"]],
        dialogue=[says("Hello?", jonah), says("Boo.", ghost), says("Who's there?", mara)],
        **here,
    )
    deleted = await owner.delete(f"/api/v1/characters/{ghost['id']}")
    assert deleted.status_code == 204, deleted.text

    report = await check(owner, project_id=book["id"])

    issues = [
        (i["panel_id"], i["code"], i["field"], i["character_id"], i["location_id"])
        for i in report["issues"]
    ]
    assert issues == [
        (named["id"], "NAMED_NOT_IN_PANEL", "dialogue[0].text", jonah["id"], None),
        (elsewhere["id"], "LOCATION_MISMATCH", "description", None, harbour["id"]),
        (nowhere["id"], "LOCATION_MISMATCH", "description", None, harbour["id"]),
        (speaker["id"], "UNKNOWN_SPEAKER", "dialogue[0].speaker_id", jonah["id"], None),
        (speaker["id"], "UNKNOWN_SPEAKER", "dialogue[1].speaker_id", None, None),
    ]
    assert consistent["id"] not in {i["panel_id"] for i in report["issues"]}
    first = report["issues"][0]
    assert (first["chapter_position"], first["scene_position"], first["panel_position"]) == (
        2,
        1,
        2,
    )
    assert first["chapter_id"] == one["id"] and first["scene_id"] == stairs["id"]
    messages = [i["message"] for i in report["issues"]]
    assert "'Jonah'" in messages[0] and "not in the panel" in messages[0]
    assert "'The Harbour'" in messages[1] and "'Lighthouse'" in messages[1]
    assert "no location" in messages[2]
    assert "'Jonah'" in messages[3] and "not a character of the project" in messages[4]
    # The character checks follow `character_ids`; the location and unknown-speaker ones stay.
    only_mara = await check(owner, project_id=book["id"], character_ids=[mara["id"]])
    assert [(i["code"], i["field"]) for i in only_mara["issues"]] == [
        ("LOCATION_MISMATCH", "description"),
        ("LOCATION_MISMATCH", "description"),
        ("UNKNOWN_SPEAKER", "dialogue[1].speaker_id"),
    ]


async def test_who_may_check_and_what_is_refused(users: UserFactory) -> None:
    owner, viewer, stranger = await users.create(), await users.create(), await users.create()
    s = await studio(owner)
    await share(owner, s.book["id"], viewer, "viewer")
    theirs = await project(stranger, "Theirs")
    their_chapter = await chapter(stranger, theirs["id"], "Elsewhere")
    their_character = await post(
        stranger, f"{PROJECTS}/{theirs['id']}/characters", {"name": "Mara"}
    )

    seen = await check(viewer, project_id=s.book["id"])
    assert seen == await check(owner, project_id=s.book["id"])
    for body in ({"project_id": s.book["id"]}, {"project_id": str(uuid.uuid4())}):
        refused = await stranger.post(CHECK, json=body)
        assert refused.status_code == 404 and refused.json()["code"] == "PROJECT_NOT_FOUND"

    for body, field in [
        ({"chapter_id": str(uuid.uuid4())}, "chapter_id"),
        ({"chapter_id": their_chapter["id"]}, "chapter_id"),
        ({"character_ids": [their_character["id"]]}, "character_ids"),
        ({"character_ids": []}, "character_ids"),
        ({"threshold": 1.5}, "threshold"),
        ({"colour": "red"}, "colour"),
    ]:
        bad = await owner.post(CHECK, json={"project_id": s.book["id"], **body})
        assert bad.status_code == 422, (body, bad.text)
        assert bad.json()["errors"][0]["field"].removeprefix("body.") == field
    missing = await owner.post(CHECK, json={})
    assert missing.status_code == 422 and "project_id" in missing.json()["errors"][0]["field"]


async def test_a_missing_panel_image_is_reported_not_fatal(
    users: UserFactory, platform: Platform
) -> None:
    owner = await users.create()
    s = await studio(owner)
    await platform.storage.delete(await _storage_key(platform, s.images[1]))

    report = await check(owner, project_id=s.book["id"], character_ids=[s.mara["id"]])

    [problem] = report["image_problems"]
    assert problem["panel_id"] == s.panels[1]["id"] and problem["code"] == "IMAGE_BYTES_MISSING"
    assert [p["panel_id"] for p in drifts(report, "Mara")["panels"]] == [
        s.panels[0]["id"],
        s.panels[2]["id"],
    ]
    assert report["images"] == 2


async def _storage_key(platform: Platform, image_id: str) -> str:
    async with platform.read_sessions() as session:
        [image] = await ImageService(session).by_ids([uuid.UUID(image_id)])
        return image.storage_key


@pytest.mark.parametrize("settings_overrides", [{"story_consistency_inline_panels": 1}])
async def test_a_large_check_runs_as_a_job_with_the_same_report(
    users: UserFactory, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, viewer, stranger = await users.create(), await users.create(), await users.create()
    s = await studio(owner)
    await share(owner, s.book["id"], viewer, "viewer")
    # One panel image to compare: still answered at once.
    assert (await check(owner, project_id=s.book["id"], chapter_id=s.two["id"]))["images"] == 1

    queued = await viewer.post(
        CHECK, json={"project_id": s.book["id"]}, headers={"Idempotency-Key": "check-1"}
    )

    assert queued.status_code == 202, queued.text
    body = queued.json()
    job_id = body["job"]["id"]
    assert body["job"]["kind"] == "stories.consistency_check"
    assert body["job"]["subject_id"] == s.book["id"]
    assert queued.headers["location"] == f"/api/v1/jobs/{job_id}"
    assert body["report_url"] == f"{CHECK}/{job_id}"
    again = await viewer.post(
        CHECK, json={"project_id": s.book["id"]}, headers={"Idempotency-Key": "check-1"}
    )
    assert again.status_code == 202 and again.json()["job"]["id"] == job_id
    early = await viewer.get(body["report_url"])
    assert early.status_code == 409 and early.json()["code"] == "JOB_NOT_FINISHED"

    await platform.jobs.drain()

    job = (await owner.get(f"/api/v1/jobs/{job_id}")).json()
    assert job["status"] == "succeeded", job["error"]
    assert job["progress"] == 1
    fetched = await viewer.get(body["report_url"])
    assert fetched.status_code == 200, fetched.text
    assert fetched.json() == job["result"]
    assert (await owner.get(body["report_url"])).json() == job["result"]
    assert (await stranger.get(body["report_url"])).status_code == 404
    assert (await owner.get(f"{CHECK}/{uuid.uuid4()}")).status_code == 404
    # The same check answered in the request is the same report.
    monkeypatch.setattr(platform.settings, "story_consistency_inline_panels", 40)
    assert await check(owner, project_id=s.book["id"]) == job["result"]


async def test_each_stored_picture_is_decoded_once(
    users: UserFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await users.create()
    s = await studio(owner)
    decoded: list[int] = []

    def counting(data: bytes) -> ImageFeatures:
        decoded.append(len(data))
        return features_of(data)

    monkeypatch.setattr(consistency_service, "features_of", counting)

    report = await check(owner, project_id=s.book["id"])

    # Mara's and Jonah's designs, and the two panels not showing those very pictures; Mara's
    # second design is not primary and never read.
    assert len(decoded) == 4
    assert report == await check(owner, project_id=s.book["id"])
