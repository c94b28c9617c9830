"""Versioned domain events: the contract for everything the platform announces.

An event is published only after the transaction that caused it has committed. Consumers
switch on `event_type` and `version`; a breaking change to a payload bumps the version.

Events are *durable* by default: recorded on a session, they are written to the outbox in the
same transaction and dispatched after it commits, even by another process after a crash. A
process signal (a worker wake-up) sets `durable = False` and is only published in process
after the commit. Every subclass is registered by its `event_type`, so a stored event can be
rebuilt (`event_class`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from creativeflow.shared.core.context import correlation_id_var


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class EventAudience:
    """Who may hear of an event outside the process: its owner, and whoever may read its
    subject (a project, a brand). Nobody, when both are None (the platform's own events)."""

    owner_id: uuid.UUID | None = None
    subject_type: str | None = None
    subject_id: uuid.UUID | None = None


_event_classes: dict[str, type[BaseEvent]] = {}


def event_class(event_type: str) -> type[BaseEvent] | None:
    """The class registered for `event_type`, to rebuild a stored event."""
    return _event_classes.get(event_type)


def durable_event_types() -> dict[str, type[BaseEvent]]:
    """Every durable event type known to this process, by name."""
    return {name: cls for name, cls in sorted(_event_classes.items()) if cls.durable}


class BaseEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str] = "event"
    version: ClassVar[int] = 1
    # False for process signals: published after the commit, never written to the outbox.
    durable: ClassVar[bool] = True

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        existing = _event_classes.get(cls.event_type)
        if existing is not None and (existing.__module__, existing.__qualname__) != (
            cls.__module__,
            cls.__qualname__,
        ):
            raise ValueError(
                f"event type {cls.event_type!r} is defined twice: by "
                f"{existing.__module__}.{existing.__qualname__} and "
                f"{cls.__module__}.{cls.__qualname__}"
            )
        _event_classes[cls.event_type] = cls

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

    def audience(self) -> EventAudience:
        """Who may hear of this event (webhooks, sockets). Subclasses with an owner say so."""
        return EventAudience()


class UserRegisteredEvent(BaseEvent):
    event_type: ClassVar[str] = "identity.user_registered"

    user_id: uuid.UUID
    username: str
    email: str | None = None

    def audience(self) -> EventAudience:
        return EventAudience(owner_id=self.user_id)


class GenerationCompletedEvent(BaseEvent):
    event_type: ClassVar[str] = "generation.completed"

    generation_id: uuid.UUID
    user_id: uuid.UUID
    succeeded: bool
    asset_ids: list[uuid.UUID] = Field(default_factory=list)
    error: str | None = None

    def audience(self) -> EventAudience:
        return EventAudience(owner_id=self.user_id)


class PaymentSucceededEvent(BaseEvent):
    event_type: ClassVar[str] = "billing.payment_succeeded"

    payment_id: str
    user_id: uuid.UUID
    amount: Decimal = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)

    def audience(self) -> EventAudience:
        return EventAudience(owner_id=self.user_id)


class WebhookDispatchEvent(BaseEvent):
    """A webhook delivery attempt is about to go out (in process only: a webhook about
    webhooks would feed itself)."""

    event_type: ClassVar[str] = "webhooks.dispatch"
    durable: ClassVar[bool] = False

    url: HttpUrl
    payload: dict[str, Any]
    attempt: int = Field(default=1, ge=1)
