"""A project's cast: its characters and locations, their reference images, and which
characters appear in which panel.

`story_characters` / `story_locations`: named (unique in the project, whatever the case:
`name_key` is the lower-cased name), versioned. `story_character_designs` /
`story_location_references`: images of the assets module linked to one of them, at most one
primary. `story_panel_characters`: the characters in a panel, in the order given (a panel's
location is its own `location_id` column).
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from creativeflow.db.base import Base, Entity
from creativeflow.db.types import JSONDocument, sql_values
from creativeflow.db.versioning import Versioned


class CharacterRole(StrEnum):
    PROTAGONIST = "protagonist"
    ANTAGONIST = "antagonist"
    SUPPORTING = "supporting"
    MINOR = "minor"
    OTHER = "other"


class Setting(StrEnum):
    INTERIOR = "interior"
    EXTERIOR = "exterior"


class Character(Versioned, Entity):
    __tablename__ = "story_characters"
    __table_args__ = (
        UniqueConstraint("project_id", "name_key", name="uq_story_characters_project_name"),
        CheckConstraint(f"role IN ({sql_values(CharacterRole)})", name="role"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("story_projects.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    name_key: Mapped[str] = mapped_column(String(120), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False, default=CharacterRole.SUPPORTING)
    description: Mapped[str | None] = mapped_column(Text)
    appearance: Mapped[list[str]] = mapped_column(JSONDocument, nullable=False, default=list)
    personality: Mapped[str | None] = mapped_column(Text)
    palette: Mapped[list[str]] = mapped_column(JSONDocument, nullable=False, default=list)
    # Identity lock: its primary designs and appearance traits go into every prompt it is in,
    # and its panels' drift is checked after each generation.
    locked: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )


class Location(Versioned, Entity):
    __tablename__ = "story_locations"
    __table_args__ = (
        UniqueConstraint("project_id", "name_key", name="uq_story_locations_project_name"),
        CheckConstraint(f"setting IS NULL OR setting IN ({sql_values(Setting)})", name="setting"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("story_projects.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    name_key: Mapped[str] = mapped_column(String(120), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    setting: Mapped[str | None] = mapped_column(String(16))
    time_period: Mapped[str | None] = mapped_column(String(100))
    palette: Mapped[list[str]] = mapped_column(JSONDocument, nullable=False, default=list)


class CharacterDesign(Entity):
    __tablename__ = "story_character_designs"
    __table_args__ = (
        UniqueConstraint("character_id", "image_id", name="uq_story_character_designs_image"),
        Index("ix_story_character_designs_image_id", "image_id"),
    )

    character_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("story_characters.id", ondelete="CASCADE"), nullable=False
    )
    image_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("images.id", ondelete="CASCADE"), nullable=False
    )
    label: Mapped[str | None] = mapped_column(String(200))
    is_primary: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class LocationReference(Entity):
    __tablename__ = "story_location_references"
    __table_args__ = (
        UniqueConstraint("location_id", "image_id", name="uq_story_location_references_image"),
        Index("ix_story_location_references_image_id", "image_id"),
    )

    location_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("story_locations.id", ondelete="CASCADE"), nullable=False
    )
    image_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("images.id", ondelete="CASCADE"), nullable=False
    )
    label: Mapped[str | None] = mapped_column(String(200))
    is_primary: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class PanelCharacter(Base):
    __tablename__ = "story_panel_characters"
    __table_args__ = (Index("ix_story_panel_characters_character_id", "character_id"),)

    panel_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("story_panels.id", ondelete="CASCADE"), primary_key=True
    )
    character_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("story_characters.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
