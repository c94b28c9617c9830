"""Running platforms on a committed database, with their job runner and outbox dispatcher."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select

from creativeflow.identity.bootstrap import sync_builtin_roles
from creativeflow.platform import Platform, build_platform
from creativeflow.settings import Settings
from creativeflow.webhooks.models import OutboxEvent, WebhookDelivery
from tests.jobs.live import live_settings

# Fast sweeps, and webhooks may go to the receiver on 127.0.0.1.
FAST_WEBHOOKS: dict[str, Any] = {
    "outbox_sweep_seconds": 0.3,
    "webhook_allow_private_targets": True,
    "webhook_timeout_seconds": 3.0,
    "rate_limit_enabled": False,
}


def webhook_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    return live_settings(database_url, data_dir, **{**FAST_WEBHOOKS, **overrides})


@asynccontextmanager
async def live_platform(
    settings: Settings, *, start_jobs: bool = True, start_outbox: bool = True
) -> AsyncIterator[Platform]:
    platform = build_platform(settings)
    await sync_builtin_roles(platform)
    if start_jobs:
        await platform.jobs.start()
    if start_outbox:
        await platform.outbox.start()
    try:
        yield platform
    finally:
        await platform.close()


async def eventually(
    check: Callable[[], Any], *, seconds: float = 20.0, what: str = "condition"
) -> Any:
    """Poll `await check()` until it returns something truthy."""
    deadline = time.monotonic() + seconds
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {seconds} s (last: {value!r})")
        await asyncio.sleep(0.05)


async def delivery_row(platform: Platform, delivery_id: uuid.UUID | str) -> WebhookDelivery:
    async with platform.read_sessions() as session:
        row = await session.get(
            WebhookDelivery, uuid.UUID(str(delivery_id)), populate_existing=True
        )
    assert row is not None
    return row


async def outbox_rows(platform: Platform, event_type: str | None = None) -> list[OutboxEvent]:
    async with platform.read_sessions() as session:
        stmt = select(OutboxEvent).order_by(OutboxEvent.created_at)
        if event_type is not None:
            stmt = stmt.where(OutboxEvent.event_type == event_type)
        return list((await session.execute(stmt)).scalars())
