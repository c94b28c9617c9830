"""Rules every route follows, checked over the whole application so a new route cannot forget
them: deny by default (STYLE.md habit 4), a summary and a response model (DESIGN.md)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.convertors import FloatConvertor, IntegerConvertor
from starlette.routing import BaseRoute

from creativeflow.app import create_app
from creativeflow.http.auth import authenticates
from creativeflow.platform import Platform

# Answer without credentials on purpose. Anything else must depend on an authenticating
# dependency (CurrentPrincipal or require_permission(...)).
PUBLIC = frozenset(
    {
        ("GET", "/health"),
        ("GET", "/health/db"),
        ("GET", "/health/ready"),
        ("GET", "/api/v1/health"),
        ("GET", "/api/v1/health/ready"),
        ("GET", "/api/v1/health/live"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/docs/oauth2-redirect"),
        ("GET", "/redoc"),
        ("POST", "/api/v1/auth/register"),
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/refresh"),
    }
)
NO_CONTENT = {"204", "205", "304"}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    route: BaseRoute  # the route as registered
    context: Any  # the route as mounted: full path, effective dependencies and options

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _route_contexts(routes: list[BaseRoute]) -> Iterator[tuple[BaseRoute, Any]]:
    """(registered route, mounted route) for every route of the app. FastAPI >= 0.16x includes
    routers lazily, so `app.routes` holds the included routers, not their routes."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: app.routes is already flat
        for route in routes:
            yield route, route
        return
    for context in iter_route_contexts(routes):
        yield context.original_route, context


def endpoints(app: FastAPI) -> list[Endpoint]:
    found = []
    for route, context in _route_contexts(app.routes):
        path = getattr(context, "path_format", None) or getattr(context, "path", None)
        assert isinstance(path, str), f"route without a path: {route!r}"
        methods = getattr(context, "methods", None) or (
            {"WEBSOCKET"} if isinstance(route, APIWebSocketRoute) else set()
        )
        assert methods, f"route without methods (a mount?): {path}; list it explicitly here"
        for method in sorted(methods - {"HEAD"}):
            found.append(Endpoint(method, path, route, context))
    return found


def _dependency_calls(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _dependency_calls(dependency)


def requires_authentication(endpoint: Endpoint) -> bool:
    dependant = getattr(endpoint.context, "dependant", None) or getattr(
        endpoint.route, "dependant", None
    )
    if not isinstance(dependant, Dependant):
        return False  # a plain Starlette route cannot prove it authenticates
    # A direct endpoint (`creativeflow.http.direct`) authenticates itself.
    return authenticates(dependant.call) or any(
        authenticates(call) for call in _dependency_calls(dependant)
    )


@pytest.fixture
def app(platform: Platform) -> FastAPI:
    return create_app(platform.settings, platform=platform)


def test_the_route_walk_sees_every_router(app: FastAPI) -> None:
    found = {str(endpoint) for endpoint in endpoints(app)}
    assert "GET /api/v1/auth/me" in found
    assert "POST /api/v1/auth/logout" in found
    assert "GET /health" in found
    assert "GET /docs" in found


def test_the_public_allow_list_names_only_real_routes(app: FastAPI) -> None:
    found = {(endpoint.method, endpoint.path) for endpoint in endpoints(app)}
    assert not PUBLIC - found, f"stale public entries: {sorted(PUBLIC - found)}"


def test_every_non_public_route_requires_authentication(app: FastAPI) -> None:
    unprotected = [
        str(endpoint)
        for endpoint in endpoints(app)
        if (endpoint.method, endpoint.path) not in PUBLIC and not requires_authentication(endpoint)
    ]
    assert not unprotected, (
        "routes without an authenticating dependency "
        f"(add require_permission(...) or CurrentPrincipal, or make them public here): "
        f"{unprotected}"
    )


def test_the_check_catches_an_unprotected_route(app: FastAPI) -> None:
    """The walk itself works: a route added without authentication is reported."""

    async def leaky() -> dict[str, str]:
        return {"secret": "data"}

    app.add_api_route("/api/v1/leaky", leaky, methods=["GET"], summary="Leaks")
    leaks = [e for e in endpoints(app) if e.path == "/api/v1/leaky"]
    assert leaks and not requires_authentication(leaks[0])


async def test_every_non_public_route_answers_401_without_credentials(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    protected = [
        endpoint
        for endpoint in endpoints(app)
        if (endpoint.method, endpoint.path) not in PUBLIC and endpoint.method != "WEBSOCKET"
    ]
    assert protected
    failures = []
    for endpoint in protected:
        url = _fill_path(endpoint)
        for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"X-API-Key": "cfk_nope"}):
            response = await client.request(endpoint.method, url, headers=headers)
            content_type = response.headers.get("content-type", "")
            if response.status_code != 401 or not content_type.startswith(
                "application/problem+json"
            ):
                failures.append(f"{endpoint} {headers or '(none)'} -> {response.status_code}")
    assert not failures, failures


def test_every_route_has_a_summary(app: FastAPI) -> None:
    missing = [
        str(endpoint)
        for endpoint in endpoints(app)
        if isinstance(endpoint.route, APIRoute)
        and getattr(endpoint.context, "include_in_schema", True)
        and not (getattr(endpoint.context, "summary", None) or endpoint.route.summary)
    ]
    assert not missing, f"routes without summary=...: {missing}"


def test_every_operation_documents_a_response_model(app: FastAPI) -> None:
    document = app.openapi()
    problems = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            name = f"{method.upper()} {path}"
            if not operation.get("summary"):
                problems.append(f"{name}: no summary")
            successes = sorted(s for s in operation["responses"] if str(s).startswith("2"))
            if not successes:
                problems.append(f"{name}: no success response")
                continue
            status = successes[0]
            if status in NO_CONTENT:
                continue
            content = operation["responses"][status].get("content", {})
            if "application/json" in content:
                schema = content["application/json"].get("schema", {})
                # A named model (or a list/page of them), not an untyped dict.
                if "$ref" not in json.dumps(schema):
                    problems.append(f"{name}: {status} has no response model")
            elif not any(
                media.startswith("text/")
                # Files (images, PDFs, archives) say they are binary.
                or content[media].get("schema", {}).get("format") == "binary"
                for media in content
            ):
                problems.append(f"{name}: {status} documents no content")
    assert not problems, problems


def test_non_public_operations_document_security_and_401(app: FastAPI) -> None:
    document = app.openapi()
    public = {(method, path) for method, path in PUBLIC}
    problems = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if (method.upper(), path) in public:
                continue
            name = f"{method.upper()} {path}"
            if not operation.get("security"):
                problems.append(f"{name}: no security requirement (Swagger sends no token)")
            if "401" not in operation["responses"]:
                problems.append(f"{name}: 401 not documented (error_responses(401, ...))")
    assert not problems, problems


def _fill_path(endpoint: Endpoint) -> str:
    convertors = getattr(endpoint.context, "param_convertors", None) or {}

    def value(match: re.Match[str]) -> str:
        convertor = convertors.get(match.group(1))
        if isinstance(convertor, IntegerConvertor | FloatConvertor):
            return "1"
        return str(uuid.uuid4())

    return re.sub(r"\{([^}:]+)(?::[^}]+)?\}", value, endpoint.path)
