"""Apache Kafka through aiokafka: the cluster's brokers, its topics, and the newest messages of
a topic read without a consumer group (nothing is committed, no group is joined).

aiokafka connects to the brokers the cluster advertises, not only to the bootstrap servers;
every advertised broker passes the address guard before anything is sent to it. That is why
the protocol version is fixed (`API_VERSION`): with "auto" the client asks an advertised
broker for its versions while bootstrapping, before the guard could look at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal

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
    reveal,
)
from creativeflow.datasources.fields import PemCertificate, TlsOptions
from creativeflow.datasources.messaging.common import (
    Budget,
    host_port,
    os_error_in,
    parse_host_port,
    timeout_error,
)
from creativeflow.datasources.messaging.kafka_read import PREVIEW_COLUMNS, newest_messages
from creativeflow.datasources.rows import infer_columns, jsonable

DEFAULT_PORT = 9092
# Kafka 2.0's protocol (brokers from 2.0 on answer it); see the module's docstring.
API_VERSION = "2.0.0"
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


def _bootstrap_server(value: str) -> str:
    return host_port(*parse_host_port(value, DEFAULT_PORT))


BootstrapServer = Annotated[str, AfterValidator(_bootstrap_server), Field(max_length=300)]


class KafkaConfig(SourceConfig):
    # Validation errors never echo what was sent (it may be a secret).
    model_config = ConfigDict(hide_input_in_errors=True)

    type: Literal["kafka"] = Field(description="Apache Kafka")
    bootstrap_servers: list[BootstrapServer] = Field(
        min_length=1,
        max_length=20,
        description="Brokers to fetch the cluster's metadata from, as host:port (port 9092 "
        "when left out); one reachable broker is enough",
    )
    security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT",
        description="PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL (user name and "
        "password, over TLS for SASL_SSL)",
    )
    sasl_mechanism: SaslMechanism = Field(
        default="PLAIN", description="How SASL sends the password: PLAIN or SCRAM-SHA-256/512"
    )
    username: str | None = Field(
        default=None,
        max_length=255,
        validate_default=True,
        description="SASL user name (SASL_PLAINTEXT and SASL_SSL only)",
    )
    password: Secret | None = Field(
        default=None,
        validate_default=True,
        description="SASL password (SASL_PLAINTEXT and SASL_SSL only)",
    )
    verify_certificate: bool = Field(
        default=True,
        description="Check the brokers' TLS certificates (SSL and SASL_SSL); turn off only "
        "on a network you trust",
    )
    ca_certificate: PemCertificate | None = Field(
        default=None,
        validate_default=True,
        description="PEM of the CA that signed the brokers' certificates (SSL and SASL_SSL), "
        "when it is not a public one",
    )

    @field_validator("bootstrap_servers")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("username", "password")
    @classmethod
    def _sasl_credentials(cls, value: Any, info: ValidationInfo) -> Any:
        protocol = info.data.get("security_protocol")
        if protocol is None:
            return value
        if protocol.startswith("SASL_") and not value:
            raise ValueError(f"is required with {protocol}")
        if not protocol.startswith("SASL_") and value:
            raise ValueError("applies only with SASL_PLAINTEXT or SASL_SSL")
        return value

    @field_validator("ca_certificate")
    @classmethod
    def _tls_only(cls, value: str | None, info: ValidationInfo) -> str | None:
        protocol = info.data.get("security_protocol")
        if value and protocol in ("PLAINTEXT", "SASL_PLAINTEXT"):
            raise ValueError("applies only with SSL or SASL_SSL")
        return value

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def hosts(self) -> list[tuple[str, int]]:
        return [parse_host_port(server, DEFAULT_PORT) for server in self.bootstrap_servers]


def _options(config: KafkaConfig, context: ConnectContext) -> dict[str, Any]:
    """The aiokafka settings the client and the consumer share."""
    options: dict[str, Any] = {
        "client_id": "creativeflow",
        "api_version": API_VERSION,
        "security_protocol": config.security_protocol,
        "request_timeout_ms": max(1000, int(context.timeout_seconds * 1000)),
    }
    if config.uses_tls:
        tls = TlsOptions(
            enabled=True, verify=config.verify_certificate, ca_certificate=config.ca_certificate
        )
        options["ssl_context"] = tls.context()
    if config.security_protocol.startswith("SASL_") and config.password is not None:
        options["sasl_mechanism"] = config.sasl_mechanism
        options["sasl_plain_username"] = config.username
        options["sasl_plain_password"] = reveal(config.password)
    return options


async def _reachable_server(config: KafkaConfig, context: ConnectContext, budget: Budget) -> str:
    """The first bootstrap server that accepts a connection, as aiokafka should dial it.

    aiokafka's bootstrap turns every failure into "unable to bootstrap"; a plain TCP connect
    first tells the owner whether the port is closed, silent or unreachable. With TLS the
    client dials the name (aiokafka checks the certificate against the host it connects to
    and takes no separate server name); without TLS it dials the checked address.
    """
    first_error: SourceError | None = None
    for host, port in config.hosts():
        address = await context.address(host, port)
        try:
            async with asyncio.timeout(budget.left()):
                _reader, writer = await asyncio.open_connection(address, port)
        except (OSError, TimeoutError) as exc:
            first_error = first_error or network_error(exc, f"the broker {host}:{port}")
            if budget.left() <= 0:
                break
            continue
        writer.close()
        return host_port(host if config.uses_tls else address, port)
    assert first_error is not None
    raise first_error


async def _guard_brokers(brokers: set[Any], context: ConnectContext) -> None:
    for broker in brokers:
        try:
            await context.address(broker.host, broker.port)
        except SourceError as exc:
            if exc.code is SourceErrorCode.HOST_NOT_FOUND:
                raise SourceError(
                    exc.code,
                    f"the cluster advertises broker {broker.host}:{broker.port}, which does not "
                    "resolve here (check the brokers' advertised.listeners)",
                ) from None
            raise


# aiokafka's exception classes (by name: they moved between releases) and what they mean here.
_FAILURES: tuple[tuple[tuple[str, ...], SourceErrorCode, str], ...] = (
    (
        ("KafkaTimeoutError", "RequestTimedOutError"),
        SourceErrorCode.TIMEOUT,
        "did not answer in time",
    ),
    (
        ("UnsupportedSaslMechanismError",),
        SourceErrorCode.AUTH_FAILED,
        "does not offer the SASL mechanism {mechanism}",
    ),
    (
        (
            "AuthenticationFailedError",
            "SaslAuthenticationFailedError",
            "SaslAuthenticationFailed",
            "IllegalSaslStateError",
        ),
        SourceErrorCode.AUTH_FAILED,
        "refused the SASL credentials of user {username!r}",
    ),
    (
        (
            "TopicAuthorizationFailedError",
            "ClusterAuthorizationFailedError",
            "GroupAuthorizationFailedError",
        ),
        SourceErrorCode.PERMISSION_DENIED,
        "does not let user {username!r} do this",
    ),
    (("UnknownTopicOrPartitionError",), SourceErrorCode.NOT_FOUND, "has no such topic"),
    (
        ("IncompatibleBrokerVersion", "UnsupportedVersionError"),
        SourceErrorCode.PROTOCOL_ERROR,
        "does not speak Kafka 2.0's protocol",
    ),
)


def _kafka_error(exc: BaseException, config: KafkaConfig, target: str) -> SourceError:
    from aiokafka import errors

    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, TimeoutError):
        return timeout_error(target)
    for names, code, text in _FAILURES:
        if any(isinstance(exc, getattr(errors, name, ())) for name in names):
            message = text.format(mechanism=config.sasl_mechanism, username=config.username)
            return SourceError(code, f"{target} {message}")
    cause = os_error_in(exc)
    if cause is not None:
        return network_error(cause, target)
    if isinstance(exc, errors.KafkaConnectionError):
        hint = "" if config.uses_tls else " (does its listener want TLS?)"
        return SourceError(
            SourceErrorCode.PROTOCOL_ERROR, f"{target} did not answer as a Kafka broker{hint}"
        )
    return SourceError(SourceErrorCode.ERROR, f"{target}: {type(exc).__name__}")


@dataclass(frozen=True, slots=True)
class _Session:
    client: Any  # aiokafka.client.AIOKafkaClient, bootstrapped, its brokers checked
    server: str


@asynccontextmanager
async def _session(
    config: KafkaConfig, context: ConnectContext, budget: Budget
) -> AsyncIterator[_Session]:
    """A client bootstrapped from the first reachable server, its brokers checked, inside
    what is left of the time limit."""
    server = await _reachable_server(config, context, budget)
    from aiokafka.client import AIOKafkaClient

    target = f"the Kafka broker {server}"
    client = AIOKafkaClient(bootstrap_servers=[server], **_options(config, context))
    try:
        async with asyncio.timeout(budget.left()):
            await client.bootstrap()
            await _guard_brokers(client.cluster.brokers(), context)
            yield _Session(client=client, server=server)
    except SourceError:
        raise
    except Exception as exc:
        raise _kafka_error(exc, config, target) from exc
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await client.close()


def topic_name(value: str) -> str:
    name = value.strip()
    if not _TOPIC.match(name) or name in (".", ".."):
        raise SourceError(
            SourceErrorCode.INVALID_OBJECT,
            "a Kafka topic name is 1-249 letters, digits, '.', '_' or '-'",
        )
    return name


class KafkaConnector:
    async def check(self, config: KafkaConfig, context: ConnectContext) -> CheckResult:
        async with _session(config, context, Budget(context.timeout_seconds)) as session:
            cluster = session.client.cluster
            controller = cluster.controller
            brokers = sorted(host_port(b.host, b.port) for b in cluster.brokers())
            # The Kafka protocol tells no broker version (ApiVersions lists request versions).
            return CheckResult(
                server_version=None,
                details={
                    "bootstrap_server": session.server,
                    "brokers": len(brokers),
                    "broker_addresses": brokers,
                    "controller": controller.nodeId if controller is not None else None,
                },
            )

    async def discover(self, config: KafkaConfig, context: ConnectContext) -> Discovery:
        async with _session(config, context, Budget(context.timeout_seconds)) as session:
            metadata = await session.client.fetch_all_metadata()
        names = sorted(
            name
            for name in metadata.topics(exclude_internal_topics=True)
            if not name.startswith("__")
        )
        objects = [
            DiscoveredObject(
                name=name,
                kind="topic",
                details={"partitions": len(metadata.partitions_for_topic(name) or ())},
            )
            for name in names[:MAX_DISCOVERED]
        ]
        return Discovery(objects=objects, truncated=len(names) > MAX_DISCOVERED)

    async def preview(
        self, config: KafkaConfig, context: ConnectContext, object_name: str, limit: int
    ) -> Preview:
        topic = topic_name(object_name)
        budget = Budget(context.timeout_seconds)
        async with _session(config, context, budget) as session:
            metadata = await session.client.fetch_all_metadata()
            if topic in metadata.unauthorized_topics:
                raise SourceError(
                    SourceErrorCode.PERMISSION_DENIED, f"user may not read the topic {topic}"
                )
            partitions = metadata.partitions_for_topic(topic)
            if partitions is None:
                raise SourceError(SourceErrorCode.NOT_FOUND, f"there is no topic {topic}")
            server = session.server
        target = f"the Kafka broker {server}"
        try:
            consumer_options = _options(config, context) | {"bootstrap_servers": [server]}
            rows, available = await newest_messages(
                consumer_options, topic, sorted(partitions), limit, budget
            )
        except SourceError:
            raise
        except Exception as exc:
            raise _kafka_error(exc, config, target) from exc
        columns = infer_columns(rows, order=PREVIEW_COLUMNS)
        return Preview(
            columns=columns,
            rows=[jsonable(row) for row in rows],
            truncated=available > len(rows),
        )


SOURCE_TYPE = SourceType(
    name="kafka",
    display_name="Apache Kafka",
    category=SourceCategory.STREAMING,
    config_model=KafkaConfig,
    connector=KafkaConnector(),
    description="Topics of a Kafka cluster, and their newest messages read without a "
    "consumer group",
    drivers=("aiokafka",),
    extra="kafka",
)
