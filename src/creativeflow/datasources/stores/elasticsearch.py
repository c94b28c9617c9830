"""Elasticsearch (and OpenSearch) over its REST API with httpx: the indices matching a pattern
with their mapped fields, and the first documents of one index."""

from __future__ import annotations

import base64
import re
import ssl
from typing import Annotated, Any, Literal
from urllib.parse import quote

import httpx
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from creativeflow.datasources.base import (
    MAX_DISCOVERED,
    CheckResult,
    Column,
    ConnectContext,
    DiscoveredObject,
    Discovery,
    Preview,
    Secret,
    SourceCategory,
    SourceConfig,
    SourceError,
    SourceErrorCode,
    SourceType,
    reveal,
)
from creativeflow.datasources.fields import HttpUrl, PemCertificate, url_host_port
from creativeflow.datasources.rows import infer_columns, jsonable
from creativeflow.datasources.stores.common import safe_text
from creativeflow.datasources.stores.elasticsearch_mapping import (
    declared_column,
    index_path,
    mapped_columns,
    mapping_properties,
    name_batches,
)
from creativeflow.datasources.stores.http import Answer, PinnedHttp, pinned_http

_PATTERN_PART = re.compile(r"^-?[a-z0-9_.*+][a-z0-9_.*+\-]*$")


def _index_pattern(value: str) -> str:
    parts = value.split(",")
    if not all(_PATTERN_PART.match(part) for part in parts):
        raise ValueError(
            "must be index names or patterns (lowercase letters, digits, '_', '-', '.', '+' "
            "and '*'), comma-separated, e.g. `logs-*,-logs-old`"
        )
    return value


def _base_url(value: str) -> str:
    url = httpx.URL(value)
    if url.query or url.fragment:
        raise ValueError("must not carry a query or a fragment; it is the cluster's base URL")
    return value


class NoAuth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["none"] = Field(default="none", description="No authentication")


class BasicAuth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["basic"] = Field(description="A user name and password (native realm)")
    username: str = Field(min_length=1, max_length=1024, description="User name")
    password: Secret = Field(description="The user's password")

    @field_validator("password")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        return _not_blank(value)


class ApiKeyAuth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["api_key"] = Field(description="An API key")
    api_key: Secret = Field(description="The encoded API key (as Kibana shows it), or `id:api_key`")

    @field_validator("api_key")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        return _not_blank(value)


def _not_blank(value: Any) -> Any:
    if hasattr(value, "get_secret_value") and not value.get_secret_value().strip():
        raise ValueError("must not be empty")
    return value


ElasticsearchAuth = Annotated[NoAuth | BasicAuth | ApiKeyAuth, Field(discriminator="mode")]


class ElasticsearchConfig(SourceConfig):
    type: Literal["elasticsearch"]
    url: Annotated[HttpUrl, AfterValidator(_base_url)] = Field(
        description="The cluster's base URL, e.g. https://search.example.com:9200"
    )
    auth: ElasticsearchAuth = Field(
        default_factory=NoAuth, description="How to authenticate: none, basic or api_key"
    )
    verify_tls: bool = Field(
        default=True,
        description="Verify the server's certificate (https); off accepts any certificate",
    )
    ca_certificate: PemCertificate | None = Field(
        default=None, description="PEM of the CA that signed the server's certificate (https)"
    )
    index_pattern: Annotated[str, AfterValidator(_index_pattern)] = Field(
        default="*",
        max_length=1024,
        description="Which indices discovery lists, e.g. `logs-*` (comma-separated patterns)",
    )
    include_hidden: bool = Field(
        default=False, description="Also list hidden and system indices (names starting '.')"
    )

    @field_validator("verify_tls", "ca_certificate")
    @classmethod
    def _https_only(cls, value: Any, info: ValidationInfo) -> Any:
        url = info.data.get("url")
        changed = value is not None if info.field_name == "ca_certificate" else value is False
        if changed and url is not None and not url.startswith("https://"):
            raise ValueError("applies only to an https:// URL")
        return value

    def hosts(self) -> list[tuple[str, int]]:
        return [url_host_port(self.url)]

    def tls_context(self) -> ssl.SSLContext | None:
        if not self.url.startswith("https://"):
            return None
        context = ssl.create_default_context(cadata=self.ca_certificate)
        if not self.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def auth_headers(self) -> dict[str, str]:
        auth = self.auth
        if isinstance(auth, BasicAuth):
            pair = f"{auth.username}:{reveal(auth.password)}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        if isinstance(auth, ApiKeyAuth):
            key = reveal(auth.api_key).strip()
            # An encoded key is base64 (no ':'); `id:api_key` is encoded here.
            encoded = base64.b64encode(key.encode()).decode() if ":" in key else key
            return {"Authorization": "ApiKey " + encoded}
        return {}


