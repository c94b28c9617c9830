"""Assertions and log capture shared by the HTTP convention tests."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx

PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "correlation_id", "errors"}

# creatorvault.md, "Security Headers": every response carries these.
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "x-xss-protection": "1; mode=block",
    "referrer-policy": "strict-origin-when-cross-origin",
}


def assert_problem(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    """The response is an RFC 9457 problem with our fields; returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == "application/problem+json"
    body = response.json()
    assert body.keys() >= PROBLEM_KEYS, body
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["code"], str) and body["code"] == body["code"].upper()
    assert isinstance(body["errors"], list)
    for error in body["errors"]:
        assert set(error) == {"field", "message"}, error
    assert body["correlation_id"] == response.headers["x-correlation-id"]
    if code is not None:
        assert body["code"] == code, body
    return body


def assert_security_headers(response: httpx.Response, *, hsts: bool = False) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.headers.get(name))
    csp = response.headers.get("content-security-policy", "")
    assert "default-src 'self'" in csp, csp
    assert ("strict-transport-security" in response.headers) is hsts
    assert response.headers.get("x-correlation-id")


class LogCapture:
    """JSON lines the platform writes, as it writes them."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line.strip()]

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        return [
            line
            for line in self.lines()
            if line.get("logger") == "creativeflow.request"
            and line.get("event") == "request"
            and (path is None or line.get("path") == path)
        ]
