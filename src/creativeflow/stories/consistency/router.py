"""`POST /workflow/consistency-check` and `GET /workflow/consistency-check/{job_id}` (a large
check's report, once its job is done).

The check decodes images, so it holds no transaction while it does (`UngatedRoute`): the
project is read in one short read unit of work, then the images are compared with none open.
Any member may check (it changes nothing); a non-member gets 404.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, status
from fastapi.responses import JSONResponse

from creativeflow.http.headers import IdempotencyKey
from creativeflow.http.problems import error_responses
from creativeflow.http.routing import UngatedRoute, unit_of_work
from creativeflow.jobs.schemas import JobRead
from creativeflow.stories.consistency.schemas import (
    ConsistencyCheckRequest,
    ConsistencyJob,
    ConsistencyReport,
)
from creativeflow.stories.consistency.service import ConsistencyService, run_check
from creativeflow.stories.parameters import Reader

router = APIRouter(prefix="/workflow", tags=["story workflows"], route_class=UngatedRoute)

_REPORT_URL = "/api/v1/workflow/consistency-check/{job_id}"
_QUEUED: dict[int | str, dict[str, Any]] = {
    202: {"model": ConsistencyJob, "description": "A large check, running as a job"}
}


@router.post(
    "/consistency-check",
    response_model=ConsistencyReport,
    summary="Check a project's (or chapter's) characters and text for consistency",
    description="Per character with a primary design: the drift of each panel image it is "
    "cast in from that design (0 the same picture, 1 nothing alike: perceptual hash and "
    "colour palette distance), and the panels above `threshold` (default "
    "STORY_DRIFT_THRESHOLD); characters without one are listed as `unchecked` with the "
    "reason. Text inconsistencies, each with its panel's place: NAMED_NOT_IN_PANEL (a "
    "character named in a bubble is not cast in the panel), LOCATION_MISMATCH (the "
    "description or a bubble names another of the project's locations than the panel's), "
    "UNKNOWN_SPEAKER (a bubble's speaker is not cast in the panel, or not a character of the "
    "project); names match as whole words, whatever the case. `character_ids` limits the "
    "drift and the character checks to those characters. Up to "
    "STORY_CONSISTENCY_INLINE_PANELS panel images to compare, the report is the answer "
    "(200); more, and the check runs as a `stories.consistency_check` job: 202 with the job "
    "(progress on `/jobs/{id}` and the project's socket) and where its report will be. Any "
    "member; 422 naming `chapter_id` or `character_ids` when they are not the project's.",
    responses=_QUEUED | error_responses(401, 403, 404, 409, 422, 503),
)
async def consistency_check(
    data: ConsistencyCheckRequest,
    request: Request,
    principal: Reader,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    platform = request.app.state.platform
    async with unit_of_work(request, write=False) as session:
        service = ConsistencyService(session, principal, platform.settings)
        plan = await service.plan(data)
        inline = service.runs_inline(plan)
    if inline:
        return await run_check(plan, platform)
    async with unit_of_work(request) as session:
        job = await ConsistencyService(session, principal, platform.settings).submit(
            data, idempotency_key
        )
        body = ConsistencyJob(job=JobRead.of(job), report_url=_REPORT_URL.format(job_id=job.id))
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=status.HTTP_202_ACCEPTED,
        headers={"Location": f"/api/v1/jobs/{job.id}"},
    )


@router.get(
    "/consistency-check/{job_id}",
    response_model=ConsistencyReport,
    summary="The report of a consistency check that ran as a job",
    description="While the job is queued or running: 409 JOB_NOT_FINISHED (with its "
    "progress); failed or cancelled: 409 JOB_FAILED / JOB_CANCELLED; a job you may not read, "
    "of another kind, or an unknown id: 404. Any member of the job's project.",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def consistency_report(
    job_id: Annotated[uuid.UUID, Path(description="The check's job id")],
    request: Request,
    principal: Reader,
) -> Any:
    platform = request.app.state.platform
    async with unit_of_work(request, write=False) as session:
        result = await ConsistencyService(session, principal, platform.settings).finished_report(
            job_id
        )
    return ConsistencyReport.model_validate(result)
