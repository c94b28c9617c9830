"""A small Elasticsearch (or OpenSearch) that speaks the wire format of the endpoints the
connector uses: `GET /`, `GET /_security/_authenticate`, `GET /_cat/indices[/{pattern}]`,
`GET /{indices}/_mapping` and `POST /{index}/_search`, with basic and API-key authentication
answered as Elasticsearch answers (401 with its error body and WWW-Authenticate, 403 for a
missing privilege, 404 `index_not_found_exception`)."""

from __future__ import annotations

import base64
import fnmatch
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

USERS = {"elastic": "changeme-42", "reader": "reader-pass-42"}
API_KEY_ID, API_KEY_SECRET = "VuaCfGcBCdbkQm-e5aOx", "ui2lp2axTNmsyakw9tvNnw"
ENCODED_API_KEY = base64.b64encode(f"{API_KEY_ID}:{API_KEY_SECRET}".encode()).decode()

ARTICLES_MAPPING = {
    "properties": {
        "title": {"type": "text", "fields": {"keyword": {"type": "keyword"}}},
        "views": {"type": "long"},
        "rating": {"type": "float"},
        "published": {"type": "date"},
        "draft": {"type": "boolean"},
        "tags": {"type": "keyword"},
        "author": {"properties": {"name": {"type": "keyword"}}},
        "location": {"type": "geo_point"},
        "headline": {"type": "alias", "path": "title"},
    }
}
ARTICLES = [
    {
        "title": "Spring collection",
        "views": 120,
        "rating": 4.5,
        "published": "2024-03-01T10:00:00Z",
        "draft": False,
        "tags": ["fashion", "spring"],
        "author": {"name": "ada"},
        "location": {"lat": 52.5, "lon": 13.4},
    },
    {
        "title": "Behind the shoot",
        "views": 87,
        "rating": 4,
        "published": "2024-03-08T09:30:00Z",
        "draft": True,
        "tags": ["studio"],
        "author": {"name": "bob"},
    },
    {"title": "Untitled", "views": 0, "extra": "only in the document"},
]


@dataclass
class Index:
    mapping: dict[str, Any]
    documents: list[dict[str, Any]]
    hidden: bool = False
    # Users that may not read it (403).
    denied: set[str] = field(default_factory=set)


def default_indices() -> dict[str, Index]:
    return {
        "articles": Index(ARTICLES_MAPPING, ARTICLES),
        "logs-2024.03": Index(
            {"properties": {"message": {"type": "text"}, "@timestamp": {"type": "date"}}},
            [{"message": "started", "@timestamp": "2024-03-01T00:00:00Z"}],
        ),
        "secret-index": Index({"properties": {"pin": {"type": "keyword"}}}, [], denied={"reader"}),
        ".kibana_1": Index({"properties": {"type": {"type": "keyword"}}}, [], hidden=True),
    }


def _error(status: int, kind: str, reason: str, **extra: Any) -> JSONResponse:
    cause = {"type": kind, "reason": reason, **extra}
    headers = {}
    if status == 401:
        challenge = ['Basic realm="security" charset="UTF-8"', "ApiKey"]
        cause["header"] = {"WWW-Authenticate": challenge}
        headers["WWW-Authenticate"] = challenge[0]
    return JSONResponse(
        {"error": {"root_cause": [cause], **cause}, "status": status},
        status_code=status,
        headers=headers,
    )


def _not_found(name: str) -> JSONResponse:
    return _error(
        404,
        "index_not_found_exception",
        f"no such index [{name}]",
        **{"resource.type": "index_or_alias", "resource.id": name, "index": name},
    )