def _reason(answer: Answer) -> str:
    """ES's own error text: `{"error": {"type": ..., "reason": ...}, "status": ...}`."""
    body = answer.body
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return safe_text(f"{error.get('type', 'error')}: {error.get('reason', '')}")
    if isinstance(error, str):
        return safe_text(error)
    return f"HTTP {answer.status}"


def _raise_for(answer: Answer, http: PinnedHttp, what: str, auth: ElasticsearchAuth) -> None:
    if answer.ok:
        return
    target = http.target
    if answer.status == 401:
        if isinstance(auth, NoAuth):
            message = f"{target} requires authentication; set `auth` (basic or api_key)"
        elif isinstance(auth, BasicAuth):
            message = f"{target} rejected the user name or password of {auth.username!r}"
        else:
            message = f"{target} rejected the API key"
        raise SourceError(SourceErrorCode.AUTH_FAILED, message)
    if answer.status == 403:
        raise SourceError(
            SourceErrorCode.PERMISSION_DENIED, f"{target} refused {what}: {_reason(answer)}"
        )
    if answer.status == 404:
        raise SourceError(SourceErrorCode.NOT_FOUND, f"{target}: {what}: {_reason(answer)}")
    if answer.body is None:
        raise SourceError(
            SourceErrorCode.PROTOCOL_ERROR,
            f"{target} answered HTTP {answer.status} without a JSON body; is it Elasticsearch?",
        )
    raise SourceError(
        SourceErrorCode.ERROR,
        f"{target} answered HTTP {answer.status} to {what}: {_reason(answer)}",
    )


def _json(answer: Answer, http: PinnedHttp, kind: type) -> Any:
    if not isinstance(answer.body, kind):
        raise SourceError(
            SourceErrorCode.PROTOCOL_ERROR,
            f"{http.target} does not answer like Elasticsearch or OpenSearch",
        )
    return answer.body


