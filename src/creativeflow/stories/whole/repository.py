"""Stats and duplication queries: a fixed number of statements whatever the project's size
(grouped aggregates for the stats; one read and one bulk insert per table for a copy)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, insert, select
from sqlalchemy.orm import aliased

from creativeflow.db.base import Base, Entity
from creativeflow.db.repository import Repository
from creativeflow.jobs.models import Job
from creativeflow.providers.models import UsageRecord
from creativeflow.stories.access import PROJECT_SUBJECT
from creativeflow.stories.cast.models import (
    Character,
    CharacterDesign,
    Location,
    LocationReference,
    PanelCharacter,
)
from creativeflow.stories.content.models import Chapter, Panel, Scene
from creativeflow.stories.instructions.models import Instruction


@dataclass(frozen=True, slots=True)
class ChapterRow:
    id: uuid.UUID
    position: int
    title: str
    scenes: int


@dataclass(frozen=True, slots=True)
class PanelTotals:
    """One chapter's panels: how many, how many with a selected image, their words, and the
    distinct characters appearing in them and locations they are set at."""

    chapter_id: uuid.UUID
    panels: int
    with_image: int
    dialogue_words: int
    characters: int
    locations: int


@dataclass(frozen=True, slots=True)
class CastTotals:
    """The characters and locations a project defines, used in a panel or not."""

    characters: int
    locations: int


@dataclass(frozen=True, slots=True)
class UsageTotals:
    calls: int
    succeeded: int
    input_tokens: int
    output_tokens: int
    images: int
    duration_ms: float


class StatsRepository(Repository[Chapter]):
    model = Chapter

    async def chapters(self, project_id: uuid.UUID) -> list[ChapterRow]:
        """The project's chapters in order, each with its number of scenes (one statement)."""
        stmt = (
            select(Chapter.id, Chapter.position, Chapter.title, func.count(Scene.id))
            .outerjoin(Scene, Scene.chapter_id == Chapter.id)
            .where(Chapter.project_id == project_id)
            .group_by(Chapter.id, Chapter.position, Chapter.title)
            .order_by(Chapter.position, Chapter.id)
        )
        return [
            ChapterRow(row[0], row[1], row[2], int(row[3]))
            for row in await self.session.execute(stmt)
        ]

    async def panel_totals(self, project_id: uuid.UUID) -> list[PanelTotals]:
        """Per chapter (one grouped statement; the chapter's distinct characters come from a
        subquery on the grouped chapter, as a join would count each panel once per character)."""
        cast, cast_panel, cast_scene = aliased(PanelCharacter), aliased(Panel), aliased(Scene)
        characters = (
            select(func.count(func.distinct(cast.character_id)))
            .join(cast_panel, cast_panel.id == cast.panel_id)
            .join(cast_scene, cast_scene.id == cast_panel.scene_id)
            .where(cast_scene.chapter_id == Scene.chapter_id)
            .correlate(Scene)
            .scalar_subquery()
        )
        stmt = (
            select(
                Scene.chapter_id,
                func.count(Panel.id),
                func.coalesce(
                    func.sum(case((Panel.selected_image_id.is_not(None), 1), else_=0)), 0
                ),
                func.coalesce(func.sum(Panel.dialogue_words), 0),
                characters,
                func.count(func.distinct(Panel.location_id)),  # NULL (no location) not counted
            )
            .join(Scene, Scene.id == Panel.scene_id)
            .where(Panel.project_id == project_id)
            .group_by(Scene.chapter_id)
        )
        return [
            PanelTotals(row[0], int(row[1]), int(row[2]), int(row[3]), int(row[4]), int(row[5]))
            for row in await self.session.execute(stmt)
        ]

    async def cast_totals(self, project_id: uuid.UUID) -> CastTotals:
        """How many characters and locations the project has (one statement)."""
        stmt = select(
            select(func.count(Character.id))
            .where(Character.project_id == project_id)
            .scalar_subquery(),
            select(func.count(Location.id))
            .where(Location.project_id == project_id)
            .scalar_subquery(),
        )
        row = (await self.session.execute(stmt)).one()
        return CastTotals(int(row[0]), int(row[1]))

    @staticmethod
    def _project_jobs(project_id: uuid.UUID) -> Any:
        return (Job.subject_type == PROJECT_SUBJECT, Job.subject_id == project_id)

    async def jobs_by_status(self, project_id: uuid.UUID) -> dict[str, int]:
        stmt = (
            select(Job.status, func.count())
            .where(*self._project_jobs(project_id))
            .group_by(Job.status)
        )
        return {
            getattr(row[0], "value", str(row[0])): int(row[1])
            for row in await self.session.execute(stmt)
        }

    async def usage(self, project_id: uuid.UUID) -> UsageTotals:
        """The usage ledger's rows for the project's jobs, summed (one statement)."""
        jobs = select(Job.id).where(*self._project_jobs(project_id))
        stmt = select(
            func.count(UsageRecord.id),
            func.coalesce(func.sum(case((UsageRecord.succeeded.is_(True), 1), else_=0)), 0),
            func.coalesce(func.sum(UsageRecord.input_tokens), 0),
            func.coalesce(func.sum(UsageRecord.output_tokens), 0),
            func.coalesce(func.sum(UsageRecord.images), 0),
            func.coalesce(func.sum(UsageRecord.duration_ms), 0.0),
        ).where(UsageRecord.job_id.in_(jobs))
        row = (await self.session.execute(stmt)).one()
        return UsageTotals(
            int(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4]), float(row[5])
        )


