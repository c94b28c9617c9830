"""The platform's own scheduled job: pruning finished jobs past JOB_RETENTION_DAYS."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field

from creativeflow.db.types import utcnow
from creativeflow.jobs.context import JobContext
from creativeflow.jobs.kinds import Retries, job_kind, job_kinds
from creativeflow.jobs.models import JobStatus
from creativeflow.jobs.repository import JobRepository

PRUNE_KIND = "jobs.prune"
_BATCH = 500


class PruneInput(BaseModel):
    older_than_days: int = Field(ge=1, description="Finished jobs older than this are deleted")


@job_kind(
    PRUNE_KIND,
    PruneInput,
    description="Delete finished jobs older than the retention period",
    time_limit_seconds=3600,
    retries=Retries(max_attempts=3, backoff_seconds=60),
)
async def prune_finished_jobs(context: JobContext, data: PruneInput) -> dict[str, Any]:
    platform = context.platform
    cut_off = utcnow() - timedelta(days=data.older_than_days)
    deleted = 0
    while True:
        # Small batches, each its own short transaction: a large backlog never holds a long
        # lock (nor, on SQLite, the write gate) against requests.
        async with platform.read_sessions() as session:
            batch = await JobRepository(session).prunable(cut_off, _BATCH)
        # What a job left outside its row goes first: a file whose job is gone is never
        # found again, a job whose file is gone says so.
        for _, kind_name, status, result in batch:
            kind = job_kinds.get(kind_name)
            if kind is not None and kind.on_prune is not None and status is JobStatus.SUCCEEDED:
                await kind.on_prune(platform, result or {})
        async with platform.write_transaction() as session:
            deleted += await JobRepository(session).delete_finished([row[0] for row in batch])
        if len(batch) < _BATCH:
            break
        await context.progress(0.5, f"{deleted} jobs deleted so far")
    return {"deleted": deleted, "finished_before": cut_off.isoformat()}
