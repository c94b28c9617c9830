"""What a consistency check reads: a project's panels with their places, its whole cast, and a
panel's locked characters. The casting and the designs come through the cast service."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.stories.cast.models import Character, CharacterDesign, Location, PanelCharacter
from creativeflow.stories.content.models import Chapter, Panel, Scene


class ConsistencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def chapter_in_project(self, project_id: uuid.UUID, chapter_id: uuid.UUID) -> bool:
        stmt = select(Chapter.id).where(Chapter.id == chapter_id, Chapter.project_id == project_id)
        return (await self.session.execute(stmt)).first() is not None

    async def panels(self, project_id: uuid.UUID, chapter_id: uuid.UUID | None) -> list[Row[Any]]:
        """A project's panels (or a chapter's) in reading order, with their chapter and scene
        and the positions of all three (one statement)."""
        stmt = (
            select(
                Panel.id,
                Panel.description,
                Panel.dialogue,
                Panel.location_id,
                Panel.selected_image_id,
                Panel.position.label("panel_position"),
                Panel.scene_id,
                Scene.position.label("scene_position"),
                Scene.chapter_id,
                Chapter.position.label("chapter_position"),
            )
            .join(Scene, Scene.id == Panel.scene_id)
            .join(Chapter, Chapter.id == Scene.chapter_id)
            .where(Panel.project_id == project_id)
            .order_by(Chapter.position, Scene.position, Panel.position, Panel.id)
        )
        if chapter_id is not None:
            stmt = stmt.where(Scene.chapter_id == chapter_id)
        return list((await self.session.execute(stmt)).all())

    async def characters(self, project_id: uuid.UUID) -> Sequence[Character]:
        stmt = (
            select(Character)
            .where(Character.project_id == project_id)
            .order_by(Character.name_key, Character.id)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def locations(self, project_id: uuid.UUID) -> Sequence[Location]:
        stmt = (
            select(Location)
            .where(Location.project_id == project_id)
            .order_by(Location.name_key, Location.id)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def locked_cast(self, panel_id: uuid.UUID) -> Sequence[Character]:
        """The locked characters cast in a panel, in the panel's order."""
        stmt = (
            select(Character)
            .join(PanelCharacter, PanelCharacter.character_id == Character.id)
            .where(PanelCharacter.panel_id == panel_id, Character.locked.is_(True))
            .order_by(PanelCharacter.position)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def primary_designs(
        self, character_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        """Each character's primary design images (one statement)."""
        found: dict[uuid.UUID, list[uuid.UUID]] = {
            character_id: [] for character_id in character_ids
        }
        if not character_ids:
            return found
        stmt = (
            select(CharacterDesign.character_id, CharacterDesign.image_id)
            .where(
                CharacterDesign.character_id.in_(list(character_ids)),
                CharacterDesign.is_primary.is_(True),
            )
            .order_by(CharacterDesign.created_at, CharacterDesign.id)
        )
        for character_id, image_id in await self.session.execute(stmt):
            found[character_id].append(image_id)
        return found
