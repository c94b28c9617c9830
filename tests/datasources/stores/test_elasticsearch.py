"""Elasticsearch against a local server that speaks its wire format (fake_elasticsearch), over
real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from creativeflow.datasources.base import (
    ConnectContext,
    SourceError,
    SourceErrorCode,
    secret_field_paths,
)
from creativeflow.datasources.stores.elasticsearch import SOURCE_TYPE, ElasticsearchConfig
from tests.datasources.servers import closed_port
from tests.datasources.stores.fake_elasticsearch import (
    API_KEY_ID,
    API_KEY_SECRET,
    ENCODED_API_KEY,
    USERS,
    FakeElasticsearch,
)
from tests.providers.fake_servers import serve_app

pytest_plugins = ["tests.datasources.stores.peers"]

CONNECTOR = SOURCE_TYPE.connector
ELASTIC = {"mode": "basic", "username": "elastic", "password": USERS["elastic"]}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeElasticsearch, str]]:
    """One server for the module (starting and stopping uvicorn takes a while)."""
    fake = FakeElasticsearch()
    with serve_app(fake.app()) as url:
        yield fake, url


@pytest.fixture
def fake(served: tuple[FakeElasticsearch, str]) -> FakeElasticsearch:
    served[0].hosts.clear()
    return served[0]


@pytest.fixture
def es_url(served: tuple[FakeElasticsearch, str]) -> str:
    return served[1]


@pytest.fixture
def quick(file_root: Path) -> ConnectContext:
    return ConnectContext(timeout_seconds=1.0, allow_private_hosts=True, file_root=file_root)


def config(url: str = "http://127.0.0.1:9200", **overrides: Any) -> ElasticsearchConfig:
    values: dict[str, Any] = {"type": "elasticsearch", "url": url, "auth": ELASTIC}
    values.update(overrides)
    return ElasticsearchConfig.model_validate(values)


def locs(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[str | int, ...]]:
    return [tuple(error["loc"]) for error in exc.value.errors()]


async def expect(code: SourceErrorCode, seconds: float, call: Any) -> SourceError:
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        await call
    assert caught.value.code == code, caught.value.message
    assert time.monotonic() - started < seconds
    for secret in (*USERS.values(), API_KEY_SECRET, ENCODED_API_KEY):
        assert secret not in caught.value.message
    return caught.value


# -- config ----------------------------------------------------------------------------------


def test_a_good_config_takes_defaults() -> None:
    parsed = ElasticsearchConfig.model_validate(
        {"type": "elasticsearch", "url": "https://search.example.com:9243/es"}
    )
    assert parsed.auth.mode == "none"
    assert parsed.index_pattern == "*"
    assert parsed.include_hidden is False
    assert parsed.verify_tls is True
    assert parsed.hosts() == [("search.example.com", 9243)]
    assert ElasticsearchConfig.model_validate(
        {"type": "elasticsearch", "url": "http://search.example.com"}
    ).hosts() == [("search.example.com", 80)]


def test_auth_modes_are_a_discriminated_union() -> None:
    basic = config(auth=ELASTIC)
    assert basic.auth_headers()["Authorization"].startswith("Basic ")
    encoded = config(auth={"mode": "api_key", "api_key": ENCODED_API_KEY})
    assert encoded.auth_headers() == {"Authorization": f"ApiKey {ENCODED_API_KEY}"}
    pair = config(auth={"mode": "api_key", "api_key": f"{API_KEY_ID}:{API_KEY_SECRET}"})
    assert pair.auth_headers() == {"Authorization": f"ApiKey {ENCODED_API_KEY}"}
    assert config(auth={"mode": "none"}).auth_headers() == {}
    assert secret_field_paths(ElasticsearchConfig) == ["auth.password", "auth.api_key"]
    assert USERS["elastic"] not in basic.model_dump_json()
    schema = ElasticsearchConfig.model_json_schema()
    assert {"url", "auth", "verify_tls", "ca_certificate", "index_pattern"} <= set(
        schema["properties"]
    )


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"url": "ftp://search.example.com"}, ("url",)),
        ({"url": "search.example.com:9200"}, ("url",)),
        ({"url": "https://elastic:pw@search.example.com"}, ("url",)),
        ({"url": "https://search.example.com/?api_key=abc"}, ("url",)),
        ({"url": "https://bad_host!/"}, ("url",)),
        ({"auth": {"mode": "basic", "username": "elastic"}}, ("auth", "basic", "password")),
        ({"auth": {"mode": "basic", "password": "x"}}, ("auth", "basic", "username")),
        (
            {"auth": {"mode": "basic", "username": "e", "password": ""}},
            ("auth", "basic", "password"),
        ),
        ({"auth": {"mode": "api_key"}}, ("auth", "api_key", "api_key")),
        ({"auth": {"mode": "bearer", "token": "x"}}, ("auth",)),
        ({"verify_tls": False}, ("verify_tls",)),
        ({"ca_certificate": "-----BEGIN CERTIFICATE-----\nnope"}, ("ca_certificate",)),
        ({"index_pattern": "Logs-*"}, ("index_pattern",)),
        ({"index_pattern": "logs/*"}, ("index_pattern",)),
        ({"index_pattern": "logs,,x"}, ("index_pattern",)),
        ({"index": "x"}, ("index",)),
    ],
)
def test_mistakes_name_their_field(overrides: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        config(**overrides)
    assert loc in locs(caught)


def test_no_driver_is_needed() -> None:
    assert SOURCE_TYPE.drivers == ()
    assert SOURCE_TYPE.driver_error() is None


# -- check, discover, preview ----------------------------------------------------------------


async def test_check_answers_the_version(
    es_url: str, context: ConnectContext, fake: FakeElasticsearch
) -> None:
    result = await CONNECTOR.check(config(es_url), context)
    assert result.server_version == "8.13.4"
    assert result.details == {
        "distribution": "elasticsearch",
        "cluster_name": "brand-studio",
        "node": "node-1",
    }
    assert fake.hosts == [es_url.removeprefix("http://")]


async def test_check_with_an_api_key(es_url: str, context: ConnectContext) -> None:
    parsed = config(es_url, auth={"mode": "api_key", "api_key": ENCODED_API_KEY})
    assert (await CONNECTOR.check(parsed, context)).server_version == "8.13.4"


async def test_check_reports_opensearch(context: ConnectContext) -> None:
    fake = FakeElasticsearch(distribution="opensearch", version="2.11.1", anonymous=True)
    with serve_app(fake.app()) as url:
        result = await CONNECTOR.check(config(url, auth={"mode": "none"}), context)
    assert result.server_version == "2.11.1"
    assert result.details["distribution"] == "opensearch"


async def test_a_reader_without_cluster_rights_still_checks(
    es_url: str, context: ConnectContext
) -> None:
    reader = {"mode": "basic", "username": "reader", "password": USERS["reader"]}
    result = await CONNECTOR.check(config(es_url, auth=reader), context)
    assert result.server_version is None
    assert result.details == {"user": "reader"}


async def test_requests_go_to_the_checked_address_with_the_host_name(
    es_url: str, context: ConnectContext, fake: FakeElasticsearch, localhost: str
) -> None:
    named = es_url.replace("127.0.0.1", localhost)
    await CONNECTOR.check(config(named), context)
    assert fake.hosts == [named.removeprefix("http://")]


async def test_discover_lists_indices_with_their_mapped_fields(
    es_url: str, context: ConnectContext
) -> None:
    discovery = await CONNECTOR.discover(config(es_url), context)
    assert discovery.truncated is False
    names = [obj.name for obj in discovery.objects]
    assert names == ["articles", "logs-2024.03", "secret-index"]
    articles = discovery.objects[0]
    assert articles.kind == "index"
    assert articles.details == {
        "health": "yellow",
        "status": "open",
        "documents": 3,
        "size_bytes": 1030,
        "primaries": 1,
        "replicas": 1,
    }
    assert articles.columns is not None
    columns = {column.name: (column.type, column.source_type) for column in articles.columns}
    assert columns == {
        "title": ("string", "text"),
        "views": ("integer", "long"),
        "rating": ("number", "float"),
        "published": ("datetime", "date"),
        "draft": ("boolean", "boolean"),
        "tags": ("string", "keyword"),
        "author": ("object", "object"),
        "location": ("object", "geo_point"),
    }


async def test_discover_by_pattern_and_with_hidden_indices(
    es_url: str, context: ConnectContext
) -> None:
    logs = await CONNECTOR.discover(config(es_url, index_pattern="logs-*"), context)
    assert [obj.name for obj in logs.objects] == ["logs-2024.03"]
    everything = await CONNECTOR.discover(config(es_url, include_hidden=True), context)
    assert ".kibana_1" in [obj.name for obj in everything.objects]
    excluded = await CONNECTOR.discover(config(es_url, index_pattern="*,-secret-*"), context)
    assert [obj.name for obj in excluded.objects] == ["articles", "logs-2024.03"]


async def test_discover_skips_mappings_the_user_may_not_read(
    es_url: str, context: ConnectContext
) -> None:
    reader = {"mode": "basic", "username": "reader", "password": USERS["reader"]}
    discovery = await CONNECTOR.discover(config(es_url, auth=reader), context)
    secret = next(obj for obj in discovery.objects if obj.name == "secret-index")
    assert secret.columns is None


async def test_preview_answers_sources_with_mapped_types(
    es_url: str, context: ConnectContext
) -> None:
    preview = await CONNECTOR.preview(config(es_url), context, "articles", 2)
    assert preview.truncated is True
    assert [row["_id"] for row in preview.rows] == ["doc-1", "doc-2"]
    assert preview.rows[0]["author"] == {"name": "ada"}
    assert preview.rows[0]["published"] == "2024-03-01T10:00:00Z"
    names = [column.name for column in preview.columns]
    assert names[0] == "_id" and len(names) == len(set(names))
    types = {column.name: column.type for column in preview.columns}
    assert types["_id"] == "string"
    assert types["published"] == "datetime"  # the mapping's type, though _source has text
    assert types["views"] == "integer"
    assert types["rating"] == "number"
    assert types["location"] == "object"
    assert "headline" not in types  # an alias field is not in _source
    whole = await CONNECTOR.preview(config(es_url), context, "articles", 10)
    assert whole.truncated is False
    extra = next(column for column in whole.columns if column.name == "extra")
    assert (extra.type, extra.source_type) == ("string", None)  # only in the documents


async def test_an_unknown_index_is_not_found(es_url: str, context: ConnectContext) -> None:
    error = await expect(
        SourceErrorCode.NOT_FOUND, 5.0, CONNECTOR.preview(config(es_url), context, "nope", 10)
    )
    assert "no such index [nope]" in error.message
    await expect(
        SourceErrorCode.NOT_FOUND,
        5.0,
        CONNECTOR.discover(config(es_url, index_pattern="nope"), context),
    )


@pytest.mark.parametrize("name", ["", "Articles", "logs-*", "a/b", "_all", "-x", "a,b", ".."])
async def test_malformed_index_names_are_invalid(context: ConnectContext, name: str) -> None:
    await expect(SourceErrorCode.INVALID_OBJECT, 1.0, CONNECTOR.preview(config(), context, name, 5))


async def test_a_forbidden_index_is_permission_denied(es_url: str, context: ConnectContext) -> None:
    reader = {"mode": "basic", "username": "reader", "password": USERS["reader"]}
    error = await expect(
        SourceErrorCode.PERMISSION_DENIED,
        5.0,
        CONNECTOR.preview(config(es_url, auth=reader), context, "secret-index", 5),
    )
    assert "unauthorized for user [reader]" in error.message


# -- failures --------------------------------------------------------------------------------


async def test_a_wrong_password_fails_auth(es_url: str, context: ConnectContext) -> None:
    wrong = "wrong-" + USERS["elastic"]
    parsed = config(es_url, auth={"mode": "basic", "username": "elastic", "password": wrong})
    error = await expect(SourceErrorCode.AUTH_FAILED, 5.0, CONNECTOR.check(parsed, context))
    assert wrong not in error.message
    assert "'elastic'" in error.message


async def test_a_wrong_api_key_fails_auth(es_url: str, context: ConnectContext) -> None:
    parsed = config(es_url, auth={"mode": "api_key", "api_key": "bm90OmEta2V5"})
    error = await expect(SourceErrorCode.AUTH_FAILED, 5.0, CONNECTOR.discover(parsed, context))
    assert "bm90OmEta2V5" not in error.message


async def test_missing_credentials_say_so(es_url: str, context: ConnectContext) -> None:
    error = await expect(
        SourceErrorCode.AUTH_FAILED,
        5.0,
        CONNECTOR.check(config(es_url, auth={"mode": "none"}), context),
    )
    assert "requires authentication" in error.message


async def test_a_closed_port_refuses(quick: ConnectContext) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    await expect(SourceErrorCode.CONNECTION_REFUSED, 2.0, CONNECTOR.check(config(url), quick))


async def test_a_silent_port_times_out(quick: ConnectContext, silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}"
    await expect(SourceErrorCode.TIMEOUT, 2.5, CONNECTOR.check(config(url), quick))


async def test_a_peer_that_is_not_elasticsearch(quick: ConnectContext, http_peer: int) -> None:
    url = f"http://127.0.0.1:{http_peer}"
    await expect(SourceErrorCode.PROTOCOL_ERROR, 2.0, CONNECTOR.check(config(url), quick))


async def test_redirects_are_not_followed(context: ConnectContext) -> None:
    async def elsewhere(request: Request) -> Response:
        return RedirectResponse("http://169.254.169.254/latest/meta-data/", status_code=302)

    with serve_app(Starlette(routes=[Route("/", elsewhere)])) as url:
        error = await expect(
            SourceErrorCode.PROTOCOL_ERROR, 5.0, CONNECTOR.check(config(url), context)
        )
    assert "redirect" in error.message


async def test_https_to_a_plain_server_is_a_tls_error(quick: ConnectContext, es_url: str) -> None:
    url = es_url.replace("http://", "https://")
    await expect(SourceErrorCode.TLS_ERROR, 2.0, CONNECTOR.check(config(url), quick))


async def test_tls_verifies_the_host_name(quick: ConnectContext, tls_peer: Any) -> None:
    good = await tls_peer("localhost")
    url = f"https://localhost:{good.port}"
    # The handshake passes (the certificate names localhost), then the peer is no cluster.
    await expect(
        SourceErrorCode.PROTOCOL_ERROR,
        2.0,
        CONNECTOR.check(config(url, ca_certificate=good.ca_pem), quick),
    )
    other = await tls_peer("other.test")
    url = f"https://localhost:{other.port}"
    error = await expect(
        SourceErrorCode.TLS_ERROR,
        2.0,
        CONNECTOR.check(config(url, ca_certificate=other.ca_pem), quick),
    )
    assert "certificate" in error.message
    # Not verifying accepts it.
    await expect(
        SourceErrorCode.PROTOCOL_ERROR,
        2.0,
        CONNECTOR.check(config(url, verify_tls=False), quick),
    )


async def test_loopback_is_refused_by_the_guard(
    es_url: str, guarded_context: ConnectContext
) -> None:
    await expect(
        SourceErrorCode.HOST_REFUSED, 1.0, CONNECTOR.check(config(es_url), guarded_context)
    )
