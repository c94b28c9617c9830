"""MongoDB: no server runs here, so config validation, the driver's presence, BSON values as
rows, SRV rules, and the answers for ports that refuse, stay silent or speak something else."""

from __future__ import annotations

import datetime as dt
import decimal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from creativeflow.datasources.base import (
    ConnectContext,
    SourceError,
    SourceErrorCode,
    secret_field_paths,
)
from creativeflow.datasources.rows import infer_columns, jsonable
from creativeflow.datasources.stores.mongodb import SOURCE_TYPE, MongoDbConfig, _plain
from creativeflow.datasources.stores.mongodb_client import srv_target_allowed
from tests.datasources.servers import closed_port

pytest_plugins = ["tests.datasources.stores.peers"]

PASSWORD = "mongo-Secret-42"
CONNECTOR = SOURCE_TYPE.connector


def config(**overrides: Any) -> MongoDbConfig:
    values: dict[str, Any] = {
        "type": "mongodb",
        "servers": [{"host": "127.0.0.1", "port": closed_port()}],
        "database": "app",
        "username": "reader",
        "password": PASSWORD,
    }
    values.update(overrides)
    return MongoDbConfig.model_validate(values)


@pytest.fixture
def quick(file_root: Path) -> ConnectContext:
    return ConnectContext(timeout_seconds=1.0, allow_private_hosts=True, file_root=file_root)


def locs(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[str | int, ...]]:
    return [tuple(error["loc"]) for error in exc.value.errors()]


# -- config ----------------------------------------------------------------------------------


def test_a_good_config_takes_defaults() -> None:
    parsed = MongoDbConfig.model_validate(
        {"type": "mongodb", "servers": [{"host": "Mongo.Example.com"}], "database": "app"}
    )
    assert parsed.servers[0].host == "mongo.example.com"
    assert parsed.servers[0].port == 27017
    assert parsed.auth_source == "admin"
    assert parsed.tls.enabled is False
    assert parsed.hosts() == [("mongo.example.com", 27017)]


def test_an_srv_config_has_no_fixed_hosts() -> None:
    parsed = config(servers=[], srv="cluster0.abc12.mongodb.net", tls={"enabled": True})
    assert parsed.srv == "cluster0.abc12.mongodb.net"
    assert parsed.hosts() == []


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"servers": [{"host": "mongodb://db.example.com"}]}, ("servers", 0, "host")),
        ({"servers": [{"host": "db.example.com:27017"}]}, ("servers", 0, "host")),
        ({"servers": [{"host": "db.example.com", "port": 0}]}, ("servers", 0, "port")),
        ({"servers": [{"host": "db.example.com", "port": 65536}]}, ("servers", 0, "port")),
        ({"servers": []}, ("srv",)),
        ({"srv": "cluster0.example.net"}, ("srv",)),
        ({"servers": [], "srv": "https://cluster0.example.net"}, ("srv",)),
        ({"database": "app.users"}, ("database",)),
        ({"database": ""}, ("database",)),
        ({"password": None}, ("password",)),
        ({"username": None}, ("password",)),
        ({"auth_source": "a b"}, ("auth_source",)),
        ({"replica_set": "rs 0"}, ("replica_set",)),
        ({"tls": {"verify": False}}, ("tls",)),
        (
            {"tls": {"enabled": True, "ca_certificate": "not a certificate"}},
            ("tls", "ca_certificate"),
        ),
        ({"uri": "mongodb://reader:pw@db"}, ("uri",)),
    ],
)
def test_mistakes_name_their_field(overrides: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        config(**overrides)
    assert loc in locs(caught)


def test_the_password_is_a_secret() -> None:
    parsed = config()
    assert PASSWORD not in repr(parsed)
    assert PASSWORD not in parsed.model_dump_json()
    schema = MongoDbConfig.model_json_schema()
    assert {"servers", "srv", "database", "username", "password", "tls"} <= set(
        schema["properties"]
    )


def test_secret_fields_are_listed() -> None:
    assert secret_field_paths(MongoDbConfig) == ["password"]


def test_the_driver_is_installed_here() -> None:
    assert SOURCE_TYPE.drivers == ("pymongo",)
    assert SOURCE_TYPE.extra == "mongodb"
    assert SOURCE_TYPE.driver_error() is None


# -- values ----------------------------------------------------------------------------------


def test_bson_values_become_rows() -> None:
    from bson import Binary, Decimal128, Int64, ObjectId, Regex, Timestamp

    object_id = ObjectId()
    when = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC)
    document = {
        "_id": object_id,
        "count": Int64(7),
        "price": Decimal128("19.99"),
        "when": when,
        "seen": Timestamp(1_700_000_000, 1),
        "pattern": Regex("^a.*", "i"),
        "blob": Binary(b"\x00\x01"),
        "id": uuid.UUID(int=1),
        "tags": ["a", "b"],
        "nested": {"ok": True, "ref": object_id},
    }
    row = _plain(document)
    assert row["_id"] == str(object_id)
    assert row["price"] == decimal.Decimal("19.99")
    columns = {column.name: column.type for column in infer_columns([row])}
    assert columns == {
        "_id": "string",
        "count": "integer",
        "price": "number",
        "when": "datetime",
        "seen": "datetime",
        "pattern": "string",
        "blob": "binary",
        "id": "string",
        "tags": "array",
        "nested": "object",
    }
    safe = jsonable(row)
    assert safe["when"] == when.isoformat()
    assert safe["nested"] == {"ok": True, "ref": str(object_id)}
    assert safe["blob"] == "AAE="


