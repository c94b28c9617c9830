"""Object storage for files and images: a private local directory, or an S3-compatible bucket.

Objects are content-addressed: the key is the SHA-256 of the bytes, so storing the same bytes
twice keeps one object, a key can never point at different bytes, and an object whose database
row never arrives is harmless. Settings choose the backend (`build_storage`); call sites only
know the `ObjectStorage` protocol.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from pydantic import SecretStr

from creativeflow.settings import ConfigurationError, Settings

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig, S3Config, S3Store

_KEY = re.compile(r"[0-9a-f]{64}")

# A dead or overloaded store must fail a request within seconds, not after obstore's default
# of ten retries over up to three minutes.
S3_CONNECT_TIMEOUT = timedelta(seconds=5)
S3_REQUEST_TIMEOUT = timedelta(seconds=60)
S3_MAX_RETRIES = 3
S3_RETRY_TIMEOUT = timedelta(seconds=30)


class StorageKind(StrEnum):
    LOCAL = "local"
    S3 = "s3"


@dataclass(frozen=True, slots=True)
class StoredObject:
    """Where `put` left the bytes. `created` is False when identical bytes were already stored."""

    key: str
    sha256: str
    size: int
    created: bool


class StorageError(Exception):
    """Base of the storage failures callers may want to tell apart."""


class ObjectNotFound(StorageError):
    """No object is stored under the key."""


class StorageUnavailable(StorageError):
    """The backend could not be reached or refused the operation (network, credentials)."""


class ObjectStorage(Protocol):
    name: str

    async def put(self, data: bytes, *, content_type: str) -> StoredObject: ...

    async def get(self, key: str) -> bytes: ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None: ...

    async def aclose(self) -> None: ...


def content_key(data: bytes) -> str:
    """The content address of `data`: its SHA-256 as 64 lowercase hex characters."""
    return hashlib.sha256(data).hexdigest()


def validate_key(key: str) -> str:
    """Refuse anything but a content address, before it reaches a path or a bucket: no
    traversal (`../`), no other objects under the prefix, no case variants of one key."""
    if not isinstance(key, str) or _KEY.fullmatch(key) is None:
        raise ValueError("a storage key is a SHA-256 hex digest (64 lowercase hex characters)")
    return key


# -- local directory -----------------------------------------------------------------------------


class LocalStorage:
    """Files under `root/ab/cd/<sha256>`, readable by this user only.

    Writes go to a temporary file in the object's directory, are fsynced, and then appear
    under their final name in one step, so a reader or a crash never sees half an object. The
    final step is a hard link rather than `os.replace`: it fails when the object exists, which
    makes exactly one of several concurrent identical puts report `created=True`. (The data
    directory already needs hard links: `Settings.signing_key` creates its key file the same
    way.) Every file operation runs in a worker thread so the event loop keeps serving.
    """

    name: str = StorageKind.LOCAL

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, key: str) -> Path:
        """The file that holds `key` (validated first)."""
        validate_key(key)
        return self.root / key[:2] / key[2:4] / key

    async def put(self, data: bytes, *, content_type: str) -> StoredObject:
        # Files carry no content type; the caller records it with the row that names the key.
        return await asyncio.to_thread(self._put, data)

    async def get(self, key: str) -> bytes:
        path = self.path_for(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path_for(key).is_file)

    async def delete(self, key: str) -> None:
        # Fan-out directories stay: removing them could race a put that is about to write there.
        await asyncio.to_thread(self.path_for(key).unlink, missing_ok=True)

    async def aclose(self) -> None:
        """Nothing to release; here to satisfy the protocol."""

    def _put(self, data: bytes) -> StoredObject:
        key = content_key(data)
        path = self.path_for(key)
        if path.is_file():
            return StoredObject(key=key, sha256=key, size=len(data), created=False)
        self._make_directories(path.parent)
        temporary = path.with_name(f".{key}.{secrets.token_hex(8)}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:  # a concurrent put of the same bytes won
                created = False
            else:
                created = True
                _fsync_directory(path.parent)
        finally:
            temporary.unlink(missing_ok=True)
        return StoredObject(key=key, sha256=key, size=len(data), created=created)

    def _make_directories(self, directory: Path) -> None:
        # One level at a time: `parents=True` would give the fan-out levels the default mode.
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.parent.mkdir(mode=0o700, exist_ok=True)
        directory.mkdir(mode=0o700, exist_ok=True)


def _fsync_directory(directory: Path) -> None:
    """Make the new directory entry durable, not only the file's bytes."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# -- S3-compatible bucket ------------------------------------------------------------------------


