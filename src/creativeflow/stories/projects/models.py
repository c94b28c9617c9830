"""Projects and their members.

`story_projects`: a graphic novel, owned by one user. `story_project_members`: the users the
owner shares it with, as `editor` (changes content) or `viewer` (reads). Everything inside a
project is reachable exactly by its owner and members.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from creativeflow.db.base import Entity
from creativeflow.db.types import JSONDocument, sql_values
from creativeflow.db.versioning import Versioned


class ProjectStatus(StrEnum):
    PLANNING = "planning"
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"


class ReadingDirection(StrEnum):
    LEFT_TO_RIGHT = "ltr"
    RIGHT_TO_LEFT = "rtl"  # manga
    VERTICAL = "vertical"  # webtoon scroll


class PageFormat(StrEnum):
    US_COMIC = "us_comic"  # 6.625 x 10.25 in
    MANGA = "manga"  # B6, 128 x 182 mm
    A4 = "a4"
    LETTER = "letter"
    WEBTOON = "webtoon"  # 800 px wide strips
    SQUARE = "square"


class MemberRole(StrEnum):
    EDITOR = "editor"
    VIEWER = "viewer"


class Project(Versioned, Entity):
    __tablename__ = "story_projects"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_values(ProjectStatus)})", name="status"),
        CheckConstraint(f"reading_direction IN ({sql_values(ReadingDirection)})", name="direction"),
        CheckConstraint(f"page_format IN ({sql_values(PageFormat)})", name="page_format"),
        Index("ix_story_projects_owner_id_updated_at", "owner_id", "updated_at"),
    )

    owner_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    logline: Mapped[str | None] = mapped_column(String(500))
    synopsis: Mapped[str | None] = mapped_column(Text)
    genres: Mapped[list[str]] = mapped_column(JSONDocument, nullable=False, default=list)
    audience: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=ProjectStatus.PLANNING)
    reading_direction: Mapped[str] = mapped_column(
        String(16), nullable=False, default=ReadingDirection.LEFT_TO_RIGHT
    )
    page_format: Mapped[str] = mapped_column(
        String(16), nullable=False, default=PageFormat.US_COMIC
    )
    # The content idea the project grew from (`POST /projects/from-idea/{idea_id}`).
    idea_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("ideas.id", ondelete="SET NULL")
    )


class ProjectMember(Entity):
    __tablename__ = "story_project_members"
    __table_args__ = (
        UniqueConstraint("project_id", "user_id", name="uq_story_project_members_project_user"),
        CheckConstraint(f"role IN ({sql_values(MemberRole)})", name="role"),
        # "Projects shared with me": by member.
        Index("ix_story_project_members_user_id", "user_id"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("story_projects.id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    role: Mapped[str] = mapped_column(String(16), nullable=False)
