"""The character identity lock: `locked` is set, read and carried by the JSON bundle; a locked
character's prompt part is its fixed identity and every design goes to the reference images;
a new image of a panel it is in is measured against its primary design
(`locked_drift_warnings`)."""

from __future__ import annotations

import uuid

import pytest
from PIL import Image

from creativeflow.platform import Platform
from creativeflow.stories.consistency.features import DEFAULT_DRIFT_THRESHOLD
from creativeflow.stories.consistency.service import locked_drift_warnings
from tests.factories import TestUser as SignedInUser
from tests.factories import UserFactory
from tests.stories.helpers import chapter, panel, post, project, scene
from tests.stories.test_drift import GREEN, character, encoded, unrelated

PROJECTS = "/api/v1/projects"


def solid(colour: tuple[int, int, int]) -> bytes:
    return encoded(Image.new("RGB", (48, 48), colour))


async def upload_design(
    user: SignedInUser, character_id: str, data: bytes, *, primary: bool = False
) -> str:
    response = await user.post(
        f"/api/v1/characters/{character_id}/designs/upload",
        files={"file": ("design.png", data, "image/png")},
        data={"primary": "true" if primary else "false"},
    )
    assert response.status_code == 201, response.text
    return response.headers["Location"].removeprefix("/api/v1/images/")


