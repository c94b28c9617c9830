"""Authentication use cases: register, login, refresh, logout, change password, and turning a
credential (session token, external token, API key) into a Principal.

Services flush, never commit: the route boundary commits the request's unit of work.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.db.ids import uuid7
from creativeflow.db.reads import ReadConnections
from creativeflow.db.types import utcnow
from creativeflow.identity import queries as identity_queries
from creativeflow.identity.models import ApiKey, AuthSession, RefreshToken, User
from creativeflow.identity.passwords import OWASP, Passwords
from creativeflow.identity.permissions import DEFAULT_ROLE
from creativeflow.identity.principal import Principal
from creativeflow.identity.principal_cache import PrincipalCache
from creativeflow.identity.repository import (
    ApiKeyRepository,
    RefreshTokenRepository,
    RoleRepository,
    SessionRepository,
    UserRepository,
)
from creativeflow.identity.revocation import RevocationList
from creativeflow.identity.throttle import LoginThrottle
from creativeflow.shared.api.dtos.user import TokenResponse, UserCreate
from creativeflow.shared.core.exceptions import (
    AuthenticationException,
    ConflictException,
    PermissionDeniedException,
)
from creativeflow.shared.messaging.bus import record_event
from creativeflow.shared.messaging.events import UserRegisteredEvent
from creativeflow.shared.security.auth import (
    ACCESS,
    REFRESH,
    TokenVerifier,
)

API_KEY_PREFIX = "cfk_"


@dataclass(frozen=True)
class AuthContext:
    """Process-wide collaborators of the auth use cases (built once by the app)."""

    verifier: TokenVerifier
    throttle: LoginThrottle
    revocations: RevocationList
    access_ttl: timedelta
    refresh_ttl: timedelta
    principals: PrincipalCache
    reads: ReadConnections
    passwords: Passwords = OWASP


@dataclass(frozen=True)
class ClientInfo:
    address: str
    user_agent: str | None


def permissions_of(user: User) -> frozenset[str]:
    return frozenset(p for role in user.roles for p in role.permissions)


def principal_for(user: User, **extra: Any) -> Principal:
    return Principal(
        user_id=user.id,
        username=user.username,
        roles=frozenset(user.role_names),
        permissions=permissions_of(user),
        external_subject=user.external_subject,
        **extra,
    )


class AuthService:
    def __init__(
        self, session: AsyncSession | Callable[[], AsyncSession], context: AuthContext
    ) -> None:
        """`session` is the unit of work, or how to open it: a credential whose principal is
        cached is authenticated without one."""
        self.ctx = context
        self._session_source = session

    @cached_property
    def _session(self) -> AsyncSession:
        source = self._session_source
        return source if isinstance(source, AsyncSession) else source()

    @cached_property
    def users(self) -> UserRepository:
        return UserRepository(self._session)

    @cached_property
    def roles(self) -> RoleRepository:
        return RoleRepository(self._session)

    @cached_property
    def sessions(self) -> SessionRepository:
        return SessionRepository(self._session)

    @cached_property
    def refresh_tokens(self) -> RefreshTokenRepository:
        return RefreshTokenRepository(self._session)

    @cached_property
    def api_keys(self) -> ApiKeyRepository:
        return ApiKeyRepository(self._session)

    # -- registration ------------------------------------------------------------------------

    async def register(
        self, data: UserCreate, *, role_name: str = DEFAULT_ROLE, actor: uuid.UUID | None = None
    ) -> User:
        email = data.email.lower()
        if await self.users.username_taken(data.username):
            raise ConflictException(
                "Username is already taken",
                errors=[{"field": "username", "message": "already taken"}],
                code="USERNAME_TAKEN",
            )
        if await self.users.email_taken(email):
            raise ConflictException(
                "Email is already registered",
                errors=[{"field": "email", "message": "already registered"}],
                code="EMAIL_TAKEN",
            )
        user = User(
            id=uuid7(),
            email=email,
            username=data.username,
            name=data.name,
            password_hash=await self.ctx.passwords.hash(data.password),
            is_active=True,
        )
        user.created_by = user.updated_by = actor or user.id
        try:
            await self.users.add(user)
        except IntegrityError as exc:  # a concurrent registration won the race
            raise ConflictException("Username or email is already taken") from exc
        await self._grant_role(user, role_name, actor or user.id)
        record_event(
            self._session.info,
            UserRegisteredEvent(user_id=user.id, username=user.username, email=user.email),
        )
        return await self._reload(user.id)

    async def _grant_role(self, user: User, role_name: str, actor: uuid.UUID) -> None:
        role = await self.roles.by_name(role_name)
        if role is None:
            raise RuntimeError(f"built-in role {role_name!r} is missing; run migrations")
        await self.roles.grant(user.id, role.id, actor)

    async def _reload(self, user_id: uuid.UUID) -> User:
        user = await self.users.get_with_roles(user_id)
        assert user is not None
        return user

    async def current_user(self, principal: Principal) -> User:
        user = await self.users.get_with_roles(principal.user_id)
        if user is None:
            raise AuthenticationException("Account no longer exists")
        return user

    # -- login, refresh, logout --------------------------------------------------------------

    async def login(self, login: str, password: str, client: ClientInfo) -> TokenResponse:
        user = await self.users.find_by_login(login)
        # Failures count against the account, however it is named (username or email, any
        # case), so switching between the two does not buy more guesses.
        account = _throttle_key(user, login)
        await self.ctx.throttle.check(account, client.address)
        matches, new_hash = await self.ctx.passwords.verify(
            password, user.password_hash if user else None
        )
        if user is None or not matches or not user.is_active:
            await self.ctx.throttle.record_failure(account, client.address)
            raise AuthenticationException(
                "Incorrect username or password", code="INVALID_CREDENTIALS"
            )
        await self.ctx.throttle.clear_account(account)
        now = utcnow()
        if new_hash is not None:  # bcrypt or weaker argon2 parameters: upgrade in place
            user.password_hash = new_hash
        user.last_login_at = now
        auth_session = AuthSession(
            id=uuid7(),
            user_id=user.id,
            expires_at=now + self.ctx.refresh_ttl,
            user_agent=(client.user_agent or "")[:512] or None,
            ip_address=client.address[:64],
            created_by=user.id,
            updated_by=user.id,
        )
        await self.sessions.add(auth_session)
        return await self._issue_tokens(user, auth_session, now)

    async def _issue_tokens(
        self, user: User, auth_session: AuthSession, now: datetime
    ) -> TokenResponse:
        refresh = RefreshToken(
            id=uuid7(),
            session_id=auth_session.id,
            expires_at=min(now + self.ctx.refresh_ttl, auth_session.expires_at),
            created_by=user.id,
            updated_by=user.id,
        )
        await self.refresh_tokens.add(refresh)
        issued_at = int(now.timestamp())
        common = {"sub": str(user.id), "sid": str(auth_session.id), "iat": issued_at}
        access_exp = now + self.ctx.access_ttl
        access_token = self.ctx.verifier.encode(
            {
                **common,
                "type": ACCESS,
                "jti": uuid.uuid4().hex,
                "exp": int(access_exp.timestamp()),
                "username": user.username,
                "roles": user.role_names,
            }
        )
        refresh_token = self.ctx.verifier.encode(
            {
                **common,
                "type": REFRESH,
                "jti": str(refresh.id),
                "exp": int(refresh.expires_at.timestamp()),
            }
        )
        return TokenResponse(
            access_token=access_token,
            refresh_token=refresh_token,
            expires_in=int(self.ctx.access_ttl.total_seconds()),
            refresh_expires_in=int((refresh.expires_at - now).total_seconds()),
        )

    async def refresh(self, token: str) -> TokenResponse:
        """Rotate: the presented refresh token is spent and a new pair is issued. Presenting a
        spent token again means it leaked, so its whole session is revoked."""
        claims = await self.ctx.verifier.decode(token, expected_type=REFRESH)
        try:
            token_id = uuid.UUID(str(claims["jti"]))
            session_id = uuid.UUID(str(claims["sid"]))
        except (KeyError, ValueError) as exc:
            raise AuthenticationException("Invalid refresh token", code="INVALID_TOKEN") from exc
        stored = await self.refresh_tokens.get_or_none(token_id)
        auth_session = await self.sessions.get_or_none(session_id)
        if stored is None or auth_session is None or stored.session_id != auth_session.id:
            raise AuthenticationException("Invalid refresh token", code="INVALID_TOKEN")
        now = utcnow()
        if (
            auth_session.revoked_at is not None
            or auth_session.expires_at <= now
            or await self.ctx.revocations.is_revoked(auth_session.id)
        ):
            raise AuthenticationException("Session has ended", code="SESSION_REVOKED")
        if not await self.refresh_tokens.mark_used(stored.id, now):
            await self._revoke_session(auth_session.id, now, "refresh_token_reuse")
            raise AuthenticationException(
                "Refresh token was already used; the session has been revoked",
                code="REFRESH_TOKEN_REUSED",
                commit=True,
            )
        user = await self.users.get_with_roles(auth_session.user_id)
        if user is None or not user.is_active:
            raise AuthenticationException("Account is disabled", code="ACCOUNT_DISABLED")
        return await self._issue_tokens(user, auth_session, now)

    async def logout(self, principal: Principal) -> None:
        if principal.session_id is None:
            raise AuthenticationException(
                "Logout needs a session token (API keys are revoked through /auth/api-keys)",
                code="NOT_A_SESSION",
            )
        await self._revoke_session(principal.session_id, utcnow(), "logout")

    async def change_password(
        self, principal: Principal, current: str, new: str, client: ClientInfo | None = None
    ) -> None:
        user = await self.users.get_or_none(principal.user_id)
        if user is None:
            raise AuthenticationException("Account no longer exists")
        # Guessing the current password here (with a stolen access token) is throttled like
        # guessing it at login, and counts against the same account.
        account, address = _throttle_key(user, ""), client.address if client else None
        await self.ctx.throttle.check(account, address)
        matches, _ = await self.ctx.passwords.verify(current, user.password_hash)
        if not matches:
            await self.ctx.throttle.record_failure(account, address)
            raise AuthenticationException(
                "Current password is incorrect", code="INVALID_CREDENTIALS"
            )
        if current == new:
            raise ConflictException(
                "The new password must differ from the current one",
                errors=[{"field": "new_password", "message": "same as the current password"}],
            )
        user.password_hash = await self.ctx.passwords.hash(new)
        user.updated_by = user.id
        now = utcnow()
        revoked = await self.sessions.revoke_for_user(
            user.id, now=now, reason="password_changed", keep=principal.session_id
        )
        for session_id in revoked:
            await self.ctx.revocations.revoke(session_id, self._mirror_ttl())
        await self.users.flush()

    async def _revoke_session(self, session_id: uuid.UUID, now: datetime, reason: str) -> None:
        await self.sessions.revoke(session_id, now=now, reason=reason)
        await self.ctx.revocations.revoke(session_id, self._mirror_ttl())

    def _mirror_ttl(self) -> int:
        # Past the refresh lifetime no token of the session can verify anyway.
        return int(self.ctx.refresh_ttl.total_seconds())

    # -- credentials -> principal ------------------------------------------------------------

    async def authenticate_token(self, token: str) -> Principal:
        identity = await self.ctx.verifier.identity(token, expected_type=ACCESS)
        if identity.external_subject is not None:
            external_key = ("external", identity.issuer, identity.external_subject)
            cached = self.ctx.principals.get(external_key)
            if cached is not None:
                return cached
            claims = await self.ctx.verifier.decode(token, expected_type=ACCESS)
            external_user = await self._external_user(
                identity.issuer or "", identity.external_subject, claims
            )
            if not external_user.is_active:
                raise AuthenticationException("Account is disabled", code="ACCOUNT_DISABLED")
            principal = principal_for(external_user)
            self.ctx.principals.put(external_key, principal)
            return principal
        if identity.session_id is None:
            raise AuthenticationException("Token has no session", code="INVALID_TOKEN")
        if await self.ctx.revocations.is_revoked(identity.session_id):
            raise AuthenticationException("Session has been revoked", code="SESSION_REVOKED")
        session_id = identity.session_id
        session_key = ("session", session_id, identity.id)

        async def load() -> Principal:
            # On the read path: one statement, no session (a miss happens on every busy
            # credential once per cache lifetime, and under load).
            owner = await self.ctx.reads.run(
                lambda connection: identity_queries.session_owner(connection, session_id)
            )
            if owner is None or owner.user_id != identity.id or owner.revoked_at is not None:
                raise AuthenticationException("Session has been revoked", code="SESSION_REVOKED")
            if not owner.is_active:
                raise AuthenticationException("Account is disabled", code="ACCOUNT_DISABLED")
            return Principal(
                user_id=owner.user_id,
                username=owner.username,
                roles=owner.roles,
                permissions=owner.permissions,
                external_subject=owner.external_subject,
                session_id=session_id,
            )

        return await self.ctx.principals.get_or_load(session_key, load)

    async def _external_user(self, issuer: str, subject: str, claims: dict[str, Any]) -> User:
        """The local user an external subject maps to, created the first time it is seen."""
        if len(issuer) > 255 or len(subject) > 255:
            raise AuthenticationException("Token subject is too long", code="INVALID_TOKEN")
        user = await self.users.find_external(issuer, subject)
        if user is not None:
            return user
        user_id = uuid7()
        email = claims.get("email")
        if (
            not isinstance(email, str)
            or len(email) > 320
            or await self.users.email_taken(email.lower())
        ):
            email = None  # never let an external token claim a local account's address
        user = User(
            id=user_id,
            email=email.lower() if email else None,
            username=f"ext-{hashlib.sha256(f'{issuer}#{subject}'.encode()).hexdigest()[:24]}",
            name=str(claims.get("name") or subject)[:120],
            password_hash=None,
            external_issuer=issuer,
            external_subject=subject,
            created_by=user_id,
            updated_by=user_id,
        )
        try:
            async with self._session.begin_nested():
                await self.users.add(user)
                await self._grant_role(user, DEFAULT_ROLE, user_id)
        except IntegrityError:  # a concurrent first request created it
            existing = await self.users.find_external(issuer, subject)
            if existing is None:
                raise
            return existing
        return await self._reload(user_id)

    async def authenticate_api_key(self, raw_key: str) -> Principal:
        parsed = parse_api_key(raw_key)
        if parsed is None:
            raise AuthenticationException("Invalid API key", code="INVALID_API_KEY")
        prefix, _secret = parsed
        cache_key = ("api_key", hash_api_key(raw_key))
        cached = self.ctx.principals.get(cache_key)
        if cached is not None:
            return cached
        key = await self.api_keys.by_prefix(prefix)
        now = utcnow()
        if key is None or not hmac.compare_digest(key.key_hash, hash_api_key(raw_key)):
            raise AuthenticationException("Invalid API key", code="INVALID_API_KEY")
        if key.revoked_at is not None:
            raise AuthenticationException("API key has been revoked", code="API_KEY_REVOKED")
        if key.expires_at is not None and key.expires_at <= now:
            raise AuthenticationException("API key has expired", code="API_KEY_EXPIRED")
        user = await self.users.get_with_roles(key.user_id)
        if user is None or not user.is_active:
            raise AuthenticationException("Account is disabled", code="ACCOUNT_DISABLED")
        if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
            key.last_used_at = now  # coarse, so a busy script does not write on every call
        owner = principal_for(user, api_key_id=key.id)
        # A key can do at most what its owner can, and only within its scopes.
        principal = Principal(
            user_id=owner.user_id,
            username=owner.username,
            roles=owner.roles,
            permissions=owner.permissions & frozenset(key.scopes),
            external_subject=owner.external_subject,
            api_key_id=key.id,
        )
        if key.expires_at is None or key.expires_at - now > timedelta(minutes=1):
            self.ctx.principals.put(cache_key, principal)
        return principal


def _throttle_key(user: User | None, login: str) -> str:
    return f"user:{user.id}" if user is not None else f"login:{login.strip().lower()}"


def new_api_key() -> tuple[str, str]:
    """(full key shown once, lookup prefix)."""
    prefix = secrets.token_hex(6)
    return f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}", prefix


def parse_api_key(raw_key: str) -> tuple[str, str] | None:
    if not raw_key.startswith(API_KEY_PREFIX):
        return None
    prefix, sep, secret = raw_key[len(API_KEY_PREFIX) :].partition("_")
    if not sep or len(prefix) != 12 or len(secret) < 32:
        return None
    return prefix, secret


def hash_api_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def ensure_allowed(principal: Principal, permission: str) -> None:
    if not principal.has(permission):
        raise PermissionDeniedException(
            f"Permission '{permission}' is required",
            code="PERMISSION_DENIED",
            data={"required_permission": permission},
        )


__all__ = [
    "API_KEY_PREFIX",
    "ApiKey",
    "AuthContext",
    "AuthService",
    "ClientInfo",
    "ensure_allowed",
    "hash_api_key",
    "new_api_key",
    "parse_api_key",
    "principal_for",
]


@dataclass(frozen=True, slots=True)
class UserSummary:
    """What other modules may know of a user: who they are, not how they sign in."""

    id: uuid.UUID
    username: str
    name: str


async def find_active_user(session: AsyncSession, login: str) -> UserSummary | None:
    """An active user by username or email (case-insensitive), for other modules (adding a
    project member, say)."""
    user = await UserRepository(session).find_by_login(login)
    if user is None or not user.is_active:
        return None
    return UserSummary(user.id, user.username, user.name)


async def user_summaries(
    session: AsyncSession, user_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, UserSummary]:
    rows = await UserRepository(session).names(list(dict.fromkeys(user_ids)))
    return {user_id: UserSummary(user_id, username, name) for user_id, username, name in rows}
