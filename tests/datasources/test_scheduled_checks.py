"""Scheduled health checks: a source with a check interval is checked by a job when it falls
due; the outcome joins its history, and turning unhealthy reaches the owner's sockets."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.datasources.jobs import submit_due_checks
from creativeflow.datasources.models import DataSource
from creativeflow.db.types import utcnow
from creativeflow.platform import Platform
from creativeflow.realtime.models import user_channel
from creativeflow.webhooks.models import OutboxEvent
from tests.factories import UserFactory

BASE = "/api/v1/datasources"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"datasource_allow_private_hosts": True}


async def make_due(session: AsyncSession, source_id: str) -> None:
    await session.execute(
        update(DataSource)
        .where(DataSource.id == uuid.UUID(source_id))
        .values(next_check_at=utcnow() - timedelta(seconds=1))
    )
    await session.commit()


async def test_due_sources_are_checked_by_jobs(
    users: UserFactory, platform: Platform, session: AsyncSession
) -> None:
    root = platform.settings.resolved_datasource_file_root()
    root.mkdir(parents=True, exist_ok=True)
    sqlite3.connect(root / "live.db").close()
    user = await users.create()
    created = await user.post(
        BASE,
        json={
            "name": "Watched",
            "config": {"type": "sqlite", "path": "live.db"},
            "check_interval_seconds": 60,
        },
    )
    assert created.status_code == 201, created.text
    source = created.json()
    assert source["check_interval_seconds"] == 60 and source["next_check_at"]
    too_short = await user.patch(f"{BASE}/{source['id']}", json={"check_interval_seconds": 5})
    assert too_short.status_code == 422

    assert await submit_due_checks(platform) == 0  # not due yet
    await make_due(session, source["id"])
    assert await submit_due_checks(platform) == 1
    assert await submit_due_checks(platform) == 0  # the schedule moved on: submitted once
    assert await platform.jobs.drain() == 1

    checks = (await user.get(f"{BASE}/{source['id']}/checks")).json()
    assert checks["total"] == 1
    assert checks["items"][0]["trigger"] == "scheduled" and checks["items"][0]["ok"] is True
    assert checks["items"][0]["job_id"]
    row = (await session.execute(select(DataSource))).scalar_one()
    assert row.next_check_at is not None and row.next_check_at > utcnow() + timedelta(seconds=50)

    # The file disappears: the next scheduled check fails, and the owner's sockets hear of it.
    socket = await platform.realtime.subscribe(user_channel(user.id))
    (root / "live.db").unlink()
    await make_due(session, source["id"])
    assert await submit_due_checks(platform) == 1
    await platform.jobs.drain()
    # The dispatcher hands the committed event to this process's subscribers (realtime).
    undispatched = select(OutboxEvent.id).where(OutboxEvent.dispatched_at.is_(None))
    assert await platform.outbox.dispatch(list((await session.execute(undispatched)).scalars()))
    shown = (await user.get(f"{BASE}/{source['id']}")).json()
    assert shown["status"] == "unhealthy" and shown["last_check"]["error_code"] == "NOT_FOUND"
    message = await asyncio.wait_for(socket.get(), timeout=5)
    while message.type != "datasource_status":
        message = await asyncio.wait_for(socket.get(), timeout=5)
    assert message.data["status"] == "unhealthy" and message.data["source_id"] == source["id"]
    await platform.realtime.unsubscribe(socket)
