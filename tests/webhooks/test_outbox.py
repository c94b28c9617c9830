"""The outbox on committed databases: events exist exactly when their transaction committed,
are dispatched at once by the process that committed them, swept up after a crash, and
dispatched once however many dispatchers race."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from sqlalchemy import func, select, update

from creativeflow.db.types import utcnow
from creativeflow.jobs.models import Job, JobStatus
from creativeflow.jobs.repository import JobRepository
from creativeflow.platform import Platform
from creativeflow.shared.messaging.bus import record_event
from creativeflow.shared.messaging.events import BaseEvent, EventAudience
from creativeflow.webhooks.models import DeliveryStatus, OutboxEvent, WebhookDelivery
from creativeflow.webhooks.schedule import PRUNE_KIND
from tests.factories import UserFactory
from tests.jobs.live import api_client, job_row, submit_owned, wait_for
from tests.webhooks.live import eventually, live_platform, outbox_rows, webhook_settings


class SampleHappened(BaseEvent):
    """A durable event for these tests."""

    event_type: ClassVar[str] = "tests.sample_happened"

    owner_id: uuid.UUID | None = None
    label: str = ""

    def audience(self) -> EventAudience:
        return EventAudience(owner_id=self.owner_id)


class Heard:
    """Records what a platform's bus publishes of one event type."""

    def __init__(self, *platforms: Platform, event_type: str) -> None:
        self.events: list[BaseEvent] = []
        for platform in platforms:
            platform.events.subscribe(event_type, self._heard)

    async def _heard(self, event: BaseEvent) -> None:
        self.events.append(event)

    def labels(self) -> list[str]:
        return [event.label for event in self.events if isinstance(event, SampleHappened)]


async def record(platform: Platform, *events: BaseEvent) -> None:
    async with platform.write_transaction() as session:
        for event in events:
            record_event(session.info, event)


class Boom(Exception):
    pass


async def test_an_event_of_a_rolled_back_transaction_is_never_dispatched(
    live_database_url: str, tmp_path: Path
) -> None:
    settings = webhook_settings(live_database_url, tmp_path)
    async with live_platform(settings) as platform:
        heard = Heard(platform, event_type=SampleHappened.event_type)
        with pytest.raises(Boom):
            async with platform.write_transaction() as session:
                record_event(session.info, SampleHappened(label="rolled back"))
                await session.flush()
                raise Boom
        await record(platform, SampleHappened(label="committed"))
        await eventually(lambda: _heard_labels(heard), what="the committed event")
        # Time for a few sweeps: the rolled-back one never shows up.
        await asyncio.sleep(settings.outbox_sweep_seconds * 3)
        stored = [
            row.payload["label"]
            for row in await outbox_rows(platform)
            if row.event_type == SampleHappened.event_type
        ]
    assert heard.labels() == ["committed"]
    assert stored == ["committed"]


async def _heard_labels(heard: Heard) -> list[str]:
    return heard.labels()


async def test_an_event_left_undispatched_by_a_crash_is_dispatched_by_the_next_sweep(
    live_database_url: str, tmp_path: Path
) -> None:
    settings = webhook_settings(live_database_url, tmp_path)
    event = SampleHappened(label="survivor")
    # The process commits and "crashes" before dispatching: no dispatcher runs, nothing
    # flushes, and the platform goes away with the row's id only in its memory.
    async with live_platform(settings, start_jobs=False, start_outbox=False) as crashed:
        heard_before = Heard(crashed, event_type=SampleHappened.event_type)
        await record(crashed, event)
        [row] = [r for r in await outbox_rows(crashed) if r.event_id == event.event_id]
        assert row.dispatched_at is None
    async with live_platform(settings, start_jobs=False) as fresh:
        heard = Heard(fresh, event_type=SampleHappened.event_type)
        await eventually(lambda: _heard_labels(heard), what="the swept event")
        [row] = [r for r in await outbox_rows(fresh) if r.event_id == event.event_id]
    assert heard_before.events == []
    assert [e.event_id for e in heard.events] == [event.event_id]
    assert heard.events[0] == event  # rebuilt field for field
    assert row.dispatched_at is not None and row.dispatch_attempts == 1


