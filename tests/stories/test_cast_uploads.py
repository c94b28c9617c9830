"""Uploading a character's design or a location's reference directly (`.../designs/upload`,
`.../references/upload`): the image becomes the project's and is linked in one go; access is
the link route's; bad input is refused naming the field, leaving no image and no link."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from creativeflow.shared.core.exceptions import ConflictException
from creativeflow.stories.cast.service import CastService
from tests.assets.images import decode, gif, png
from tests.factories import TestUser as SignedInUser
from tests.factories import UserFactory
from tests.stories.helpers import post, project

PROJECTS = "/api/v1/projects"


async def share(owner: SignedInUser, project_id: str, member: SignedInUser, role: str) -> None:
    response = await owner.post(
        f"{PROJECTS}/{project_id}/members", json={"user": member.username, "role": role}
    )
    assert response.status_code == 201, response.text


async def send(
    user: SignedInUser, url: str, data: bytes | None = None, **form: str
) -> httpx.Response:
    files = {"file": ("design.png", data, "image/png")} if data is not None else None
    return await user.post(url, files=files, data=form)


async def project_images(user: SignedInUser, project_id: str) -> int:
    response = await user.get(
        "/api/v1/images", params={"subject_type": "project", "subject_id": project_id}
    )
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


async def test_uploading_designs_links_them_with_one_primary(users: UserFactory) -> None:
    owner, editor, viewer = [await users.create() for _ in range(3)]
    book = await project(owner)
    await share(owner, book["id"], editor, "editor")
    await share(owner, book["id"], viewer, "viewer")
    mara = await post(owner, f"{PROJECTS}/{book['id']}/characters", {"name": "Mara"})
    url = f"/api/v1/characters/{mara['id']}/designs/upload"

    first = await send(owner, url, png(colour=(1, 2, 3)), label="front", primary="true")
    assert first.status_code == 201, first.text
    front = first.headers["Location"].removeprefix("/api/v1/images/")
    body = first.json()
    assert body["id"] == mara["id"] and body["version"] == 2 and first.headers["ETag"] == '"2"'
    assert [(d["image_id"], d["label"], d["primary"]) for d in body["designs"]] == [
        (front, "front", True)
    ]

    # An editor's primary design takes the primary from the first.
    second = await send(editor, url, png(colour=(4, 5, 6)), label="side", primary="true")
    assert second.status_code == 201, second.text
    side = second.headers["Location"].removeprefix("/api/v1/images/")
    primaries = {d["image_id"]: d["primary"] for d in second.json()["designs"]}
    assert primaries == {front: False, side: True}
    third = await send(owner, url, png(colour=(7, 8, 9)))  # no label, not primary
    assert third.status_code == 201, third.text
    back = third.headers["Location"].removeprefix("/api/v1/images/")
    designs = {d["image_id"]: (d["label"], d["primary"]) for d in third.json()["designs"]}
    assert designs == {front: ("front", False), side: ("side", True), back: (None, False)}
    assert (await owner.get(f"/api/v1/characters/{mara['id']}")).json()["designs"] == (
        third.json()["designs"]
    )

    # The image is the project's: another member reads it, re-encoded, with its provenance.
    picture = await viewer.get(f"/api/v1/images/{front}")
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    assert decode(picture.content).getpixel((0, 0)) == (1, 2, 3)
    metadata = (await viewer.get(f"/api/v1/images/{side}/metadata")).json()
    assert metadata["origin"] == "upload" and metadata["upload"]["filename"] == "design.png"
    assert metadata["usage"]["subject"] == {"type": "project", "id": book["id"]}
    assert await project_images(viewer, book["id"]) == 3


async def test_uploading_a_locations_reference(users: UserFactory) -> None:
    owner, viewer = await users.create(), await users.create()
    book = await project(owner)
    await share(owner, book["id"], viewer, "viewer")
    tower = await post(owner, f"{PROJECTS}/{book['id']}/locations", {"name": "Tower"})
    url = f"/api/v1/locations/{tower['id']}/references/upload"

    response = await send(owner, url, png(), label="at dusk", primary="1")
    assert response.status_code == 201, response.text
    image_id = response.headers["Location"].removeprefix("/api/v1/images/")
    assert [(r["image_id"], r["label"], r["primary"]) for r in response.json()["references"]] == [
        (image_id, "at dusk", True)
    ]
    assert (await viewer.get(f"/api/v1/images/{image_id}")).status_code == 200
    refused = await send(viewer, url, png())
    assert refused.status_code == 403 and refused.json()["code"] == "PROJECT_ROLE_INSUFFICIENT"


async def test_only_editors_and_the_owner_upload(users: UserFactory) -> None:
    owner, viewer, stranger = [await users.create() for _ in range(3)]
    book = await project(owner)
    await share(owner, book["id"], viewer, "viewer")
    mara = await post(owner, f"{PROJECTS}/{book['id']}/characters", {"name": "Mara"})
    tower = await post(owner, f"{PROJECTS}/{book['id']}/locations", {"name": "Tower"})
    design = f"/api/v1/characters/{mara['id']}/designs/upload"
    reference = f"/api/v1/locations/{tower['id']}/references/upload"

    as_viewer = await send(viewer, design, png())
    assert as_viewer.status_code == 403 and as_viewer.json()["code"] == "PROJECT_ROLE_INSUFFICIENT"
    as_stranger = await send(stranger, design, png())
    assert as_stranger.status_code == 404 and as_stranger.json()["code"] == "CHARACTER_NOT_FOUND"
    nowhere = await send(stranger, reference, png())
    assert nowhere.status_code == 404 and nowhere.json()["code"] == "LOCATION_NOT_FOUND"
    unknown = await send(owner, f"/api/v1/characters/{book['id']}/designs/upload", png())
    assert unknown.status_code == 404 and unknown.json()["code"] == "CHARACTER_NOT_FOUND"

    assert (await owner.get(f"/api/v1/characters/{mara['id']}")).json()["designs"] == []
    assert await project_images(owner, book["id"]) == 0


async def test_bad_uploads_are_refused_naming_the_field_and_leave_nothing(
    users: UserFactory,
) -> None:
    owner = await users.create()
    book = await project(owner)
    mara = await post(owner, f"{PROJECTS}/{book['id']}/characters", {"name": "Mara"})
    url = f"/api/v1/characters/{mara['id']}/designs/upload"

    not_an_image = await send(owner, url, b"just some text, not a picture")
    assert not_an_image.status_code == 415, not_an_image.text
    assert not_an_image.json()["code"] == "UNSUPPORTED_IMAGE_TYPE"
    assert (await send(owner, url, gif())).status_code == 415
    no_file = await owner.post(
        url,
        content=b'--b\r\nContent-Disposition: form-data; name="label"\r\n\r\nfront\r\n--b--\r\n',
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert no_file.status_code == 422, no_file.text
    assert no_file.json()["errors"][0]["field"] == "file"
    as_json = await owner.post(url, json={"file": "aGVsbG8="})
    assert as_json.status_code == 415 and as_json.json()["code"] == "MULTIPART_REQUIRED"
    for form, field in (
        ({"primary": "maybe"}, "primary"),
        ({"label": "x" * 201}, "label"),
        ({"colour": "red"}, "colour"),
    ):
        refused = await send(owner, url, png(), **form)
        assert refused.status_code == 422, (form, refused.text)
        assert refused.json()["errors"][0]["field"] == field, refused.json()
    twice = await owner.post(
        url,
        files=[("file", ("a.png", png(), "image/png"))],
        data={"label": ["a", "b"]},
    )
    assert twice.status_code == 422 and twice.json()["errors"][0]["field"] == "label"

    character = (await owner.get(f"/api/v1/characters/{mara['id']}")).json()
    assert character["designs"] == [] and character["version"] == 1
    assert await project_images(owner, book["id"]) == 0


async def test_a_failure_after_the_image_is_recorded_keeps_neither_image_nor_link(
    users: UserFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image row and the link are one unit of work: a refusal at the last step (here
    forced on saving the character) rolls back the image row too."""
    owner = await users.create()
    book = await project(owner)
    mara = await post(owner, f"{PROJECTS}/{book['id']}/characters", {"name": "Mara"})

    async def refuse(*_args: Any) -> None:
        raise ConflictException("forced", code="FORCED")

    monkeypatch.setattr(CastService, "_save", refuse)
    failed = await send(owner, f"/api/v1/characters/{mara['id']}/designs/upload", png())
    assert failed.status_code == 409 and failed.json()["code"] == "FORCED"
    monkeypatch.undo()

    assert (await owner.get(f"/api/v1/characters/{mara['id']}")).json()["designs"] == []
    assert await project_images(owner, book["id"]) == 0
