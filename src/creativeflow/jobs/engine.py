"""The job engine of one process: how jobs are woken, who runs them, and the sweeper.

Embedded (no CELERY_BROKER_URL): the API process runs jobs itself, JOB_CONCURRENCY at a time,
woken in process and polling the table once a second for retries that came due. With
CELERY_BROKER_URL: every submitted job sends a wake-up message and `creativeflow worker`
processes run the jobs; the API process runs none. Both modes sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from creativeflow.jobs.events import JobQueuedEvent
from creativeflow.jobs.kinds import load_job_modules
from creativeflow.jobs.runner import JobRunner, new_worker_id
from creativeflow.jobs.sweeper import JobSweeper, stop_task
from creativeflow.jobs.wakers import CeleryWaker, LocalWaker, Waker
from creativeflow.shared.core.logging import get_logger
from creativeflow.shared.messaging.events import BaseEvent

if TYPE_CHECKING:
    from creativeflow.platform import Platform

_log = get_logger("creativeflow.jobs")
POLL_SECONDS = 1.0


class JobEngine:
    def __init__(self, platform: Platform, *, role: str = "api") -> None:
        settings = platform.settings
        load_job_modules(settings.job_modules)
        self.platform = platform
        self.local = settings.celery_broker_url is None
        self.waker: Waker
        if self.local:
            self.waker = LocalWaker()
        else:
            from creativeflow.jobs.celery_app import create_celery

            self.waker = CeleryWaker(create_celery(settings))
        self.cpu_executor = ThreadPoolExecutor(
            max_workers=settings.job_cpu_threads, thread_name_prefix="job-cpu"
        )
        self.runner = JobRunner(
            platform, worker_id=new_worker_id(role), cpu_executor=self.cpu_executor
        )
        self.sweeper = JobSweeper(platform, self.waker)
        self.concurrency = settings.job_concurrency
        self._tasks: list[asyncio.Task[None]] = []
        platform.events.subscribe(JobQueuedEvent.event_type, self._on_queued)

    async def _on_queued(self, _event: BaseEvent) -> None:
        await self.waker.wake()

    async def start(self) -> None:
        """Start the sweeper and, when embedded, the runner (the app's lifespan calls this)."""
        self._tasks.append(
            asyncio.create_task(
                self.sweeper.run_forever(self.platform.settings.job_sweep_seconds),
                name="jobs-sweeper",
            )
        )
        if self.local:
            self._tasks.append(asyncio.create_task(self._run_local(), name="jobs-runner"))

    async def stop(self) -> None:
        for task in reversed(self._tasks):
            await stop_task(task)
        self._tasks.clear()
        self.cpu_executor.shutdown(wait=False, cancel_futures=True)

    async def drain(self) -> int:
        """Run every due job now, one after another (tests and one-off scripts)."""
        return await self.runner.drain()

    async def _run_local(self) -> None:
        assert isinstance(self.waker, LocalWaker)
        doorbell = self.waker.event
        active: set[asyncio.Task[None]] = set()
        try:
            while True:
                doorbell.clear()
                while len(active) < self.concurrency:
                    try:
                        job = await self.runner.claim()
                    except Exception:
                        _log.exception("jobs_claim_failed")
                        job = None
                    if job is None:
                        break
                    task = asyncio.create_task(self.runner.execute(job), name=f"job-{job.id}")
                    active.add(task)
                    task.add_done_callback(active.discard)
                    task.add_done_callback(lambda _t: doorbell.set())
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_SECONDS):
                        await doorbell.wait()
        finally:
            for task in list(active):
                task.cancel()  # each hands its job back to the queue
            if active:
                await asyncio.gather(*active, return_exceptions=True)
