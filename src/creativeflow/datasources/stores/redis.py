"""Redis (and Valkey) through redis.asyncio: the keys matching a pattern, and one key's content
as rows by its type (string, hash, list, set, sorted set, stream)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from creativeflow.datasources.base import (
    MAX_DISCOVERED,
    CheckResult,
    ConnectContext,
    DiscoveredObject,
    Discovery,
    Preview,
    Secret,
    SourceCategory,
    SourceConfig,
    SourceError,
    SourceErrorCode,
    SourceType,
    network_error,
    os_cause,
    reveal_optional,
)
from creativeflow.datasources.fields import HostName, Port, TlsOptions
from creativeflow.datasources.rows import infer_columns, jsonable
from creativeflow.datasources.stores.common import safe_text

if TYPE_CHECKING:
    from redis.asyncio import Redis

MAX_STRING_BYTES = 1024 * 1024  # of a string value read for a preview
PARSE_IN_THREAD_BYTES = 64 * 1024
SCAN_COUNT = 500

# The commands that tell a key's length, by its type.
_LENGTH = {
    "string": "STRLEN",
    "hash": "HLEN",
    "list": "LLEN",
    "set": "SCARD",
    "zset": "ZCARD",
    "stream": "XLEN",
}


class RedisConfig(SourceConfig):
    type: Literal["redis"]
    host: HostName = Field(description="Host name or IP address of the Redis server")
    port: Port = Field(default=6379, description="TCP port, 1-65535 (Redis: 6379)")
    database: int = Field(default=0, ge=0, le=15, description="The database number, 0-15")
    username: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="ACL user (Redis 6+); leave empty for the default user",
    )
    password: Secret | None = Field(
        default=None,
        validate_default=True,
        description="The password (of `username`, or of the default user); required with "
        "`username`",
    )
    tls: TlsOptions = Field(default_factory=TlsOptions, description="TLS for the connection")
    key_pattern: str = Field(
        default="*",
        min_length=1,
        max_length=512,
        description="Glob pattern of the keys discovery lists (SCAN MATCH), e.g. `user:*`",
    )

    @field_validator("password")
    @classmethod
    def _password_with_username(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.data.get("username"):
            raise ValueError("is required when `username` is set")
        return value

    def hosts(self) -> list[tuple[str, int]]:
        return [(self.host, self.port)]


def _error(exc: BaseException, config: RedisConfig) -> SourceError:
    from redis import exceptions as errors

    target = f"{config.host}:{config.port}"
    password = reveal_optional(config.password)
    reason = safe_text(str(exc), password)
    if isinstance(exc, errors.AuthenticationError):
        if password is None:
            message = f"{target} requires authentication; set `password` ({reason})"
        else:
            who = f"the user {config.username!r}" if config.username else "the default user"
            message = f"{target} rejected the password of {who} ({reason})"
        return SourceError(SourceErrorCode.AUTH_FAILED, message)
    if isinstance(exc, errors.NoPermissionError):
        return SourceError(SourceErrorCode.PERMISSION_DENIED, f"{target}: {reason}")
    if isinstance(exc, errors.TimeoutError):
        return SourceError(SourceErrorCode.TIMEOUT, f"{target} did not answer in time")
    if isinstance(exc, errors.InvalidResponse):
        return SourceError(
            SourceErrorCode.PROTOCOL_ERROR, f"{target} does not speak Redis's protocol"
        )
    if isinstance(exc, errors.AskError | errors.ClusterDownError):  # MOVED is an AskError
        return SourceError(
            SourceErrorCode.NOT_SUPPORTED,
            f"{target} is a Redis Cluster node and the key lives on another one; "
            "cluster mode is not supported",
        )
    if isinstance(exc, errors.ResponseError) and "DB index is out of range" in str(exc):
        return SourceError(SourceErrorCode.NOT_FOUND, f"{target} has no database {config.database}")
    cause = os_cause(exc)
    if cause is not None:
        return network_error(cause, target)
    if isinstance(exc, errors.ConnectionError):
        if "Invalid Database" in str(exc):
            return SourceError(
                SourceErrorCode.NOT_FOUND, f"{target} has no database {config.database}"
            )
        return SourceError(SourceErrorCode.PROTOCOL_ERROR, f"{target}: {reason}")
    if isinstance(exc, errors.ResponseError):
        return SourceError(SourceErrorCode.ERROR, f"{target}: {reason}")
    return SourceError(SourceErrorCode.ERROR, f"{target}: {type(exc).__name__}")


@asynccontextmanager
async def _connect(config: RedisConfig, context: ConnectContext) -> AsyncIterator[Redis]:
    from redis import exceptions as errors
    from redis.asyncio import ConnectionPool, Redis
    from redis.asyncio.connection import SSLConnection
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    address = await context.address(config.host, config.port)
    tls = config.tls
    if tls.enabled:
        # redis-py verifies the certificate against the host it connects to and takes no
        # separate TLS server name: with TLS on it connects by name (checked just above).
        connection: dict[str, Any] = {
            "connection_class": SSLConnection,
            "host": config.host,
            "ssl_ca_data": tls.ca_certificate,
            "ssl_cert_reqs": "required" if tls.verify else "none",
            "ssl_check_hostname": tls.verify,
        }
    else:
        connection = {"host": address}
    pool = ConnectionPool(
        **connection,
        port=config.port,
        db=config.database,
        username=config.username,
        password=reveal_optional(config.password),
        socket_timeout=context.timeout_seconds,
        socket_connect_timeout=context.timeout_seconds,
        # One attempt: the time limit is the caller's, and retries would multiply it.
        retry=Retry(NoBackoff(), 0),
        max_connections=2,
    )
    client = Redis.from_pool(pool)
    try:
        yield client
    except (errors.RedisError, OSError) as exc:
        raise _error(exc, config) from None
    finally:
        await client.aclose()


def _text(raw: bytes | str) -> str | bytes:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw  # binary: answered as base64


def _value(raw: bytes | str) -> Any:
    """A stored value: text, JSON when it looks like an object or array, bytes otherwise."""
    text = _text(raw)
    if isinstance(text, str):
        stripped = text.strip()
        if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):
            try:
                return json.loads(stripped)
            except ValueError:
                pass
    return text


async def _string_rows(client: Redis, key: bytes, limit: int) -> tuple[list[dict[str, Any]], bool]:
    length = int(await client.strlen(key))
    raw: bytes | str = await client.getrange(key, 0, MAX_STRING_BYTES - 1)
    if length > MAX_STRING_BYTES:
        return [{"value": _text(raw)}], True
    value = await asyncio.to_thread(_value, raw) if length > PARSE_IN_THREAD_BYTES else _value(raw)
    if isinstance(value, dict):
        return [value], False
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return value[:limit], len(value) > limit
    return [{"value": value}], False


async def _scanned(scan: Any, limit: int) -> tuple[list[Any], bool]:
    """Up to `limit` distinct items of a SCAN-family iterator (SCAN may repeat items), and
    whether there were more."""
    seen: dict[Any, None] = {}
    try:
        async for item in scan:
            seen[item] = None
            if len(seen) > limit:
                return list(seen)[:limit], True
    finally:
        await scan.aclose()
    return list(seen), False


async def _rows(
    client: Redis, key: bytes, kind: str, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    if kind == "string":
        return await _string_rows(client, key, limit)
    if kind == "hash":
        pairs, more = await _scanned(client.hscan_iter(key, count=SCAN_COUNT), limit)
        return [{"field": _text(f), "value": _value(v)} for f, v in pairs], more
    if kind == "list":
        items: list[Any] = await client.lrange(key, 0, limit)
        rows = [{"index": index, "value": _value(item)} for index, item in enumerate(items)]
        return rows[:limit], len(rows) > limit
    if kind == "set":
        members, more = await _scanned(client.sscan_iter(key, count=SCAN_COUNT), limit)
        return [{"member": _value(member)} for member in members], more
    if kind == "zset":
        scored: list[Any] = await client.zrange(key, 0, limit, withscores=True)
        rows = [{"member": _value(member), "score": score} for member, score in scored]
        return rows[:limit], len(rows) > limit
    if kind == "stream":
        entries: list[Any] = await client.xrange(key, "-", "+", count=limit + 1) or []
        rows = []
        for entry_id, fields in entries[:limit]:
            row: dict[str, Any] = {"id": _text(entry_id)}
            for name, value in fields.items():
                column = _text(name)
                row[f"fields.{column}" if column == "id" else str(column)] = _value(value)
            rows.append(row)
        return rows, len(entries) > limit
    raise SourceError(SourceErrorCode.NOT_SUPPORTED, f"keys of type {kind} have no preview here")


class RedisConnector:
    async def check(self, config: RedisConfig, context: ConnectContext) -> CheckResult:
        async with _connect(config, context) as client:
            await client.ping()
            info = await client.info("server")
            keys = await client.dbsize()
        valkey = "valkey_version" in info
        version = info.get("valkey_version") if valkey else info.get("redis_version")
        return CheckResult(
            server_version=str(version) if version is not None else None,
            details={
                "server": "valkey" if valkey else "redis",
                "mode": info.get("redis_mode") or info.get("server_mode"),
                "database": config.database,
                "keys": keys,
            },
        )

    async def discover(self, config: RedisConfig, context: ConnectContext) -> Discovery:
        async with _connect(config, context) as client:
            scan = client.scan_iter(match=config.key_pattern, count=SCAN_COUNT)
            found, truncated = await _scanned(scan, MAX_DISCOVERED)
            # Keys that are not UTF-8 could not be named in a preview: left out.
            keys = sorted(key for key in found if isinstance(_text(key), str))
            async with client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.type(key)
                    pipe.ttl(key)
                answers = await pipe.execute()
            kinds = [str(_text(kind)) for kind in answers[0::2]]
            ttls = answers[1::2]
            async with client.pipeline(transaction=False) as pipe:
                for key, kind in zip(keys, kinds, strict=True):
                    pipe.execute_command(_LENGTH.get(kind, "EXISTS"), key)
                lengths = await pipe.execute()
        objects = []
        for key, kind, ttl, length in zip(keys, kinds, ttls, lengths, strict=True):
            if kind == "none":  # expired or deleted since the scan
                continue
            details: dict[str, Any] = {"type": kind, "ttl_seconds": ttl if ttl >= 0 else None}
            if kind in _LENGTH:
                details["length"] = length
            objects.append(DiscoveredObject(name=key.decode(), kind="key", details=details))
        return Discovery(objects=objects, truncated=truncated)

    async def preview(
        self, config: RedisConfig, context: ConnectContext, object_name: str, limit: int
    ) -> Preview:
        if not object_name:
            raise SourceError(SourceErrorCode.INVALID_OBJECT, "name a key")
        key = object_name.encode()
        async with _connect(config, context) as client:
            kind = str(_text(await client.type(key)))
            if kind == "none":
                raise SourceError(
                    SourceErrorCode.NOT_FOUND,
                    f"the database {config.database} has no key {object_name!r}",
                )
            rows, truncated = await _rows(client, key, kind, limit)
        return Preview(
            columns=infer_columns(rows),
            rows=[jsonable(row) for row in rows],
            truncated=truncated,
        )


SOURCE_TYPE = SourceType(
    name="redis",
    display_name="Redis",
    category=SourceCategory.KEY_VALUE,
    config_model=RedisConfig,
    connector=RedisConnector(),
    description="A Redis or Valkey database: its keys by pattern with type and TTL, and one "
    "key's content as rows (hash fields, list items, set members, stream entries, ...).",
    drivers=("redis",),
)
