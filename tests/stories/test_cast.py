"""Characters and locations through the API: names unique per project, palettes, reference
images with one primary, panels with their cast, appearances in reading order, access and
stale versions, and what deleting one does to its panels."""

from __future__ import annotations

from typing import Any

from tests.assets.images import UPLOAD, png
from tests.factories import TestUser as SignedInUser
from tests.factories import UserFactory
from tests.stories.helpers import chapter, panel, post, project, scene


async def character(
    user: SignedInUser, project_id: str, name: str, **fields: Any
) -> dict[str, Any]:
    return await post(user, f"/api/v1/projects/{project_id}/characters", {"name": name, **fields})


async def location(user: SignedInUser, project_id: str, name: str, **fields: Any) -> dict[str, Any]:
    return await post(user, f"/api/v1/projects/{project_id}/locations", {"name": name, **fields})


async def uploaded(user: SignedInUser, colour: tuple[int, int, int]) -> dict[str, Any]:
    response = await user.post(
        UPLOAD, files={"file": ("image", png(colour=colour), "application/octet-stream")}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_characters_crud_names_and_palettes(users: UserFactory) -> None:
    user = await users.create()
    book = await project(user)
    mara = await character(
        user,
        book["id"],
        "Mara",
        role="protagonist",
        appearance=["red scarf", "scar over left eye"],
        palette=["#AA0000", "#112233"],
    )
    assert mara["role"] == "protagonist" and mara["palette"] == ["#aa0000", "#112233"]
    assert mara["appearance"] == ["red scarf", "scar over left eye"] and mara["designs"] == []
    await character(user, book["id"], "Jonah")
    url = f"/api/v1/projects/{book['id']}/characters"
    taken = await user.post(url, json={"name": "  mARA "})
    assert taken.status_code == 409 and taken.json()["code"] == "CHARACTER_NAME_TAKEN"
    for bad in (["red"], ["#12345"], ["#gggggg"]):
        refused = await user.post(url, json={"name": "Zed", "palette": bad})
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"].startswith(
            "palette"
        )
    assert (await user.post(url, json={"name": "Zed", "role": "hero"})).status_code == 422

    listed = (await user.get(url)).json()
    assert [c["name"] for c in listed["items"]] == ["Jonah", "Mara"] and listed["total"] == 2
    found = (await user.get(url, params={"search": "ar"})).json()
    assert [c["name"] for c in found["items"]] == ["Mara"]
    page = (await user.get(url, params={"limit": 1, "skip": 1})).json()
    assert [c["name"] for c in page["items"]] == ["Mara"] and page["has_more"] is False

    path = f"/api/v1/characters/{mara['id']}"
    patched = await user.patch(path, json={"personality": "stubborn"}, headers={"If-Match": '"1"'})
    assert patched.status_code == 200 and patched.json()["version"] == 2
    assert patched.json()["palette"] == ["#aa0000", "#112233"]
    clash = await user.patch(path, json={"name": "jonah"})
    assert clash.status_code == 409 and clash.json()["code"] == "CHARACTER_NAME_TAKEN"
    renamed = await user.patch(path, json={"name": "MARA"})  # its own name, another case
    assert renamed.status_code == 200 and renamed.json()["name"] == "MARA"
    replaced = await user.put(path, json={"name": "Mara", "version": 3})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["appearance"] == [] and replaced.json()["role"] == "supporting"
    stale = await user.put(path, json={"name": "Mara", "version": 1})
    assert stale.status_code == 409 and stale.json()["code"] == "VERSION_CONFLICT"
    nulled = await user.patch(path, json={"name": None})
    assert nulled.status_code == 422 and nulled.json()["errors"][0]["field"] == "name"
    assert (await user.delete(path, headers={"If-Match": '"1"'})).status_code == 409
    assert (await user.delete(path)).status_code == 204
    assert (await user.get(path)).status_code == 404


