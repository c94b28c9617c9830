"""Administration use cases: roles (`RoleService`) and user accounts (`UserAdminService`).

Rules that protect the platform, beyond "holds the route's permission":
- Nobody hands out or touches more than they hold: creating, editing or deleting a role, and
  granting or revoking it, need every permission the role carries; changing, deactivating or
  deleting another user needs every permission that user holds. So `users:manage` alone cannot
  make anyone an admin, nor lock the admins out.
- Built-in roles keep their name and permissions (the code's map owns them); only the
  description can change, and they cannot be deleted.
- There is always one active admin: the last one cannot be deactivated, deleted or lose the
  admin role, and nobody deactivates or deletes their own account through these routes.
- Changing your own account needs an interactive credential, not an API key.
- Deactivating a user revokes their sessions at once (a reactivated user signs in again); their
  API keys stop working while the account is inactive and resume if it is reactivated.

Services flush, never commit: the route boundary commits the request's unit of work.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.db.types import utcnow
from creativeflow.identity.models import Role, User
from creativeflow.identity.permissions import BuiltinRole, Permission
from creativeflow.identity.principal import Principal
from creativeflow.identity.repository import RoleRepository, SessionRepository, UserRepository
from creativeflow.identity.schemas import RoleCreate, RoleUpdate
from creativeflow.identity.service import AuthContext, permissions_of
from creativeflow.shared.api.dtos.user import UserUpdate
from creativeflow.shared.core.exceptions import (
    ConflictException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)


def ensure_holds(principal: Principal, permissions: Iterable[str], *, what: str) -> None:
    """403 unless `principal` holds every one of `permissions` (no handing out more than you
    have). `what` finishes the sentence "You cannot ... ".."""
    missing = sorted(set(permissions) - principal.permissions)
    if missing:
        raise PermissionDeniedException(
            f"You cannot {what}: it needs permissions you do not hold ({', '.join(missing)})",
            code="PERMISSION_NOT_HELD",
            data={"missing_permissions": missing},
        )


def ensure_interactive(principal: Principal, action: str) -> None:
    """403 when authenticated by an API key: keys cannot extend or change the account."""
    if principal.api_key_id is not None:
        raise PermissionDeniedException(
            f"{action} needs a session token; API keys cannot do it",
            code="SESSION_REQUIRED",
        )


def _role_not_found() -> NotFoundException:
    return NotFoundException("Role not found", code="ROLE_NOT_FOUND")


def _user_not_found() -> NotFoundException:
    return NotFoundException("User not found", code="USER_NOT_FOUND")


class RoleService:
    def __init__(self, session: AsyncSession) -> None:
        self.roles = RoleRepository(session)

    async def list_page(self, *, limit: int, offset: int) -> tuple[Sequence[Role], int]:
        return await self.roles.all_ordered(limit=limit, offset=offset)

    async def get(self, role_id: uuid.UUID) -> Role:
        role = await self.roles.get_or_none(role_id)
        if role is None:
            raise _role_not_found()
        return role

    async def create(self, actor: Principal, data: RoleCreate) -> Role:
        ensure_holds(actor, data.permissions, what="create a role with these permissions")
        await self._ensure_name_free(data.name)
        role = Role(
            name=data.name,
            description=data.description,
            permissions=list(data.permissions),
            is_builtin=False,
            created_by=actor.user_id,
            updated_by=actor.user_id,
        )
        try:
            await self.roles.add(role)
        except IntegrityError as exc:  # a concurrent request took the name
            raise self._name_taken(data.name) from exc
        return role

    async def update(self, actor: Principal, role_id: uuid.UUID, data: RoleUpdate) -> Role:
        role = await self.get(role_id)
        ensure_holds(actor, role.permissions, what="change this role")
        changes = data.model_dump(exclude_unset=True)
        for field in ("name", "permissions"):
            if field in changes and changes[field] is None:
                raise ValidationException.for_field(field, "may not be null")
        new_name = changes.get("name", role.name)
        new_permissions = changes.get("permissions", role.permissions)
        if role.is_builtin and (
            new_name != role.name or sorted(new_permissions) != sorted(role.permissions)
        ):
            raise ConflictException(
                f"'{role.name}' is a built-in role: its name and permissions cannot change "
                "(its description can)",
                code="BUILTIN_ROLE_IMMUTABLE",
            )
        ensure_holds(actor, new_permissions, what="give this role these permissions")
        if new_name != role.name:
            await self._ensure_name_free(new_name)
            role.name = new_name
        if "permissions" in changes:
            role.permissions = list(new_permissions)
        if "description" in changes:
            role.description = changes["description"]
        role.touch(actor.user_id)
        try:
            await self.roles.flush()
        except IntegrityError as exc:
            raise self._name_taken(new_name) from exc
        return role

    async def delete(self, actor: Principal, role_id: uuid.UUID, *, force: bool) -> None:
        """Delete a custom role. While users hold it, 409 ROLE_IN_USE unless `force`, which
        revokes it from them first (they lose its permissions at once)."""
        role = await self.get(role_id)
        if role.is_builtin:
            raise ConflictException(
                f"'{role.name}' is a built-in role and cannot be deleted",
                code="BUILTIN_ROLE_IMMUTABLE",
            )
        ensure_holds(actor, role.permissions, what="delete this role")
        holders = await self.roles.holders_count(role.id)
        if holders and not force:
            raise ConflictException(
                f"{holders} user(s) hold the role '{role.name}'; revoke it first or delete "
                "with force=true",
                code="ROLE_IN_USE",
                data={"holders": holders},
            )
        await self.roles.revoke_from_all(role.id)
        await self.roles.delete(role)

    async def _ensure_name_free(self, name: str) -> None:
        if await self.roles.by_name(name) is not None:
            raise self._name_taken(name)

    @staticmethod
    def _name_taken(name: str) -> ConflictException:
        return ConflictException(
            f"A role named '{name}' already exists",
            code="ROLE_NAME_TAKEN",
            errors=[{"field": "name", "message": "already taken"}],
        )


class UserAdminService:
    def __init__(self, session: AsyncSession, context: AuthContext) -> None:
        self.ctx = context
        self.users = UserRepository(session)
        self.roles = RoleRepository(session)
        self.sessions = SessionRepository(session)

    # -- reads -------------------------------------------------------------------------------

    async def search(
        self, *, search: str | None, limit: int, offset: int
    ) -> tuple[Sequence[User], int]:
        return await self.users.search_page(search=search, limit=limit, offset=offset)

    async def get_visible(self, actor: Principal, user_id: uuid.UUID) -> User:
        """The user, if `actor` may see them: themself, or anyone for `users:manage`.
        Otherwise 404, exactly as for a user that does not exist."""
        if user_id != actor.user_id and not actor.has(Permission.USERS_MANAGE):
            raise _user_not_found()
        user = await self.users.get_with_roles(user_id)
        if user is None:
            raise _user_not_found()
        return user

    async def roles_of(
        self, actor: Principal, user_id: uuid.UUID, *, limit: int, offset: int
    ) -> tuple[Sequence[Role], int]:
        await self.get_visible(actor, user_id)
        return await self.roles.for_user(user_id, limit=limit, offset=offset)

    # -- profile and status ------------------------------------------------------------------

    async def update(self, actor: Principal, user_id: uuid.UUID, data: UserUpdate) -> User:
        user = await self.get_visible(actor, user_id)
        is_self = user.id == actor.user_id
        changes: dict[str, Any] = data.model_dump(exclude_unset=True)
        for field, value in changes.items():
            if value is None:
                raise ValidationException.for_field(field, "may not be null")
        if is_self:
            ensure_interactive(actor, "Changing your own account")
        else:
            self._ensure_outranks(actor, user)

        deactivating = False
        if "is_active" in changes and changes["is_active"] != user.is_active:
            if not actor.has(Permission.USERS_MANAGE):
                raise PermissionDeniedException(
                    f"Permission '{Permission.USERS_MANAGE}' is required to change is_active",
                    code="PERMISSION_DENIED",
                    data={"required_permission": str(Permission.USERS_MANAGE)},
                )
            deactivating = not changes["is_active"]
            if deactivating and is_self:
                raise ConflictException(
                    "You cannot deactivate your own account", code="CANNOT_DEACTIVATE_SELF"
                )
            if deactivating:
                await self._ensure_not_last_admin(user, "deactivate")
            user.is_active = changes["is_active"]

        if "email" in changes:
            email = str(changes["email"]).lower()
            if email != user.email:
                if await self.users.email_taken(email, excluding=user.id):
                    raise self._email_taken()
                user.email = email
        if "name" in changes:
            user.name = changes["name"]
        user.touch(actor.user_id)
        try:
            await self.users.flush()
        except IntegrityError as exc:  # a concurrent request took the address
            raise self._email_taken() from exc
        if deactivating:
            await self._revoke_sessions(user.id, "account_deactivated")
        return await self._reload(user.id)

    async def delete(self, actor: Principal, user_id: uuid.UUID) -> None:
        user = await self.get_visible(actor, user_id)
        if user.id == actor.user_id:
            raise ConflictException("You cannot delete your own account", code="CANNOT_DELETE_SELF")
        self._ensure_outranks(actor, user)
        await self._ensure_not_last_admin(user, "delete")
        # Sessions, refresh tokens, API keys and role grants go with the row (ON DELETE
        # CASCADE); the revocation mirror is told too, so no worker keeps trusting a token.
        await self._revoke_sessions(user.id, "account_deleted")
        await self.users.delete(user)

    # -- role grants -------------------------------------------------------------------------

    async def grant(self, actor: Principal, user_id: uuid.UUID, role_name: str) -> User:
        user = await self.get_visible(actor, user_id)
        role = await self._role_named(role_name)
        ensure_holds(actor, role.permissions, what=f"grant the role '{role.name}'")
        await self.roles.grant(user.id, role.id, actor.user_id)
        return await self._reload(user.id)

    async def revoke(self, actor: Principal, user_id: uuid.UUID, role_name: str) -> None:
        user = await self.get_visible(actor, user_id)
        role = await self._role_named(role_name)
        ensure_holds(actor, role.permissions, what=f"revoke the role '{role.name}'")
        if user.id != actor.user_id:
            self._ensure_outranks(actor, user)
        if role.id not in {held.id for held in user.roles}:
            raise NotFoundException(
                f"The user does not hold the role '{role.name}'", code="ROLE_NOT_GRANTED"
            )
        if role.name == BuiltinRole.ADMIN and user.is_active:
            await self._ensure_other_admins(role, user, "remove the admin role from")
        await self.roles.revoke(user.id, role.id)

    # -- helpers -----------------------------------------------------------------------------

    async def _role_named(self, role_name: str) -> Role:
        role = await self.roles.by_name(role_name)
        if role is None:
            raise _role_not_found()
        return role

    @staticmethod
    def _ensure_outranks(actor: Principal, user: User) -> None:
        ensure_holds(actor, permissions_of(user), what="change a user who holds more than you")

    async def _ensure_not_last_admin(self, user: User, verb: str) -> None:
        if not user.is_active:
            return
        admin = next((r for r in user.roles if r.name == BuiltinRole.ADMIN), None)
        if admin is not None:
            await self._ensure_other_admins(admin, user, verb)

    async def _ensure_other_admins(self, admin_role: Role, user: User, verb: str) -> None:
        await self.roles.lock(admin_role.id)  # two admins demoting each other wait in turn
        if await self.roles.active_holders_count(admin_role.id, excluding=user.id) == 0:
            raise ConflictException(
                f"Cannot {verb} the last active admin; make another user admin first",
                code="LAST_ADMIN",
            )

    async def _revoke_sessions(self, user_id: uuid.UUID, reason: str) -> None:
        revoked = await self.sessions.revoke_for_user(user_id, now=utcnow(), reason=reason)
        ttl = int(self.ctx.refresh_ttl.total_seconds())
        for session_id in revoked:
            await self.ctx.revocations.revoke(session_id, ttl)

    async def _reload(self, user_id: uuid.UUID) -> User:
        user = await self.users.reload_with_roles(user_id)
        if user is None:
            raise _user_not_found()
        return user

    @staticmethod
    def _email_taken() -> ConflictException:
        return ConflictException(
            "Email is already registered",
            code="EMAIL_TAKEN",
            errors=[{"field": "email", "message": "already registered"}],
        )
