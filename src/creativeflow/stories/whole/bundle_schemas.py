"""The JSON bundle of a whole project (`export?format=json`, `POST /projects/import`).

No ids: the hierarchy nests (chapters hold scenes hold panels, in reading order), characters
and locations have a `key` that panels, bubbles and instructions use, instructions name their
target by its place (`{"chapter": 0, "scene": 1, "panel": 2}`), and images go by their content
address (SHA-256), so a bundle exported again after an import is the same bundle.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Digest = str  # an image's SHA-256, hex


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageEntry(_Part):
    format: str
    width: int
    height: int
    size_bytes: int


class ImageLink(_Part):
    image: Digest
    label: str | None = None
    primary: bool = False


class CastEntry(_Part):
    key: str = Field(min_length=1, max_length=40)
    fields: dict[str, Any] = Field(description="Its columns (name, role, description, ...)")
    images: list[ImageLink] = Field(default_factory=list)


class PanelEntry(_Part):
    fields: dict[str, Any]
    dialogue: list[dict[str, Any]] = Field(default_factory=list)
    characters: list[str] = Field(default_factory=list, description="Character keys, in order")
    location: str | None = None
    selected_image: Digest | None = None


class SceneEntry(_Part):
    fields: dict[str, Any]
    panels: list[PanelEntry] = Field(default_factory=list)


class ChapterEntry(_Part):
    fields: dict[str, Any]
    cover_image: Digest | None = None
    scenes: list[SceneEntry] = Field(default_factory=list)


class InstructionEntry(_Part):
    scope: Literal["project", "chapter", "scene", "panel"]
    target: dict[str, int] = Field(
        default_factory=dict, description="Its place: chapter, scene (in it), panel (in it)"
    )
    fields: dict[str, Any]


class StoryBundle(_Part):
    format: Literal["creativeflow.story"] = "creativeflow.story"
    version: Literal[1] = 1
    exported_at: datetime | None = None
    project: dict[str, Any]
    style_guide: dict[str, Any] | None = None
    style_images: list[Digest] = Field(default_factory=list)
    characters: list[CastEntry] = Field(default_factory=list)
    locations: list[CastEntry] = Field(default_factory=list)
    chapters: list[ChapterEntry] = Field(default_factory=list)
    instructions: list[InstructionEntry] = Field(default_factory=list)
    images: dict[Digest, ImageEntry] = Field(default_factory=dict)


class ImportResult(BaseModel):
    project_id: str
    missing_images: list[Digest] = Field(
        description="Images the bundle names that none of yours (or your projects') has: "
        "the references are left empty"
    )
