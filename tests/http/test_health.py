"""Health probes and the Prometheus scrape endpoint."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from creativeflow import __version__
from creativeflow.http import health
from creativeflow.http.health import MULTIPROCESS_DIR_VARIABLE
from creativeflow.platform import Platform

HEALTH_PATHS = [
    "/health",
    "/health/db",
    "/health/ready",
    "/api/v1/health",
    "/api/v1/health/ready",
    "/api/v1/health/live",
]
CLOSED_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def _assert_report(body: dict[str, object]) -> None:
    assert set(body) == {"status", "version", "services", "timestamp"}, body
    assert body["version"] == __version__
    assert isinstance(body["services"], dict)
    timestamp = datetime.fromisoformat(str(body["timestamp"]).replace("Z", "+00:00"))
    assert timestamp.tzinfo is not None
    assert abs(datetime.now(UTC) - timestamp) < timedelta(minutes=1)


@pytest.mark.parametrize("path", HEALTH_PATHS)
async def test_health_endpoints_answer_without_credentials(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    _assert_report(body)
    assert body["status"] == "healthy"


async def test_health_reports_each_dependency(client: httpx.AsyncClient) -> None:
    body = (await client.get("/health")).json()
    assert body["services"] == {
        "database": "connected",
        "redis": "not_configured",
        "filesystem": "available",
    }
    assert (await client.get("/health/db")).json()["services"] == {"database": "connected"}


@pytest.mark.parametrize("settings_overrides", [{"redis_url": CLOSED_REDIS}])
async def test_unreachable_redis_makes_ready_fail_and_health_degraded(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/health/ready", "/api/v1/health/ready"):
        ready = await client.get(path)
        assert ready.status_code == 503, ready.text
        body = ready.json()
        _assert_report(body)
        assert body["status"] == "unhealthy"
        assert body["services"]["redis"] == "unavailable"
        assert body["services"]["database"] == "connected"
        # Nothing about where Redis lives or why it failed.
        assert "127.0.0.1" not in ready.text and "6379" not in ready.text

    health = await client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "degraded"
    assert health.json()["services"]["redis"] == "unavailable"

    # The database probe and liveness do not depend on Redis.
    assert (await client.get("/health/db")).status_code == 200
    assert (await client.get("/api/v1/health/live")).status_code == 200


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP port that accepts connections (the kernel's backlog) but never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


async def test_a_hung_dependency_is_unavailable_within_the_check_timeout(
    build_client: Callable[..., Any],
    platform: Platform,
    silent_server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(health, "CHECK_TIMEOUT_SECONDS", 0.3)
    platform.redis = Redis.from_url(silent_server)  # closed by the platform fixture
    async with build_client() as (_app, client):
        started = time.monotonic()
        ready = await client.get("/health/ready")
        health_response = await client.get("/health")
        elapsed = time.monotonic() - started
    assert ready.status_code == 503
    assert ready.json()["services"]["redis"] == "unavailable"
    assert health_response.status_code == 200
    assert health_response.json()["status"] == "degraded"
    assert elapsed < 3, f"probes took {elapsed:.1f}s"


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="TEST_REDIS_URL is not set")
@pytest.mark.parametrize(
    "settings_overrides", [{"redis_url": os.environ.get("TEST_REDIS_URL", "")}]
)
async def test_reachable_redis_is_reported_connected(client: httpx.AsyncClient) -> None:
    ready = await client.get("/health/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["services"]["redis"] == "connected"


async def test_metrics_are_prometheus_text(client: httpx.AsyncClient) -> None:
    await client.get("/health")
    await client.get("/nowhere")
    await client.get("/api/v1/auth/me")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE creativeflow_http_requests_total counter" in text
    assert "# TYPE creativeflow_http_request_duration_seconds histogram" in text
    samples = [line for line in text.splitlines() if line.startswith("creativeflow_http_")]
    # Routes are labelled by template, unknown paths collapse into one label (bounded series).
    assert any('route="/health"' in line and 'status="200"' in line for line in samples)
    assert any('route="unmatched"' in line and 'status="404"' in line for line in samples)
    assert not any("/nowhere" in line for line in samples)
    # The full template, include prefixes and all: not the router-relative "/auth/me".
    assert any('route="/api/v1/auth/me"' in line and 'status="401"' in line for line in samples)
    assert not any('route="/auth/me"' in line for line in samples)


_WORKER = """
import asyncio, sys
import httpx
from creativeflow.app import create_app
from creativeflow.db.migrate import upgrade
from creativeflow.settings import get_settings

async def main(count: int) -> None:
    settings = get_settings()
    settings.ensure_data_dir()
    await asyncio.to_thread(upgrade, settings.resolved_database_url())
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
            for _ in range(count):
                assert (await client.get("/api/v1/health/live")).status_code == 200

asyncio.run(main(int(sys.argv[1])))
"""


async def test_metrics_add_up_every_worker_process(
    client: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker processes sharing `PROMETHEUS_MULTIPROC_DIR` (as `serve --workers N` sets it):
    a scrape answered by any process reports the requests of all of them."""
    shared = tmp_path / "metrics"
    shared.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TEST_")},
        "DATA_DIR": str(tmp_path / "data"),
        "LOG_LEVEL": "WARNING",
        MULTIPROCESS_DIR_VARIABLE: str(shared),
    }
    for count in (5, 7):  # two workers, one after the other
        worker = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", _WORKER, str(count)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert worker.returncode == 0, worker.stderr

    monkeypatch.setenv(MULTIPROCESS_DIR_VARIABLE, str(shared))
    text = (await client.get("/metrics")).text
    live = [
        line
        for line in text.splitlines()
        if line.startswith("creativeflow_http_requests_total{")
        and 'route="/api/v1/health/live"' in line
    ]
    assert len(live) == 1 and float(live[0].rsplit(" ", 1)[1]) == 12.0, live
