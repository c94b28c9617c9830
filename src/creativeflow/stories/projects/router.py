"""/api/v1/projects: graphic-novel projects and their members.

A project you neither own nor belong to is 404 PROJECT_NOT_FOUND; as a member without the right
(a viewer changing it, an editor managing members) 403 PROJECT_ROLE_INSUFFICIENT. Changes take
`If-Match` (or `version` in the body) and answer 409 VERSION_CONFLICT when it is stale.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import Path, Query, Response, status

from creativeflow.http.auth import DbSession
from creativeflow.http.pagination import Limit, Offset, Page
from creativeflow.http.problems import error_responses
from creativeflow.http.routing import api_router
from creativeflow.http.versioning import IfMatch, expected_version, set_etag
from creativeflow.stories.parameters import ProjectId, Reader, Skip, Writer
from creativeflow.stories.projects.models import ProjectStatus
from creativeflow.stories.projects.schemas import (
    MemberAdd,
    MemberRead,
    MemberUpdate,
    ProjectCreate,
    ProjectRead,
    ProjectReplace,
    ProjectUpdate,
)
from creativeflow.stories.projects.service import Need, ProjectService, project_read

router = api_router(prefix="/projects", tags=["story projects"])

UserId = Annotated[uuid.UUID, Path(description="The member's user id")]
SortField = Literal["title", "-title", "created_at", "-created_at", "updated_at", "-updated_at"]

_CHANGE_ERRORS = error_responses(401, 403, 404, 409, 422)


def _answer(response: Response, read: ProjectRead) -> ProjectRead:
    set_etag(response, read.version)
    return read


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProjectRead,
    summary="Start a graphic-novel project",
    responses=error_responses(401, 403, 422),
)
async def create_project(
    data: ProjectCreate, session: DbSession, principal: Writer, response: Response
) -> ProjectRead:
    project = await ProjectService(session, principal).create(data)
    response.headers["Location"] = f"/api/v1/projects/{project.id}"
    return _answer(response, project_read(project, "owner"))


@router.get(
    "",
    response_model=Page[ProjectRead],
    summary="List your projects: owned and shared with you",
    description="Search title and logline; filter by status and by `ownership` (owned, "
    "shared, all); sort by title, created_at or updated_at (`-` descending). `skip` is "
    "another name for `offset`.",
    responses=error_responses(401, 403, 422),
)
async def list_projects(
    session: DbSession,
    principal: Reader,
    search: Annotated[str | None, Query(max_length=200)] = None,
    status_: Annotated[list[ProjectStatus] | None, Query(alias="status")] = None,
    ownership: Literal["all", "owned", "shared"] = "all",
    idea_id: Annotated[
        uuid.UUID | None, Query(description="Only projects grown from this content idea")
    ] = None,
    sort: SortField = "-updated_at",
    limit: Limit = 20,
    offset: Offset = 0,
    skip: Skip = None,
) -> Page[ProjectRead]:
    start = skip if skip is not None else offset
    items, total = await ProjectService(session, principal).list_page(
        search=search,
        statuses=[s.value for s in status_ or []],
        ownership=ownership,
        idea_id=idea_id,
        sort=sort,
        limit=limit,
        offset=start,
    )
    return Page[ProjectRead].of(items, total=total, limit=limit, offset=start)


@router.post(
    "/from-idea/{idea_id}",
    status_code=status.HTTP_201_CREATED,
    response_model=ProjectRead,
    summary="Start a project from one of your content ideas",
    description="The idea's title, its notes as the synopsis, its tags as genres; the project "
    "keeps the idea's id (`GET /projects?idea_id=` finds the projects an idea became). "
    "Another user's idea is 404.",
    responses=error_responses(401, 403, 404, 422),
)
async def create_from_idea(
    idea_id: Annotated[uuid.UUID, Path(description="Your content idea's id")],
    session: DbSession,
    principal: Writer,
    response: Response,
) -> ProjectRead:
    project = await ProjectService(session, principal).create_from_idea(idea_id)
    response.headers["Location"] = f"/api/v1/projects/{project.id}"
    return _answer(response, project_read(project, "owner"))


@router.get(
    "/{project_id}",
    response_model=ProjectRead,
    summary="Get a project",
    description="With your `role` in it, and its version as the `ETag`.",
    responses=error_responses(401, 403, 404, 422),
)
async def get_project(
    project_id: ProjectId, session: DbSession, principal: Reader, response: Response
) -> ProjectRead:
    grant = await ProjectService(session, principal).grant(project_id, Need.READ)
    return _answer(response, project_read(grant.project, grant.role))


@router.put(
    "/{project_id}",
    response_model=ProjectRead,
    summary="Replace a project's details",
    description="Every field; those left out take their defaults. Owner or editor.",
    responses=_CHANGE_ERRORS,
)
async def replace_project(
    project_id: ProjectId,
    data: ProjectReplace,
    session: DbSession,
    principal: Writer,
    if_match: IfMatch,
    response: Response,
) -> ProjectRead:
    grant = await ProjectService(session, principal).replace(
        project_id, data, expected_version(if_match, data.version)
    )
    return _answer(response, project_read(grant.project, grant.role))


@router.patch(
    "/{project_id}",
    response_model=ProjectRead,
    summary="Change some of a project's details",
    description="Only the fields sent change. Owner or editor.",
    responses=_CHANGE_ERRORS,
)
async def update_project(
    project_id: ProjectId,
    data: ProjectUpdate,
    session: DbSession,
    principal: Writer,
    if_match: IfMatch,
    response: Response,
) -> ProjectRead:
    grant = await ProjectService(session, principal).update(
        project_id, data, expected_version(if_match, data.version)
    )
    return _answer(response, project_read(grant.project, grant.role))


@router.delete(
    "/{project_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a project and everything in it",
    description="The owner only.",
    responses=_CHANGE_ERRORS,
)
async def delete_project(
    project_id: ProjectId, session: DbSession, principal: Writer, if_match: IfMatch
) -> Response:
    await ProjectService(session, principal).delete(project_id, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- members --------------------------------------------------------------------------------


@router.get(
    "/{project_id}/members",
    response_model=list[MemberRead],
    summary="Who works on a project",
    description="The owner first, then the members in the order they were added.",
    responses=error_responses(401, 403, 404, 422),
)
async def list_members(
    project_id: ProjectId, session: DbSession, principal: Reader
) -> list[MemberRead]:
    return await ProjectService(session, principal).member_list(project_id)


@router.post(
    "/{project_id}/members",
    status_code=status.HTTP_201_CREATED,
    response_model=MemberRead,
    summary="Share a project with a user, as editor or viewer",
    description="By username or email. The owner only; 409 ALREADY_MEMBER.",
    responses=_CHANGE_ERRORS,
)
async def add_member(
    project_id: ProjectId, data: MemberAdd, session: DbSession, principal: Writer
) -> MemberRead:
    return await ProjectService(session, principal).add_member(project_id, data)


@router.patch(
    "/{project_id}/members/{user_id}",
    response_model=MemberRead,
    summary="Change a member's role",
    description="The owner only.",
    responses=_CHANGE_ERRORS,
)
async def change_member(
    project_id: ProjectId,
    user_id: UserId,
    data: MemberUpdate,
    session: DbSession,
    principal: Writer,
) -> MemberRead:
    return await ProjectService(session, principal).change_member(project_id, user_id, data.role)


@router.delete(
    "/{project_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a member (or leave a project)",
    description="The owner removes anyone; a member may remove themselves.",
    responses=_CHANGE_ERRORS,
)
async def remove_member(
    project_id: ProjectId, user_id: UserId, session: DbSession, principal: Reader
) -> Response:
    await ProjectService(session, principal).remove_member(project_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