async def test_racing_dispatchers_dispatch_each_event_once_and_deliver_it_once(
    live_database_url: str, tmp_path: Path
) -> None:
    settings = webhook_settings(live_database_url, tmp_path, outbox_sweep_seconds=0.1)
    async with (
        live_platform(settings, start_jobs=False, start_outbox=False) as first,
        live_platform(settings, start_jobs=False, start_outbox=False) as second,
        api_client(first) as client,
    ):
        user = await UserFactory(client, first).create()
        # An endpoint that hears every event of the user (nothing is sent: no runner runs).
        response = await user.post(
            "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/never", "event_types": ["*"]}
        )
        assert response.status_code == 201, response.text
        endpoint_id = uuid.UUID(response.json()["id"])
        heard = Heard(first, second, event_type=SampleHappened.event_type)
        events = [SampleHappened(owner_id=uuid.UUID(user.id), label=str(n)) for n in range(40)]
        for chunk in range(0, len(events), 10):
            await record(first, *events[chunk : chunk + 10])
        ids = [row.id for row in await outbox_rows(first, SampleHappened.event_type)]
        await asyncio.sleep(0.2)  # older than a sweep interval: any sweeper may take them
        # Two processes' dispatchers at once, each both sweeping and dispatching by id.
        results = await asyncio.gather(
            first.outbox.sweep(),
            second.outbox.sweep(),
            first.outbox.dispatch(ids),
            second.outbox.dispatch(list(reversed(ids))),
        )
        async with first.read_sessions() as session:
            per_event = (
                await session.execute(
                    select(WebhookDelivery.event_id, func.count())
                    .where(WebhookDelivery.endpoint_id == endpoint_id)
                    .group_by(WebhookDelivery.event_id)
                )
            ).all()
        rows = await outbox_rows(first, SampleHappened.event_type)
        # Its queued deliveries then end without being sent.
        assert (await user.delete(f"/api/v1/webhooks/{endpoint_id}")).status_code == 204
    counts = Counter(event.event_id for event in heard.events)
    assert set(counts) == {event.event_id for event in events}
    assert set(counts.values()) == {1}
    # (The sweeps may also have taken the user's registration, committed undispatched.)
    assert len(events) <= sum(results) <= len(events) + 1
    assert all(row.dispatched_at is not None for row in rows)
    assert {event_id for event_id, _ in per_event} == {event.event_id for event in events}
    assert {count for _, count in per_event} == {1}


async def test_every_way_a_job_ends_records_a_finished_event(
    live_database_url: str, tmp_path: Path
) -> None:
    settings = webhook_settings(live_database_url, tmp_path, job_concurrency=2)
    async with live_platform(settings) as platform, api_client(platform) as client:
        heard = Heard(platform, event_type="jobs.finished")
        user = await UserFactory(client, platform).create()
        succeeded = await submit_owned(platform, user.id, {"steps": 1})
        running = await submit_owned(platform, user.id, {"steps": 400, "step_seconds": 0.02})
        await wait_for(platform, running.id, lambda j: j.progress > 0)
        assert (await user.post(f"/api/v1/jobs/{running.id}/cancel")).status_code == 200
        await wait_for(platform, succeeded.id)
        await wait_for(platform, running.id)
        await platform.jobs.stop()  # nothing runs the next ones: they stay queued
        queued = await submit_owned(platform, user.id, {"steps": 1})
        assert (await user.post(f"/api/v1/jobs/{queued.id}/cancel")).status_code == 200
        lost = await submit_owned(platform, user.id, {"steps": 1})
        async with platform.write_transaction() as session:
            await session.execute(update(Job).where(Job.id == lost.id).values(max_attempts=1))
            assert await JobRepository(session).claim(
                lost.id, "worker@gone:1:dead", utcnow() - timedelta(hours=1)
            )
        report = await platform.jobs.sweeper.sweep()
        assert report.failed == 1

        async def all_heard() -> bool:
            mine = {e.job_id for e in heard.events if e.owner_id == uuid.UUID(user.id)}
            return mine >= {succeeded.id, running.id, queued.id, lost.id}

        await eventually(all_heard, what="four finished events")
        lost_row = await job_row(platform, lost.id)
    by_job = {event.job_id: event for event in heard.events}
    assert by_job[succeeded.id].status == "succeeded"
    assert by_job[running.id].status == "cancelled"
    assert by_job[queued.id].status == "cancelled"
    assert by_job[queued.id].error_code == "CANCELLED"
    assert by_job[lost.id].status == "failed" and by_job[lost.id].error_code == "WORKER_LOST"
    assert lost_row.status is JobStatus.FAILED
    assert all(
        e.kind == "tests.steps" and e.owner_id == uuid.UUID(user.id)
        for e in (by_job[i] for i in (succeeded.id, running.id, queued.id, lost.id))
    )
    # Each end was heard once.
    assert len([e for e in heard.events if e.job_id in by_job]) == len(by_job)


