"""Job groups: one parent row over many child jobs (a panel sequence: one job per panel).

The parent is never claimed. It is `running` from its submission while any child is queued
or running; every child's ending settles it in the child's own final transaction: the parent
row is locked first, so children ending together settle it one after the other and the last
one always sees every other ending. Its progress is the share of children finished; when none
is left it ends `succeeded` (every child succeeded), `cancelled` (cancelled as a group) or
`failed` with CHILDREN_FAILED, its result counting the children by status either way.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.jobs.events import JobFinishedEvent
from creativeflow.jobs.models import Job, JobStatus
from creativeflow.jobs.repository import JobRepository
from creativeflow.shared.messaging.bus import record_event


@dataclass(frozen=True, slots=True)
class GroupSettled:
    group: Job
    progress: float
    message: str
    ended: bool


def _summary(counts: dict[JobStatus, int]) -> dict[str, Any]:
    return {"children": sum(counts.values())} | {
        status.value: counts.get(status, 0) for status in JobStatus
    }


async def settle_group(
    session: AsyncSession, parent_id: uuid.UUID, now: datetime
) -> GroupSettled | None:
    """Bring the group up to date with its children (call in the transaction that ended one);
    None when the group is gone or already ended."""
    jobs = JobRepository(session)
    group = await jobs.lock_group(parent_id)
    if group is None or group.status.finished:
        return None
    counts = await jobs.child_counts(parent_id)
    total = sum(counts.values())
    finished = sum(counts.get(status, 0) for status in JobStatus if status.finished)
    group.progress = finished / total if total else 1.0
    group.progress_message = f"{finished} of {total} finished"
    group.sequence += 1
    group.updated_at = now
    if finished < total:
        return GroupSettled(group, group.progress, group.progress_message, ended=False)
    summary = _summary(counts)
    unfinished = total - counts.get(JobStatus.SUCCEEDED, 0)
    if group.cancel_requested:
        status, code, message = JobStatus.CANCELLED, "CANCELLED", "Cancelled"
    elif unfinished:
        status, code = JobStatus.FAILED, "CHILDREN_FAILED"
        message = (
            f"{unfinished} of {total} did not succeed ({summary['failed']} failed, "
            f"{summary['cancelled']} cancelled)"
        )
    else:
        status, code, message = JobStatus.SUCCEEDED, None, None
    group.status = status
    group.result = summary
    group.error_code = code
    group.error_message = message
    group.finished_at = now
    record_event(
        session.info,
        JobFinishedEvent.of(group, status, result=summary, error_code=code, error_message=message),
    )
    return GroupSettled(group, group.progress, group.progress_message, ended=True)
