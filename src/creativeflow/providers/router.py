"""The generic generation routes of graphic-novel-api.md, each answering with a job, and the
usage ledger.

`/generate/...` and `/tasks/...` are the spec's names for the job routes, limited to their own
kind: a task's id is 404 on `/generate/status`, and the other way round.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from creativeflow.http.auth import CurrentPrincipal, DbSession, require_permission
from creativeflow.http.headers import IdempotencyKey
from creativeflow.http.pagination import Limit, Offset, Page
from creativeflow.http.problems import error_responses
from creativeflow.http.rate_limits import charge_generation
from creativeflow.http.routing import api_router
from creativeflow.identity.permissions import Permission
from creativeflow.identity.principal import Principal
from creativeflow.jobs.kinds import job_kinds
from creativeflow.jobs.models import JobStatus
from creativeflow.jobs.repository import JobFilters
from creativeflow.jobs.router import JobServiceDep, accepted, page_of_jobs, read_job
from creativeflow.jobs.schemas import JobRead, JobSort, SortOrder
from creativeflow.jobs.service import JobService, Subject, succeeded_result
from creativeflow.providers.contexts import context_types, gather_task_context, merged_input
from creativeflow.providers.jobs import IMAGE_CATEGORY, IMAGE_KIND, TEXT_TASK_KIND
from creativeflow.providers.schemas import (
    ImageGenerationRequest,
    ImageJobInput,
    SubjectFields,
    TaskCatalogEntry,
    TaskContextUsed,
    TaskExecutionRequest,
    TaskResultRead,
    TextTaskJobInput,
    UsageTotal,
)
from creativeflow.providers.service import UsageService
from creativeflow.providers.tasks import TASKS, TaskInput, TaskType, task_catalog
from creativeflow.shared.core.exceptions import ValidationException

router = api_router(tags=["generation"])

Generator = Annotated[Principal, Depends(require_permission(Permission.GENERATION_CREATE))]


async def _generation_quota(request: Request, principal: Generator) -> Principal:
    # After the permission check, before the body is used: a refused request submits nothing.
    await charge_generation(request, principal.user_id)
    return principal


# A user allowed to generate, and within the generation rate limit (RATE_LIMIT_GENERATION).
LimitedGenerator = Annotated[Principal, Depends(_generation_quota)]
GenerationId = Annotated[uuid.UUID, Path(description="The generation's job id")]
TaskId = Annotated[uuid.UUID, Path(description="The task's job id")]
_SUBMITTED = error_responses(401, 403, 404, 409, 422, 429)
_TASK_KINDS = (TEXT_TASK_KIND,)


def _image_kinds() -> tuple[str, ...]:
    """Every image generation's kind: these routes' and the studios' (a panel's image, a
    panel sequence), registered when their modules were imported."""
    return job_kinds.of_category(IMAGE_CATEGORY)


async def _submit(
    service: JobService,
    response: Response,
    kind: str,
    data: Any,
    fields: SubjectFields,
    idempotency_key: str | None,
) -> JobRead:
    subject = (
        Subject(fields.subject_type, fields.subject_id)
        if fields.subject_type is not None and fields.subject_id is not None
        else None
    )
    job, created = await service.submit(
        kind, data, subject=subject, priority=fields.priority, idempotency_key=idempotency_key
    )
    return accepted(response, job, created)


# -- images ------------------------------------------------------------------------------------


@router.post(
    "/generate/image",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobRead,
    summary="Generate images from a prompt (a job)",
    description="Answers at once with the queued job; follow it at `/generate/status/{id}` "
    "(or `/jobs/{id}`). When it succeeds, `result.images` lists the stored images, served at "
    "`/api/v1/images/{id}`. Send an `Idempotency-Key` to make retries of this request safe.",
    responses=_SUBMITTED,
)
async def generate_image(
    body: ImageGenerationRequest,
    _generator: LimitedGenerator,
    service: JobServiceDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobRead:
    data = ImageJobInput.model_validate(body.model_dump(include=set(ImageJobInput.model_fields)))
    return await _submit(service, response, IMAGE_KIND, data, body, idempotency_key)


@router.get(
    "/generate/status/{generation_id}",
    response_model=JobRead,
    summary="An image generation's status, progress and result",
    responses=error_responses(401, 404, 422),
)
async def generation_status(generation_id: GenerationId, service: JobServiceDep) -> JobRead:
    return await read_job(service, generation_id, _image_kinds())


@router.post(
    "/generate/cancel/{generation_id}",
    response_model=JobRead,
    summary="Cancel an image generation",
    description="As `POST /jobs/{id}/cancel`.",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def cancel_generation(generation_id: GenerationId, service: JobServiceDep) -> JobRead:
    return JobRead.of(await service.cancel(generation_id, kinds=_image_kinds()))


@router.get(
    "/generate/history",
    response_model=Page[JobRead],
    summary="Your image generations, newest first",
    responses=error_responses(401, 422),
)
async def generation_history(
    service: JobServiceDep,
    status_filter: Annotated[list[JobStatus] | None, Query(alias="status")] = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> Page[JobRead]:
    filters = JobFilters(statuses=status_filter or (), kinds=_image_kinds())
    return await page_of_jobs(
        service,
        filters,
        sort=JobSort.CREATED_AT,
        order=SortOrder.DESC,
        limit=limit,
        offset=offset,
    )


# -- text tasks --------------------------------------------------------------------------------


@router.post(
    "/tasks/execute",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobRead,
    summary="Run an LLM task (a job)",
    description="`task_type` is one of `GET /tasks/types`, and `input` must match its input "
    "schema (errors name the field as `input.<name>`). With a `context` (a project, chapter, "
    "scene, panel or character the task takes, as `GET /tasks/types` lists), the input is "
    "gathered from it (the story so far, the cast, the instructions that apply) and any "
    "`input` fields sent replace the gathered ones; the job then belongs to the target's "
    "project, so its members see it and its socket hears it. Reading the target is enough "
    "(generating text changes nothing): another user's target is 404. The result, validated "
    "against the task's output schema, is at `/tasks/{id}/result`.",
    responses=_SUBMITTED,
)
async def execute_task(
    body: TaskExecutionRequest,
    generator: LimitedGenerator,
    session: DbSession,
    service: JobServiceDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobRead:
    spec = TASKS[body.task_type]
    if body.context is None:
        if body.input is None:
            raise ValidationException.for_field("input", "is required without a context")
        data = TextTaskJobInput(
            task_type=body.task_type,
            input=_task_input(spec.input_model, body.input),
            seed=body.seed,
            temperature=body.temperature,
        )
        return await _submit(service, response, TEXT_TASK_KIND, data, body, idempotency_key)

    gathered = await gather_task_context(session, generator, body.task_type, body.context)
    sent = body.input or {}
    merged = merged_input(gathered, sent)
    subject = gathered.subject
    if body.subject_type is not None and (body.subject_type, body.subject_id) != (
        subject.type,
        subject.id,
    ):
        raise ValidationException.for_field(
            "subject_id", "a task run with a context belongs to the context's project"
        )
    data = TextTaskJobInput(
        task_type=body.task_type,
        input=_task_input(spec.input_model, merged),
        seed=body.seed,
        temperature=body.temperature,
        context=TaskContextUsed(
            type=body.context.type,
            id=body.context.id,
            gathered=sorted(gathered.input),
            overridden=sorted(set(gathered.input) & set(sent)),
            sources=gathered.sources,
        ),
    )
    job, created = await service.submit(
        TEXT_TASK_KIND,
        data,
        subject=subject,
        priority=body.priority,
        idempotency_key=idempotency_key,
        # Reading the target was checked by its gatherer: that is enough to generate text.
        subject_checked=True,
        request=body.model_dump(mode="json"),
    )
    return accepted(response, job, created)


def _task_input(model: type[TaskInput], values: dict[str, Any]) -> dict[str, Any]:
    """`values` validated by the task's input model, as JSON; errors name `input.<field>`."""
    try:
        return model.model_validate(values).model_dump(mode="json")
    except ValidationError as exc:
        raise RequestValidationError(
            [{**err, "loc": ("body", "input", *err["loc"])} for err in exc.errors()]
        ) from exc


