"""Character and location queries: the only place in the aggregate that builds SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.db.repository import Repository, escape_like
from creativeflow.stories.cast.models import (
    Character,
    CharacterDesign,
    Location,
    LocationReference,
    PanelCharacter,
)
from creativeflow.stories.content.models import Chapter, Panel, Scene

CastT = TypeVar("CastT", Character, Location)
LinkT = TypeVar("LinkT", CharacterDesign, LocationReference)


class CastRepository(Repository[CastT], Generic[CastT, LinkT]):
    link_model: type[LinkT]
    link_owner: str  # the link table's column naming the character or location

    async def named(self, project_id: uuid.UUID, name_key: str) -> CastT | None:
        model: Any = self.model
        stmt = select(model).where(model.project_id == project_id, model.name_key == name_key)
        found: CastT | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    async def of_project(
        self, project_id: uuid.UUID, search: str | None, *, limit: int, offset: int
    ) -> tuple[Sequence[CastT], int]:
        model: Any = self.model
        stmt = select(model).where(model.project_id == project_id)
        if search:
            pattern = f"%{escape_like(search.lower())}%"
            stmt = stmt.where(model.name_key.like(pattern, escape="\\"))
        return await self.page(stmt.order_by(model.name_key, model.id), limit=limit, offset=offset)

    async def many(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, CastT]:
        """The rows of `ids` that exist, by id (one statement)."""
        if not ids:
            return {}
        model: Any = self.model
        rows = (await self.session.execute(select(model).where(model.id.in_(list(ids))))).scalars()
        return {row.id: row for row in rows}

    async def names(self, project_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
        """Every (id, name) of the project, by name (one statement)."""
        model: Any = self.model
        stmt = select(model.id, model.name).where(model.project_id == project_id)
        rows = await self.session.execute(stmt.order_by(model.name_key))
        return [(row_id, name) for row_id, name in rows.all()]

    async def in_project(self, project_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Which of `ids` belong to the project (one statement)."""
        if not ids:
            return set()
        model: Any = self.model
        stmt = select(model.id).where(model.project_id == project_id, model.id.in_(list(ids)))
        return set((await self.session.execute(stmt)).scalars())

    # -- reference images --------------------------------------------------------------------

    def _owner(self) -> Any:
        return getattr(self.link_model, self.link_owner)

    async def links(self, owner_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[LinkT]]:
        """Each owner's images, primary first then oldest first (one statement)."""
        if not owner_ids:
            return {}
        link: Any = self.link_model
        stmt = (
            select(link)
            .where(self._owner().in_(list(owner_ids)))
            .order_by(link.is_primary.desc(), link.created_at, link.id)
        )
        found: dict[uuid.UUID, list[LinkT]] = {owner_id: [] for owner_id in owner_ids}
        for row in (await self.session.execute(stmt)).scalars():
            found[getattr(row, self.link_owner)].append(row)
        return found

    async def link(self, owner_id: uuid.UUID, image_id: uuid.UUID) -> LinkT | None:
        link: Any = self.link_model
        stmt = select(link).where(self._owner() == owner_id, link.image_id == image_id)
        found: LinkT | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    async def clear_primary(self, owner_id: uuid.UUID) -> None:
        link: Any = self.link_model
        await self.session.execute(
            update(link)
            .where(self._owner() == owner_id, link.is_primary.is_(True))
            .values(is_primary=False)
            .execution_options(synchronize_session="fetch")
        )


class CharacterRepository(CastRepository[Character, CharacterDesign]):
    model = Character
    link_model = CharacterDesign
    link_owner = "character_id"


class LocationRepository(CastRepository[Location, LocationReference]):
    model = Location
    link_model = LocationReference
    link_owner = "location_id"


_READING_ORDER = (Chapter.position, Scene.position, Panel.position)


class PanelCastRepository:
    """Who and where a panel shows, and the panels a character or location appears in."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def characters_of(
        self, panel_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        if not panel_ids:
            return {}
        stmt = (
            select(PanelCharacter.panel_id, PanelCharacter.character_id)
            .where(PanelCharacter.panel_id.in_(list(panel_ids)))
            .order_by(PanelCharacter.panel_id, PanelCharacter.position)
        )
        found: dict[uuid.UUID, list[uuid.UUID]] = {panel_id: [] for panel_id in panel_ids}
        for panel_id, character_id in await self.session.execute(stmt):
            found[panel_id].append(character_id)
        return found

    async def set_characters(self, panel_id: uuid.UUID, character_ids: Sequence[uuid.UUID]) -> None:
        await self.session.execute(
            delete(PanelCharacter).where(PanelCharacter.panel_id == panel_id)
        )
        if character_ids:
            await self.session.execute(
                insert(PanelCharacter),
                [
                    {"panel_id": panel_id, "character_id": character_id, "position": index}
                    for index, character_id in enumerate(character_ids, 1)
                ],
            )

    async def _page(
        self, condition: Any, join: Any, *, limit: int, offset: int
    ) -> tuple[list[Row[Any]], int]:
        base = select(Panel.id).join(Scene, Scene.id == Panel.scene_id)
        if join is not None:
            base = base.join(*join)
        columns = (
            select(
                Panel.id.label("panel_id"),
                Panel.scene_id,
                Scene.chapter_id,
                Chapter.position.label("chapter_position"),
                Scene.position.label("scene_position"),
                Panel.position.label("panel_position"),
                Panel.description,
            )
            .join(Scene, Scene.id == Panel.scene_id)
            .join(Chapter, Chapter.id == Scene.chapter_id)
        )
        if join is not None:
            columns = columns.join(*join)
        stmt = (
            columns.where(condition).order_by(*_READING_ORDER, Panel.id).limit(limit).offset(offset)
        )
        result: Any = await self.session.execute(stmt)
        rows: list[Row[Any]] = list(result.all())
        total = (
            await self.session.execute(
                select(func.count()).select_from(base.where(condition).subquery())
            )
        ).scalar_one()
        return rows, int(total)

    async def appearances(
        self, character_id: uuid.UUID, *, limit: int, offset: int
    ) -> tuple[list[Row[Any]], int]:
        join = (PanelCharacter, PanelCharacter.panel_id == Panel.id)
        return await self._page(
            PanelCharacter.character_id == character_id, join, limit=limit, offset=offset
        )

    async def usage(
        self, location_id: uuid.UUID, *, limit: int, offset: int
    ) -> tuple[list[Row[Any]], int]:
        return await self._page(Panel.location_id == location_id, None, limit=limit, offset=offset)
