"""The platform's own scheduled job: pruning finished jobs past JOB_RETENTION_DAYS."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field

from creativeflow.db.types import utcnow
from creativeflow.jobs.context import JobContext
from creativeflow.jobs.kinds import Retries, job_kind
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
    cut_off = utcnow() - timedelta(days=data.older_than_days)
    deleted = 0
    while True:
        # Small batches, each its own transaction: a large backlog never holds a long lock
        # (nor, on SQLite, the write gate) against requests.
        async with context.platform.write_transaction() as session:
            batch = await JobRepository(session).prune(cut_off, _BATCH)
        deleted += batch
        if batch < _BATCH:
            break
        await context.progress(0.5, f"{deleted} jobs deleted so far")
    return {"deleted": deleted, "finished_before": cut_off.isoformat()}
