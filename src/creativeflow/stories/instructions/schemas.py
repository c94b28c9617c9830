"""Request and response models of project instructions."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from creativeflow.stories.instructions.models import Category, Scope

Version = Field(default=None, ge=1, description="The version you read")
Text = Field(min_length=1, max_length=4000, description="The direction itself")
Priority = Field(default=50, ge=0, le=100, description="0-100; higher comes first in its scope")


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class InstructionFields(_Input):
    text: str = Text
    category: Category | None = Field(
        default=None, description="Instructions of one category conflict across scopes"
    )
    priority: int = Priority
    enabled: bool = True


class InstructionCreate(InstructionFields):
    pass


class InstructionReplace(InstructionFields):
    version: int | None = Version


class InstructionUpdate(_Input):
    text: str | None = Field(default=None, min_length=1, max_length=4000)
    category: Category | None = None
    priority: int | None = Field(default=None, ge=0, le=100)
    enabled: bool | None = None
    version: int | None = Version


class Toggle(_Input):
    version: int | None = Version


class InstructionRead(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    scope: Scope
    target_id: uuid.UUID | None = Field(description="The chapter, scene or panel; null: project")
    text: str
    category: Category | None
    priority: int
    enabled: bool
    version: int
    created_at: datetime
    updated_at: datetime
    created_by: uuid.UUID | None
    updated_by: uuid.UUID | None


class ApplicableEntry(BaseModel):
    instruction: InstructionRead
    scope: Scope = Field(description="The level it comes from")
    source_id: uuid.UUID = Field(description="The project, chapter, scene or panel it is set on")
    applied: bool
    overridden_by: uuid.UUID | None = Field(
        description="The narrower instruction of the same category that replaces it"
    )


class ApplicableRead(BaseModel):
    scope: Scope
    id: uuid.UUID
    entries: list[ApplicableEntry] = Field(description="Broad to narrow, priority within a scope")
    effective: list[str] = Field(description="The applied texts, in the order a prompt uses them")
