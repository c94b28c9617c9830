"""Redis against the real server (TEST_REDIS_URL), in database 8 under a prefix of its own that
each test removes again; ACL users made for the wrong-password and permission cases are
deleted after."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from creativeflow.datasources.base import (
    MAX_DISCOVERED,
    ConnectContext,
    SourceError,
    SourceErrorCode,
    secret_field_paths,
)
from creativeflow.datasources.stores.redis import SOURCE_TYPE, RedisConfig
from tests.datasources.servers import ServerAddress, closed_port

DATABASE = 8
pytest_plugins = ["tests.datasources.stores.peers"]

CONNECTOR = SOURCE_TYPE.connector
PASSWORD = "redis-Secret-42"


def config(server: ServerAddress | None = None, **overrides: Any) -> RedisConfig:
    values: dict[str, Any] = {
        "type": "redis",
        "host": server.host if server else "127.0.0.1",
        "port": server.port if server else closed_port(),
        "database": DATABASE,
    }
    if server is not None and server.password:
        values["password"] = server.password
    values.update(overrides)
    return RedisConfig.model_validate(values)


@pytest.fixture
def quick(file_root: Path) -> ConnectContext:
    return ConnectContext(timeout_seconds=1.0, allow_private_hosts=True, file_root=file_root)


@pytest.fixture
async def admin(redis_server: ServerAddress) -> AsyncIterator[Any]:
    """A plain client of database 8 for the test's own writes."""
    from redis.asyncio import Redis

    client = Redis(
        host=redis_server.host,
        port=redis_server.port,
        db=DATABASE,
        username=redis_server.user,
        password=redis_server.password,
    )
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def prefix(admin: Any) -> AsyncIterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    value = f"cf-test-stores:{uuid.uuid4().hex[:12]}:"
    try:
        yield value
    finally:
        keys = [key async for key in admin.scan_iter(match=value + "*", count=1000)]
        for start in range(0, len(keys), 500):
            await admin.delete(*keys[start : start + 500])


@pytest.fixture
async def keys(admin: Any, prefix: str) -> str:
    """One key of each type under `prefix`."""
    await admin.set(prefix + "plain", "hello")
    await admin.set(prefix + "doc", json.dumps({"name": "Ada", "age": 36, "tags": ["x"]}))
    await admin.set(prefix + "binary", b"\xff\xfe\x00")
    await admin.set(prefix + "expiring", "soon", ex=3600)
    await admin.hset(prefix + "user", mapping={"name": "Ada", "visits": "12"})
    await admin.rpush(prefix + "queue", "first", "second", '{"n": 3}')
    await admin.sadd(prefix + "colours", "red", "green")
    await admin.zadd(prefix + "scores", {"ada": 3.5, "bob": 1.0})
    await admin.xadd(prefix + "events", {"kind": "click", "id": "button-1"}, id="1-1")
    await admin.xadd(prefix + "events", {"kind": "view"}, id="2-1")
    return prefix


@pytest.fixture
async def acl_user(admin: Any) -> AsyncIterator[Any]:
    """Makes ACL users with a password (the server here has none) and deletes them after."""
    made: list[str] = []

    async def make(*rules: str) -> str:
        name = f"cf-test-{uuid.uuid4().hex[:10]}"
        await admin.execute_command("ACL", "SETUSER", name, "on", f">{PASSWORD}", *rules)
        made.append(name)
        return name

    try:
        yield make
    finally:
        if made:
            await admin.execute_command("ACL", "DELUSER", *made)


def locs(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[str | int, ...]]:
    return [tuple(error["loc"]) for error in exc.value.errors()]


async def expect(code: SourceErrorCode, seconds: float, call: Any) -> SourceError:
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        await call
    assert caught.value.code == code, caught.value.message
    assert time.monotonic() - started < seconds
    assert PASSWORD not in caught.value.message
    return caught.value


# -- config ----------------------------------------------------------------------------------


