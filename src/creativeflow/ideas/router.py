"""/api/v1/{user_id}/ideas: each creator's private ideas (creatorvault.md).

`{user_id}` must name the caller (their id, or the subject an external identity provider
knows them by): anything else is 403. An idea id that is not theirs is 404, exactly like one
that does not exist.
"""

# No `from __future__ import annotations`: the dependency built in `_service` annotates with
# a closure variable, which FastAPI can only see in an evaluated annotation.
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request, Response, status

from creativeflow.http.auth import DbSession, require_permission
from creativeflow.http.pagination import Page
from creativeflow.http.problems import error_responses
from creativeflow.http.routing import api_router
from creativeflow.ideas.schemas import (
    IdeaCreate,
    IdeaListParams,
    IdeaRead,
    IdeaReplace,
    IdeaUpdate,
)
from creativeflow.ideas.service import IdeaService
from creativeflow.identity.permissions import Permission
from creativeflow.identity.principal import Principal
from creativeflow.shared.core.exceptions import PermissionDeniedException

router = api_router(tags=["ideas"])

PathUserId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=255,
        description="The caller's user id (or external subject); any other value is 403",
    ),
]
IdeaId = Annotated[uuid.UUID, Path(description="The idea's id")]


def _service(permission: Permission) -> Callable[..., Any]:
    """A dependency giving the idea service of a caller holding `permission` who is the path's
    `{user_id}`."""

    async def build(
        user_id: PathUserId,
        session: DbSession,
        principal: Annotated[Principal, Depends(require_permission(permission))],
    ) -> IdeaService:
        if not principal.owns_path_user(user_id):
            raise PermissionDeniedException(
                "The path's user_id must be your own: ideas are private to their owner",
                code="PERMISSION_DENIED",
            )
        return IdeaService(session, principal)

    build.__name__ = f"idea_service_{permission.replace(':', '_')}"
    return build


Readers = Annotated[IdeaService, Depends(_service(Permission.IDEAS_READ))]
Creators = Annotated[IdeaService, Depends(_service(Permission.IDEAS_CREATE))]
Updaters = Annotated[IdeaService, Depends(_service(Permission.IDEAS_UPDATE))]
Deleters = Annotated[IdeaService, Depends(_service(Permission.IDEAS_DELETE))]

COLLECTION = "/{user_id}/ideas"
ITEM = "/{user_id}/ideas/{idea_id}"


@router.post(
    COLLECTION,
    status_code=status.HTTP_201_CREATED,
    response_model=IdeaRead,
    summary="Create an idea",
    description="Only `title` is required. Tags are trimmed and de-duplicated "
    "case-insensitively (first spelling kept); `due_date` needs a time zone.",
    responses=error_responses(401, 403, 422),
)
async def create_idea(
    data: IdeaCreate, service: Creators, request: Request, response: Response
) -> IdeaRead:
    idea = await service.create(data)
    response.headers["Location"] = f"{request.url.path.rstrip('/')}/{idea.id}"
    return IdeaRead.model_validate(idea)


@router.get(
    COLLECTION,
    response_model=Page[IdeaRead],
    summary="List ideas: search, filter, sort and page",
    description="Filters combine with AND; `tags` matches ideas with any of the given tags. "
    "Page with `limit`/`offset`, or follow `next_cursor` (keyset paging, as fast on the last "
    "page as on the first; with a cursor, `offset` is ignored). Every order ends with the id, "
    "so pages never repeat or skip an idea.",
    responses=error_responses(401, 403, 422),
)
async def list_ideas(
    params: Annotated[IdeaListParams, Query()], service: Readers
) -> Page[IdeaRead]:
    page = await service.list_page(params)
    # One validation pass over the rows (attributes read straight from the result rows).
    return Page[IdeaRead].model_validate(page, from_attributes=True)


@router.get(
    ITEM,
    response_model=IdeaRead,
    summary="Get an idea",
    responses=error_responses(401, 403, 404, 422),
)
async def get_idea(idea_id: IdeaId, service: Readers) -> IdeaRead:
    return IdeaRead.model_validate(await service.get(idea_id))


@router.patch(
    ITEM,
    response_model=IdeaRead,
    summary="Change some fields of an idea",
    description="Only the fields sent change; `notes` and `due_date` may be null to clear them.",
    responses=error_responses(401, 403, 404, 422),
)
async def update_idea(idea_id: IdeaId, data: IdeaUpdate, service: Updaters) -> IdeaRead:
    return IdeaRead.model_validate(await service.update(idea_id, data))


@router.put(
    ITEM,
    response_model=IdeaRead,
    summary="Replace an idea",
    description="The idea takes exactly the state sent: omitted optional fields take their "
    "defaults (no notes, no tags, no due date, stage `idea`, priority `medium`).",
    responses=error_responses(401, 403, 404, 422),
)
async def replace_idea(idea_id: IdeaId, data: IdeaReplace, service: Updaters) -> IdeaRead:
    return IdeaRead.model_validate(await service.replace(idea_id, data))


@router.delete(
    ITEM,
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete an idea",
    description="Permanent (no soft delete).",
    responses=error_responses(401, 403, 404, 422),
)
async def delete_idea(idea_id: IdeaId, service: Deleters) -> None:
    await service.delete(idea_id)
