"""The real servers the data-source tests connect to, read from the environment `.ci/run` sets
(TEST_DATABASE_URL, TEST_MYSQL_URL, TEST_REDIS_URL, TEST_RABBITMQ_URL, TEST_MQTT_URL,
TEST_NATS_URL). A test whose server is not configured is skipped, saying which variable."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import pytest


@dataclass(frozen=True, slots=True)
class ServerAddress:
    host: str
    port: int
    user: str | None
    password: str | None
    # The path's first segment: a database name, a Redis db number, an AMQP vhost.
    path: str | None


def server_from_env(variable: str, default_port: int) -> ServerAddress:
    """The server named by `variable`, or skip the test."""
    url = os.environ.get(variable)
    if not url:
        pytest.skip(f"{variable} is not set")
    parts = urlsplit(url)
    path = parts.path.lstrip("/") or None
    return ServerAddress(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or default_port,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        path=path,
    )


def closed_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def postgres_server() -> ServerAddress:
    return server_from_env("TEST_DATABASE_URL", 5432)


@pytest.fixture
def mysql_server() -> ServerAddress:
    return server_from_env("TEST_MYSQL_URL", 3306)


@pytest.fixture
def redis_server() -> ServerAddress:
    return server_from_env("TEST_REDIS_URL", 6379)


@pytest.fixture
def rabbitmq_server() -> ServerAddress:
    return server_from_env("TEST_RABBITMQ_URL", 5672)


@pytest.fixture
def mqtt_server() -> ServerAddress:
    return server_from_env("TEST_MQTT_URL", 1883)


@pytest.fixture
def nats_server() -> ServerAddress:
    return server_from_env("TEST_NATS_URL", 4222)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel completes the handshake) and never
    says a word: for the TIMEOUT cases."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])
