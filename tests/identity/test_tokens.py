"""Attacks on bearer tokens, through HTTP, on every protected route family: missing, garbage,
expired, tampered, foreign-key, `alg: none`, algorithm-confusion, wrong-type, wrong-issuer and
wrong-audience tokens, and tokens of deleted or deactivated users. Every refusal is a 401
problem+json with `WWW-Authenticate: Bearer` and a stable `code`."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.app import create_app
from creativeflow.identity.models import User
from creativeflow.platform import Platform
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.identity.auth_helpers import (
    assert_unauthorized,
    bearer,
    claims_of,
    hmac_token,
    new_rsa_key,
    public_pem,
    sign_hs256,
    unsigned_token,
    with_payload,
)

ME = "/api/v1/auth/me"
REFRESH = "/api/v1/auth/refresh"
EXTERNAL_KEY = new_rsa_key()
EXTERNAL_ISSUER = "https://auth.example.com/"
EXTERNAL_AUDIENCE = "https://api.creativeflow.example"
EXTERNAL = {
    "jwt_public_key": public_pem(EXTERNAL_KEY),
    "jwt_issuer": EXTERNAL_ISSUER,
    "jwt_audience": EXTERNAL_AUDIENCE,
}


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, object]:
    return dict(getattr(request, "param", {}))


@pytest.fixture
def secret(platform: Platform) -> str:
    """The platform's signing key: forged tokens below are signed with the real thing, so only
    the property under test makes them invalid."""
    return platform.settings.signing_key()


async def _victim(users: UserFactory) -> Any:
    return await users.create()


def _requests() -> dict[str, tuple[str, str, dict[str, Any]]]:
    """One route of each protected family of /auth, with a body it would accept."""
    return {
        "me": ("GET", ME, {}),
        "logout": ("POST", "/api/v1/auth/logout", {}),
        "change-password": (
            "POST",
            "/api/v1/auth/change-password",
            {"json": {"current_password": DEFAULT_PASSWORD, "new_password": "Brand-New-Secret-9?"}},
        ),
    }


ROUTES = list(_requests())


async def _call(client: httpx.AsyncClient, route: str, headers: dict[str, str]) -> httpx.Response:
    method, url, kwargs = _requests()[route]
    return await client.request(method, url, headers=headers, **kwargs)


# -- forging, from a real token ----------------------------------------------------------------

Forge = Callable[[str, dict[str, Any], str, str], str]
"""(secret, claims of the victim's access token, the token, another user's id) -> token"""

NOW = int(time.time())
ATTACKS: dict[str, tuple[Forge, str]] = {
    "garbage": (lambda s, c, t, o: "not-a-jwt", "INVALID_TOKEN"),
    "three-garbage-segments": (lambda s, c, t, o: "abc.def.ghi", "INVALID_TOKEN"),
    "truncated-signature": (lambda s, c, t, o: t[:-6], "INVALID_TOKEN"),
    "expired": (
        lambda s, c, t, o: sign_hs256({**c, "iat": NOW - 7200, "exp": NOW - 3600}, s),
        "TOKEN_EXPIRED",
    ),
    "tampered-sub-keeping-signature": (
        lambda s, c, t, o: with_payload(t, {**c, "sub": o}),
        "INVALID_TOKEN",
    ),
    "tampered-roles-keeping-signature": (
        lambda s, c, t, o: with_payload(t, {**c, "roles": ["admin"]}),
        "INVALID_TOKEN",
    ),
    "signed-with-another-key": (
        lambda s, c, t, o: sign_hs256(c, "another-secret-key-with-plenty-of-entropy-42"),
        "INVALID_TOKEN",
    ),
    "alg-none": (lambda s, c, t, o: unsigned_token(c), "INVALID_TOKEN"),
    "alg-None": (lambda s, c, t, o: unsigned_token(c, "None"), "INVALID_TOKEN"),
    "alg-NONE": (lambda s, c, t, o: unsigned_token(c, "NONE"), "INVALID_TOKEN"),
    "alg-none-with-original-signature": (
        lambda s, c, t, o: unsigned_token(c) + t.rsplit(".", 1)[1],
        "INVALID_TOKEN",
    ),
    "hs512-with-the-real-secret": (
        lambda s, c, t, o: hmac_token({"alg": "HS512", "typ": "JWT"}, c, s.encode()),
        "INVALID_TOKEN",
    ),
    "rs256-without-an-external-issuer": (
        lambda s, c, t, o: jwt.encode(c, EXTERNAL_KEY, algorithm="RS256"),
        "INVALID_TOKEN",
    ),
    "wrong-issuer": (
        lambda s, c, t, o: sign_hs256({**c, "iss": "someone-else"}, s),
        "INVALID_TOKEN",
    ),
    "wrong-audience": (
        lambda s, c, t, o: sign_hs256({**c, "aud": "another-api"}, s),
        "INVALID_TOKEN",
    ),
    "no-expiry": (
        lambda s, c, t, o: sign_hs256({k: v for k, v in c.items() if k != "exp"}, s),
        "INVALID_TOKEN",
    ),
    "no-type": (
        lambda s, c, t, o: sign_hs256({k: v for k, v in c.items() if k != "type"}, s),
        "INVALID_TOKEN",
    ),
    "no-session": (
        lambda s, c, t, o: sign_hs256({k: v for k, v in c.items() if k != "sid"}, s),
        "INVALID_TOKEN",
    ),
    "non-uuid-session": (lambda s, c, t, o: sign_hs256({**c, "sid": "abc"}, s), "INVALID_TOKEN"),
    "non-uuid-subject": (lambda s, c, t, o: sign_hs256({**c, "sub": "root"}, s), "INVALID_TOKEN"),
    "session-of-another-user": (
        lambda s, c, t, o: sign_hs256({**c, "sub": o}, s),
        "SESSION_REVOKED",
    ),
    "unknown-session": (
        lambda s, c, t, o: sign_hs256({**c, "sid": str(uuid.uuid4())}, s),
        "SESSION_REVOKED",
    ),
    "refresh-type-claim": (
        lambda s, c, t, o: sign_hs256({**c, "type": "refresh"}, s),
        "WRONG_TOKEN_TYPE",
    ),
    "api-key-shaped-garbage": (lambda s, c, t, o: "cfk_" + "x" * 50, "INVALID_API_KEY"),
}


@pytest.mark.parametrize("route", ROUTES)
async def test_no_token_is_401(client: httpx.AsyncClient, route: str) -> None:
    assert_unauthorized(await _call(client, route, {}), "NOT_AUTHENTICATED")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "authorization", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Token abc", "bearer"]
)
async def test_other_authorization_schemes_are_401(
    client: httpx.AsyncClient, route: str, authorization: str
) -> None:
    response = await _call(client, route, {"Authorization": authorization})
    assert_unauthorized(response, "NOT_AUTHENTICATED")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_forged_tokens_are_401(
    client: httpx.AsyncClient, users: UserFactory, secret: str, route: str, attack: str
) -> None:
    victim = await _victim(users)
    other = await users.create()
    forge, code = ATTACKS[attack]

    token = forge(secret, claims_of(victim.access_token), victim.access_token, other.id)

    assert_unauthorized(await _call(client, route, bearer(token)), code)
    # The victim's real token still works: nothing but the forgery was refused.
    assert (await client.get(ME, headers=bearer(victim.access_token))).status_code == 200


async def test_forging_works_when_nothing_is_changed(
    client: httpx.AsyncClient, users: UserFactory, secret: str
) -> None:
    """Control for the forgeries: re-signing the very same claims with the real key is
    accepted, so each refusal above is due to the one thing that attack changed."""
    victim = await _victim(users)

    token = sign_hs256(claims_of(victim.access_token), secret)

    response = await client.get(ME, headers=bearer(token))
    assert response.status_code == 200 and response.json()["id"] == victim.id


async def test_an_api_key_header_that_is_garbage_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get(ME, headers={"X-API-Key": "cfk_not-a-real-key"})
    assert_unauthorized(response, "INVALID_API_KEY")


async def test_a_refresh_token_is_not_an_access_token(
    client: httpx.AsyncClient, users: UserFactory
) -> None:
    victim = await _victim(users)
    for route in ROUTES:
        response = await _call(client, route, bearer(victim.refresh_token))
        assert_unauthorized(response, "WRONG_TOKEN_TYPE")


async def test_an_access_token_is_not_a_refresh_token(
    client: httpx.AsyncClient, users: UserFactory, secret: str
) -> None:
    victim = await _victim(users)

    response = await client.post(REFRESH, json={"refresh_token": victim.access_token})
    assert_unauthorized(response, "WRONG_TOKEN_TYPE")
    # Relabelled as a refresh token (which needs the key): its jti names no refresh token.
    relabelled = sign_hs256({**claims_of(victim.access_token), "type": "refresh"}, secret)
    response = await client.post(REFRESH, json={"refresh_token": relabelled})
    assert_unauthorized(response, "INVALID_TOKEN")
    assert (
        await client.post(REFRESH, json={"refresh_token": victim.refresh_token})
    ).status_code == 200


@pytest.mark.parametrize(
    ("forge", "code"),
    [
        (lambda s, c, t: "garbage", "INVALID_TOKEN"),
        (
            lambda s, c, t: sign_hs256({**c, "iat": NOW - 9000, "exp": NOW - 3600}, s),
            "TOKEN_EXPIRED",
        ),
        (lambda s, c, t: unsigned_token(c), "INVALID_TOKEN"),
        (lambda s, c, t: with_payload(t, {**c, "jti": str(uuid.uuid4())}), "INVALID_TOKEN"),
        (
            lambda s, c, t: sign_hs256(c, "another-secret-key-with-plenty-of-entropy-42"),
            "INVALID_TOKEN",
        ),
        (lambda s, c, t: sign_hs256({**c, "jti": str(uuid.uuid4())}, s), "INVALID_TOKEN"),
        (lambda s, c, t: sign_hs256({**c, "sid": str(uuid.uuid4())}, s), "INVALID_TOKEN"),
        (lambda s, c, t: sign_hs256({**c, "aud": "elsewhere"}, s), "INVALID_TOKEN"),
    ],
    ids=[
        "garbage",
        "expired",
        "alg-none",
        "tampered-jti",
        "another-key",
        "unknown-jti",
        "other-session",
        "wrong-audience",
    ],
)
async def test_forged_refresh_tokens_are_401(
    client: httpx.AsyncClient,
    users: UserFactory,
    secret: str,
    forge: Callable[[str, dict[str, Any], str], str],
    code: str,
) -> None:
    victim = await _victim(users)

    token = forge(secret, claims_of(victim.refresh_token), victim.refresh_token)

    assert_unauthorized(await client.post(REFRESH, json={"refresh_token": token}), code)
    # Refusing a forgery does not spend or revoke the real refresh token.
    assert (
        await client.post(REFRESH, json={"refresh_token": victim.refresh_token})
    ).status_code == 200


# -- algorithm confusion with an external issuer -----------------------------------------------


@pytest.mark.parametrize("settings_overrides", [EXTERNAL], indirect=True)
@pytest.mark.parametrize("route", ROUTES)
async def test_hs256_signed_with_the_external_public_key_is_401(
    client: httpx.AsyncClient, users: UserFactory, route: str
) -> None:
    """The classic confusion: the issuer's RSA *public* key used as an HMAC secret."""
    victim = await _victim(users)
    pem = public_pem(EXTERNAL_KEY).encode()
    header = {"alg": "HS256", "typ": "JWT"}
    external_claims = {
        "sub": "attacker",
        "iss": EXTERNAL_ISSUER,
        "aud": EXTERNAL_AUDIENCE,
        "iat": int(time.time()),
        "exp": int(time.time()) + 600,
    }

    for claims in (external_claims, claims_of(victim.access_token)):
        for secret in (pem, pem.strip()):
            token = hmac_token(header, claims, secret)
            assert_unauthorized(await _call(client, route, bearer(token)), "INVALID_TOKEN")


