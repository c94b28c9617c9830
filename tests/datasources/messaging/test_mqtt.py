"""MQTT against Mosquitto on 127.0.0.1 (TEST_MQTT_URL): retained messages on topics of each
test's own, cleared afterwards. Mosquitto here lets anyone in, so refused logins are tested
against a local fake broker that answers CONNECT with a refusing CONNACK."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pydantic import ValidationError

from creativeflow.datasources.base import ConnectContext, SourceError, SourceErrorCode
from creativeflow.datasources.messaging.mqtt import SOURCE_TYPE, MqttConfig
from tests.datasources.servers import ServerAddress, closed_port

CONNECTOR: Any = SOURCE_TYPE.connector


def config(**fields: Any) -> MqttConfig:
    return MqttConfig.model_validate({"type": "mqtt", "host": "127.0.0.1"} | fields)


def broker_config(server: ServerAddress, **fields: Any) -> MqttConfig:
    broker: dict[str, Any] = {"host": server.host, "port": server.port}
    if server.user:
        broker |= {"username": server.user, "password": server.password}
    return config(**(broker | fields))


def names(exc: pytest.ExceptionInfo[ValidationError], loc: tuple[Any, ...]) -> bool:
    """Whether an error of the validation points at `loc` (or inside it)."""
    return any(error["loc"][: len(loc)] == loc for error in exc.value.errors())


@asynccontextmanager
async def retained(server: ServerAddress, messages: dict[str, bytes]) -> AsyncIterator[None]:
    """Retained messages on the test broker, cleared (an empty retained message) afterwards."""
    import aiomqtt

    client = aiomqtt.Client(
        server.host, server.port, username=server.user, password=server.password
    )
    async with client:
        for topic, payload in messages.items():
            await client.publish(topic, payload, qos=1, retain=True)
    try:
        yield
    finally:
        async with client:
            for topic in messages:
                await client.publish(topic, b"", qos=1, retain=True)


async def publish(server: ServerAddress, topic: str, payload: bytes) -> None:
    import aiomqtt

    client = aiomqtt.Client(
        server.host, server.port, username=server.user, password=server.password
    )
    async with client:
        await client.publish(topic, payload, qos=1)


@pytest.fixture
def prefix() -> str:
    return f"cf-test/{uuid.uuid4().hex[:12]}"


# -- config --------------------------------------------------------------------------------


def test_a_good_config_has_sensible_defaults() -> None:
    parsed = config()

    assert parsed.mqtt_port == 1883
    assert config(tls={"enabled": True}).mqtt_port == 8883
    assert parsed.topics == ["#"]
    assert parsed.listen_seconds == 2
    assert parsed.hosts() == [("127.0.0.1", 1883)]


def test_mqtt_5_allows_a_password_without_a_user_name() -> None:
    assert config(protocol_version="5", password="token").password is not None


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"host": "mqtt://broker"}, ("host",)),
        ({"host": "bad_host"}, ("host",)),
        ({"port": 0}, ("port",)),
        ({"port": 65536}, ("port",)),
        ({"password": "pw"}, ("password",)),
        ({"protocol_version": "4"}, ("protocol_version",)),
        ({"topics": ["ok/#", "a/#/b"]}, ("topics", 1)),
        ({"topics": ["a+/b"]}, ("topics", 0)),
        ({"topics": [""]}, ("topics", 0)),
        ({"topics": []}, ("topics",)),
        ({"listen_seconds": 0.5}, ("listen_seconds",)),
        ({"listen_seconds": 31}, ("listen_seconds",)),
        ({"client_id_prefix": "has space"}, ("client_id_prefix",)),
        ({"client_id_prefix": "x" * 16}, ("client_id_prefix",)),
    ],
)
def test_config_mistakes_name_the_field(fields: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as exc:
        config(**fields)

    assert names(exc, loc)


# -- the broker ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["3.1.1", "5"])
async def test_check_answers_the_broker_version(
    mqtt_server: ServerAddress, context: ConnectContext, version: str
) -> None:
    result = await CONNECTOR.check(broker_config(mqtt_server, protocol_version=version), context)

    # Mosquitto publishes $SYS/broker/version ("mosquitto version 2.0.11").
    assert result.server_version and "mosquitto" in result.server_version
    assert result.details["protocol"] == version
    assert result.details["client_id"].startswith("creativeflow-")


async def test_discover_reports_the_topics_heard(
    mqtt_server: ServerAddress, context: ConnectContext, prefix: str
) -> None:
    messages = {f"{prefix}/a": b'{"t": 21.5}', f"{prefix}/b/c": b"on"}
    source = broker_config(mqtt_server, topics=[f"{prefix}/#"], listen_seconds=1)

    async with retained(mqtt_server, messages):
        discovery = await CONNECTOR.discover(source, context)

    assert [(item.kind, item.name) for item in discovery.objects] == [
        ("topic", f"{prefix}/a"),
        ("topic", f"{prefix}/b/c"),
    ]
    assert discovery.objects[0].details == {
        "messages": 1,
        "retained": True,
        "last_payload_bytes": 11,
    }


async def test_preview_answers_retained_then_live_messages(
    mqtt_server: ServerAddress, context: ConnectContext, prefix: str
) -> None:
    topic = f"{prefix}/sensor"
    source = broker_config(mqtt_server, listen_seconds=1.5)

    async with retained(mqtt_server, {topic: b'{"t": 21.5, "ok": true}'}):
        preview = asyncio.create_task(CONNECTOR.preview(source, context, topic, 10))
        await asyncio.sleep(0.5)
        await publish(mqtt_server, topic, b"plain text")
        result = await preview

    assert [(row["payload"], row["retain"]) for row in result.rows] == [
        ({"t": 21.5, "ok": True}, True),
        ("plain text", False),
    ]
    assert result.rows[0]["topic"] == topic
    types = {column.name: column.type for column in result.columns}
    assert types == {
        "topic": "string",
        "payload": "string",  # an object, then text
        "qos": "integer",
        "retain": "boolean",
        "received_at": "datetime",
    }


async def test_preview_stops_at_the_limit(
    mqtt_server: ServerAddress, context: ConnectContext, prefix: str
) -> None:
    topic = f"{prefix}/one"
    source = broker_config(mqtt_server, listen_seconds=10)
    started = time.monotonic()

    async with retained(mqtt_server, {topic: b"42"}):
        result = await CONNECTOR.preview(source, context, topic, 1)

    assert result.rows[0]["payload"] == 42
    assert result.columns[1].type == "integer"
    assert time.monotonic() - started < 3


async def test_listening_never_outlasts_the_time_limit(
    mqtt_server: ServerAddress, file_root: Any, prefix: str
) -> None:
    quick = ConnectContext(timeout_seconds=1.0, allow_private_hosts=True, file_root=file_root)
    source = broker_config(mqtt_server, topics=[f"{prefix}/#"], listen_seconds=30)
    started = time.monotonic()

    discovery = await CONNECTOR.discover(source, quick)

    assert discovery.objects == []
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("topic", ["a/+/b", "a/#", ""])
async def test_a_wildcard_topic_is_an_invalid_object(context: ConnectContext, topic: str) -> None:
    with pytest.raises(SourceError) as exc:
        await CONNECTOR.preview(config(), context, topic, 10)

    assert exc.value.code is SourceErrorCode.INVALID_OBJECT


@asynccontextmanager
async def refusing_broker(connack: bytes) -> AsyncIterator[int]:
    """A broker that reads one CONNECT and answers it with `connack`."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(connack)
        await writer.drain()
        await reader.read(1024)
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("version", "connack"),
    [
        ("3.1.1", bytes([0x20, 2, 0, 4])),  # bad user name or password
        ("3.1.1", bytes([0x20, 2, 0, 5])),  # not authorised
        ("5", bytes([0x20, 3, 0, 0x86, 0])),  # bad user name or password
    ],
)
async def test_a_refused_login_is_auth_failed_without_the_password(
    context: ConnectContext, version: str, connack: bytes
) -> None:
    secret = "wrong-" + uuid.uuid4().hex

    async with refusing_broker(connack) as port:
        source = config(port=port, protocol_version=version, username="u", password=secret)
        with pytest.raises(SourceError) as exc:
            await CONNECTOR.check(source, context)

    assert exc.value.code is SourceErrorCode.AUTH_FAILED
    assert secret not in exc.value.message
    assert "'u'" in exc.value.message


