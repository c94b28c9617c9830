"""Wake-ups: how a worker learns that a job is waiting. A wake-up carries no job: the woken
worker claims whichever job is next in fair-share order, so a lost, doubled or late message
never runs the wrong job or a job twice."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from celery import Celery

WAKE_TASK = "creativeflow.jobs.wake"
JOBS_QUEUE = "creativeflow.jobs"


class Waker(Protocol):
    # Whether a wake-up can be lost on the way (a broker), so the sweeper must re-send them.
    resends_lost: bool

    async def wake(self, count: int = 1) -> None: ...


class LocalWaker:
    """The in-process runner's doorbell."""

    resends_lost = False

    def __init__(self) -> None:
        self.event = asyncio.Event()

    async def wake(self, count: int = 1) -> None:
        self.event.set()


class CeleryWaker:
    """One Celery message per queued job; `creativeflow worker` processes consume them."""

    resends_lost = True

    def __init__(self, app: Celery) -> None:
        self.app = app

    async def wake(self, count: int = 1) -> None:
        if count > 0:
            # kombu's publish is blocking I/O: never on the event loop.
            await asyncio.to_thread(self._send, count)

    def _send(self, count: int) -> None:
        with self.app.producer_or_acquire() as producer:
            for _ in range(count):
                self.app.send_task(WAKE_TASK, queue=JOBS_QUEUE, producer=producer)
