"""Job queries: the only place in the module that builds SQL.

Every change of a running job is a conditional update naming the worker that holds it, so a
worker that lost its job (heartbeat expired, job handed to another) can never overwrite it; a
claim is a conditional update from `queued`, so one job is run by one worker at a time whatever
the broker delivers.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    delete,
    func,
    or_,
    select,
    true,
    update,
)

from creativeflow.access import subject_types
from creativeflow.db.repository import Repository
from creativeflow.identity.principal import Principal
from creativeflow.jobs.models import FINISHED_STATUSES, Job, JobStatus


@dataclass(frozen=True, slots=True)
class JobFilters:
    statuses: Sequence[JobStatus] = ()
    kinds: Sequence[str] = ()
    subject_type: str | None = None
    subject_id: uuid.UUID | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    parent_id: uuid.UUID | None = None


SORTS = {
    "created_at": (Job.created_at, Job.id),
    "updated_at": (Job.updated_at, Job.id),
    "queued_at": (Job.queued_at, Job.id),
    "finished_at": (Job.finished_at, Job.id),
    "priority": (Job.priority, Job.id),
}


def _turn_order() -> Select[Any]:
    """Queued jobs that may start now, each with the key that orders claims (fair share).

    A job's turn is its place among its owner's queued jobs (priority first, then age) plus
    the jobs that owner already has running: everybody's first job comes before anybody's
    second, so one owner's 500 queued jobs do not starve another owner's one, and an owner
    with work running waits behind owners with none. Ties go to the older job."""
    running = (
        select(Job.owner_id, func.count().label("running"))
        # Held by a worker: a group (running while its children are) holds none.
        .where(Job.status == JobStatus.RUNNING, Job.worker_id.is_not(None))
        .group_by(Job.owner_id)
        .subquery()
    )
    place = func.row_number().over(
        partition_by=Job.owner_id, order_by=(Job.priority.desc(), Job.queued_at, Job.id)
    )
    queued = (
        select(Job.id, Job.owner_id, Job.queued_at, Job.run_after, place.label("place"))
        .where(Job.status == JobStatus.QUEUED)
        .subquery()
    )
    turn = (queued.c.place + func.coalesce(running.c.running, 0)).label("turn")
    return select(queued.c.id, turn, queued.c.queued_at, queued.c.run_after).outerjoin(
        running, running.c.owner_id == queued.c.owner_id
    )


class JobRepository(Repository[Job]):
    model = Job

    # -- reads for the API -------------------------------------------------------------------

    def visible_to(self, principal: Principal) -> ColumnElement[bool]:
        """The one filter every read for a caller starts from: their own jobs, jobs of subjects
        they may read; an instance administrator sees every job."""
        if principal.is_admin:
            return true()
        clauses: list[ColumnElement[bool]] = [Job.owner_id == principal.user_id]
        for name, kind in subject_types().items():
            clauses.append(
                and_(Job.subject_type == name, Job.subject_id.in_(kind.readable(principal)))
            )
        return or_(*clauses)

    async def visible(self, principal: Principal, job_id: uuid.UUID) -> Job | None:
        stmt = select(Job).where(Job.id == job_id, self.visible_to(principal))
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list_page(
        self,
        principal: Principal,
        filters: JobFilters,
        *,
        sort: str,
        descending: bool,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[Job], int]:
        stmt = select(Job).where(self.visible_to(principal), *self._filters(filters))
        columns = SORTS[sort]
        stmt = stmt.order_by(*(c.desc() if descending else c.asc() for c in columns))
        return await self.page(stmt, limit=limit, offset=offset)

    @staticmethod
    def _filters(filters: JobFilters) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        if filters.statuses:
            clauses.append(Job.status.in_(list(filters.statuses)))
        if filters.kinds:
            clauses.append(Job.kind.in_(filters.kinds))
        if filters.subject_type is not None:
            clauses.append(Job.subject_type == filters.subject_type)
        if filters.subject_id is not None:
            clauses.append(Job.subject_id == filters.subject_id)
        if filters.created_after is not None:
            clauses.append(Job.created_at >= filters.created_after)
        if filters.created_before is not None:
            clauses.append(Job.created_at < filters.created_before)
        if filters.parent_id is not None:
            clauses.append(Job.parent_id == filters.parent_id)
        return clauses

    async def by_idempotency_key(self, owner_id: uuid.UUID | None, key: str) -> Job | None:
        owner = Job.owner_id.is_(None) if owner_id is None else Job.owner_id == owner_id
        stmt = select(Job).where(owner, Job.idempotency_key == key)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def queue_position(self, job_id: uuid.UUID) -> int | None:
        """1 for the job claimed next; None when the job is not queued."""
        order = _turn_order().subquery()
        position = func.row_number().over(order_by=(order.c.turn, order.c.queued_at, order.c.id))
        ranked = select(order.c.id, position.label("position")).subquery()
        stmt = select(ranked.c.position).where(ranked.c.id == job_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    # -- the runner --------------------------------------------------------------------------

    async def claim_candidates(self, now: datetime, limit: int) -> list[uuid.UUID]:
        order = _turn_order().subquery()
        stmt = (
            select(order.c.id)
            .where(order.c.run_after <= now)
            .order_by(order.c.turn, order.c.queued_at, order.c.id)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def claim(self, job_id: uuid.UUID, worker_id: str, now: datetime) -> bool:
        stmt = (
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
            .values(
                status=JobStatus.RUNNING,
                worker_id=worker_id,
                heartbeat_at=now,
                started_at=now,
                attempts=Job.attempts + 1,
                sequence=Job.sequence + 1,
                progress=0.0,
                progress_message=None,
                updated_at=now,
            )
        )
        return (await self.session.execute(stmt)).rowcount == 1  # type: ignore[attr-defined]

    def _held(self, job_id: uuid.UUID, worker_id: str) -> list[ColumnElement[bool]]:
        return [Job.id == job_id, Job.worker_id == worker_id, Job.status == JobStatus.RUNNING]

    async def report_progress(
        self, job_id: uuid.UUID, worker_id: str, progress: float, message: str, now: datetime
    ) -> bool | None:
        """Record progress (and a heartbeat). Whether cancellation was asked for; None when
        this worker no longer holds the job."""
        stmt = (
            update(Job)
            .where(*self._held(job_id, worker_id))
            .values(
                progress=progress,
                progress_message=message or None,
                heartbeat_at=now,
                sequence=Job.sequence + 1,
                updated_at=now,
            )
            .returning(Job.cancel_requested)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def heartbeat(self, job_id: uuid.UUID, worker_id: str, now: datetime) -> bool | None:
        """Like `report_progress` without news: the sequence does not move."""
        stmt = (
            update(Job)
            .where(*self._held(job_id, worker_id))
            .values(heartbeat_at=now)
            .returning(Job.cancel_requested)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def finish(
        self,
        job_id: uuid.UUID,
        worker_id: str,
        now: datetime,
        *,
        status: JobStatus,
        result: dict[str, Any] | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> bool:
        values: dict[str, Any] = {
            "status": status,
            "finished_at": now,
            "updated_at": now,
            "sequence": Job.sequence + 1,
            "worker_id": None,
            "heartbeat_at": None,
            "result": result,
            "error_code": error_code,
            "error_message": error_message,
        }
        if status is JobStatus.SUCCEEDED:
            values.update(progress=1.0)
        stmt = update(Job).where(*self._held(job_id, worker_id)).values(**values)
        return (await self.session.execute(stmt)).rowcount == 1  # type: ignore[attr-defined]

    async def requeue(
        self,
        job_id: uuid.UUID,
        worker_id: str,
        now: datetime,
        *,
        run_after: datetime,
        error_code: str,
        error_message: str,
    ) -> bool:
        """Put a job that failed an attempt back in the queue, to run again after its backoff;
        the failure stays visible on the row until the next attempt ends."""
        stmt = (
            update(Job)
            .where(*self._held(job_id, worker_id))
            .values(
                status=JobStatus.QUEUED,
                worker_id=None,
                heartbeat_at=None,
                run_after=run_after,
                woken_at=None,
                sequence=Job.sequence + 1,
                updated_at=now,
                error_code=error_code,
                error_message=error_message,
            )
        )
        return (await self.session.execute(stmt)).rowcount == 1  # type: ignore[attr-defined]

    async def release(self, job_id: uuid.UUID, worker_id: str, now: datetime) -> bool:
        """Hand back a job this worker is stopping without finishing: queued again at once,
        and the interrupted attempt does not count."""
        stmt = (
            update(Job)
            .where(*self._held(job_id, worker_id))
            .values(
                status=JobStatus.QUEUED,
                worker_id=None,
                heartbeat_at=None,
                attempts=Job.attempts - 1,
                run_after=now,
                woken_at=None,
                sequence=Job.sequence + 1,
                updated_at=now,
            )
        )
        return (await self.session.execute(stmt)).rowcount == 1  # type: ignore[attr-defined]

    async def cancel_queued(self, job_id: uuid.UUID, now: datetime) -> bool:
        stmt = (
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
            .values(
                status=JobStatus.CANCELLED,
                cancel_requested=True,
                finished_at=now,
                updated_at=now,
                sequence=Job.sequence + 1,
                error_code="CANCELLED",
                error_message="Cancelled before it started",
            )
        )
        return (await self.session.execute(stmt)).rowcount == 1  # type: ignore[attr-defined]

    async def request_cancel(self, job_id: uuid.UUID, now: datetime) -> bool:
        stmt = (
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.RUNNING)
            .values(cancel_requested=True, updated_at=now, sequence=Job.sequence + 1)
        )
        return (await self.session.execute(stmt)).rowcount == 1  # type: ignore[attr-defined]

    # -- groups ------------------------------------------------------------------------------

    async def lock_group(self, parent_id: uuid.UUID) -> Job | None:
        """The group's row, locked until the transaction ends: children ending at the same
        time settle it one after the other, each counting the others' endings."""
        stmt = select(Job).where(Job.id == parent_id).with_for_update()
        return (
            await self.session.execute(stmt.execution_options(populate_existing=True))
        ).scalar_one_or_none()

    async def child_counts(self, parent_id: uuid.UUID) -> dict[JobStatus, int]:
        stmt = (
            select(Job.status, func.count()).where(Job.parent_id == parent_id).group_by(Job.status)
        )
        return {JobStatus(status): count for status, count in await self.session.execute(stmt)}

    async def cancel_queued_children(self, parent_id: uuid.UUID, now: datetime) -> Sequence[Job]:
        stmt = (
            update(Job)
            .where(Job.parent_id == parent_id, Job.status == JobStatus.QUEUED)
            .values(
                status=JobStatus.CANCELLED,
                cancel_requested=True,
                finished_at=now,
                updated_at=now,
                sequence=Job.sequence + 1,
                error_code="CANCELLED",
                error_message="Cancelled with its group before it started",
            )
            .returning(Job)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def request_cancel_children(self, parent_id: uuid.UUID, now: datetime) -> int:
        stmt = (
            update(Job)
            .where(Job.parent_id == parent_id, Job.status == JobStatus.RUNNING)
            .values(cancel_requested=True, updated_at=now, sequence=Job.sequence + 1)
        )
        return (await self.session.execute(stmt)).rowcount  # type: ignore[attr-defined,no-any-return]

    async def failed_children(self, parent_id: uuid.UUID) -> Sequence[Job]:
        """Children that failed or were cancelled, in the order they were submitted."""
        stmt = (
            select(Job)
            .where(
                Job.parent_id == parent_id,
                Job.status.in_([JobStatus.FAILED, JobStatus.CANCELLED]),
            )
            .order_by(Job.queued_at, Job.id)
        )
        return (await self.session.execute(stmt)).scalars().all()

    # -- the sweeper ---------------------------------------------------------------------------

    async def lost(self, heartbeat_before: datetime, limit: int) -> Sequence[Job]:
        stmt = (
            select(Job)
            .where(Job.status == JobStatus.RUNNING, Job.heartbeat_at < heartbeat_before)
            .order_by(Job.heartbeat_at)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def release_lost(self, job: Job, now: datetime, *, retry: bool, message: str) -> bool:
        """Take a job from a worker that stopped beating: back to the queue, or failed with
        WORKER_LOST; conditional on the very heartbeat that was seen expired."""
        values: dict[str, Any] = {
            "worker_id": None,
            "heartbeat_at": None,
            "updated_at": now,
            "sequence": Job.sequence + 1,
            "error_code": "WORKER_LOST",
            "error_message": message,
        }
        if retry:
            values.update(status=JobStatus.QUEUED, run_after=now, woken_at=None)
        else:
            values.update(status=JobStatus.FAILED, finished_at=now)
        stmt = (
            update(Job)
            .where(
                Job.id == job.id,
                Job.status == JobStatus.RUNNING,
                Job.worker_id == job.worker_id,
                Job.heartbeat_at == job.heartbeat_at,
            )
            .values(**values)
        )
        return (await self.session.execute(stmt)).rowcount == 1  # type: ignore[attr-defined]

    async def needing_wakeup(
        self, now: datetime, woken_before: datetime, limit: int
    ) -> list[uuid.UUID]:
        """Queued jobs that are due and whose last wake-up (if any) is older than allowed."""
        stmt = (
            select(Job.id)
            .where(
                Job.status == JobStatus.QUEUED,
                Job.run_after <= now,
                or_(Job.woken_at.is_(None), Job.woken_at < woken_before),
            )
            .order_by(Job.queued_at)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def mark_woken(self, job_ids: Sequence[uuid.UUID], now: datetime) -> None:
        if job_ids:
            await self.session.execute(update(Job).where(Job.id.in_(job_ids)).values(woken_at=now))

    async def prunable(
        self, finished_before: datetime, limit: int
    ) -> list[tuple[uuid.UUID, str, JobStatus, dict[str, Any] | None]]:
        """Up to `limit` jobs finished before the cut-off: id, kind, status and result."""
        stmt = (
            select(Job.id, Job.kind, Job.status, Job.result)
            .where(Job.status.in_(list(FINISHED_STATUSES)), Job.finished_at < finished_before)
            .order_by(Job.finished_at)
            .limit(limit)
        )
        return [tuple(row) for row in (await self.session.execute(stmt)).all()]  # type: ignore[misc]

    async def delete_finished(self, job_ids: Sequence[uuid.UUID]) -> int:
        if not job_ids:
            return 0
        stmt = delete(Job).where(Job.id.in_(job_ids), Job.status.in_(list(FINISHED_STATUSES)))
        return (await self.session.execute(stmt)).rowcount  # type: ignore[attr-defined,no-any-return]

    async def counts_by_status(self) -> dict[str, int]:
        stmt = select(Job.status, func.count()).group_by(Job.status)
        return {str(status): count for status, count in (await self.session.execute(stmt)).all()}
