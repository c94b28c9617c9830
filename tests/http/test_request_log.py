"""One JSON log line per request, with who, what, how long and the correlation id."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.factories import UserFactory
from tests.http.support import LogCapture

pytestmark = pytest.mark.parametrize("settings_overrides", [{"log_level": "INFO"}])

REQUEST_FIELDS = {
    "method",
    "path",
    "status",
    "duration_ms",
    "correlation_id",
    "user_id",
    "timestamp",
    "level",
    "logger",
    "service",
}


async def test_one_json_line_per_request(
    client: httpx.AsyncClient, capture_logs: Callable[[], LogCapture]
) -> None:
    logs = capture_logs()
    response = await client.get("/health", headers={"X-Correlation-ID": "log-test-1"})

    (line,) = logs.requests("/health")
    assert line.keys() >= REQUEST_FIELDS, line
    assert line["method"] == "GET"
    assert line["status"] == response.status_code == 200
    assert isinstance(line["duration_ms"], int | float) and line["duration_ms"] >= 0
    assert line["correlation_id"] == "log-test-1"
    assert line["user_id"] is None
    assert line["service"] == "creativeflow"
    assert line["level"] == "info"
    assert line["timestamp"].endswith(("Z", "+00:00"))


async def test_authenticated_request_logs_the_user(
    client: httpx.AsyncClient, users: UserFactory, capture_logs: Callable[[], LogCapture]
) -> None:
    user = await users.create()
    logs = capture_logs()
    response = await user.get("/api/v1/auth/me")
    assert response.status_code == 200

    (line,) = logs.requests("/api/v1/auth/me")
    assert line["user_id"] == user.id
    assert line["status"] == 200
    assert line["correlation_id"] == response.headers["x-correlation-id"]


async def test_failed_requests_are_logged_with_their_status(
    client: httpx.AsyncClient, capture_logs: Callable[[], LogCapture]
) -> None:
    logs = capture_logs()
    not_found = await client.get("/nowhere")
    unauthenticated = await client.get("/api/v1/auth/me")

    (line,) = logs.requests("/nowhere")
    assert line["status"] == 404
    assert line["correlation_id"] == not_found.headers["x-correlation-id"]
    (line,) = logs.requests("/api/v1/auth/me")
    assert line["status"] == 401
    assert line["user_id"] is None
    assert line["correlation_id"] == unauthenticated.headers["x-correlation-id"]


async def test_preflights_are_logged_too(
    client: httpx.AsyncClient, capture_logs: Callable[[], LogCapture]
) -> None:
    logs = capture_logs()
    await client.options(
        "/api/v1/auth/me",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"},
    )
    (line,) = logs.requests("/api/v1/auth/me")
    assert line["method"] == "OPTIONS"
    assert line["status"] == 200


async def test_user_id_does_not_leak_into_the_next_request(
    client: httpx.AsyncClient, users: UserFactory, capture_logs: Callable[[], LogCapture]
) -> None:
    user = await users.create()
    logs = capture_logs()
    await user.get("/api/v1/auth/me")
    await client.get("/health")
    (line,) = logs.requests("/health")
    assert line["user_id"] is None


async def test_a_client_that_disconnects_mid_request_is_not_an_error(
    client: httpx.AsyncClient, capture_logs: Callable[[], LogCapture]
) -> None:
    app = client._transport.app  # type: ignore[attr-defined]
    logs = capture_logs()
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}  # gone before the login body arrived

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/auth/login",
        "raw_path": b"/api/v1/auth/login",
        "query_string": b"",
        "root_path": "",
        "server": ("testserver", 80),
        "client": ("203.0.113.10", 50000),
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", b"40"),
        ],
    }
    await app(scope, receive, send)

    assert sent == []  # nobody to answer
    (line,) = logs.requests("/api/v1/auth/login")
    assert line["status"] == 499
    assert not [entry for entry in logs.lines() if entry.get("level") == "error"]
