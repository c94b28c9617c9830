"""The images API after an upload: thumbnails, metadata, deleting de-duplicated bytes, the list
with its filters, and who may see or change what."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from creativeflow.assets import imaging
from creativeflow.assets.storage import LocalStorage, StorageUnavailable
from creativeflow.platform import Platform
from tests.assets.images import FOLDER, UPLOAD, Folders, decode, encoded, noise_png, png, solid
from tests.factories import UserFactory

if TYPE_CHECKING:
    from tests.factories import TestUser


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, object]:
    return dict(getattr(request, "param", {}))


@pytest.fixture
def folders() -> Iterator[Folders]:
    with Folders().registered() as registered:
        yield registered


async def uploaded(user: TestUser, data: bytes, **fields: Any) -> dict[str, Any]:
    response = await user.post(
        UPLOAD, files={"file": ("image", data, "application/octet-stream")}, data=fields
    )
    assert response.status_code == 201, response.text
    return response.json()


def local_storage(platform: Platform) -> LocalStorage:
    assert isinstance(platform.storage, LocalStorage)
    return platform.storage


# -- thumbnails ----------------------------------------------------------------------------------


async def test_a_thumbnail_is_a_256px_webp_made_once_with_its_own_etag(
    users: UserFactory, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await users.create()
    image = await uploaded(user, encoded(solid((1000, 500)), "JPEG"))
    made: list[int] = []
    make = imaging.make_thumbnail

    def counted(data: bytes, image_format: str, *, max_pixels: int) -> bytes:
        made.append(len(data))
        return make(data, image_format, max_pixels=max_pixels)

    monkeypatch.setattr(imaging, "make_thumbnail", counted)

    first = await user.get(image["thumbnail_url"])
    second = await user.get(image["thumbnail_url"])

    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "image/webp"
    thumbnail = decode(first.content)
    assert (thumbnail.format, thumbnail.size) == ("WEBP", (256, 128))
    etag = first.headers["etag"]
    assert etag != f'"{image["sha256"]}"' and first.headers["cache-control"].startswith("private")
    assert second.content == first.content and second.headers["etag"] == etag
    assert len(made) == 1
    key = etag.strip('"')
    assert local_storage(platform).path_for(key).is_file()
    cached = await user.client.get(
        image["thumbnail_url"], headers={**user.headers, "If-None-Match": etag}
    )
    assert cached.status_code == 304 and cached.content == b""
    assert len(made) == 1


async def test_small_images_keep_their_size_and_identical_bytes_share_one_thumbnail(
    users: UserFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await users.create()
    data = png((100, 40))
    first, second = await uploaded(user, data), await uploaded(user, data)
    made: list[int] = []
    make = imaging.make_thumbnail
    monkeypatch.setattr(
        imaging,
        "make_thumbnail",
        lambda data, fmt, *, max_pixels: made.append(1) or make(data, fmt, max_pixels=max_pixels),
    )

    one = await user.get(first["thumbnail_url"])
    other = await user.get(second["thumbnail_url"])

    assert decode(one.content).size == (100, 40)
    assert other.headers["etag"] == one.headers["etag"]
    assert made == [1]


async def test_a_thumbnail_lost_from_storage_is_made_again(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    image = await uploaded(user, png((300, 300)))
    first = await user.get(image["thumbnail_url"])
    local_storage(platform).path_for(first.headers["etag"].strip('"')).unlink()

    again = await user.get(image["thumbnail_url"])

    assert again.status_code == 200 and again.content == first.content


# -- metadata --------------------------------------------------------------------------------


async def test_an_uploads_metadata_has_every_field_and_where_it_is_used(
    users: UserFactory, folders: Folders
) -> None:
    user = await users.create()
    folder = folders.create(user.id)
    data = png()
    image = await uploaded(user, data, subject_type=FOLDER, subject_id=str(folder), tags="cover")

    response = await user.get(image["metadata_url"])

    assert response.status_code == 200, response.text
    metadata = response.json()
    assert {key: metadata[key] for key in image} == image
    assert metadata["provenance"] is None
    assert metadata["upload"]["size_bytes"] == len(data)
    assert len(metadata["upload"]["sha256"]) == 64
    assert metadata["usage"] == {
        "subject": {"type": FOLDER, "id": str(folder)},
        "derived_images": {"ids": [], "total": 0},
        "used_by": [],
    }


# -- deleting ----------------------------------------------------------------------------------


async def test_identical_uploads_share_bytes_until_the_last_one_is_deleted(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    data = noise_png((40, 40))
    first, second = await uploaded(user, data), await uploaded(user, data)
    assert first["id"] != second["id"] and first["sha256"] == second["sha256"]
    thumbnail_key = (await user.get(first["thumbnail_url"])).headers["etag"].strip('"')
    storage = local_storage(platform)
    stored, thumbnail = storage.path_for(first["sha256"]), storage.path_for(thumbnail_key)

    assert (await user.delete(first["url"])).status_code == 204
    assert (await user.get(first["url"])).status_code == 404
    kept = await user.get(second["url"])
    assert kept.status_code == 200 and stored.is_file() and thumbnail.is_file()
    assert (await user.get(second["thumbnail_url"])).headers["etag"] == f'"{thumbnail_key}"'

    assert (await user.delete(second["url"])).status_code == 204
    assert not stored.exists() and not thumbnail.exists()
    assert (await user.get("/api/v1/images")).json()["total"] == 0


async def test_deleting_an_image_whose_bytes_are_already_gone_still_works(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    image = await uploaded(user, png())
    local_storage(platform).path_for(image["sha256"]).unlink()

    assert (await user.get(image["url"])).json()["code"] == "IMAGE_BYTES_MISSING"
    assert (await user.delete(image["url"])).status_code == 204
    assert (await user.get(image["metadata_url"])).status_code == 404


class RefusingDeletes(LocalStorage):
    """A local store whose deletes fail as an unreachable bucket's would."""

    async def delete(self, key: str) -> None:
        raise StorageUnavailable(f"object storage delete of {key} failed: connection refused")


