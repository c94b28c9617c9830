"""Permissions and the built-in roles.

Names are `resource:action` (STYLE.md). The built-in map is artnex.md's, renamed to that form
(`create:brand` -> `brands:create`), and extended with the permissions of later modules.
"""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    BRANDS_CREATE = "brands:create"
    BRANDS_READ = "brands:read"
    BRANDS_UPDATE = "brands:update"
    BRANDS_DELETE = "brands:delete"

    CAMPAIGNS_CREATE = "campaigns:create"
    CAMPAIGNS_READ = "campaigns:read"
    CAMPAIGNS_UPDATE = "campaigns:update"
    CAMPAIGNS_DELETE = "campaigns:delete"

    REPORTS_CREATE = "reports:create"
    REPORTS_READ = "reports:read"
    REPORTS_EXPORT = "reports:export"

    USERS_MANAGE = "users:manage"
    ROLES_MANAGE = "roles:manage"
    ANALYTICS_VIEW = "analytics:view"

    # Content ideas are private to their owner; these say whether a user may keep ideas at all.
    IDEAS_CREATE = "ideas:create"
    IDEAS_READ = "ideas:read"
    IDEAS_UPDATE = "ideas:update"
    IDEAS_DELETE = "ideas:delete"

    # Starting AI generation (text tasks, images): every built-in role may; a custom role
    # without it reads its jobs and results but starts none.
    GENERATION_CREATE = "generation:create"

    # Data sources and shared credentials belong to their owner; these say whether a user may
    # read (list, discover, preview) and manage (register, change, test, delete) their own.
    DATASOURCES_READ = "datasources:read"
    DATASOURCES_MANAGE = "datasources:manage"

    # The story studio: whether a user may keep and share graphic-novel projects at all
    # (within a project, its membership decides what they may do).
    STORIES_READ = "stories:read"
    STORIES_WRITE = "stories:write"


class BuiltinRole(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    VIEWER = "viewer"


_IDEAS = [
    Permission.IDEAS_CREATE,
    Permission.IDEAS_READ,
    Permission.IDEAS_UPDATE,
    Permission.IDEAS_DELETE,
]

_DATASOURCES = [Permission.DATASOURCES_READ, Permission.DATASOURCES_MANAGE]
_STORIES = [Permission.STORIES_READ, Permission.STORIES_WRITE]

BUILTIN_ROLE_PERMISSIONS: dict[BuiltinRole, list[Permission]] = {
    BuiltinRole.ADMIN: list(Permission),
    BuiltinRole.MANAGER: [
        Permission.BRANDS_CREATE,
        Permission.BRANDS_READ,
        Permission.BRANDS_UPDATE,
        Permission.CAMPAIGNS_CREATE,
        Permission.CAMPAIGNS_READ,
        Permission.CAMPAIGNS_UPDATE,
        Permission.REPORTS_CREATE,
        Permission.REPORTS_READ,
        Permission.REPORTS_EXPORT,
        Permission.ANALYTICS_VIEW,
        Permission.GENERATION_CREATE,
        *_IDEAS,
        *_DATASOURCES,
        *_STORIES,
    ],
    BuiltinRole.VIEWER: [
        Permission.BRANDS_READ,
        Permission.CAMPAIGNS_READ,
        Permission.REPORTS_READ,
        Permission.GENERATION_CREATE,
        *_IDEAS,
        *_DATASOURCES,
        *_STORIES,
    ],
}

BUILTIN_ROLE_DESCRIPTIONS: dict[BuiltinRole, str] = {
    BuiltinRole.ADMIN: "Every permission, including user and role management",
    BuiltinRole.MANAGER: "Creates and edits brands, campaigns and reports",
    BuiltinRole.VIEWER: "Reads brands, campaigns and reports; keeps personal content ideas",
}

# Role given to self-registered users and to users first seen through an external issuer.
DEFAULT_ROLE = BuiltinRole.VIEWER
