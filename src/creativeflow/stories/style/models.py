"""A project's style guide.

`story_style_guides`: at most one row per project (deleted with it): the art style, palette,
line weight, lettering, aspect ratio, negative prompt and reference images every panel's prompt
is built with. A project without a row has the defaults (`GET` answers them at version 0); the
first `PUT` creates the row.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from creativeflow.db.base import Entity
from creativeflow.db.types import JSONDocument
from creativeflow.db.versioning import Versioned


class LineWeight(StrEnum):
    THIN = "thin"
    MEDIUM = "medium"
    BOLD = "bold"
    VARIED = "varied"


_LINE_WEIGHTS = ", ".join(f"'{weight.value}'" for weight in LineWeight)


class StyleGuide(Versioned, Entity):
    __tablename__ = "story_style_guides"
    __table_args__ = (CheckConstraint(f"line_weight IN ({_LINE_WEIGHTS})", name="line_weight"),)

    project_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("story_projects.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    art_style: Mapped[str | None] = mapped_column(String(500))
    # "#rrggbb" colours, in the order given.
    palette: Mapped[list[str]] = mapped_column(JSONDocument, nullable=False, default=list)
    line_weight: Mapped[str | None] = mapped_column(String(16))
    lettering: Mapped[str | None] = mapped_column(String(200))
    aspect_ratio: Mapped[str | None] = mapped_column(String(16))  # "W:H", e.g. "2:3"
    negative_prompt: Mapped[str | None] = mapped_column(Text)
    # Image ids (as strings), shared with the assets module, not copied.
    reference_image_ids: Mapped[list[str]] = mapped_column(
        JSONDocument, nullable=False, default=list
    )