@pytest.mark.parametrize("settings_overrides", [EXTERNAL], indirect=True)
async def test_own_claims_signed_by_the_external_issuer_are_not_own_tokens(
    client: httpx.AsyncClient, users: UserFactory
) -> None:
    """Even the trusted issuer cannot mint one of our session tokens: RS256 tokens must carry
    its issuer and audience, not ours."""
    victim = await _victim(users)
    token = jwt.encode(claims_of(victim.access_token), EXTERNAL_KEY, algorithm="RS256")

    assert_unauthorized(await client.get(ME, headers=bearer(token)), "INVALID_TOKEN")


# -- tokens of users who are gone --------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
async def test_token_of_a_deactivated_user_is_401(
    client: httpx.AsyncClient, users: UserFactory, session: AsyncSession, route: str
) -> None:
    victim = await _victim(users)
    await session.execute(
        update(User).where(User.id == uuid.UUID(victim.id)).values(is_active=False)
    )
    await session.commit()

    assert_unauthorized(await _call(client, route, bearer(victim.access_token)), "ACCOUNT_DISABLED")
    assert_unauthorized(
        await client.post(REFRESH, json={"refresh_token": victim.refresh_token}),
        "ACCOUNT_DISABLED",
    )


@pytest.mark.parametrize("route", ROUTES)
async def test_token_of_a_deleted_user_is_401(
    client: httpx.AsyncClient, users: UserFactory, session: AsyncSession, route: str
) -> None:
    victim = await _victim(users)
    await session.execute(delete(User).where(User.id == uuid.UUID(victim.id)))
    await session.commit()

    assert_unauthorized(await _call(client, route, bearer(victim.access_token)), "SESSION_REVOKED")
    assert_unauthorized(
        await client.post(REFRESH, json={"refresh_token": victim.refresh_token}),
        "INVALID_TOKEN",
    )


