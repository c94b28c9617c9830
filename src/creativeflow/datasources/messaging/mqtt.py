"""MQTT brokers through paho-mqtt's public client API (`mqtt_session`), MQTT 3.1.1 or 5.

MQTT keeps no list of topics: discovery subscribes to the configured filters for
`listen_seconds` and reports the topics it hears (retained messages arrive at once), and a
preview listens to one topic the same way. Subscriptions are QoS 0 on a clean session, so
nothing is acknowledged, queued or kept for this client once it disconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, ValidationInfo, field_validator

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
    reveal_optional,
)
from creativeflow.datasources.fields import HostName, Port, TlsOptions
from creativeflow.datasources.messaging.common import (
    MARGIN_SECONDS,
    Budget,
    default_port,
    os_error_in,
    payload_value,
    timeout_error,
)
from creativeflow.datasources.rows import infer_columns, jsonable

if TYPE_CHECKING:
    from paho.mqtt.client import MQTTMessage

    from creativeflow.datasources.messaging.mqtt_session import MqttSession

MQTT_PORT = 1883
MQTTS_PORT = 8883
VERSION_TOPIC = "$SYS/broker/version"
VERSION_WAIT_SECONDS = 1.0
PREVIEW_COLUMNS = ("topic", "payload", "qos", "retain", "received_at")

# CONNACK refusals as MQTT 5 reason codes (paho maps MQTT 3.1.1's return codes onto them).
_AUTH_REFUSED = {134, 135}  # bad user name or password, not authorized


def _topic_filter(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    if len(value.encode()) > 65535 or "\x00" in value:
        raise ValueError("must be at most 65535 bytes without NUL characters")
    levels = value.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise ValueError(f"{value!r}: '#' must be a whole level, and the last one")
        if "+" in level and level != "+":
            raise ValueError(f"{value!r}: '+' must be a whole level")
    return value


TopicFilter = Annotated[str, AfterValidator(_topic_filter)]


class MqttConfig(SourceConfig):
    # Validation errors never echo what was sent (it may be a secret).
    model_config = ConfigDict(hide_input_in_errors=True)

    type: Literal["mqtt"] = Field(description="MQTT broker")
    host: HostName = Field(description="Broker host name or IP address")
    port: Port | None = Field(
        default=None, description="Port: 1883, or 8883 with TLS, when left empty"
    )
    protocol_version: Literal["3.1.1", "5"] = Field(
        default="3.1.1", description="MQTT protocol version"
    )
    username: str | None = Field(
        default=None, min_length=1, max_length=255, description="User name, when required"
    )
    password: Secret | None = Field(
        default=None, validate_default=True, description="Password, when required"
    )
    tls: TlsOptions = Field(default_factory=TlsOptions, description="TLS (MQTTS)")
    client_id_prefix: str = Field(
        default="creativeflow-",
        pattern=r"^[A-Za-z0-9_-]{1,15}$",
        description="Start of the client id (1-15 letters, digits, '-' or '_'); 8 random "
        "characters follow, so brokers that enforce MQTT's 23-character limit accept it",
    )
    topics: list[TopicFilter] = Field(
        default_factory=lambda: ["#"],
        min_length=1,
        max_length=50,
        description="Topic filters discovery listens to ('+' one level, '#' the rest)",
    )
    listen_seconds: float = Field(
        default=2.0,
        ge=1,
        le=30,
        description="How long discovery and preview listen for messages (1-30 s; never "
        "longer than the connection time limit)",
    )

    @field_validator("password")
    @classmethod
    def _password_needs_user(cls, value: Any, info: ValidationInfo) -> Any:
        if value and not info.data.get("username") and info.data.get("protocol_version") != "5":
            raise ValueError("MQTT 3.1.1 sends a password only with a user name; set username")
        return value

    @property
    def mqtt_port(self) -> int:
        return default_port(self.port, self.tls, MQTT_PORT, MQTTS_PORT)

    def hosts(self) -> list[tuple[str, int]]:
        return [(self.host, self.mqtt_port)]


def topic_name(value: str) -> str:
    if not value or "+" in value or "#" in value or "\x00" in value:
        raise SourceError(
            SourceErrorCode.INVALID_OBJECT,
            "preview takes one topic name, without the wildcards '+' and '#'",
        )
    return value


def _mqtt_error(exc: BaseException, config: MqttConfig, target: str) -> SourceError:
    from creativeflow.datasources.messaging.mqtt_session import MqttClosed, MqttRefused

    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, MqttRefused):
        code = exc.code
        if code in _AUTH_REFUSED:
            who = f"user {config.username!r}" if config.username else "an anonymous client"
            return SourceError(SourceErrorCode.AUTH_FAILED, f"{target} refused {who} ({code})")
        if code == 138:
            return SourceError(SourceErrorCode.PERMISSION_DENIED, f"{target} banned this client")
        if code == 132:
            return SourceError(
                SourceErrorCode.PROTOCOL_ERROR,
                f"{target} does not accept MQTT {config.protocol_version}",
            )
        if code == 136:
            return SourceError(SourceErrorCode.UNREACHABLE, f"{target} is unavailable (136)")
        return SourceError(SourceErrorCode.ERROR, f"{target} refused the connection ({code})")
    if isinstance(exc, TimeoutError):
        return timeout_error(target)
    cause = os_error_in(exc)
    if cause is not None:
        return network_error(cause, target)
    if isinstance(exc, MqttClosed):
        return SourceError(SourceErrorCode.PROTOCOL_ERROR, f"{target} closed the connection")
    return SourceError(SourceErrorCode.ERROR, f"{target}: {type(exc).__name__}")


@contextlib.asynccontextmanager
async def _connected(config: MqttConfig, context: ConnectContext) -> AsyncIterator[MqttSession]:
    """A connected session (CONNACK accepted), disconnected and closed on the way out."""
    from creativeflow.datasources.messaging.mqtt_session import MqttSession

    port = config.mqtt_port
    target = f"the MQTT broker {config.host}:{port}"
    address = await context.address(config.host, port)
    tls = config.tls.context()
    # paho checks the certificate against the host it dials and takes no separate TLS server
    # name, so with TLS it dials the (checked) name; without TLS, the checked address.
    dial = config.host if tls else address
    # Connecting (TCP, TLS, CONNACK) ends before the service's own limit.
    limit = max(0.5, context.timeout_seconds - MARGIN_SECONDS)
    session = MqttSession(
        client_id=config.client_id_prefix + secrets.token_hex(4),
        v5=config.protocol_version == "5",
        username=config.username,
        password=reveal_optional(config.password),
        tls=tls,
        keepalive=max(5, int(context.timeout_seconds) + 5),
        connect_timeout=limit,
    )
    try:
        async with asyncio.timeout(limit):
            await session.connect(dial, port)
        yield session
    except SourceError:
        raise
    except Exception as exc:
        raise _mqtt_error(exc, config, target) from exc
    finally:
        session.close()


async def _subscribe(session: MqttSession, topics: list[str], budget: Budget, target: str) -> None:
    async with asyncio.timeout(budget.left()):
        granted = await session.subscribe(topics)
    for topic, code in zip(topics, granted, strict=False):
        if code >= 0x80:
            raise SourceError(
                SourceErrorCode.PERMISSION_DENIED, f"{target} refused a subscription to {topic!r}"
            )


async def _messages(session: MqttSession, seconds: float) -> AsyncGenerator[MQTTMessage, None]:
    """Messages as they arrive, for `seconds` at most."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            yield await asyncio.wait_for(session.receive(), left)
        except TimeoutError:
            return


