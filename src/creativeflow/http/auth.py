"""Authentication and authorization dependencies. Deny by default: every non-public route
depends on `current_principal`, usually through `require_permission(...)`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.http.routing import open_request_session
from creativeflow.identity.principal import Principal
from creativeflow.identity.service import (
    API_KEY_PREFIX,
    AuthService,
    ClientInfo,
    ensure_allowed,
)
from creativeflow.shared.core.context import user_id_var
from creativeflow.shared.core.exceptions import AuthenticationException

_bearer = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/login",
    auto_error=False,
    description="Access token from /api/v1/auth/login, an external RS256 token, or an API key",
)
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="Personal API key")


# Dependencies are `async def` even when they never await: FastAPI runs a plain `def`
# dependency in its threadpool, a thread hop on every request for nothing.
async def get_db_session(request: Request) -> AsyncSession:
    return open_request_session(request)


DbSession = Annotated[AsyncSession, Depends(get_db_session)]


def _auth_service(request: Request) -> AuthService:
    # The session opens on first use: a cached credential is authenticated without one.
    return AuthService(lambda: open_request_session(request), request.app.state.platform.auth)


async def get_auth_service(request: Request) -> AuthService:
    return _auth_service(request)


AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]


async def client_info(request: Request) -> ClientInfo:
    address = request.client.host if request.client else "unknown"
    return ClientInfo(address=address, user_agent=request.headers.get("user-agent"))


ClientInfoDep = Annotated[ClientInfo, Depends(client_info)]


_PRINCIPAL_STATE = "principal"


async def _authenticate(request: Request, bearer: str | None, api_key: str | None) -> Principal:
    """The request's principal, resolved once even when several dependencies ask."""
    principal: Principal | None = getattr(request.state, _PRINCIPAL_STATE, None)
    if principal is not None:
        return principal
    service = _auth_service(request)
    if api_key:
        principal = await service.authenticate_api_key(api_key)
    elif bearer and bearer.startswith(API_KEY_PREFIX):
        principal = await service.authenticate_api_key(bearer)
    elif bearer:
        principal = await service.authenticate_token(bearer)
    else:
        raise AuthenticationException("Not authenticated")
    setattr(request.state, _PRINCIPAL_STATE, principal)
    request.state.user_id = str(principal.user_id)
    user_id_var.set(str(principal.user_id))
    return principal


BearerCredential = Annotated[str | None, Security(_bearer)]
ApiKeyCredential = Annotated[str | None, Security(_api_key)]


async def current_principal(
    request: Request, bearer: BearerCredential, api_key: ApiKeyCredential
) -> Principal:
    return await _authenticate(request, bearer, api_key)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_permission(permission: str) -> Callable[..., Awaitable[Principal]]:
    """The one way routes check permissions: authenticated, and allowed `permission`."""

    # Authenticates itself rather than depending on `current_principal`: every dependency
    # FastAPI resolves costs tens of microseconds, on the hottest routes of the platform.
    async def check(
        request: Request, bearer: BearerCredential, api_key: ApiKeyCredential
    ) -> Principal:
        principal = await _authenticate(request, bearer, api_key)
        ensure_allowed(principal, permission)
        return principal

    check.__name__ = f"require_{permission.replace(':', '_')}"
    _AUTHENTICATING.add(check)
    return check


async def authorize(request: Request, permission: str) -> Principal:
    """`require_permission(permission)` for an endpoint that resolves its own parameters
    (`creativeflow.http.direct`): the same credentials, read the same way."""
    principal = await _authenticate(request, await _bearer(request), await _api_key(request))
    ensure_allowed(principal, permission)
    return principal


# The dependencies and direct endpoints that authenticate the request (the route walk in the
# tests checks that every non-public route has one).
_AUTHENTICATING: set[Callable[..., Any]] = {current_principal}


EndpointT = TypeVar("EndpointT", bound=Callable[..., Any])


def authenticating(endpoint: EndpointT) -> EndpointT:
    """Record that `endpoint` authenticates by itself (it calls `authorize` first)."""
    _AUTHENTICATING.add(endpoint)
    return endpoint


def authenticates(dependency: Callable[..., Any]) -> bool:
    return dependency in _AUTHENTICATING