@router.get(
    "/tasks/types",
    response_model=list[TaskCatalogEntry],
    summary="The task types, with the JSON Schema of their input and output",
    description="Each with the context types it may be run about (`context.type` of "
    "`POST /tasks/execute`).",
    responses=error_responses(401),
)
async def task_types(_principal: CurrentPrincipal) -> list[dict[str, Any]]:
    return [
        {**entry, "context_types": context_types(TaskType(entry["name"]))}
        for entry in task_catalog()
    ]


@router.get(
    "/tasks/{task_id}/status",
    response_model=JobRead,
    summary="A task's status and progress",
    responses=error_responses(401, 404, 422),
)
async def task_status(task_id: TaskId, service: JobServiceDep) -> JobRead:
    return await read_job(service, task_id, _TASK_KINDS)


@router.post(
    "/tasks/{task_id}/cancel",
    response_model=JobRead,
    summary="Cancel a task",
    description="As `POST /jobs/{id}/cancel`: text tasks can be cancelled while queued and "
    "while running.",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def cancel_task(task_id: TaskId, service: JobServiceDep) -> JobRead:
    return JobRead.of(await service.cancel(task_id, kinds=_TASK_KINDS))


@router.get(
    "/tasks/{task_id}/result",
    response_model=TaskResultRead,
    summary="A finished task's result",
    description="The output (valid against the task's output schema) with provider, model, "
    "prompt, parameters, seed, timings and usage. A task that has not succeeded is 409 "
    "JOB_NOT_FINISHED (queued or running) or JOB_FAILED / JOB_CANCELLED, with its status; "
    "an unknown id is 404.",
    responses=error_responses(401, 404, 409, 422),
)
async def task_result(task_id: TaskId, service: JobServiceDep) -> dict[str, Any]:
    job = await service.get(task_id, kinds=_TASK_KINDS)
    return succeeded_result(job, "The task has no result")


# -- usage -------------------------------------------------------------------------------------


@router.get(
    "/usage",
    response_model=Page[UsageTotal],
    summary="AI usage totals by day, provider and model",
    description="Your calls, tokens and images per UTC day, provider and model, newest day "
    "first. Administrators may pass `all=true` for everyone's, or `user_id`.",
    responses=error_responses(401, 403, 422),
    tags=["usage"],
)
async def usage_totals(
    principal: CurrentPrincipal,
    session: DbSession,
    since: Annotated[datetime | None, Query(description="Inclusive, with a time zone")] = None,
    until: Annotated[datetime | None, Query(description="Exclusive, with a time zone")] = None,
    everyone: Annotated[bool, Query(alias="all")] = False,
    user_id: uuid.UUID | None = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> Page[UsageTotal]:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ValidationException.for_field(name, "must include a time zone (e.g. Z)")
    rows, total = await UsageService(session).totals(
        principal,
        everyone=everyone,
        user_id=user_id,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return Page[UsageTotal].of(
        [UsageTotal.model_validate(dict(row)) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )
