"""The webhooks module's job kinds: one delivery attempt (`webhooks.deliver`, retried by the
jobs engine on the schedule of `schedule.py`) and the daily pruning (`webhooks.prune`).

An attempt reads what it needs in one short read, sends with no transaction open, and records
the outcome in its own short write."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from creativeflow.db.types import utcnow
from creativeflow.jobs.context import JobContext
from creativeflow.jobs.errors import JobFailed
from creativeflow.jobs.kinds import Retries, job_kind
from creativeflow.shared.messaging.events import WebhookDispatchEvent
from creativeflow.webhooks.delivery import send
from creativeflow.webhooks.repository import DeliveryRepository, OutboxRepository
from creativeflow.webhooks.schedule import (
    DELIVER_KIND,
    DELIVERY_RETRIES,
    PRUNE_KIND,
    DeliverInput,
    PruneInput,
)
from creativeflow.webhooks.service import DeliveryAttempts, next_attempt_after

_PRUNE_BATCH = 500


@job_kind(
    DELIVER_KIND,
    DeliverInput,
    description="Send one webhook delivery (retried with backoff for about a day)",
    # Resolution and the request each have WEBHOOK_TIMEOUT_SECONDS (at most 60 s).
    time_limit_seconds=180,
    retries=DELIVERY_RETRIES,
)
async def deliver(context: JobContext, data: DeliverInput) -> dict[str, Any]:
    platform = context.platform
    settings = platform.settings
    async with platform.read_sessions() as session:
        prepared = await DeliveryAttempts(session, platform.field_cipher).prepare(data.delivery_id)
    if prepared.attempt is None:
        assert prepared.skipped is not None
        async with platform.write_transaction() as session:
            await DeliveryAttempts(session, platform.field_cipher).skip(
                data.delivery_id, prepared.skipped, utcnow()
            )
        return {"skipped": prepared.skipped}
    attempt = prepared.attempt
    try:
        announcement = WebhookDispatchEvent(
            url=attempt.url, payload=json.loads(attempt.body), attempt=context.attempt
        )
    except ValidationError:  # a URL the spec's HttpUrl is stricter about: still delivered
        announcement = None
    if announcement is not None:
        await platform.events.publish(announcement)
    outcome = await send(
        attempt,
        allow_private=settings.webhook_allow_private_targets,
        timeout_seconds=settings.webhook_timeout_seconds,
    )
    assert DELIVERY_RETRIES.max_attempts is not None
    final = outcome.delivered or (
        prepared.manual or not outcome.retryable or context.attempt >= DELIVERY_RETRIES.max_attempts
    )
    now = utcnow()
    async with platform.write_transaction() as session:
        await DeliveryAttempts(session, platform.field_cipher).record(
            data.delivery_id,
            outcome,
            final=final,
            next_attempt_at=next_attempt_after(context.attempt, now),
            now=now,
        )
    if outcome.delivered:
        return {"status_code": outcome.status_code, "duration_ms": outcome.duration_ms}
    raise JobFailed(
        "WEBHOOK_DELIVERY_FAILED", outcome.error or "delivery failed", retryable=not final
    )


@job_kind(
    PRUNE_KIND,
    PruneInput,
    description="Delete dispatched outbox events and finished webhook deliveries past retention",
    time_limit_seconds=3600,
    retries=Retries(max_attempts=3, backoff_seconds=60),
)
async def prune(context: JobContext, data: PruneInput) -> dict[str, Any]:
    now = utcnow()
    events_before = now - timedelta(hours=data.outbox_retention_hours)
    deliveries_before = now - timedelta(days=data.delivery_retention_days)
    counts = {"outbox_events": 0, "deliveries": 0}
    # Small batches, each its own short transaction (and turn of SQLite's write gate).
    for name in counts:
        while True:
            async with context.platform.write_transaction() as session:
                if name == "outbox_events":
                    batch = await OutboxRepository(session).prune(events_before, _PRUNE_BATCH)
                else:
                    batch = await DeliveryRepository(session).prune(deliveries_before, _PRUNE_BATCH)
            counts[name] += batch
            if batch < _PRUNE_BATCH:
                break
            await context.progress(0.5, f"{counts} deleted so far")
    return {
        "deleted": counts,
        "outbox_dispatched_before": events_before.isoformat(),
        "deliveries_finished_before": deliveries_before.isoformat(),
    }
