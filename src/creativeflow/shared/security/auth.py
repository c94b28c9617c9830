"""Token verification and role checks shared by every service.

`TokenVerifier` decodes the platform's own HS256 tokens and, when configured, RS256 tokens from an
external issuer (a PEM public key or a JWKS URL). The algorithm is chosen by *which* key the
token claims to be for, never by trusting the header: each key has a fixed allow-list, so
`alg: none`, HS256-signed-with-the-public-key and other confusions are refused.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections import OrderedDict
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
    """Keys from a JWKS endpoint, refreshed every `ttl` seconds or when an unknown `kid` shows up.

    Fetches (successful or not) happen at most once per `min_refresh_interval` while keys are
    cached, so forged kids or an unreachable endpoint cannot make every request wait on it; one
    fetch runs at a time. With no keys yet, every request tries (and fails fast with
    JWKS_UNAVAILABLE while the endpoint is down)."""

    url: str
    ttl: float = 600.0
    min_refresh_interval: float = 30.0
    timeout: float = 5.0
    _keys: dict[str, Any] = field(default_factory=dict, repr=False)
    _fetched_at: float = 0.0
    _attempted_at: float = -math.inf
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False, compare=False)

    async def key_for(self, kid: str | None) -> Any:
        if self._needs_refresh(kid):
            async with self._lock:
                if self._needs_refresh(kid):  # another request may have just fetched
                    await self._refresh()
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        if kid not in self._keys:
            raise AuthenticationException("Token signed by an unknown key", code="INVALID_TOKEN")
        return self._keys[kid]

    def _needs_refresh(self, kid: str | None) -> bool:
        if not self._keys:
            return True
        now = time.monotonic()
        stale = now - self._fetched_at > self.ttl
        unknown = kid not in self._keys and not (kid is None and len(self._keys) == 1)
        return (stale or unknown) and now - self._attempted_at > self.min_refresh_interval

    async def _refresh(self) -> None:
        self._attempted_at = time.monotonic()
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.get(self.url)
                response.raise_for_status()
                document = response.json()
            entries = document.get("keys") if isinstance(document, dict) else None
            if not isinstance(entries, list):
                raise ValueError("a JWKS document has a 'keys' list")
        except (httpx.HTTPError, ValueError) as exc:
            if self._keys:  # keep serving the keys we have
                return
            raise AuthenticationException(
                "The identity provider's keys cannot be fetched", code="JWKS_UNAVAILABLE"
            ) from exc
        keys: dict[str, Any] = {}
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("kty") != "RSA":
                continue
            if entry.get("use", "sig") != "sig":
                continue
            if entry.get("alg", EXTERNAL_ALGORITHM) != EXTERNAL_ALGORITHM:
                continue
            try:
                keys[str(entry.get("kid", ""))] = jwt.PyJWK(entry, algorithm=EXTERNAL_ALGORITHM).key
            except jwt.PyJWTError:  # one malformed key must not hide the others
                continue
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


@dataclass(slots=True)
class _Verified:
    """A verified token's claims, and the identity they carry once someone asked for it."""

    claims: dict[str, Any]
    identity: UserDTO | None = None


