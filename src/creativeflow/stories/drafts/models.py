"""Drafts: what a generation made, waiting for the writer's choice.

`story_drafts`: one generation's output for one target (a panel, a chapter's cover, a
character, a location, a scene, a chapter, the project), its variants (n images or n text
options, a JSON list in order), the prompt and provider that made them, its job, and its
status (`pending`, then `selected` or `rejected`). Selecting a variant writes it into the
target and appends what the target held before to `history`, so an earlier choice can be
restored. A revision links to the draft it revises. `story_draft_feedback`: ratings and
comments, per variant.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, SmallInteger, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from creativeflow.db.base import Entity
from creativeflow.db.types import JSONDocument, sql_values
from creativeflow.db.versioning import Versioned


class DraftKind(StrEnum):
    IMAGE = "image"
    TEXT = "text"
    STORYBOARD = "storyboard"  # a scene's panels, accepted before anything is written


class DraftTarget(StrEnum):
    PANEL = "panel"
    COVER = "cover"  # a chapter's cover: target_id is the chapter's
    CHARACTER = "character"
    LOCATION = "location"
    SCENE = "scene"
    CHAPTER = "chapter"
    PROJECT = "project"  # the next chapter's outline


class DraftStatus(StrEnum):
    PENDING = "pending"
    SELECTED = "selected"
    REJECTED = "rejected"


class Draft(Versioned, Entity):
    __tablename__ = "story_drafts"
    __table_args__ = (
        Index("ix_story_drafts_project_id_status_created_at", "project_id", "status", "created_at"),
        Index("ix_story_drafts_target", "target_type", "target_id", "created_at"),
        Index("ix_story_drafts_job_id", "job_id"),
        CheckConstraint(f"kind IN ({sql_values(DraftKind)})", name="kind"),
        CheckConstraint(f"target_type IN ({sql_values(DraftTarget)})", name="target_type"),
        CheckConstraint(f"status IN ({sql_values(DraftStatus)})", name="status"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("story_projects.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    # What made it: `panel_image`, `cover`, `character_sheet`, `dialogue`, `storyboard` ...
    operation: Mapped[str] = mapped_column(String(40), nullable=False)
    target_type: Mapped[str] = mapped_column(String(16), nullable=False)
    target_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=DraftStatus.PENDING)
    job_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("jobs.id", ondelete="SET NULL")
    )
    prompt: Mapped[str | None] = mapped_column(Text)
    negative_prompt: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(String(100))
    model: Mapped[str | None] = mapped_column(String(200))
    # The generation's parameters (size, seed, style, references), as the job ran them.
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False, default=dict)
    # [{"index", "image_id" | "output", "seed", "drift"}], in the provider's order.
    variants: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONDocument, nullable=False, default=list
    )
    selected_variant: Mapped[int | None] = mapped_column(SmallInteger)
    # Each selection: {"variant", "at", "by", "previous": what the target held before}.
    history: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONDocument, nullable=False, default=list
    )
    # E.g. a locked character's drift over the threshold: [{"code", "message", ...}].
    warnings: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONDocument, nullable=False, default=list
    )
    revises_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("story_drafts.id", ondelete="SET NULL")
    )


class DraftFeedback(Entity):
    __tablename__ = "story_draft_feedback"
    __table_args__ = (
        Index("ix_story_draft_feedback_draft_id_created_at", "draft_id", "created_at"),
        CheckConstraint("rating IS NULL OR (rating >= 1 AND rating <= 5)", name="rating"),
        CheckConstraint("variant >= 0", name="variant"),
    )

    draft_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("story_drafts.id", ondelete="CASCADE"), nullable=False
    )
    variant: Mapped[int] = mapped_column(Integer, nullable=False)
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    comment: Mapped[str | None] = mapped_column(Text)
