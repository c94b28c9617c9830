"""Versioned domain events: the contract for everything the platform announces.

An event is published only after the transaction that caused it has committed. Consumers
switch on `event_type` and `version`; a breaking change to a payload bumps the version.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from creativeflow.shared.core.context import correlation_id_var


def _now() -> datetime:
    return datetime.now(UTC)


class BaseEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str] = "event"
    version: ClassVar[int] = 1

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    timestamp: datetime = Field(default_factory=_now)
    correlation_id: str | None = Field(default_factory=lambda: correlation_id_var.get())

    def envelope(self) -> dict[str, Any]:
        """The wire form: type and version beside the payload."""
        return {
            "event_type": self.event_type,
            "version": self.version,
            **self.model_dump(mode="json"),
        }


class UserRegisteredEvent(BaseEvent):
    event_type: ClassVar[str] = "identity.user_registered"

    user_id: uuid.UUID
    username: str
    email: str | None = None


class GenerationCompletedEvent(BaseEvent):
    event_type: ClassVar[str] = "generation.completed"

    generation_id: uuid.UUID
    user_id: uuid.UUID
    succeeded: bool
    asset_ids: list[uuid.UUID] = Field(default_factory=list)
    error: str | None = None


class PaymentSucceededEvent(BaseEvent):
    event_type: ClassVar[str] = "billing.payment_succeeded"

    payment_id: str
    user_id: uuid.UUID
    amount: Decimal = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)


class WebhookDispatchEvent(BaseEvent):
    event_type: ClassVar[str] = "webhooks.dispatch"

    url: HttpUrl
    payload: dict[str, Any]
    attempt: int = Field(default=1, ge=1)
