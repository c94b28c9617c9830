"""The hierarchy of a project: chapters, scenes in a chapter, panels in a scene.

Each level keeps a contiguous 1-based `position` among its siblings; every change of order
(create at a position, delete, reorder, move to another parent) renumbers the siblings in the
same transaction, with the parent row locked first so two reorders of one parent run one after
the other. Scenes and panels also carry their `project_id`, so access is one lookup.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from creativeflow.db.base import Entity
from creativeflow.db.types import JSONDocument
from creativeflow.db.versioning import Versioned


class Shot(StrEnum):
    ESTABLISHING = "establishing"
    WIDE = "wide"
    MEDIUM = "medium"
    CLOSE_UP = "close_up"
    EXTREME_CLOSE_UP = "extreme_close_up"
    OVER_THE_SHOULDER = "over_the_shoulder"
    POINT_OF_VIEW = "point_of_view"
    INSERT = "insert"


class CameraAngle(StrEnum):
    EYE_LEVEL = "eye_level"
    HIGH = "high"
    LOW = "low"
    BIRDS_EYE = "birds_eye"
    WORMS_EYE = "worms_eye"
    DUTCH = "dutch"


class LayoutSize(StrEnum):
    SPLASH = "splash"  # the whole page
    FULL_WIDTH = "full_width"
    HALF = "half"
    THIRD = "third"
    QUARTER = "quarter"
    INSET = "inset"


class BubbleKind(StrEnum):
    SPEECH = "speech"
    THOUGHT = "thought"
    CAPTION = "caption"
    SFX = "sfx"


class Chapter(Versioned, Entity):
    __tablename__ = "story_chapters"
    __table_args__ = (
        Index("ix_story_chapters_project_id_position", "project_id", "position"),
        CheckConstraint("position >= 1", name="position"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("story_projects.id", ondelete="CASCADE"), nullable=False
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    summary: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    cover_image_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("images.id", ondelete="SET NULL")
    )


class Scene(Versioned, Entity):
    __tablename__ = "story_scenes"
    __table_args__ = (
        Index("ix_story_scenes_chapter_id_position", "chapter_id", "position"),
        Index("ix_story_scenes_project_id", "project_id"),
        CheckConstraint("position >= 1", name="position"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("story_projects.id", ondelete="CASCADE"), nullable=False
    )
    chapter_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("story_chapters.id", ondelete="CASCADE"), nullable=False
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    summary: Mapped[str | None] = mapped_column(Text)
    time_of_day: Mapped[str | None] = mapped_column(String(50))
    mood: Mapped[str | None] = mapped_column(String(100))
    notes: Mapped[str | None] = mapped_column(Text)


class Panel(Versioned, Entity):
    __tablename__ = "story_panels"
    __table_args__ = (
        Index("ix_story_panels_scene_id_position", "scene_id", "position"),
        Index("ix_story_panels_project_id", "project_id"),
        Index("ix_story_panels_location_id", "location_id"),
        CheckConstraint("position >= 1", name="position"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("story_projects.id", ondelete="CASCADE"), nullable=False
    )
    scene_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("story_scenes.id", ondelete="CASCADE"), nullable=False
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    shot: Mapped[str | None] = mapped_column(String(32))
    camera_angle: Mapped[str | None] = mapped_column(String(32))
    layout_size: Mapped[str | None] = mapped_column(String(32))
    mood: Mapped[str | None] = mapped_column(String(100))
    notes: Mapped[str | None] = mapped_column(Text)
    selected_image_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("images.id", ondelete="SET NULL")
    )
    # Where it happens (the cast package's `story_locations`; its characters are in
    # `story_panel_characters`).
    location_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("story_locations.id", ondelete="SET NULL")
    )
    # Ordered bubbles: {"speaker_id", "kind", "text", "position_hint"}.
    dialogue: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONDocument, nullable=False, default=list
    )
    # The prompt last built and kept for it (`POST /projects/{id}/style-guide/apply`).
    prompt: Mapped[str | None] = mapped_column(Text)
    # Words in the bubbles, kept with them (`set_dialogue`): stats sum it in SQL.
    dialogue_words: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default="0"
    )

    def set_dialogue(self, bubbles: list[dict[str, Any]]) -> None:
        self.dialogue = bubbles
        self.dialogue_words = dialogue_word_count(bubbles)


def dialogue_word_count(bubbles: list[dict[str, Any]]) -> int:
    return sum(len(str(bubble.get("text") or "").split()) for bubble in bubbles)
