"""Scheduled health checks: a source with a check interval is checked by a `datasources.check`
job each time its `next_check_at` passes.

Every sweeper pass (each API process, each worker) runs `submit_due_checks`: it moves each due
source's `next_check_at` on by a conditional update (so of many sweepers one wins) and submits
a job keyed by the source and the time it was due (so a retried pass submits none twice). The
job reads the source in one short read, checks it with no transaction open, and records the
outcome in a short write: the history, the status, and the event when it turns unhealthy.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from creativeflow.datasources import connections
from creativeflow.datasources.errors import DataSourceNotFound
from creativeflow.datasources.models import CheckTrigger
from creativeflow.datasources.repository import DataSourceRepository
from creativeflow.datasources.service import DataSourceService, connect_context
from creativeflow.db.types import utcnow
from creativeflow.jobs.context import JobContext
from creativeflow.jobs.kinds import Retries, job_kind, periodic
from creativeflow.jobs.service import JobService
from creativeflow.shared.core.exceptions import ValidationException

if TYPE_CHECKING:
    from creativeflow.platform import Platform

CHECK_KIND = "datasources.check"
_BATCH = 100


class CheckInput(BaseModel):
    source_id: uuid.UUID


@job_kind(
    CHECK_KIND,
    CheckInput,
    description="Check a data source's connection on its schedule",
    # The check itself is capped at DATASOURCE_TIMEOUT_SECONDS (at most 120 s).
    time_limit_seconds=180,
    # The next scheduled check is the retry: a failure is the answer, not an accident.
    retries=Retries(max_attempts=1),
)
async def check_source(context: JobContext, data: CheckInput) -> dict[str, Any]:
    platform = context.platform
    settings = platform.settings

    def service(session: Any) -> DataSourceService:
        return DataSourceService(session, None, cipher=platform.field_cipher, settings=settings)

    try:
        async with platform.read_sessions() as session:
            resolved = await service(session).resolve(data.source_id)
    except DataSourceNotFound:
        return {"skipped": "the source was deleted"}
    except ValidationException as exc:  # a credential deleted under it, say
        outcome = connections.CheckOutcome(
            ok=False, latency_ms=0, error_code="INVALID_CONFIG", message=exc.detail
        )
    else:
        outcome = await connections.check(
            resolved.source_type, resolved.config, connect_context(settings)
        )
    async with platform.write_transaction() as session:
        await service(session).record_check(
            data.source_id, outcome, trigger=CheckTrigger.SCHEDULED, job_id=context.job_id
        )
    return {
        "ok": outcome.ok,
        "latency_ms": outcome.latency_ms,
        "error_code": outcome.error_code,
    }


@periodic("datasources.scheduled_checks")
async def submit_due_checks(platform: Platform) -> int:
    """Submit a check job for every source whose next check is due; how many were submitted."""
    now = utcnow()
    submitted = 0
    async with platform.write_transaction() as session:
        sources = DataSourceRepository(session)
        jobs = JobService(
            session, None, default_max_attempts=platform.settings.job_default_max_attempts
        )
        for source in await sources.due_for_check(now, _BATCH):
            due = source.next_check_at
            assert due is not None and source.check_interval_seconds is not None
            # From now, not from `due`: a platform that was down does not owe a backlog.
            following = now + timedelta(seconds=source.check_interval_seconds)
            if not await sources.advance_schedule(source.id, due, following):
                continue  # another sweeper took it
            _, created = await jobs.submit(
                CHECK_KIND,
                CheckInput(source_id=source.id),
                idempotency_key=f"{CHECK_KIND}:{source.id}:{due.isoformat()}",
                priority=-5,
            )
            submitted += created
    return submitted
