"""/api/v1/roles, /api/v1/users and /api/v1/auth/api-keys.

HTTP only: parse, authorize, call `admin_service` / `api_key_service`, return a schema. The rules
(built-in roles, the last admin, no privilege beyond your own, what API keys may do) live in
the services.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Query, Request, status
from pydantic import BaseModel

from creativeflow.http.auth import CurrentPrincipal, DbSession, require_permission
from creativeflow.http.pagination import Limit, Offset, Page
from creativeflow.http.problems import error_responses
from creativeflow.http.routing import api_router
from creativeflow.identity.admin_service import RoleService, UserAdminService
from creativeflow.identity.api_key_service import ApiKeyService
from creativeflow.identity.permissions import Permission
from creativeflow.identity.principal import Principal
from creativeflow.identity.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    RoleCreate,
    RoleRead,
    RoleUpdate,
)
from creativeflow.shared.api.dtos.user import UserResponse, UserUpdate

SchemaT = TypeVar("SchemaT", bound=BaseModel)


def _page(
    schema: type[SchemaT], rows: Sequence[Any], total: int, limit: int, offset: int
) -> Page[SchemaT]:
    items = [schema.model_validate(row) for row in rows]
    return Page[schema].of(items, total=total, limit=limit, offset=offset)  # type: ignore[valid-type]


async def _role_service(session: DbSession) -> RoleService:
    return RoleService(session)


async def _user_service(request: Request, session: DbSession) -> UserAdminService:
    return UserAdminService(session, request.app.state.platform.auth)


async def _api_key_service(session: DbSession) -> ApiKeyService:
    return ApiKeyService(session)


RoleServiceDep = Annotated[RoleService, Depends(_role_service)]
UserServiceDep = Annotated[UserAdminService, Depends(_user_service)]
ApiKeyServiceDep = Annotated[ApiKeyService, Depends(_api_key_service)]
RoleManager = Annotated[Principal, Depends(require_permission(Permission.ROLES_MANAGE))]
UserManager = Annotated[Principal, Depends(require_permission(Permission.USERS_MANAGE))]

RoleId = Annotated[uuid.UUID, Path(description="The role's id")]
UserId = Annotated[uuid.UUID, Path(description="The user's id")]
RoleNameParam = Annotated[str, Path(max_length=64, description="The role's name, e.g. `manager`")]


# -- roles ------------------------------------------------------------------------------------

roles = api_router(prefix="/roles", tags=["roles"])


@roles.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=RoleRead,
    summary="Create a custom role",
    description="Permissions must be known names, all held by the caller.",
    responses=error_responses(401, 403, 409, 422),
)
async def create_role(data: RoleCreate, actor: RoleManager, service: RoleServiceDep) -> RoleRead:
    return RoleRead.model_validate(await service.create(actor, data))


@roles.get(
    "",
    response_model=Page[RoleRead],
    summary="List roles, by name",
    responses=error_responses(401, 403, 422),
)
async def list_roles(
    _actor: RoleManager, service: RoleServiceDep, limit: Limit = 20, offset: Offset = 0
) -> Page[RoleRead]:
    rows, total = await service.list_page(limit=limit, offset=offset)
    return _page(RoleRead, rows, total, limit, offset)


@roles.get(
    "/{role_id}",
    response_model=RoleRead,
    summary="Get a role",
    responses=error_responses(401, 403, 404, 422),
)
async def get_role(role_id: RoleId, _actor: RoleManager, service: RoleServiceDep) -> RoleRead:
    return RoleRead.model_validate(await service.get(role_id))


@roles.patch(
    "/{role_id}",
    response_model=RoleRead,
    summary="Update a role",
    description="Only the fields sent change. Built-in roles (admin, manager, viewer) accept a "
    "new description only: changing their name or permissions answers 409 "
    "BUILTIN_ROLE_IMMUTABLE.",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def update_role(
    role_id: RoleId, data: RoleUpdate, actor: RoleManager, service: RoleServiceDep
) -> RoleRead:
    return RoleRead.model_validate(await service.update(actor, role_id, data))


@roles.delete(
    "/{role_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a custom role",
    description="Built-in roles cannot be deleted (409 BUILTIN_ROLE_IMMUTABLE). A role that "
    "users hold answers 409 ROLE_IN_USE unless `force=true`, which revokes it from them.",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def delete_role(
    role_id: RoleId,
    actor: RoleManager,
    service: RoleServiceDep,
    force: Annotated[
        bool, Query(description="Revoke the role from the users who hold it, then delete it")
    ] = False,
) -> None:
    await service.delete(actor, role_id, force=force)


# -- users ------------------------------------------------------------------------------------

users = api_router(prefix="/users", tags=["users"])


@users.get(
    "",
    response_model=Page[UserResponse],
    summary="List users, oldest first",
    responses=error_responses(401, 403, 422),
)
async def list_users(
    _actor: UserManager,
    service: UserServiceDep,
    search: Annotated[
        str | None,
        Query(max_length=100, description="Part of the username, email or name"),
    ] = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> Page[UserResponse]:
    rows, total = await service.search(
        search=search.strip() if search else None, limit=limit, offset=offset
    )
    return _page(UserResponse, rows, total, limit, offset)


# `/me` routes are registered before `/{user_id}` so the literal path wins.
@users.get(
    "/me",
    response_model=UserResponse,
    summary="Your account",
    responses=error_responses(401),
)
async def get_me(actor: CurrentPrincipal, service: UserServiceDep) -> UserResponse:
    return UserResponse.model_validate(await service.get_visible(actor, actor.user_id))


@users.patch(
    "/me",
    response_model=UserResponse,
    summary="Change your name or email",
    description="Needs a session token (not an API key). `is_active` needs users:manage.",
    responses=error_responses(401, 403, 409, 422),
)
async def update_me(
    data: UserUpdate, actor: CurrentPrincipal, service: UserServiceDep
) -> UserResponse:
    return UserResponse.model_validate(await service.update(actor, actor.user_id, data))


@users.get(
    "/{user_id}",
    response_model=UserResponse,
    summary="Get a user (yourself, or anyone with users:manage)",
    responses=error_responses(401, 404, 422),
)
async def get_user(
    user_id: UserId, actor: CurrentPrincipal, service: UserServiceDep
) -> UserResponse:
    return UserResponse.model_validate(await service.get_visible(actor, user_id))


@users.patch(
    "/{user_id}",
    response_model=UserResponse,
    summary="Update a user (yourself, or anyone with users:manage)",
    description="Only users:manage may change `is_active`. Deactivating signs the user out "
    "everywhere and suspends their API keys. Nobody deactivates their own account, and the "
    "last active admin cannot be deactivated (409).",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def update_user(
    user_id: UserId, data: UserUpdate, actor: CurrentPrincipal, service: UserServiceDep
) -> UserResponse:
    return UserResponse.model_validate(await service.update(actor, user_id, data))


@users.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a user with their sessions, API keys and content",
    description="Not yourself (409 CANNOT_DELETE_SELF), nor the last active admin (409 "
    "LAST_ADMIN).",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def delete_user(user_id: UserId, actor: UserManager, service: UserServiceDep) -> None:
    await service.delete(actor, user_id)


@users.get(
    "/{user_id}/roles",
    response_model=Page[RoleRead],
    summary="The roles a user holds (yourself, or anyone with users:manage)",
    responses=error_responses(401, 404, 422),
)
async def list_user_roles(
    user_id: UserId,
    actor: CurrentPrincipal,
    service: UserServiceDep,
    limit: Limit = 20,
    offset: Offset = 0,
) -> Page[RoleRead]:
    rows, total = await service.roles_of(actor, user_id, limit=limit, offset=offset)
    return _page(RoleRead, rows, total, limit, offset)


@users.put(
    "/{user_id}/roles/{role_name}",
    response_model=UserResponse,
    summary="Grant a role (idempotent); returns the user with their roles",
    description="The caller must hold every permission of the role.",
    responses=error_responses(401, 403, 404, 422),
)
async def grant_role(
    user_id: UserId, role_name: RoleNameParam, actor: UserManager, service: UserServiceDep
) -> UserResponse:
    return UserResponse.model_validate(await service.grant(actor, user_id, role_name))


@users.delete(
    "/{user_id}/roles/{role_name}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke a role",
    description="404 ROLE_NOT_GRANTED when the user does not hold it; 409 LAST_ADMIN when it "
    "would leave no active admin.",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def revoke_role(
    user_id: UserId, role_name: RoleNameParam, actor: UserManager, service: UserServiceDep
) -> None:
    await service.revoke(actor, user_id, role_name)


# -- personal API keys ------------------------------------------------------------------------

api_keys = api_router(prefix="/auth/api-keys", tags=["api-keys"])
KeyId = Annotated[uuid.UUID, Path(description="The key's id (not the key)")]


@api_keys.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    summary="Create a personal API key; the key is shown only in this response",
    description="Send it as `X-API-Key: <key>` or `Authorization: Bearer <key>`. Scopes must "
    "be permissions you hold (default: all of them). Needs a session token: a key cannot "
    "create keys.",
    responses=error_responses(401, 403, 422),
)
async def create_api_key(
    data: ApiKeyCreate, actor: CurrentPrincipal, service: ApiKeyServiceDep
) -> ApiKeyCreated:
    key, raw_key = await service.create(actor, data)
    return ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), key=raw_key)


@api_keys.get(
    "",
    response_model=Page[ApiKeyRead],
    summary="Your API keys, newest first (never the key itself)",
    responses=error_responses(401, 422),
)
async def list_api_keys(
    actor: CurrentPrincipal,
    service: ApiKeyServiceDep,
    include_revoked: Annotated[bool, Query(description="Also list revoked keys")] = False,
    limit: Limit = 20,
    offset: Offset = 0,
) -> Page[ApiKeyRead]:
    rows, total = await service.list_page(
        actor, include_revoked=include_revoked, limit=limit, offset=offset
    )
    return _page(ApiKeyRead, rows, total, limit, offset)


@api_keys.get(
    "/{key_id}",
    response_model=ApiKeyRead,
    summary="One of your API keys",
    responses=error_responses(401, 404, 422),
)
async def get_api_key(
    key_id: KeyId, actor: CurrentPrincipal, service: ApiKeyServiceDep
) -> ApiKeyRead:
    return ApiKeyRead.model_validate(await service.get(actor, key_id))


@api_keys.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke one of your API keys (idempotent)",
    responses=error_responses(401, 404, 422),
)
async def revoke_api_key(key_id: KeyId, actor: CurrentPrincipal, service: ApiKeyServiceDep) -> None:
    await service.revoke(actor, key_id)


router = api_router()
for _sub in (roles, users, api_keys):
    router.include_router(_sub)

__all__ = ["router"]
