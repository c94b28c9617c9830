"""`graphql`: a GraphQL API over HTTP POST, read through saved (read-only) queries or the Query
type's fields.

- check: `{ __typename }`; the version from an `X-GraphQL-Server` or `Server` header;
- discover: the saved queries (kind `query`) and, by introspection, the Query type's fields
  (kind `query_field`, with the scalar fields of what they return as columns); a server that
  refuses introspection answers the saved queries only;
- preview: run a saved query, or select a Query field's scalar subfields, and read the records
  at `records_path` in `data`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

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
from creativeflow.datasources.http import Answer, status_error
from creativeflow.datasources.rows import infer_columns
from creativeflow.datasources.web.auth import HttpAuth, NoAuth, auth_hosts
from creativeflow.datasources.web.client import HttpClient
from creativeflow.datasources.web.common import (
    BaseUrl,
    Headers,
    ObjectName,
    RecordsPath,
    ca_certificate_fits,
    records_at,
    to_row,
    unique_names,
)
from creativeflow.datasources.web.graphql_text import (
    INTROSPECTION_QUERY,
    NAME,
    Schema,
    named_type,
    read_only_operation,
    type_text,
)

ACCEPT = "application/graphql-response+json, application/json;q=0.9"
MAX_MESSAGE = 300
# `extensions.code` of a GraphQL error (Apollo's and others' convention).
_ERROR_CODES = {
    "UNAUTHENTICATED": SourceErrorCode.AUTH_FAILED,
    "FORBIDDEN": SourceErrorCode.PERMISSION_DENIED,
}


def _variables(value: dict[str, Any]) -> dict[str, Any]:
    for name in value:
        if not NAME.match(name):
            raise ValueError(f"{name!r} is not a GraphQL variable name (no `$`)")
    return value


class SavedQuery(BaseModel):
    """A named read-only query whose answer holds records."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: ObjectName = Field(description="What discovery lists and preview takes")
    query: Annotated[str, AfterValidator(read_only_operation)] = Field(
        max_length=100_000, description="One GraphQL query operation (no mutations)"
    )
    variables: Annotated[dict[str, Any], AfterValidator(_variables)] = Field(
        default_factory=dict, description="Values of the query's variables, by name"
    )
    records_path: RecordsPath


class GraphqlConfig(SourceConfig):
    type: Literal["graphql"] = Field(default="graphql", description="A GraphQL API")
    url: BaseUrl = Field(description="The GraphQL endpoint (`https://api.example.com/graphql`)")
    auth: HttpAuth = Field(default_factory=NoAuth)
    headers: Headers
    queries: list[SavedQuery] = Field(
        default_factory=list, max_length=100, description="Saved queries to discover and preview"
    )
    verify_tls: bool = Field(
        default=True, description="Verify the server's certificate (never turn off in public)"
    )
    ca_certificate: PemCertificate | None = Field(
        default=None, description="PEM of the CA that signed the server's certificate"
    )

    _ca_certificate = field_validator("ca_certificate")(ca_certificate_fits("url"))

    @field_validator("queries")
    @classmethod
    def _unique_names(cls, queries: list[SavedQuery]) -> list[SavedQuery]:
        unique_names(query.name for query in queries)
        return queries

    def hosts(self) -> list[tuple[str, int]]:
        return [url_host_port(self.url), *auth_hosts(self.auth)]

    def saved(self, name: str) -> SavedQuery | None:
        return next((query for query in self.queries if query.name == name), None)


class GraphqlErrors(SourceError):
    """The server answered GraphQL `errors`."""


def _errors_error(errors: Any, target: str, client: HttpClient) -> SourceError:
    listed = errors if isinstance(errors, list) else []
    items = [item for item in listed if isinstance(item, Mapping)]
    first = items[0] if items else {}
    message = client.redact(str(first.get("message") or "no message"))[:MAX_MESSAGE]
    more = f" (and {len(items) - 1} more)" if len(items) > 1 else ""
    extensions = first.get("extensions")
    code = extensions.get("code") if isinstance(extensions, Mapping) else None
    mapped = _ERROR_CODES.get(code) if isinstance(code, str) else None
    if mapped is not None:
        return SourceError(mapped, f"{target} answered {code}: {message}{more}")
    return GraphqlErrors(
        SourceErrorCode.PROTOCOL_ERROR, f"{target} answered GraphQL errors: {message}{more}"
    )


async def execute(
    client: HttpClient, url: str, query: str, variables: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], Answer]:
    """The `data` of a query's answer; HTTP failures and GraphQL `errors` raise."""
    body: dict[str, Any] = {"query": query}
    if variables:
        body["variables"] = dict(variables)
    answer = await client.post_json(url, body, accept=ACCEPT)
    if answer.status_code in (401, 403, 404) or 300 <= answer.status_code < 400:
        answer.raise_for_status()
    try:
        payload = await answer.json()
    except SourceError:
        answer.raise_for_status()
        raise
    if isinstance(payload, Mapping) and payload.get("errors"):
        raise _errors_error(payload["errors"], answer.target, client)
    error = status_error(answer)
    if error is not None:
        raise error
    data = payload.get("data") if isinstance(payload, Mapping) else None
    if not isinstance(data, dict):
        raise SourceError(
            SourceErrorCode.PROTOCOL_ERROR, f"{answer.target} answered no GraphQL `data`"
        )
    return data, answer


