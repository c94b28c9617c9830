"""POST /api/v1/images/upload through the API: formats told by their bytes, limits enforced while
the body streams in, decompression bombs, metadata stripped, colours, fields and subjects."""

from __future__ import annotations

import asyncio
import io
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PIL import ExifTags, Image, ImageCms

from creativeflow.assets.uploads import remove_abandoned_uploads, upload_directory
from creativeflow.platform import Platform
from tests.assets.images import (
    BLUE,
    FOLDER,
    RED,
    UPLOAD,
    CountingBody,
    Folders,
    declared_png,
    decode,
    encoded,
    gif,
    jpeg,
    oriented_jpeg,
    png,
    truncated_png,
    two_colours,
    webp,
)
from tests.factories import UserFactory

if TYPE_CHECKING:
    from tests.factories import TestUser

MiB = 1024 * 1024


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, object]:
    return dict(getattr(request, "param", {}))


@pytest.fixture
def folders() -> Iterator[Folders]:
    with Folders().registered() as registered:
        yield registered


async def upload(
    user: TestUser,
    data: bytes,
    *,
    filename: str = "picture.bin",
    content_type: str = "application/octet-stream",
    fields: dict[str, str | list[str]] | None = None,
):
    return await user.post(
        UPLOAD, files={"file": (filename, data, content_type)}, data=fields or {}
    )


def leftovers(platform: Platform) -> list[Path]:
    """Files the uploads left in the data directory: temporary parts and stored objects."""
    root = platform.settings.data_dir
    return [
        path
        for directory in (root / "uploads", root / "objects")
        if directory.exists()
        for path in directory.rglob("*")
        if path.is_file()
    ]


@pytest.mark.parametrize(
    ("data", "fmt", "content_type"),
    [
        (jpeg(), "jpeg", "image/jpeg"),
        (png(), "png", "image/png"),
        (webp(), "webp", "image/webp"),
        (webp(lossless=True), "webp", "image/webp"),
    ],
    ids=["jpeg", "png", "webp", "webp-lossless"],
)
async def test_each_accepted_format_is_stored_and_served_in_its_own_format(
    users: UserFactory, platform: Platform, data: bytes, fmt: str, content_type: str
) -> None:
    user = await users.create()

    response = await upload(user, data)

    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/api/v1/images/{body['id']}" == body["url"]
    assert (body["format"], body["content_type"], body["origin"]) == (fmt, content_type, "upload")
    assert (body["width"], body["height"]) == (64, 48)
    assert body["owner_id"] == user.id and body["created_by"] == user.id
    assert body["job_id"] is None and body["source_image_id"] is None
    served = await user.get(body["url"])
    assert served.status_code == 200 and served.headers["content-type"] == content_type
    assert len(served.content) == body["size_bytes"]
    assert served.headers["etag"] == f'"{body["sha256"]}"'
    assert decode(served.content).format == fmt.upper()
    assert not list((platform.settings.data_dir / "uploads").glob("*"))


async def test_the_format_comes_from_the_bytes_not_the_name_or_the_declared_type(
    users: UserFactory,
) -> None:
    user = await users.create()

    response = await upload(user, png(), filename="holiday.jpg", content_type="image/jpeg")

    assert response.status_code == 201, response.text
    assert (response.json()["format"], response.json()["content_type"]) == ("png", "image/png")
    served = await user.get(response.json()["url"])
    assert served.headers["content-type"] == "image/png"
    metadata = (await user.get(response.json()["metadata_url"])).json()
    assert metadata["upload"]["filename"] == "holiday.jpg"
    assert metadata["upload"]["format"] == "png"


