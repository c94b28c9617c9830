"""The images table: one row per stored image, pointing at content-addressed bytes."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from creativeflow.db.base import Entity
from creativeflow.db.types import JSONDocument


class Image(Entity):
    __tablename__ = "images"
    __table_args__ = (
        Index("ix_images_owner_id_created_at", "owner_id", "created_at", "id"),
        Index("ix_images_subject", "subject_type", "subject_id", "created_at"),
        Index("ix_images_job_id", "job_id"),
        Index("ix_images_sha256", "sha256"),
    )

    owner_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    subject_type: Mapped[str | None] = mapped_column(String(50))
    subject_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # The job that generated it; kept when the job is pruned (provenance stays in `details`).
    job_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("jobs.id", ondelete="SET NULL")
    )
    storage_key: Mapped[str] = mapped_column(String(200), nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    format: Mapped[str] = mapped_column(String(10), nullable=False)
    size_bytes: Mapped[int] = mapped_column(Integer, nullable=False)
    # Provenance: provider, model, prompt, parameters, seed, timings.
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False, default=dict)