def client_for(config: GraphqlConfig, context: ConnectContext) -> HttpClient:
    return HttpClient(
        context,
        auth=config.auth,
        headers=config.headers,
        verify=config.verify_tls,
        ca_certificate=config.ca_certificate,
    )


async def _schema(client: HttpClient, url: str) -> Schema | None:
    """The schema by introspection, or None when the server does not allow it."""
    try:
        data, _ = await execute(client, url, INTROSPECTION_QUERY)
    except GraphqlErrors:
        return None
    return Schema.read(data)


def _records(data: dict[str, Any], path: str, target: str) -> list[Any]:
    if not path and len(data) == 1:
        # `{ users { id } }`: the one field's value holds the records; `{ version }` is a row.
        value = next(iter(data.values()))
        return records_at(value, "", target) if isinstance(value, list | Mapping) else [data]
    return records_at(data, path, target)


def _field_query(schema: Schema, name: str, limit: int) -> tuple[str, list[Column] | None]:
    """A query selecting the scalar subfields of the Query field `name`, and their columns
    (None when the field is a scalar itself)."""
    field = next((f for f in schema.query_fields() if f.name == name), None)
    if field is None:
        raise SourceError(
            SourceErrorCode.NOT_FOUND, f"no saved query and no Query field named {name!r}"
        )
    if field.required_args:
        raise SourceError(
            SourceErrorCode.INVALID_OBJECT,
            f"the field {name} needs arguments ({', '.join(field.required_args)}); save a query "
            "that gives them",
        )
    arguments = f"({bound}: {limit})" if (bound := field.limit_argument()) else ""
    leaves = schema.leaf_fields(field)
    if leaves is None:
        return f"query CreativeFlowPreview {{ {name}{arguments} }}", None
    if not leaves:
        raise SourceError(
            SourceErrorCode.INVALID_OBJECT,
            f"the field {name} returns no scalar fields to show; save a query for it",
        )
    selection = " ".join(leaf.name for leaf in leaves)
    query = f"query CreativeFlowPreview {{ {name}{arguments} {{ {selection} }} }}"
    return query, [leaf.column() for leaf in leaves]


class GraphqlConnector:
    async def check(self, config: GraphqlConfig, context: ConnectContext) -> CheckResult:
        async with client_for(config, context) as client:
            data, answer = await execute(client, config.url, "{ __typename }")
        version = answer.headers.get("x-graphql-server") or answer.headers.get("server")
        details: dict[str, Any] = {"url": answer.target}
        if isinstance(data.get("__typename"), str):
            details["query_type"] = data["__typename"]
        return CheckResult(server_version=version, details=details)

    async def discover(self, config: GraphqlConfig, context: ConnectContext) -> Discovery:
        objects = [
            DiscoveredObject(
                query.name,
                "query",
                None,
                {"records_path": query.records_path, "variables": sorted(query.variables)},
            )
            for query in config.queries
        ]
        async with client_for(config, context) as client:
            schema = await _schema(client, config.url)
        if schema is not None:
            saved = {query.name for query in config.queries}
            for field in schema.query_fields():
                if field.name in saved:
                    continue  # preview takes the saved query by that name
                kind, returns, is_list = named_type(field.type)
                details = {
                    "type": type_text(field.type),
                    "returns": returns,
                    "kind": kind,
                    "list": is_list,
                    "arguments": [str(arg.get("name")) for arg in field.args],
                    "required_arguments": field.required_args,
                }
                objects.append(
                    DiscoveredObject(field.name, "query_field", schema.columns(field), details)
                )
        else:
            objects = [
                DiscoveredObject(o.name, o.kind, o.columns, {**o.details, "introspection": False})
                for o in objects
            ]
        return Discovery(objects[:MAX_DISCOVERED], truncated=len(objects) > MAX_DISCOVERED)

    async def preview(
        self, config: GraphqlConfig, context: ConnectContext, object_name: str, limit: int
    ) -> Preview:
        saved = config.saved(object_name)
        declared: list[Column] | None = None
        async with client_for(config, context) as client:
            if saved is not None:
                data, answer = await execute(client, config.url, saved.query, saved.variables)
                path = saved.records_path
            else:
                if not NAME.match(object_name):
                    raise SourceError(
                        SourceErrorCode.INVALID_OBJECT,
                        f"{object_name!r} is neither a saved query nor a GraphQL field name",
                    )
                schema = await _schema(client, config.url)
                if schema is None:
                    raise SourceError(
                        SourceErrorCode.NOT_FOUND,
                        f"no saved query named {object_name!r} (and the server does not allow "
                        "introspection to find a field by that name)",
                    )
                query, declared = _field_query(schema, object_name, limit)
                data, answer = await execute(client, config.url, query)
                path = ""
        records = _records(data, path, answer.target)
        rows = [to_row(record) for record in records[:limit]]
        columns = declared if declared is not None else infer_columns(rows)
        return Preview(columns=columns, rows=rows, truncated=len(records) > limit)


SOURCE_TYPE = SourceType(
    name="graphql",
    display_name="GraphQL API",
    category=SourceCategory.API,
    config_model=GraphqlConfig,
    connector=GraphqlConnector(),
    description="A GraphQL API over HTTP: saved read-only queries and the Query type's fields, "
    "with the same authentication as HTTP APIs.",
    drivers=("httpx",),
)
