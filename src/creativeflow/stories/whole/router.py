"""A project's stats (`GET /projects/{id}/stats`) and duplication (`POST /projects/{id}/duplicate`).

A project you are not a member of is 404 PROJECT_NOT_FOUND.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Body, Depends, Path, Response, status

from creativeflow.http.auth import DbSession, require_permission
from creativeflow.http.problems import error_responses
from creativeflow.http.routing import api_router
from creativeflow.http.versioning import set_etag
from creativeflow.identity.permissions import Permission
from creativeflow.identity.principal import Principal
from creativeflow.stories.projects.schemas import ProjectRead
from creativeflow.stories.projects.service import project_read
from creativeflow.stories.whole.schemas import DuplicateRequest, ProjectStats
from creativeflow.stories.whole.service import DuplicateService, StatsService

router = api_router(prefix="/projects", tags=["story projects"])

ProjectId = Annotated[uuid.UUID, Path(description="The project's id")]
Reader = Annotated[Principal, Depends(require_permission(Permission.STORIES_READ))]
Writer = Annotated[Principal, Depends(require_permission(Permission.STORIES_WRITE))]


@router.get(
    "/{project_id}/stats",
    response_model=ProjectStats,
    summary="A project's counts, generations and usage, in total and per chapter",
    description="Chapters, scenes, panels, words of dialogue, panels with and without a "
    "selected image; the project's generation jobs by status and their provider usage. A "
    "fixed number of queries whatever the project's size.",
    responses=error_responses(401, 403, 404, 422),
)
async def project_stats(
    project_id: ProjectId, session: DbSession, principal: Reader
) -> ProjectStats:
    return await StatsService(session, principal).project_stats(project_id)


@router.post(
    "/{project_id}/duplicate",
    status_code=status.HTTP_201_CREATED,
    response_model=ProjectRead,
    summary="Copy a project, with its style guide, chapters, scenes and panels, as yours",
    description="Any member may duplicate; the copy is owned by the caller, has no members and "
    "new ids throughout; images are shared with the original, not copied. Title: "
    "'<title> (copy)' unless given.",
    responses=error_responses(401, 403, 404, 422),
)
async def duplicate_project(
    project_id: ProjectId,
    session: DbSession,
    principal: Writer,
    response: Response,
    data: Annotated[DuplicateRequest | None, Body()] = None,
) -> ProjectRead:
    copy = await DuplicateService(session, principal).duplicate(
        project_id, data.title if data is not None else None
    )
    response.headers["Location"] = f"/api/v1/projects/{copy.id}"
    set_etag(response, copy.version)
    return project_read(copy, "owner")
