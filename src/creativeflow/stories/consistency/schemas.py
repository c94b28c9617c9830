"""Request and report of `POST /workflow/consistency-check`."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from creativeflow.jobs.schemas import JobRead

MAX_CHARACTERS = 500

IssueCode = Literal["NAMED_NOT_IN_PANEL", "LOCATION_MISMATCH", "UNKNOWN_SPEAKER"]
UncheckedReason = Literal["NO_DESIGNS", "NO_PRIMARY_DESIGN", "REFERENCE_UNREADABLE"]
ImageProblemCode = Literal["IMAGE_BYTES_MISSING", "IMAGE_UNREADABLE"]


class ConsistencyCheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project_id: uuid.UUID = Field(description="The project to check (any member may)")
    chapter_id: uuid.UUID | None = Field(
        default=None, description="Only this chapter's panels (a chapter of the project)"
    )
    character_ids: list[uuid.UUID] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_CHARACTERS,
        description="Only these characters of the project (default: all of them)",
    )
    threshold: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Drift above this flags a panel (default STORY_DRIFT_THRESHOLD)",
    )


class PanelPlace(BaseModel):
    panel_id: uuid.UUID
    chapter_id: uuid.UUID
    scene_id: uuid.UUID
    chapter_position: int
    scene_position: int
    panel_position: int


class PanelDrift(PanelPlace):
    image_id: uuid.UUID = Field(description="The panel's selected image")
    drift: float = Field(description="0 (the same picture) .. 1, against the closest reference")
    embedding_distance: float | None = Field(
        default=None,
        description="With image embeddings configured: the cosine distance (0..1) from the "
        "closest reference",
    )
    over_threshold: bool = Field(
        description="The drift is above the threshold, or the embedding distance above the "
        "embedding threshold"
    )


class CharacterDrift(BaseModel):
    character_id: uuid.UUID
    name: str
    locked: bool
    reference_image_ids: list[uuid.UUID] = Field(description="Its primary design")
    panels: list[PanelDrift] = Field(
        description="Each panel it is cast in that has an image, in reading order"
    )
    over_threshold: list[uuid.UUID] = Field(
        description="The panels whose drift is above the threshold, in reading order"
    )
    max_drift: float | None = Field(description="The largest drift (null: no panel image)")
    panels_without_image: int = Field(description="Panels it is cast in that have no image")


class UncheckedCharacter(BaseModel):
    character_id: uuid.UUID
    name: str
    reason: UncheckedReason
    message: str


class TextIssue(PanelPlace):
    code: IssueCode
    field: str = Field(description='Where: "description", "dialogue[1].text", ...')
    message: str
    character_id: uuid.UUID | None = Field(
        default=None, description="The character named, or the bubble's speaker"
    )
    location_id: uuid.UUID | None = Field(default=None, description="The location named")


class ImageProblem(PanelPlace):
    image_id: uuid.UUID
    code: ImageProblemCode
    message: str


class ConsistencyReport(BaseModel):
    project_id: uuid.UUID
    chapter_id: uuid.UUID | None
    character_ids: list[uuid.UUID] | None = Field(description="As asked (null: all)")
    threshold: float
    embedding_threshold: float | None = Field(
        default=None, description="Set when image embeddings were measured too"
    )
    embedding_model: str | None = None
    embedding_error: str | None = Field(
        default=None,
        description="Why the embeddings stopped being measured (the drift stands without them)",
    )
    panels: int = Field(description="Panels checked")
    images: int = Field(description="Panel images compared with references")
    characters: list[CharacterDrift] = Field(description="Characters with a primary design")
    unchecked: list[UncheckedCharacter] = Field(
        description="Characters whose drift could not be measured, and why"
    )
    issues: list[TextIssue] = Field(description="Text inconsistencies, in reading order")
    image_problems: list[ImageProblem] = Field(
        description="Panel images that could not be read (left out of the drift)"
    )


class ConsistencyJob(BaseModel):
    job: JobRead
    report_url: str = Field(description="Where the report is once the job has succeeded")