def test_a_good_config_takes_defaults() -> None:
    parsed = RedisConfig.model_validate({"type": "redis", "host": "Cache.Example.com"})
    assert (parsed.host, parsed.port, parsed.database) == ("cache.example.com", 6379, 0)
    assert parsed.key_pattern == "*"
    assert parsed.hosts() == [("cache.example.com", 6379)]
    assert "password" in RedisConfig.model_json_schema()["properties"]


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"host": "redis://cache.example.com"}, ("host",)),
        ({"host": "cache.example.com:6379"}, ("host",)),
        ({"host": "bad_host!"}, ("host",)),
        ({"port": 0}, ("port",)),
        ({"port": 65536}, ("port",)),
        ({"database": 16}, ("database",)),
        ({"database": -1}, ("database",)),
        ({"username": "reader"}, ("password",)),
        ({"key_pattern": ""}, ("key_pattern",)),
        ({"tls": {"ca_certificate": "-----BEGIN CERTIFICATE-----"}}, ("tls", "ca_certificate")),
        ({"tls": {"verify": False}}, ("tls",)),
        ({"url": "redis://x"}, ("url",)),
    ],
)
def test_mistakes_name_their_field(overrides: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        config(**overrides)
    assert loc in locs(caught)


def test_the_password_is_a_secret() -> None:
    parsed = config(username="reader", password=PASSWORD)
    assert PASSWORD not in repr(parsed)
    assert PASSWORD not in parsed.model_dump_json()


def test_secret_fields_are_listed() -> None:
    assert secret_field_paths(RedisConfig) == ["password"]


# -- check, discover, preview ----------------------------------------------------------------


async def test_check_answers_the_version(
    redis_server: ServerAddress, context: ConnectContext, admin: Any
) -> None:
    result = await CONNECTOR.check(config(redis_server), context)
    info = await admin.info("server")
    assert result.server_version == info["redis_version"]
    assert result.details["mode"] == info["redis_mode"]
    assert result.details["database"] == DATABASE
    assert isinstance(result.details["keys"], int)


async def test_discover_lists_the_keys_with_type_and_ttl(
    redis_server: ServerAddress, context: ConnectContext, keys: str
) -> None:
    discovery = await CONNECTOR.discover(config(redis_server, key_pattern=keys + "*"), context)
    found = {obj.name.removeprefix(keys): obj for obj in discovery.objects}
    assert discovery.truncated is False
    assert set(found) == {
        "plain",
        "doc",
        "binary",
        "expiring",
        "user",
        "queue",
        "colours",
        "scores",
        "events",
    }
    assert {obj.kind for obj in discovery.objects} == {"key"}
    kinds = {name: obj.details["type"] for name, obj in found.items()}
    assert kinds["user"] == "hash" and kinds["queue"] == "list" and kinds["events"] == "stream"
    assert kinds["colours"] == "set" and kinds["scores"] == "zset" and kinds["plain"] == "string"
    assert found["plain"].details["ttl_seconds"] is None
    assert 0 < found["expiring"].details["ttl_seconds"] <= 3600
    assert found["queue"].details["length"] == 3
    assert found["events"].details["length"] == 2
    assert found["plain"].details["length"] == 5


async def test_discover_of_a_pattern_without_keys(
    redis_server: ServerAddress, context: ConnectContext, prefix: str
) -> None:
    discovery = await CONNECTOR.discover(config(redis_server, key_pattern=prefix + "*"), context)
    assert discovery.objects == [] and discovery.truncated is False


async def test_discover_stops_at_the_cap(
    redis_server: ServerAddress, context: ConnectContext, admin: Any, prefix: str
) -> None:
    await admin.mset({f"{prefix}{index:05d}": "x" for index in range(MAX_DISCOVERED + 5)})
    discovery = await CONNECTOR.discover(config(redis_server, key_pattern=prefix + "*"), context)
    assert discovery.truncated is True
    assert len(discovery.objects) == MAX_DISCOVERED


@pytest.mark.parametrize(
    ("key", "rows", "types"),
    [
        ("plain", [{"value": "hello"}], {"value": "string"}),
        (
            "doc",
            [{"name": "Ada", "age": 36, "tags": ["x"]}],
            {"name": "string", "age": "integer", "tags": "array"},
        ),
        ("binary", [{"value": "//4A"}], {"value": "binary"}),
        (
            "user",
            [{"field": "name", "value": "Ada"}, {"field": "visits", "value": "12"}],
            {"field": "string", "value": "string"},
        ),
        (
            "queue",
            [
                {"index": 0, "value": "first"},
                {"index": 1, "value": "second"},
                {"index": 2, "value": {"n": 3}},
            ],
            {"index": "integer", "value": "string"},
        ),
        (
            "scores",
            [{"member": "bob", "score": 1.0}, {"member": "ada", "score": 3.5}],
            {"member": "string", "score": "number"},
        ),
        (
            "events",
            [
                {"id": "1-1", "kind": "click", "fields.id": "button-1"},
                {"id": "2-1", "kind": "view"},
            ],
            {"id": "string", "kind": "string", "fields.id": "string"},
        ),
    ],
)
async def test_preview_reads_a_key_by_its_type(
    redis_server: ServerAddress,
    context: ConnectContext,
    keys: str,
    key: str,
    rows: list[dict[str, Any]],
    types: dict[str, str],
) -> None:
    preview = await CONNECTOR.preview(config(redis_server), context, keys + key, 100)
    ordered = sorted(preview.rows, key=lambda row: json.dumps(row, sort_keys=True))
    assert ordered == sorted(rows, key=lambda row: json.dumps(row, sort_keys=True))
    assert {column.name: column.type for column in preview.columns} == types
    assert preview.truncated is False
    json.dumps(preview.rows)


async def test_preview_of_a_set_and_a_cut_list(
    redis_server: ServerAddress, context: ConnectContext, keys: str
) -> None:
    members = await CONNECTOR.preview(config(redis_server), context, keys + "colours", 10)
    assert sorted(row["member"] for row in members.rows) == ["green", "red"]
    cut = await CONNECTOR.preview(config(redis_server), context, keys + "queue", 2)
    assert [row["value"] for row in cut.rows] == ["first", "second"]
    assert cut.truncated is True
    one = await CONNECTOR.preview(config(redis_server), context, keys + "user", 1)
    assert len(one.rows) == 1 and one.truncated is True


async def test_preview_leaves_the_key_as_it_was(
    redis_server: ServerAddress, context: ConnectContext, keys: str, admin: Any
) -> None:
    await CONNECTOR.preview(config(redis_server), context, keys + "queue", 10)
    await CONNECTOR.preview(config(redis_server), context, keys + "events", 10)
    assert await admin.llen(keys + "queue") == 3
    assert await admin.xlen(keys + "events") == 2


async def test_an_unknown_key_is_not_found(
    redis_server: ServerAddress, context: ConnectContext, prefix: str
) -> None:
    await expect(
        SourceErrorCode.NOT_FOUND,
        5.0,
        CONNECTOR.preview(config(redis_server), context, prefix + "missing", 10),
    )


# -- failures --------------------------------------------------------------------------------


async def test_a_wrong_password_fails_auth(
    redis_server: ServerAddress, context: ConnectContext, acl_user: Any
) -> None:
    user = await acl_user("~*", "&*", "+@all")
    good = config(redis_server, username=user, password=PASSWORD)
    result = await CONNECTOR.check(good, context)
    assert result.server_version
    wrong = "not-" + PASSWORD
    error = await expect(
        SourceErrorCode.AUTH_FAILED,
        5.0,
        CONNECTOR.check(config(redis_server, username=user, password=wrong), context),
    )
    assert wrong not in error.message
    assert user in error.message


async def test_a_user_without_rights_is_denied(
    redis_server: ServerAddress, context: ConnectContext, acl_user: Any
) -> None:
    user = await acl_user("resetkeys", "-@all", "+ping", "+select")
    await expect(
        SourceErrorCode.PERMISSION_DENIED,
        5.0,
        CONNECTOR.check(config(redis_server, username=user, password=PASSWORD), context),
    )


async def test_a_closed_port_refuses(quick: ConnectContext) -> None:
    error = await expect(SourceErrorCode.CONNECTION_REFUSED, 2.0, CONNECTOR.check(config(), quick))
    assert "127.0.0.1" in error.message


async def test_a_silent_port_times_out(quick: ConnectContext, silent_port: int) -> None:
    await expect(SourceErrorCode.TIMEOUT, 2.5, CONNECTOR.check(config(port=silent_port), quick))


async def test_a_peer_speaking_http_is_a_protocol_error(
    quick: ConnectContext, http_peer: int
) -> None:
    await expect(
        SourceErrorCode.PROTOCOL_ERROR, 2.0, CONNECTOR.discover(config(port=http_peer), quick)
    )


async def test_tls_to_a_plain_peer_is_a_tls_error(quick: ConnectContext, http_peer: int) -> None:
    parsed = config(port=http_peer, tls={"enabled": True})
    await expect(SourceErrorCode.TLS_ERROR, 2.0, CONNECTOR.check(parsed, quick))


async def test_tls_verifies_the_configured_name(quick: ConnectContext, tls_peer: Any) -> None:
    """The connection goes to the checked address, the certificate is checked against the
    host name: a certificate for `localhost` passes (the peer then answers HTTP), one for
    another name does not."""
    good = await tls_peer("localhost")
    parsed = config(
        host="localhost", port=good.port, tls={"enabled": True, "ca_certificate": good.ca_pem}
    )
    await expect(SourceErrorCode.PROTOCOL_ERROR, 2.0, CONNECTOR.check(parsed, quick))
    other = await tls_peer("other.test")
    parsed = config(
        host="localhost", port=other.port, tls={"enabled": True, "ca_certificate": other.ca_pem}
    )
    error = await expect(SourceErrorCode.TLS_ERROR, 2.0, CONNECTOR.check(parsed, quick))
    assert "certificate" in error.message


async def test_loopback_is_refused_by_the_guard(guarded_context: ConnectContext) -> None:
    await expect(SourceErrorCode.HOST_REFUSED, 1.0, CONNECTOR.check(config(), guarded_context))
