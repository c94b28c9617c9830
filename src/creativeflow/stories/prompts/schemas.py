"""Response model of a panel's prompt."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PartKind = Literal[
    "style",
    "description",
    "camera",
    "character",
    "identity",
    "location",
    "mood",
    "instruction",
    "palette",
    "aspect_ratio",
]


class PromptPart(BaseModel):
    kind: PartKind
    text: str
    source: str = Field(description="What it comes from: panel, character, location, ...")
    source_id: uuid.UUID


class PanelPrompt(BaseModel):
    panel_id: uuid.UUID
    prompt: str = Field(description="The parts joined, in order: what generation will send")
    negative_prompt: str | None
    reference_image_ids: list[uuid.UUID] = Field(
        description="The primary designs of its characters (every design, primary first, at "
        "most 4, of a locked character), the primary reference of its location, then the "
        "style guide's references"
    )
    parts: list[PromptPart]
    stored_prompt: str | None = Field(
        description="The prompt kept for the panel by the last `style-guide/apply` (null: never)"
    )


class PromptChange(BaseModel):
    panel_id: uuid.UUID
    before: str | None
    after: str


class ApplyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chapter_id: uuid.UUID | None = Field(default=None, description="Only this chapter's panels")
    scene_id: uuid.UUID | None = Field(default=None, description="Only this scene's panels")


class ApplyResult(BaseModel):
    changed: list[PromptChange] = Field(description="In reading order")
    unchanged: int
