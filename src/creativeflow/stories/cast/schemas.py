"""Request and response models of characters and locations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from creativeflow.shared.validation.validators import HexColour
from creativeflow.stories.cast.models import CharacterRole, Setting

MAX_TRAITS = 30
MAX_COLOURS = 16

Version = Field(default=None, ge=1, description="The version you read")


Trait = Annotated[str, Field(min_length=1, max_length=200)]
Palette: Any = Field(default_factory=list, max_length=MAX_COLOURS, description="#rrggbb colours")
Traits: Any = Field(
    default_factory=list,
    max_length=MAX_TRAITS,
    description='Short appearance traits: "red scarf", "scar over left eye"',
)


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ImageLink(_Input):
    image_id: uuid.UUID = Field(description="An image you may read (upload it first)")
    label: str | None = Field(default=None, max_length=200)
    primary: bool = Field(default=False, description="Make it the primary one (others lose it)")


class ImageUpload(_Input):
    """The text fields beside the `file` of a design or reference upload."""

    label: str | None = Field(default=None, max_length=200)
    primary: bool = Field(
        default=False, description="`true` makes it the primary one (others lose it)"
    )


class ImageLinkRead(BaseModel):
    image_id: uuid.UUID
    label: str | None
    primary: bool
    created_at: datetime


class _Read(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    description: str | None
    palette: list[str]
    version: int
    created_at: datetime
    updated_at: datetime
    created_by: uuid.UUID | None
    updated_by: uuid.UUID | None


# -- characters -----------------------------------------------------------------------------


class CharacterFields(_Input):
    name: str = Field(min_length=1, max_length=120)
    role: CharacterRole = CharacterRole.SUPPORTING
    description: str | None = Field(default=None, max_length=20_000)
    appearance: list[Trait] = Traits
    personality: str | None = Field(default=None, max_length=20_000)
    palette: list[HexColour] = Palette
    locked: bool = Field(
        default=False,
        description="Identity lock: its appearance, palette and every design go into each "
        "prompt it is in, and its panels' new images are checked for drift",
    )


class CharacterCreate(CharacterFields):
    pass


class CharacterReplace(CharacterFields):
    version: int | None = Version


class CharacterUpdate(_Input):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    role: CharacterRole | None = None
    description: str | None = Field(default=None, max_length=20_000)
    appearance: list[Trait] | None = Field(default=None, max_length=MAX_TRAITS)
    personality: str | None = Field(default=None, max_length=20_000)
    palette: list[HexColour] | None = Field(default=None, max_length=MAX_COLOURS)
    locked: bool | None = None
    version: int | None = Version


class CharacterRead(_Read):
    role: CharacterRole
    appearance: list[str]
    personality: str | None
    locked: bool
    designs: list[ImageLinkRead]


# -- locations ------------------------------------------------------------------------------


class LocationFields(_Input):
    name: str = Field(min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=20_000)
    setting: Setting | None = None
    time_period: str | None = Field(default=None, max_length=100)
    palette: list[HexColour] = Palette


class LocationCreate(LocationFields):
    pass


class LocationReplace(LocationFields):
    version: int | None = Version


class LocationUpdate(_Input):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=20_000)
    setting: Setting | None = None
    time_period: str | None = Field(default=None, max_length=100)
    palette: list[HexColour] | None = Field(default=None, max_length=MAX_COLOURS)
    version: int | None = Version


class LocationRead(_Read):
    setting: Setting | None
    time_period: str | None
    references: list[ImageLinkRead]


# -- where they appear ----------------------------------------------------------------------


class Appearance(BaseModel):
    panel_id: uuid.UUID
    scene_id: uuid.UUID
    chapter_id: uuid.UUID
    chapter_position: int
    scene_position: int
    panel_position: int
    description: str | None
