"""RS256 tokens from an external identity provider (creatorvault.md), through HTTP: a PEM public
key or a JWKS served by a real local HTTP server; first-seen subjects become local viewers; wrong
audience, issuer, expiry, algorithm, key or token type are refused."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.identity.models import User
from creativeflow.platform import Platform, build_platform
from creativeflow.settings import ConfigurationError, Settings
from creativeflow.shared.security.auth import JWKSCache
from tests.factories import UserFactory
from tests.identity.auth_helpers import (
    JWKSServer,
    assert_unauthorized,
    b64url_json,
    bearer,
    closed_port,
    hmac_token,
    jwk_of,
    new_rsa_key,
    public_pem,
    unsigned_token,
)

ME = "/api/v1/auth/me"
ISSUER = "https://auth.example.com/"
AUDIENCE = "https://api.creativeflow.example"
IDP_KEY = new_rsa_key()
OTHER_KEY = new_rsa_key()
PEM = {"jwt_public_key": public_pem(IDP_KEY), "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, object]:
    """The PEM configuration unless a test asks for another through indirect parametrisation."""
    return dict(getattr(request, "param", PEM))


def external_token(
    key: Any = IDP_KEY, *, kid: str | None = None, alg: str = "RS256", **claims: Any
) -> str:
    now = int(time.time())
    payload = {
        "sub": "user_123",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid} if kid else None)


async def _me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(ME, headers=bearer(token))


# -- the PEM key -------------------------------------------------------------------------------


async def test_a_valid_token_maps_its_subject_to_a_viewer_created_on_first_sight(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    subject = f"user_{uuid.uuid4().hex[:8]}"
    email = f"{subject}@example.com"
    token = external_token(sub=subject, email=email, name="Ext Ernal")

    first = await _me(client, token)

    assert first.status_code == 200, first.text
    body = first.json()
    assert body["roles"] == ["viewer"]
    assert body["email"] == email
    assert body["name"] == "Ext Ernal"
    assert body["is_active"] is True
    assert body["username"].startswith("ext-")
    # A second request (and a second token) reuses the same local user.
    second = await _me(client, external_token(sub=subject))
    assert second.status_code == 200 and second.json()["id"] == body["id"]
    row = (
        await session.execute(
            select(User.external_issuer, User.external_subject, User.password_hash).where(
                User.id == uuid.UUID(body["id"])
            )
        )
    ).one()
    await session.commit()
    assert tuple(row) == (ISSUER, subject, None)
    count = (await session.execute(select(User.id).where(User.external_subject == subject))).all()
    await session.commit()
    assert len(count) == 1


async def test_different_subjects_are_different_users(client: httpx.AsyncClient) -> None:
    one = (await _me(client, external_token(sub=f"a-{uuid.uuid4().hex}"))).json()
    two = (await _me(client, external_token(sub=f"b-{uuid.uuid4().hex}"))).json()
    assert one["id"] != two["id"]


async def test_an_external_user_has_no_password_to_log_in_with(
    client: httpx.AsyncClient,
) -> None:
    body = (await _me(client, external_token(sub=f"s-{uuid.uuid4().hex}"))).json()

    for password in ("", "None", "Correct-Horse-42!"):
        response = await client.post(
            "/api/v1/auth/login", json={"login": body["username"], "password": password or "x"}
        )
        assert_unauthorized(response, "INVALID_CREDENTIALS")


async def test_an_external_token_cannot_claim_a_local_users_email(
    client: httpx.AsyncClient, users: UserFactory
) -> None:
    local = await users.create()

    response = await _me(
        client, external_token(sub=f"s-{uuid.uuid4().hex}", email=local.email.upper())
    )

    assert response.status_code == 200
    assert response.json()["id"] != local.id
    assert response.json()["email"] is None
    assert (await local.get(ME)).json()["email"] == local.email


async def test_claims_the_platform_does_not_use_are_ignored_not_crashed_on(
    client: httpx.AsyncClient,
) -> None:
    """Providers put their own `sid` (not a UUID), odd `roles` and other claims in tokens."""
    token = external_token(
        sub=f"s-{uuid.uuid4().hex}",
        sid="auth0-session-xyz",
        roles="admin",
        username=42,
        email=["x"],
        preferred_username={"a": 1},
    )

    response = await _me(client, token)

    assert response.status_code == 200, response.text
    assert response.json()["roles"] == ["viewer"]  # roles come from our database, not claims


async def test_a_deactivated_external_user_is_refused(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    subject = f"s-{uuid.uuid4().hex}"
    body = (await _me(client, external_token(sub=subject))).json()
    await session.execute(
        update(User).where(User.id == uuid.UUID(body["id"])).values(is_active=False)
    )
    await session.commit()

    assert_unauthorized(await _me(client, external_token(sub=subject)), "ACCOUNT_DISABLED")


async def test_logout_needs_a_session_token(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/logout", headers=bearer(external_token(sub=f"s-{uuid.uuid4().hex}"))
    )
    assert_unauthorized(response, "NOT_A_SESSION")


def _alg_none() -> str:
    now = int(time.time())
    return unsigned_token({"sub": "user_123", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600})


def _hs256_with_the_public_key() -> str:
    now = int(time.time())
    claims = {"sub": "user_123", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600}
    return hmac_token({"alg": "HS256", "typ": "JWT"}, claims, public_pem(IDP_KEY).encode())


REFUSED: dict[str, tuple[Any, str]] = {
    "wrong-audience": (lambda: external_token(aud="https://someone-else.example"), "INVALID_TOKEN"),
    "no-audience": (lambda: external_token(aud=None), "INVALID_TOKEN"),
    "wrong-issuer": (lambda: external_token(iss="https://evil.example/"), "INVALID_TOKEN"),
    "no-issuer": (lambda: external_token(iss=None), "INVALID_TOKEN"),
    "expired": (
        lambda: external_token(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
        "TOKEN_EXPIRED",
    ),
    "no-expiry": (lambda: external_token(exp=None), "INVALID_TOKEN"),
    "no-subject": (lambda: external_token(sub=None), "INVALID_TOKEN"),
    "not-yet-valid": (lambda: external_token(nbf=int(time.time()) + 3600), "INVALID_TOKEN"),
    "alg-none": (_alg_none, "INVALID_TOKEN"),
    "signed-by-another-key": (lambda: external_token(OTHER_KEY), "INVALID_TOKEN"),
    "rs512": (lambda: external_token(alg="RS512"), "INVALID_TOKEN"),
    "ps256": (lambda: external_token(alg="PS256"), "INVALID_TOKEN"),
    "hs256-with-the-public-key": (_hs256_with_the_public_key, "INVALID_TOKEN"),
    "refresh-type": (lambda: external_token(type="refresh"), "WRONG_TOKEN_TYPE"),
    "overlong-subject": (lambda: external_token(sub="s" * 300), "INVALID_TOKEN"),
}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_bad_external_tokens_are_refused(client: httpx.AsyncClient, case: str) -> None:
    make, code = REFUSED[case]

    assert_unauthorized(await _me(client, make()), code)


async def test_the_refusals_above_differ_from_a_valid_token_in_one_thing_only(
    client: httpx.AsyncClient,
) -> None:
    assert (await _me(client, external_token())).status_code == 200


@pytest.mark.parametrize("token_type", [None, "access", "refresh"])
async def test_an_external_token_never_refreshes_a_session(
    client: httpx.AsyncClient, token_type: str | None
) -> None:
    token = external_token(type=token_type, jti=str(uuid.uuid4()), sid=str(uuid.uuid4()))

    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": token})

    assert_unauthorized(response, "WRONG_TOKEN_TYPE")


async def test_own_tokens_keep_working_alongside_external_ones(users: UserFactory) -> None:
    user = await users.create()
    response = await user.get(ME)
    assert response.status_code == 200 and response.json()["id"] == user.id


# -- configuration -----------------------------------------------------------------------------


def _settings(settings: Settings, **overrides: object) -> Settings:
    return Settings.model_validate({**settings.model_dump(), **overrides})


@pytest.mark.parametrize(
    "overrides",
    [
        {"jwt_public_key": "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----"},
        {"jwt_public_key": "just text"},
        {
            "jwt_public_key": IDP_KEY.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
        },
        {"jwt_issuer": None},
        {"jwt_audience": None},
    ],
    ids=["bad-pem", "not-pem", "private-key", "no-issuer", "no-audience"],
)
def test_a_broken_external_configuration_fails_at_start_up(
    settings: Settings, overrides: dict[str, object]
) -> None:
    with pytest.raises(ConfigurationError, match="JWT_"):
        build_platform(_settings(settings, **overrides))


def test_a_pem_with_escaped_newlines_from_an_env_file_is_accepted(settings: Settings) -> None:
    escaped = public_pem(IDP_KEY).replace("\n", "\\n")
    platform = build_platform(_settings(settings, jwt_public_key=escaped))
    assert platform.auth.verifier.external is not None
    assert platform.auth.verifier.external.public_key == public_pem(IDP_KEY)


# -- JWKS --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jwks_server() -> Iterator[JWKSServer]:
    server = JWKSServer()
    yield server
    server.stop()


@pytest.fixture
def jwks(jwks_server: JWKSServer) -> JWKSServer:
    jwks_server.document = {"keys": [jwk_of(IDP_KEY, "key-1")]}
    jwks_server.status = 200
    jwks_server.hits = 0
    return jwks_server


def _jwks_settings(url: str) -> dict[str, object]:
    return {"jwt_jwks_url": url, "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}


@pytest.fixture
def jwks_cache(platform: Platform) -> JWKSCache:
    external = platform.auth.verifier.external
    assert external is not None and external.jwks is not None and external.public_key is None
    return external.jwks


JWKS_CONFIG = pytest.mark.parametrize(
    "settings_overrides", [_jwks_settings("http://127.0.0.1:{port}")], indirect=True
)


@pytest.fixture
def settings(jwks_server: JWKSServer, settings: Settings) -> Settings:
    """Points a JWKS configuration at the module's server (its port is known only now)."""
    if settings.jwt_jwks_url == "http://127.0.0.1:{port}":
        return _settings(settings, jwt_jwks_url=jwks_server.url)
    return settings


