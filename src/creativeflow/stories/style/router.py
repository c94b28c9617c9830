"""A project's style guide (`/projects/{id}/style-guide`).

Access follows the project: members read; editors and the owner change the style guide; anyone
else gets 404 PROJECT_NOT_FOUND; a viewer changing it 403 PROJECT_ROLE_INSUFFICIENT. `PUT`
takes `If-Match` (or `version` in the body; 0 while the project has none) and answers 409
VERSION_CONFLICT when it is stale.
"""

from __future__ import annotations

from fastapi import Response

from creativeflow.http.auth import DbSession
from creativeflow.http.problems import error_responses
from creativeflow.http.routing import api_router
from creativeflow.http.versioning import IfMatch, expected_version, set_etag
from creativeflow.stories.parameters import ProjectId, Reader, Writer
from creativeflow.stories.style.schemas import (
    StyleGuideRead,
    StyleGuideReplace,
)
from creativeflow.stories.style.service import StyleGuideService

router = api_router(prefix="/projects", tags=["story style guides"])


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
