"""Request and response models of chapters, scenes and panels."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from creativeflow.stories.content.models import BubbleKind, CameraAngle, LayoutSize, Shot

MAX_BUBBLES = 50

Position = Field(default=None, ge=1, description="1-based place among its siblings (default: last)")
Version = Field(default=None, ge=1, description="The version you read")


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Read(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    position: int
    version: int
    created_at: datetime
    updated_at: datetime
    created_by: uuid.UUID | None
    updated_by: uuid.UUID | None


# -- chapters -------------------------------------------------------------------------------


class ChapterFields(_Input):
    title: str = Field(min_length=1, max_length=200)
    summary: str | None = Field(default=None, max_length=20_000)
    notes: str | None = Field(default=None, max_length=20_000)


class ChapterCreate(ChapterFields):
    position: int | None = Position


class ChapterReplace(ChapterFields):
    version: int | None = Version


class ChapterUpdate(_Input):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    summary: str | None = Field(default=None, max_length=20_000)
    notes: str | None = Field(default=None, max_length=20_000)
    cover_image_id: uuid.UUID | None = Field(
        default=None, description="One of your images, or one of the project's"
    )
    version: int | None = Version


class ChapterRead(_Read):
    title: str
    summary: str | None
    notes: str | None
    cover_image_id: uuid.UUID | None
    scene_count: int


# -- scenes ---------------------------------------------------------------------------------


class SceneFields(_Input):
    title: str = Field(min_length=1, max_length=200)
    summary: str | None = Field(default=None, max_length=20_000)
    time_of_day: str | None = Field(default=None, max_length=50)
    mood: str | None = Field(default=None, max_length=100)
    notes: str | None = Field(default=None, max_length=20_000)


class SceneCreate(SceneFields):
    position: int | None = Position


class SceneReplace(SceneFields):
    version: int | None = Version


class SceneUpdate(_Input):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    summary: str | None = Field(default=None, max_length=20_000)
    time_of_day: str | None = Field(default=None, max_length=50)
    mood: str | None = Field(default=None, max_length=100)
    notes: str | None = Field(default=None, max_length=20_000)
    version: int | None = Version


class SceneRead(_Read):
    chapter_id: uuid.UUID
    title: str
    summary: str | None
    time_of_day: str | None
    mood: str | None
    notes: str | None
    panel_count: int


# -- panels ---------------------------------------------------------------------------------


class Bubble(_Input):
    kind: BubbleKind = BubbleKind.SPEECH
    text: str = Field(min_length=1, max_length=2000)
    speaker_id: uuid.UUID | None = Field(
        default=None, description="The character speaking (none for captions and sfx)"
    )
    position_hint: str | None = Field(
        default=None, max_length=50, description="Where it sits: top-left, bottom ..."
    )


class PanelFields(_Input):
    description: str | None = Field(default=None, max_length=20_000)
    shot: Shot | None = None
    camera_angle: CameraAngle | None = None
    layout_size: LayoutSize | None = None
    mood: str | None = Field(default=None, max_length=100)
    notes: str | None = Field(default=None, max_length=20_000)
    dialogue: list[Bubble] = Field(default_factory=list, max_length=MAX_BUBBLES)
    character_ids: list[uuid.UUID] = Field(
        default_factory=list, max_length=50, description="The project's characters in it, in order"
    )
    location_id: uuid.UUID | None = Field(
        default=None, description="One of the project's locations"
    )


class PanelCreate(PanelFields):
    position: int | None = Position


class PanelReplace(PanelFields):
    version: int | None = Version


class PanelUpdate(_Input):
    description: str | None = Field(default=None, max_length=20_000)
    shot: Shot | None = None
    camera_angle: CameraAngle | None = None
    layout_size: LayoutSize | None = None
    mood: str | None = Field(default=None, max_length=100)
    notes: str | None = Field(default=None, max_length=20_000)
    selected_image_id: uuid.UUID | None = None
    character_ids: list[uuid.UUID] | None = Field(default=None, max_length=50)
    location_id: uuid.UUID | None = None
    version: int | None = Version


class DialogueReplace(_Input):
    bubbles: list[Bubble] = Field(max_length=MAX_BUBBLES)
    version: int | None = Version


class PanelRead(_Read):
    scene_id: uuid.UUID
    description: str | None
    shot: Shot | None
    camera_angle: CameraAngle | None
    layout_size: LayoutSize | None
    mood: str | None
    notes: str | None
    selected_image_id: uuid.UUID | None
    dialogue: list[Bubble]
    character_ids: list[uuid.UUID]
    location_id: uuid.UUID | None


# -- order ----------------------------------------------------------------------------------


class Reorder(_Input):
    position: int = Field(ge=1, description="The 1-based place to move to")


class Move(_Input):
    """Move under another parent of the same project (or within its own), at `position`."""

    parent_id: uuid.UUID | None = Field(
        default=None, description="The chapter (for a scene) or scene (for a panel); default: same"
    )
    position: int | None = Position


class PanelOrder(_Input):
    panel_ids: list[uuid.UUID] = Field(
        min_length=1, max_length=1000, description="Every panel of the scene, in the new order"
    )


class PanelSplit(_Input):
    """Split a panel in two at a dialogue index: bubbles before it stay, the rest go to a new
    panel right after it."""

    at_bubble: int = Field(ge=0, description="Index of the first bubble of the new panel")
    description: str | None = Field(
        default=None, max_length=20_000, description="The first panel's description (default: kept)"
    )
    new_description: str | None = Field(
        default=None,
        max_length=20_000,
        description="The new panel's description (default: the original's)",
    )
    version: int | None = Version


class PanelMerge(_Input):
    """Join a panel with another of its scene (default: the next one). The one earlier in
    reading order stays, with both descriptions and every bubble in order; the other goes."""

    with_panel_id: uuid.UUID | None = None
    version: int | None = Version


class PanelPair(BaseModel):
    first: PanelRead
    second: PanelRead


class ImageRef(BaseModel):
    image_id: uuid.UUID
    url: str = Field(description="The image's bytes")
    thumbnail_url: str
