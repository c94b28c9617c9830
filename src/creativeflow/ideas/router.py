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

from fastapi import Depends, Path, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import StringConstraints, TypeAdapter

from creativeflow.http.auth import DbSession, authenticating, authorize, require_permission
from creativeflow.http.direct import direct, documented, path_value, query_model
from creativeflow.http.pagination import Page
from creativeflow.http.problems import error_responses
from creativeflow.http.routing import api_router
from creativeflow.ideas.schemas import (
    IdeaCreate,
    IdeaListParams,
    IdeaRead,
    IdeaReplace,
    IdeaUpdate,
    render_idea,
    render_idea_page,
)
from creativeflow.ideas.service import IdeaReader, IdeaService
from creativeflow.identity.permissions import Permission
from creativeflow.identity.principal import Principal
from creativeflow.shared.core.exceptions import PermissionDeniedException

router = api_router(tags=["ideas"])

USER_ID_DESCRIPTION = "The caller's user id (or external subject); any other value is 403"
IDEA_ID_DESCRIPTION = "The idea's id"
PathUserId = Annotated[str, Path(min_length=1, max_length=255, description=USER_ID_DESCRIPTION)]
IdeaId = Annotated[uuid.UUID, Path(description=IDEA_ID_DESCRIPTION)]
# The same two, for the direct endpoints.
_USER_ID = TypeAdapter(Annotated[str, StringConstraints(min_length=1, max_length=255)])
_IDEA_ID = TypeAdapter(uuid.UUID)


def _ensure_path_user(principal: Principal, user_id: str) -> None:
    if not principal.owns_path_user(user_id):
        raise PermissionDeniedException(
            "The path's user_id must be your own: ideas are private to their owner",
            code="PERMISSION_DENIED",
        )


def _service(permission: Permission) -> Callable[..., Any]:
    """A dependency giving the idea service of a caller holding `permission` who is the path's
    `{user_id}`."""

    async def build(
        user_id: PathUserId,
        session: DbSession,
        principal: Annotated[Principal, Depends(require_permission(permission))],
    ) -> IdeaService:
        _ensure_path_user(principal, user_id)
        return IdeaService(session, principal)

    build.__name__ = f"idea_service_{permission.replace(':', '_')}"
    return build


async def _reader(request: Request) -> IdeaReader:
    """The idea reader of a caller allowed to read ideas who is the path's `{user_id}`: no
    session, reads go to the read connections. For the direct endpoints (the list and the
    single idea: the platform's hottest routes, see `creativeflow.http.direct`)."""
    principal = await authorize(request, Permission.IDEAS_READ)
    _ensure_path_user(principal, path_value(request, "user_id", _USER_ID))
    return IdeaReader(request.app.state.platform.reads, principal)


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
    openapi_extra=documented(
        path={"user_id": (_USER_ID, USER_ID_DESCRIPTION)}, query=IdeaListParams
    ),
)
@authenticating
@direct
async def list_ideas(request: Request) -> Response:
    reader = await _reader(request)
    page = await reader.list_page(query_model(request, IdeaListParams))
    body = render_idea_page(
        page.items,
        total=page.total,
        limit=page.limit,
        offset=page.offset,
        has_more=page.has_more,
        next_cursor=page.next_cursor,
    )
    return Response(body, media_type=JSONResponse.media_type)


@router.get(
    ITEM,
    response_model=IdeaRead,
    summary="Get an idea",
    responses=error_responses(401, 403, 404, 422),
    openapi_extra=documented(
        path={
            "user_id": (_USER_ID, USER_ID_DESCRIPTION),
            "idea_id": (_IDEA_ID, IDEA_ID_DESCRIPTION),
        }
    ),
)
@authenticating
@direct
async def get_idea(request: Request) -> Response:
    reader = await _reader(request)
    idea = await reader.get(path_value(request, "idea_id", _IDEA_ID))
    return Response(render_idea(idea), media_type=JSONResponse.media_type)


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
