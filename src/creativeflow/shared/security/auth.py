"""Token verification and role checks shared by every service.

`TokenVerifier` decodes the platform's own HS256 tokens and, when configured, RS256 tokens from an
external issuer (a PEM public key or a JWKS URL). The algorithm is chosen by *which* key the
token claims to be for, never by trusting the header: each key has a fixed allow-list, so
`alg: none`, HS256-signed-with-the-public-key and other confusions are refused.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from creativeflow.shared.api.dtos.user import UserDTO
from creativeflow.shared.core.exceptions import AuthenticationException, PermissionDeniedException

OWN_ALGORITHM = "HS256"
EXTERNAL_ALGORITHM = "RS256"
ACCESS = "access"
REFRESH = "refresh"


@dataclass
class JWKSCache:
    """Keys from a JWKS endpoint, refreshed every `ttl` seconds or when an unknown `kid` shows up
    (at most once per `min_refresh_interval`, so forged kids cannot hammer the endpoint)."""

    url: str
    ttl: float = 600.0
    min_refresh_interval: float = 30.0
    timeout: float = 5.0
    _keys: dict[str, Any] = field(default_factory=dict)
    _fetched_at: float = 0.0

    async def key_for(self, kid: str | None) -> Any:
        now = time.monotonic()
        stale = now - self._fetched_at > self.ttl
        unknown = kid not in self._keys
        if stale or (unknown and now - self._fetched_at > self.min_refresh_interval):
            await self._refresh()
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        if kid not in self._keys:
            raise AuthenticationException("Token signed by an unknown key", code="INVALID_TOKEN")
        return self._keys[kid]

    async def _refresh(self) -> None:
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.get(self.url)
                response.raise_for_status()
                document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            if self._keys:  # keep serving the keys we have
                return
            raise AuthenticationException(
                "The identity provider's keys cannot be fetched", code="JWKS_UNAVAILABLE"
            ) from exc
        keys: dict[str, Any] = {}
        for entry in document.get("keys", []):
            if entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
                continue
            if entry.get("alg", EXTERNAL_ALGORITHM) != EXTERNAL_ALGORITHM:
                continue
            keys[entry.get("kid", "")] = jwt.PyJWK(entry, algorithm=EXTERNAL_ALGORITHM).key
        self._keys = keys
        self._fetched_at = time.monotonic()


@dataclass
class ExternalIssuer:
    """An identity provider whose RS256 tokens the platform accepts (creatorvault.md)."""

    issuer: str
    audience: str
    public_key: str | None = None
    jwks: JWKSCache | None = None

    async def key_for(self, header: dict[str, Any]) -> Any:
        if self.public_key is not None:
            return self.public_key
        assert self.jwks is not None
        return await self.jwks.key_for(header.get("kid"))


class TokenVerifier:
    def __init__(self, *, secret: str, issuer: str, external: ExternalIssuer | None = None,
                 leeway_seconds: int = 10) -> None:
        self._secret = secret
        self.issuer = issuer
        self.external = external
        self._leeway = leeway_seconds

    async def decode(self, token: str, *, expected_type: str = ACCESS) -> dict[str, Any]:
        """Verified claims of `token`, or AuthenticationException saying what is wrong."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthenticationException("Malformed token", code="INVALID_TOKEN") from exc
        algorithm = header.get("alg")
        try:
            if algorithm == OWN_ALGORITHM:
                claims = jwt.decode(
                    token, self._secret, algorithms=[OWN_ALGORITHM], audience=self.issuer,
                    issuer=self.issuer, leeway=self._leeway,
                    options={"require": ["exp", "iat", "sub", "jti", "type", "iss", "aud"]},
                )
            elif algorithm == EXTERNAL_ALGORITHM and self.external is not None:
                key = await self.external.key_for(header)
                claims = jwt.decode(
                    token, key, algorithms=[EXTERNAL_ALGORITHM], audience=self.external.audience,
                    issuer=self.external.issuer, leeway=self._leeway,
                    options={"require": ["exp", "sub", "iss", "aud"]},
                )
                claims.setdefault("type", ACCESS)
                claims["external"] = True
            else:
                raise AuthenticationException(
                    "Token algorithm is not accepted", code="INVALID_TOKEN"
                )
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationException("Token has expired", code="TOKEN_EXPIRED") from exc
        except jwt.PyJWTError as exc:
            raise AuthenticationException(f"Invalid token: {exc}", code="INVALID_TOKEN") from exc
        if claims.get("type") != expected_type:
            raise AuthenticationException(
                f"A {expected_type} token is required", code="WRONG_TOKEN_TYPE"
            )
        return claims

    def encode(self, claims: dict[str, Any]) -> str:
        """Sign the platform's own token."""
        return jwt.encode(
            {**claims, "iss": self.issuer, "aud": self.issuer}, self._secret,
            algorithm=OWN_ALGORITHM,
        )


_verifier: TokenVerifier | None = None


def configure_token_verifier(verifier: TokenVerifier) -> None:
    """Install the verifier `get_current_user_from_token` uses (done once by the app)."""
    global _verifier
    _verifier = verifier


def get_token_verifier() -> TokenVerifier:
    if _verifier is None:
        raise RuntimeError("configure_token_verifier() has not been called")
    return _verifier


def claims_to_user(claims: dict[str, Any]) -> UserDTO:
    external = bool(claims.get("external"))
    subject = str(claims["sub"])
    if external:
        # An external subject is not our id; the platform maps it to a local user.
        user_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{claims['iss']}#{subject}")
    else:
        try:
            user_id = uuid.UUID(subject)
        except ValueError as exc:
            raise AuthenticationException("Invalid token subject", code="INVALID_TOKEN") from exc
    session = claims.get("sid")
    return UserDTO(
        id=user_id,
        username=claims.get("username") or claims.get("preferred_username"),
        email=claims.get("email"),
        roles=list(claims.get("roles", [])),
        token_type=str(claims.get("type", ACCESS)),
        session_id=uuid.UUID(session) if session else None,
        token_id=claims.get("jti"),
        issuer=claims.get("iss"),
        external_subject=subject if external else None,
    )


async def get_current_user_from_token(token: str) -> UserDTO:
    """Verify an access token and return the identity it carries.

    Stateless: it checks signature, expiry, issuer, audience and type, not revocation. The
    platform's own auth dependency calls this, then checks the session in the database.
    """
    claims = await get_token_verifier().decode(token, expected_type=ACCESS)
    return claims_to_user(claims)


_bearer = HTTPBearer(auto_error=False)


def require_role(required_role: str) -> Callable[..., Awaitable[UserDTO]]:
    """A FastAPI dependency for stateless services: the bearer token's roles must include
    `required_role`. (Platform routes use `require_permission`, which also checks revocation.)"""

    async def check(
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ) -> UserDTO:
        if credentials is None:
            raise AuthenticationException("Not authenticated")
        user = await get_current_user_from_token(credentials.credentials)
        if required_role not in user.roles:
            raise PermissionDeniedException(f"Role '{required_role}' is required")
        return user

    return check
