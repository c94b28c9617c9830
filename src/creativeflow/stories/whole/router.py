"""A project's stats (`GET /projects/{id}/stats`), duplication (`POST /projects/{id}/duplicate`)
and import from a bundle (`POST /projects/import`; the export is `publishing/router.py`).

A project you are not a member of is 404 PROJECT_NOT_FOUND.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Body, Response, status

from creativeflow.http.auth import DbSession
from creativeflow.http.problems import error_responses
from creativeflow.http.routing import api_router
from creativeflow.http.versioning import set_etag
from creativeflow.stories.parameters import ProjectId, Reader, Writer
from creativeflow.stories.projects.schemas import ProjectRead
from creativeflow.stories.projects.service import project_read
from creativeflow.stories.whole.bundle_schemas import ImportResult, StoryBundle
from creativeflow.stories.whole.bundles import BundleService
from creativeflow.stories.whole.schemas import DuplicateRequest, ProjectStats
from creativeflow.stories.whole.service import DuplicateService, StatsService

router = api_router(prefix="/projects", tags=["story projects"])


@router.get(
    "/{project_id}/stats",
    response_model=ProjectStats,
    summary="A project's counts, generations and usage, in total and per chapter",
    description="Chapters, scenes, panels, words of dialogue, panels with and without a "
    "selected image, characters and locations; the project's generation jobs by status and "
    "their provider usage. The project's `characters` and `locations` are all it defines; a "
    "chapter's are the distinct ones appearing in its panels. A fixed number of queries "
    "whatever the project's size.",
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


@router.post(
    "/import",
    status_code=status.HTTP_201_CREATED,
    response_model=ImportResult,
    summary="Make a project from an exported bundle",
    description="The new project is yours, with new ids throughout. Every field is validated "
    "as the create routes do (a problem names its place, `chapters[0].scenes[1].fields.title`); "
    "images are matched by content address among those you may read and shared into the new "
    "project; those not found are listed in `missing_images`.",
    responses=error_responses(401, 403, 422),
)
async def import_project(
    bundle: StoryBundle, session: DbSession, principal: Writer, response: Response
) -> ImportResult:
    project, missing = await BundleService(session, principal).import_bundle(bundle)
    response.headers["Location"] = f"/api/v1/projects/{project.id}"
    return ImportResult(project_id=str(project.id), missing_images=missing)
