"""Style guide, stats and duplication rules.

The style guide follows the project's membership: members read it, editors and the owner change
it (its first `PUT` creates it; version 0 stands for "none yet"). Stats are read by any member.
Any member may duplicate a project: the copy is theirs, with new ids throughout and no members;
images (selected images, covers, style references) are shared with the original, not copied;
the copy is not linked to the content idea the original grew from.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.assets.service import ImageService
from creativeflow.db.ids import uuid7
from creativeflow.db.types import utcnow
from creativeflow.db.versioning import VersionConflict, ensure_version
from creativeflow.identity.principal import Principal
from creativeflow.shared.core.exceptions import NotFoundException, ValidationException
from creativeflow.stories.content.models import Chapter, Panel, Scene
from creativeflow.stories.projects.models import Project
from creativeflow.stories.projects.repository import ProjectRepository
from creativeflow.stories.projects.service import Need, ProjectService
from creativeflow.stories.style.models import StyleGuide
from creativeflow.stories.style.repository import (
    CopyRepository,
    PanelTotals,
    StatsRepository,
    StyleGuideRepository,
    copyable,
)
from creativeflow.stories.style.schemas import (
    ChapterStats,
    ContentCounts,
    GenerationStats,
    ProjectStats,
    StyleGuideRead,
    StyleGuideReplace,
    UsageStats,
)


def style_guide_read(project_id: uuid.UUID, guide: StyleGuide | None) -> StyleGuideRead:
    if guide is None:
        return StyleGuideRead(
            project_id=project_id, version=0, created_at=None, updated_at=None, updated_by=None
        )
    return StyleGuideRead(
        project_id=project_id,
        art_style=guide.art_style,
        palette=guide.palette,
        line_weight=guide.line_weight,
        lettering=guide.lettering,
        aspect_ratio=guide.aspect_ratio,
        negative_prompt=guide.negative_prompt,
        reference_image_ids=[uuid.UUID(image_id) for image_id in guide.reference_image_ids],
        version=guide.version,
        created_at=guide.created_at,
        updated_at=guide.updated_at,
        updated_by=guide.updated_by,
    )


class StyleGuideService:
    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal
        self.projects = ProjectService(session, principal)
        self.guides = StyleGuideRepository(session)

    async def get(self, project_id: uuid.UUID) -> StyleGuideRead:
        await self.projects.grant(project_id, Need.READ)
        return style_guide_read(project_id, await self.guides.of_project(project_id))

    async def replace(
        self, project_id: uuid.UUID, data: StyleGuideReplace, expected: int | None
    ) -> StyleGuideRead:
        await self.projects.grant(project_id, Need.WRITE)
        guide = await self.guides.of_project(project_id)
        if guide is None and expected not in (None, 0):
            raise VersionConflict(
                f"The style guide is at version 0, not {expected}: reload it",
                data={"current_version": 0},
            )
        if guide is not None:
            ensure_version(guide, expected, "style guide")
        known = set(guide.reference_image_ids) if guide is not None else set()
        await self._check_references(
            [image_id for image_id in data.reference_image_ids if str(image_id) not in known]
        )
        fields: dict[str, Any] = data.model_dump(exclude={"version"}, mode="json")
        actor = self.principal.user_id
        action = "updated"
        if guide is None:
            action = "created"
            guide = StyleGuide(
                id=uuid7(), project_id=project_id, created_by=actor, updated_by=actor, **fields
            )
            try:
                await self.guides.add(guide)
            except IntegrityError:  # created by a concurrent first PUT
                raise VersionConflict(
                    "Someone created the style guide since you read it: reload it",
                    data={"current_version": 1},
                ) from None
        else:
            for field, value in fields.items():
                setattr(guide, field, value)
            guide.touch(actor)
            await self.guides.flush()
        self.projects.changed(project_id, "style_guide", guide.id, action, guide.version)
        return style_guide_read(project_id, guide)

    async def _check_references(self, image_ids: list[uuid.UUID]) -> None:
        images = ImageService(self.session)
        for image_id in image_ids:
            try:
                await images.get(self.principal, image_id)
            except NotFoundException:
                raise ValidationException.for_field(
                    "reference_image_ids", f"no image {image_id} that you may read"
                ) from None


def _counts(totals: list[PanelTotals], scenes: int) -> dict[str, int]:
    panels = sum(total.panels for total in totals)
    with_image = sum(total.with_image for total in totals)
    return ContentCounts(
        scenes=scenes,
        panels=panels,
        dialogue_words=sum(total.dialogue_words for total in totals),
        panels_with_image=with_image,
        panels_without_image=panels - with_image,
    ).model_dump()


class StatsService:
    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.projects = ProjectService(session, principal)
        self.stats = StatsRepository(session)

    async def project_stats(self, project_id: uuid.UUID) -> ProjectStats:
        """Counts for the project and per chapter, in five statements whatever its size."""
        await self.projects.grant(project_id, Need.READ)
        chapters = await self.stats.chapters(project_id)
        totals = await self.stats.panel_totals(project_id)
        by_status = await self.stats.jobs_by_status(project_id)
        usage = await self.stats.usage(project_id)
        per_chapter = {total.chapter_id: [total] for total in totals}
        return ProjectStats(
            project_id=project_id,
            chapters=len(chapters),
            **_counts(totals, sum(chapter.scenes for chapter in chapters)),
            generations=GenerationStats(total=sum(by_status.values()), by_status=by_status),
            usage=UsageStats(
                calls=usage.calls,
                succeeded=usage.succeeded,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                images=usage.images,
                duration_ms=usage.duration_ms,
            ),
            by_chapter=[
                ChapterStats(
                    chapter_id=chapter.id,
                    position=chapter.position,
                    title=chapter.title,
                    **_counts(per_chapter.get(chapter.id, []), chapter.scenes),
                )
                for chapter in chapters
            ],
        )


class DuplicateService:
    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.principal = principal
        self.projects = ProjectService(session, principal)
        self.project_rows = ProjectRepository(session)
        self.guides = StyleGuideRepository(session)
        self.content = CopyRepository(session)

    async def duplicate(self, project_id: uuid.UUID, title: str | None) -> Project:
        """A deep copy owned by the caller: one read and one bulk insert per table."""
        source = (await self.projects.grant(project_id, Need.READ)).project
        guide = await self.guides.of_project(project_id)
        chapters = await self.content.chapters(project_id)
        scenes = await self.content.scenes(project_id)
        panels = await self.content.panels(project_id)

        actor, now = self.principal.user_id, utcnow()
        audit = {"created_by": actor, "updated_by": actor, "created_at": now, "updated_at": now}
        fields = copyable(source) | {"owner_id": actor, "idea_id": None}
        fields["title"] = title or f"{source.title} (copy)"[:200]
        copy = Project(id=uuid7(), **fields, **audit)
        await self.project_rows.add(copy)

        def copied(entity: Any, **changes: Any) -> dict[str, Any]:
            return copyable(entity) | audit | {"id": uuid7(), "version": 1, **changes}

        if guide is not None:
            await self.content.insert_many(StyleGuide, [copied(guide, project_id=copy.id)])
        chapter_ids = {chapter.id: uuid7() for chapter in chapters}
        await self.content.insert_many(
            Chapter,
            [
                copied(chapter, id=chapter_ids[chapter.id], project_id=copy.id)
                for chapter in chapters
            ],
        )
        scene_ids = {scene.id: uuid7() for scene in scenes}
        await self.content.insert_many(
            Scene,
            [
                copied(
                    scene,
                    id=scene_ids[scene.id],
                    project_id=copy.id,
                    chapter_id=chapter_ids[scene.chapter_id],
                )
                for scene in scenes
            ],
        )
        await self.content.insert_many(
            Panel,
            [
                copied(panel, project_id=copy.id, scene_id=scene_ids[panel.scene_id])
                for panel in panels
            ],
        )
        self.projects.changed(copy.id, "project", copy.id, "created", copy.version)
        return copy
