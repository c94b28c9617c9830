"""Runs jobs: claims the next one in fair-share order, runs its handler under a time limit with a
heartbeat, and records how it ended.

The same runner serves both modes: the API process's in-process pool (JOB_CONCURRENCY at a
time) and each Celery worker process (one job per wake-up message). The row is the source of
truth: a claim is a conditional update, and every later write names this worker, so a worker
that lost its job writes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from pydantic import ValidationError

from creativeflow.db.types import utcnow
from creativeflow.jobs.context import JobContext, SyncJobContext
from creativeflow.jobs.errors import JobCancelled, JobFailed, JobLost
from creativeflow.jobs.events import JobFinishedEvent
from creativeflow.jobs.groups import GroupSettled, settle_group
from creativeflow.jobs.kinds import (
    AsyncHandler,
    JobKind,
    JobKindRegistry,
    SyncHandler,
    job_kinds,
)
from creativeflow.jobs.models import Job, JobStatus
from creativeflow.jobs.repository import JobRepository
from creativeflow.providers.errors import ProviderError, ProviderRateLimited
from creativeflow.shared.core.logging import get_logger
from creativeflow.shared.messaging.bus import record_event

if TYPE_CHECKING:
    from creativeflow.platform import Platform

_log = get_logger("creativeflow.jobs")
# Claims try a few candidates: another worker may take the first between our read and update.
_CLAIM_CANDIDATES = 5


@dataclass(frozen=True, slots=True)
class JobProgress:
    """A progress report, written and committed: what progress listeners are told."""

    job_id: uuid.UUID
    kind: str
    owner_id: uuid.UUID | None
    subject_type: str | None
    subject_id: uuid.UUID | None
    progress: float
    message: str


# Told of every committed progress report, after its transaction (realtime pushes it to
# sockets). Awaited in order, so reports reach listeners in the order they were written; a
# listener must be quick and must not raise (a failure is logged, never the job's).
ProgressListener = Callable[[JobProgress], Awaitable[None]]


def new_worker_id(role: str) -> str:
    return f"{role}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class _Failure(Exception):
    def __init__(self, code: str, message: str, *, retryable: bool, wait: float | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.wait = wait


class JobRunner:
    def __init__(
        self,
        platform: Platform,
        *,
        worker_id: str,
        cpu_executor: Executor | None = None,
        kinds: JobKindRegistry = job_kinds,
    ) -> None:
        self.platform = platform
        self.worker_id = worker_id
        self.cpu_executor = cpu_executor
        self.kinds = kinds
        settings = platform.settings
        self.heartbeat_seconds = settings.job_heartbeat_seconds
        self.progress_listeners: list[ProgressListener] = []

    # -- claiming ----------------------------------------------------------------------------

    async def claim(self) -> Job | None:
        now = utcnow()
        async with self.platform.write_transaction() as session:
            jobs = JobRepository(session)
            for job_id in await jobs.claim_candidates(now, _CLAIM_CANDIDATES):
                if await jobs.claim(job_id, self.worker_id, now):
                    return await session.get(Job, job_id, populate_existing=True)
        return None

    async def run_next(self) -> bool:
        """Claim one job and run it to its end; False when none was waiting."""
        job = await self.claim()
        if job is None:
            return False
        await self.execute(job)
        return True

    async def drain(self, limit: int = 1000) -> int:
        """Run queued jobs one after another until none is due (tests, one-off runs)."""
        ran = 0
        while ran < limit and await self.run_next():
            ran += 1
        return ran

    # -- running -------------------------------------------------------------------------------

    async def execute(self, job: Job) -> None:
        log = _log.bind(job_id=str(job.id), kind=job.kind, attempt=job.attempts)
        kind = self.kinds.get(job.kind)
        if kind is None:
            await self._fail(job, "UNKNOWN_JOB_KIND", f"No worker knows job kind {job.kind!r}")
            log.warning("job_unknown_kind")
            return
        try:
            data = kind.input_model.model_validate(job.input)
        except ValidationError as exc:
            await self._fail(job, "INVALID_JOB_INPUT", f"The job's input is invalid: {exc}")
            return
        context = JobContext(
            job_id=job.id,
            kind=job.kind,
            owner_id=job.owner_id,
            subject_type=job.subject_type,
            subject_id=job.subject_id,
            attempt=job.attempts,
            platform=self.platform,
            report=lambda fraction, message: self._report(job, fraction, message),
        )
        log.info("job_started")
        started = asyncio.get_running_loop().time()
        try:
            result = await self._run_attempt(kind, context, data, job)
        except JobLost:
            log.warning("job_lost", detail="another worker holds it now; nothing written")
            return
        except JobCancelled:
            await self._end(job, JobStatus.CANCELLED, code="CANCELLED", message="Cancelled")
            log.info("job_cancelled")
            return
        except _Failure as failure:
            await self._failed_attempt(job, kind, failure)
            log.info("job_failed", code=failure.code, retryable=failure.retryable)
            return
        except asyncio.CancelledError:
            # This worker is stopping: hand the job back at once rather than after the
            # heartbeat times out.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._release(job))
            raise
        if await self._succeed(job, result, context):
            elapsed = asyncio.get_running_loop().time() - started
            log.info("job_succeeded", seconds=round(elapsed, 3))
        else:
            log.warning("job_lost", detail="finished after losing the job; result dropped")

    async def _run_attempt(
        self, kind: JobKind, context: JobContext, data: Any, job: Job
    ) -> dict[str, Any]:
        """The handler's result; everything else becomes JobCancelled, JobLost or _Failure."""
        handler = asyncio.create_task(self._call(kind, context, data))
        stop: list[type[Exception]] = []
        beat = asyncio.create_task(self._beat(job.id, handler, stop))
        try:
            async with asyncio.timeout(kind.time_limit_seconds):
                result = await handler
        except asyncio.CancelledError:
            if stop:  # the heartbeat stopped the handler: cancellation asked for, or lost
                raise stop[0] from None
            raise
        except TimeoutError:
            raise _Failure(
                "TIME_LIMIT_EXCEEDED",
                f"The job did not finish within {kind.time_limit_seconds:g} s",
                retryable=False,
            ) from None
        except (JobCancelled, JobLost):
            raise
        except ProviderError as exc:
            wait = exc.retry_after if isinstance(exc, ProviderRateLimited) else None
            raise _Failure(exc.code, exc.message, retryable=exc.retryable, wait=wait) from exc
        except JobFailed as exc:
            raise _Failure(exc.code, exc.message, retryable=exc.retryable) from exc
        except Exception as exc:
            _log.exception("job_handler_error", job_id=str(job.id), kind=job.kind)
            raise _Failure(
                "INTERNAL_ERROR",
                f"The job failed unexpectedly ({type(exc).__name__})",
                retryable=False,
            ) from exc
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        if not isinstance(result, dict):
            raise _Failure(
                "INTERNAL_ERROR", "The job's handler returned no result object", retryable=False
            )
        return result

    async def _call(self, kind: JobKind, context: JobContext, data: Any) -> Any:
        if not kind.cpu_heavy:
            return await cast(AsyncHandler, kind.handler)(context, data)
        loop = asyncio.get_running_loop()
        threaded = SyncJobContext(context, loop)
        handler = cast(SyncHandler, kind.handler)
        try:
            return await loop.run_in_executor(self.cpu_executor, handler, threaded, data)
        except asyncio.CancelledError:
            threaded.abandoned = True  # the thread stops at its next progress point
            raise

    async def _beat(
        self, job_id: uuid.UUID, handler: asyncio.Task[Any], stop: list[type[Exception]]
    ) -> None:
        """Keep the claim alive; stop the handler when the job is cancelled or taken away,
        even in the middle of a long provider call."""
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            async with self.platform.write_transaction() as session:
                cancel = await JobRepository(session).heartbeat(job_id, self.worker_id, utcnow())
            if cancel is None or cancel:
                stop.append(JobLost if cancel is None else JobCancelled)
                handler.cancel()
                return

    async def _report(self, job: Job, fraction: float, message: str) -> None:
        async with self.platform.write_transaction() as session:
            cancel = await JobRepository(session).report_progress(
                job.id, self.worker_id, fraction, message, utcnow()
            )
        if cancel is None:
            raise JobLost
        # Committed: now (outside the transaction) tell the listeners.
        await self._announce_progress(
            JobProgress(
                job_id=job.id,
                kind=job.kind,
                owner_id=job.owner_id,
                subject_type=job.subject_type,
                subject_id=job.subject_id,
                progress=fraction,
                message=message,
            )
        )
        if cancel:
            raise JobCancelled

    async def _announce_progress(self, progress: JobProgress) -> None:
        for listener in self.progress_listeners:
            try:
                await listener(progress)
            except Exception:
                _log.exception("job_progress_listener_failed", job_id=str(progress.job_id))

    # -- endings -------------------------------------------------------------------------------

    async def _succeed(self, job: Job, result: dict[str, Any], context: JobContext) -> bool:
        try:
            async with self.platform.write_transaction() as session:
                await self._lock_group(session, job)
                for write in context.success_writes:
                    await write(session)
                if not await JobRepository(session).finish(
                    job.id, self.worker_id, utcnow(), status=JobStatus.SUCCEEDED, result=result
                ):
                    raise JobLost  # rolls back what the job wrote
                # Durable: written to the outbox by this very transaction.
                record_event(
                    session.info, JobFinishedEvent.of(job, JobStatus.SUCCEEDED, result=result)
                )
                group = await self._settle_group(session, job)
        except JobLost:
            return False
        except Exception as exc:
            _log.exception("job_result_not_stored", job_id=str(job.id))
            await self._fail(
                job,
                "INTERNAL_ERROR",
                f"The job's result could not be stored ({type(exc).__name__})",
            )
            return True
        await self._after_end(group)
        return True

    @staticmethod
    async def _lock_group(session: Any, job: Job) -> None:
        """A child's ending locks its group first, as cancelling the group does (the group,
        then its children): the two never wait on each other in opposite orders."""
        if job.parent_id is not None:
            await JobRepository(session).lock_group(job.parent_id)

    async def _settle_group(self, session: Any, job: Job) -> GroupSettled | None:
        if job.parent_id is None:
            return None
        return await settle_group(session, job.parent_id, utcnow())

    async def _after_end(self, group: GroupSettled | None) -> None:
        """After a job's final write committed: dispatch its events (at once: a Celery pool
        process runs no dispatcher of its own) and tell listeners of its group's progress."""
        await self.platform.outbox.dispatch_committed()
        if group is not None and not group.ended:
            parent = group.group
            await self._announce_progress(
                JobProgress(
                    job_id=parent.id,
                    kind=parent.kind,
                    owner_id=parent.owner_id,
                    subject_type=parent.subject_type,
                    subject_id=parent.subject_id,
                    progress=group.progress,
                    message=group.message,
                )
            )

    async def _failed_attempt(self, job: Job, kind: JobKind, failure: _Failure) -> None:
        if failure.retryable and job.attempts < job.max_attempts:
            delay = kind.retries.delay(job.attempts)
            if failure.wait is not None:
                delay = max(delay, failure.wait)
            now = utcnow()
            async with self.platform.write_transaction() as session:
                await JobRepository(session).requeue(
                    job.id,
                    self.worker_id,
                    now,
                    run_after=now + timedelta(seconds=delay),
                    error_code=failure.code,
                    error_message=f"{failure.message} (attempt {job.attempts} of "
                    f"{job.max_attempts}; retrying in {delay:.0f} s)",
                )
            return
        await self._fail(job, failure.code, failure.message)

    async def _fail(self, job: Job, code: str, message: str) -> None:
        await self._end(job, JobStatus.FAILED, code=code, message=message)

    async def _end(self, job: Job, status: JobStatus, *, code: str, message: str) -> None:
        group = None
        async with self.platform.write_transaction() as session:
            await self._lock_group(session, job)
            if await JobRepository(session).finish(
                job.id,
                self.worker_id,
                utcnow(),
                status=status,
                error_code=code,
                error_message=message,
            ):
                record_event(
                    session.info,
                    JobFinishedEvent.of(job, status, error_code=code, error_message=message),
                )
                group = await self._settle_group(session, job)
        await self._after_end(group)

    async def _release(self, job: Job) -> None:
        async with self.platform.write_transaction() as session:
            await JobRepository(session).release(job.id, self.worker_id, utcnow())