@JWKS_CONFIG
async def test_jwks_tokens_with_the_right_kid_verify(
    client: httpx.AsyncClient, jwks: JWKSServer, jwks_cache: JWKSCache
) -> None:
    subject = f"s-{uuid.uuid4().hex}"

    first = await _me(client, external_token(kid="key-1", sub=subject))
    second = await _me(client, external_token(kid="key-1", sub=subject))

    assert first.status_code == 200, first.text
    assert second.json()["id"] == first.json()["id"]
    assert jwks.hits == 1  # fetched once, then served from the cache


@JWKS_CONFIG
async def test_jwks_refuses_unknown_kids_and_other_keys(
    client: httpx.AsyncClient, jwks: JWKSServer, jwks_cache: JWKSCache
) -> None:
    assert_unauthorized(await _me(client, external_token(kid="no-such-key")), "INVALID_TOKEN")
    assert_unauthorized(await _me(client, external_token(OTHER_KEY, kid="key-1")), "INVALID_TOKEN")
    assert_unauthorized(await _me(client, _hs256_with_the_public_key()), "INVALID_TOKEN")
    _header, payload, signature = external_token(kid="key-1").split(".")
    odd_kid = f"{b64url_json({'alg': 'RS256', 'kid': ['key-1']})}.{payload}.{signature}"
    assert_unauthorized(await _me(client, odd_kid), "INVALID_TOKEN")
    assert (await _me(client, external_token(kid="key-1"))).status_code == 200


