"""http_api against a local REST/JSON server (tests/datasources/web/rest_app.py) over real HTTP:
config validation, check, discover, preview and the answers that fail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from creativeflow.datasources.base import (
    ConnectContext,
    SourceError,
    SourceErrorCode,
    secret_field_paths,
)
from creativeflow.datasources.web import SOURCE_TYPES, answers
from creativeflow.datasources.web.http_api import SOURCE_TYPE, HttpApiConfig
from tests.datasources.web import rest_app
from tests.datasources.web.rest_app import ORDERS_ENDPOINT, USERS_ENDPOINT, RestApi
from tests.datasources.web.rest_app import http_api_config as make
from tests.datasources.web.tls import make_certificates

connector = SOURCE_TYPE.connector


def locs(error: ValidationError) -> list[tuple[str | int, ...]]:
    return [tuple(item["loc"]) for item in error.errors()]


def invalid(**raw: Any) -> list[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as caught:
        HttpApiConfig.model_validate({"type": "http_api", **raw})
    return locs(caught.value)


# -- config ----------------------------------------------------------------------------------


def test_the_family_lists_its_types_in_order() -> None:
    assert [t.name for t in SOURCE_TYPES] == ["http_api", "graphql"]
    assert SOURCE_TYPE.driver_error() is None


def test_a_good_config_with_every_auth_mode() -> None:
    oauth = {
        "mode": "oauth2_client_credentials",
        "token_url": "https://auth.example.com/oauth/token",
        "client_id": "app",
        "client_secret": "s",
        "scopes": ["read:users", "read:orders"],
    }
    config = HttpApiConfig.model_validate(
        {
            "type": "http_api",
            "base_url": "https://api.example.com/v1",
            "auth": oauth,
            "headers": {"X-Tenant": "brand"},
            "endpoints": [USERS_ENDPOINT],
        }
    )
    assert config.hosts() == [("api.example.com", 443), ("auth.example.com", 443)]
    for auth in (
        {"mode": "none"},
        {"mode": "basic", "username": "u", "password": "p"},
        {"mode": "bearer", "token": "t"},
        {"mode": "api_key", "name": "X-API-Key", "value": "k", "location": "query"},
        {"mode": "bearer", "token": {"credential_id": "5b1c3f8e-8f3a-4c55-9d36-5c1b0a7e0f11"}},
    ):
        HttpApiConfig.model_validate(
            {"type": "http_api", "base_url": "http://api.example.com:8080", "auth": auth}
        )
    assert set(secret_field_paths(HttpApiConfig)) == {
        "auth.password",
        "auth.token",
        "auth.value",
        "auth.client_secret",
    }


@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        ({"base_url": "ftp://api.example.com"}, ("base_url",)),
        ({"base_url": "https://user:pw@api.example.com"}, ("base_url",)),
        ({"base_url": "https://api..example.com"}, ("base_url",)),
        ({"base_url": "https://api.example.com:0"}, ("base_url",)),
        ({"base_url": "https://api.example.com/?key=1"}, ("base_url",)),
        ({"auth": {"mode": "basic", "username": "u"}}, ("auth", "basic", "password")),
        (
            {"auth": {"mode": "basic", "username": "a:b", "password": "p"}},
            ("auth", "basic", "username"),
        ),
        ({"auth": {"mode": "bearer", "token": ""}}, ("auth", "bearer", "token")),
        ({"auth": {"mode": "bearer"}}, ("auth", "bearer", "token")),
        (
            {"auth": {"mode": "api_key", "name": "bad name", "value": "k"}},
            ("auth", "api_key", "name"),
        ),
        (
            {"auth": {"mode": "api_key", "name": "k", "value": "v", "location": "cookie"}},
            ("auth", "api_key", "location"),
        ),
        ({"auth": {"mode": "kerberos"}}, ("auth",)),
        (
            {
                "auth": {
                    "mode": "oauth2_client_credentials",
                    "token_url": "ftp://x.example",
                    "client_id": "a",
                    "client_secret": "s",
                }
            },
            ("auth", "oauth2_client_credentials", "token_url"),
        ),
        (
            {
                "auth": {
                    "mode": "oauth2_client_credentials",
                    "token_url": "https://x.example/t",
                    "client_id": "a",
                }
            },
            ("auth", "oauth2_client_credentials", "client_secret"),
        ),
        (
            {
                "auth": {
                    "mode": "oauth2_client_credentials",
                    "token_url": "https://x.example/t",
                    "client_id": "a",
                    "client_secret": "s",
                    "scopes": ["two words"],
                }
            },
            ("auth", "oauth2_client_credentials", "scopes"),
        ),
        ({"headers": {"Authorization": "Bearer x"}}, ("headers",)),
        ({"headers": {"X-Bad": "a\r\nInjected: 1"}}, ("headers",)),
        ({"health_path": "https://elsewhere.example/health"}, ("health_path",)),
        ({"endpoints": [{"name": "a", "path": "x"}, {"name": "a", "path": "y"}]}, ("endpoints",)),
        ({"endpoints": [{"name": "a", "path": "../admin"}]}, ("endpoints", 0, "path")),
        ({"endpoints": [{"name": "a", "path": "x?key=1"}]}, ("endpoints", 0, "path")),
        (
            {"endpoints": [{"name": "a", "path": "x", "method": "DELETE"}]},
            ("endpoints", 0, "method"),
        ),
        ({"endpoints": [{"name": "", "path": "x"}]}, ("endpoints", 0, "name")),
        (
            {"endpoints": [{"name": "a", "path": "x", "records_path": "data..items"}]},
            ("endpoints", 0, "records_path"),
        ),
        (
            {
                "endpoints": [
                    {
                        "name": "a",
                        "path": "x",
                        "params": {"page": 2},
                        "pagination": {"style": "page"},
                    }
                ]
            },
            ("endpoints", 0, "pagination"),
        ),
        (
            {"verify_tls": False, "ca_certificate": "-----BEGIN CERTIFICATE-----"},
            ("ca_certificate",),
        ),
        ({"unknown": 1}, ("unknown",)),
    ],
)
def test_config_mistakes_name_the_field(raw: dict[str, Any], loc: tuple[str | int, ...]) -> None:
    config = {"base_url": "https://api.example.com", **raw}
    assert loc in invalid(**config)


def test_a_ca_certificate_needs_https(tmp_path: Path) -> None:
    pem = make_certificates(tmp_path).ca_pem
    assert ("ca_certificate",) in invalid(base_url="http://api.example.com", ca_certificate=pem)
    HttpApiConfig.model_validate(
        {"type": "http_api", "base_url": "https://api.example.com", "ca_certificate": pem}
    )


# -- check, discover, preview ----------------------------------------------------------------


async def test_check_answers_the_server_header_as_version(
    api: RestApi, context: ConnectContext
) -> None:
    result = await connector.check(make(api.base_url, health_path="health"), context)
    assert rest_app.SERVER in (result.server_version or "")
    assert result.details["status"] == 200
    assert result.details["url"].endswith("/open/health")


async def test_discover_lists_the_endpoints_with_sampled_columns(
    api: RestApi, context: ConnectContext
) -> None:
    config = make(
        api.base_url,
        endpoints=[USERS_ENDPOINT, ORDERS_ENDPOINT, {"name": "gone", "path": "missing"}],
    )
    discovery = await connector.discover(config, context)
    by_name = {o.name: o for o in discovery.objects}
    assert list(by_name) == ["users", "orders", "gone"]
    assert all(o.kind == "endpoint" for o in discovery.objects)
    users = {c.name: c.type for c in by_name["users"].columns or []}
    assert users == {
        "id": "integer",
        "name": "string",
        "score": "number",
        "active": "boolean",
        "address": "object",
    }
    orders = {c.name: (c.type, c.nullable) for c in by_name["orders"].columns or []}
    assert orders["total"] == ("number", False)
    assert orders["note"] == ("null", True)
    # One endpoint's 404 is told in its details, not a failed discovery.
    assert by_name["gone"].columns is None
    assert by_name["gone"].details["error"]["code"] == "NOT_FOUND"


async def test_preview_reads_the_first_page_at_the_records_path(
    api: RestApi, context: ConnectContext
) -> None:
    preview = await connector.preview(make(api.base_url), context, "users", 2)
    assert [row["id"] for row in preview.rows] == [1, 2]
    assert preview.rows[0]["address"] == {"city": "Oslo"}  # nested objects stay objects
    assert {c.name: c.type for c in preview.columns}["score"] == "number"
    assert preview.truncated  # a full page of a paged endpoint
    asked = api.requests[-1].query_params
    assert (asked["page"], asked["per_page"]) == ("1", "2")


async def test_preview_of_a_top_level_list_and_of_one_object(
    api: RestApi, context: ConnectContext
) -> None:
    config = make(
        api.base_url,
        endpoints=[ORDERS_ENDPOINT, {"name": "me", "path": "me"}],
    )
    orders = await connector.preview(config, context, "orders", 1)
    assert orders.rows == [{"order": "A-1", "total": 10, "placed": "2024-05-01"}]
    assert orders.truncated
    me = await connector.preview(config, context, "me", 10)
    assert me.rows == [{"id": 1, "name": "reader"}]
    assert not me.truncated


async def test_preview_of_an_unknown_endpoint_or_records_path_is_not_found(
    api: RestApi, context: ConnectContext
) -> None:
    config = make(
        api.base_url,
        endpoints=[{"name": "users", "path": "users", "records_path": "data.rows"}],
    )
    with pytest.raises(SourceError) as unknown:
        await connector.preview(config, context, "nope", 5)
    assert unknown.value.code is SourceErrorCode.NOT_FOUND
    with pytest.raises(SourceError) as no_path:
        await connector.preview(config, context, "users", 5)
    assert no_path.value.code is SourceErrorCode.NOT_FOUND
    assert "data.rows" in no_path.value.message


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("missing", SourceErrorCode.NOT_FOUND),
        ("forbidden", SourceErrorCode.PERMISSION_DENIED),
        ("boom", SourceErrorCode.PROTOCOL_ERROR),
        ("text", SourceErrorCode.PROTOCOL_ERROR),
        ("scalar", SourceErrorCode.NOT_FOUND),
        ("loop", SourceErrorCode.PROTOCOL_ERROR),
    ],
)
async def test_failed_answers_map_to_codes(
    api: RestApi, context: ConnectContext, path: str, code: SourceErrorCode
) -> None:
    config = make(api.base_url, endpoints=[{"name": "e", "path": path, "records_path": "x"}])
    with pytest.raises(SourceError) as caught:
        await connector.preview(config, context, "e", 5)
    assert caught.value.code is code
    if path == "boom":
        assert "503" in caught.value.message


async def test_an_answer_over_the_size_cap_is_refused(
    api: RestApi, context: ConnectContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(answers, "MAX_RESPONSE_BYTES", 1024)
    config = make(api.base_url, endpoints=[{"name": "big", "path": "big"}])
    with pytest.raises(SourceError) as caught:
        await connector.preview(config, context, "big", 5)
    assert caught.value.code is SourceErrorCode.PROTOCOL_ERROR
    assert "MiB" in caught.value.message or "more than" in caught.value.message


def test_secrets_are_secret_str() -> None:
    config = make("https://api.example.com", auth={"mode": "bearer", "token": "t0k"})
    assert isinstance(config.auth.token, SecretStr)  # type: ignore[union-attr]
    assert "t0k" not in repr(config)


async def test_discover_with_refused_credentials_fails_as_a_whole(
    api: RestApi, context: ConnectContext
) -> None:
    config = make(api.base_url, "bearer", auth={"mode": "bearer", "token": "wrong-9931"})
    with pytest.raises(SourceError) as caught:
        await connector.discover(config, context)
    assert caught.value.code is SourceErrorCode.AUTH_FAILED
    assert "wrong-9931" not in caught.value.message
