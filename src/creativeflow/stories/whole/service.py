"""Stats and duplication of a whole project.

Stats are read by any member. Any member may duplicate a project: the copy is theirs, with new
ids throughout and no members; images (selected images, covers, style references) are shared
with the original, not copied; the copy is not linked to the content idea the original grew
from.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.db.ids import uuid7
from creativeflow.db.types import utcnow
from creativeflow.db.versioning import Versioned
from creativeflow.identity.principal import Principal
from creativeflow.stories.cast.models import (
    Character,
    CharacterDesign,
    Location,
    LocationReference,
    PanelCharacter,
)
from creativeflow.stories.content.models import Chapter, Panel, Scene
from creativeflow.stories.instructions.models import Instruction
from creativeflow.stories.projects.models import Project
from creativeflow.stories.projects.repository import ProjectRepository
from creativeflow.stories.projects.service import Need, ProjectService
from creativeflow.stories.style.models import StyleGuide
from creativeflow.stories.style.repository import StyleGuideRepository
from creativeflow.stories.whole.repository import (
    CopyRepository,
    PanelTotals,
    StatsRepository,
    copyable,
)
from creativeflow.stories.whole.schemas import (
    ChapterStats,
    ContentCounts,
    GenerationStats,
    ProjectStats,
    UsageStats,
)


def _counts(
    totals: list[PanelTotals], scenes: int, characters: int, locations: int
) -> dict[str, int]:
    panels = sum(total.panels for total in totals)
    with_image = sum(total.with_image for total in totals)
    return ContentCounts(
        scenes=scenes,
        panels=panels,
        dialogue_words=sum(total.dialogue_words for total in totals),
        panels_with_image=with_image,
        panels_without_image=panels - with_image,
        characters=characters,
        locations=locations,
    ).model_dump()


def _chapter_counts(totals: PanelTotals | None, scenes: int) -> dict[str, int]:
    if totals is None:  # no panels
        return _counts([], scenes, 0, 0)
    return _counts([totals], scenes, totals.characters, totals.locations)


class StatsService:
    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.projects = ProjectService(session, principal)
        self.stats = StatsRepository(session)

    async def project_stats(self, project_id: uuid.UUID) -> ProjectStats:
        """Counts for the project and per chapter, in six statements whatever its size. The
        project's characters and locations are those it defines; a chapter's, the distinct ones
        its panels use (so the chapters' numbers need not add up to the project's)."""
        await self.projects.grant(project_id, Need.READ)
        chapters = await self.stats.chapters(project_id)
        totals = await self.stats.panel_totals(project_id)
        cast = await self.stats.cast_totals(project_id)
        by_status = await self.stats.jobs_by_status(project_id)
        usage = await self.stats.usage(project_id)
        per_chapter = {total.chapter_id: total for total in totals}
        scenes = sum(chapter.scenes for chapter in chapters)
        return ProjectStats(
            project_id=project_id,
            chapters=len(chapters),
            **_counts(totals, scenes, cast.characters, cast.locations),
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
                    **_chapter_counts(per_chapter.get(chapter.id), chapter.scenes),
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
        instructions = await self.content.instructions(project_id)
        characters = await self.content.characters(project_id)
        locations = await self.content.locations(project_id)
        designs = await self.content.designs(project_id)
        references = await self.content.references(project_id)
        casting = await self.content.panel_characters(project_id)

        actor, now = self.principal.user_id, utcnow()
        audit = {"created_by": actor, "updated_by": actor, "created_at": now, "updated_at": now}
        fields = copyable(source) | {"owner_id": actor, "idea_id": None}
        fields["title"] = title or f"{source.title} (copy)"[:200]
        copy = Project(id=uuid7(), **fields, **audit)
        await self.project_rows.add(copy)

        def copied(entity: Any, **changes: Any) -> dict[str, Any]:
            fresh = (
                {"id": uuid7(), "version": 1} if isinstance(entity, Versioned) else {"id": uuid7()}
            )
            return copyable(entity) | audit | fresh | changes

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
        character_ids = {character.id: uuid7() for character in characters}
        location_ids = {location.id: uuid7() for location in locations}
        await self.content.insert_many(
            Character,
            [
                copied(character, id=character_ids[character.id], project_id=copy.id)
                for character in characters
            ],
        )
        await self.content.insert_many(
            Location,
            [
                copied(location, id=location_ids[location.id], project_id=copy.id)
                for location in locations
            ],
        )
        await self.content.insert_many(
            CharacterDesign,
            [copied(d, character_id=character_ids[d.character_id]) for d in designs],
        )
        await self.content.insert_many(
            LocationReference,
            [copied(r, location_id=location_ids[r.location_id]) for r in references],
        )
        panel_ids = {panel.id: uuid7() for panel in panels}
        await self.content.insert_many(
            Panel,
            [
                copied(
                    panel,
                    id=panel_ids[panel.id],
                    project_id=copy.id,
                    scene_id=scene_ids[panel.scene_id],
                    location_id=location_ids.get(panel.location_id),  # type: ignore[arg-type]
                )
                for panel in panels
            ],
        )
        await self.content.insert_many(
            PanelCharacter,
            [
                {
                    "panel_id": panel_ids[link.panel_id],
                    "character_id": character_ids[link.character_id],
                    "position": link.position,
                }
                for link in casting
            ],
        )
        await self.content.insert_many(
            Instruction,
            [
                copied(
                    instruction,
                    project_id=copy.id,
                    chapter_id=chapter_ids.get(instruction.chapter_id),  # type: ignore[arg-type]
                    scene_id=scene_ids.get(instruction.scene_id),  # type: ignore[arg-type]
                    panel_id=panel_ids.get(instruction.panel_id),  # type: ignore[arg-type]
                )
                for instruction in instructions
            ],
        )
        self.projects.changed(copy.id, "project", copy.id, "created", copy.version)
        return copy
