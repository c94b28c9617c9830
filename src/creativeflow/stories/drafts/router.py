"""Drafts: `/drafts`, `/drafts/pending`, `/drafts/{id}` and the decisions on them.

Generations (`/panels/{id}/generate-image`, `/tasks/execute` with a story context, the
workflows ...) write drafts when their jobs succeed, and `draft_ready` reaches the project's
sockets. Members read them; editors and the owner select, restore, reject, give feedback and
act in bulk; anyone else gets 404 DRAFT_NOT_FOUND. Decisions take `If-Match` (or `version`).
`POST /drafts/{id}/revise` is with the generation routes.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import Body, Path, Query, Response, status

from creativeflow.http.auth import DbSession
from creativeflow.http.pagination import Limit, Offset, Page
from creativeflow.http.problems import error_responses
from creativeflow.http.routing import api_router
from creativeflow.http.versioning import IfMatch, expected_version, set_etag
from creativeflow.identity.principal import Principal
from creativeflow.stories.drafts.models import Draft, DraftKind, DraftStatus, DraftTarget
from creativeflow.stories.drafts.repository import DraftFilters
from creativeflow.stories.drafts.schemas import (
    BulkResult,
    DraftBulkAction,
    DraftRead,
    DraftReject,
    DraftRestore,
    DraftSelect,
    FeedbackCreate,
    FeedbackRead,
    draft_read,
)
from creativeflow.stories.drafts.service import DraftService
from creativeflow.stories.parameters import Reader, Skip, Writer

router = api_router(tags=["story drafts"])

DraftId = Annotated[uuid.UUID, Path(description="The draft's id")]
_READ = error_responses(401, 403, 404, 422)
_DECIDE = error_responses(401, 403, 404, 409, 422)


async def _reads(service: DraftService, drafts: Sequence[Draft]) -> list[DraftRead]:
    feedback = await service.feedback(drafts)
    return [draft_read(draft, feedback.get(draft.id, [])) for draft in drafts]


async def _one(service: DraftService, draft: Draft, response: Response) -> DraftRead:
    set_etag(response, draft.version)
    return (await _reads(service, [draft]))[0]


async def _page(
    session: DbSession,
    principal: Principal,
    filters: DraftFilters,
    limit: int,
    offset: int,
) -> Page[DraftRead]:
    service = DraftService(session, principal)
    drafts, total = await service.page(filters, limit=limit, offset=offset)
    return Page[DraftRead].of(
        await _reads(service, drafts), total=total, limit=limit, offset=offset
    )


ProjectFilter = Annotated[uuid.UUID | None, Query(description="One project's drafts")]
TargetType = Annotated[DraftTarget | None, Query(description="What the drafts are for")]
TargetId = Annotated[uuid.UUID | None, Query(description="The panel, chapter … they are for")]
KindFilter = Annotated[DraftKind | None, Query()]
OperationFilter = Annotated[
    str | None, Query(max_length=40, description="panel_image, cover, dialogue …")
]


@router.get(
    "/drafts",
    response_model=Page[DraftRead],
    summary="Drafts of the projects you are a member of, newest first",
    responses=_READ,
)
async def list_drafts(
    session: DbSession,
    principal: Reader,
    project_id: ProjectFilter = None,
    target_type: TargetType = None,
    target_id: TargetId = None,
    kind: KindFilter = None,
    operation: OperationFilter = None,
    status_filter: Annotated[
        list[DraftStatus] | None, Query(alias="status", description="Repeat for several")
    ] = None,
    limit: Limit = 20,
    offset: Offset = 0,
    skip: Skip = None,
) -> Page[DraftRead]:
    filters = DraftFilters(
        project_id=project_id,
        target_type=target_type,
        target_id=target_id,
        kind=kind,
        operation=operation,
        statuses=[str(value) for value in status_filter or ()],
    )
    return await _page(session, principal, filters, limit, offset if skip is None else skip)


@router.get(
    "/drafts/pending",
    response_model=Page[DraftRead],
    summary="Drafts waiting for a decision, newest first",
    responses=_READ,
)
async def pending_drafts(
    session: DbSession,
    principal: Reader,
    project_id: ProjectFilter = None,
    target_type: TargetType = None,
    target_id: TargetId = None,
    kind: KindFilter = None,
    limit: Limit = 20,
    offset: Offset = 0,
    skip: Skip = None,
) -> Page[DraftRead]:
    filters = DraftFilters(
        project_id=project_id,
        target_type=target_type,
        target_id=target_id,
        kind=kind,
        statuses=[DraftStatus.PENDING.value],
    )
    return await _page(session, principal, filters, limit, offset if skip is None else skip)


@router.post(
    "/drafts/bulk-action",
    response_model=BulkResult,
    summary="Select the first variant of, reject, or delete many drafts at once",
    description="All or nothing: when one draft is missing, not yours to decide, or in the "
    "wrong state (rejecting a selected one), nothing is changed and the problem names it.",
    responses=_DECIDE,
)
async def bulk_action(data: DraftBulkAction, session: DbSession, principal: Writer) -> BulkResult:
    service = DraftService(session, principal)
    drafts = await service.bulk(data.action, data.draft_ids)
    return BulkResult(
        action=data.action, count=len(data.draft_ids), drafts=await _reads(service, drafts)
    )


@router.get(
    "/drafts/{draft_id}",
    response_model=DraftRead,
    summary="A draft with its variants, their feedback and its history",
    responses=_READ,
)
async def get_draft(
    draft_id: DraftId, session: DbSession, principal: Reader, response: Response
) -> DraftRead:
    service = DraftService(session, principal)
    return await _one(service, await service.get(draft_id), response)


@router.post(
    "/drafts/{draft_id}/select",
    response_model=DraftRead,
    summary="Use a variant: it becomes the panel's image, the chapter's cover, the panel's "
    "dialogue …",
    description="What the target held before is kept in the draft's `history`; "
    "`POST /drafts/{id}/restore` puts it back. Selecting another variant of a selected draft "
    "replaces the first choice (and is kept in the history too).",
    responses=_DECIDE,
)
async def select_draft(
    draft_id: DraftId,
    session: DbSession,
    principal: Writer,
    response: Response,
    if_match: IfMatch,
    data: Annotated[DraftSelect | None, Body()] = None,
) -> DraftRead:
    choice = data or DraftSelect()
    service = DraftService(session, principal)
    draft = await service.select(
        draft_id, choice.variant, expected_version(if_match, choice.version)
    )
    return await _one(service, draft, response)


@router.post(
    "/drafts/{draft_id}/restore",
    response_model=DraftRead,
    summary="Undo a selection: the target gets back what it held before",
    responses=_DECIDE,
)
async def restore_draft(
    draft_id: DraftId,
    session: DbSession,
    principal: Writer,
    response: Response,
    if_match: IfMatch,
    data: Annotated[DraftRestore | None, Body()] = None,
) -> DraftRead:
    choice = data or DraftRestore()
    service = DraftService(session, principal)
    draft = await service.restore(
        draft_id, choice.entry, expected_version(if_match, choice.version)
    )
    return await _one(service, draft, response)


@router.post(
    "/drafts/{draft_id}/reject",
    response_model=DraftRead,
    summary="Reject a draft (a selected one must be restored first)",
    responses=_DECIDE,
)
async def reject_draft(
    draft_id: DraftId,
    session: DbSession,
    principal: Writer,
    response: Response,
    if_match: IfMatch,
    data: Annotated[DraftReject | None, Body()] = None,
) -> DraftRead:
    choice = data or DraftReject()
    service = DraftService(session, principal)
    draft = await service.reject(
        draft_id, choice.reason, expected_version(if_match, choice.version)
    )
    return await _one(service, draft, response)


@router.post(
    "/drafts/{draft_id}/feedback",
    response_model=FeedbackRead,
    status_code=status.HTTP_201_CREATED,
    summary="Rate or comment on one variant",
    description="Kept per variant; `POST /drafts/{id}/revise` sends the comments back to the "
    "provider with the draft's prompt.",
    responses=_DECIDE,
)
async def draft_feedback(
    draft_id: DraftId, data: FeedbackCreate, session: DbSession, principal: Writer
) -> FeedbackRead:
    row = await DraftService(session, principal).add_feedback(draft_id, data)
    return FeedbackRead.model_validate(row)
