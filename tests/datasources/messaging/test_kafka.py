"""Kafka: aiokafka is not installed here (on purpose), so these tests cover the config, the
DRIVER_MISSING answer, and what the connector decides before it needs the driver (the address
guard, a closed port, a malformed topic name)."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from pydantic import ValidationError

from creativeflow.datasources.base import (
    ConnectContext,
    SourceError,
    SourceErrorCode,
    secret_field_paths,
)
from creativeflow.datasources.messaging.kafka import SOURCE_TYPE, KafkaConfig
from tests.datasources.servers import closed_port

CONNECTOR: Any = SOURCE_TYPE.connector


def config(**fields: Any) -> KafkaConfig:
    return KafkaConfig.model_validate({"type": "kafka", "bootstrap_servers": ["k1:9092"]} | fields)


def names(exc: pytest.ExceptionInfo[ValidationError], loc: tuple[Any, ...]) -> bool:
    """Whether an error of the validation points at `loc` (or inside it)."""
    return any(error["loc"][: len(loc)] == loc for error in exc.value.errors())


def test_a_good_config_normalises_its_servers() -> None:
    parsed = config(bootstrap_servers=["Broker-1.Example.com", "10.0.0.2:9093", "[::1]:9094"])

    assert parsed.bootstrap_servers == ["broker-1.example.com:9092", "10.0.0.2:9093", "[::1]:9094"]
    assert parsed.hosts() == [("broker-1.example.com", 9092), ("10.0.0.2", 9093), ("::1", 9094)]
    assert parsed.security_protocol == "PLAINTEXT"


def test_sasl_ssl_with_credentials_is_accepted() -> None:
    parsed = config(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        username="reader",
        password="s3cret",
        verify_certificate=False,
    )

    assert parsed.uses_tls
    assert secret_field_paths(KafkaConfig) == ["password"]
    assert "s3cret" not in parsed.model_dump_json()


@pytest.mark.parametrize(
    ("servers", "loc"),
    [
        (["bad_host:9092"], ("bootstrap_servers", 0)),
        (["k1:0"], ("bootstrap_servers", 0)),
        (["k1:9092", "k2:65536"], ("bootstrap_servers", 1)),
        (["kafka://k1:9092"], ("bootstrap_servers", 0)),
        (["::1:9092"], ("bootstrap_servers", 0)),
        ([], ("bootstrap_servers",)),
    ],
)
def test_bad_bootstrap_servers_name_the_entry(servers: list[str], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as exc:
        config(bootstrap_servers=servers)

    assert names(exc, loc)


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"security_protocol": "SASL_PLAINTEXT", "username": "reader"}, ("password",)),
        ({"security_protocol": "SASL_SSL", "password": "pw"}, ("username",)),
        ({"username": "reader", "password": "pw"}, ("username",)),
        ({"security_protocol": "TLS"}, ("security_protocol",)),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI"}, ("sasl_mechanism",)),
        ({"ca_certificate": "not a certificate", "security_protocol": "SSL"}, ("ca_certificate",)),
        ({"port": 9092}, ("port",)),
    ],
)
def test_config_mistakes_name_the_field(fields: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as exc:
        config(**fields)

    assert names(exc, loc)


def test_the_missing_driver_says_which_extra_installs_it() -> None:
    if importlib.util.find_spec("aiokafka") is not None:
        pytest.skip("aiokafka is installed here")

    error = SOURCE_TYPE.driver_error()

    assert error is not None
    assert error.code is SourceErrorCode.DRIVER_MISSING
    assert "creativeflow[kafka]" in error.message


async def test_a_closed_port_is_connection_refused(context: ConnectContext) -> None:
    port = closed_port()

    with pytest.raises(SourceError) as exc:
        await CONNECTOR.check(config(bootstrap_servers=[f"127.0.0.1:{port}"]), context)

    assert exc.value.code is SourceErrorCode.CONNECTION_REFUSED


async def test_loopback_brokers_are_refused_in_production(guarded_context: ConnectContext) -> None:
    with pytest.raises(SourceError) as exc:
        await CONNECTOR.discover(config(bootstrap_servers=["127.0.0.1:9092"]), guarded_context)

    assert exc.value.code is SourceErrorCode.HOST_REFUSED


@pytest.mark.parametrize("name", ["", "a topic", "a/b", "x" * 250, ".."])
async def test_a_malformed_topic_is_an_invalid_object(context: ConnectContext, name: str) -> None:
    with pytest.raises(SourceError) as exc:
        await CONNECTOR.preview(config(), context, name, 10)

    assert exc.value.code is SourceErrorCode.INVALID_OBJECT
