"""Request and response models of the identity routes (the user DTOs live in the shared kernel)."""

from __future__ import annotations

from pydantic import Field

from creativeflow.shared.api.dtos.base import BaseModel
from creativeflow.shared.api.dtos.user import Password


class LoginRequest(BaseModel):
    login: str = Field(
        min_length=1, max_length=320, description="Username or email",
        validation_alias="login",
    )
    password: str = Field(min_length=1, max_length=256)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=4096)


class ChangePasswordRequest(BaseModel):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: Password
