"""S3 and S3-compatible buckets (MinIO, R2, Ceph, ...) through obstore: the prefixes and
objects under a prefix, and one csv, json, jsonl, parquet or xlsx object as rows.

obstore connects by host name and cannot be handed a checked address (requests are signed for
the host name, and TLS verifies it), so the address guard resolves and checks the endpoint's
host first and obstore then connects by name: a DNS answer that changes in between is not
caught here, unlike the socket-level connectors.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

import httpx
from pydantic import AfterValidator, Field, SecretStr, ValidationInfo, field_validator

from creativeflow.datasources.base import (
    MAX_DISCOVERED,
    CheckResult,
    ConnectContext,
    CredentialRef,
    DiscoveredObject,
    Discovery,
    Preview,
    Secret,
    SourceCategory,
    SourceConfig,
    SourceError,
    SourceErrorCode,
    SourceType,
    reveal,
)
from creativeflow.datasources.fields import BucketName, HttpUrl, PemCertificate, url_host_port
from creativeflow.datasources.files.options import CsvDelimiter, TextEncoding, naming, split_sheet
from creativeflow.datasources.files.s3_errors import s3_error
from creativeflow.datasources.files.tabular import FILE_FORMATS, format_from_name, read_table

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig, S3Credential, S3Store
    from obstore.store import S3Config as StoreConfig

# A preview reads csv and jsonl objects as a range of their first bytes; the other formats
# need the whole object, up to WHOLE_BYTES.
RANGE_BYTES = 8 * 1024 * 1024
WHOLE_BYTES = 64 * 1024 * 1024
RANGED_FORMATS = frozenset({"csv", "jsonl"})
LIST_PAGE = 1000
MAX_KEY_BYTES = 1024

_REGION = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")


def _region(value: str) -> str:
    if not _REGION.match(value):
        raise ValueError(
            "must be a region name such as us-east-1 (lowercase letters, digits and '-')"
        )
    return value


def _prefix(value: str) -> str:
    prefix = value.strip("/")
    if any(ord(char) < 32 for char in prefix):
        raise ValueError("must not contain control characters")
    if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
        raise ValueError("must be key segments separated by '/' (no empty, '.' or '..' segment)")
    if len(prefix.encode()) > MAX_KEY_BYTES:
        raise ValueError(f"must be at most {MAX_KEY_BYTES} bytes")
    return prefix


def _endpoint(value: str) -> str:
    url = httpx.URL(value)
    if url.path not in ("", "/") or url.query or url.fragment:
        raise ValueError("must be the endpoint's root URL, without a path or query")
    return value.rstrip("/")


class S3Config(SourceConfig):
    type: Literal["s3"]
    bucket: BucketName = Field(description="The bucket's name")
    region: Annotated[str, AfterValidator(_region)] = Field(
        default="us-east-1", max_length=32, description="The bucket's region (us-east-1, ...)"
    )
    endpoint_url: Annotated[HttpUrl, AfterValidator(_endpoint)] | None = Field(
        default=None,
        description="For S3-compatible stores (MinIO, R2, Ceph, ...): the endpoint's URL, "
        "`https://minio.example.com:9000`; omitted: AWS S3",
    )
    access_key_id: Secret | None = Field(
        default=None, description="The access key's id; omitted with the secret: a public bucket"
    )
    secret_access_key: Secret | None = Field(
        default=None,
        validate_default=True,
        description="The access key's secret (write-only); given together with access_key_id",
    )
    prefix: Annotated[str, AfterValidator(_prefix)] = Field(
        default="",
        description="Only the keys under this prefix (`exports/2024`); empty: the whole bucket",
    )
    ca_certificate: PemCertificate | None = Field(
        default=None,
        description="PEM of the CA that signed an https endpoint's certificate (a private CA); "
        "trusted besides the system's CAs",
    )
    path_style: bool | None = Field(
        default=None,
        description="Path-style requests (`endpoint/bucket/key`) instead of virtual-hosted "
        "ones (`bucket.endpoint/key`); omitted: path style for a custom endpoint_url, "
        "virtual-hosted for AWS",
    )
    csv_delimiter: CsvDelimiter = ","
    encoding: TextEncoding = "utf-8"

    @field_validator("secret_access_key")
    @classmethod
    def _key_pair(
        cls, value: SecretStr | CredentialRef | None, info: ValidationInfo
    ) -> SecretStr | CredentialRef | None:
        if "access_key_id" not in info.data:  # access_key_id itself is invalid
            return value
        has_id = info.data["access_key_id"] is not None
        if has_id and value is None:
            raise ValueError("is required with access_key_id (or leave both out)")
        if value is not None and not has_id:
            raise ValueError("needs access_key_id as well (or leave both out)")
        return value

    @field_validator("ca_certificate")
    @classmethod
    def _https_only(cls, value: str | None, info: ValidationInfo) -> str | None:
        endpoint = info.data.get("endpoint_url")
        if value is not None and endpoint is not None and endpoint.startswith("http://"):
            raise ValueError("applies to https endpoints only")
        return value

    def virtual_hosted(self) -> bool:
        if self.path_style is not None:
            return not self.path_style
        # A dotted bucket name breaks TLS on a per-bucket host name (*.s3... has one level).
        return self.endpoint_url is None and "." not in self.bucket

    def request_url(self) -> str:
        """The URL requests go to: the endpoint, with the bucket in front for virtual hosts."""
        base = httpx.URL(self.endpoint_url or f"https://s3.{self.region}.amazonaws.com")
        if self.virtual_hosted():
            base = base.copy_with(host=f"{self.bucket}.{base.host}")
        return str(base).rstrip("/")

    def hosts(self) -> list[tuple[str, int]]:
        return [url_host_port(self.request_url())]

    def target(self) -> str:
        host, port = self.hosts()[0]
        return f"the S3 endpoint {host}:{port}"


def _credential(access_key_id: str, secret_access_key: str) -> S3Credential:
    return {
        "access_key_id": access_key_id,
        "secret_access_key": secret_access_key,
        "expires_at": None,
    }


def _store(config: S3Config, context: ConnectContext) -> S3Store:
    """An obstore client for the source. The AWS_* variables of this process fill what is not
    set, so everything that decides where requests go, and with which credentials, is set
    here: the endpoint, and the key pair (a provider, so no AWS_SESSION_TOKEN joins it) or no
    signature at all (a public bucket; never the platform's own credentials or instance role)."""
    from obstore.store import S3Store

    timeout = dt.timedelta(seconds=context.timeout_seconds)
    url = config.request_url()
    store_config: StoreConfig = {
        "region": config.region,
        "endpoint": url,
        "virtual_hosted_style_request": config.virtual_hosted(),
    }
    options: ClientConfig = {
        "connect_timeout": timeout,
        "timeout": timeout,
        "allow_http": url.startswith("http://"),
    }
    if config.ca_certificate is not None:
        options["root_certificate"] = config.ca_certificate
    # One attempt: a check reports what happened, and retries would outlast the time limit.
    retry: RetryConfig = {"max_retries": 0, "retry_timeout": timeout}
    if config.access_key_id is None or config.secret_access_key is None:
        store_config["skip_signature"] = True
        return S3Store(
            config.bucket, config=store_config, client_options=options, retry_config=retry
        )
    credential = _credential(reveal(config.access_key_id), reveal(config.secret_access_key))
    return S3Store(
        config.bucket,
        config=store_config,
        client_options=options,
        retry_config=retry,
        credential_provider=lambda: credential,
    )


async def _open(config: S3Config, context: ConnectContext) -> S3Store:
    for host, port in config.hosts():
        await context.address(host, port)  # checked; obstore then connects by name (see top)
    return _store(config, context)


def _failure(exc: BaseException, config: S3Config, missing: str) -> SourceError:
    return s3_error(
        exc, target=config.target(), bucket=config.bucket, region=config.region, missing=missing
    )


def _object_details(meta: Any) -> dict[str, Any]:
    file_format = format_from_name(meta["path"])
    modified = meta.get("last_modified")
    return {
        "size": meta.get("size"),
        "format": file_format,
        "modified": modified.isoformat() if isinstance(modified, dt.datetime) else None,
    }


def _key(config: S3Config, object_name: str) -> tuple[str, str | None]:
    """The object's key and an xlsx sheet (`book.xlsx#Sheet1`), checked."""
    name = object_name.strip()
    if not name or len(name.encode()) > MAX_KEY_BYTES or any(ord(c) < 32 for c in name):
        raise SourceError(SourceErrorCode.INVALID_OBJECT, f"{object_name!r} is not an object key")
    if name.endswith("/"):
        raise SourceError(SourceErrorCode.INVALID_OBJECT, f"{name} is a prefix, not an object")
    if config.prefix and not name.startswith(f"{config.prefix}/"):
        raise SourceError(
            SourceErrorCode.INVALID_OBJECT, f"{name} is not under the prefix {config.prefix}/"
        )
    return split_sheet(name, None)


class S3Connector:
    """Reads only: lists and gets."""

    async def check(self, config: S3Config, context: ConnectContext) -> CheckResult:
        import obstore
        from obstore.exceptions import BaseError

        store = await _open(config, context)
        try:
            # The first page under the prefix proves the bucket and the credentials.
            stream = obstore.list(store, config.prefix or None, chunk_size=LIST_PAGE)
            try:
                page = await stream.__anext__()
            except StopAsyncIteration:
                page = []
        except (BaseError, OSError) as exc:
            raise _failure(exc, config, f"there is no bucket {config.bucket}") from None
        details: dict[str, Any] = {
            "bucket": config.bucket,
            "region": config.region,
            "objects_sampled": len(page),
            "more_objects": len(page) >= LIST_PAGE,
        }
        if config.prefix:
            details["prefix"] = config.prefix
        return CheckResult(details=details)

    async def discover(self, config: S3Config, context: ConnectContext) -> Discovery:
        import obstore
        from obstore.exceptions import BaseError

        store = await _open(config, context)
        try:
            # obstore lists one level by walking every page of it; the time limit bounds a
            # level with millions of keys, and the answer is capped below.
            listing = await obstore.list_with_delimiter_async(store, config.prefix or None)
        except (BaseError, OSError) as exc:
            raise _failure(exc, config, f"there is no bucket {config.bucket}") from None
        objects = [
            DiscoveredObject(name=f"{prefix}/", kind="prefix")
            for prefix in sorted(listing["common_prefixes"])
        ]
        objects += [
            DiscoveredObject(name=meta["path"], kind="file", details=_object_details(meta))
            for meta in sorted(listing["objects"], key=lambda meta: meta["path"])
        ]
        truncated = len(objects) > MAX_DISCOVERED
        return Discovery(objects=objects[:MAX_DISCOVERED], truncated=truncated)

    async def preview(
        self, config: S3Config, context: ConnectContext, object_name: str, limit: int
    ) -> Preview:
        key, sheet = _key(config, object_name)
        file_format = format_from_name(key)
        if file_format is None:
            raise SourceError(
                SourceErrorCode.INVALID_OBJECT,
                f"{key} is not a {', '.join(FILE_FORMATS)} file (by its extension)",
            )
        store = await _open(config, context)
        data, cut = await _fetch(store, config, key, ranged=file_format in RANGED_FORMATS)
        if cut:
            data = data[: data.rfind(b"\n") + 1]  # whole lines only: the range cut the last
        try:
            preview = await asyncio.to_thread(
                read_table,
                data,
                file_format,
                limit,
                sheet=sheet,
                csv_delimiter=config.csv_delimiter,
                encoding=config.encoding,
            )
        except SourceError as exc:
            raise naming(exc, key) from None
        if cut and not preview.truncated:
            return Preview(columns=preview.columns, rows=preview.rows, truncated=True)
        return preview


async def _fetch(store: S3Store, config: S3Config, key: str, *, ranged: bool) -> tuple[bytes, bool]:
    """The object's bytes (its first RANGE_BYTES when ranged), and whether that is not all."""
    import obstore
    from obstore.exceptions import BaseError

    missing = f"there is no object {key} in the bucket {config.bucket}"
    try:
        if ranged:
            try:
                result = await obstore.get_async(store, key, options={"range": (0, RANGE_BYTES)})
            except BaseError as exc:
                if "InvalidRange" in str(exc):  # an empty object has no first bytes
                    return b"", False
                raise
        else:
            result = await obstore.get_async(store, key)
            size = result.meta["size"]
            if size > WHOLE_BYTES:  # the body is left unread
                raise SourceError(
                    SourceErrorCode.INVALID_OBJECT,
                    f"{key} is {size / 2**20:.0f} MiB, too large to preview (this format is "
                    f"read whole, up to {WHOLE_BYTES // 2**20} MiB)",
                )
        data = bytes(await result.bytes_async())
    except ValueError as exc:  # obstore refuses the key before sending it
        raise SourceError(
            SourceErrorCode.INVALID_OBJECT, f"{key} is not an object key ({exc})"
        ) from None
    except (BaseError, OSError) as exc:
        raise _failure(exc, config, missing) from None
    return data, result.meta["size"] > len(data)


SOURCE_TYPE = SourceType(
    name="s3",
    display_name="Amazon S3 (and S3-compatible)",
    category=SourceCategory.OBJECT_STORAGE,
    config_model=S3Config,
    connector=S3Connector(),
    description="A bucket on AWS S3 or an S3-compatible store (MinIO, R2, Ceph): its prefixes "
    "and csv, json, jsonl, parquet and xlsx objects.",
    drivers=("obstore",),
    extra="s3",
)
