"""A project exported as a JSON bundle and imported again is the same project: the two bundles
match, ids aside (a bundle has none), and the copy is the importer's."""

from __future__ import annotations

from typing import Any

from tests.factories import TestUser as SignedInUser
from tests.factories import UserFactory
from tests.stories.helpers import chapter, panel, post, project, scene
from tests.stories.test_content import upload


async def rich_project(owner: SignedInUser) -> dict[str, Any]:
    book = await project(owner, "The Lighthouse")
    base = f"/api/v1/projects/{book['id']}"
    await owner.put(f"{base}/style-guide", json={"art_style": "ink", "palette": ["#112233"]})
    mara = await post(owner, f"{base}/characters", {"name": "Mara", "appearance": ["red scarf"]})
    tower = await post(owner, f"{base}/locations", {"name": "Lighthouse", "setting": "interior"})
    design = await upload(owner, subject_type="project", subject_id=book["id"])
    await owner.post(
        f"/api/v1/characters/{mara['id']}/designs", json={"image_id": design, "primary": True}
    )
    one = await chapter(owner, book["id"], "One", summary="The lamp goes dark")
    await owner.patch(f"/api/v1/chapters/{one['id']}", json={"cover_image_id": design})
    stairs = await scene(owner, one["id"], "Stairs", mood="tense")
    climb = await panel(
        owner,
        stairs["id"],
        "Mara climbs",
        shot="wide",
        character_ids=[mara["id"]],
        location_id=tower["id"],
        dialogue=[{"text": "Jonah?", "speaker_id": mara["id"]}, {"kind": "sfx", "text": "CREAK"}],
    )
    await panel(owner, stairs["id"], "The dark lamp")
    await scene(owner, one["id"], "Roof")
    await chapter(owner, book["id"], "Two")
    await owner.post(f"{base}/instructions", json={"text": "muted", "category": "style"})
    await owner.post(f"/api/v1/scenes/{stairs['id']}/instructions", json={"text": "rain"})
    await owner.post(f"/api/v1/panels/{climb['id']}/instructions", json={"text": "her hands"})
    await owner.post(f"{base}/style-guide/apply")
    return book


def without_time(bundle: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in bundle.items() if key != "exported_at"}


async def test_export_then_import_reproduces_the_project(users: UserFactory) -> None:
    owner = await users.create()
    book = await rich_project(owner)
    exported = await owner.get(f"/api/v1/projects/{book['id']}/export", params={"format": "json"})
    assert exported.status_code == 200, exported.text
    assert "attachment" in exported.headers["content-disposition"]
    bundle = exported.json()
    assert bundle["format"] == "creativeflow.story" and bundle["version"] == 1
    assert book["id"] not in exported.text  # no ids in a bundle
    assert [c["fields"]["title"] for c in bundle["chapters"]] == ["One", "Two"]
    climb = bundle["chapters"][0]["scenes"][0]["panels"][0]
    assert climb["characters"] == ["c1"] and climb["location"] == "l1"
    assert climb["dialogue"][0]["speaker_id"] == "c1"
    assert climb["fields"]["prompt"].startswith("ink, Mara climbs")
    assert len(bundle["images"]) == 1

    imported = await owner.post("/api/v1/projects/import", json=bundle)
    assert imported.status_code == 201, imported.text
    assert imported.json()["missing_images"] == []
    copy_id = imported.json()["project_id"]
    assert copy_id != book["id"]
    again = (await owner.get(f"/api/v1/projects/{copy_id}/export")).json()
    assert without_time(again) == without_time(bundle)
    stats = (await owner.get(f"/api/v1/projects/{copy_id}/stats")).json()
    assert (stats["chapters"], stats["scenes"], stats["panels"]) == (2, 2, 2)


async def test_another_user_imports_without_the_images_they_cannot_read(
    users: UserFactory,
) -> None:
    owner, other = await users.create(), await users.create()
    book = await rich_project(owner)
    bundle = (await owner.get(f"/api/v1/projects/{book['id']}/export")).json()
    imported = await other.post("/api/v1/projects/import", json=bundle)
    assert imported.status_code == 201, imported.text
    assert imported.json()["missing_images"] == list(bundle["images"])
    copy = (await other.get(f"/api/v1/projects/{imported.json()['project_id']}")).json()
    assert copy["owner_id"] == str(other.id) and copy["role"] == "owner"
    chapters = (await other.get(f"/api/v1/projects/{copy['id']}/chapters")).json()["items"]
    assert chapters[0]["cover_image_id"] is None


async def test_a_bad_bundle_is_422_naming_the_place_and_writes_nothing(
    users: UserFactory,
) -> None:
    user = await users.create()
    bad = {
        "project": {"title": "Broken"},
        "chapters": [{"fields": {"title": "One"}, "scenes": [{"fields": {"title": ""}}]}],
    }
    response = await user.post("/api/v1/projects/import", json=bad)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "chapters[0].scenes[0].fields.title"
    unknown = {
        "project": {"title": "Broken"},
        "chapters": [
            {"fields": {"title": "One"}, "scenes": [{"fields": {"title": "A"}, "panels": [
                {"fields": {}, "characters": ["nobody"]}
            ]}]}
        ],
    }  # fmt: skip
    response = await user.post("/api/v1/projects/import", json=unknown)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "chapters[0].scenes[0].panels[0].characters"
    assert (await user.get("/api/v1/projects")).json()["total"] == 0
    wrong_format = await user.get(f"/api/v1/projects/{(await project(user))['id']}/export",
                                  params={"format": "docx"})  # fmt: skip
    assert wrong_format.status_code == 422
