"""The reads behind the workflows: what a project still lacks, one statement a question
whatever its size (how many, and the first few in reading order, by a window count), and a
scene's most common panel location."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Exists, Select, and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.stories.cast.models import Character, CharacterDesign, PanelCharacter
from creativeflow.stories.content.models import Chapter, Panel, Scene
from creativeflow.stories.drafts.models import Draft, DraftKind, DraftStatus, DraftTarget
from creativeflow.stories.style.models import StyleGuide


def _waiting(kind: DraftKind, target: DraftTarget, target_id: Any) -> Exists:
    """A draft of `kind` pending for the row's `target_id`."""
    return exists().where(
        Draft.target_type == target,
        Draft.target_id == target_id,
        Draft.kind == kind,
        Draft.status == DraftStatus.PENDING,
    )


@dataclass(frozen=True, slots=True)
class Found:
    """How many match, and the first few (each row: the id, then what else was selected)."""

    count: int
    rows: list[tuple[Any, ...]]

    @property
    def ids(self) -> list[uuid.UUID]:
        return [row[0] for row in self.rows]


@dataclass(frozen=True, slots=True)
class SpokenPanel:
    id: uuid.UUID
    dialogue: list[dict[str, Any]]


class WorkflowReads:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _found(self, stmt: Select[*tuple[Any, ...]], limit: int) -> Found:
        """`stmt` (its first column the id) counted over every match, its first `limit` rows."""
        counted = stmt.add_columns(func.count().over().label("matches")).limit(limit)
        rows = [tuple(row) for row in await self.session.execute(counted)]
        return Found(rows[0][-1] if rows else 0, [row[:-1] for row in rows])

    async def scene_location(self, scene_id: uuid.UUID) -> uuid.UUID | None:
        """The location most of the scene's panels are at (the earliest first on a tie)."""
        stmt = (
            select(Panel.location_id)
            .where(Panel.scene_id == scene_id, Panel.location_id.is_not(None))
            .group_by(Panel.location_id)
            .order_by(func.count().desc(), func.min(Panel.position))
            .limit(1)
        )
        found: uuid.UUID | None = (await self.session.execute(stmt)).scalar()
        return found

    # -- what a project lacks ------------------------------------------------------------------

    async def has_chapters(self, project_id: uuid.UUID) -> bool:
        stmt = select(exists().where(Chapter.project_id == project_id))
        return bool((await self.session.execute(stmt)).scalar())

    async def has_style_guide(self, project_id: uuid.UUID) -> bool:
        stmt = select(exists().where(StyleGuide.project_id == project_id))
        return bool((await self.session.execute(stmt)).scalar())

    async def empty_chapters(self, project_id: uuid.UUID, limit: int) -> Found:
        stmt = (
            select(Chapter.id)
            .where(
                Chapter.project_id == project_id,
                ~exists().where(Scene.chapter_id == Chapter.id),
            )
            .order_by(Chapter.position)
        )
        return await self._found(stmt, limit)

    async def chapters_without_cover(self, project_id: uuid.UUID, limit: int) -> Found:
        stmt = (
            select(Chapter.id)
            .where(Chapter.project_id == project_id, Chapter.cover_image_id.is_(None))
            .order_by(Chapter.position)
        )
        return await self._found(stmt, limit)

    async def scenes_without_panels(self, project_id: uuid.UUID, limit: int) -> Found:
        """Scenes with no panel and no storyboard draft waiting for them."""
        stmt = (
            select(Scene.id)
            .join(Chapter, Chapter.id == Scene.chapter_id)
            .where(
                Scene.project_id == project_id,
                ~exists().where(Panel.scene_id == Scene.id),
                ~_waiting(DraftKind.STORYBOARD, DraftTarget.SCENE, Scene.id),
            )
            .order_by(Chapter.position, Scene.position)
        )
        return await self._found(stmt, limit)

    async def panels_without_images(self, project_id: uuid.UUID, limit: int) -> Found:
        """Panels with no image selected and no image draft waiting for them; rows carry
        the panel's scene id."""
        stmt = (
            select(Panel.id, Panel.scene_id)
            .join(Scene, Scene.id == Panel.scene_id)
            .join(Chapter, Chapter.id == Scene.chapter_id)
            .where(
                Panel.project_id == project_id,
                Panel.selected_image_id.is_(None),
                ~_waiting(DraftKind.IMAGE, DraftTarget.PANEL, Panel.id),
            )
            .order_by(Chapter.position, Scene.position, Panel.position)
        )
        return await self._found(stmt, limit)

    async def pending_drafts(
        self, project_id: uuid.UUID, limit: int
    ) -> tuple[dict[str, int], Found]:
        """Pending drafts by target type, and the oldest few."""
        pending = and_(Draft.project_id == project_id, Draft.status == DraftStatus.PENDING)
        by_target = select(Draft.target_type, func.count()).where(pending)
        counts = {
            str(target): int(count)
            for target, count in await self.session.execute(by_target.group_by(Draft.target_type))
        }
        oldest = select(Draft.id).where(pending).order_by(Draft.created_at, Draft.id)
        return counts, await self._found(oldest, limit)

    async def characters_without_design(self, project_id: uuid.UUID, limit: int) -> Found:
        stmt = (
            select(Character.id)
            .where(
                Character.project_id == project_id,
                ~exists().where(CharacterDesign.character_id == Character.id),
            )
            .order_by(Character.name_key, Character.id)
        )
        return await self._found(stmt, limit)

    async def locked_without_primary(self, project_id: uuid.UUID, limit: int) -> Found:
        primary = exists().where(
            CharacterDesign.character_id == Character.id, CharacterDesign.is_primary.is_(True)
        )
        stmt = (
            select(Character.id)
            .where(Character.project_id == project_id, Character.locked.is_(True), ~primary)
            .order_by(Character.name_key, Character.id)
        )
        return await self._found(stmt, limit)

    async def spoken_panels(self, project_id: uuid.UUID, limit: int) -> list[SpokenPanel]:
        """The first `limit` panels with dialogue, in reading order, with their bubbles."""
        stmt = (
            select(Panel.id, Panel.dialogue)
            .join(Scene, Scene.id == Panel.scene_id)
            .join(Chapter, Chapter.id == Scene.chapter_id)
            .where(Panel.project_id == project_id, Panel.dialogue_words > 0)
            .order_by(Chapter.position, Scene.position, Panel.position)
            .limit(limit)
        )
        return [SpokenPanel(row[0], list(row[1] or [])) for row in await self.session.execute(stmt)]

    async def panel_casts(self, panel_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        if not panel_ids:
            return {}
        stmt = (
            select(PanelCharacter.panel_id, PanelCharacter.character_id)
            .where(PanelCharacter.panel_id.in_(list(panel_ids)))
            .order_by(PanelCharacter.panel_id, PanelCharacter.position)
        )
        cast: dict[uuid.UUID, list[uuid.UUID]] = {}
        for panel_id, character_id in await self.session.execute(stmt):
            cast.setdefault(panel_id, []).append(character_id)
        return cast

    async def character_ids(self, project_id: uuid.UUID) -> set[uuid.UUID]:
        stmt = select(Character.id).where(Character.project_id == project_id)
        return set((await self.session.execute(stmt)).scalars())
