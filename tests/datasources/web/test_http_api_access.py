"""http_api over real HTTP: each auth mode end to end, OAuth2 client credentials, redirects,
TLS (the handshake names the host while the connection goes to the checked address) and the
unreachable answers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from creativeflow.datasources.base import ConnectContext, SourceError, SourceErrorCode
from creativeflow.datasources.web.http_api import SOURCE_TYPE
from tests.datasources.servers import closed_port
from tests.datasources.web import rest_app
from tests.datasources.web.rest_app import RestApi
from tests.datasources.web.rest_app import http_api_config as make
from tests.datasources.web.tls import make_certificates, serve_tls_app

connector = SOURCE_TYPE.connector


# -- redirects -------------------------------------------------------------------------------


async def test_a_redirect_on_the_same_host_is_followed(
    api: RestApi, context: ConnectContext
) -> None:
    config = make(
        api.base_url, endpoints=[{"name": "moved", "path": "moved", "records_path": "data.items"}]
    )
    preview = await connector.preview(config, context, "moved", 3)
    assert [row["id"] for row in preview.rows] == [1, 2, 3]


async def test_a_redirect_to_another_host_is_not_followed(
    api: RestApi, other_api: RestApi, context: ConnectContext
) -> None:
    api.redirect_to = f"{other_api.base_url}/open/users"
    before = len(other_api.requests)
    config = make(
        api.base_url,
        "bearer",
        auth={"mode": "bearer", "token": rest_app.BEARER_TOKEN},
        endpoints=[{"name": "away", "path": "away"}],
    )
    with pytest.raises(SourceError) as caught:
        await connector.preview(config, context, "away", 5)
    assert caught.value.code is SourceErrorCode.PROTOCOL_ERROR
    assert "another host" in caught.value.message
    assert len(other_api.requests) == before


# -- auth modes ------------------------------------------------------------------------------

AUTH_MODES: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    # prefix: (good auth, wrong auth, the wrong secret)
    "basic": (
        {"mode": "basic", "username": rest_app.BASIC_USER, "password": rest_app.BASIC_PASSWORD},
        {"mode": "basic", "username": rest_app.BASIC_USER, "password": "wrong-basic-4411"},
        "wrong-basic-4411",
    ),
    "bearer": (
        {"mode": "bearer", "token": rest_app.BEARER_TOKEN},
        {"mode": "bearer", "token": "wrong-bearer-4412"},
        "wrong-bearer-4412",
    ),
    "header-key": (
        {"mode": "api_key", "name": "X-API-Key", "value": rest_app.API_KEY},
        {"mode": "api_key", "name": "X-API-Key", "value": "wrong-key-4413"},
        "wrong-key-4413",
    ),
    "query-key": (
        {"mode": "api_key", "name": "api_key", "value": rest_app.API_KEY, "location": "query"},
        {"mode": "api_key", "name": "api_key", "value": "wrong-key-4414", "location": "query"},
        "wrong-key-4414",
    ),
}


@pytest.mark.parametrize("prefix", list(AUTH_MODES))
async def test_each_auth_mode_end_to_end(
    api: RestApi, context: ConnectContext, prefix: str
) -> None:
    good, wrong, secret = AUTH_MODES[prefix]
    config = make(api.base_url, prefix, auth=good)
    assert rest_app.SERVER in ((await connector.check(config, context)).server_version or "")
    preview = await connector.preview(config, context, "users", 3)
    assert len(preview.rows) == 3
    with pytest.raises(SourceError) as caught:
        await connector.preview(make(api.base_url, prefix, auth=wrong), context, "users", 3)
    assert caught.value.code is SourceErrorCode.AUTH_FAILED
    assert secret not in caught.value.message
    assert "?" not in caught.value.message  # no query string (where a key may travel)


async def test_no_auth_on_a_protected_resource_is_auth_failed(
    api: RestApi, context: ConnectContext
) -> None:
    with pytest.raises(SourceError) as caught:
        await connector.check(make(api.base_url, "bearer"), context)
    assert caught.value.code is SourceErrorCode.AUTH_FAILED


def oauth(api: RestApi, secret: str = rest_app.CLIENT_SECRET, **extra: Any) -> dict[str, Any]:
    return {
        "mode": "oauth2_client_credentials",
        "token_url": f"{api.base_url}/token",
        "client_id": rest_app.CLIENT_ID,
        "client_secret": secret,
        **extra,
    }


@pytest.mark.parametrize("client_authentication", ["client_secret_basic", "client_secret_post"])
async def test_oauth2_client_credentials_fetches_a_token_once_per_call(
    api: RestApi, context: ConnectContext, client_authentication: str
) -> None:
    auth = oauth(
        api,
        client_authentication=client_authentication,
        scopes=["read:users", "read:orders"],
        audience="https://api.example.com",
    )
    config = make(api.base_url, "oauth", auth=auth)
    tokens_before = len(api.token_forms)
    discovery = await connector.discover(config, context)
    assert [o.columns is not None for o in discovery.objects] == [True, True]
    assert len(api.token_forms) == tokens_before + 1  # one token for both endpoints
    form = api.token_forms[-1]
    assert form["grant_type"] == "client_credentials"
    assert form["scope"] == "read:users read:orders"
    assert form["audience"] == "https://api.example.com"
    assert ("client_secret" in form) == (client_authentication == "client_secret_post")
    preview = await connector.preview(config, context, "users", 2)
    assert len(preview.rows) == 2
    assert len(api.token_forms) == tokens_before + 2  # and a new one for the next call


async def test_oauth2_with_a_wrong_client_secret_is_auth_failed(
    api: RestApi, context: ConnectContext
) -> None:
    config = make(api.base_url, "oauth", auth=oauth(api, "wrong-client-secret-77"))
    with pytest.raises(SourceError) as caught:
        await connector.check(config, context)
    assert caught.value.code is SourceErrorCode.AUTH_FAILED
    assert "invalid_client" in caught.value.message
    assert "wrong-client-secret-77" not in caught.value.message  # the server echoed it


async def test_oauth2_with_a_token_endpoint_that_is_not_one_is_auth_failed(
    api: RestApi, context: ConnectContext
) -> None:
    auth = oauth(api)
    auth["token_url"] = f"{api.base_url}/open/missing"
    with pytest.raises(SourceError) as caught:
        await connector.check(make(api.base_url, "oauth", auth=auth), context)
    assert caught.value.code is SourceErrorCode.AUTH_FAILED


async def test_an_oauth2_token_endpoint_on_a_private_host_is_refused(
    api: RestApi, guarded_context: ConnectContext
) -> None:
    with pytest.raises(SourceError) as caught:
        await connector.check(make(api.base_url, "oauth", auth=oauth(api)), guarded_context)
    assert caught.value.code is SourceErrorCode.HOST_REFUSED


# -- unreachable -----------------------------------------------------------------------------


async def test_a_closed_port_is_connection_refused(context: ConnectContext) -> None:
    config = make(f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(SourceError) as caught:
        await connector.check(config, context)
    assert caught.value.code is SourceErrorCode.CONNECTION_REFUSED


async def test_a_silent_port_times_out(silent_port: int, file_root: Path) -> None:
    context = ConnectContext(timeout_seconds=1.0, allow_private_hosts=True, file_root=file_root)
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        await connector.check(make(f"http://127.0.0.1:{silent_port}"), context)
    assert caught.value.code is SourceErrorCode.TIMEOUT
    assert time.monotonic() - started < 2.5


async def test_a_loopback_host_is_refused_in_production(
    api: RestApi, guarded_context: ConnectContext
) -> None:
    with pytest.raises(SourceError) as caught:
        await connector.check(make(api.base_url), guarded_context)
    assert caught.value.code is SourceErrorCode.HOST_REFUSED


async def test_an_unknown_host_is_host_not_found(context: ConnectContext) -> None:
    with pytest.raises(SourceError) as caught:
        await connector.check(make("http://no-such-host.invalid"), context)
    assert caught.value.code is SourceErrorCode.HOST_NOT_FOUND


# -- TLS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL by name, the CA's PEM) of the REST app over HTTPS with a `localhost`
    certificate; the connection goes to 127.0.0.1, the handshake names localhost."""
    certificates = make_certificates(tmp_path_factory.mktemp("tls"))
    with serve_tls_app(RestApi().app(), certificates) as port:
        yield f"https://localhost:{port}", certificates.ca_pem


async def test_tls_verifies_the_certificate_against_the_host_name(
    tls_api: tuple[str, str], context: ConnectContext
) -> None:
    base_url, ca_pem = tls_api
    result = await connector.check(make(base_url, ca_certificate=ca_pem), context)
    assert rest_app.SERVER in (result.server_version or "")
    with pytest.raises(SourceError) as untrusted:
        await connector.check(make(base_url), context)
    assert untrusted.value.code is SourceErrorCode.TLS_ERROR
    unverified = await connector.check(make(base_url, verify_tls=False), context)
    assert unverified.details["status"] == 200


async def test_tls_with_a_name_the_certificate_does_not_hold_fails(
    tls_api: tuple[str, str], context: ConnectContext
) -> None:
    base_url, ca_pem = tls_api
    by_address = base_url.replace("localhost", "127.0.0.1")
    with pytest.raises(SourceError) as caught:
        await connector.check(make(by_address, ca_certificate=ca_pem), context)
    assert caught.value.code is SourceErrorCode.TLS_ERROR
