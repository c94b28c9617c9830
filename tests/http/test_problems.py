"""Every error is RFC 9457 application/problem+json (DESIGN.md, "API conventions")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from creativeflow.shared.core.exceptions import (
    ConflictException,
    NotFoundException,
    RateLimitedException,
)
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.http.support import LogCapture, assert_problem, assert_security_headers


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/no-such-thing")
    body = assert_problem(response, 404, "NOT_FOUND")
    assert body["type"] == "about:blank"
    assert body["title"] == "Not Found"
    assert body["errors"] == []
    assert_security_headers(response)


async def test_wrong_method_is_a_405_problem_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete("/health")
    assert_problem(response, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in response.headers["allow"]
    assert_security_headers(response)


async def test_invalid_body_is_a_422_problem_naming_each_field(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": "not-an-email", "username": "x", "password": "short"},
    )
    body = assert_problem(response, 422, "VALIDATION_ERROR")
    fields = {error["field"] for error in body["errors"]}
    # The body's location prefix is dropped: clients see their own field names.
    assert {"email", "username", "name", "password"} <= fields, body["errors"]
    assert all(error["message"] for error in body["errors"])
    # `detail` is a readable summary for clients that only show one string.
    assert "email" in body["detail"]
    assert_security_headers(response)


async def test_malformed_json_is_a_422_problem_about_the_body(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        content=b'{"email": ',
        headers={"content-type": "application/json"},
    )
    body = assert_problem(response, 422, "VALIDATION_ERROR")
    assert [error["field"] for error in body["errors"]] == ["body"]
    assert "JSON" in body["errors"][0]["message"]


async def test_invalid_query_parameter_names_the_parameter(
    build_client: Callable[..., Any],
) -> None:
    def extend(app: FastAPI) -> None:
        async def paged(limit: int = 10) -> dict[str, int]:
            return {"limit": limit}

        app.add_api_route("/test/paged", paged, methods=["GET"])

    async with build_client(extend) as (_app, client):
        response = await client.get("/test/paged", params={"limit": "many"})
    body = assert_problem(response, 422, "VALIDATION_ERROR")
    assert [error["field"] for error in body["errors"]] == ["limit"]


async def test_missing_credentials_are_a_401_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/auth/me")
    assert_problem(response, 401, "NOT_AUTHENTICATED")
    assert response.headers["www-authenticate"] == "Bearer"
    assert_security_headers(response)


async def test_bad_token_is_a_401_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/auth/me", headers={"Authorization": "Bearer not.a.token"})
    body = assert_problem(response, 401)
    assert body["code"] in {"INVALID_TOKEN", "NOT_AUTHENTICATED"}


async def test_duplicate_registration_is_a_409_problem(
    client: httpx.AsyncClient, users: UserFactory
) -> None:
    user = await users.create()
    response = await client.post(
        "/api/v1/auth/register",
        json={
            "email": f"other-{user.email}",
            "username": user.username,
            "name": "Someone Else",
            "password": DEFAULT_PASSWORD,
        },
    )
    body = assert_problem(response, 409)
    assert "username" in [error["field"] for error in body["errors"]]
    assert_security_headers(response)


@pytest.mark.parametrize(
    "settings_overrides", [{"login_max_failures_per_account": 2}], indirect=False
)
async def test_repeated_failed_logins_are_a_429_problem_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    credentials = {"login": "nobody-here", "password": "Wrong-Password-1!"}
    for _ in range(2):
        response = await client.post("/api/v1/auth/login", json=credentials)
        assert_problem(response, 401)
    response = await client.post("/api/v1/auth/login", json=credentials)
    assert_problem(response, 429, "RATE_LIMITED")
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 900
    assert_security_headers(response)


async def test_unsupported_media_type_is_a_415_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/login", content=b"login=a", headers={"content-type": "text/plain"}
    )
    assert_problem(response, 415, "UNSUPPORTED_MEDIA_TYPE")


async def test_shared_exceptions_render_their_status_code_and_data(
    build_client: Callable[..., Any],
) -> None:
    def extend(app: FastAPI) -> None:
        async def missing() -> None:
            raise NotFoundException("Idea not found", data={"resource": "idea"})

        async def conflict() -> None:
            raise ConflictException(
                "Title already used",
                errors=[{"field": "title", "message": "already used"}],
                code="TITLE_TAKEN",
            )

        async def limited() -> None:
            raise RateLimitedException("Slow down", retry_after=17)

        app.add_api_route("/test/missing", missing, methods=["GET"])
        app.add_api_route("/test/conflict", conflict, methods=["POST"])
        app.add_api_route("/test/limited", limited, methods=["GET"])

    async with build_client(extend) as (_app, client):
        missing_response = await client.get("/test/missing")
        conflict_response = await client.post("/test/conflict")
        limited_response = await client.get("/test/limited")

    body = assert_problem(missing_response, 404, "NOT_FOUND")
    assert body["detail"] == "Idea not found"
    assert body["resource"] == "idea"
    body = assert_problem(conflict_response, 409, "TITLE_TAKEN")
    assert body["errors"] == [{"field": "title", "message": "already used"}]
    body = assert_problem(limited_response, 429, "RATE_LIMITED")
    assert limited_response.headers["retry-after"] == "17"
    assert body["retry_after"] == 17


@pytest.mark.parametrize("settings_overrides", [{"log_level": "INFO"}], indirect=False)
async def test_unexpected_error_is_a_500_problem_without_internals(
    build_client: Callable[..., Any], capture_logs: Callable[[], LogCapture]
) -> None:
    def extend(app: FastAPI) -> None:
        async def explode() -> None:
            raise RuntimeError("secret detail")

        app.add_api_route("/test/explode", explode, methods=["GET"], summary="Fails")

    async with build_client(extend) as (_app, client):
        logs = capture_logs()
        response = await client.get("/test/explode", headers={"X-Correlation-ID": "boom-1"})

    body = assert_problem(response, 500, "INTERNAL_ERROR")
    assert "secret detail" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    assert "explode" not in response.text
    assert response.headers["x-correlation-id"] == "boom-1"
    assert body["correlation_id"] == "boom-1"
    assert_security_headers(response)

    # The operator still gets the whole story, under the same correlation id.
    errors = [line for line in logs.lines() if line.get("level") == "error"]
    assert errors, logs.lines()
    assert any("secret detail" in line.get("exception", "") for line in errors)
    assert all(line["correlation_id"] == "boom-1" for line in errors)
    (request_line,) = logs.requests("/test/explode")
    assert request_line["status"] == 500


async def test_documented_error_responses_use_the_problem_schema(
    build_client: Callable[..., Any],
) -> None:
    """The OpenAPI document promises what the handlers send: problem+json for 4xx/5xx, even for
    the 422 FastAPI documents by itself on a route that declares no errors."""

    def extend(app: FastAPI) -> None:
        async def paged(limit: int = 10) -> dict[str, int]:
            return {"limit": limit}

        app.add_api_route("/test/paged", paged, methods=["GET"], summary="Paged")

    async with build_client(extend) as (_app, client):
        document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert {"status", "detail", "code", "correlation_id", "errors"} <= set(
        schemas["Problem"]["properties"]
    )
    assert "HTTPValidationError" not in schemas
    assert "422" in document["paths"]["/test/paged"]["get"]["responses"]
    offenders = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if not str(status).startswith(("4", "5")) or path.startswith(
                    ("/health", "/api/v1/health")
                ):
                    continue
                content = response.get("content", {})
                schema = content.get("application/problem+json", {}).get("schema", {})
                if schema.get("$ref") != "#/components/schemas/Problem":
                    offenders.append(f"{method.upper()} {path} {status}")
    assert not offenders, offenders
