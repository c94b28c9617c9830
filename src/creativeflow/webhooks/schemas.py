"""Request and response models of the webhooks API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from creativeflow.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

ALL_EVENTS = "*"
MAX_EVENT_TYPES = 50


def _clean_event_types(value: list[str]) -> list[str]:
    names: list[str] = []
    for name in value:
        name = name.strip()
        if name and name not in names:
            names.append(name)
    if not names:
        raise ValueError("name at least one event type, or '*' for all")
    return names


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1, max_length=2048, description="http:// or https:// URL that receives POSTs"
    )
    event_types: list[str] = Field(
        min_length=1,
        max_length=MAX_EVENT_TYPES,
        description="Event types to receive (`GET /webhooks/event-types`), or `*` for all",
        examples=[["jobs.finished"]],
    )
    description: str | None = Field(default=None, max_length=500)
    active: bool = True

    @field_validator("event_types")
    @classmethod
    def _event_types(cls, value: list[str]) -> list[str]:
        return _clean_event_types(value)


class WebhookUpdate(BaseModel):
    """Only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=2048)
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=MAX_EVENT_TYPES)
    description: str | None = Field(default=None, max_length=500)
    active: bool | None = None

    @field_validator("event_types")
    @classmethod
    def _event_types(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _clean_event_types(value)


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str | None
    active: bool
    owner_id: uuid.UUID
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> WebhookRead:
        return cls.model_validate(endpoint)


class WebhookWithSecret(WebhookRead):
    secret: str = Field(
        description="The signing secret. Shown only in this response: store it now. "
        "`POST /webhooks/{id}/rotate-secret` makes a new one."
    )

    @classmethod
    def with_secret(cls, endpoint: WebhookEndpoint, secret: str) -> WebhookWithSecret:
        return cls.model_validate({**WebhookRead.of(endpoint).model_dump(), "secret": secret})


class EventTypeRead(BaseModel):
    name: str
    version: int
    description: str


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(description="Sent as X-CreativeFlow-Delivery, the same on every retry")
    webhook_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: DeliveryStatus
    manual: bool = Field(description="A ping or a redelivery: one attempt, no retries")
    attempts: int
    last_status_code: int | None
    last_error: str | None
    last_duration_ms: int | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = Field(description="When a pending delivery is tried next")
    delivered_at: datetime | None
    job_id: uuid.UUID | None
    redelivery_of: uuid.UUID | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, delivery: WebhookDelivery) -> DeliveryRead:
        return cls.model_validate(
            {
                **{name: getattr(delivery, name) for name in _DELIVERY_COLUMNS},
                "webhook_id": delivery.endpoint_id,
            }
        )


_DELIVERY_COLUMNS = [name for name in DeliveryRead.model_fields if name != "webhook_id"]
