"""Response models of a project's stats, and the duplicate request."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

# -- stats -----------------------------------------------------------------------------------


class GenerationStats(BaseModel):
    total: int
    by_status: dict[str, int] = Field(description="Jobs by status (queued, running, ...)")


class UsageStats(BaseModel):
    calls: int = Field(description="Provider calls recorded for those jobs")
    succeeded: int
    input_tokens: int
    output_tokens: int
    images: int
    duration_ms: float


class ContentCounts(BaseModel):
    scenes: int
    panels: int
    dialogue_words: int
    panels_with_image: int
    panels_without_image: int
    characters: int
    locations: int


class ChapterStats(ContentCounts):
    chapter_id: uuid.UUID
    position: int
    title: str
    characters: int = Field(description="Distinct characters appearing in the chapter's panels")
    locations: int = Field(description="Distinct locations the chapter's panels are set at")


class ProjectStats(ContentCounts):
    project_id: uuid.UUID
    chapters: int
    characters: int = Field(description="The project's characters, used in a panel or not")
    locations: int = Field(description="The project's locations, used in a panel or not")
    generations: GenerationStats
    usage: UsageStats
    by_chapter: list[ChapterStats] = Field(description="In reading order")


# -- duplicate -------------------------------------------------------------------------------


class DuplicateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str | None = Field(
        default=None, min_length=1, max_length=200, description="Default: '<title> (copy)'"
    )