def _body(payload: Any) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()


def _row(message: MQTTMessage) -> dict[str, Any]:
    return {
        "topic": message.topic,
        "payload": payload_value(_body(message.payload)),
        "qos": message.qos,
        "retain": bool(message.retain),
        "received_at": dt.datetime.now(dt.UTC),
    }


class MqttConnector:
    async def check(self, config: MqttConfig, context: ConnectContext) -> CheckResult:
        budget = Budget(context.timeout_seconds)
        version = None
        async with _connected(config, context) as session:
            identifier = session.client_id
            # Brokers that publish $SYS (Mosquitto does) keep their version there, retained.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(budget.left(VERSION_WAIT_SECONDS)):
                    await session.subscribe([VERSION_TOPIC])
                    message = await session.receive()
                    version = _body(message.payload).decode("utf-8", "replace").strip()
        return CheckResult(
            server_version=version,
            details={"protocol": config.protocol_version, "client_id": identifier},
        )

    async def discover(self, config: MqttConfig, context: ConnectContext) -> Discovery:
        budget = Budget(context.timeout_seconds)
        seen: dict[str, dict[str, Any]] = {}
        truncated = False
        async with _connected(config, context) as session:
            await _subscribe(session, config.topics, budget, f"the MQTT broker {config.host}")
            seconds = budget.left(config.listen_seconds)
            async with contextlib.aclosing(_messages(session, seconds)) as messages:
                async for message in messages:
                    topic = message.topic
                    if topic not in seen:
                        if len(seen) >= MAX_DISCOVERED:
                            truncated = True
                            break
                        seen[topic] = {"messages": 0, "retained": False}
                    stats = seen[topic]
                    stats["messages"] += 1
                    stats["retained"] = stats["retained"] or bool(message.retain)
                    stats["last_payload_bytes"] = len(_body(message.payload))
        objects = [
            DiscoveredObject(name=topic, kind="topic", details=seen[topic])
            for topic in sorted(seen)
        ]
        return Discovery(objects=objects, truncated=truncated)

    async def preview(
        self, config: MqttConfig, context: ConnectContext, object_name: str, limit: int
    ) -> Preview:
        topic = topic_name(object_name)
        budget = Budget(context.timeout_seconds)
        rows: list[dict[str, Any]] = []
        async with _connected(config, context) as session:
            await _subscribe(session, [topic], budget, f"the MQTT broker {config.host}")
            seconds = budget.left(config.listen_seconds)
            async with contextlib.aclosing(_messages(session, seconds)) as messages:
                async for message in messages:
                    rows.append(_row(message))
                    if len(rows) >= limit:
                        break
        return Preview(
            columns=infer_columns(rows, order=PREVIEW_COLUMNS),
            rows=[jsonable(row) for row in rows],
        )


SOURCE_TYPE = SourceType(
    name="mqtt",
    display_name="MQTT",
    category=SourceCategory.STREAMING,
    config_model=MqttConfig,
    connector=MqttConnector(),
    description="Topics heard on an MQTT broker while listening, and their messages",
    drivers=("paho.mqtt",),
    extra="mqtt",
)