async def test_a_failed_storage_delete_leaves_an_unused_object_never_a_row_without_bytes(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    image = await uploaded(user, png())
    platform.storage = RefusingDeletes(local_storage(platform).root)

    response = await user.delete(image["url"])

    assert response.status_code == 204
    assert (await user.get(image["url"])).status_code == 404
    assert platform.storage.path_for(image["sha256"]).is_file()


# -- the list ------------------------------------------------------------------------------------


async def test_the_list_filters_by_tag_origin_subject_and_time_and_pages(
    users: UserFactory, folders: Folders
) -> None:
    user, other = await users.create(), await users.create()
    folder = folders.create(user.id)
    beach = await uploaded(user, png(colour=(1, 2, 3)), tags="Beach,sunset")
    city = await uploaded(user, png(colour=(4, 5, 6)), tags="city")
    filed = await uploaded(
        user, noise_png((30, 30)), tags="beach", subject_type=FOLDER, subject_id=str(folder)
    )
    await uploaded(other, png(colour=(7, 8, 9)), tags="beach")

    async def ids(**params: Any) -> list[str]:
        response = await user.get("/api/v1/images", params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await ids() == [filed["id"], city["id"], beach["id"]]
    assert await ids(tag="BEACH") == [filed["id"], beach["id"]]
    assert await ids(tag=["beach", "sunset"]) == [beach["id"]]
    assert await ids(origin="upload") == [filed["id"], city["id"], beach["id"]]
    assert await ids(origin="generated") == []
    assert await ids(subject_type=FOLDER, subject_id=str(folder)) == [filed["id"]]
    assert (await ids(sort="size_bytes", order="desc"))[0] == filed["id"]
    assert await ids(order="asc") == [beach["id"], city["id"], filed["id"]]
    created = datetime.fromisoformat(city["created_at"])
    assert await ids(created_after=city["created_at"]) == [filed["id"], city["id"]]
    assert await ids(created_before=city["created_at"]) == [beach["id"]]
    assert await ids(created_after=(created + timedelta(days=1)).isoformat()) == []

    page = (await user.get("/api/v1/images", params={"limit": 2, "offset": 1})).json()
    assert [item["id"] for item in page["items"]] == [city["id"], beach["id"]]
    assert (page["total"], page["limit"], page["offset"], page["has_more"]) == (3, 2, 1, False)
    first = (await user.get("/api/v1/images", params={"limit": 2})).json()
    assert first["has_more"] is True

    naive = await user.get("/api/v1/images", params={"created_after": "2026-01-01T00:00:00"})
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "created_after"
    bad = await user.get("/api/v1/images", params={"origin": "scanned"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "origin"
    assert datetime.now(UTC) > created


# -- who may see and change what -------------------------------------------------------------


async def test_another_user_gets_404_on_every_image_route(users: UserFactory) -> None:
    owner, stranger = await users.create(), await users.create()
    image = await uploaded(owner, png())
    base = image["url"]

    responses = [
        await stranger.get(base),
        await stranger.get(f"{base}/thumbnail"),
        await stranger.get(f"{base}/metadata"),
        await stranger.delete(base),
        await stranger.post(f"{base}/variations", json={"count": 1}),
        await stranger.post(f"{base}/style-transfer", json={"style": "noir"}),
        await stranger.get(f"/api/v1/images/{uuid.uuid4()}"),
    ]

    assert [r.status_code for r in responses] == [404] * len(responses)
    assert {r.json()["code"] for r in responses} == {"IMAGE_NOT_FOUND"}
    assert (await stranger.get("/api/v1/images")).json()["total"] == 0
    assert (await owner.get(base)).status_code == 200


async def test_readers_of_a_subject_see_its_images_and_only_writers_change_them(
    users: UserFactory, folders: Folders
) -> None:
    owner, reader, writer = await users.create(), await users.create(), await users.create()
    folder = folders.create(owner.id)
    folders.grant(folder, reader.id, "read")
    folders.grant(folder, writer.id, "write")
    image = await uploaded(owner, png(), subject_type=FOLDER, subject_id=str(folder))
    private = await uploaded(owner, png(colour=(9, 9, 9)))

    assert (await reader.get(image["url"])).status_code == 200
    assert (await reader.get(image["thumbnail_url"])).status_code == 200
    assert (await reader.get(image["metadata_url"])).status_code == 200
    listed = (await reader.get("/api/v1/images")).json()
    assert [item["id"] for item in listed["items"]] == [image["id"]]
    assert (await reader.get(private["url"])).status_code == 404

    refused = await reader.delete(image["url"])
    assert refused.status_code == 403 and refused.json()["code"] == "IMAGE_NOT_CHANGEABLE"
    variations = await reader.post(f"{image['url']}/variations", json={})
    assert variations.status_code == 403
    assert (await writer.delete(image["url"])).status_code == 204
    assert (await owner.get(image["url"])).status_code == 404


# -- storage outages ---------------------------------------------------------------------------


def _dead_port() -> int:
    with socket.socket() as probe:  # nothing listens on it once the probe closes
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {
            "s3_bucket": "nowhere",
            "s3_endpoint_url": f"http://127.0.0.1:{_dead_port()}",
            "s3_access_key_id": "key",
            "s3_secret_access_key": "secret",
        }
    ],
    indirect=True,
)
async def test_an_unreachable_store_is_a_503_problem(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()

    response = await user.post(UPLOAD, files={"file": ("a.png", png(), "image/png")})

    assert response.status_code == 503, response.text
    assert response.json()["code"] == "STORAGE_UNAVAILABLE"
    assert response.headers["retry-after"] == "5"
    assert (await user.get("/api/v1/images")).json()["total"] == 0
