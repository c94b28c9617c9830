"""Request and response models of the identity routes (the user DTOs live in the shared kernel)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, ValidationInfo, field_validator

from creativeflow.identity.permissions import Permission
from creativeflow.shared.api.dtos.base import AuditedEntityResponse, BaseModel
from creativeflow.shared.api.dtos.user import Password, RawSecret


class LoginRequest(BaseModel):
    login: str = Field(
        min_length=1,
        max_length=320,
        description="Username or email",
        validation_alias="login",
    )
    password: RawSecret = Field(min_length=1, max_length=256)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=4096)


class ChangePasswordRequest(BaseModel):
    current_password: RawSecret = Field(min_length=1, max_length=256)
    new_password: Password


# -- roles, users and API keys (admin_router) ---------------------------------------------------

ROLE_NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"


def _known_permissions(values: list[str]) -> list[str]:
    """Deduplicated and sorted; unknown names are refused, all of them named at once."""
    known = {str(p) for p in Permission}
    unknown = sorted({v for v in values if v not in known})
    if unknown:
        raise ValueError(f"unknown permissions: {', '.join(unknown)}")
    return sorted(set(values))


PermissionList = Annotated[
    list[Annotated[str, Field(max_length=64)]],
    Field(max_length=100, description="Permission names such as `brands:read`"),
    AfterValidator(_known_permissions),
]
RoleName = Annotated[
    str,
    Field(
        min_length=2,
        max_length=64,
        pattern=ROLE_NAME_PATTERN,
        description="2-64 characters of a-z, 0-9 and '-', starting and ending with a letter "
        "or digit",
    ),
]
RoleDescription = Annotated[str, Field(max_length=500)]


class RoleCreate(BaseModel):
    name: RoleName
    description: RoleDescription | None = None
    permissions: PermissionList = Field(default_factory=list)


class RoleUpdate(BaseModel):
    """Only the fields sent change. Built-in roles accept a new description only."""

    name: RoleName | None = None
    description: RoleDescription | None = None
    permissions: PermissionList | None = None


class RoleRead(AuditedEntityResponse):
    name: str
    description: str | None
    permissions: list[str]
    is_builtin: bool


API_KEY_DEFAULT_DAYS = 90
API_KEY_MAX_DAYS = 365


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="What the key is for")
    scopes: PermissionList | None = Field(
        default=None,
        description="Permissions the key may use, a subset of your own; all of yours if omitted",
    )
    expires_in_days: int | None = Field(
        default=None,
        ge=1,
        le=API_KEY_MAX_DAYS,
        description=f"Lifetime in days (default {API_KEY_DEFAULT_DAYS}, at most "
        f"{API_KEY_MAX_DAYS}); or send expires_at",
    )
    expires_at: AwareDatetime | None = Field(
        default=None,
        description=f"Expiry instant with a time zone, in the future and at most "
        f"{API_KEY_MAX_DAYS} days away",
    )

    @field_validator("expires_at")
    @classmethod
    def _one_expiry(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is not None and info.data.get("expires_in_days") is not None:
            raise ValueError("send expires_in_days or expires_at, not both")
        return value


class ApiKeyRead(AuditedEntityResponse):
    """A key as listed: never the key itself or its hash."""

    name: str
    prefix: str = Field(description="The 12 characters after `cfk_` that identify the key")
    scopes: list[str]
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The full key. Shown once: store it now, it cannot be read again")
