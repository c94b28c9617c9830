"""DTOs of the creative workbench: brand kits, workbenches, projects and their assets.

These are the contracts the story and brand studios build on; their tables arrive with those
modules.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import Field, field_validator

from creativeflow.shared.api.dtos.base import AuditedEntityResponse, BaseModel

Name = Annotated[str, Field(min_length=1, max_length=200)]
HEX_COLOR = r"^#[0-9A-Fa-f]{6}$"


class BrandKitCreate(BaseModel):
    name: Name
    colors: list[Annotated[str, Field(pattern=HEX_COLOR)]] = Field(
        default_factory=list, max_length=32
    )
    fonts: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=16
    )
    logo_asset_id: uuid.UUID | None = None
    style_preferences: dict[str, Any] = Field(default_factory=dict)


class BrandKitResponse(AuditedEntityResponse):
    name: str
    colors: list[str]
    fonts: list[str]
    logo_asset_id: uuid.UUID | None = None
    style_preferences: dict[str, Any] = Field(default_factory=dict)


class WorkbenchCreate(BaseModel):
    name: Name
    description: str | None = Field(default=None, max_length=5000)
    default_brand_kit_id: uuid.UUID | None = None


class WorkbenchResponse(AuditedEntityResponse):
    name: str
    description: str | None = None
    default_brand_kit_id: uuid.UUID | None = None


class ProjectCreate(BaseModel):
    name: Name
    description: str | None = Field(default=None, max_length=5000)
    workbench_id: uuid.UUID | None = None
    brand_kit_id: uuid.UUID | None = None
    target_platforms: list[Annotated[str, Field(min_length=1, max_length=50)]] = Field(
        default_factory=list, max_length=20
    )

    @field_validator("target_platforms")
    @classmethod
    def _unique_platforms(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class ProjectResponse(AuditedEntityResponse):
    name: str
    description: str | None = None
    workbench_id: uuid.UUID | None = None
    brand_kit_id: uuid.UUID | None = None
    target_platforms: list[str] = Field(default_factory=list)


class AssetResponse(AuditedEntityResponse):
    project_id: uuid.UUID | None = None
    name: str
    media_type: str
    size_bytes: int = Field(ge=0)
    width: int | None = None
    height: int | None = None
    url: str | None = Field(default=None, description="Where the file can be downloaded")
