"""Celery, as the wake-up channel of the job table (CELERY_BROKER_URL: Redis or RabbitMQ).

A message says only "a job is waiting". The worker process that takes it claims the next job
in fair-share order from the table and runs it on the process's own event loop, then acks
(late acks, prefetch 1: a worker holds one message at a time, and one it dies holding goes
back to the broker). Whether the job runs again is decided by the row, not the broker: the
sweeper retries a job whose worker died, and a redelivered message just claims whatever is
next, or nothing.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from celery import Celery, signals

from creativeflow.jobs.wakers import JOBS_QUEUE, WAKE_TASK
from creativeflow.settings import Settings, get_settings

if TYPE_CHECKING:
    from creativeflow.platform import Platform


def create_celery(settings: Settings) -> Celery:
    app = Celery("creativeflow", broker=settings.celery_broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=JOBS_QUEUE,
        task_queues=None,
        broker_connection_retry_on_startup=True,
        # The job row, not the broker, decides redelivery; this only bounds how long Redis
        # keeps a message a dead worker held before handing it out again.
        broker_transport_options={"visibility_timeout": 3600},
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=True,  # for Flower
        task_send_sent_event=True,
    )
    app.task(name=WAKE_TASK, bind=False, ignore_result=True)(_wake)
    return app


class _ProcessRuntime:
    """One per worker process, built on its first message (after the fork): an event loop
    kept for the life of the process, the platform and the job engine."""

    def __init__(self) -> None:
        from creativeflow.platform import build_platform

        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.platform: Platform = build_platform(get_settings(), role="worker")

    def run_one(self) -> bool:
        return self.loop.run_until_complete(self.platform.jobs.runner.run_next())


_runtime: _ProcessRuntime | None = None
_runtime_lock = threading.Lock()


def _wake(*_args: Any, **_kwargs: Any) -> bool:
    """Claim and run the next job; False when there was none (a duplicate wake-up)."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = _ProcessRuntime()
        return _runtime.run_one()


class WorkerSweeper:
    """The sweeper, in the worker's main process: a thread with its own loop and platform,
    so lost jobs are recovered even while no API process runs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.thread = threading.Thread(target=self._run, name="jobs-sweeper", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        asyncio.run(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        from creativeflow.platform import build_platform

        platform = build_platform(self.settings, role="sweeper")
        try:
            # The outbox's dispatcher too: it dispatches what the sweeps record (WORKER_LOST)
            # and sweeps up events left undispatched, even while no API process runs.
            await platform.outbox.start()
            await platform.jobs.sweeper.run_forever(self.settings.job_sweep_seconds)
        finally:
            await platform.close()


def install_worker_sweeper(settings: Settings) -> None:
    @signals.worker_ready.connect(weak=False)
    def start_sweeper(**_kwargs: Any) -> None:
        WorkerSweeper(settings).start()
