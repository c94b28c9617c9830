"""Google Cloud Storage over its JSON API (storage/v1): a bucket's metadata, the objects and
prefixes under a prefix, and the first rows of a csv, json, jsonl, parquet or xlsx object."""

from __future__ import annotations

import asyncio
import ipaddress
import re
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import AfterValidator, Field, field_validator

from creativeflow.datasources.base import (
    MAX_DISCOVERED,
    CheckResult,
    ConnectContext,
    DiscoveredObject,
    Discovery,
    Preview,
    SourceCategory,
    SourceConfig,
    SourceError,
    SourceErrorCode,
    SourceType,
)
from creativeflow.datasources.fields import HttpUrl, url_host_port
from creativeflow.datasources.google.auth import NoAuth, ServiceAccountAuth, auth_hosts
from creativeflow.datasources.google.client import GoogleApi, GoogleClient

GCS_BASE_URL = "https://storage.googleapis.com"
API = GoogleApi(
    name="Cloud Storage",
    version="Cloud Storage JSON API v1",
    scope="https://www.googleapis.com/auth/devstorage.read_only",
)
RANGE_BYTES = 8 * 1024 * 1024  # csv and jsonl: the first 8 MiB are enough for any preview
WHOLE_BYTES = 64 * 1024 * 1024  # json, parquet and xlsx are read whole, up to 64 MiB
PAGE_SIZE = 1000
MAX_PAGES = 10
MAX_OBJECT_NAME = 1024
_RANGED_FORMATS = {"csv", "jsonl"}

_COMPONENT = re.compile(r"^[a-z0-9](?:[a-z0-9_\-]{0,61}[a-z0-9])?$")


def _gcs_bucket_name(value: str) -> str:
    """GCS's naming rules, which (unlike S3's) allow '_' and dotted names up to 222."""
    dotted = "." in value
    if not 3 <= len(value) <= (222 if dotted else 63):
        raise ValueError("must be 3-63 characters (up to 222 when it has dots)")
    if not all(_COMPONENT.match(part) for part in value.split(".")):
        raise ValueError(
            "must be lowercase letters, digits, '-', '_' and '.', each dot-separated part at "
            "most 63 and starting and ending with a letter or digit"
        )
    if value.startswith("goog") or "google" in value or "g00gle" in value:
        raise ValueError("must not start with 'goog' or contain 'google'")
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return value
    raise ValueError("must not be an IP address")


GcsBucketName = Annotated[str, AfterValidator(_gcs_bucket_name)]

GcsAuth = Annotated[
    ServiceAccountAuth | NoAuth,
    Field(
        discriminator="mode",
        description="A service-account key with read access to the bucket, or none for a "
        "public bucket",
    ),
]


