"""What a handler gets: its job's identity, the platform, and the progress point where a
cancelled job stops."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.jobs.errors import JobCancelled

if TYPE_CHECKING:
    from creativeflow.platform import Platform

OnSuccess = Callable[[AsyncSession], Awaitable[None]]


@dataclass
class JobContext:
    job_id: uuid.UUID
    kind: str
    owner_id: uuid.UUID | None  # None for the platform's own jobs
    subject_type: str | None
    subject_id: uuid.UUID | None
    attempt: int
    platform: Platform
    # Set by the runner: writes the progress and says whether cancellation was asked for.
    report: Callable[[float, str], Awaitable[None]]
    success_writes: list[OnSuccess] = field(default_factory=list)

    async def progress(self, fraction: float, message: str = "") -> None:
        """Record progress (0..1). Raises `JobCancelled` when the job was cancelled: the
        handler should let it propagate."""
        await self.report(min(1.0, max(0.0, fraction)), message[:500])

    def on_success(self, write: OnSuccess) -> None:
        """Run `write(session)` in the transaction that records the job's success: rows the
        job made (images, usage) exist exactly when the job succeeded."""
        self.success_writes.append(write)


@dataclass
class SyncJobContext:
    """The context of a CPU-heavy handler, which runs in a worker thread."""

    job: JobContext
    loop: asyncio.AbstractEventLoop
    abandoned: bool = False

    @property
    def job_id(self) -> uuid.UUID:
        return self.job.job_id

    @property
    def owner_id(self) -> uuid.UUID | None:
        return self.job.owner_id

    @property
    def settings(self) -> Any:
        return self.job.platform.settings

    def progress(self, fraction: float, message: str = "") -> None:
        """Blocks this thread until the progress is written; raises `JobCancelled` as the async
        form does, and also once the runner gave up on the attempt (time limit)."""
        if self.abandoned:
            raise JobCancelled
        future = asyncio.run_coroutine_threadsafe(self.job.progress(fraction, message), self.loop)
        future.result()

    def on_success(self, write: OnSuccess) -> None:
        self.job.on_success(write)
