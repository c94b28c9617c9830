"""Job rules: submitting (idempotently), reading, cancelling and retrying.

Services flush, never commit: a job submitted by a request is written in the request's
transaction, and its wake-up goes out only after that commits (`JobQueuedEvent`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.access import ensure_writable
from creativeflow.db.ids import uuid7
from creativeflow.db.types import utcnow
from creativeflow.identity.principal import Principal
from creativeflow.jobs.errors import JobNotFound, JobStateConflict
from creativeflow.jobs.events import JobFinishedEvent, JobQueuedEvent
from creativeflow.jobs.groups import settle_group
from creativeflow.jobs.kinds import JobKind, job_kinds
from creativeflow.jobs.models import Job, JobStatus
from creativeflow.jobs.repository import JobFilters, JobRepository
from creativeflow.shared.core.exceptions import (
    ConflictException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from creativeflow.shared.messaging.bus import record_event

MIN_PRIORITY, MAX_PRIORITY = -10, 10


@dataclass(frozen=True, slots=True)
class Subject:
    type: str
    id: uuid.UUID


def input_fingerprint(kind: str, data: dict[str, Any], subject: Subject | None) -> str:
    """What "the same input" means for an Idempotency-Key: kind, input and subject."""
    canonical = json.dumps(
        {
            "kind": kind,
            "input": data,
            "subject": [subject.type, str(subject.id)] if subject else None,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class JobService:
    def __init__(
        self, session: AsyncSession, principal: Principal | None, *, default_max_attempts: int
    ) -> None:
        """`principal` None submits as the platform itself (scheduled maintenance)."""
        self.session = session
        self.principal = principal
        self.jobs = JobRepository(session)
        self.default_max_attempts = default_max_attempts

    # -- submitting ----------------------------------------------------------------------------

    async def submit(
        self,
        kind_name: str,
        data: BaseModel | dict[str, Any],
        *,
        subject: Subject | None = None,
        priority: int = 0,
        idempotency_key: str | None = None,
        retried_from: uuid.UUID | None = None,
        subject_checked: bool = False,
        request: dict[str, Any] | None = None,
    ) -> tuple[Job, bool]:
        """The queued job, and whether it is new (False: the same Idempotency-Key and input
        were submitted before, and that job is returned). A job about a subject needs the
        right to change it, unless the module owning the subject has checked the caller's
        right itself (`subject_checked`: reading is enough to export a project). `request`:
        what the client sent, when the input holds more (a text task's input gathered from
        stored content): a reused Idempotency-Key is the same request when that is the
        same, even if the content has changed since."""
        kind = job_kinds.get(kind_name)
        if kind is None:
            raise ValidationException.for_field("kind", f"unknown job kind {kind_name!r}")
        if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
            raise ValidationException.for_field(
                "priority", f"must be between {MIN_PRIORITY} and {MAX_PRIORITY}"
            )
        model = data if isinstance(data, BaseModel) else kind.input_model.model_validate(data)
        document = model.model_dump(mode="json")
        if subject is not None and self.principal is not None and not subject_checked:
            await ensure_writable(self.session, self.principal, subject.type, subject.id)
        owner_id = self.principal.user_id if self.principal else None
        fingerprint = input_fingerprint(
            kind_name, document if request is None else request, subject
        )
        if idempotency_key is not None:
            existing = await self._same_key(owner_id, idempotency_key, fingerprint)
            if existing is not None:
                return existing, False
        job = self._new_job(kind, document, fingerprint, subject, priority)
        job.idempotency_key = idempotency_key
        job.retried_from = retried_from
        try:
            async with self.session.begin_nested():
                self.session.add(job)
        except IntegrityError:
            # A concurrent request with the same key won the insert: answer with its job.
            if idempotency_key is None:
                raise
            existing = await self._same_key(owner_id, idempotency_key, fingerprint)
            if existing is None:
                raise
            return existing, False
        record_event(self.session.info, JobQueuedEvent(job_id=job.id, kind=kind_name))
        return job, True

    def _new_job(
        self,
        kind: JobKind,
        document: dict[str, Any],
        fingerprint: str,
        subject: Subject | None,
        priority: int,
        *,
        parent: Job | None = None,
    ) -> Job:
        owner_id = self.principal.user_id if self.principal else None
        now = utcnow()
        return Job(
            id=uuid7(),
            kind=kind.name,
            owner_id=owner_id,
            subject_type=subject.type if subject else None,
            subject_id=subject.id if subject else None,
            status=JobStatus.QUEUED,
            sequence=1,
            progress=0.0,
            input=document,
            input_hash=fingerprint,
            attempts=0,
            max_attempts=kind.retries.max_attempts or self.default_max_attempts,
            priority=priority,
            parent_id=parent.id if parent else None,
            queued_at=now,
            run_after=now,
            # Its wake-up goes out when the transaction commits; the sweeper re-sends it if
            # nobody has claimed the job long after.
            woken_at=now,
            cancel_requested=False,
            created_by=owner_id,
            updated_by=owner_id,
        )

    async def submit_group(
        self,
        kind_name: str,
        data: BaseModel,
        children: Sequence[tuple[str, BaseModel]],
        *,
        subject: Subject | None = None,
        priority: int = 0,
        idempotency_key: str | None = None,
        subject_checked: bool = False,
    ) -> tuple[Job, bool]:
        """A group (a kind registered with `job_group`) and its queued children, all written
        in this transaction; the group is running until its last child ends (`groups.py`).
        The Idempotency-Key and its fingerprint are the group's."""
        kind = job_kinds.get(kind_name)
        if kind is None or not kind.group:
            raise ValueError(f"{kind_name!r} is not a job group")
        if not children:
            raise ValidationException.for_field("children", "a group needs at least one job")
        group, created = await self.submit(
            kind_name,
            data,
            subject=subject,
            priority=priority,
            idempotency_key=idempotency_key,
            subject_checked=subject_checked,
        )
        if not created:
            return group, False
        now = utcnow()
        group.status = JobStatus.RUNNING
        group.started_at = now
        group.attempts = 1
        group.max_attempts = 1
        group.woken_at = None
        await self.add_children(group, children)
        return group, True

    async def add_children(
        self, group: Job, children: Sequence[tuple[str, BaseModel]]
    ) -> list[Job]:
        """Queue more children of a running group (a workflow's next stage), with the group's
        owner, subject and priority."""
        subject = (
            Subject(group.subject_type, group.subject_id)
            if group.subject_type is not None and group.subject_id is not None
            else None
        )
        rows = []
        for child_kind_name, child_data in children:
            child_kind = job_kinds.get(child_kind_name)
            if child_kind is None or child_kind.group:
                raise ValueError(f"{child_kind_name!r} cannot be a group's child")
            document = child_data.model_dump(mode="json")
            fingerprint = input_fingerprint(child_kind_name, document, subject)
            job = self._new_job(
                child_kind, document, fingerprint, subject, group.priority, parent=group
            )
            job.owner_id = job.created_by = job.updated_by = group.owner_id
            rows.append(job)
        self.session.add_all(rows)
        await self.session.flush()
        for job in rows:
            record_event(self.session.info, JobQueuedEvent(job_id=job.id, kind=job.kind))
        return rows

    async def open_group(self, child_id: uuid.UUID) -> Job | None:
        """The group of job `child_id`, locked until this transaction ends, when it is still
        running and no cancel was asked for; None otherwise (or for a job of no group). A
        stage's success write asks it before queueing the next stage (`add_children`), so a
        cancelled group gets no new children: holding the lock, no cancel can come between."""
        child = await self.jobs.get_or_none(child_id)
        if child is None or child.parent_id is None:
            return None
        group = await self.jobs.lock_group(child.parent_id)
        if group is None or group.status is not JobStatus.RUNNING or group.cancel_requested:
            return None
        return group

    async def _same_key(self, owner_id: uuid.UUID | None, key: str, fingerprint: str) -> Job | None:
        existing = await self.jobs.by_idempotency_key(owner_id, key)
        if existing is not None and existing.input_hash != fingerprint:
            raise ConflictException(
                "This Idempotency-Key was used with a different request",
                code="IDEMPOTENCY_KEY_REUSED",
                data={"job_id": str(existing.id)},
            )
        return existing

    # -- reading -------------------------------------------------------------------------------

    def _actor(self) -> Principal:
        if self.principal is None:
            raise RuntimeError("reading jobs needs a principal")
        return self.principal

    async def get(self, job_id: uuid.UUID, *, kinds: Sequence[str] = ()) -> Job:
        """A job the caller may read (of one of `kinds`, when given); anything else is 404."""
        job = await self.jobs.visible(self._actor(), job_id)
        if job is None or (kinds and job.kind not in kinds):
            raise JobNotFound("Job not found")
        return job

    async def queue_position(self, job: Job) -> int | None:
        if job.status is not JobStatus.QUEUED:
            return None
        return await self.jobs.queue_position(job.id)

    async def list_page(
        self, filters: JobFilters, *, sort: str, descending: bool, limit: int, offset: int
    ) -> tuple[Sequence[Job], int]:
        return await self.jobs.list_page(
            self._actor(), filters, sort=sort, descending=descending, limit=limit, offset=offset
        )

    # -- changing ------------------------------------------------------------------------------

    async def _changeable(self, job_id: uuid.UUID, kinds: Sequence[str]) -> Job:
        """A job the caller may cancel or retry: their own, one of a subject they may write,
        or any job for an administrator. Someone who may only read the job's subject sees the
        job, so is told why they cannot change it (403) rather than that it does not exist."""
        actor = self._actor()
        job = await self.get(job_id, kinds=kinds)
        if actor.is_admin or job.owner_id == actor.user_id:
            return job
        if job.subject_type is not None and job.subject_id is not None:
            with contextlib.suppress(NotFoundException):
                await ensure_writable(self.session, actor, job.subject_type, job.subject_id)
                return job
        raise PermissionDeniedException(
            "Only the job's owner, or someone who may change its subject, may do this",
            code="JOB_NOT_CHANGEABLE",
        )

    async def cancel(self, job_id: uuid.UUID, *, kinds: Sequence[str] = ()) -> Job:
        """A queued job never starts; a running one stops at its next progress point (or
        heartbeat); a finished one is 409."""
        job = await self._changeable(job_id, kinds)
        if job.status.finished:
            raise JobStateConflict(
                f"The job has already {job.status.value}", data={"job_status": job.status.value}
            )
        now = utcnow()
        if job.parent_id is None and self._is_group(job):
            return await self._cancel_group(job, now)
        if job.parent_id is not None:
            await self.jobs.lock_group(job.parent_id)  # the group first, as everywhere
        if await self.jobs.cancel_queued(job.id, now):
            await self.session.refresh(job)
            record_event(
                self.session.info,
                JobFinishedEvent.of(
                    job,
                    JobStatus.CANCELLED,
                    error_code=job.error_code,
                    error_message=job.error_message,
                ),
            )
            if job.parent_id is not None:
                await settle_group(self.session, job.parent_id, now)
            return job
        # Running, or claimed between our read and this update: its runner records the end.
        await self.jobs.request_cancel(job.id, now)
        await self.session.refresh(job)
        return job

    @staticmethod
    def _is_group(job: Job) -> bool:
        kind = job_kinds.get(job.kind)
        return kind is not None and kind.group

    async def _cancel_group(self, group: Job, now: datetime) -> Job:
        """Queued children never start, running ones stop at their next progress point;
        finished ones stay as they are. The group ends as cancelled with its last child."""
        await self.jobs.lock_group(group.id)
        group.cancel_requested = True
        for child in await self.jobs.cancel_queued_children(group.id, now):
            record_event(
                self.session.info,
                JobFinishedEvent.of(
                    child,
                    JobStatus.CANCELLED,
                    error_code=child.error_code,
                    error_message=child.error_message,
                ),
            )
        await self.jobs.request_cancel_children(group.id, now)
        await self.session.flush()
        await settle_group(self.session, group.id, now)
        await self.session.flush()
        return group

    async def retry(self, job_id: uuid.UUID, *, kinds: Sequence[str] = ()) -> Job:
        """A failed or cancelled job gets a new job with the same input that records where it
        came from."""
        job = await self._changeable(job_id, kinds)
        if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise JobStateConflict(
                f"Only failed or cancelled jobs can be retried; this one is {job.status.value}",
                data={"job_status": job.status.value},
            )
        subject = (
            Subject(job.subject_type, job.subject_id)
            if job.subject_type is not None and job.subject_id is not None
            else None
        )
        if self._is_group(job):
            # A new group of the children that did not succeed; the others stay done.
            children = [
                (child.kind, _input_of(child)) for child in await self.jobs.failed_children(job.id)
            ]
            retried, _ = await self.submit_group(
                job.kind,
                _input_of(job),
                children,
                subject=subject,
                priority=job.priority,
                subject_checked=True,
            )
            retried.retried_from = job.id
            return retried
        retried, _ = await self.submit(
            job.kind, job.input, subject=subject, priority=job.priority, retried_from=job.id
        )
        return retried


def _input_of(job: Job) -> BaseModel:
    kind = job_kinds.get(job.kind)
    if kind is None:
        raise JobStateConflict(f"No worker knows job kind {job.kind!r}")
    return kind.input_model.model_validate(job.input)


def succeeded_result(job: Job, missing: str) -> dict[str, Any]:
    """A succeeded job's result; otherwise 409 JOB_NOT_FINISHED (queued or running),
    JOB_FAILED or JOB_CANCELLED, the message starting with `missing` ("The task has no
    result") and carrying the job's status and progress."""
    if job.status is JobStatus.SUCCEEDED and job.result is not None:
        return job.result
    codes = {JobStatus.FAILED: "JOB_FAILED", JobStatus.CANCELLED: "JOB_CANCELLED"}
    raise JobStateConflict(
        f"{missing}: it is {job.status.value}"
        + (f" ({job.error_message})" if job.error_message else ""),
        code=codes.get(job.status, "JOB_NOT_FINISHED"),
        data={"job_status": job.status.value, "progress": job.progress},
    )
