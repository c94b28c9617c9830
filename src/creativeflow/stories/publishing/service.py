"""A project exported as a comic: PDF (pages of panels in reading order, lettered) or CBZ (one
image per page).

The project is read in one short read (the JSON bundle's statements, `whole/bundles.py`) and
turned into a `ComicSpec`; rendering then holds no transaction. Pages are laid out, then drawn
one at a time: a page's images are fetched, then the page is drawn in a worker thread, so the
event loop keeps serving and at most one page's images are in memory.

A project of up to STORY_EXPORT_INLINE_PANELS panels is answered in the request; a larger one
(or any, when asked) runs as a `stories.export` job whose result names the stored file,
downloaded from `GET /projects/{id}/exports/{job_id}`. The file is deleted with its job
(JOB_RETENTION_DAYS).
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.assets.storage import ObjectNotFound, ObjectStorage
from creativeflow.identity.principal import Principal
from creativeflow.jobs.models import Job
from creativeflow.jobs.service import JobService, Subject, succeeded_result
from creativeflow.settings import Settings
from creativeflow.shared.core.exceptions import BaseAPIException, NotFoundException
from creativeflow.stories.access import PROJECT_SUBJECT
from creativeflow.stories.projects.service import Need, ProjectService
from creativeflow.stories.publishing.cbz import CbzWriter, RasterPainter
from creativeflow.stories.publishing.layout import (
    ChapterSpec,
    ComicLayout,
    ComicSpec,
    Lettering,
    Page,
    PanelSpec,
)
from creativeflow.stories.publishing.pdf import PdfPainter
from creativeflow.stories.whole.bundle_schemas import StoryBundle
from creativeflow.stories.whole.bundles import BundleService

EXPORT_KIND = "stories.export"
_DPI = 150


class ComicFormat(StrEnum):
    PDF = "pdf"
    CBZ = "cbz"


MEDIA_TYPES = {ComicFormat.PDF: "application/pdf", ComicFormat.CBZ: "application/vnd.comicbook+zip"}

Fetch = Callable[[str], Awaitable[bytes | None]]
Progress = Callable[[float, str], Awaitable[None]]


class ExportExpired(BaseAPIException):
    status_code = 410
    code = "EXPORT_EXPIRED"
    title = "Gone"


@dataclass
class ComicFile:
    data: bytes
    media_type: str
    filename: str
    pages: int
    warnings: list[str] = field(default_factory=list)


# -- the comic of a project ----------------------------------------------------------------------


def comic_of(bundle: StoryBundle, storage_keys: dict[str, str]) -> ComicSpec:
    """The project's pages to be: its chapters' panels in reading order, scene after scene."""
    project = bundle.project

    def stored(digest: str | None) -> str | None:
        return storage_keys.get(digest) if digest else None

    chapters = []
    for c_number, chapter in enumerate(bundle.chapters, 1):
        panels = []
        for s_number, scene in enumerate(chapter.scenes, 1):
            for p_number, panel in enumerate(scene.panels, 1):
                fields = panel.fields
                panels.append(
                    PanelSpec(
                        label=f"Chapter {c_number} · Scene {s_number} · Panel {p_number}",
                        size=fields.get("layout_size"),
                        image=stored(panel.selected_image),
                        shot=fields.get("shot"),
                        description=fields.get("description"),
                        lettering=tuple(
                            Lettering(b["kind"], b["text"], b.get("position_hint"))
                            for b in panel.dialogue
                        ),
                    )
                )
        chapters.append(
            ChapterSpec(
                c_number,
                chapter.fields.get("title") or "",
                stored(chapter.cover_image),
                tuple(panels),
            )
        )
    return ComicSpec(
        title=project.get("title") or "Untitled",
        page_format=project.get("page_format") or "us_comic",
        reading_direction=project.get("reading_direction") or "ltr",
        logline=project.get("logline"),
        genre=project.get("genre"),
        chapters=tuple(chapters),
    )


def panel_count(comic: ComicSpec) -> int:
    return sum(len(chapter.panels) for chapter in comic.chapters)


def file_name(title: str, comic_format: ComicFormat) -> str:
    """An ASCII file name from the title (`The Neon Rain` → `the-neon-rain.pdf`)."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:80] or "comic"
    return f"{slug}.{comic_format.value}"