async def test_a_registration_is_announced_once_through_the_outbox(
    live_database_url: str, tmp_path: Path
) -> None:
    settings = webhook_settings(live_database_url, tmp_path)
    async with (
        live_platform(settings, start_jobs=False) as platform,
        api_client(platform) as client,
    ):
        heard = Heard(platform, event_type="identity.user_registered")
        user = await UserFactory(client, platform).create()

        async def announced() -> bool:
            return user.id in registered(heard)

        await eventually(announced, what="the registration")
        await asyncio.sleep(settings.outbox_sweep_seconds * 3)
        rows = [
            r
            for r in await outbox_rows(platform, "identity.user_registered")
            if r.payload["user_id"] == user.id
        ]
    assert registered(heard).count(user.id) == 1
    assert len(rows) == 1 and rows[0].dispatched_at is not None


def registered(heard: Heard) -> list[str]:
    return [str(getattr(event, "user_id", None)) for event in heard.events]


async def test_dispatched_events_and_finished_deliveries_are_pruned_after_retention(
    live_database_url: str, tmp_path: Path
) -> None:
    settings = webhook_settings(
        live_database_url, tmp_path, outbox_retention_hours=1, webhook_delivery_retention_days=1
    )
    async with live_platform(settings, start_jobs=False, start_outbox=False) as platform:
        async with api_client(platform) as client:
            user = await UserFactory(client, platform).create()
            response = await user.post(
                "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "event_types": ["*"]}
            )
            assert response.status_code == 201
            webhook_id = response.json()["id"]
            old_ping = (await user.post(f"/api/v1/webhooks/{webhook_id}/ping")).json()
            new_ping = (await user.post(f"/api/v1/webhooks/{webhook_id}/ping")).json()
        old, recent, waiting = (SampleHappened(label=n) for n in ("old", "recent", "waiting"))
        await record(platform, old, recent, waiting)
        long_ago = utcnow() - timedelta(days=3)
        async with platform.write_transaction() as session:
            await session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.event_id == old.event_id)
                .values(dispatched_at=long_ago)
            )
            await session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.event_id == recent.event_id)
                .values(dispatched_at=utcnow())
            )
            await session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id.in_([uuid.UUID(old_ping["id"]), uuid.UUID(new_ping["id"])])
                )
                .values(status=DeliveryStatus.DELIVERED)
            )
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == uuid.UUID(old_ping["id"]))
                .values(updated_at=long_ago)
            )
        # The dispatcher schedules the daily prune (once a day, however many processes).
        await platform.outbox.schedule_prune()
        async with platform.read_sessions() as session:
            prune_jobs = (
                (
                    await session.execute(
                        select(Job).where(
                            Job.kind == PRUNE_KIND, Job.idempotency_key.like("%:1h:1d")
                        )
                    )
                )
                .scalars()
                .all()
            )
        assert len(prune_jobs) == 1
        async with platform.write_transaction() as session:
            # Only the prune may run now: the pings' deliveries stay put.
            await session.execute(
                update(Job)
                .where(Job.kind != PRUNE_KIND, Job.status == JobStatus.QUEUED)
                .values(run_after=utcnow() + timedelta(days=1))
            )
        await platform.jobs.drain()
        pruned = await job_row(platform, prune_jobs[0].id)
        left = {r.event_id for r in await outbox_rows(platform, SampleHappened.event_type)}
        async with platform.read_sessions() as session:
            deliveries = set((await session.execute(select(WebhookDelivery.id))).scalars())
    assert pruned.status is JobStatus.SUCCEEDED, pruned.error_message
    assert pruned.result is not None and pruned.result["deleted"]["outbox_events"] >= 1
    mine = {old.event_id, recent.event_id, waiting.event_id}
    assert left & mine == {recent.event_id, waiting.event_id}
    assert uuid.UUID(old_ping["id"]) not in deliveries
    assert uuid.UUID(new_ping["id"]) in deliveries
