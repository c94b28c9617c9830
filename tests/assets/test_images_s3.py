"""The images API on an S3 bucket (moto's S3 server over HTTP): upload, thumbnail, and deleting
shared bytes, with the bucket inspected from the test side."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from creativeflow.assets.storage import S3Storage
from creativeflow.platform import Platform
from tests.assets.images import UPLOAD, decode, noise_png
from tests.factories import UserFactory

if TYPE_CHECKING:
    from tests.assets.s3_server import S3Server

pytest_plugins = ["tests.assets.s3_server"]

PREFIX = "images/"


@pytest.fixture
def settings_overrides(s3_server: S3Server, s3_bucket: str) -> dict[str, object]:
    return {
        "s3_bucket": s3_bucket,
        "s3_endpoint_url": s3_server.endpoint_url,
        "s3_region": s3_server.region,
        "s3_access_key_id": s3_server.access_key_id,
        "s3_secret_access_key": s3_server.secret_access_key,
        "s3_prefix": PREFIX,
    }


def bucket_keys(s3_server: S3Server, bucket: str) -> dict[str, str]:
    """Object name -> content type, of everything in the bucket."""
    client = s3_server.client()
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        item["Key"]: client.head_object(Bucket=bucket, Key=item["Key"])["ContentType"]
        for item in listed
    }


async def test_upload_thumbnail_and_delete_on_an_s3_bucket(
    users: UserFactory, platform: Platform, s3_server: S3Server, s3_bucket: str
) -> None:
    assert isinstance(platform.storage, S3Storage)
    user = await users.create()
    data = noise_png((600, 300))

    created = [
        await user.post(UPLOAD, files={"file": ("a.png", data, "image/png")}) for _ in range(2)
    ]

    assert [response.status_code for response in created] == [201, 201]
    first, second = (response.json() for response in created)
    assert bucket_keys(s3_server, s3_bucket) == {f"{PREFIX}{first['sha256']}": "image/png"}
    served = await user.get(first["url"])
    assert served.status_code == 200 and decode(served.content).size == (600, 300)

    thumbnail = await user.get(first["thumbnail_url"])
    assert thumbnail.status_code == 200 and decode(thumbnail.content).size == (256, 128)
    thumbnail_key = thumbnail.headers["etag"].strip('"')
    assert bucket_keys(s3_server, s3_bucket) == {
        f"{PREFIX}{first['sha256']}": "image/png",
        f"{PREFIX}{thumbnail_key}": "image/webp",
    }
    cached = await user.client.get(
        second["thumbnail_url"],
        headers={**user.headers, "If-None-Match": thumbnail.headers["etag"]},
    )
    assert cached.status_code == 304

    assert (await user.delete(first["url"])).status_code == 204
    assert len(bucket_keys(s3_server, s3_bucket)) == 2
    assert (await user.get(second["url"])).content == served.content
    assert (await user.delete(second["url"])).status_code == 204
    assert bucket_keys(s3_server, s3_bucket) == {}
