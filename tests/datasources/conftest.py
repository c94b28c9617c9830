from __future__ import annotations

from pathlib import Path

import pytest

from creativeflow.datasources.base import ConnectContext
from tests.datasources.servers import (  # noqa: F401  (fixtures)
    mqtt_server,
    mysql_server,
    nats_server,
    postgres_server,
    rabbitmq_server,
    redis_server,
    silent_port,
)


@pytest.fixture
def file_root(tmp_path: Path) -> Path:
    root = tmp_path / "sources"
    root.mkdir()
    return root


@pytest.fixture
def context(file_root: Path) -> ConnectContext:
    """How the service calls connectors in tests: servers on loopback are allowed."""
    return ConnectContext(timeout_seconds=5.0, allow_private_hosts=True, file_root=file_root)


@pytest.fixture
def guarded_context(file_root: Path) -> ConnectContext:
    """As in production: loopback and private hosts are refused."""
    return ConnectContext(timeout_seconds=5.0, allow_private_hosts=False, file_root=file_root)