class GcsConfig(SourceConfig):
    type: Literal["gcs"] = Field(description="Google Cloud Storage")
    bucket: GcsBucketName = Field(description="The bucket's name (without gs://)")
    prefix: str | None = Field(
        default=None,
        max_length=MAX_OBJECT_NAME,
        description="Only objects under this prefix (`exports/2024/`); the whole bucket if unset",
    )
    auth: GcsAuth
    api_base_url: HttpUrl = Field(
        default=GCS_BASE_URL,
        description="The Cloud Storage endpoint (an emulator's or a proxy's URL in its place)",
    )

    @field_validator("bucket", mode="before")
    @classmethod
    def _without_scheme(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().startswith("gs://"):
            return value.strip().removeprefix("gs://").rstrip("/")
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        if not value:
            return None
        if value.startswith("/"):
            raise ValueError("must not start with '/' (object names do not)")
        if "\r" in value or "\n" in value:
            raise ValueError("must not hold line breaks")
        return value

    def hosts(self) -> list[tuple[str, int]]:
        return [url_host_port(self.api_base_url), *auth_hosts(self.auth)]


def _bucket_path(config: GcsConfig) -> str:
    return f"/storage/v1/b/{quote(config.bucket, safe='')}"


def _object_path(config: GcsConfig, name: str) -> str:
    return f"{_bucket_path(config)}/o/{quote(name, safe='')}"


def _client(config: GcsConfig, context: ConnectContext) -> GoogleClient:
    return GoogleClient(context, config.api_base_url, config.auth, API)


def _size(item: dict[str, Any]) -> int | None:
    try:
        return int(item["size"])
    except (KeyError, TypeError, ValueError):
        return None


class GcsConnector:
    async def check(self, config: GcsConfig, context: ConnectContext) -> CheckResult:
        missing = f"there is no bucket {config.bucket}"
        async with _client(config, context) as client:
            try:
                bucket = await client.json(_bucket_path(config), missing=missing)
            except SourceError as exc:
                if exc.code != SourceErrorCode.PERMISSION_DENIED:
                    raise
                # Reading objects (roles/storage.objectViewer, or a public bucket) does not
                # grant reading the bucket's metadata: listing one object shows access as well.
                await client.json(
                    f"{_bucket_path(config)}/o",
                    {"maxResults": 1, **({"prefix": config.prefix} if config.prefix else {})},
                    missing=missing,
                )
                return CheckResult(
                    server_version=API.version,
                    details={"bucket": config.bucket, "metadata": "not readable"},
                )
        if not isinstance(bucket, dict):
            raise SourceError(SourceErrorCode.PROTOCOL_ERROR, "the bucket answer is not an object")
        details = {
            "bucket": bucket.get("name", config.bucket),
            "location": bucket.get("location"),
            "location_type": bucket.get("locationType"),
            "storage_class": bucket.get("storageClass"),
            "created": bucket.get("timeCreated"),
        }
        return CheckResult(
            server_version=API.version,
            details={key: value for key, value in details.items() if value is not None},
        )

    async def discover(self, config: GcsConfig, context: ConnectContext) -> Discovery:
        from creativeflow.datasources.files.tabular import format_from_name

        objects: list[DiscoveredObject] = []
        params: dict[str, str | int] = {
            "delimiter": "/",
            "fields": "items(name,size,contentType,updated),prefixes,nextPageToken",
        }
        if config.prefix:
            params["prefix"] = config.prefix
        page_token: str | None = None
        truncated = False
        async with _client(config, context) as client:
            # A page holds up to 1000 entries; the pages are bounded all the same, against an
            # endpoint that keeps answering empty pages with a next token.
            for _ in range(MAX_PAGES):
                params["maxResults"] = min(PAGE_SIZE, MAX_DISCOVERED - len(objects) + 1)
                if page_token:
                    params["pageToken"] = page_token
                page = await client.json(
                    f"{_bucket_path(config)}/o",
                    params,
                    missing=f"there is no bucket {config.bucket}",
                )
                if not isinstance(page, dict):
                    raise SourceError(
                        SourceErrorCode.PROTOCOL_ERROR, "the listing is not an object"
                    )
                for prefix in page.get("prefixes") or []:
                    if isinstance(prefix, str):
                        objects.append(DiscoveredObject(name=prefix, kind="prefix"))
                for item in page.get("items") or []:
                    name = item.get("name") if isinstance(item, dict) else None
                    # The zero-byte "folder" object the console creates is the prefix itself.
                    if not isinstance(name, str) or name == config.prefix:
                        continue
                    file_format = format_from_name(name)
                    details = {
                        "size": _size(item),
                        "format": str(file_format) if file_format is not None else None,
                        "content_type": item.get("contentType"),
                        "updated": item.get("updated"),
                    }
                    objects.append(DiscoveredObject(name=name, kind="file", details=details))
                page_token = page.get("nextPageToken") or None
                if len(objects) > MAX_DISCOVERED:
                    return Discovery(objects=objects[:MAX_DISCOVERED], truncated=True)
                if page_token is None:
                    break
                if len(objects) == MAX_DISCOVERED:
                    truncated = True
                    break
            else:
                truncated = True
        return Discovery(objects=objects, truncated=truncated)

    async def preview(
        self, config: GcsConfig, context: ConnectContext, object_name: str, limit: int
    ) -> Preview:
        from creativeflow.datasources.files.tabular import format_from_name, read_table

        name = object_name  # spaces are allowed at either end of an object name
        if not name or len(name.encode()) > MAX_OBJECT_NAME or "\r" in name or "\n" in name:
            raise SourceError(SourceErrorCode.INVALID_OBJECT, "is not an object name")
        if name.endswith("/"):
            raise SourceError(SourceErrorCode.INVALID_OBJECT, f"{name} is a prefix, not an object")
        if config.prefix and not name.startswith(config.prefix):
            raise SourceError(
                SourceErrorCode.INVALID_OBJECT, f"{name} is not under the prefix {config.prefix}"
            )
        file_format = format_from_name(name)
        if file_format is None:
            raise SourceError(
                SourceErrorCode.INVALID_OBJECT,
                f"{name} is not a csv, json, jsonl, parquet or xlsx file",
            )
        ranged = str(file_format) in _RANGED_FORMATS
        missing = f"there is no object {name} in the bucket {config.bucket}"
        async with _client(config, context) as client:
            metadata = await client.json(_object_path(config, name), missing=missing)
            size = _size(metadata) if isinstance(metadata, dict) else None
            if not ranged and size is not None and size > WHOLE_BYTES:
                raise SourceError(
                    SourceErrorCode.INVALID_OBJECT,
                    f"{name} is {size / 2**20:.0f} MiB; {file_format} objects are read whole "
                    f"for a preview, up to {WHOLE_BYTES // 2**20} MiB",
                )
            data, cut = b"", False
            # An empty object has no byte range to ask for (GCS answers 416).
            if size != 0:
                body = await client.download(
                    _object_path(config, name),
                    {"alt": "media"},
                    max_bytes=RANGE_BYTES if ranged else WHOLE_BYTES,
                    missing=missing,
                    ranged=ranged,
                )
                data = body.body
                cut = body.cut or (size is not None and size > len(data))
        if ranged and cut:
            # Only whole lines: the last one was cut at the range's end.
            data = data[: data.rfind(b"\n") + 1]
        preview = await asyncio.to_thread(read_table, data, file_format, limit)
        if cut and not preview.truncated:
            return Preview(columns=preview.columns, rows=preview.rows, truncated=True)
        return preview


SOURCE_TYPE = SourceType(
    name="gcs",
    display_name="Google Cloud Storage",
    category=SourceCategory.OBJECT_STORAGE,
    config_model=GcsConfig,
    connector=GcsConnector(),
    description="A Cloud Storage bucket: its objects and prefixes, and the first rows of its "
    "csv, json, jsonl, parquet and xlsx files.",
)
