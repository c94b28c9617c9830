"""`http_api`: a REST/JSON API with named GET endpoints whose answers hold lists of records.

- check: GET the health path (the base URL by default); the `Server` header as the version;
- discover: the configured endpoints, each with columns inferred from a sample GET (the first
  DISCOVER_FETCHES of them);
- preview: GET an endpoint (the first page only), take its `records_path`, one row per record.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from creativeflow.datasources.base import (
    MAX_DISCOVERED,
    CheckResult,
    Column,
    ConnectContext,
    DiscoveredObject,
    Discovery,
    Preview,
    SourceCategory,
    SourceConfig,
    SourceError,
    SourceErrorCode,
    SourceType,
)
from creativeflow.datasources.fields import PemCertificate, url_host_port
from creativeflow.datasources.http import Answer, shown_url
from creativeflow.datasources.rows import infer_columns
from creativeflow.datasources.web.auth import HttpAuth, NoAuth, auth_hosts
from creativeflow.datasources.web.client import HttpClient
from creativeflow.datasources.web.common import (
    BaseUrl,
    Headers,
    ObjectName,
    RecordsPath,
    RelativePath,
    ca_certificate_fits,
    join_url,
    records_at,
    to_row,
    unique_names,
)

DISCOVER_FETCHES = 20  # endpoints sampled for their columns
DISCOVER_SAMPLE = 50  # records asked for (where the endpoint pages) and read per endpoint
_PARALLEL = 4
# Failures of one endpoint that do not say anything about the others: kept in its details.
_ENDPOINT_ERRORS = frozenset(
    {
        SourceErrorCode.NOT_FOUND,
        SourceErrorCode.PERMISSION_DENIED,
        SourceErrorCode.PROTOCOL_ERROR,
    }
)

ParamName = Annotated[str, Field(min_length=1, max_length=128)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class NoPagination(_Model):
    """The endpoint answers everything at once."""

    style: Literal["none"] = Field(default="none", description="No pagination")


class PagePagination(_Model):
    """Pages by number (`?page=1&per_page=50`)."""

    style: Literal["page"] = Field(description="Pages by number")
    page_param: ParamName = Field(default="page", description="The page number's parameter")
    size_param: ParamName | None = Field(
        default="per_page", description="The page size's parameter, if the API has one"
    )
    first_page: int = Field(default=1, ge=0, le=1, description="The first page's number, 0 or 1")


class OffsetPagination(_Model):
    """Pages by offset (`?offset=0&limit=50`)."""

    style: Literal["offset"] = Field(description="Pages by offset")
    offset_param: ParamName = Field(default="offset", description="The offset's parameter")
    limit_param: ParamName | None = Field(
        default="limit", description="The page size's parameter, if the API has one"
    )


Pagination = Annotated[
    NoPagination | PagePagination | OffsetPagination,
    Field(
        discriminator="style", description="How the endpoint pages (`style`): none, page, offset"
    ),
]


class Endpoint(_Model):
    """A named GET endpoint whose JSON answer holds records."""

    name: ObjectName = Field(description="What discovery lists and preview takes")
    path: RelativePath = Field(description="Path under the base URL (`users`, `/v2/orders`)")
    method: Literal["GET"] = Field(default="GET", description="Only GET: sources are read only")
    params: dict[str, str | int | float | bool] = Field(
        default_factory=dict, max_length=50, description="Query parameters sent with it"
    )
    records_path: RecordsPath
    pagination: Pagination = Field(default_factory=NoPagination)

    @field_validator("pagination")
    @classmethod
    def _params_apart(
        cls, paging: NoPagination | PagePagination | OffsetPagination, info: ValidationInfo
    ) -> NoPagination | PagePagination | OffsetPagination:
        params = info.data.get("params") or {}
        names: list[str | None] = []
        if isinstance(paging, PagePagination):
            names = [paging.page_param, paging.size_param]
        elif isinstance(paging, OffsetPagination):
            names = [paging.offset_param, paging.limit_param]
        for name in names:
            if name is not None and name in params:
                raise ValueError(f"sets {name!r}, which params also sets; leave it out of params")
        return paging

    def query(self, limit: int) -> dict[str, str]:
        """The first page's query parameters, asking for `limit` records where it can."""
        query = {name: _param_text(value) for name, value in self.params.items()}
        paging = self.pagination
        if isinstance(paging, PagePagination):
            query[paging.page_param] = str(paging.first_page)
            if paging.size_param:
                query[paging.size_param] = str(limit)
        elif isinstance(paging, OffsetPagination):
            query[paging.offset_param] = "0"
            if paging.limit_param:
                query[paging.limit_param] = str(limit)
        return query


