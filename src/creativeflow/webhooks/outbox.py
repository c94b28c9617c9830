"""The transactional outbox: durable domain events written by the transaction that caused them,
dispatched after it commits.

Writing. `record_event(session.info, event)` keeps the event on the session; just before that
session's transaction commits, a session hook turns every durable event into an
`outbox_events` row, so the event exists exactly when the change does. The hook is installed
on SQLAlchemy's `Session` class once per process (`install_outbox_hooks`): every write session
(a request's unit of work, `Platform.write_transaction`) writes its events, whoever built it.

Dispatching. After the commit, the hook hands the new rows' ids to the dispatcher of the
platform whose session it was (`session.info`), which dispatches them at once: a claim by
conditional update, the event rebuilt from its row and published to the in-process
`EventBus` (realtime, other subscribers), webhook deliveries created and the row marked
dispatched in one transaction naming the claim. Every long-running process also sweeps, every
OUTBOX_SWEEP_SECONDS, for rows left undispatched (a crash between commit and dispatch), so
nothing is lost; a claim that ran out (its dispatcher died) is taken over. Subscribers hear an
event at least once, webhooks get one delivery per endpoint and event.

Dispatched rows are kept OUTBOX_RETENTION_HOURS, then the daily `webhooks.prune` job deletes
them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Iterable
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from creativeflow.db.ids import uuid7
from creativeflow.db.types import utcnow
from creativeflow.jobs.events import JobFinishedEvent
from creativeflow.jobs.service import JobService
from creativeflow.shared.core.logging import get_logger
from creativeflow.shared.messaging.bus import take_durable_events, take_pending_events
from creativeflow.shared.messaging.events import BaseEvent, event_class
from creativeflow.webhooks.models import OutboxEvent
from creativeflow.webhooks.repository import OutboxRepository
from creativeflow.webhooks.schedule import DELIVER_KIND, PRUNE_KIND, PruneInput
from creativeflow.webhooks.service import DeliveryAttempts, WebhookFanout

if TYPE_CHECKING:
    from creativeflow.platform import Platform

_log = get_logger("creativeflow.outbox")

DISPATCHER_KEY = "creativeflow.outbox_dispatcher"
_WRITTEN_KEY = "creativeflow.outbox_written"
_BATCH = 100
# How long a claim holds rows: far longer than dispatching a batch takes.
CLAIM_SECONDS = 60.0
# A row failing this many dispatches in a row is given up (logged, kept with its error).
MAX_DISPATCH_ATTEMPTS = 10


# -- writing ---------------------------------------------------------------------------------


def outbox_row(event: BaseEvent) -> OutboxEvent:
    return OutboxEvent(
        id=uuid7(),
        event_id=event.event_id,
        event_type=event.event_type,
        version=event.version,
        payload=event.model_dump(mode="json"),
        dispatch_attempts=0,
    )


def _before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: its events are written when the real transaction commits
    events = take_durable_events(session.info)
    if not events:
        return
    rows = [outbox_row(event) for event in events]
    session.add_all(rows)
    session.info.setdefault(_WRITTEN_KEY, []).extend(row.id for row in rows)


def _after_commit(session: Session) -> None:
    written: list[uuid.UUID] = session.info.pop(_WRITTEN_KEY, [])
    dispatcher: OutboxDispatcher | None = session.info.get(DISPATCHER_KEY)
    if written and dispatcher is not None:
        dispatcher.notify(written)


def _after_rollback(session: Session) -> None:
    session.info.pop(_WRITTEN_KEY, None)


def install_outbox_hooks() -> None:
    """Once per process: every session writes its durable events to the outbox."""
    for name, hook in (
        ("before_commit", _before_commit),
        ("after_commit", _after_commit),
        ("after_rollback", _after_rollback),
    ):
        if not sa_event.contains(Session, name, hook):
            sa_event.listen(Session, name, hook)


def rebuild(row: OutboxEvent) -> BaseEvent:
    """The event a row stores; ValueError when this process cannot read it."""
    cls = event_class(row.event_type)
    if cls is None:
        raise ValueError(f"no event class is registered for {row.event_type!r}")
    if cls.version != row.version:
        raise ValueError(
            f"{row.event_type} version {row.version} stored; this process reads version "
            f"{cls.version}"
        )
    try:
        return cls.model_validate(row.payload)
    except ValidationError as exc:
        raise ValueError(f"the stored {row.event_type} does not validate: {exc}") from exc


# -- dispatching -----------------------------------------------------------------------------


class OutboxDispatcher:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        settings = platform.settings
        self.sweep_seconds = settings.outbox_sweep_seconds
        self.name = f"outbox@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._pending: set[uuid.UUID] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._doorbell: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._prune_scheduled_on: date | None = None
        # Claims being dispatched now: handed back if the process stops in the middle.
        self._claims: set[uuid.UUID] = set()
        platform.events.subscribe(JobFinishedEvent.event_type, self._on_job_finished)

    # The hook of `_after_commit`; runs on the thread that committed.
    def notify(self, row_ids: Iterable[uuid.UUID]) -> None:
        self._pending.update(row_ids)
        loop, doorbell = self._loop, self._doorbell
        if loop is None or doorbell is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            doorbell.set()
        else:
            loop.call_soon_threadsafe(doorbell.set)

    async def start(self) -> None:
        """Dispatch committed rows as they come and sweep for stragglers (long-running
        processes: the API, the worker's sweeper)."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._doorbell = asyncio.Event()
        if self._pending:
            self._doorbell.set()
        self._task = asyncio.create_task(self._run(), name="outbox-dispatcher")

    async def stop(self) -> None:
        """Stop dispatching; rows claimed but not dispatched are handed back at once (rather
        than when the claim runs out), for the next dispatcher."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._doorbell = None
        self._loop = None
        claims, self._claims = set(self._claims), set()
        if claims:
            try:
                async with self.platform.write_transaction() as session:
                    await OutboxRepository(session).release_claims(claims, utcnow())
            except Exception:  # the claims run out by themselves
                _log.exception("outbox_release_failed")

    async def _run(self) -> None:
        assert self._doorbell is not None
        doorbell = self._doorbell
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        while True:
            try:
                await self.flush()
                if loop.time() >= next_sweep:
                    await self.sweep()
                    await self.schedule_prune()
                    next_sweep = loop.time() + self.sweep_seconds
            except Exception:  # a database hiccup must not end the dispatcher
                _log.exception("outbox_dispatch_failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_sweep - loop.time())):
                    await doorbell.wait()
            doorbell.clear()

    async def flush(self) -> int:
        """Dispatch the rows this process committed and has not dispatched yet, now."""
        dispatched = 0
        while self._pending:
            batch = sorted(self._pending)[:_BATCH]
            self._pending.difference_update(batch)
            dispatched += await self.dispatch(batch)
        return dispatched

    async def dispatch_committed(self) -> None:
        """`flush` for code that just committed (a job's end): never raises, since the rows
        are safe in the table and the sweep dispatches them if this fails."""
        try:
            await self.flush()
        except Exception:
            _log.exception("outbox_dispatch_failed")

    async def sweep(self) -> int:
        """Dispatch rows that were committed but never dispatched (older than one sweep
        interval: younger ones are their own process's to dispatch), or whose claim ran out."""
        dispatched = 0
        while True:
            now = utcnow()
            async with self.platform.read_sessions() as session:
                ids = await OutboxRepository(session).undispatched(
                    created_before=now - timedelta(seconds=self.sweep_seconds),
                    now=now,
                    limit=_BATCH,
                )
            if not ids:
                return dispatched
            count = await self.dispatch(ids)
            dispatched += count
            if len(ids) < _BATCH or count == 0:
                return dispatched

    async def dispatch(self, row_ids: list[uuid.UUID]) -> int:
        """Claim the free rows among `row_ids` and dispatch each; how many were dispatched."""
        token = uuid.uuid4()
        now = utcnow()
        self._claims.add(token)
        try:
            async with self.platform.write_transaction() as session:
                rows = await OutboxRepository(session).claim(
                    row_ids, token, now, now + timedelta(seconds=CLAIM_SECONDS)
                )
            dispatched = 0
            for row in rows:
                try:
                    if await self._dispatch_row(row, token):
                        dispatched += 1
                except Exception as exc:
                    _log.exception(
                        "outbox_event_dispatch_failed",
                        event_type=row.event_type,
                        row_id=str(row.id),
                    )
                    await self._failed(row, token, f"{type(exc).__name__}: {exc}")
        except asyncio.CancelledError:
            raise  # `stop` hands the claim back
        else:
            self._claims.discard(token)
        return dispatched

    async def _dispatch_row(self, row: OutboxEvent, token: uuid.UUID) -> bool:
        try:
            event = rebuild(row)
        except ValueError as exc:
            await self._failed(row, token, str(exc))
            return False
        # In process first (sockets wait on it), then webhooks: at least once for
        # subscribers, exactly once for webhooks (the mark and the deliveries commit together).
        await self.platform.events.publish(event)
        async with self.platform.write_transaction() as session:
            marked = await OutboxRepository(session).mark_dispatched(row.id, token, utcnow())
            if marked:
                await WebhookFanout(session, self.platform.settings).deliver(event)
            signals = take_pending_events(session.info)
        await self._publish_signals(signals)
        return marked

    async def _failed(self, row: OutboxEvent, token: uuid.UUID, error: str) -> None:
        now = utcnow()
        async with self.platform.write_transaction() as session:
            outbox = OutboxRepository(session)
            if row.dispatch_attempts >= MAX_DISPATCH_ATTEMPTS:
                _log.error(
                    "outbox_event_given_up",
                    event_type=row.event_type,
                    row_id=str(row.id),
                    attempts=row.dispatch_attempts,
                    error=error,
                )
                await outbox.mark_dispatched(row.id, token, now, error=f"given up: {error}")
            else:
                await outbox.release(row.id, token, now, error)

    async def _publish_signals(self, signals: list[BaseEvent]) -> None:
        # What the transaction recorded besides durable events: the delivery jobs' wake-ups.
        for signal in signals:
            await self.platform.events.publish(signal)

    async def schedule_prune(self) -> None:
        """Queue today's `webhooks.prune` job (once a day per process; the key makes it one
        job however many processes ask)."""
        today = utcnow().date()
        if self._prune_scheduled_on == today:
            return
        settings = self.platform.settings
        key = (
            f"{PRUNE_KIND}:{today.isoformat()}:{settings.outbox_retention_hours:g}h:"
            f"{settings.webhook_delivery_retention_days}d"
        )
        async with self.platform.write_transaction() as session:
            await JobService(
                session, None, default_max_attempts=settings.job_default_max_attempts
            ).submit(
                PRUNE_KIND,
                PruneInput(
                    outbox_retention_hours=settings.outbox_retention_hours,
                    delivery_retention_days=settings.webhook_delivery_retention_days,
                ),
                idempotency_key=key,
                priority=-10,
            )
            signals = take_pending_events(session.info)
        await self._publish_signals(signals)
        self._prune_scheduled_on = today

    async def _on_job_finished(self, event: BaseEvent) -> None:
        """A delivery job that ended without recording its delivery (its worker was lost on
        the last attempt, or an administrator cancelled it): the delivery has failed."""
        assert isinstance(event, JobFinishedEvent)
        if event.kind != DELIVER_KIND or event.status == "succeeded":
            return
        reason = event.error_message or event.error_code or event.status
        async with self.platform.write_transaction() as session:
            await DeliveryAttempts(session, self.platform.field_cipher).give_up_for_job(
                event.job_id, f"the delivery job {event.status}: {reason}"
            )


def dispatcher_info(dispatcher: OutboxDispatcher) -> dict[str, Any]:
    """The `info` a platform's session factories carry, so commits reach its dispatcher."""
    return {DISPATCHER_KEY: dispatcher}
