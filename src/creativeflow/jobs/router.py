"""/api/v1/jobs: the caller's jobs and those of subjects they may read.

Unknown ids, and jobs the caller may not read, are 404 JOB_NOT_FOUND; a job that exists but
has not finished says so in its `status` (and its `queue_position` while queued): "unknown"
and "not finished yet" are never confused.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Path, Query, Request, Response, status

from creativeflow.http.auth import CurrentPrincipal, DbSession
from creativeflow.http.pagination import Limit, Offset, Page
from creativeflow.http.problems import error_responses
from creativeflow.http.routing import api_router
from creativeflow.jobs.models import Job, JobStatus
from creativeflow.jobs.repository import JobFilters
from creativeflow.jobs.schemas import JobRead, JobSort, SortOrder
from creativeflow.jobs.service import JobService
from creativeflow.shared.core.exceptions import ValidationException

router = api_router(prefix="/jobs", tags=["jobs"])

JobId = Annotated[uuid.UUID, Path(description="The job's id")]


async def job_service(
    request: Request, session: DbSession, principal: CurrentPrincipal
) -> JobService:
    settings = request.app.state.platform.settings
    return JobService(session, principal, default_max_attempts=settings.job_default_max_attempts)


JobServiceDep = Annotated[JobService, Depends(job_service)]


def job_location(response: Response, job: JobRead) -> JobRead:
    response.headers["Location"] = f"/api/v1/jobs/{job.id}"
    return job


def accepted(response: Response, job: Job, created: bool) -> JobRead:
    """A submitted job's 202 body, with its Location, and `Idempotent-Replayed: true` when
    an Idempotency-Key returned an earlier job."""
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return job_location(response, JobRead.of(job))


async def read_job(service: JobService, job_id: uuid.UUID, kinds: tuple[str, ...] = ()) -> JobRead:
    job = await service.get(job_id, kinds=kinds)
    return JobRead.of(job, queue_position=await service.queue_position(job))


@router.get(
    "",
    response_model=Page[JobRead],
    summary="List jobs",
    description="Your jobs and the jobs of subjects (projects, brands) you may read; "
    "administrators see every job. Filters combine with AND.",
    responses=error_responses(401, 422),
)
async def list_jobs(
    service: JobServiceDep,
    status_filter: Annotated[
        list[JobStatus] | None, Query(alias="status", description="Repeat for several")
    ] = None,
    kind: Annotated[list[str] | None, Query(description="Repeat for several")] = None,
    subject_type: Annotated[str | None, Query(max_length=50)] = None,
    subject_id: uuid.UUID | None = None,
    parent_id: Annotated[
        uuid.UUID | None, Query(description="The children of this group (a panel sequence)")
    ] = None,
    created_after: Annotated[datetime | None, Query(description="Inclusive")] = None,
    created_before: Annotated[datetime | None, Query(description="Exclusive")] = None,
    sort: JobSort = JobSort.CREATED_AT,
    order: SortOrder = SortOrder.DESC,
    limit: Limit = 20,
    offset: Offset = 0,
) -> Page[JobRead]:
    for name, value in (("created_after", created_after), ("created_before", created_before)):
        if value is not None and value.tzinfo is None:
            raise ValidationException.for_field(name, "must include a time zone (e.g. Z)")
    filters = JobFilters(
        statuses=status_filter or (),
        kinds=kind or (),
        subject_type=subject_type,
        subject_id=subject_id,
        parent_id=parent_id,
        created_after=created_after,
        created_before=created_before,
    )
    return await page_of_jobs(service, filters, sort=sort, order=order, limit=limit, offset=offset)


async def page_of_jobs(
    service: JobService,
    filters: JobFilters,
    *,
    sort: JobSort,
    order: SortOrder,
    limit: int,
    offset: int,
) -> Page[JobRead]:
    rows, total = await service.list_page(
        filters, sort=sort.value, descending=order is SortOrder.DESC, limit=limit, offset=offset
    )
    return Page[JobRead].of(
        [JobRead.of(job) for job in rows], total=total, limit=limit, offset=offset
    )


@router.get(
    "/{job_id}",
    response_model=JobRead,
    summary="Get a job, with its queue position while queued",
    responses=error_responses(401, 404, 422),
)
async def get_job(job_id: JobId, service: JobServiceDep) -> JobRead:
    return await read_job(service, job_id)


@router.post(
    "/{job_id}/cancel",
    response_model=JobRead,
    summary="Cancel a job",
    description="A queued job never starts (`cancelled` at once). A running one is asked to "
    "stop (`cancel_requested`) and stops at its next progress point or heartbeat. A finished "
    "job is 409 JOB_STATE_CONFLICT.",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def cancel_job(job_id: JobId, service: JobServiceDep) -> JobRead:
    return JobRead.of(await service.cancel(job_id))


@router.post(
    "/{job_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobRead,
    summary="Run a failed or cancelled job again, as a new job",
    description="The new job has the same kind, input and subject and records `retried_from`. "
    "Other states are 409 JOB_STATE_CONFLICT.",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def retry_job(job_id: JobId, service: JobServiceDep, response: Response) -> JobRead:
    return job_location(response, JobRead.of(await service.retry(job_id)))
