"""The webhook job kinds' names, inputs and the delivery retry schedule.

A delivery that fails (no answer, a time-out, any status but 2xx) is retried by the jobs engine
with exponential backoff: 1, 2, 4, 8, 16, 32, 64 and 128 minutes, then every 4 hours: 14
attempts in all, the last about 24 h 15 min after the first. Then the delivery is `failed` and
can be redelivered by hand.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

from creativeflow.jobs.kinds import Retries

DELIVER_KIND = "webhooks.deliver"
PRUNE_KIND = "webhooks.prune"

DELIVERY_RETRIES = Retries(max_attempts=14, backoff_seconds=60, max_backoff_seconds=4 * 3600)


def retry_delays(retries: Retries = DELIVERY_RETRIES) -> list[float]:
    """Seconds waited after each failed attempt but the last."""
    assert retries.max_attempts is not None
    return [retries.delay(attempt) for attempt in range(1, retries.max_attempts)]


class DeliverInput(BaseModel):
    delivery_id: uuid.UUID


class PruneInput(BaseModel):
    outbox_retention_hours: float = Field(gt=0)
    delivery_retention_days: int = Field(ge=1)
