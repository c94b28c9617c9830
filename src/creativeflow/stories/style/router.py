"""A project's style guide (`/projects/{id}/style-guide`), its stats and its duplication.

Access follows the project: members read; editors and the owner change the style guide; anyone
else gets 404 PROJECT_NOT_FOUND; a viewer changing it 403 PROJECT_ROLE_INSUFFICIENT. `PUT`
takes `If-Match` (or `version` in the body; 0 while the project has none) and answers 409
VERSION_CONFLICT when it is stale.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Body, Depends, Path, Response, status

from creativeflow.http.auth import DbSession, require_permission
from creativeflow.http.problems import error_responses
from creativeflow.http.routing import api_router
from creativeflow.http.versioning import IfMatch, expected_version, set_etag
from creativeflow.identity.permissions import Permission
from creativeflow.identity.principal import Principal
from creativeflow.stories.projects.schemas import ProjectRead
from creativeflow.stories.projects.service import project_read
from creativeflow.stories.style.schemas import (
    DuplicateRequest,
    ProjectStats,
    StyleGuideRead,
    StyleGuideReplace,
)
from creativeflow.stories.style.service import DuplicateService, StatsService, StyleGuideService

router = api_router(prefix="/projects", tags=["story style guides"])

ProjectId = Annotated[uuid.UUID, Path(description="The project's id")]
Reader = Annotated[Principal, Depends(require_permission(Permission.STORIES_READ))]
Writer = Annotated[Principal, Depends(require_permission(Permission.STORIES_WRITE))]


@router.get(
    "/{project_id}/style-guide",
    response_model=StyleGuideRead,
    summary="A project's style guide (the defaults, at version 0, until one is saved)",
    responses=error_responses(401, 403, 404, 422),
)
async def get_style_guide(
    project_id: ProjectId, session: DbSession, principal: Reader, response: Response
) -> StyleGuideRead:
    guide = await StyleGuideService(session, principal).get(project_id)
    set_etag(response, guide.version)
    return guide


@router.put(
    "/{project_id}/style-guide",
    response_model=StyleGuideRead,
    summary="Replace a project's style guide (the first PUT creates it)",
    description="Palette colours as #rrggbb; aspect ratio as W:H; reference images must be "
    "images you may read.",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def replace_style_guide(
    project_id: ProjectId,
    data: StyleGuideReplace,
    session: DbSession,
    principal: Writer,
    response: Response,
    if_match: IfMatch,
) -> StyleGuideRead:
    guide = await StyleGuideService(session, principal).replace(
        project_id, data, expected_version(if_match, data.version)
    )
    set_etag(response, guide.version)
    return guide


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
