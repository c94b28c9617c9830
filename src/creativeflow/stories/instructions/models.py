"""Project instructions: standing directions for the prompts of a project, a chapter, a scene
or a panel.

An instruction's target is one of three nullable foreign keys (`chapter_id`, `scene_id`,
`panel_id`) rather than one generic `target_id` column: the database itself then guarantees the
target exists and deletes the instruction with it (ON DELETE CASCADE; deleting a chapter
cascades through its scenes and panels to theirs), which a column without a foreign key could
not. A CHECK constraint keeps exactly the column of the instruction's scope set (none for the
project scope). The API still shows a single `target_id`.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from creativeflow.db.base import Entity
from creativeflow.db.versioning import Versioned


class Scope(StrEnum):
    """From broad to narrow: the order in which a prompt applies them."""

    PROJECT = "project"
    CHAPTER = "chapter"
    SCENE = "scene"
    PANEL = "panel"


SCOPE_RANK = {scope: rank for rank, scope in enumerate(Scope)}


class Category(StrEnum):
    STYLE = "style"
    TONE = "tone"
    CONTINUITY = "continuity"
    DIALOGUE = "dialogue"
    OTHER = "other"


_ONE_TARGET = (
    "(scope = 'project' AND chapter_id IS NULL AND scene_id IS NULL AND panel_id IS NULL)"
    " OR (scope = 'chapter' AND chapter_id IS NOT NULL AND scene_id IS NULL"
    " AND panel_id IS NULL)"
    " OR (scope = 'scene' AND scene_id IS NOT NULL AND chapter_id IS NULL"
    " AND panel_id IS NULL)"
    " OR (scope = 'panel' AND panel_id IS NOT NULL AND chapter_id IS NULL"
    " AND scene_id IS NULL)"
)


class Instruction(Versioned, Entity):
    __tablename__ = "story_instructions"
    __table_args__ = (
        Index("ix_story_instructions_project_id_scope", "project_id", "scope"),
        Index("ix_story_instructions_chapter_id", "chapter_id"),
        Index("ix_story_instructions_scene_id", "scene_id"),
        Index("ix_story_instructions_panel_id", "panel_id"),
        CheckConstraint(_ONE_TARGET, name="one_target"),
        CheckConstraint("priority >= 0 AND priority <= 100", name="priority"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("story_projects.id", ondelete="CASCADE"), nullable=False
    )
    scope: Mapped[str] = mapped_column(String(16), nullable=False)
    chapter_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("story_chapters.id", ondelete="CASCADE")
    )
    scene_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("story_scenes.id", ondelete="CASCADE")
    )
    panel_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("story_panels.id", ondelete="CASCADE")
    )
    text: Mapped[str] = mapped_column(Text, nullable=False)
    category: Mapped[str | None] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, nullable=False, default=50)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)

    @property
    def target_id(self) -> uuid.UUID | None:
        return self.chapter_id or self.scene_id or self.panel_id

    @property
    def source_id(self) -> uuid.UUID:
        """Where it came from: its target, or the project for the project scope."""
        return self.target_id or self.project_id
