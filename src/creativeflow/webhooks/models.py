"""The outbox and the webhooks tables.

`outbox_events`: one row per durable domain event, written in the transaction that caused it;
`dispatched_at` is set once the event went to the in-process subscribers and to webhooks.
`webhook_endpoints`: where a user wants events sent (secret encrypted at rest).
`webhook_deliveries`: one event (or ping) for one endpoint, with its attempts.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from creativeflow.db.base import Entity
from creativeflow.db.types import JSONDocument, UTCDateTime


class OutboxEvent(Entity):
    __tablename__ = "outbox_events"
    __table_args__ = (
        # What the sweep reads: events not dispatched yet, oldest first.
        Index(
            "ix_outbox_events_undispatched",
            "created_at",
            postgresql_where=text("dispatched_at IS NULL"),
            sqlite_where=text("dispatched_at IS NULL"),
        ),
        Index("ix_outbox_events_dispatched_at", "dispatched_at"),
    )

    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False, unique=True)
    event_type: Mapped[str] = mapped_column(String(100), nullable=False)
    version: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    # The event's fields (`model_dump(mode="json")`), rebuilt into its class by `event_type`.
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False)
    # A dispatcher holds the row while `claimed_until` is in the future (its claim token).
    claim_token: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dispatch_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why the last dispatch failed, or why the event was given up.
    last_error: Mapped[str | None] = mapped_column(Text)


class WebhookEndpoint(Entity):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_owner_id_created_at", "owner_id", "created_at"),)

    owner_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    description: Mapped[str | None] = mapped_column(String(500))
    # Event type names, or ["*"] for every durable event the owner may read.
    event_types: Mapped[list[str]] = mapped_column(JSONDocument, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    # The signing secret, AES-GCM encrypted and bound to this row (`creativeflow.encryption`).
    secret_ciphertext: Mapped[str] = mapped_column(Text, nullable=False)

    def wants(self, event_type: str) -> bool:
        return "*" in self.event_types or event_type in self.event_types


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # queued, or waiting for its next attempt
    DELIVERED = "delivered"
    FAILED = "failed"  # given up: attempts used up, or refused


_STATUS_VALUES = ", ".join(f"'{status.value}'" for status in DeliveryStatus)


class WebhookDelivery(Entity):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUS_VALUES})", name="status"),
        Index("ix_webhook_deliveries_endpoint_id_created_at", "endpoint_id", "created_at", "id"),
        Index("ix_webhook_deliveries_status_updated_at", "status", "updated_at"),
        # One automatic delivery of an event per endpoint (redeliveries are extra rows).
        Index(
            "uq_webhook_deliveries_endpoint_event",
            "endpoint_id",
            "event_id",
            unique=True,
            postgresql_where=text("NOT manual"),
            sqlite_where=text("NOT manual"),
        ),
    )

    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False
    )
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    event_type: Mapped[str] = mapped_column(String(100), nullable=False)
    # The exact body sent (the event's envelope as JSON): the same bytes on every attempt.
    body: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(
            DeliveryStatus,
            name="deliverystatus",
            native_enum=False,
            length=16,
            values_callable=lambda statuses: [status.value for status in statuses],
            validate_strings=True,
        ),
        nullable=False,
    )
    # A ping or a redelivery, asked for by a person who is watching: one attempt, no retries.
    # Automatic deliveries of events retry with backoff for about a day.
    manual: Mapped[bool] = mapped_column(Boolean, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_duration_ms: Mapped[int | None] = mapped_column(Integer)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    job_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("jobs.id", ondelete="SET NULL")
    )
    redelivery_of: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("webhook_deliveries.id", ondelete="SET NULL")
    )