# -- every protected route, whoever adds it ----------------------------------------------------


def _protected_operations(app: FastAPI) -> list[tuple[str, str]]:
    """(method, concrete path) of every operation the OpenAPI document says needs credentials:
    the security schemes come from the authentication dependency itself."""
    operations = []
    for path, items in app.openapi()["paths"].items():
        for method, operation in items.items():
            if operation.get("security"):
                operations.append((method.upper(), re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)))
    return operations


async def test_every_protected_route_refuses_bad_tokens(
    client: httpx.AsyncClient, platform: Platform, users: UserFactory, secret: str
) -> None:
    """Walks the app's routes, so routes added later by other modules are covered too."""
    victim = await _victim(users)
    claims = claims_of(victim.access_token)
    bad_tokens = {
        "NOT_AUTHENTICATED": None,
        "INVALID_TOKEN": unsigned_token(claims),
        "TOKEN_EXPIRED": sign_hs256({**claims, "iat": NOW - 7200, "exp": NOW - 3600}, secret),
        "WRONG_TOKEN_TYPE": victim.refresh_token,
    }
    routes = _protected_operations(create_app(platform.settings, platform=platform))
    assert {
        ("GET", ME),
        ("POST", "/api/v1/auth/logout"),
        ("POST", "/api/v1/auth/change-password"),
    } <= set(routes)

    for method, path in routes:
        for code, token in bad_tokens.items():
            headers = bearer(token) if token else {}
            response = await client.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, code, response.text)
            assert_unauthorized(response, code)
