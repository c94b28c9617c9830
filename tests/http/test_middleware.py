"""What every response carries: a correlation id, the security headers, and CORS only for
ALLOWED_ORIGINS (DESIGN.md "API conventions", creatorvault.md "Security Headers")."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from creativeflow.settings import Environment
from tests.factories import UserFactory
from tests.http.support import assert_problem, assert_security_headers

ALLOWED_ORIGIN = "https://app.example.com"  # the test settings' ALLOWED_ORIGINS
OTHER_ORIGIN = "https://evil.example.net"
GENERATED_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def _explode_route(app: FastAPI) -> None:
    async def explode() -> None:
        raise RuntimeError("secret detail")

    app.add_api_route("/test/explode", explode, methods=["GET"])


async def _responses_of_every_kind(client: httpx.AsyncClient) -> dict[str, httpx.Response]:
    preflight = {"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "GET"}
    return {
        "200 health": await client.get("/health"),
        "200 openapi": await client.get("/openapi.json"),
        "200 docs": await client.get("/docs"),
        "200 metrics": await client.get("/metrics"),
        "404": await client.get("/nowhere"),
        "405": await client.put("/health"),
        "401": await client.get("/api/v1/auth/me"),
        "422": await client.post("/api/v1/auth/register", json={}),
        "500": await client.get("/test/explode"),
        "preflight ok": await client.options("/api/v1/auth/me", headers=preflight),
        "preflight refused": await client.options(
            "/api/v1/auth/me", headers={**preflight, "Origin": OTHER_ORIGIN}
        ),
    }


# --- correlation id ---------------------------------------------------------------------------


async def test_every_response_gets_a_fresh_correlation_id(
    build_client: Callable[..., Any],
) -> None:
    async with build_client(_explode_route) as (_app, client):
        responses = await _responses_of_every_kind(client)
    ids = [response.headers.get("x-correlation-id") for response in responses.values()]
    assert all(ids), dict(zip(responses, ids, strict=True))
    assert all(GENERATED_ID.fullmatch(value) for value in ids if value)
    assert len(set(ids)) == len(ids), "each request gets its own id"


@pytest.mark.parametrize(
    "sent", ["3f2c9a4e-5d1b-4c7e-9f00-0123456789ab", "req.42:retry-1_A", "x" * 128]
)
async def test_a_valid_incoming_correlation_id_is_echoed(
    client: httpx.AsyncClient, sent: str
) -> None:
    response = await client.get("/health", headers={"X-Correlation-ID": sent})
    assert response.headers["x-correlation-id"] == sent
    problem = await client.get("/nowhere", headers={"X-Correlation-ID": sent})
    assert assert_problem(problem, 404)["correlation_id"] == sent


@pytest.mark.parametrize(
    "sent",
    [
        "x" * 500,
        "x" * 129,
        "has spaces in it",
        "line\nbreak",
        "trailing-newline\n",
        "crlf\r\nSet-Cookie: a=b",
        'quote"d',
        "<script>",
        "",
    ],
)
async def test_an_invalid_incoming_correlation_id_is_replaced(
    client: httpx.AsyncClient, sent: str
) -> None:
    response = await client.get("/nowhere", headers={"X-Correlation-ID": sent})
    returned = response.headers["x-correlation-id"]
    assert returned != sent
    assert GENERATED_ID.fullmatch(returned)
    assert "set-cookie" not in response.headers
    assert assert_problem(response, 404)["correlation_id"] == returned


# --- security headers -------------------------------------------------------------------------


async def test_every_response_carries_the_security_headers(
    build_client: Callable[..., Any],
) -> None:
    async with build_client(_explode_route) as (_app, client):
        responses = await _responses_of_every_kind(client)
    for kind, response in responses.items():
        try:
            assert_security_headers(response, hsts=False)
        except AssertionError as exc:
            raise AssertionError(f"{kind}: {exc}") from exc


async def test_api_responses_get_the_strict_content_security_policy(
    client: httpx.AsyncClient,
) -> None:
    csp = (await client.get("/health")).headers["content-security-policy"]
    directives = _directives(csp)
    assert directives["default-src"] == ["'self'"]
    assert "script-src" not in directives  # nothing beyond 'self' for API responses
    assert directives.get("frame-ancestors") == ["'none'"]


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_documentation_pages_get_a_policy_that_lets_them_load(
    client: httpx.AsyncClient, path: str
) -> None:
    """Swagger UI and ReDoc load their bundles from a CDN and start with an inline script:
    every script, stylesheet and image the page references must be allowed by its policy."""
    response = await client.get(path)
    assert response.status_code == 200
    assert_security_headers(response)
    directives = _directives(response.headers["content-security-policy"])
    assert directives["default-src"] == ["'self'"]
    html = response.text

    scripts = re.findall(r'<script[^>]*\ssrc="([^"]+)"', html)
    assert scripts, html
    for url in scripts:
        assert _allowed(url, directives, "script-src"), (url, directives)
    if re.search(r"<script>(?!\s*</script>)", html):  # an inline script starts the UI
        assert "'unsafe-inline'" in directives.get("script-src", [])
    for url in re.findall(r'<link[^>]*rel="stylesheet"[^>]*href="([^"]+)"', html):
        assert _allowed(url, directives, "style-src"), (url, directives)
    for url in re.findall(r'<link[^>]*rel="(?:shortcut )?icon"[^>]*href="([^"]+)"', html):
        assert _allowed(url, directives, "img-src"), (url, directives)
    # The page fetches the OpenAPI document from this origin.
    assert "'self'" in directives.get("connect-src", directives["default-src"])


async def test_the_swagger_oauth2_redirect_page_can_run(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs/oauth2-redirect")
    assert response.status_code == 200
    directives = _directives(response.headers["content-security-policy"])
    assert "'unsafe-inline'" in directives.get("script-src", [])


async def test_no_hsts_outside_production(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert "strict-transport-security" not in response.headers


@pytest.mark.parametrize(
    "settings_overrides",
    # Production refuses the suite's test password cost: OWASP's, as deployed.
    [
        {
            "environment": Environment.PRODUCTION,
            "password_hash_memory_kib": 19 * 1024,
            "password_hash_time_cost": 2,
        }
    ],
    indirect=False,
)
async def test_hsts_in_production(build_client: Callable[..., Any]) -> None:
    async with build_client(_explode_route) as (app, client):
        assert app.state.platform.settings.is_production
        responses = await _responses_of_every_kind(client)
    for kind, response in responses.items():
        hsts = response.headers.get("strict-transport-security", "")
        assert "max-age=31536000" in hsts, kind
        assert_security_headers(response, hsts=True)


# --- CORS -------------------------------------------------------------------------------------


async def test_preflight_from_an_allowed_origin_is_granted(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/api/v1/auth/me",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Authorization, X-Correlation-ID",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "GET" in response.headers["access-control-allow-methods"]
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers
    assert "x-correlation-id" in allowed_headers
    assert_security_headers(response)


async def test_preflight_from_another_origin_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/api/v1/auth/me",
        headers={"Origin": OTHER_ORIGIN, "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-credentials" not in response.headers
    assert_problem(response, 400)
    assert_security_headers(response)


async def test_simple_request_from_an_allowed_origin_exposes_the_correlation_id(
    client: httpx.AsyncClient, users: UserFactory
) -> None:
    user = await users.create()
    response = await client.get(
        "/api/v1/auth/me", headers={**user.headers, "Origin": ALLOWED_ORIGIN}
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    exposed = response.headers["access-control-expose-headers"].lower()
    assert "x-correlation-id" in exposed
    assert "retry-after" in exposed
    assert "etag" in exposed and "location" in exposed  # caching images, following jobs


async def test_browsers_may_send_idempotency_keys_and_revalidate_images(
    client: httpx.AsyncClient,
) -> None:
    response = await client.options(
        "/api/v1/generate/image",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Idempotency-Key, If-None-Match, Content-Type",
        },
    )
    assert response.status_code == 200
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "idempotency-key" in allowed and "if-none-match" in allowed


async def test_simple_request_from_another_origin_gets_no_cors_grant(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/health", headers={"Origin": OTHER_ORIGIN})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("settings_overrides", [{"allowed_origins": []}], indirect=False)
async def test_no_allowed_origins_means_no_cross_origin_access(
    client: httpx.AsyncClient,
) -> None:
    response = await client.options(
        "/api/v1/auth/me",
        headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in response.headers
    assert response.status_code >= 400
    assert_security_headers(response)
    simple = await client.get("/health", headers={"Origin": ALLOWED_ORIGIN})
    assert "access-control-allow-origin" not in simple.headers


# --- helpers ----------------------------------------------------------------------------------


def _directives(policy: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in policy.split(";"):
        tokens = part.split()
        if tokens:
            directives[tokens[0].lower()] = tokens[1:]
    return directives


def _allowed(url: str, directives: dict[str, list[str]], directive: str) -> bool:
    sources = directives.get(directive, directives["default-src"])
    if not url.startswith(("http://", "https://")):
        return "'self'" in sources
    origin = "/".join(url.split("/", 3)[:3])
    return origin in sources or any(url.startswith(source) for source in sources)