def _param_text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class HttpApiConfig(SourceConfig):
    type: Literal["http_api"] = Field(default="http_api", description="A REST/JSON API")
    base_url: BaseUrl = Field(description="The API's base URL (`https://api.example.com/v1`)")
    auth: HttpAuth = Field(default_factory=NoAuth)
    headers: Headers
    health_path: RelativePath = Field(
        default="", description="Path the connection test GETs; empty for the base URL"
    )
    endpoints: list[Endpoint] = Field(
        default_factory=list, max_length=100, description="The endpoints to discover and preview"
    )
    verify_tls: bool = Field(
        default=True, description="Verify the server's certificate (never turn off in public)"
    )
    ca_certificate: PemCertificate | None = Field(
        default=None, description="PEM of the CA that signed the server's certificate"
    )

    _ca_certificate = field_validator("ca_certificate")(ca_certificate_fits("base_url"))

    @field_validator("endpoints")
    @classmethod
    def _unique_names(cls, endpoints: list[Endpoint]) -> list[Endpoint]:
        unique_names(endpoint.name for endpoint in endpoints)
        return endpoints

    def hosts(self) -> list[tuple[str, int]]:
        return [url_host_port(self.base_url), *auth_hosts(self.auth)]

    def endpoint(self, name: str) -> Endpoint:
        for endpoint in self.endpoints:
            if endpoint.name == name:
                return endpoint
        known = ", ".join(e.name for e in self.endpoints[:20]) or "none"
        raise SourceError(
            SourceErrorCode.NOT_FOUND, f"no endpoint named {name!r} (configured: {known})"
        )


def client_for(config: HttpApiConfig, context: ConnectContext) -> HttpClient:
    return HttpClient(
        context,
        auth=config.auth,
        headers=config.headers,
        verify=config.verify_tls,
        ca_certificate=config.ca_certificate,
    )


async def _records(
    client: HttpClient, config: HttpApiConfig, endpoint: Endpoint, limit: int
) -> tuple[list[dict[str, object]], bool]:
    """The endpoint's first `limit` rows, and whether there are more."""
    answer: Answer = await client.get(
        join_url(config.base_url, endpoint.path), params=endpoint.query(limit)
    )
    answer.raise_for_status()
    document = await answer.json()
    records = records_at(document, endpoint.records_path, answer.target)
    more = len(records) > limit or (
        len(records) == limit and not isinstance(endpoint.pagination, NoPagination)
    )
    return [to_row(record) for record in records[:limit]], more


class HttpApiConnector:
    async def check(self, config: HttpApiConfig, context: ConnectContext) -> CheckResult:
        async with client_for(config, context) as client:
            answer = await client.get(join_url(config.base_url, config.health_path))
        answer.raise_for_status()
        details: dict[str, object] = {"status": answer.status_code, "url": answer.target}
        if content_type := answer.headers.get("content-type"):
            details["content_type"] = content_type
        return CheckResult(server_version=answer.headers.get("server"), details=details)

    async def discover(self, config: HttpApiConfig, context: ConnectContext) -> Discovery:
        endpoints = config.endpoints[:MAX_DISCOVERED]
        gate = asyncio.Semaphore(_PARALLEL)
        async with client_for(config, context) as client:

            async def sample(endpoint: Endpoint) -> DiscoveredObject:
                details: dict[str, object] = {
                    "path": endpoint.path,
                    "url": shown_url(join_url(config.base_url, endpoint.path)),
                    "records_path": endpoint.records_path,
                    "pagination": endpoint.pagination.style,
                }
                async with gate:
                    try:
                        rows, _ = await _records(client, config, endpoint, DISCOVER_SAMPLE)
                    except SourceError as exc:
                        if exc.code not in _ENDPOINT_ERRORS:
                            raise
                        details["error"] = {"code": exc.code.value, "message": exc.message}
                        return DiscoveredObject(endpoint.name, "endpoint", None, details)
                return DiscoveredObject(endpoint.name, "endpoint", infer_columns(rows), details)

            try:
                # A task group: the first failure of the whole source stops the others.
                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(sample(e)) for e in endpoints[:DISCOVER_FETCHES]]
            except ExceptionGroup as failed:
                raise failed.exceptions[0] from None
        objects = [task.result() for task in tasks]
        for endpoint in endpoints[DISCOVER_FETCHES:]:
            details: dict[str, object] = {
                "path": endpoint.path,
                "records_path": endpoint.records_path,
                "pagination": endpoint.pagination.style,
                "sampled": False,
            }
            objects.append(DiscoveredObject(endpoint.name, "endpoint", None, details))
        return Discovery(objects, truncated=len(config.endpoints) > MAX_DISCOVERED)

    async def preview(
        self, config: HttpApiConfig, context: ConnectContext, object_name: str, limit: int
    ) -> Preview:
        endpoint = config.endpoint(object_name)
        async with client_for(config, context) as client:
            rows, more = await _records(client, config, endpoint, limit)
        columns: list[Column] = infer_columns(rows)
        return Preview(columns=columns, rows=rows, truncated=more)


SOURCE_TYPE = SourceType(
    name="http_api",
    display_name="HTTP API (REST)",
    category=SourceCategory.API,
    config_model=HttpApiConfig,
    connector=HttpApiConnector(),
    description="A REST API answering JSON: named GET endpoints, with basic, bearer, API-key "
    "or OAuth2 client-credentials authentication.",
    drivers=("httpx",),
)