async def test_locations_crud(users: UserFactory) -> None:
    user = await users.create()
    book = await project(user)
    tower = await location(
        user, book["id"], "Lighthouse", setting="interior", time_period="1890s", palette=["#ffffff"]
    )
    assert tower["setting"] == "interior" and tower["references"] == []
    url = f"/api/v1/projects/{book['id']}/locations"
    taken = await user.post(url, json={"name": "LIGHTHOUSE"})
    assert taken.status_code == 409 and taken.json()["code"] == "LOCATION_NAME_TAKEN"
    assert (await user.post(url, json={"name": "x", "setting": "space"})).status_code == 422
    other = await project(user, "Other")
    await location(user, other["id"], "Lighthouse")  # names are unique per project only
    path = f"/api/v1/locations/{tower['id']}"
    patched = await user.patch(path, json={"setting": "exterior", "version": 1})
    assert patched.status_code == 200 and patched.json()["setting"] == "exterior"
    assert (await user.patch(path, json={"palette": ["blue"]})).status_code == 422
    assert (await user.get(url, params={"search": "light"})).json()["total"] == 1


async def test_designs_link_images_with_one_primary(users: UserFactory) -> None:
    user, other = await users.create(), await users.create()
    book = await project(user)
    mara = await character(user, book["id"], "Mara")
    front, side = await uploaded(user, (1, 2, 3)), await uploaded(user, (4, 5, 6))
    foreign = await uploaded(other, (7, 8, 9))
    url = f"/api/v1/characters/{mara['id']}/designs"

    first = await user.post(url, json={"image_id": front["id"], "label": "front", "primary": True})
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 2
    second = await user.post(url, json={"image_id": side["id"], "label": "side", "primary": True})
    designs = second.json()["designs"]
    assert [(d["image_id"], d["primary"]) for d in designs] == [
        (side["id"], True),
        (front["id"], False),
    ]
    back = await user.post(url, json={"image_id": front["id"], "label": "front", "primary": True})
    assert [(d["label"], d["primary"]) for d in back.json()["designs"]] == [
        ("front", True),
        ("side", False),
    ]
    refused = await user.post(url, json={"image_id": foreign["id"]})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "image_id"
    unknown = await user.post(url, json={"image_id": book["id"]})
    assert unknown.status_code == 422

    unlinked = await user.delete(f"{url}/{front['id']}")
    assert unlinked.status_code == 200
    assert [d["image_id"] for d in unlinked.json()["designs"]] == [side["id"]]
    assert (await user.delete(f"{url}/{front['id']}")).status_code == 404
    shown = (await user.get(f"/api/v1/characters/{mara['id']}")).json()
    assert [d["label"] for d in shown["designs"]] == ["side"]

    tower = await location(user, book["id"], "Lighthouse")
    refs = f"/api/v1/locations/{tower['id']}/references"
    linked = await user.post(refs, json={"image_id": front["id"], "primary": True})
    assert linked.status_code == 200 and linked.json()["references"][0]["primary"] is True
    assert (await user.post(refs, json={"image_id": foreign["id"]})).status_code == 422
    # Deleting the image removes the link.
    assert (await user.delete(f"/api/v1/images/{front['id']}")).status_code == 204
    assert (await user.get(f"/api/v1/locations/{tower['id']}")).json()["references"] == []


