"""graphql against a minimal real GraphQL server (tests/datasources/web/graphql_app.py) over
HTTP: check, introspection, saved and field queries, GraphQL errors, auth and the failures."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from creativeflow.datasources.base import ConnectContext, SourceError, SourceErrorCode
from creativeflow.datasources.web.graphql import SOURCE_TYPE, GraphqlConfig
from tests.datasources.servers import closed_port
from tests.datasources.web import graphql_app, rest_app
from tests.datasources.web.graphql_app import GraphqlApi
from tests.datasources.web.rest_app import RestApi
from tests.providers.fake_servers import serve_app

connector = SOURCE_TYPE.connector

ACTIVE_USERS = {
    "name": "active users",
    "query": "# the first few\nquery Active($n: Int) { users(first: $n) { id name active } }",
    "variables": {"n": 3},
    "records_path": "users",
}
CITIES = {
    "name": "cities",
    "query": "{ users { id address { city } } }",
}


def serve(api: GraphqlApi) -> Iterator[str]:
    with serve_app(api.app()) as base_url:
        yield f"{base_url}/graphql"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    yield from serve(GraphqlApi())


@pytest.fixture(scope="module")
def closed_url() -> Iterator[str]:
    """A server that refuses introspection."""
    yield from serve(GraphqlApi(introspection=False))


@pytest.fixture(scope="module")
def token_url() -> Iterator[str]:
    """A server that wants a bearer token (and says UNAUTHENTICATED with HTTP 200)."""
    yield from serve(GraphqlApi(token=graphql_app.TOKEN))


@pytest.fixture(scope="module")
def strict_url() -> Iterator[str]:
    """A server that wants a bearer token and answers HTTP 401 without one."""
    yield from serve(GraphqlApi(token=graphql_app.TOKEN, unauthenticated_status=401))


def make(url: str, **overrides: Any) -> GraphqlConfig:
    raw: dict[str, Any] = {"type": "graphql", "url": url, "queries": [ACTIVE_USERS, CITIES]}
    return GraphqlConfig.model_validate({**raw, **overrides})


# -- config ----------------------------------------------------------------------------------


def test_a_good_config() -> None:
    config = make(
        "https://api.example.com/graphql",
        auth={"mode": "api_key", "name": "X-API-Key", "value": "k"},
        headers={"X-Client": "creativeflow"},
    )
    assert config.hosts() == [("api.example.com", 443)]
    assert [q.name for q in config.queries] == ["active users", "cities"]
    GraphqlConfig.model_validate(
        {
            "type": "graphql",
            "url": "http://gql.example.com:4000/",
            "queries": [
                {
                    "name": "with fragment",
                    "query": 'fragment F on User { id }\nquery { users { ...F name(x: "}") } }',
                }
            ],
        }
    )


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("mutation { deleteUser(id: 1) { id } }", "read only"),
        ("subscription { events { id } }", "read only"),
        ("query A { a } mutation B { b }", "read only"),
        ("query A { a } query B { b }", "2 operations"),
        ("{ users { id }", "unclosed"),
        ("{ users { id } } }", "unmatched"),
        ("users { id }", "must be an operation"),
        ("fragment F on User { id }", "no query"),
    ],
)
def test_saved_queries_must_be_one_read_only_operation(query: str, says: str) -> None:
    with pytest.raises(ValidationError) as caught:
        make("https://api.example.com/graphql", queries=[{"name": "q", "query": query}])
    errors = caught.value.errors()
    assert [tuple(e["loc"]) for e in errors] == [("queries", 0, "query")]
    assert says in errors[0]["msg"]


@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        ({"url": "ws://api.example.com/graphql"}, ("url",)),
        ({"url": "https://api.example.com:65536/graphql"}, ("url",)),
        ({"url": "not a url"}, ("url",)),
        ({"auth": {"mode": "bearer", "token": ""}}, ("auth", "bearer", "token")),
        ({"headers": {"authorization": "x"}}, ("headers",)),
        ({"queries": [ACTIVE_USERS, ACTIVE_USERS]}, ("queries",)),
        ({"queries": [{**CITIES, "variables": {"$n": 1}}]}, ("queries", 0, "variables")),
        ({"queries": [{**CITIES, "name": "bad/name"}]}, ("queries", 0, "name")),
        ({"ca_certificate": "-----BEGIN CERTIFICATE-----\nnope"}, ("ca_certificate",)),
    ],
)
def test_config_mistakes_name_the_field(raw: dict[str, Any], loc: tuple[str | int, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        raw = dict(raw)
        make(raw.pop("url", "https://api.example.com/graphql"), **raw)
    assert loc in [tuple(e["loc"]) for e in caught.value.errors()]


# -- check, discover, preview ----------------------------------------------------------------


async def test_check_asks_for_the_typename_and_reads_the_server_header(
    url: str, context: ConnectContext
) -> None:
    result = await connector.check(make(url), context)
    assert result.server_version == graphql_app.SERVER
    assert result.details["query_type"] == "Query"


async def test_discover_lists_saved_queries_and_query_fields(
    url: str, context: ConnectContext
) -> None:
    discovery = await connector.discover(make(url), context)
    kinds = {o.name: o.kind for o in discovery.objects}
    assert kinds == {
        "active users": "query",
        "cities": "query",
        "users": "query_field",
        "user": "query_field",
        "version": "query_field",
        "tags": "query_field",
        "secret": "query_field",
        "broken": "query_field",
    }
    by_name = {o.name: o for o in discovery.objects}
    users = by_name["users"]
    assert users.details["type"] == "[User!]!"
    assert users.details["returns"] == "User"
    assert users.details["list"] is True
    columns = {c.name: (c.type, c.source_type, c.nullable) for c in users.columns or []}
    assert columns == {
        "id": ("string", "ID!", False),
        "name": ("string", "String!", False),
        "age": ("integer", "Int", True),
        "score": ("number", "Float", True),
        "active": ("boolean", "Boolean!", False),
    }  # `address` is an object: not a scalar column
    assert by_name["user"].details["required_arguments"] == ["id"]
    assert [(c.name, c.type) for c in by_name["tags"].columns or []] == [("tags", "array")]
    assert by_name["active users"].details["variables"] == ["n"]


async def test_discover_without_introspection_lists_the_saved_queries(
    closed_url: str, context: ConnectContext
) -> None:
    discovery = await connector.discover(make(closed_url), context)
    assert [(o.name, o.kind) for o in discovery.objects] == [
        ("active users", "query"),
        ("cities", "query"),
    ]
    assert discovery.objects[0].details["introspection"] is False


async def test_preview_runs_a_saved_query_with_its_variables(
    url: str, context: ConnectContext
) -> None:
    preview = await connector.preview(make(url), context, "active users", 10)
    assert preview.rows == [
        {"id": "1", "name": "user 1", "active": True},
        {"id": "2", "name": "user 2", "active": False},
        {"id": "3", "name": "user 3", "active": True},
    ]
    assert [(c.name, c.type) for c in preview.columns] == [
        ("id", "string"),
        ("name", "string"),
        ("active", "boolean"),
    ]


async def test_preview_of_a_saved_query_without_records_path_takes_its_one_field(
    url: str, context: ConnectContext
) -> None:
    preview = await connector.preview(make(url), context, "cities", 2)
    assert preview.rows == [
        {"id": "1", "address": {"city": "Bergen"}},
        {"id": "2", "address": {"city": "Bergen"}},
    ]
    assert preview.truncated
    assert {c.name: c.type for c in preview.columns}["address"] == "object"


async def test_preview_of_a_query_field_selects_its_scalars_and_bounds_the_list(
    url: str, context: ConnectContext, closed_url: str
) -> None:
    preview = await connector.preview(make(url), context, "users", 2)
    assert preview.rows == [
        {"id": "1", "name": "user 1", "age": 21, "score": 0.5, "active": True},
        {"id": "2", "name": "user 2", "age": 22, "score": 1.0, "active": False},
    ]
    assert [(c.name, c.source_type) for c in preview.columns][:2] == [
        ("id", "ID!"),
        ("name", "String!"),
    ]
    scalar = await connector.preview(make(url), context, "version", 5)
    assert scalar.rows == [{"version": "0.3"}]
    tags = await connector.preview(make(url), context, "tags", 5)
    assert tags.rows == [{"value": "red"}, {"value": "green"}]


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("nothing", SourceErrorCode.NOT_FOUND),
        ("user", SourceErrorCode.INVALID_OBJECT),  # needs an id
        ("not a name!", SourceErrorCode.INVALID_OBJECT),
    ],
)
async def test_preview_of_an_unknown_or_unusable_object(
    url: str, context: ConnectContext, name: str, code: SourceErrorCode
) -> None:
    with pytest.raises(SourceError) as caught:
        await connector.preview(make(url), context, name, 5)
    assert caught.value.code is code


async def test_preview_of_a_field_without_introspection_is_not_found(
    closed_url: str, context: ConnectContext
) -> None:
    with pytest.raises(SourceError) as caught:
        await connector.preview(make(closed_url), context, "users", 5)
    assert caught.value.code is SourceErrorCode.NOT_FOUND
    assert "introspection" in caught.value.message


@pytest.mark.parametrize(
    ("query", "code", "says"),
    [
        ("{ secret }", SourceErrorCode.AUTH_FAILED, "logged in"),
        ("{ broken }", SourceErrorCode.PROTOCOL_ERROR, "resolver of broken failed"),
        ("{ nope { id } }", SourceErrorCode.PROTOCOL_ERROR, 'Cannot query field "nope"'),
    ],
)
async def test_graphql_errors_map_to_codes(
    url: str, context: ConnectContext, query: str, code: SourceErrorCode, says: str
) -> None:
    config = make(url, queries=[{"name": "q", "query": query}])
    with pytest.raises(SourceError) as caught:
        await connector.preview(config, context, "q", 5)
    assert caught.value.code is code
    assert says in caught.value.message


# -- auth ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["token_url", "strict_url"])
async def test_a_bearer_token_end_to_end_and_a_wrong_one(
    fixture: str, request: pytest.FixtureRequest, context: ConnectContext
) -> None:
    server: str = request.getfixturevalue(fixture)
    good = make(server, auth={"mode": "bearer", "token": graphql_app.TOKEN})
    assert (await connector.check(good, context)).details["query_type"] == "Query"
    assert len((await connector.preview(good, context, "active users", 5)).rows) == 3
    wrong = make(server, auth={"mode": "bearer", "token": "wrong-graphql-token-55"})
    with pytest.raises(SourceError) as caught:
        await connector.check(wrong, context)
    assert caught.value.code is SourceErrorCode.AUTH_FAILED
    assert "wrong-graphql-token-55" not in caught.value.message
    with pytest.raises(SourceError) as on_discover:
        await connector.discover(wrong, context)  # not taken for "introspection disabled"
    assert on_discover.value.code is SourceErrorCode.AUTH_FAILED


async def test_oauth2_client_credentials_against_a_graphql_api(
    api: RestApi, context: ConnectContext
) -> None:
    # The GraphQL server accepts the tokens the OAuth server issues, and only those.
    graphql = GraphqlApi(issued=api.issued)
    with serve_app(graphql.app()) as base_url:
        auth = {
            "mode": "oauth2_client_credentials",
            "token_url": f"{api.base_url}/token",
            "client_id": rest_app.CLIENT_ID,
            "client_secret": rest_app.CLIENT_SECRET,
            "client_authentication": "client_secret_post",
        }
        config = make(f"{base_url}/graphql", auth=auth)
        assert (await connector.check(config, context)).details["query_type"] == "Query"
        preview = await connector.preview(config, context, "users", 2)
        assert len(preview.rows) == 2
        assert api.token_forms[-1]["client_id"] == rest_app.CLIENT_ID
        assert graphql.queries[0] == {"query": "{ __typename }"}
        wrong = make(f"{base_url}/graphql", auth={**auth, "client_secret": "nope-nope-99"})
        with pytest.raises(SourceError) as caught:
            await connector.check(wrong, context)
        assert caught.value.code is SourceErrorCode.AUTH_FAILED
        assert "nope-nope-99" not in caught.value.message


# -- unreachable -----------------------------------------------------------------------------


async def test_a_closed_port_is_connection_refused(context: ConnectContext) -> None:
    with pytest.raises(SourceError) as caught:
        await connector.check(make(f"http://127.0.0.1:{closed_port()}/graphql"), context)
    assert caught.value.code is SourceErrorCode.CONNECTION_REFUSED


async def test_a_silent_port_times_out(silent_port: int, file_root: Path) -> None:
    context = ConnectContext(timeout_seconds=1.0, allow_private_hosts=True, file_root=file_root)
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        await connector.discover(make(f"http://127.0.0.1:{silent_port}/graphql"), context)
    assert caught.value.code is SourceErrorCode.TIMEOUT
    assert time.monotonic() - started < 2.5


async def test_a_loopback_host_is_refused_in_production(
    url: str, guarded_context: ConnectContext
) -> None:
    with pytest.raises(SourceError) as caught:
        await connector.check(make(url), guarded_context)
    assert caught.value.code is SourceErrorCode.HOST_REFUSED


async def test_a_rest_server_is_not_a_graphql_server(api: RestApi, context: ConnectContext) -> None:
    with pytest.raises(SourceError) as caught:
        await connector.check(make(f"{api.base_url}/open/users"), context)
    # The REST app answers POST with 405: a peer speaking something else.
    assert caught.value.code is SourceErrorCode.PROTOCOL_ERROR