def _number(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class ElasticsearchConnector:
    async def _http(self, config: ElasticsearchConfig, context: ConnectContext) -> PinnedHttp:
        return await pinned_http(
            config.url,
            context,
            tls=config.tls_context(),
            headers={"Accept": "application/json", **config.auth_headers()},
        )

    async def check(self, config: ElasticsearchConfig, context: ConnectContext) -> CheckResult:
        async with await self._http(config, context) as http:
            answer = await http.request("GET", "/")
            if answer.status == 403:
                # GET / needs the `monitor` cluster privilege, which a reader may lack; the
                # credentials are good if the cluster says who they belong to.
                who = await http.request("GET", "/_security/_authenticate")
                if who.ok and isinstance(who.body, dict):
                    return CheckResult(details={"user": who.body.get("username")})
            _raise_for(answer, http, "GET /", config.auth)
            root = _json(answer, http, dict)
        version = root.get("version")
        if not isinstance(version, dict) or "number" not in version:
            raise SourceError(
                SourceErrorCode.PROTOCOL_ERROR,
                f"{http.target} does not answer like Elasticsearch or OpenSearch",
            )
        return CheckResult(
            server_version=str(version["number"]),
            details={
                "distribution": str(version.get("distribution", "elasticsearch")),
                "cluster_name": root.get("cluster_name"),
                "node": root.get("name"),
            },
        )

    async def discover(self, config: ElasticsearchConfig, context: ConnectContext) -> Discovery:
        wildcards = "open,hidden" if config.include_hidden else "open"
        async with await self._http(config, context) as http:
            answer = await http.request(
                "GET",
                f"/_cat/indices/{quote(config.index_pattern, safe='*,')}",
                params={
                    "format": "json",
                    "bytes": "b",
                    "h": "index,health,status,docs.count,store.size,pri,rep",
                    "s": "index",
                    "expand_wildcards": wildcards,
                },
            )
            _raise_for(answer, http, f"listing the indices {config.index_pattern}", config.auth)
            rows = [
                row
                for row in _json(answer, http, list)
                if isinstance(row, dict)
                and isinstance(row.get("index"), str)
                and (config.include_hidden or not row["index"].startswith("."))
            ]
            listed = rows[:MAX_DISCOVERED]
            properties: dict[str, dict[str, Any]] = {}
            for batch in name_batches([row["index"] for row in listed]):
                mapping = await http.request(
                    "GET",
                    f"/{batch}/_mapping",
                    params={"ignore_unavailable": "true", "expand_wildcards": wildcards},
                )
                if mapping.status == 403:  # mappings this user may not read: no columns
                    continue
                _raise_for(mapping, http, "reading the mappings", config.auth)
                for index, index_mapping in _json(mapping, http, dict).items():
                    properties[index] = mapping_properties(index_mapping)
        objects = [
            DiscoveredObject(
                name=row["index"],
                kind="index",
                columns=mapped_columns(properties[row["index"]])
                if row["index"] in properties
                else None,
                details={
                    "health": row.get("health"),
                    "status": row.get("status"),
                    "documents": _number(row.get("docs.count")),
                    "size_bytes": _number(row.get("store.size")),
                    "primaries": _number(row.get("pri")),
                    "replicas": _number(row.get("rep")),
                },
            )
            for row in listed
        ]
        return Discovery(objects=objects, truncated=len(rows) > MAX_DISCOVERED)

    async def preview(
        self, config: ElasticsearchConfig, context: ConnectContext, object_name: str, limit: int
    ) -> Preview:
        path = index_path(object_name)
        async with await self._http(config, context) as http:
            mapping = await http.request("GET", f"/{path}/_mapping")
            _raise_for(mapping, http, f"the index {object_name}", config.auth)
            declared: dict[str, Any] = {}
            for index_mapping in _json(mapping, http, dict).values():  # several for an alias
                for name, spec in mapping_properties(index_mapping).items():
                    declared.setdefault(name, spec)
            answer = await http.request(
                "POST",
                f"/{path}/_search",
                json_body={"size": limit, "query": {"match_all": {}}},
            )
            _raise_for(answer, http, f"searching {object_name}", config.auth)
            hits = _json(answer, http, dict).get("hits")
        if not isinstance(hits, dict):
            hits = {}
        rows = [
            {"_id": hit.get("_id"), **source}
            for hit in hits.get("hits") or []
            if isinstance(hit, dict) and isinstance(source := hit.get("_source") or {}, dict)
        ]
        total = hits.get("total")
        count = total.get("value") if isinstance(total, dict) else total
        mapped = {
            "_id": Column(name="_id", type="string", source_type="_id"),
            **{column.name: column for column in mapped_columns(declared)},
        }
        inferred = infer_columns(rows, order=mapped)
        return Preview(
            # The mapping's types where it declares the field (dates arrive as text), with
            # nullability from the rows; fields only the documents have are inferred.
            columns=[declared_column(column, mapped.get(column.name)) for column in inferred],
            rows=[jsonable(row) for row in rows],
            truncated=isinstance(count, int) and count > len(rows),
        )


SOURCE_TYPE = SourceType(
    name="elasticsearch",
    display_name="Elasticsearch",
    category=SourceCategory.SEARCH,
    config_model=ElasticsearchConfig,
    connector=ElasticsearchConnector(),
    description="An Elasticsearch or OpenSearch cluster: its indices with their mapped fields, "
    "and the first documents of one index.",
)