class TokenVerifier:
    def __init__(
        self,
        *,
        secret: str,
        issuer: str,
        external: ExternalIssuer | None = None,
        leeway_seconds: int = 10,
    ) -> None:
        self._secret = secret
        self.issuer = issuer
        self.external = external
        self._leeway = leeway_seconds
        # Recently verified tokens, by their exact text. The same bytes verify
        # the same way every time, so only expiry needs checking again; this spares the HMAC
        # or RSA check and the JSON parsing on every request of a busy client.
        self._verified: OrderedDict[str, _Verified] = OrderedDict()
        self._verified_max = 4096

    async def decode(self, token: str, *, expected_type: str = ACCESS) -> dict[str, Any]:
        """Verified claims of `token`, or AuthenticationException saying what is wrong."""
        return dict((await self._entry(token, expected_type)).claims)

    async def identity(self, token: str, *, expected_type: str = ACCESS) -> UserDTO:
        """`claims_to_user(decode(token))`, kept with the claims: a token's text always
        carries the same identity. Shared between requests: read it, never change it."""
        entry = await self._entry(token, expected_type)
        if entry.identity is None:
            entry.identity = claims_to_user(entry.claims)
        return entry.identity

    async def _entry(self, token: str, expected_type: str) -> _Verified:
        entry = self._verified.get(token)
        if entry is not None:
            if entry.claims["exp"] + self._leeway < time.time():
                self._verified.pop(token, None)
                raise AuthenticationException("Token has expired", code="TOKEN_EXPIRED")
        else:
            entry = _Verified(await self._verify(token))
            self._verified[token] = entry
            if len(self._verified) > self._verified_max:
                self._verified.popitem(last=False)
        self._checked_type(entry.claims, expected_type)
        return entry

    @staticmethod
    def _checked_type(claims: dict[str, Any], expected_type: str) -> dict[str, Any]:
        if claims.get("type") != expected_type or (
            claims.get("external") and expected_type != ACCESS
        ):
            raise AuthenticationException(
                f"A {expected_type} token is required", code="WRONG_TOKEN_TYPE"
            )
        return claims

    async def _verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthenticationException("Malformed token", code="INVALID_TOKEN") from exc
        algorithm = header.get("alg")
        try:
            if algorithm == OWN_ALGORITHM:
                claims = jwt.decode(
                    token,
                    self._secret,
                    algorithms=[OWN_ALGORITHM],
                    audience=self.issuer,
                    issuer=self.issuer,
                    leeway=self._leeway,
                    options={"require": ["exp", "iat", "sub", "jti", "type", "iss", "aud"]},
                )
                claims.pop("external", None)  # only an external issuer's token is external
            elif algorithm == EXTERNAL_ALGORITHM and self.external is not None:
                key = await self.external.key_for(header)
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=[EXTERNAL_ALGORITHM],
                    audience=self.external.audience,
                    issuer=self.external.issuer,
                    leeway=self._leeway,
                    options={"require": ["exp", "sub", "iss", "aud"]},
                )
                # An external token is only ever an access token (checked below): whatever its
                # claims say, it never refreshes one of our sessions.
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
        return claims

    def encode(self, claims: dict[str, Any]) -> str:
        """Sign the platform's own token."""
        return jwt.encode(
            {**claims, "iss": self.issuer, "aud": self.issuer},
            self._secret,
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
    """The identity verified `claims` carry. Optional claims of the wrong shape (an external
    issuer's own `sid`, `roles` as a string, ...) are ignored rather than trusted or crashed on."""
    external = bool(claims.get("external"))
    subject = str(claims["sub"])
    if external:
        # An external subject is not our id; the platform maps it to a local user.
        user_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{claims['iss']}#{subject}")
        session_id = None  # an external `sid` names the issuer's session, never one of ours
    else:
        try:
            user_id = uuid.UUID(subject)
            session = claims.get("sid")
            session_id = uuid.UUID(str(session)) if session else None
        except ValueError as exc:
            raise AuthenticationException(
                "Invalid token subject or session", code="INVALID_TOKEN"
            ) from exc
    roles = claims.get("roles", [])
    return UserDTO(
        id=user_id,
        username=_str_claim(claims, "username") or _str_claim(claims, "preferred_username"),
        email=_str_claim(claims, "email"),
        roles=[r for r in roles if isinstance(r, str)] if isinstance(roles, list) else [],
        token_type=str(claims.get("type", ACCESS)),
        session_id=session_id,
        token_id=_str_claim(claims, "jti"),
        issuer=_str_claim(claims, "iss"),
        external_subject=subject if external else None,
    )


def _str_claim(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) else None


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