async def test_panels_cast_appearances_and_deletes(users: UserFactory) -> None:
    user = await users.create()
    book = await project(user)
    mara = await character(user, book["id"], "Mara")
    jonah = await character(user, book["id"], "Jonah")
    tower = await location(user, book["id"], "Lighthouse")
    other = await project(user, "Other")
    stranger_char = await character(user, other["id"], "Zed")
    stranger_place = await location(user, other["id"], "Moon")

    one, two = await chapter(user, book["id"], "One"), await chapter(user, book["id"], "Two")
    s1, s2 = await scene(user, one["id"], "Stairs"), await scene(user, one["id"], "Roof")
    s3 = await scene(user, two["id"], "Sea")
    p3 = await panel(user, s3["id"], "late", character_ids=[mara["id"]])
    p2 = await panel(user, s2["id"], "roof", character_ids=[mara["id"]], location_id=tower["id"])
    p1 = await panel(
        user, s1["id"], "stairs", character_ids=[jonah["id"], mara["id"]], location_id=tower["id"]
    )
    assert p1["character_ids"] == [jonah["id"], mara["id"]] and p1["location_id"] == tower["id"]
    url = f"/api/v1/scenes/{s1['id']}/panels"
    for payload, field in (
        ({"character_ids": [stranger_char["id"]]}, "character_ids"),
        ({"character_ids": [mara["id"], mara["id"]]}, "character_ids"),
        ({"location_id": stranger_place["id"]}, "location_id"),
    ):
        refused = await user.post(url, json=payload)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == field

    patched = await user.patch(
        f"/api/v1/panels/{p3['id']}", json={"character_ids": [jonah["id"], mara["id"]]}
    )
    assert patched.status_code == 200 and patched.json()["version"] == 2
    assert patched.json()["character_ids"] == [jonah["id"], mara["id"]]
    bad_patch = await user.patch(
        f"/api/v1/panels/{p3['id']}", json={"character_ids": [stranger_char["id"]]}
    )
    assert bad_patch.status_code == 422
    listed = (await user.get(url)).json()["items"]
    assert listed[0]["character_ids"] == [jonah["id"], mara["id"]]

    appearances = (await user.get(f"/api/v1/characters/{mara['id']}/appearances")).json()
    assert [a["panel_id"] for a in appearances["items"]] == [p1["id"], p2["id"], p3["id"]]
    assert appearances["items"][2] == {
        "panel_id": p3["id"],
        "scene_id": s3["id"],
        "chapter_id": two["id"],
        "chapter_position": 2,
        "scene_position": 1,
        "panel_position": 1,
        "description": "late",
    }
    paged = (
        await user.get(
            f"/api/v1/characters/{mara['id']}/appearances", params={"limit": 1, "skip": 1}
        )
    ).json()
    assert [a["panel_id"] for a in paged["items"]] == [p2["id"]] and paged["total"] == 3
    usage = (await user.get(f"/api/v1/locations/{tower['id']}/usage")).json()
    assert [u["panel_id"] for u in usage["items"]] == [p1["id"], p2["id"]]

    assert (await user.delete(f"/api/v1/characters/{jonah['id']}")).status_code == 204
    assert (await user.get(f"/api/v1/panels/{p1['id']}")).json()["character_ids"] == [mara["id"]]
    assert (await user.delete(f"/api/v1/locations/{tower['id']}")).status_code == 204
    assert (await user.get(f"/api/v1/panels/{p2['id']}")).json()["location_id"] is None


async def test_access_follows_the_project(users: UserFactory) -> None:
    owner, viewer, stranger = await users.create(), await users.create(), await users.create()
    book = await project(owner)
    await owner.post(
        f"/api/v1/projects/{book['id']}/members", json={"user": viewer.username, "role": "viewer"}
    )
    mara = await character(owner, book["id"], "Mara")
    tower = await location(owner, book["id"], "Lighthouse")
    image = await uploaded(owner, (1, 1, 1))
    for path, code, links in (
        (f"/api/v1/characters/{mara['id']}", "CHARACTER_NOT_FOUND", "designs"),
        (f"/api/v1/locations/{tower['id']}", "LOCATION_NOT_FOUND", "references"),
    ):
        assert (await viewer.get(path)).status_code == 200
        for method in ("get", "patch", "delete"):
            kwargs = {"json": {}} if method == "patch" else {}
            response = await getattr(stranger, method)(path, **kwargs)
            assert response.status_code == 404 and response.json()["code"] == code
        assert (await viewer.patch(path, json={"description": "x"})).status_code == 403
        assert (await viewer.delete(path)).status_code == 403
        linked = await viewer.post(f"{path}/{links}", json={"image_id": image["id"]})
        assert linked.status_code == 403
        assert (
            await stranger.post(f"{path}/{links}", json={"image_id": image["id"]})
        ).status_code == 404
    for kind in ("characters", "locations"):
        url = f"/api/v1/projects/{book['id']}/{kind}"
        assert (await stranger.get(url)).status_code == 404
        assert (await viewer.get(url)).status_code == 200
        assert (await viewer.post(url, json={"name": "New"})).status_code == 403
    assert (await stranger.get(f"/api/v1/characters/{mara['id']}/appearances")).status_code == 404
    assert (await viewer.get(f"/api/v1/locations/{tower['id']}/usage")).status_code == 200
    assert (await owner.delete(f"/api/v1/projects/{book['id']}")).status_code == 204
    assert (await owner.get(f"/api/v1/characters/{mara['id']}")).status_code == 404
