"""The reads behind a text task's context: one statement each, whatever the project's size
(a project's cast, its chapters, the scenes a character is in, a scene's panels, a panel with
its scene)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.stories.cast.models import Character, CharacterRole, PanelCharacter
from creativeflow.stories.content.models import Chapter, Panel, Scene

# The cast in the order a prompt names it: protagonists first, then by name.
_ROLE_RANK = case(
    {role.value: rank for rank, role in enumerate(CharacterRole)},
    value=Character.role,
    else_=len(CharacterRole),
)


@dataclass(frozen=True, slots=True)
class CastMember:
    id: uuid.UUID
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class ChapterLine:
    id: uuid.UUID
    position: int
    title: str
    summary: str | None


@dataclass(frozen=True, slots=True)
class SceneLine:
    id: uuid.UUID
    chapter_position: int
    position: int
    title: str
    summary: str | None


class TaskReads:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def cast(self, project_id: uuid.UUID) -> list[CastMember]:
        """The project's characters, protagonists first, then by name."""
        stmt = (
            select(Character.id, Character.name, Character.role)
            .where(Character.project_id == project_id)
            .order_by(_ROLE_RANK, Character.name_key, Character.id)
        )
        return [CastMember(*row) for row in await self.session.execute(stmt)]

    async def chapters(self, project_id: uuid.UUID) -> list[ChapterLine]:
        """The project's chapters in order, with their summaries."""
        stmt = (
            select(Chapter.id, Chapter.position, Chapter.title, Chapter.summary)
            .where(Chapter.project_id == project_id)
            .order_by(Chapter.position)
        )
        return [ChapterLine(*row) for row in await self.session.execute(stmt)]

    async def scenes_with(self, character_id: uuid.UUID, *, limit: int) -> list[SceneLine]:
        """The first `limit` scenes in reading order with a panel the character is in."""
        stmt = (
            select(Scene.id, Chapter.position, Scene.position, Scene.title, Scene.summary)
            .join(Chapter, Chapter.id == Scene.chapter_id)
            .where(
                Scene.id.in_(
                    select(Panel.scene_id)
                    .join(PanelCharacter, PanelCharacter.panel_id == Panel.id)
                    .where(PanelCharacter.character_id == character_id)
                )
            )
            .order_by(Chapter.position, Scene.position)
            .limit(limit)
        )
        return [SceneLine(*row) for row in await self.session.execute(stmt)]

    async def scene(self, scene_id: uuid.UUID) -> Scene | None:
        scene: Scene | None = await self.session.get(Scene, scene_id)
        return scene

    async def chapter(self, chapter_id: uuid.UUID) -> Chapter | None:
        chapter: Chapter | None = await self.session.get(Chapter, chapter_id)
        return chapter

    async def character(self, character_id: uuid.UUID) -> Character | None:
        character: Character | None = await self.session.get(Character, character_id)
        return character

    async def panels_of(self, scene_id: uuid.UUID) -> list[Panel]:
        """A scene's panels in order."""
        stmt = select(Panel).where(Panel.scene_id == scene_id).order_by(Panel.position)
        return list((await self.session.execute(stmt)).scalars())

    async def panel_with_scene(self, panel_id: uuid.UUID) -> tuple[Panel, Scene] | None:
        stmt = (
            select(Panel, Scene).join(Scene, Scene.id == Panel.scene_id).where(Panel.id == panel_id)
        )
        row = (await self.session.execute(stmt)).first()
        return None if row is None else (row[0], row[1])
