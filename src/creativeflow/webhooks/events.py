"""What the webhooks module sends of its own."""

from __future__ import annotations

import uuid
from typing import ClassVar

from creativeflow.shared.messaging.events import BaseEvent


class WebhookPingEvent(BaseEvent):
    """The test delivery of `POST /webhooks/{id}/ping`. Sent to that one endpoint only, never
    through the outbox."""

    event_type: ClassVar[str] = "webhooks.ping"
    durable: ClassVar[bool] = False

    webhook_id: uuid.UUID
    url: str