async def test_locked_is_set_read_and_changed(users: UserFactory) -> None:
    owner = await users.create()
    book = await project(owner)
    base = f"{PROJECTS}/{book['id']}/characters"

    mara = await post(owner, base, {"name": "Mara", "locked": True})
    jonah = await post(owner, base, {"name": "Jonah"})

    assert mara["locked"] is True and jonah["locked"] is False
    unlocked = await owner.patch(f"/api/v1/characters/{mara['id']}", json={"locked": False})
    assert unlocked.status_code == 200, unlocked.text
    assert unlocked.json()["locked"] is False and unlocked.json()["version"] == 2
    null = await owner.patch(f"/api/v1/characters/{mara['id']}", json={"locked": None})
    assert null.status_code == 422 and null.json()["errors"][0]["field"] == "locked"
    bad = await owner.post(base, json={"name": "Ivo", "locked": "sometimes"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"].endswith("locked")
    listed = (await owner.get(base)).json()["items"]
    assert [(c["name"], c["locked"]) for c in listed] == [("Jonah", False), ("Mara", False)]


async def test_the_json_bundle_carries_the_lock(users: UserFactory) -> None:
    owner = await users.create()
    book = await project(owner)
    base = f"{PROJECTS}/{book['id']}/characters"
    await post(owner, base, {"name": "Mara", "locked": True})
    await post(owner, base, {"name": "Jonah"})

    bundle = (await owner.get(f"{PROJECTS}/{book['id']}/export", params={"format": "json"})).json()
    assert [(c["fields"]["name"], c["fields"]["locked"]) for c in bundle["characters"]] == [
        ("Jonah", False),
        ("Mara", True),
    ]
    imported = await owner.post(f"{PROJECTS}/import", json=bundle)
    assert imported.status_code == 201, imported.text
    copy = imported.json()["project_id"]
    characters = (await owner.get(f"{PROJECTS}/{copy}/characters")).json()["items"]
    assert [(c["name"], c["locked"]) for c in characters] == [("Jonah", False), ("Mara", True)]
    # A bundle written before the lock existed imports unlocked.
    for entry in bundle["characters"]:
        del entry["fields"]["locked"]
    older = await owner.post(f"{PROJECTS}/import", json=bundle)
    assert older.status_code == 201, older.text
    characters = (await owner.get(f"{PROJECTS}/{older.json()['project_id']}/characters")).json()[
        "items"
    ]
    assert [c["locked"] for c in characters] == [False, False]


async def test_a_locked_characters_prompt_has_its_identity_and_all_its_designs(
    users: UserFactory,
) -> None:
    owner = await users.create()
    book = await project(owner)
    base = f"{PROJECTS}/{book['id']}/characters"
    mara = await post(
        owner,
        base,
        {
            "name": "Mara",
            "appearance": ["red scarf", "freckles"],
            "palette": ["#b3202a", "#f2d0a4"],
            "locked": True,
        },
    )
    jonah = await post(owner, base, {"name": "Jonah", "appearance": ["grey beard"]})
    side = await upload_design(owner, mara["id"], solid((10, 20, 30)))
    front = await upload_design(owner, mara["id"], solid((40, 50, 60)), primary=True)
    extra = [await upload_design(owner, mara["id"], solid((70, 80, n))) for n in (90, 100, 110)]
    jonah_front = await upload_design(owner, jonah["id"], solid((1, 2, 3)), primary=True)
    await upload_design(owner, jonah["id"], solid((4, 5, 6)))  # not primary: left out
    one = await chapter(owner, book["id"], "One")
    stairs = await scene(owner, one["id"], "Stairs")
    climb = await panel(owner, stairs["id"], "Mara climbs", character_ids=[mara["id"], jonah["id"]])

    body = (await owner.get(f"/api/v1/panels/{climb['id']}/prompt")).json()

    parts = [(p["kind"], p["text"], p["source_id"]) for p in body["parts"]]
    assert parts == [
        ("description", "Mara climbs", climb["id"]),
        (
            "identity",
            "Mara, always drawn the same: red scarf, freckles, colours #b3202a #f2d0a4",
            mara["id"],
        ),
        ("character", "Jonah (grey beard)", jonah["id"]),
    ]
    # Primary first, then the oldest, four at most; the unlocked one's primary only.
    assert body["reference_image_ids"] == [front, side, extra[0], extra[1], jonah_front]

    # Unlocked, Mara is back to her character part and her primary design.
    await owner.patch(f"/api/v1/characters/{mara['id']}", json={"locked": False})
    body = (await owner.get(f"/api/v1/panels/{climb['id']}/prompt")).json()
    assert [(p["kind"], p["text"]) for p in body["parts"]][1] == (
        "character",
        "Mara (red scarf, freckles)",
    )
    assert body["reference_image_ids"] == [front, jonah_front]


async def test_a_locked_character_with_nothing_fixed_is_still_named(users: UserFactory) -> None:
    owner = await users.create()
    book = await project(owner)
    ghost = await post(
        owner, f"{PROJECTS}/{book['id']}/characters", {"name": "Ghost", "locked": True}
    )
    one = await chapter(owner, book["id"], "One")
    stairs = await scene(owner, one["id"], "Stairs")
    seen = await panel(owner, stairs["id"], "A shape", character_ids=[ghost["id"]])

    body = (await owner.get(f"/api/v1/panels/{seen['id']}/prompt")).json()

    assert body["parts"][1]["kind"] == "identity"
    assert body["parts"][1]["text"] == "Ghost, always drawn the same"
    assert body["reference_image_ids"] == []


async def test_drift_warnings_for_locked_characters_over_the_threshold(
    users: UserFactory, platform: Platform
) -> None:
    owner = await users.create()
    book = await project(owner)
    base = f"{PROJECTS}/{book['id']}/characters"
    mara = await post(owner, base, {"name": "Mara", "locked": True})
    jonah = await post(owner, base, {"name": "Jonah"})  # unlocked: never checked
    ivo = await post(owner, base, {"name": "Ivo", "locked": True})  # no primary design
    await upload_design(owner, mara["id"], encoded(character()), primary=True)
    await upload_design(owner, jonah["id"], encoded(character()), primary=True)
    await upload_design(owner, ivo["id"], encoded(character()))
    one = await chapter(owner, book["id"], "One")
    stairs = await scene(owner, one["id"], "Stairs")
    both = await panel(
        owner, stairs["id"], "All three", character_ids=[mara["id"], jonah["id"], ivo["id"]]
    )
    nobody = await panel(owner, stairs["id"], "The sea")
    panel_id = uuid.UUID(both["id"])

    same = await locked_drift_warnings(platform, panel_id, encoded(character()))
    assert same == []
    far = await locked_drift_warnings(platform, panel_id, encoded(unrelated()))
    [warning] = far
    assert warning["code"] == "CHARACTER_DRIFT"
    assert warning["character_id"] == mara["id"] and warning["name"] == "Mara"
    assert warning["drift"] > 0.3
    assert (
        warning["threshold"] == DEFAULT_DRIFT_THRESHOLD == platform.settings.story_drift_threshold
    )
    assert "Mara" in warning["message"]
    # A recoloured jacket drifts a little: flagged at the default, not with a looser threshold.
    recoloured = encoded(character(jacket=GREEN))
    [flagged] = await locked_drift_warnings(platform, panel_id, recoloured)
    assert DEFAULT_DRIFT_THRESHOLD < flagged["drift"] < 0.3
    assert await locked_drift_warnings(platform, panel_id, recoloured, threshold=0.3) == []
    # A panel without locked characters, or gone, has nothing to warn about.
    assert await locked_drift_warnings(platform, uuid.UUID(nobody["id"]), recoloured) == []
    assert await locked_drift_warnings(platform, uuid.uuid4(), recoloured) == []
    with pytest.raises(ValueError, match="threshold"):
        await locked_drift_warnings(platform, panel_id, recoloured, threshold=1.5)
