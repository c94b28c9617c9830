"""The sweeper: what a crash or a lost message left behind, put right.

- a running job whose worker stopped beating (killed, cut off) is queued again while it has
  attempts left, else failed with WORKER_LOST;
- a queued job whose wake-up seems lost (broker mode) gets another one, as does a retry whose
  backoff has passed;
- once a day, a `jobs.prune` job is queued;
- every periodic schedule modules registered (`kinds.periodic`) submits what has fallen due.

Every step is a conditional update, so any number of sweepers (each API process, each
`creativeflow worker`) may run at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from creativeflow.db.types import utcnow
from creativeflow.jobs.events import JobFinishedEvent
from creativeflow.jobs.groups import settle_group
from creativeflow.jobs.kinds import schedules
from creativeflow.jobs.maintenance import PRUNE_KIND, PruneInput
from creativeflow.jobs.models import JobStatus
from creativeflow.jobs.repository import JobRepository
from creativeflow.jobs.service import JobService
from creativeflow.jobs.wakers import Waker
from creativeflow.shared.core.logging import get_logger
from creativeflow.shared.messaging.bus import record_event

if TYPE_CHECKING:
    from creativeflow.platform import Platform

_log = get_logger("creativeflow.jobs")
_BATCH = 100


@dataclass(frozen=True, slots=True)
class SweepReport:
    requeued: int = 0
    failed: int = 0
    woken: int = 0
    prune_scheduled: bool = False
    scheduled: int = 0


class JobSweeper:
    def __init__(self, platform: Platform, waker: Waker) -> None:
        self.platform = platform
        self.waker = waker
        settings = platform.settings
        self.heartbeat_timeout = timedelta(seconds=settings.job_heartbeat_timeout_seconds)
        self.resend_after = timedelta(seconds=settings.job_wakeup_resend_seconds)
        self.retention_days = settings.job_retention_days

    async def sweep(self) -> SweepReport:
        requeued, failed = await self._release_lost()
        woken = await self._resend_wakeups()
        prune_scheduled = await self._schedule_prune()
        scheduled = await self._run_schedules()
        if prune_scheduled or scheduled:
            await self.waker.wake(max(1, scheduled))
        report = SweepReport(requeued, failed, woken, prune_scheduled, scheduled)
        if requeued or failed or woken:
            _log.info("jobs_swept", requeued=requeued, failed=failed, woken=woken)
        return report

    async def _release_lost(self) -> tuple[int, int]:
        now = utcnow()
        requeued = failed = 0
        async with self.platform.write_transaction() as session:
            jobs = JobRepository(session)
            for job in await jobs.lost(now - self.heartbeat_timeout, _BATCH):
                retry = job.attempts < job.max_attempts
                message = (
                    f"The worker running attempt {job.attempts} ({job.worker_id}) stopped "
                    f"answering; "
                    + ("retrying" if retry else f"no attempts left of {job.max_attempts}")
                )
                if job.parent_id is not None:
                    await jobs.lock_group(job.parent_id)  # the group first, as everywhere
                if await jobs.release_lost(job, now, retry=retry, message=message):
                    if retry:
                        requeued += 1
                    else:
                        failed += 1
                        record_event(
                            session.info,
                            JobFinishedEvent.of(
                                job,
                                JobStatus.FAILED,
                                error_code="WORKER_LOST",
                                error_message=message,
                            ),
                        )
                        if job.parent_id is not None:
                            await settle_group(session, job.parent_id, now)
        if requeued and not self.waker.resends_lost:
            await self.waker.wake(requeued)
        return requeued, failed

    async def _resend_wakeups(self) -> int:
        if not self.waker.resends_lost:
            return 0
        now = utcnow()
        async with self.platform.write_transaction() as session:
            jobs = JobRepository(session)
            due = await jobs.needing_wakeup(now, now - self.resend_after, _BATCH)
            await jobs.mark_woken(due, now)
        await self.waker.wake(len(due))
        return len(due)

    async def _schedule_prune(self) -> bool:
        # One a day (per retention setting: a changed setting is a different request).
        key = f"{PRUNE_KIND}:{utcnow().date().isoformat()}:{self.retention_days}d"
        async with self.platform.write_transaction() as session:
            service = JobService(
                session, None, default_max_attempts=self.platform.settings.job_default_max_attempts
            )
            _, created = await service.submit(
                PRUNE_KIND,
                PruneInput(older_than_days=self.retention_days),
                idempotency_key=key,
                priority=-10,
            )
        return created

    async def _run_schedules(self) -> int:
        submitted = 0
        for schedule in schedules.all():
            try:
                submitted += await schedule.handler(self.platform)
            except Exception:  # one module's schedule must not stop the others
                _log.exception("jobs_schedule_failed", schedule=schedule.name)
        return submitted

    async def run_forever(self, interval: float) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # a database hiccup must not end the sweeper
                _log.exception("jobs_sweep_failed")
            await asyncio.sleep(interval)


async def stop_task(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