@JWKS_CONFIG
async def test_jwks_forged_kids_do_not_hammer_the_endpoint(
    client: httpx.AsyncClient, jwks: JWKSServer, jwks_cache: JWKSCache
) -> None:
    assert (await _me(client, external_token(kid="key-1"))).status_code == 200

    for _ in range(10):
        token = external_token(kid=f"forged-{uuid.uuid4().hex}")
        assert_unauthorized(await _me(client, token), "INVALID_TOKEN")

    assert jwks.hits == 1


@JWKS_CONFIG
async def test_jwks_picks_up_a_rotated_key(
    client: httpx.AsyncClient, jwks: JWKSServer, jwks_cache: JWKSCache
) -> None:
    assert (await _me(client, external_token(kid="key-1"))).status_code == 200
    jwks.document = {"keys": [jwk_of(IDP_KEY, "key-1"), jwk_of(OTHER_KEY, "key-2")]}
    jwks_cache.min_refresh_interval = 0  # as if the refresh interval had passed

    response = await _me(client, external_token(OTHER_KEY, kid="key-2"))

    assert response.status_code == 200, response.text
    assert jwks.hits == 2


@JWKS_CONFIG
async def test_jwks_skips_malformed_and_unsuitable_keys(
    client: httpx.AsyncClient, jwks: JWKSServer, jwks_cache: JWKSCache
) -> None:
    jwks.document = {
        "keys": [
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            {**jwk_of(OTHER_KEY, "enc-key"), "use": "enc"},
            {**jwk_of(OTHER_KEY, "hs-key"), "alg": "HS256"},
            {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
            "not-an-object",
            jwk_of(IDP_KEY, "key-1"),
        ]
    }

    assert (await _me(client, external_token(kid="key-1"))).status_code == 200
    for kid in ("broken", "enc-key", "hs-key", "secret"):
        assert_unauthorized(await _me(client, external_token(OTHER_KEY, kid=kid)), "INVALID_TOKEN")


@pytest.mark.parametrize(
    "settings_overrides",
    [_jwks_settings(f"http://127.0.0.1:{closed_port()}/jwks.json")],
    indirect=True,
)
async def test_jwks_server_down_at_first_use_is_401_not_500(
    client: httpx.AsyncClient, jwks_cache: JWKSCache
) -> None:
    for _ in range(2):
        assert_unauthorized(await _me(client, external_token(kid="key-1")), "JWKS_UNAVAILABLE")


@JWKS_CONFIG
@pytest.mark.parametrize(
    ("status", "document"),
    [
        (500, {"keys": []}),
        (200, b"<html>not json</html>"),
        (200, ["not", "a", "jwks"]),
        (200, {"keys": "nope"}),
    ],
    ids=["http-500", "not-json", "json-list", "keys-not-a-list"],
)
async def test_a_broken_jwks_document_at_first_use_is_401(
    client: httpx.AsyncClient,
    jwks: JWKSServer,
    jwks_cache: JWKSCache,
    status: int,
    document: object,
) -> None:
    jwks.status, jwks.document = status, document

    assert_unauthorized(await _me(client, external_token(kid="key-1")), "JWKS_UNAVAILABLE")

    jwks.status, jwks.document = 200, {"keys": [jwk_of(IDP_KEY, "key-1")]}
    assert (await _me(client, external_token(kid="key-1"))).status_code == 200


@JWKS_CONFIG
async def test_cached_jwks_keys_keep_working_while_the_endpoint_is_down(
    client: httpx.AsyncClient, jwks: JWKSServer, jwks_cache: JWKSCache
) -> None:
    assert (await _me(client, external_token(kid="key-1"))).status_code == 200
    jwks.status = 503
    jwks_cache.ttl = 0  # the cache is stale: the next request tries to refresh it
    jwks_cache.min_refresh_interval = 0

    # A different token (an identical one would be answered from the verified-token cache).
    assert (await _me(client, external_token(kid="key-1", jti="second"))).status_code == 200
    assert jwks.hits == 2


@JWKS_CONFIG
async def test_jwks_endpoint_down_is_not_asked_again_for_every_forged_kid(
    client: httpx.AsyncClient, jwks: JWKSServer, jwks_cache: JWKSCache
) -> None:
    jwks_cache.min_refresh_interval = 0.5
    assert (await _me(client, external_token(kid="key-1"))).status_code == 200
    await asyncio.sleep(0.6)  # a refresh is allowed again
    jwks.status = 503

    for _ in range(5):
        token = external_token(kid=f"forged-{uuid.uuid4().hex}")
        assert_unauthorized(await _me(client, token), "INVALID_TOKEN")

    assert jwks.hits == 2  # one failed attempt, not one per forged token
    assert (await _me(client, external_token(kid="key-1"))).status_code == 200
