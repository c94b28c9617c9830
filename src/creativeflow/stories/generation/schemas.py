"""Request models of the story studio's generation routes, and the input of their jobs."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from creativeflow.providers.schemas import Seed
from creativeflow.shared.validation.validators import HexColour

MAX_SEQUENCE_PANELS = 200
ImageFormat = Literal["png", "jpeg", "webp"]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ImageOptions(_Input):
    """What every image generation route takes besides its target."""

    count: int = Field(default=1, ge=1, le=4, description="Variants in the draft")
    seed: Seed | None = Field(default=None, description="Same seed, same prompt: same image")
    format: ImageFormat = "png"
    priority: int = Field(default=0, ge=-10, le=10)


class CharacterDesignRequest(ImageOptions):
    character_id: uuid.UUID


class BackgroundRequest(ImageOptions):
    location_id: uuid.UUID
    time_of_day: str | None = Field(default=None, max_length=50, description="e.g. 'dusk'")


class PanelSequenceRequest(ImageOptions):
    """Every panel of a scene (in reading order), or a list of panels of one project."""

    scene_id: uuid.UUID | None = None
    panel_ids: list[uuid.UUID] | None = Field(
        default=None, min_length=1, max_length=MAX_SEQUENCE_PANELS
    )
    only_missing: bool = Field(default=False, description="Skip panels that have an image")

    @model_validator(mode="after")
    def _one_source(self) -> PanelSequenceRequest:
        if (self.scene_id is None) == (self.panel_ids is None):
            raise ValueError("give scene_id or panel_ids, not both")
        if self.panel_ids is not None and len(set(self.panel_ids)) != len(self.panel_ids):
            raise ValueError("panel_ids names a panel twice")
        return self


class AutoPanelRequest(ImageOptions):
    scene_id: uuid.UUID


class VariationRequest(ImageOptions):
    strength: float = Field(default=0.35, ge=0, le=1, description="How far from the image")
    prompt: str | None = Field(default=None, max_length=2000, description="What to change")


class StyleTransferRequest(ImageOptions):
    style: str = Field(min_length=1, max_length=50, description="e.g. 'watercolor', 'noir'")
    palette: list[HexColour] = Field(default_factory=list, max_length=8)
    strength: float = Field(default=0.6, ge=0, le=1)
    prompt: str | None = Field(default=None, max_length=2000)


class ReviseRequest(_Input):
    instructions: str | None = Field(
        default=None,
        max_length=2000,
        description="What to change; added to the draft's prompt with its feedback comments",
    )
    count: int | None = Field(default=None, ge=1, le=4, description="Default: as before")
    seed: Seed | None = None
    priority: int = Field(default=0, ge=-10, le=10)


Operation = Literal[
    "panel_image",
    "cover",
    "character_sheet",
    "character_design",
    "background",
    "variation",
    "style_transfer",
]
ImageTarget = Literal["panel", "cover", "character", "location"]


class StoryImageJobInput(BaseModel):
    """One image generation for a story target, as it will be sent: the exact prompt, size
    and references were decided when it was submitted."""

    model_config = ConfigDict(extra="forbid")

    project_id: uuid.UUID
    target_type: ImageTarget
    target_id: uuid.UUID
    operation: Operation
    prompt: str = Field(max_length=8000)
    negative_prompt: str = Field(default="", max_length=5000)
    width: int = Field(ge=64, le=4096)
    height: int = Field(ge=64, le=4096)
    count: int = Field(ge=1, le=4)
    seed: Seed | None = None
    style: str | None = Field(default=None, max_length=50)
    palette: list[HexColour] = Field(default_factory=list, max_length=8)
    format: ImageFormat = "png"
    reference_image_ids: list[uuid.UUID] = Field(default_factory=list, max_length=30)
    # Image to image (variations, style transfer): the image and how far to move from it.
    source_image_id: uuid.UUID | None = None
    strength: float = Field(default=0.5, ge=0, le=1)
    revises_id: uuid.UUID | None = None


class PanelSequenceInput(BaseModel):
    """The group of a panel sequence: which panels, for whom."""

    model_config = ConfigDict(extra="forbid")

    project_id: uuid.UUID
    scene_id: uuid.UUID | None = None
    panel_ids: list[uuid.UUID] = Field(max_length=MAX_SEQUENCE_PANELS)
    workflow: Literal["panel_sequence", "auto_panel"] = "panel_sequence"