class FakeElasticsearch:
    def __init__(
        self,
        *,
        distribution: str = "elasticsearch",
        version: str = "8.13.4",
        anonymous: bool = False,
    ) -> None:
        self.distribution = distribution
        self.version = version
        self.anonymous = anonymous
        self.indices = default_indices()
        self.hosts: list[str] = []  # the Host header of every request

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/", self.root),
                Route("/_security/_authenticate", self.authenticate),
                Route("/_cat/indices", self.cat_indices),
                Route("/_cat/indices/{pattern}", self.cat_indices),
                Route("/{names}/_mapping", self.mapping),
                Route("/{name}/_search", self.search, methods=["POST"]),
            ]
        )

    # -- authentication ----------------------------------------------------------------------

    def _user(self, request: Request) -> str | Response:
        self.hosts.append(request.headers.get("host", ""))
        header = request.headers.get("authorization", "")
        path = request.url.path
        scheme, _, value = header.partition(" ")
        if scheme == "Basic":
            user, _, password = base64.b64decode(value).decode().partition(":")
            if USERS.get(user) == password:
                return user
            reason = f"unable to authenticate user [{user}] for REST request [{path}]"
            return _error(401, "security_exception", reason)
        if scheme == "ApiKey":
            if value == ENCODED_API_KEY:
                return "api-key-user"
            return _error(
                401,
                "security_exception",
                "unable to authenticate with provided credentials and anonymous access is not "
                "allowed for this request",
            )
        if self.anonymous:
            return "anonymous"
        return _error(
            401,
            "security_exception",
            f"missing authentication credentials for REST request [{path}]",
        )

    def _denied(self, user: str, action: str, index: str) -> JSONResponse:
        return _error(
            403,
            "security_exception",
            f"action [{action}] is unauthorized for user [{user}] with effective roles "
            f"[{user}] on indices [{index}], this action is granted by the index privileges "
            "[read,all]",
        )

    # -- endpoints ---------------------------------------------------------------------------

    async def root(self, request: Request) -> Response:
        user = self._user(request)
        if isinstance(user, Response):
            return user
        if user == "reader":
            return _error(
                403,
                "security_exception",
                "action [cluster:monitor/main] is unauthorized for user [reader]",
            )
        version: dict[str, Any] = {"number": self.version, "build_flavor": "default"}
        if self.distribution != "elasticsearch":
            version = {"distribution": self.distribution, "number": self.version}
        return JSONResponse(
            {
                "name": "node-1",
                "cluster_name": "brand-studio",
                "cluster_uuid": "fBhWW1OPRZ2p8tLp1Hc3rg",
                "version": version,
                "tagline": "You Know, for Search",
            },
            headers={"X-Elastic-Product": "Elasticsearch"},
        )

    async def authenticate(self, request: Request) -> Response:
        user = self._user(request)
        if isinstance(user, Response):
            return user
        return JSONResponse({"username": user, "roles": [user], "enabled": True})

    def _matching(self, expression: str, wildcards: str) -> list[str] | None:
        """The index names an expression names, or None when a concrete name is missing."""
        names: list[str] = []
        for part in expression.split(","):
            exclude = part.startswith("-")
            pattern = part.removeprefix("-")
            if "*" in pattern:
                matched = [
                    name
                    for name, index in self.indices.items()
                    if fnmatch.fnmatchcase(name, pattern)
                    and (not index.hidden or "hidden" in wildcards or pattern.startswith("."))
                ]
            elif pattern in self.indices:
                matched = [pattern]
            elif exclude:
                matched = []
            else:
                return None
            if exclude:
                names = [name for name in names if name not in matched]
            else:
                names.extend(name for name in matched if name not in names)
        return names

    async def cat_indices(self, request: Request) -> Response:
        user = self._user(request)
        if isinstance(user, Response):
            return user
        expression = request.path_params.get("pattern", "*")
        names = self._matching(expression, request.query_params.get("expand_wildcards", "all"))
        if names is None:
            return _not_found(expression)
        rows = [
            {
                "index": name,
                "health": "yellow",
                "status": "open",
                "pri": "1",
                "rep": "1",
                "docs.count": str(len(self.indices[name].documents)),
                "store.size": str(1000 + 10 * len(self.indices[name].documents)),
            }
            for name in sorted(names)
        ]
        return JSONResponse(rows)

    async def mapping(self, request: Request) -> Response:
        user = self._user(request)
        if isinstance(user, Response):
            return user
        wildcards = request.query_params.get("expand_wildcards", "open")
        ignore = request.query_params.get("ignore_unavailable") == "true"
        answer: dict[str, Any] = {}
        for part in request.path_params["names"].split(","):
            names = self._matching(part, wildcards)
            if names is None:
                if ignore:
                    continue
                return _not_found(part)
            for name in names:
                if user in self.indices[name].denied:
                    if ignore:
                        continue
                    return self._denied(user, "indices:admin/mappings/get", name)
                answer[name] = {"mappings": self.indices[name].mapping}
        return JSONResponse(answer)

    async def search(self, request: Request) -> Response:
        user = self._user(request)
        if isinstance(user, Response):
            return user
        name = request.path_params["name"]
        index = self.indices.get(name)
        if index is None:
            return _not_found(name)
        if user in index.denied:
            return self._denied(user, "indices:data/read/search", name)
        body = await request.json()
        size = int(body.get("size", 10))
        hits = [
            {"_index": name, "_id": f"doc-{number}", "_score": 1.0, "_source": document}
            for number, document in enumerate(index.documents[:size], start=1)
        ]
        return JSONResponse(
            {
                "took": 1,
                "timed_out": False,
                "hits": {
                    "total": {"value": len(index.documents), "relation": "eq"},
                    "max_score": 1.0,
                    "hits": hits,
                },
            }
        )