# -- rendering -----------------------------------------------------------------------------------


def storage_fetch(storage: ObjectStorage) -> Fetch:
    async def fetch(key: str) -> bytes | None:
        try:
            return await storage.get(key)
        except ObjectNotFound:
            return None  # drawn as an empty frame: one lost image does not sink the export

    return fetch


async def render_comic(
    comic: ComicSpec, comic_format: ComicFormat, fetch: Fetch, progress: Progress | None = None
) -> ComicFile:
    layout = ComicLayout(comic)
    pages: list[Page] = await asyncio.to_thread(lambda: list(layout.pages()))
    draw: Callable[[Page, dict[str, bytes | None]], None]
    finish: Callable[[], bytes]
    if comic_format is ComicFormat.PDF:
        pdf = PdfPainter(title=comic.title, subject=comic.logline, dpi=_DPI)
        draw, finish = pdf.paint, pdf.finish
    else:
        raster, cbz = RasterPainter(_DPI), CbzWriter(comic)

        def draw(page: Page, images: dict[str, bytes | None]) -> None:
            cbz.add(raster.paint(page, images))

        finish = cbz.finish
    for number, page in enumerate(pages, 1):
        images = {key: await fetch(key) for key in page.image_keys}
        await asyncio.to_thread(draw, page, images)
        del images
        if progress is not None:
            await progress(number / (len(pages) + 1), f"page {number} of {len(pages)}")
    data = await asyncio.to_thread(finish)
    return ComicFile(
        data=data,
        media_type=MEDIA_TYPES[comic_format],
        filename=file_name(comic.title, comic_format),
        pages=len(pages),
        warnings=layout.warnings,
    )


# -- the service ---------------------------------------------------------------------------------


class ComicExportService:
    def __init__(self, session: AsyncSession, principal: Principal, settings: Settings) -> None:
        self.session = session
        self.principal = principal
        self.settings = settings
        self.jobs = JobService(
            session, principal, default_max_attempts=settings.job_default_max_attempts
        )

    async def comic(self, project_id: uuid.UUID) -> ComicSpec:
        """The project as a comic, if the caller may read it (404 otherwise)."""
        bundle, storage_keys = await BundleService(
            self.session, self.principal
        ).export_with_storage(project_id)
        return comic_of(bundle, storage_keys)

    def runs_inline(self, comic: ComicSpec) -> bool:
        return panel_count(comic) <= self.settings.story_export_inline_panels

    async def submit(
        self, project_id: uuid.UUID, comic_format: ComicFormat, idempotency_key: str | None
    ) -> Job:
        await ProjectService(self.session, self.principal).grant(project_id, Need.READ)
        job, _ = await self.jobs.submit(
            EXPORT_KIND,
            {"project_id": str(project_id), "format": comic_format.value},
            subject=Subject(PROJECT_SUBJECT, project_id),
            subject_checked=True,  # reading the project is enough to export it
            idempotency_key=idempotency_key,
        )
        return job

    async def finished_export(self, project_id: uuid.UUID, job_id: uuid.UUID) -> dict[str, Any]:
        """The result of a succeeded export job of this project: 404 for another project's
        (or an unreadable) job, 409 while it runs or when it failed."""
        await ProjectService(self.session, self.principal).grant(project_id, Need.READ)
        job = await self.jobs.get(job_id, kinds=[EXPORT_KIND])
        if job.subject_id != project_id:
            raise NotFoundException(f"No export {job_id} of this project", code="EXPORT_NOT_FOUND")
        return succeeded_result(job, "The export has no file")