class S3Storage:
    """Objects at `<prefix><sha256>` in an S3-compatible bucket (AWS S3, MinIO, R2, Ceph...).

    A put asks `head` first so identical bytes are not uploaded again, then writes with
    `If-None-Match: *` so that of several concurrent identical puts one reports `created=True`.
    Custom endpoints use path-style addressing (MinIO and most self-hosted stores have no
    per-bucket host names); plain `http://` endpoints are allowed for local stores.
    """

    name: str = StorageKind.S3

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        prefix: str = "",
    ) -> None:
        try:
            from obstore.store import S3Store
        except ImportError as exc:
            raise ConfigurationError(
                "S3_BUCKET needs the s3 extra: pip install 'creativeflow[s3]'"
            ) from exc
        self.bucket = bucket
        self.prefix = prefix.lstrip("/")
        config: S3Config = {"region": region}
        options: ClientConfig = {
            "connect_timeout": S3_CONNECT_TIMEOUT,
            "timeout": S3_REQUEST_TIMEOUT,
        }
        if endpoint_url:
            config["endpoint"] = endpoint_url.rstrip("/")
            config["virtual_hosted_style_request"] = False
            options["allow_http"] = urlsplit(endpoint_url).scheme == "http"
        else:
            # AWS itself: per-bucket host names are the addressing AWS keeps supporting.
            config["virtual_hosted_style_request"] = True
        # Explicit credentials; otherwise obstore's chain (AWS_* variables, instance roles).
        if access_key_id is not None:
            config["access_key_id"] = access_key_id
        if secret_access_key is not None:
            config["secret_access_key"] = secret_access_key
        retry: RetryConfig = {"max_retries": S3_MAX_RETRIES, "retry_timeout": S3_RETRY_TIMEOUT}
        self._store: S3Store = S3Store(
            bucket, config=config, client_options=options, retry_config=retry
        )

    def object_path(self, key: str) -> str:
        """The object's name in the bucket (validated first)."""
        return f"{self.prefix}{validate_key(key)}"

    async def put(self, data: bytes, *, content_type: str) -> StoredObject:
        import obstore
        from obstore.exceptions import AlreadyExistsError, BaseError, PreconditionError

        key = await asyncio.to_thread(content_key, data)
        stored = StoredObject(key=key, sha256=key, size=len(data), created=False)
        if await self.exists(key):
            return stored
        try:
            await obstore.put_async(
                self._store,
                self.object_path(key),
                data,
                attributes={"Content-Type": content_type},
                mode="create",
            )
        except (AlreadyExistsError, PreconditionError):  # a concurrent put of the same bytes
            return stored
        except (BaseError, OSError) as exc:
            raise _unavailable("put", key, exc) from exc
        return StoredObject(key=key, sha256=key, size=len(data), created=True)

    async def get(self, key: str) -> bytes:
        import obstore
        from obstore.exceptions import BaseError

        path = self.object_path(key)
        try:
            result = await obstore.get_async(self._store, path)
            return bytes(await result.bytes_async())
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc
        except (BaseError, OSError) as exc:
            raise _unavailable("get", key, exc) from exc

    async def exists(self, key: str) -> bool:
        import obstore
        from obstore.exceptions import BaseError

        path = self.object_path(key)
        try:
            await obstore.head_async(self._store, path)
        except FileNotFoundError:
            return False
        except (BaseError, OSError) as exc:
            raise _unavailable("head", key, exc) from exc
        return True

    async def delete(self, key: str) -> None:
        import obstore
        from obstore.exceptions import BaseError

        path = self.object_path(key)
        try:
            await obstore.delete_async(self._store, path)
        except FileNotFoundError:  # S3 answers 204 for a missing key; other stores may not
            return
        except (BaseError, OSError) as exc:
            raise _unavailable("delete", key, exc) from exc

    async def aclose(self) -> None:
        """obstore pools its connections per store and frees them with it; nothing to do."""


def _unavailable(operation: str, key: str, exc: Exception) -> StorageUnavailable:
    """A backend failure (obstore's errors, builtin OSErrors such as timeouts) as one type."""
    # obstore's messages are long multi-line reports; the first line names the cause.
    text = str(exc).strip()
    summary = text.splitlines()[0] if text else type(exc).__name__
    return StorageUnavailable(f"object storage {operation} of {key} failed: {summary}")


# -- choosing the backend ------------------------------------------------------------------------


def build_storage(settings: Settings) -> ObjectStorage:
    """The S3 bucket when S3_BUCKET is set, else a directory in the data directory."""
    if settings.s3_bucket:
        return S3Storage(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=_secret(settings.s3_access_key_id),
            secret_access_key=_secret(settings.s3_secret_access_key),
            prefix=settings.s3_prefix,
        )
    return LocalStorage(settings.data_dir / "objects")


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
