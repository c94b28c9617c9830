"""creativeflow.shared.security.auth on its own: the TokenVerifier's algorithm allow-list,
claims_to_user, get_current_user_from_token and the `require_role` FastAPI dependency."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, FastAPI

from creativeflow.http.problems import install_problem_handlers
from creativeflow.shared.api.dtos.user import UserDTO
from creativeflow.shared.core.exceptions import AuthenticationException
from creativeflow.shared.security import auth
from creativeflow.shared.security.auth import (
    ACCESS,
    REFRESH,
    ExternalIssuer,
    TokenVerifier,
    claims_to_user,
    configure_token_verifier,
    get_current_user_from_token,
    get_token_verifier,
    require_role,
)
from tests.identity.auth_helpers import (
    bearer,
    hmac_token,
    new_rsa_key,
    public_pem,
    unsigned_token,
)

SECRET = "unit-test-secret-key-with-enough-entropy-for-hs512-0123456789abcdef"
ISSUER = "https://auth.example.com/"
AUDIENCE = "https://api.example.com"
IDP_KEY = new_rsa_key()


def own_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "jti": uuid.uuid4().hex,
        "type": ACCESS,
        "iat": now,
        "exp": now + 600,
        "username": "writer",
        "roles": ["viewer"],
        **overrides,
    }
    return {k: v for k, v in claims.items() if v is not None}


def external_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": "user_123",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
        **overrides,
    }
    return {k: v for k, v in claims.items() if v is not None}


@pytest.fixture
def verifier() -> TokenVerifier:
    return TokenVerifier(secret=SECRET, issuer="creativeflow")


@pytest.fixture
def federated() -> TokenVerifier:
    external = ExternalIssuer(issuer=ISSUER, audience=AUDIENCE, public_key=public_pem(IDP_KEY))
    return TokenVerifier(secret=SECRET, issuer="creativeflow", external=external)


async def _refused(
    verifier: TokenVerifier, token: str, code: str, expected_type: str = ACCESS
) -> None:
    with pytest.raises(AuthenticationException) as raised:
        await verifier.decode(token, expected_type=expected_type)
    assert raised.value.code == code
    assert raised.value.status_code == 401
    assert raised.value.headers == {"WWW-Authenticate": "Bearer"}


# -- TokenVerifier -----------------------------------------------------------------------------


async def test_own_tokens_round_trip(verifier: TokenVerifier) -> None:
    claims = own_claims()

    decoded = await verifier.decode(verifier.encode(claims))

    assert decoded == {**claims, "iss": "creativeflow", "aud": "creativeflow"}
    assert jwt.get_unverified_header(verifier.encode(claims))["alg"] == "HS256"


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
async def test_other_hmac_algorithms_with_the_right_secret_are_refused(
    verifier: TokenVerifier, alg: str
) -> None:
    claims = {**own_claims(), "iss": "creativeflow", "aud": "creativeflow"}
    token = hmac_token({"alg": alg, "typ": "JWT"}, claims, SECRET.encode())
    assert jwt.decode(token, SECRET, algorithms=[alg], audience="creativeflow")  # valid...

    await _refused(verifier, token, "INVALID_TOKEN")  # ...but not on the allow-list


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "", "HS256"])
async def test_unsigned_tokens_are_refused(verifier: TokenVerifier, alg: str) -> None:
    claims = {**own_claims(), "iss": "creativeflow", "aud": "creativeflow"}
    await _refused(verifier, unsigned_token(claims, alg), "INVALID_TOKEN")


async def test_rs256_is_refused_without_an_external_issuer(verifier: TokenVerifier) -> None:
    token = jwt.encode(external_claims(), IDP_KEY, algorithm="RS256")
    await _refused(verifier, token, "INVALID_TOKEN")


async def test_external_rs256_tokens_verify_with_the_configured_key(
    federated: TokenVerifier,
) -> None:
    claims = await federated.decode(jwt.encode(external_claims(), IDP_KEY, algorithm="RS256"))

    assert claims["external"] is True
    assert claims["type"] == ACCESS
    assert claims["sub"] == "user_123"


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: jwt.encode(external_claims(), new_rsa_key(), algorithm="RS256"), "INVALID_TOKEN"),
        (lambda: jwt.encode(external_claims(), IDP_KEY, algorithm="RS384"), "INVALID_TOKEN"),
        (lambda: jwt.encode(external_claims(), IDP_KEY, algorithm="PS256"), "INVALID_TOKEN"),
        (
            lambda: jwt.encode(
                external_claims(), ec.generate_private_key(ec.SECP256R1()), algorithm="ES256"
            ),
            "INVALID_TOKEN",
        ),
        (
            lambda: hmac_token({"alg": "HS256"}, external_claims(), public_pem(IDP_KEY).encode()),
            "INVALID_TOKEN",
        ),
        (lambda: unsigned_token(external_claims()), "INVALID_TOKEN"),
        (
            lambda: jwt.encode(external_claims(aud="other"), IDP_KEY, algorithm="RS256"),
            "INVALID_TOKEN",
        ),
        (
            lambda: jwt.encode(external_claims(iss="other"), IDP_KEY, algorithm="RS256"),
            "INVALID_TOKEN",
        ),
        (
            lambda: jwt.encode(
                external_claims(exp=int(time.time()) - 60), IDP_KEY, algorithm="RS256"
            ),
            "TOKEN_EXPIRED",
        ),
        (
            lambda: jwt.encode(external_claims(type=REFRESH), IDP_KEY, algorithm="RS256"),
            "WRONG_TOKEN_TYPE",
        ),
    ],
    ids=[
        "another-rsa-key",
        "rs384",
        "ps256",
        "es256",
        "hs256-public-key",
        "alg-none",
        "wrong-audience",
        "wrong-issuer",
        "expired",
        "refresh-type",
    ],
)
async def test_external_allow_list(federated: TokenVerifier, make: Any, code: str) -> None:
    await _refused(federated, make(), code)


async def test_an_external_token_is_never_a_refresh_token(federated: TokenVerifier) -> None:
    for claims in (external_claims(), external_claims(type=REFRESH)):
        token = jwt.encode(claims, IDP_KEY, algorithm="RS256")
        await _refused(federated, token, "WRONG_TOKEN_TYPE", expected_type=REFRESH)


async def test_expiry_has_a_small_leeway_only(verifier: TokenVerifier) -> None:
    now = int(time.time())
    assert await verifier.decode(verifier.encode(own_claims(exp=now - 2)))
    await _refused(verifier, verifier.encode(own_claims(exp=now - 60)), "TOKEN_EXPIRED")


async def test_the_token_type_must_match(verifier: TokenVerifier) -> None:
    refresh = verifier.encode(own_claims(type=REFRESH))

    assert (await verifier.decode(refresh, expected_type=REFRESH))["type"] == REFRESH
    await _refused(verifier, refresh, "WRONG_TOKEN_TYPE")
    await _refused(verifier, verifier.encode(own_claims()), "WRONG_TOKEN_TYPE", REFRESH)


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "jti", "type"])
async def test_own_tokens_need_every_claim(verifier: TokenVerifier, missing: str) -> None:
    await _refused(verifier, verifier.encode(own_claims(**{missing: None})), "INVALID_TOKEN")


async def test_malformed_tokens_are_refused(verifier: TokenVerifier) -> None:
    for token in ("", "x", "a.b", "a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9.e30"):
        await _refused(verifier, token, "INVALID_TOKEN")


# -- claims_to_user ----------------------------------------------------------------------------


def test_claims_to_user_for_own_tokens() -> None:
    claims = own_claims()

    user = claims_to_user(claims)

    assert user.id == uuid.UUID(claims["sub"])
    assert user.session_id == uuid.UUID(claims["sid"])
    assert user.roles == ["viewer"] and user.username == "writer"
    assert user.external_subject is None and user.token_type == ACCESS


async def test_an_external_marker_in_own_claims_is_dropped(verifier: TokenVerifier) -> None:
    """`external` is set by the verifier for RS256 tokens only, never read from our claims."""
    decoded = await verifier.decode(verifier.encode(own_claims(external=True)))
    assert "external" not in decoded
    assert claims_to_user(decoded).external_subject is None


def test_claims_to_user_for_external_tokens_maps_the_subject() -> None:
    claims = {**external_claims(sid="idp-session-1", roles="admin"), "external": True}

    user = claims_to_user(claims)

    assert user.external_subject == "user_123"
    assert user.id == uuid.uuid5(uuid.NAMESPACE_URL, f"{ISSUER}#user_123")
    assert user.session_id is None  # the issuer's session is not one of ours
    assert user.roles == []


@pytest.mark.parametrize("claims", [{"sub": "not-a-uuid"}, {"sid": "not-a-uuid"}])
def test_claims_to_user_refuses_malformed_own_ids(claims: dict[str, str]) -> None:
    with pytest.raises(AuthenticationException) as raised:
        claims_to_user(own_claims(**claims))
    assert raised.value.code == "INVALID_TOKEN"


def test_claims_to_user_ignores_claims_of_the_wrong_shape() -> None:
    user = claims_to_user(own_claims(roles=["viewer", 7, {"x": 1}], username=5, email=["a"]))
    assert user.roles == ["viewer"]
    assert user.username is None and user.email is None


# -- get_current_user_from_token ---------------------------------------------------------------


@pytest.fixture
def installed(verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch) -> TokenVerifier:
    """The verifier installed process-wide for this test only."""
    monkeypatch.setattr(auth, "_verifier", None)
    configure_token_verifier(verifier)
    return verifier


async def test_get_current_user_from_token(installed: TokenVerifier) -> None:
    claims = own_claims(roles=["manager"])

    user = await get_current_user_from_token(installed.encode(claims))

    assert isinstance(user, UserDTO)
    assert user.id == uuid.UUID(claims["sub"])
    assert user.roles == ["manager"]
    assert user.token_id == claims["jti"]
    assert user.issuer == "creativeflow"
    assert get_token_verifier() is installed


async def test_get_current_user_from_token_refuses_refresh_and_forged_tokens(
    installed: TokenVerifier,
) -> None:
    for token, code in (
        (installed.encode(own_claims(type=REFRESH)), "WRONG_TOKEN_TYPE"),
        (jwt.encode(own_claims(), "another-secret-key-0123456789-abcdefgh"), "INVALID_TOKEN"),
        (
            unsigned_token({**own_claims(), "iss": "creativeflow", "aud": "creativeflow"}),
            "INVALID_TOKEN",
        ),
    ):
        with pytest.raises(AuthenticationException) as raised:
            await get_current_user_from_token(token)
        assert raised.value.code == code


def test_get_token_verifier_before_configuration_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(auth, "_verifier", None)
    with pytest.raises(RuntimeError, match="configure_token_verifier"):
        get_token_verifier()


# -- require_role on a tiny app ----------------------------------------------------------------


@pytest.fixture
def tiny_app(installed: TokenVerifier) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/reports")
    async def reports(user: Annotated[UserDTO, Depends(require_role("manager"))]) -> dict[str, Any]:
        return {"user": str(user.id), "roles": user.roles}

    return app


@pytest.fixture
async def tiny_client(tiny_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=tiny_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tiny") as client:
        yield client


async def test_require_role_allows_a_token_with_the_role(
    tiny_client: httpx.AsyncClient, installed: TokenVerifier
) -> None:
    claims = own_claims(roles=["viewer", "manager"])

    response = await tiny_client.get("/reports", headers=bearer(installed.encode(claims)))

    assert response.status_code == 200
    assert response.json() == {"user": claims["sub"], "roles": ["viewer", "manager"]}


async def test_require_role_forbids_a_token_without_the_role(
    tiny_client: httpx.AsyncClient, installed: TokenVerifier
) -> None:
    token = installed.encode(own_claims(roles=["viewer"]))

    response = await tiny_client.get("/reports", headers=bearer(token))

    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "PERMISSION_DENIED"
    assert "manager" in response.json()["detail"]


async def test_require_role_needs_a_valid_access_token(
    tiny_client: httpx.AsyncClient, installed: TokenVerifier
) -> None:
    now = int(time.time())
    cases = [
        ({}, "NOT_AUTHENTICATED"),
        (bearer("garbage"), "INVALID_TOKEN"),
        (bearer(installed.encode(own_claims(roles=["manager"], exp=now - 3600))), "TOKEN_EXPIRED"),
        (bearer(installed.encode(own_claims(roles=["manager"], type=REFRESH))), "WRONG_TOKEN_TYPE"),
        (
            bearer(
                unsigned_token(
                    {**own_claims(roles=["manager"]), "iss": "creativeflow", "aud": "creativeflow"}
                )
            ),
            "INVALID_TOKEN",
        ),
    ]
    for headers, code in cases:
        response = await tiny_client.get("/reports", headers=headers)
        assert response.status_code == 401, (code, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["code"] == code


async def test_a_verified_token_is_remembered_but_its_expiry_is_checked_again() -> None:
    import asyncio

    verifier = auth.TokenVerifier(secret="s" * 40, issuer="creativeflow", leeway_seconds=0)
    now = int(time.time())
    token = verifier.encode(
        {"sub": str(uuid.uuid4()), "type": "access", "jti": "j", "iat": now, "exp": now + 1}
    )
    first = await verifier.decode(token)
    first["sub"] = "tampered"  # callers get copies: the remembered claims stay intact
    assert (await verifier.decode(token))["sub"] != "tampered"
    with pytest.raises(AuthenticationException) as refresh_instead:
        await verifier.decode(token, expected_type="refresh")
    assert refresh_instead.value.code == "WRONG_TOKEN_TYPE"

    await asyncio.sleep(1.1)
    with pytest.raises(AuthenticationException) as expired:
        await verifier.decode(token)
    assert expired.value.code == "TOKEN_EXPIRED"
