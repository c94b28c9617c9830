"""`GET /projects/{id}/export` (JSON bundle, PDF, CBZ) and `GET /projects/{id}/exports/{job_id}`
(a large export's file, once its job is done).

These routes render and stream files, so they hold no transaction while they do: each opens
short units of work itself (`UngatedRoute`). Any member may export; a non-member gets 404.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from creativeflow.assets.storage import ObjectNotFound
from creativeflow.http.headers import IdempotencyKey
from creativeflow.http.problems import error_responses
from creativeflow.http.routing import UngatedRoute, unit_of_work
from creativeflow.jobs.schemas import JobRead
from creativeflow.stories.parameters import ProjectId, Reader
from creativeflow.stories.publishing.service import (
    MEDIA_TYPES,
    ComicExportService,
    ComicFormat,
    ExportExpired,
    render_comic,
    storage_fetch,
)
from creativeflow.stories.whole.bundle_schemas import StoryBundle
from creativeflow.stories.whole.bundles import BundleService

router = APIRouter(prefix="/projects", tags=["story projects"], route_class=UngatedRoute)


class ExportJob(BaseModel):
    job: JobRead
    download_url: str = Field(description="Where the file is once the job has succeeded")


_BINARY = {"schema": {"type": "string", "format": "binary"}}
_FILES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The bundle (json), or the file (pdf, cbz)",
        "content": {
            "application/json": {},
            MEDIA_TYPES[ComicFormat.PDF]: _BINARY,
            MEDIA_TYPES[ComicFormat.CBZ]: _BINARY,
        },
    },
    202: {"model": ExportJob, "description": "A large export, running as a job"},
}

_DOWNLOAD: dict[int | str, dict[str, Any]] = {
    200: {"description": "The file", "content": dict.fromkeys(MEDIA_TYPES.values(), _BINARY)}
}


def _attachment(data: bytes, media_type: str, filename: str) -> Response:
    return Response(
        data,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/{project_id}/export",
    response_model=StoryBundle,
    summary="Export a whole project: a JSON bundle, a PDF or a CBZ",
    description="`json`: everything in it (style guide, cast, chapters, scenes, panels with "
    "dialogue and prompts, instructions) with no ids, images by content address; "
    "`POST /projects/import` makes a project again from it. `pdf`: a title page, then each "
    "chapter (its cover or title page, then its panels in reading order on pages of the "
    "project's page format, right to left for manga), each panel's selected image or a "
    "labelled placeholder frame, its dialogue lettered (speech, thought, caption, sfx) in an "
    "embedded font that covers Hangul. `cbz`: the same pages as JPEG images in a ZIP with "
    "ComicInfo.xml. A project of more than STORY_EXPORT_INLINE_PANELS panels (or any, with "
    "`background=true`) is exported by a `stories.export` job: 202 with the job (progress on "
    "`/jobs/{id}` and the project's socket) and where to download the file when it is done. "
    "Any member.",
    responses=_FILES | error_responses(401, 403, 404, 409, 422),
)
async def export_project(
    project_id: ProjectId,
    request: Request,
    principal: Reader,
    format: Annotated[
        Literal["json", "pdf", "cbz"], Query(description="json, pdf or cbz")
    ] = "json",
    background: Annotated[
        bool, Query(description="pdf, cbz: run as a job whatever the project's size")
    ] = False,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    platform = request.app.state.platform
    if format == "json":
        async with unit_of_work(request, write=False) as session:
            bundle = await BundleService(session, principal).export(project_id)
        return _attachment(
            bundle.model_dump_json().encode(), "application/json", f"project-{project_id}.json"
        )
    comic_format = ComicFormat(format)
    async with unit_of_work(request, write=False) as session:
        service = ComicExportService(session, principal, platform.settings)
        comic = await service.comic(project_id)
    if not background and service.runs_inline(comic):
        file = await render_comic(comic, comic_format, storage_fetch(platform.storage))
        return _attachment(file.data, file.media_type, file.filename)
    async with unit_of_work(request) as session:
        job = await ComicExportService(session, principal, platform.settings).submit(
            project_id, comic_format, idempotency_key
        )
        body = ExportJob(
            job=JobRead.of(job),
            download_url=f"/api/v1/projects/{project_id}/exports/{job.id}",
        )
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=status.HTTP_202_ACCEPTED,
        headers={"Location": f"/api/v1/jobs/{job.id}"},
    )


@router.get(
    "/{project_id}/exports/{job_id}",
    response_class=Response,
    summary="Download a finished export (PDF or CBZ)",
    description="The file a `stories.export` job made. While the job is queued or running: "
    "409 JOB_NOT_FINISHED (with its progress); failed or cancelled: 409 JOB_FAILED / "
    "JOB_CANCELLED; another project's job or an unknown id: 404; a file deleted since (the "
    "job is about to be pruned): 410 EXPORT_EXPIRED. Any member.",
    responses=_DOWNLOAD | error_responses(401, 403, 404, 409, 410, 422),
)
async def download_export(
    project_id: ProjectId,
    job_id: Annotated[uuid.UUID, Path(description="The export job's id")],
    request: Request,
    principal: Reader,
) -> Response:
    platform = request.app.state.platform
    async with unit_of_work(request, write=False) as session:
        result = await ComicExportService(session, principal, platform.settings).finished_export(
            project_id, job_id
        )
    try:
        data = await platform.storage.get(result["file_key"])
    except ObjectNotFound:
        raise ExportExpired("The export's file is no longer stored; export again") from None
    return _attachment(data, result["media_type"], result["filename"])
