"""Start-up data the platform needs: the built-in roles, kept in step with the code's map."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.identity.models import Role
from creativeflow.identity.permissions import (
    BUILTIN_ROLE_DESCRIPTIONS,
    BUILTIN_ROLE_PERMISSIONS,
    BuiltinRole,
)
from creativeflow.identity.repository import RoleRepository
from creativeflow.identity.service import AuthService
from creativeflow.shared.api.dtos.user import UserCreate

if TYPE_CHECKING:
    from creativeflow.platform import Platform
    from creativeflow.settings import Settings


async def ensure_builtin_roles(session: AsyncSession) -> None:
    """Create missing built-in roles and reset their permissions to the code's map, so a
    release that adds permissions grants them without a data migration. Flushes only."""
    roles = RoleRepository(session)
    for role_name, permissions in BUILTIN_ROLE_PERMISSIONS.items():
        wanted = sorted(str(p) for p in permissions)
        role = await roles.by_name(role_name)
        if role is None:
            await roles.add(
                Role(
                    name=str(role_name),
                    description=BUILTIN_ROLE_DESCRIPTIONS[role_name],
                    permissions=wanted,
                    is_builtin=True,
                )
            )
        elif sorted(role.permissions) != wanted or not role.is_builtin:
            role.permissions = wanted
            role.is_builtin = True
    await session.flush()


async def sync_builtin_roles(platform: Platform) -> None:
    try:
        async with platform.write_sessions() as session, session.begin():
            await ensure_builtin_roles(session)
    except IntegrityError:
        # Another process starting at the same moment (`serve --workers N`, a worker) created
        # them first; a second pass finds them and only brings their permissions up to date.
        async with platform.write_sessions() as session, session.begin():
            await ensure_builtin_roles(session)


async def create_admin_user(settings: Settings, data: UserCreate) -> uuid.UUID:
    """Register a user with the admin role (the `users create-admin` command)."""
    from creativeflow.platform import build_platform

    platform = build_platform(settings)
    try:
        async with platform.write_sessions() as session, session.begin():
            await ensure_builtin_roles(session)
            user = await AuthService(session, platform.auth).register(
                data, role_name=BuiltinRole.ADMIN
            )
            return user.id
    finally:
        await platform.close()
