"""Object storage: the same behaviour from the local directory and from an S3 bucket (moto's
S3 server over HTTP), plus what only one backend promises (file permissions, key paths, the
bucket layout)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from creativeflow.assets.storage import (
    LocalStorage,
    ObjectNotFound,
    ObjectStorage,
    S3Storage,
    StorageUnavailable,
    build_storage,
    content_key,
)
from creativeflow.settings import ConfigurationError, Environment, Settings

if TYPE_CHECKING:
    from tests.assets.s3_server import S3Server

# A plugin, not an import: pytest then rewrites its asserts and runs one server per session.
pytest_plugins = ["tests.assets.s3_server"]

PREFIX = "media/"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
SECRET_KEY = "k" * 40
INVALID_KEYS = [
    "../etc/passwd",
    "../../" + "a" * 58,
    "A" * 64,
    "a" * 63,
    "a" * 65,
    "g" * 64,
    "ab/cd/" + "a" * 58,
    "a" * 64 + "\n",
    "",
]


def s3_storage(server: S3Server, bucket: str, prefix: str = PREFIX) -> S3Storage:
    return S3Storage(
        bucket=bucket,
        endpoint_url=server.endpoint_url,
        region=server.region,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
        prefix=prefix,
    )


@pytest.fixture(params=["local", "s3"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStorage]:
    backend: ObjectStorage
    if request.param == "local":
        backend = LocalStorage(tmp_path / "objects")
    else:
        backend = s3_storage(
            request.getfixturevalue("s3_server"), request.getfixturevalue("s3_bucket")
        )
    yield backend
    await backend.aclose()


def stored_keys(storage: ObjectStorage, server: S3Server | None = None) -> list[str]:
    """What the backend really holds, looked at from outside the code under test."""
    if isinstance(storage, LocalStorage):
        if not storage.root.exists():
            return []
        return sorted(str(path.relative_to(storage.root)) for path in storage.root.rglob("*"))
    assert isinstance(storage, S3Storage) and server is not None
    listing = server.client().list_objects_v2(Bucket=storage.bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def expected_entries(storage: ObjectStorage, *keys: str) -> list[str]:
    """The entries `stored_keys` shows when exactly `keys` are stored."""
    if isinstance(storage, LocalStorage):
        entries = set()
        for key in keys:
            entries |= {key[:2], f"{key[:2]}/{key[2:4]}", f"{key[:2]}/{key[2:4]}/{key}"}
        return sorted(entries)
    return sorted(f"{PREFIX}{key}" for key in keys)


def server_of(request: pytest.FixtureRequest, storage: ObjectStorage) -> S3Server | None:
    return request.getfixturevalue("s3_server") if isinstance(storage, S3Storage) else None


# -- both backends -------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [PNG, b"", b"plain text"], ids=["png", "empty", "text"])
async def test_put_then_get_returns_the_bytes(storage: ObjectStorage, data: bytes) -> None:
    stored = await storage.put(data, content_type="image/png")

    digest = hashlib.sha256(data).hexdigest()
    assert stored.key == stored.sha256 == digest == content_key(data)
    assert stored.size == len(data)
    assert stored.created is True
    assert await storage.get(stored.key) == data
    assert await storage.exists(stored.key) is True


async def test_identical_bytes_are_stored_once(
    storage: ObjectStorage, request: pytest.FixtureRequest
) -> None:
    first = await storage.put(PNG, content_type="image/png")
    second = await storage.put(PNG, content_type="image/png")

    assert second.key == first.key
    assert (first.created, second.created) == (True, False)
    assert stored_keys(storage, server_of(request, storage)) == expected_entries(storage, first.key)


async def test_different_bytes_get_different_keys(
    storage: ObjectStorage, request: pytest.FixtureRequest
) -> None:
    one = await storage.put(b"one", content_type="text/plain")
    two = await storage.put(b"two", content_type="text/plain")

    assert one.key != two.key
    assert await storage.get(one.key) == b"one"
    assert await storage.get(two.key) == b"two"
    assert stored_keys(storage, server_of(request, storage)) == expected_entries(
        storage, one.key, two.key
    )


async def test_delete_removes_the_object_and_may_be_repeated(storage: ObjectStorage) -> None:
    kept = await storage.put(b"kept", content_type="text/plain")
    gone = await storage.put(b"gone", content_type="text/plain")

    await storage.delete(gone.key)

    assert await storage.exists(gone.key) is False
    with pytest.raises(ObjectNotFound):
        await storage.get(gone.key)
    await storage.delete(gone.key)  # already absent: no error
    await storage.delete(content_key(b"never stored"))
    assert await storage.get(kept.key) == b"kept"


async def test_deleted_bytes_can_be_stored_again(storage: ObjectStorage) -> None:
    stored = await storage.put(PNG, content_type="image/png")
    await storage.delete(stored.key)

    again = await storage.put(PNG, content_type="image/png")

    assert again.created is True
    assert await storage.get(again.key) == PNG


async def test_a_key_never_stored_is_not_found(storage: ObjectStorage) -> None:
    key = content_key(b"never stored")

    assert await storage.exists(key) is False
    with pytest.raises(ObjectNotFound):
        await storage.get(key)


@pytest.mark.parametrize("key", INVALID_KEYS)
async def test_keys_that_are_not_content_addresses_are_refused(
    storage: ObjectStorage, key: str
) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        await storage.get(key)
    with pytest.raises(ValueError, match="SHA-256"):
        await storage.exists(key)
    with pytest.raises(ValueError, match="SHA-256"):
        await storage.delete(key)


async def test_concurrent_puts_of_the_same_bytes_make_one_object(
    storage: ObjectStorage, request: pytest.FixtureRequest
) -> None:
    results = await asyncio.gather(*(storage.put(PNG, content_type="image/png") for _ in range(10)))

    assert {result.key for result in results} == {content_key(PNG)}
    assert sum(result.created for result in results) == 1
    assert stored_keys(storage, server_of(request, storage)) == expected_entries(
        storage, content_key(PNG)
    )
    assert await storage.get(content_key(PNG)) == PNG


# -- local directory -----------------------------------------------------------------------------


async def test_local_files_sit_in_fan_out_directories(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "objects")

    stored = await storage.put(PNG, content_type="image/png")

    path = tmp_path / "objects" / stored.key[:2] / stored.key[2:4] / stored.key
    assert path.read_bytes() == PNG
    assert storage.path_for(stored.key) == path


async def test_local_files_and_directories_are_private(tmp_path: Path) -> None:
    root = tmp_path / "data" / "objects"
    storage = LocalStorage(root)

    stored = await storage.put(PNG, content_type="image/png")

    path = storage.path_for(stored.key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in (root, path.parent.parent, path.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory


async def test_local_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "objects")
    blobs = [f"image {number}".encode() for number in range(5)]

    await asyncio.gather(
        *(storage.put(blob, content_type="image/png") for blob in blobs * 4),
    )

    files = [path for path in (tmp_path / "objects").rglob("*") if path.is_file()]
    assert sorted(path.name for path in files) == sorted(content_key(blob) for blob in blobs)
    assert all(re.fullmatch(r"[0-9a-f]{64}", path.name) for path in files)


async def test_local_keys_cannot_reach_outside_the_root(tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.write_bytes(b"do not serve")
    storage = LocalStorage(tmp_path / "objects")

    for key in ("../secret", "../" * 3 + "secret", str(outside)):
        with pytest.raises(ValueError):
            await storage.get(key)
        with pytest.raises(ValueError):
            await storage.delete(key)
        with pytest.raises(ValueError):
            storage.path_for(key)
    assert outside.read_bytes() == b"do not serve"


# -- S3 bucket -----------------------------------------------------------------------------------


async def test_s3_objects_land_under_the_prefix_with_their_content_type(
    s3_server: S3Server, s3_bucket: str
) -> None:
    storage = s3_storage(s3_server, s3_bucket)

    stored = await storage.put(PNG, content_type="image/png")

    head = s3_server.client().head_object(Bucket=s3_bucket, Key=f"{PREFIX}{stored.key}")
    assert head["ContentType"] == "image/png"
    assert head["ContentLength"] == len(PNG)
    body = s3_server.client().get_object(Bucket=s3_bucket, Key=f"{PREFIX}{stored.key}")["Body"]
    assert body.read() == PNG


async def test_s3_recognises_an_object_already_in_the_bucket(
    s3_server: S3Server, s3_bucket: str
) -> None:
    # Written by another process (or an earlier deployment): the put must not upload again.
    key = content_key(PNG)
    s3_server.client().put_object(
        Bucket=s3_bucket, Key=f"{PREFIX}{key}", Body=PNG, ContentType="image/webp"
    )
    storage = s3_storage(s3_server, s3_bucket)

    stored = await storage.put(PNG, content_type="image/png")

    assert stored.created is False
    head = s3_server.client().head_object(Bucket=s3_bucket, Key=f"{PREFIX}{key}")
    assert head["ContentType"] == "image/webp"  # untouched


async def test_s3_prefix_keeps_other_objects_out_of_reach(
    s3_server: S3Server, s3_bucket: str
) -> None:
    key = content_key(b"elsewhere")
    s3_server.client().put_object(Bucket=s3_bucket, Key=key, Body=b"elsewhere")
    storage = s3_storage(s3_server, s3_bucket)

    assert await storage.exists(key) is False
    await storage.delete(key)
    assert s3_server.client().get_object(Bucket=s3_bucket, Key=key)["Body"].read() == b"elsewhere"


async def test_s3_without_a_prefix_stores_at_the_bucket_root(
    s3_server: S3Server, s3_bucket: str
) -> None:
    storage = s3_storage(s3_server, s3_bucket, prefix="")

    stored = await storage.put(b"root", content_type="text/plain")

    assert stored_keys(storage, s3_server) == [stored.key]


async def test_s3_unreachable_endpoint_raises_storage_unavailable() -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    storage = S3Storage(
        bucket="nowhere",
        endpoint_url=f"http://127.0.0.1:{port}",
        access_key_id="key",
        secret_access_key="secret",
    )

    with pytest.raises(StorageUnavailable, match="object storage get"):
        await storage.get(content_key(b"x"))


async def test_s3_without_the_extra_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "obstore.store", None)  # what a missing package looks like

    with pytest.raises(ConfigurationError, match=r"creativeflow\[s3\]"):
        S3Storage(bucket="any")


# -- choosing the backend ------------------------------------------------------------------------


def make_settings(data_dir: Path, **values: object) -> Settings:
    return Settings.model_validate(
        {"environment": Environment.TEST, "data_dir": data_dir, "secret_key": SECRET_KEY, **values}
    )


async def test_build_storage_defaults_to_the_data_directory(tmp_path: Path) -> None:
    storage = build_storage(make_settings(tmp_path))

    assert isinstance(storage, LocalStorage)
    assert storage.name == "local"
    stored = await storage.put(b"local", content_type="text/plain")
    assert storage.path_for(stored.key).is_relative_to(tmp_path / "objects")


async def test_build_storage_uses_the_bucket_when_configured(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    settings = make_settings(
        tmp_path,
        s3_bucket=s3_bucket,
        s3_endpoint_url=s3_server.endpoint_url,
        s3_region=s3_server.region,
        s3_access_key_id=s3_server.access_key_id,
        s3_secret_access_key=s3_server.secret_access_key,
        s3_prefix="/tenant-a/",
    )

    storage = build_storage(settings)

    assert isinstance(storage, S3Storage)
    assert storage.name == "s3"
    stored = await storage.put(PNG, content_type="image/png")
    assert await storage.get(stored.key) == PNG
    assert stored_keys(storage, s3_server) == [f"tenant-a/{stored.key}"]
    assert not (tmp_path / "objects").exists()
    await storage.aclose()
