"""The webhooks module's failures."""

from __future__ import annotations

from creativeflow.shared.core.exceptions import ConflictException, NotFoundException


class WebhookNotFound(NotFoundException):
    code = "WEBHOOK_NOT_FOUND"


class DeliveryNotFound(NotFoundException):
    code = "WEBHOOK_DELIVERY_NOT_FOUND"


class DeliveryPending(ConflictException):
    """A delivery still being attempted cannot be redelivered (it would go out twice)."""

    code = "WEBHOOK_DELIVERY_PENDING"


class WebhookLimitReached(ConflictException):
    code = "WEBHOOK_LIMIT_REACHED"
