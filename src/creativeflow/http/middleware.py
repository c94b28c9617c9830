"""One pure-ASGI middleware for what every request needs: a correlation id, security headers,
a JSON log line, Prometheus metrics, and a problem+json 500 that still carries those headers.

Pure ASGI (not BaseHTTPMiddleware) keeps the per-request cost to a few dict operations.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from creativeflow.http.problems import problem_response
from creativeflow.shared.core.context import correlation_id_var, user_id_var
from creativeflow.shared.core.logging import get_logger

CORRELATION_HEADER = "x-correlation-id"
_VALID_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_log = get_logger("creativeflow.request")

REQUESTS = Counter(
    "creativeflow_http_requests_total", "HTTP requests served", ["method", "route", "status"]
)
LATENCY = Histogram(
    "creativeflow_http_request_duration_seconds",
    "Time to serve an HTTP request",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# Swagger UI and ReDoc load their bundles from a CDN; only those pages get a wider policy.
_API_CSP = b"default-src 'self'; frame-ancestors 'none'"
_DOCS_CSP = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    b"img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    b"font-src 'self' https://fonts.gstatic.com; worker-src 'self' blob:; frame-ancestors 'none'"
)
_DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.static_headers: list[tuple[bytes, bytes]] = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"x-xss-protection", b"1; mode=block"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
        ]
        if hsts:
            self.static_headers.append(
                (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        correlation_id = _incoming_correlation_id(scope) or uuid.uuid4().hex
        token = correlation_id_var.set(correlation_id)
        user_token = user_id_var.set(None)
        started = time.perf_counter()
        status_holder = [500]
        response_started = False
        csp = _DOCS_CSP if scope["path"] in _DOCS_PATHS else _API_CSP
        extra_headers = [
            *self.static_headers,
            (b"content-security-policy", csp),
            (CORRELATION_HEADER.encode(), correlation_id.encode()),
        ]

        async def send_with_headers(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                status_holder[0] = message["status"]
                message["headers"] = [*message.get("headers", []), *extra_headers]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except ClientDisconnect:
            # The client went away mid-request: nobody is left to answer, and it is not our
            # error. Logged as 499 (nginx's "client closed request").
            status_holder[0] = 499
        except Exception:
            _log.exception("unhandled_error", path=scope["path"])
            if response_started:
                raise
            response = problem_response(
                500, "An unexpected error occurred; quote the correlation id."
            )
            await response(scope, receive, send_with_headers)
        finally:
            duration = time.perf_counter() - started
            route = _route_template(scope)
            method = scope["method"]
            REQUESTS.labels(method, route, str(status_holder[0])).inc()
            LATENCY.labels(method, route).observe(duration)
            state: dict[str, Any] = scope.get("state") or {}
            _log.info(
                "request",
                method=method,
                path=scope["path"],
                status=status_holder[0],
                duration_ms=round(duration * 1000, 2),
                user_id=state.get("user_id"),
            )
            user_id_var.reset(user_token)
            correlation_id_var.reset(token)


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS middleware, with refused preflights answered as problem+json (400) that
    grant nothing: no Access-Control-Allow-* headers, only `Vary`."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        detail = bytes(response.body).decode("utf-8", "replace")
        vary = response.headers.get("vary")
        return problem_response(
            response.status_code,
            detail,
            code="CORS_NOT_ALLOWED",
            headers={"Vary": vary} if vary else None,
        )


def _incoming_correlation_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-correlation-id":
            candidate = value.decode("latin-1")
            return candidate if _VALID_CORRELATION_ID.fullmatch(candidate) else None
    return None


def _route_template(scope: Scope) -> str:
    """The matched route's full template (`/api/v1/auth/me`), or "unmatched".

    FastAPI includes routers lazily: `scope["route"]` is the router's own route, whose path
    lacks the include prefixes (`/auth/me`), so two routers could share a label. The effective
    route FastAPI records in its scope entry carries the full template.
    """
    fastapi_scope = scope.get("fastapi")
    if isinstance(fastapi_scope, dict):
        effective = fastapi_scope.get("effective_route_context")
        path = getattr(effective, "path_format", None)
        if isinstance(path, str) and path:
            return path
    path = getattr(scope.get("route"), "path_format", None)
    return path if isinstance(path, str) else "unmatched"