_AUDIT = frozenset({"id", "created_at", "updated_at", "created_by", "updated_by", "version"})


def copyable(entity: Entity) -> dict[str, Any]:
    """An entity's columns without its id, audit columns and version."""
    return {
        column.key: getattr(entity, column.key)
        for column in entity.__table__.columns
        if column.key not in _AUDIT
    }


class CopyRepository(Repository[Chapter]):
    """Reads a project's content whole and inserts copies in bulk (one statement a table)."""

    model = Chapter

    async def chapters(self, project_id: uuid.UUID) -> Sequence[Chapter]:
        stmt = select(Chapter).where(Chapter.project_id == project_id).order_by(Chapter.position)
        return (await self.session.execute(stmt)).scalars().all()

    async def scenes(self, project_id: uuid.UUID) -> Sequence[Scene]:
        stmt = select(Scene).where(Scene.project_id == project_id)
        return (await self.session.execute(stmt)).scalars().all()

    async def panels(self, project_id: uuid.UUID) -> Sequence[Panel]:
        stmt = select(Panel).where(Panel.project_id == project_id)
        return (await self.session.execute(stmt)).scalars().all()

    async def characters(self, project_id: uuid.UUID) -> Sequence[Character]:
        stmt = select(Character).where(Character.project_id == project_id)
        return (await self.session.execute(stmt)).scalars().all()

    async def locations(self, project_id: uuid.UUID) -> Sequence[Location]:
        stmt = select(Location).where(Location.project_id == project_id)
        return (await self.session.execute(stmt)).scalars().all()

    async def designs(self, project_id: uuid.UUID) -> Sequence[CharacterDesign]:
        stmt = (
            select(CharacterDesign)
            .join(Character, Character.id == CharacterDesign.character_id)
            .where(Character.project_id == project_id)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def references(self, project_id: uuid.UUID) -> Sequence[LocationReference]:
        stmt = (
            select(LocationReference)
            .join(Location, Location.id == LocationReference.location_id)
            .where(Location.project_id == project_id)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def panel_characters(self, project_id: uuid.UUID) -> Sequence[PanelCharacter]:
        stmt = (
            select(PanelCharacter)
            .join(Character, Character.id == PanelCharacter.character_id)
            .where(Character.project_id == project_id)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def instructions(self, project_id: uuid.UUID) -> Sequence[Instruction]:
        stmt = select(Instruction).where(Instruction.project_id == project_id)
        return (await self.session.execute(stmt)).scalars().all()

    async def insert_many(self, model: type[Base], rows: list[dict[str, Any]]) -> None:
        """One INSERT for all the rows (`render_nulls`: the ORM would otherwise group the rows
        by which of their columns are NULL, one statement a group)."""
        if rows:
            await self.session.execute(insert(model).execution_options(render_nulls=True), rows)
