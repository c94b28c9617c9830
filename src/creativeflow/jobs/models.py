"""The jobs table: every job is a row first; a queue message is only a wake-up."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from creativeflow.db.base import Entity
from creativeflow.db.types import JSONDocument, UTCDateTime


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED_STATUSES


FINISHED_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
_STATUS_VALUES = ", ".join(f"'{status.value}'" for status in JobStatus)


class Job(Entity):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUS_VALUES})", name="status"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress"),
        # Same key, same owner: one job (the Idempotency-Key header).
        UniqueConstraint("owner_id", "idempotency_key", name="uq_jobs_owner_id_idempotency_key"),
        # NULL owners are distinct in a unique constraint: the platform's own keys need this.
        Index(
            "uq_jobs_system_idempotency_key",
            "idempotency_key",
            unique=True,
            postgresql_where=text("owner_id IS NULL"),
            sqlite_where=text("owner_id IS NULL"),
        ),
        Index("ix_jobs_owner_id_created_at", "owner_id", "created_at", "id"),
        Index("ix_jobs_subject", "subject_type", "subject_id", "created_at"),
        # What a claim reads: only queued rows, in each owner's turn order.
        Index(
            "ix_jobs_queued",
            "owner_id",
            "priority",
            "queued_at",
            postgresql_where=text("status = 'queued'"),
            sqlite_where=text("status = 'queued'"),
        ),
        # The sweeper: running jobs by heartbeat; finished jobs by age for pruning.
        Index("ix_jobs_status_heartbeat_at", "status", "heartbeat_at"),
        Index("ix_jobs_status_finished_at", "status", "finished_at"),
        Index("ix_jobs_parent_id", "parent_id"),
    )

    kind: Mapped[str] = mapped_column(String(100), nullable=False)
    # None for the platform's own jobs (pruning), which only administrators see.
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE")
    )
    # What the job belongs to (a story project, a brand ...), when anything.
    subject_type: Mapped[str | None] = mapped_column(String(50))
    subject_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)

    status: Mapped[JobStatus] = mapped_column(
        Enum(
            JobStatus,
            native_enum=False,
            length=16,
            values_callable=lambda statuses: [status.value for status in statuses],
            validate_strings=True,
        ),
        nullable=False,
    )
    # Grows on every change, so a client (or a realtime replay) can tell old news from new.
    sequence: Mapped[int] = mapped_column(BigInteger, nullable=False, default=1)
    progress: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    progress_message: Mapped[str | None] = mapped_column(String(500))

    input: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False)
    input_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)

    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    # Higher runs first among one owner's jobs (-10..10).
    priority: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    retried_from: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("jobs.id", ondelete="SET NULL")
    )
    # A group's child (one panel of a panel sequence): the group ends when its last child does.
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("jobs.id", ondelete="CASCADE")
    )

    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    # Not claimed before this (a retry's backoff).
    run_after: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the last wake-up message was sent (Celery mode): the sweeper re-sends lost ones.
    woken_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
