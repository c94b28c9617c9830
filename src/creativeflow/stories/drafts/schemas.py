"""Request and response models of drafts."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from creativeflow.stories.content.models import CameraAngle, Shot
from creativeflow.stories.content.schemas import Bubble
from creativeflow.stories.drafts.models import DraftKind, DraftStatus, DraftTarget

MAX_BULK = 100


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class FeedbackRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    variant: int
    rating: int | None
    comment: str | None
    created_at: datetime
    created_by: uuid.UUID | None


class StoryboardPanel(BaseModel):
    """A storyboard variant's panel: what selecting it creates (the panel's fields), and
    beside them what the text provider named."""

    description: str | None = None
    shot: Shot | None = None
    camera_angle: CameraAngle | None = None
    mood: str | None = None
    notes: str | None = None
    character_ids: list[uuid.UUID] = Field(default_factory=list)
    location_id: uuid.UUID | None = None
    dialogue: list[Bubble] = Field(default_factory=list)
    characters: list[str] = Field(default_factory=list, description="The names the provider gave")
    unmatched_names: list[str] = Field(
        default_factory=list,
        description="Names it gave that are none of the project's characters or locations",
    )
    dialogue_hint: str | None = None


class VariantRead(BaseModel):
    index: int = Field(description="0-based, as `select` takes it")
    image_id: uuid.UUID | None = Field(default=None, description="An image variant's image")
    text: str | None = Field(default=None, description="What selecting a text variant writes")
    output: dict[str, Any] | None = Field(
        default=None, description="A text variant's whole output (the task's output schema)"
    )
    panels: list[StoryboardPanel] | None = Field(
        default=None, description="A storyboard variant's panels, in order"
    )
    seed: int | None = None
    drift: dict[str, float] | None = Field(
        default=None, description="Locked characters' drift from their references, by id"
    )
    feedback: list[FeedbackRead] = Field(default_factory=list)


class DraftRead(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    kind: DraftKind
    operation: str = Field(description="What made it: panel_image, cover, dialogue, storyboard…")
    target_type: DraftTarget
    target_id: uuid.UUID
    status: DraftStatus
    job_id: uuid.UUID | None
    prompt: str | None = Field(description="The exact prompt sent to the provider")
    negative_prompt: str | None
    provider: str | None
    model: str | None
    parameters: dict[str, Any]
    variants: list[VariantRead]
    selected_variant: int | None
    history: list[dict[str, Any]] = Field(
        description="Each selection: the variant, when, by whom, and what the target held "
        "before (restorable)"
    )
    warnings: list[dict[str, Any]]
    revises_id: uuid.UUID | None
    version: int
    created_at: datetime
    updated_at: datetime
    created_by: uuid.UUID | None


class DraftSelect(_Input):
    variant: int = Field(default=0, ge=0, description="Which variant (0-based)")
    version: int | None = Field(default=None, ge=1, description="The draft version you read")


class DraftRestore(_Input):
    entry: int | None = Field(
        default=None, ge=0, description="Which `history` entry to undo; the last one if unset"
    )
    version: int | None = Field(default=None, ge=1)


class DraftReject(_Input):
    reason: str | None = Field(default=None, max_length=2000)
    version: int | None = Field(default=None, ge=1)


class FeedbackCreate(_Input):
    variant: int = Field(default=0, ge=0)
    rating: int | None = Field(default=None, ge=1, le=5)
    comment: str | None = Field(default=None, min_length=1, max_length=5000)

    @model_validator(mode="after")
    def _something(self) -> FeedbackCreate:
        if self.rating is None and self.comment is None:
            raise ValueError("give a rating, a comment or both")
        return self


class DraftRevise(_Input):
    instructions: str | None = Field(
        default=None,
        max_length=2000,
        description="What to change, added to the prompt with the draft's feedback comments",
    )
    count: int | None = Field(default=None, ge=1, le=4, description="Variants (default: as before)")
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)


class BulkAction(StrEnum):
    SELECT_FIRST = "select_first"
    REJECT = "reject"
    DELETE = "delete"


class DraftBulkAction(_Input):
    action: BulkAction
    draft_ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_BULK)

    @model_validator(mode="after")
    def _unique(self) -> DraftBulkAction:
        if len(set(self.draft_ids)) != len(self.draft_ids):
            raise ValueError("draft_ids names a draft twice")
        return self


class BulkResult(BaseModel):
    action: BulkAction
    count: int
    drafts: list[DraftRead] = Field(description="The drafts after the action (none for delete)")


def draft_read(draft: Any, feedback: list[Any]) -> DraftRead:
    by_variant: dict[int, list[FeedbackRead]] = {}
    for row in feedback:
        by_variant.setdefault(row.variant, []).append(FeedbackRead.model_validate(row))
    variants = [
        VariantRead.model_validate({**variant, "feedback": by_variant.get(variant["index"], [])})
        for variant in draft.variants
    ]
    return DraftRead.model_validate(
        {
            **{name: getattr(draft, name) for name in _DRAFT_COLUMNS},
            "variants": variants,
        }
    )


_DRAFT_COLUMNS = [name for name in DraftRead.model_fields if name != "variants"]
