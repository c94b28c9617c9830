"""User account DTOs shared by every module that talks about users and tokens."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AliasChoices, EmailStr, Field, StringConstraints

from creativeflow.shared.api.dtos.base import AuditedEntityResponse, BaseModel, ResponseModel
from creativeflow.shared.validation.validators import (
    validate_password_complexity,
    validate_username_format,
)

Username = Annotated[str, AfterValidator(validate_username_format)]
# Passwords are taken byte for byte: the DTOs' whitespace stripping must not touch them.
RawSecret = Annotated[str, StringConstraints(strip_whitespace=False)]
Password = Annotated[RawSecret, Field(max_length=128), AfterValidator(validate_password_complexity)]
DisplayName = Annotated[str, Field(min_length=1, max_length=120)]


class UserCreate(BaseModel):
    """Registration: email, username, display name and a password that meets the policy."""

    email: EmailStr
    username: Username
    name: DisplayName
    password: Password


class UserUpdate(BaseModel):
    """Profile changes; every field optional, only the ones sent change."""

    email: EmailStr | None = None
    name: DisplayName | None = None
    is_active: bool | None = Field(default=None, description="Admins only")


class UserResponse(AuditedEntityResponse):
    """A user as the API shows it: never the password hash."""

    email: str | None
    username: str
    name: str
    is_active: bool
    roles: list[str] = Field(
        default_factory=list, validation_alias=AliasChoices("role_names", "roles")
    )
    last_login_at: datetime | None = None


class UserDTO(ResponseModel):
    """The identity carried by a verified token: who, and with which roles."""

    id: uuid.UUID
    username: str | None = None
    email: str | None = None
    roles: list[str] = Field(default_factory=list)
    token_type: str = "access"
    session_id: uuid.UUID | None = None
    token_id: str | None = None
    issuer: str | None = None
    external_subject: str | None = None


class TokenResponse(ResponseModel):
    """OAuth2-style token pair returned by login and refresh."""

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_expires_in: int = Field(description="Seconds until the refresh token expires")