@pytest.mark.parametrize(
    ("data", "filename", "content_type"),
    [
        (b"just some notes, not a picture\n" * 4, "notes.png", "image/png"),
        (gif(), "anim.gif", "image/gif"),
        (truncated_png(), "cut.png", "image/png"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 200, "broken.jpg", "image/jpeg"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", "sound.webp", "image/webp"),
        (b"\x89PNG", "short.png", "image/png"),
    ],
    ids=["text", "gif", "truncated-png", "jpeg-marker-only", "riff-wave", "short"],
)
async def test_anything_but_a_readable_jpeg_png_or_webp_is_415(
    users: UserFactory, platform: Platform, data: bytes, filename: str, content_type: str
) -> None:
    user = await users.create()

    response = await upload(user, data, filename=filename, content_type=content_type)

    assert response.status_code == 415, response.text
    problem = response.json()
    assert problem["code"] == "UNSUPPORTED_IMAGE_TYPE"
    assert "JPEG, PNG or WebP" in problem["detail"]
    assert response.headers["content-type"] == "application/problem+json"
    assert (await user.get("/api/v1/images")).json()["total"] == 0
    assert leftovers(platform) == []


@pytest.mark.parametrize("settings_overrides", [{"image_upload_max_bytes": 100_000}], indirect=True)
async def test_the_size_limit_counts_the_file_to_the_byte(users: UserFactory) -> None:
    user = await users.create()
    image = png()
    # Pillow ignores what follows a PNG's end: padding makes a valid file of any size.
    at_limit = image + b"\x00" * (100_000 - len(image))

    accepted = await upload(user, at_limit)
    refused = await upload(user, at_limit + b"\x00")

    assert accepted.status_code == 201, accepted.text
    assert refused.status_code == 413, refused.text
    assert refused.json()["code"] == "UPLOAD_TOO_LARGE"
    assert refused.json()["max_bytes"] == 100_000


async def test_ten_megabytes_and_one_byte_is_413_and_the_rest_is_never_read(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    just_over = CountingBody(file_size=10 * MiB + 1)
    huge = CountingBody(file_size=200 * MiB)

    for body in (just_over, huge):
        response = await user.client.post(
            UPLOAD,
            content=body.stream(),
            headers={**user.headers, "Content-Type": body.content_type},
        )
        assert response.status_code == 413, response.text
        assert response.json()["code"] == "UPLOAD_TOO_LARGE"

    # Read up to the limit and one chunk more, then stopped: 10 MB of 200, not 200.
    assert 10 * MiB < huge.consumed <= 10 * MiB + 2 * huge.chunk_size
    assert huge.consumed < huge.total / 10
    assert leftovers(platform) == []


async def test_a_declared_length_over_the_limit_is_refused_before_reading_anything(
    users: UserFactory,
) -> None:
    user = await users.create()
    body = CountingBody(file_size=50 * MiB)

    response = await user.client.post(
        UPLOAD,
        content=body.stream(),
        headers={
            **user.headers,
            "Content-Type": body.content_type,
            "Content-Length": str(body.total),
        },
    )

    assert response.status_code == 413 and response.json()["code"] == "UPLOAD_TOO_LARGE"
    assert body.consumed == 0


@pytest.mark.parametrize(
    "size",
    [(100_000, 100_000), (8_000, 6_000)],
    ids=["beyond-pillows-own-cap", "beyond-the-setting"],
)
async def test_a_decompression_bomb_is_refused_before_decoding(
    users: UserFactory, platform: Platform, size: tuple[int, int]
) -> None:
    user = await users.create()
    bomb = declared_png(*size)
    assert len(bomb) < 2048

    response = await upload(user, bomb, filename="tiny.png", content_type="image/png")

    assert response.status_code == 413, response.text
    assert response.json()["code"] == "IMAGE_TOO_MANY_PIXELS"
    assert response.json()["max_pixels"] == platform.settings.image_max_pixels
    assert leftovers(platform) == []


async def test_exif_gps_xmp_and_comments_are_gone_and_the_orientation_applied(
    users: UserFactory,
) -> None:
    user = await users.create()
    original = oriented_jpeg()
    source = Image.open(io.BytesIO(original))
    assert source.getexif()[ExifTags.Base.Orientation] == 6 and source.size == (60, 30)

    response = await upload(user, original, filename="IMG_0001.JPG", content_type="image/jpeg")

    assert response.status_code == 201, response.text
    assert (response.json()["width"], response.json()["height"]) == (30, 60)
    stored = (await user.get(response.json()["url"])).content
    for secret in (b"Exif", b"TestCam", b"Spy 3000", b"Jane Doe", b"xmpmeta", b"shot at home"):
        assert secret not in stored, secret
    image = decode(stored)
    assert image.size == (30, 60)
    assert len(image.getexif()) == 0
    assert not {"exif", "xmp", "comment"} & set(image.info)
    # Turned 90 degrees clockwise: the red left half is now the top.
    rgb = image.convert("RGB")
    assert _close(rgb.getpixel((15, 8)), RED) and _close(rgb.getpixel((15, 52)), BLUE)


async def test_the_icc_colour_profile_is_kept(users: UserFactory) -> None:
    user = await users.create()
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encoded(Image.new("RGB", (32, 32), RED), "PNG", icc_profile=profile)

    response = await upload(user, data)

    stored = decode((await user.get(response.json()["url"])).content)
    assert stored.info.get("icc_profile") == profile


async def test_dominant_colours_of_a_two_colour_image(users: UserFactory) -> None:
    user = await users.create()

    response = await upload(user, encoded(two_colours((200, 100), split=0.75), "PNG"))

    colours = response.json()["dominant_colors"]
    assert [colour["hex"] for colour in colours] == ["#dc143c", "#1e3cc8"]
    assert colours[0]["share"] == pytest.approx(0.75, abs=0.02)
    assert colours[1]["share"] == pytest.approx(0.25, abs=0.02)


async def test_transparent_pixels_do_not_count_as_a_colour(users: UserFactory) -> None:
    user = await users.create()
    image = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    image.paste((*BLUE, 255), (0, 0, 50, 100))

    response = await upload(user, encoded(image, "PNG"))

    assert response.json()["dominant_colors"] == [{"hex": "#1e3cc8", "share": 1.0}]


async def test_tags_and_the_subject_are_recorded(users: UserFactory, folders: Folders) -> None:
    owner, stranger = await users.create(), await users.create()
    folder = folders.create(owner.id)

    response = await upload(
        owner,
        png(),
        fields={
            "subject_type": FOLDER,
            "subject_id": str(folder),
            "tags": ["Beach, sunset", "beach", " summer "],
        },
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["tags"] == ["Beach", "sunset", "summer"]
    assert (body["subject_type"], body["subject_id"]) == (FOLDER, str(folder))
    refused = await upload(
        stranger, png(), fields={"subject_type": FOLDER, "subject_id": str(folder)}
    )
    assert refused.status_code == 404 and refused.json()["code"] == "SUBJECT_NOT_FOUND"
    # A panel is a subject too (the story studio's): one that is not there, or not yours, 404.
    no_panel = await upload(
        stranger, png(), fields={"panel_id": "0190c3a2-7d4e-7c3a-9f00-000000000001"}
    )
    assert no_panel.status_code == 404 and no_panel.json()["code"] == "SUBJECT_NOT_FOUND"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"panel_id": "not-a-uuid"}, "panel_id"),
        (
            {"subject_type": "nowhere", "subject_id": "0190c3a2-7d4e-7c3a-9f00-000000000001"},
            "subject_type",
        ),
        ({"subject_type": FOLDER}, "subject_id"),
        ({"album": "summer"}, "album"),
        ({"tags": ["t" * 51]}, "tags"),
        ({"tags": [",".join(f"t{n}" for n in range(21))]}, "tags"),
    ],
    ids=[
        "panel-id",
        "unknown-type",
        "half-subject",
        "unknown",
        "long-tag",
        "many-tags",
    ],
)
async def test_upload_fields_are_validated_by_name(
    users: UserFactory, folders: Folders, fields: dict[str, str | list[str]], field: str
) -> None:
    user = await users.create()

    response = await upload(user, png(), fields=fields)

    assert response.status_code == 422, response.text
    assert field in [error["field"] for error in response.json()["errors"]], response.json()


