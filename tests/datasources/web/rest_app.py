"""A REST/JSON API for the http_api tests, with an OAuth2 token endpoint.

Resources sit under one prefix per auth mode, each checking its credentials:
`/open/...` (none), `/basic/...` (reader / BASIC_PASSWORD), `/bearer/...` (BEARER_TOKEN),
`/header-key/...` (X-API-Key: API_KEY), `/query-key/...` (?api_key=API_KEY) and `/oauth/...`
(a bearer token `POST /token` issued to CLIENT_ID / CLIENT_SECRET). Every request is recorded.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from creativeflow.datasources.web.http_api import HttpApiConfig

SERVER = "FakeREST/1.4.2"
BASIC_USER = "reader"
BASIC_PASSWORD = "basic-pass-5f2c"
BEARER_TOKEN = "bearer-token-9d1e"
API_KEY = "api-key-7a3b"
CLIENT_ID = "creativeflow-client"
CLIENT_SECRET = "client-secret-e4f8"

USERS: list[dict[str, Any]] = [
    {
        "id": i,
        "name": f"user {i}",
        "score": i * 1.5,
        "active": i % 2 == 0,
        "address": {"city": "Oslo"},
    }
    for i in range(1, 8)
]
ORDERS: list[dict[str, Any]] = [
    {"order": "A-1", "total": 10, "placed": "2024-05-01"},
    {"order": "A-2", "total": 12.5, "placed": "2024-05-02", "note": None},
]


@dataclass
class RestApi:
    """The app's state: what was asked, and the tokens it issued."""

    requests: list[Request] = field(default_factory=list)
    token_forms: list[dict[str, str]] = field(default_factory=list)
    issued: set[str] = field(default_factory=set)
    redirect_to: str = ""  # where `/<mode>/away` sends the client
    base_url: str = ""  # set once served

    def paths(self) -> list[str]:
        return [request.url.path for request in self.requests]

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/token", self._token, methods=["POST"]),
                Route("/{mode}/{resource:path}", self._resource, methods=["GET"]),
                Route("/", self._root, methods=["GET"]),
            ]
        )

    async def _root(self, request: Request) -> Response:
        self.requests.append(request)
        return JSONResponse({"status": "ok"}, headers={"Server": SERVER})

    async def _token(self, request: Request) -> Response:
        self.requests.append(request)
        form = {key: str(value) for key, value in (await request.form()).items()}
        self.token_forms.append(form)
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            pair = base64.b64decode(header[6:]).decode()
            user, _, password = pair.partition(":")
            client_id, client_secret = unquote(user), unquote(password)
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if client_id != CLIENT_ID or client_secret != CLIENT_SECRET:
            return JSONResponse(
                {"error": "invalid_client", "error_description": f"bad secret {client_secret}"},
                status_code=401,
            )
        token = f"issued-{secrets.token_hex(8)}"
        self.issued.add(token)
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": 60})

    def _authorized(self, mode: str, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if mode == "open":
            return True
        if mode == "basic":
            expected = base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()
            return header == f"Basic {expected}"
        if mode == "bearer":
            return header == f"Bearer {BEARER_TOKEN}"
        if mode == "header-key":
            return request.headers.get("x-api-key") == API_KEY
        if mode == "query-key":
            return request.query_params.get("api_key") == API_KEY
        if mode == "oauth":
            return header.removeprefix("Bearer ") in self.issued
        return False

    async def _resource(self, request: Request) -> Response:
        self.requests.append(request)
        mode, resource = request.path_params["mode"], request.path_params["resource"]
        if not self._authorized(mode, request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        headers = {"Server": SERVER}
        query = request.query_params
        if resource in ("", "health"):
            return JSONResponse({"status": "ok"}, headers=headers)
        if resource == "users":
            page, size = int(query.get("page", "1")), int(query.get("per_page", "3"))
            items = USERS[(page - 1) * size : page * size]
            return JSONResponse({"data": {"items": items, "page": page}}, headers=headers)
        if resource == "orders":
            return JSONResponse(ORDERS, headers=headers)
        if resource == "me":
            return JSONResponse({"id": 1, "name": "reader"}, headers=headers)
        if resource == "scalar":
            return JSONResponse({"count": 3})
        if resource == "forbidden":
            return JSONResponse({"error": "forbidden"}, status_code=403)
        if resource == "boom":
            return JSONResponse({"error": "boom"}, status_code=503)
        if resource == "text":
            return PlainTextResponse("not json at all")
        if resource == "big":
            return PlainTextResponse("x" * 4096)
        if resource == "moved":
            return RedirectResponse(f"/{mode}/users", status_code=302)
        if resource == "loop":
            return RedirectResponse(f"/{mode}/loop", status_code=302)
        if resource == "away":
            return RedirectResponse(self.redirect_to, status_code=302)
        return JSONResponse({"error": "no such resource"}, status_code=404)


# -- configs for it -------------------------------------------------------------------------

USERS_ENDPOINT = {
    "name": "users",
    "path": "users",
    "records_path": "data.items",
    "pagination": {"style": "page", "page_param": "page", "size_param": "per_page"},
}
ORDERS_ENDPOINT = {"name": "orders", "path": "/orders"}


def http_api_config(base_url: str, mode: str = "open", **overrides: Any) -> HttpApiConfig:
    raw: dict[str, Any] = {
        "type": "http_api",
        "base_url": f"{base_url}/{mode}",
        "endpoints": [USERS_ENDPOINT, ORDERS_ENDPOINT],
        **overrides,
    }
    return HttpApiConfig.model_validate(raw)