def test_srv_targets_must_lie_in_the_clusters_domain() -> None:
    srv = "cluster0.abc12.mongodb.net"
    assert srv_target_allowed("cluster0-shard-00-00.abc12.mongodb.net", srv)
    assert srv_target_allowed("CLUSTER0-SHARD-00-01.abc12.mongodb.net.", srv)
    assert not srv_target_allowed("evil.example.com", srv)
    assert not srv_target_allowed("abc12.mongodb.net.evil.com", srv)
    assert not srv_target_allowed("localhost", srv)
    # A two-label name: the targets must lie below the name itself.
    assert srv_target_allowed("db1.example.com", "example.com")
    assert not srv_target_allowed("example.com", "example.com")
    assert not srv_target_allowed("other.com", "example.com")


# -- connecting ------------------------------------------------------------------------------


async def expect(code: SourceErrorCode, seconds: float, call: Any) -> SourceError:
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        await call
    assert caught.value.code == code, caught.value.message
    assert time.monotonic() - started < seconds
    assert PASSWORD not in caught.value.message
    return caught.value


async def test_a_closed_port_refuses(quick: ConnectContext) -> None:
    error = await expect(SourceErrorCode.CONNECTION_REFUSED, 3.0, CONNECTOR.check(config(), quick))
    assert "127.0.0.1" in error.message


async def test_every_server_is_tried_within_the_time_limit(quick: ConnectContext) -> None:
    servers = [{"host": "127.0.0.1", "port": closed_port()} for _ in range(3)]
    await expect(
        SourceErrorCode.CONNECTION_REFUSED, 3.0, CONNECTOR.check(config(servers=servers), quick)
    )


async def test_a_silent_port_times_out(quick: ConnectContext, silent_port: int) -> None:
    servers = [{"host": "127.0.0.1", "port": silent_port}]
    await expect(SourceErrorCode.TIMEOUT, 3.0, CONNECTOR.check(config(servers=servers), quick))


async def test_a_peer_speaking_http_is_a_protocol_error(
    quick: ConnectContext, http_peer: int
) -> None:
    servers = [{"host": "127.0.0.1", "port": http_peer}]
    await expect(
        SourceErrorCode.PROTOCOL_ERROR, 3.0, CONNECTOR.discover(config(servers=servers), quick)
    )


async def test_tls_to_a_plain_peer_is_a_tls_error(quick: ConnectContext, http_peer: int) -> None:
    parsed = config(servers=[{"host": "127.0.0.1", "port": http_peer}], tls={"enabled": True})
    await expect(SourceErrorCode.TLS_ERROR, 3.0, CONNECTOR.check(parsed, quick))


async def test_loopback_is_refused_by_the_guard(guarded_context: ConnectContext) -> None:
    await expect(SourceErrorCode.HOST_REFUSED, 1.0, CONNECTOR.check(config(), guarded_context))


async def test_an_srv_name_without_records_is_not_found(quick: ConnectContext) -> None:
    parsed = config(servers=[], srv="cluster0.creativeflow.invalid")
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        await CONNECTOR.check(parsed, quick)
    # Without a reachable DNS server the lookup times out instead.
    assert caught.value.code in (SourceErrorCode.HOST_NOT_FOUND, SourceErrorCode.TIMEOUT)
    assert time.monotonic() - started < 7.0


@pytest.mark.parametrize("name", ["", "$cmd", "system.users", "a\x00b", "x" * 256])
async def test_malformed_collection_names_are_invalid(quick: ConnectContext, name: str) -> None:
    with pytest.raises(SourceError) as caught:
        await CONNECTOR.preview(config(), quick, name, 10)
    assert caught.value.code == SourceErrorCode.INVALID_OBJECT
