"""The images table: one row per stored image, pointing at content-addressed bytes."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, Enum, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from creativeflow.db.base import Base, Entity
from creativeflow.db.types import JSONDocument


class ImageOrigin(StrEnum):
    UPLOAD = "upload"
    GENERATED = "generated"


_ORIGIN_VALUES = ", ".join(f"'{origin.value}'" for origin in ImageOrigin)


def tag_key(tag: str) -> str:
    """A tag's case-insensitive identity: what the tag filter compares."""
    return tag.casefold()


class Image(Entity):
    __tablename__ = "images"
    __table_args__ = (
        CheckConstraint(f"origin IN ({_ORIGIN_VALUES})", name="origin"),
        Index("ix_images_owner_id_created_at", "owner_id", "created_at", "id"),
        Index("ix_images_owner_id_origin_created_at", "owner_id", "origin", "created_at", "id"),
        Index("ix_images_subject", "subject_type", "subject_id", "created_at"),
        Index("ix_images_job_id", "job_id"),
        Index("ix_images_sha256", "sha256"),
        Index("ix_images_source_image_id", "source_image_id"),
        # Deleting an image asks whether any other row still needs its object or thumbnail.
        Index("ix_images_storage_key", "storage_key"),
        Index("ix_images_thumbnail_key", "thumbnail_key"),
    )

    # The uploader, or the owner of the job that generated it.
    owner_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    subject_type: Mapped[str | None] = mapped_column(String(50))
    subject_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    origin: Mapped[ImageOrigin] = mapped_column(
        Enum(
            ImageOrigin,
            name="imageorigin",
            native_enum=False,
            length=16,
            values_callable=lambda origins: [origin.value for origin in origins],
            validate_strings=True,
        ),
        nullable=False,
    )
    # The job that generated it; kept when the job is pruned (provenance stays in `details`).
    job_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("jobs.id", ondelete="SET NULL")
    )
    # The image a variation or style transfer was made from; kept when that image is deleted.
    source_image_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("images.id", ondelete="SET NULL")
    )
    storage_key: Mapped[str] = mapped_column(String(200), nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    format: Mapped[str] = mapped_column(String(10), nullable=False)
    size_bytes: Mapped[int] = mapped_column(Integer, nullable=False)
    # Tags as the uploader spelled them (shown); `ImageTag` holds their keys (filtered on).
    tags: Mapped[list[str]] = mapped_column(JSONDocument, nullable=False, default=list)
    # [{"hex": "#rrggbb", "share": 0.42}, ...], most common first.
    dominant_colors: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONDocument, nullable=False, default=list
    )
    # The WebP thumbnail's storage key, once made (content-addressed like the image).
    thumbnail_key: Mapped[str | None] = mapped_column(String(200))
    # Provenance: provider, model, prompt, parameters, seed, timings.
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False, default=dict)


class ImageTag(Base):
    """One row per tag of an image, case-folded: the tag filter is an index lookup on both
    backends. A link, not an entity: it lives and dies with its image."""

    __tablename__ = "image_tags"
    __table_args__ = (Index("ix_image_tags_tag_key", "tag_key", "image_id"),)

    image_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    tag_key: Mapped[str] = mapped_column(String(200), primary_key=True)
