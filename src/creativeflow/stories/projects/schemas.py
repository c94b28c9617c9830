"""Request and response models of projects and their members."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from creativeflow.stories.projects.models import (
    MemberRole,
    PageFormat,
    ProjectStatus,
    ReadingDirection,
)

ProjectRole = Literal["owner", "editor", "viewer"]
MAX_GENRES = 10


def _clean_genres(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    genres: list[str] = []
    for genre in value:
        genre = genre.strip()
        if not genre or len(genre) > 50:
            raise ValueError("each genre must be 1-50 characters")
        if genre.lower() not in (known.lower() for known in genres):
            genres.append(genre)
    return genres


class _ProjectFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    logline: str | None = Field(default=None, max_length=500)
    synopsis: str | None = Field(default=None, max_length=20_000)
    genres: list[str] = Field(default_factory=list, max_length=MAX_GENRES)
    audience: str | None = Field(default=None, max_length=100, examples=["young adult"])
    status: ProjectStatus = ProjectStatus.PLANNING
    reading_direction: ReadingDirection = ReadingDirection.LEFT_TO_RIGHT
    page_format: PageFormat = PageFormat.US_COMIC

    @field_validator("genres")
    @classmethod
    def _genres(cls, value: list[str]) -> list[str]:
        return _clean_genres(value) or []


class ProjectCreate(_ProjectFields):
    title: str = Field(min_length=1, max_length=200)


class ProjectReplace(ProjectCreate):
    """PUT: every field (those left out take their defaults)."""

    version: int | None = Field(default=None, ge=1, description="The version you read")


class ProjectUpdate(BaseModel):
    """PATCH: only the fields sent change."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str | None = Field(default=None, min_length=1, max_length=200)
    logline: str | None = Field(default=None, max_length=500)
    synopsis: str | None = Field(default=None, max_length=20_000)
    genres: list[str] | None = Field(default=None, max_length=MAX_GENRES)
    audience: str | None = Field(default=None, max_length=100)
    status: ProjectStatus | None = None
    reading_direction: ReadingDirection | None = None
    page_format: PageFormat | None = None
    version: int | None = Field(default=None, ge=1, description="The version you read")

    @field_validator("genres")
    @classmethod
    def _genres(cls, value: list[str] | None) -> list[str] | None:
        return _clean_genres(value)


class ProjectRead(BaseModel):
    id: uuid.UUID
    owner_id: uuid.UUID
    title: str
    logline: str | None
    synopsis: str | None
    genres: list[str]
    audience: str | None
    status: ProjectStatus
    reading_direction: ReadingDirection
    page_format: PageFormat
    idea_id: uuid.UUID | None
    role: ProjectRole = Field(description="Your role in the project")
    version: int
    created_at: datetime
    updated_at: datetime
    created_by: uuid.UUID | None
    updated_by: uuid.UUID | None


class MemberAdd(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    user: str = Field(min_length=1, max_length=320, description="Username or email")
    role: MemberRole


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: MemberRole


class MemberRead(BaseModel):
    user_id: uuid.UUID
    username: str
    name: str
    role: ProjectRole
    added_at: datetime | None = Field(description="None for the owner")
    added_by: uuid.UUID | None
