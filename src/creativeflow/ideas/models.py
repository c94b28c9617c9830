"""Content idea tables (creatorvault.md "Database Schema")."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from creativeflow.db.base import Entity
from creativeflow.db.types import JSONDocument, OrderedEnum, UTCDateTime


class IdeaStage(StrEnum):
    """Declaration order is the workflow order: sorting by stage follows it."""

    IDEA = "idea"
    OUTLINE = "outline"
    DRAFT = "draft"
    PUBLISHED = "published"


class IdeaPriority(StrEnum):
    """Declaration order is importance: low < medium < high."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Idea(Entity):
    __tablename__ = "ideas"
    __table_args__ = (
        Index("ix_ideas_user_id_created_at", "user_id", "created_at", "id"),
        Index("ix_ideas_user_id_updated_at", "user_id", "updated_at", "id"),
        Index("ix_ideas_user_id_stage", "user_id", "stage", "created_at", "id"),
        Index("ix_ideas_user_id_priority", "user_id", "priority", "created_at", "id"),
        Index("ix_ideas_user_id_title", "user_id", "title", "id"),
        Index("ix_ideas_tags_gin", "tags", postgresql_using="gin"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    stage: Mapped[IdeaStage] = mapped_column(
        OrderedEnum(IdeaStage), nullable=False, default=IdeaStage.IDEA
    )
    priority: Mapped[IdeaPriority] = mapped_column(
        OrderedEnum(IdeaPriority), nullable=False, default=IdeaPriority.MEDIUM
    )
    tags: Mapped[list[str]] = mapped_column(JSONDocument, nullable=False, default=list)
    due_date: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class IdeaCounter(Entity):
    """How many ideas a user has, kept in the same transaction as every create and delete, so
    the unfiltered list answers its `total` without counting rows."""

    __tablename__ = "idea_counters"

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    total: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
