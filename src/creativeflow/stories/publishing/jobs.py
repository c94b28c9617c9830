"""`stories.export`: a project rendered as a PDF or CBZ in a job, its file stored.

The job runs as the member who asked, with their rights as they are when it runs: removed
from the project in the meantime, the export fails with PROJECT_NOT_FOUND. The file is stored
content-addressed; its job's result names it, and it is deleted when `jobs.prune` deletes the
job.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from creativeflow.assets.storage import ObjectNotFound, StorageUnavailable
from creativeflow.identity.repository import UserRepository
from creativeflow.identity.service import principal_for
from creativeflow.jobs.context import JobContext
from creativeflow.jobs.errors import JobFailed
from creativeflow.jobs.kinds import Retries, job_kind
from creativeflow.shared.core.exceptions import BaseAPIException
from creativeflow.stories.publishing.service import (
    EXPORT_KIND,
    ComicExportService,
    ComicFormat,
    render_comic,
    storage_fetch,
)

if TYPE_CHECKING:
    from creativeflow.identity.principal import Principal
    from creativeflow.platform import Platform


class ExportInput(BaseModel):
    project_id: uuid.UUID
    format: ComicFormat = Field(description="pdf or cbz")


async def delete_export_file(platform: Platform, result: dict[str, Any]) -> None:
    key = result.get("file_key")
    if isinstance(key, str):
        with contextlib.suppress(ObjectNotFound):
            await platform.storage.delete(key)


async def _member(platform: Platform, owner_id: uuid.UUID | None) -> Principal:
    async with platform.read_sessions() as session:
        user = await UserRepository(session).get_with_roles(owner_id) if owner_id else None
        if user is None or not user.is_active:
            raise JobFailed("OWNER_GONE", "The member who asked for the export is no longer active")
        return principal_for(user)


@job_kind(
    EXPORT_KIND,
    ExportInput,
    description="Render a story project as a PDF or a CBZ, and store the file",
    time_limit_seconds=1800,
    retries=Retries(max_attempts=2, backoff_seconds=10),
    on_prune=delete_export_file,
)
async def export_comic(context: JobContext, data: ExportInput) -> dict[str, Any]:
    platform = context.platform
    member = await _member(platform, context.owner_id)
    try:
        async with platform.read_sessions() as session:
            comic = await ComicExportService(session, member, platform.settings).comic(
                data.project_id
            )
        await context.progress(0.02, "project read")
        file = await render_comic(
            comic, data.format, storage_fetch(platform.storage), context.progress
        )
        stored = await platform.storage.put(file.data, content_type=file.media_type)
    except BaseAPIException as exc:  # the project is gone, or no longer readable
        raise JobFailed(exc.code, exc.detail) from exc
    except StorageUnavailable as exc:
        raise JobFailed("STORAGE_UNAVAILABLE", str(exc), retryable=True) from exc
    return {
        "file_key": stored.key,
        "filename": file.filename,
        "media_type": file.media_type,
        "size_bytes": stored.size,
        "pages": file.pages,
        "warnings": file.warnings,
        "download_url": f"/api/v1/projects/{data.project_id}/exports/{context.job_id}",
    }