async def test_a_failed_tls_handshake_closes_its_socket(context: ConnectContext) -> None:
    # paho drops the socket of a failed TLS handshake without closing it; the connector does.
    closed = asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()
        # The connection ends: EOF, or a reset (the client left the answer unread).
        with contextlib.suppress(ConnectionResetError):
            while await reader.read(1024):
                pass
        closed.set()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(SourceError) as exc:
            await CONNECTOR.check(config(port=port, tls={"enabled": True}), context)
        await asyncio.wait_for(closed.wait(), 2.0)
    finally:
        server.close()
        await server.wait_closed()

    assert exc.value.code is SourceErrorCode.TLS_ERROR


async def test_a_closed_port_is_connection_refused(context: ConnectContext) -> None:
    with pytest.raises(SourceError) as exc:
        await CONNECTOR.check(config(port=closed_port()), context)

    assert exc.value.code is SourceErrorCode.CONNECTION_REFUSED


async def test_a_silent_port_times_out_in_time(silent_port: int, file_root: Any) -> None:
    quick = ConnectContext(timeout_seconds=1.0, allow_private_hosts=True, file_root=file_root)
    started = time.monotonic()

    with pytest.raises(SourceError) as exc:
        await CONNECTOR.check(config(port=silent_port), quick)

    assert exc.value.code is SourceErrorCode.TIMEOUT
    assert time.monotonic() - started < 2.0


async def test_loopback_is_refused_in_production(guarded_context: ConnectContext) -> None:
    with pytest.raises(SourceError) as exc:
        await CONNECTOR.discover(config(), guarded_context)

    assert exc.value.code is SourceErrorCode.HOST_REFUSED