async def test_a_body_that_is_not_a_multipart_upload_is_refused(users: UserFactory) -> None:
    user = await users.create()

    as_json = await user.post(UPLOAD, json={"file": "aGVsbG8="})
    no_file = await user.post(UPLOAD, files={"picture": ("a.png", png(), "image/png")})
    fields_only = await user.post(
        UPLOAD, data={"tags": "x"}, files={"unused": ("", b"", "text/plain")}
    )
    cut_off = await user.client.post(
        UPLOAD,
        content=b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        + png(),
        headers={**user.headers, "Content-Type": "multipart/form-data; boundary=b"},
    )

    assert as_json.status_code == 415 and as_json.json()["code"] == "MULTIPART_REQUIRED"
    assert no_file.status_code == 422 and no_file.json()["errors"][0]["field"] == "file"
    assert fields_only.status_code == 422
    assert cut_off.status_code == 422 and cut_off.json()["code"] == "MALFORMED_MULTIPART"


async def test_uploads_need_authentication(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.post(UPLOAD, files={"file": ("a.png", png(), "image/png")})

    assert response.status_code == 401


def _close(pixel: object, expected: tuple[int, int, int], tolerance: int = 40) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(int(a) - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


async def test_a_slow_upload_holds_up_no_other_write(users: UserFactory) -> None:
    """The body streams in with no transaction open and without SQLite's write gate: another
    user's write completes while an upload still waits for its bytes."""
    uploader, other = await users.create(), await users.create()
    data = png()
    waiting, release = asyncio.Event(), asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield (
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
            + data[:20]
        )
        waiting.set()
        await release.wait()
        yield data[20:] + b"\r\n--b--\r\n"

    upload_task = asyncio.create_task(
        uploader.client.post(
            UPLOAD,
            content=slow_body(),
            headers={**uploader.headers, "Content-Type": "multipart/form-data; boundary=b"},
        )
    )
    await waiting.wait()

    idea = await asyncio.wait_for(
        other.post(f"/api/v1/{other.id}/ideas", json={"title": "written meanwhile"}), timeout=10
    )

    assert idea.status_code == 201, idea.text
    assert not upload_task.done()
    release.set()
    assert (await upload_task).status_code == 201


def test_spool_files_left_by_a_crash_are_removed_and_fresh_ones_kept(tmp_path: Path) -> None:
    directory = upload_directory(tmp_path)
    directory.mkdir()
    abandoned = directory / "upload-abandoned.part"
    receiving = directory / "upload-receiving.part"
    unrelated = directory / "notes.txt"
    for path in (abandoned, receiving, unrelated):
        path.write_bytes(b"x" * 10)
    two_hours_ago = time.time() - 7200
    os.utime(abandoned, (two_hours_ago, two_hours_ago))
    os.utime(unrelated, (two_hours_ago, two_hours_ago))

    assert remove_abandoned_uploads(directory) == 1
    assert not abandoned.exists()
    assert receiving.exists() and unrelated.exists()
    assert remove_abandoned_uploads(tmp_path / "missing") == 0
