"""Chapter, scene and panel queries: the only place in the aggregate that builds SQL.

`Siblings` keeps one level's positions contiguous (1..n under each parent). Its shifts are
single UPDATE statements, whatever the number of siblings; callers first lock the project's
order (`ProjectRepository.lock`), so concurrent changes of order queue instead of interleaving.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from creativeflow.db.repository import Repository
from creativeflow.stories.content.models import Chapter, Panel, Scene

ChildT = TypeVar("ChildT", Chapter, Scene, Panel)


class Siblings(Generic[ChildT]):
    def __init__(
        self,
        session: AsyncSession,
        model: type[ChildT],
        parent_column: InstrumentedAttribute[uuid.UUID],
    ) -> None:
        self.session = session
        self.model: type[ChildT] = model
        self.parent_column = parent_column

    async def count(self, parent_id: uuid.UUID) -> int:
        stmt = select(func.count()).select_from(self.model).where(self.parent_column == parent_id)
        return int((await self.session.execute(stmt)).scalar_one())

    async def _shift(self, parent_id: uuid.UUID, condition: Any, delta: Any) -> None:
        model: Any = self.model
        await self.session.execute(
            update(model)
            .where(self.parent_column == parent_id, condition)
            .values(position=delta)
            .execution_options(synchronize_session=False)
        )

    async def open_gap(self, parent_id: uuid.UUID, at: int) -> None:
        """Make room at `at`: siblings from there move one down."""
        model: Any = self.model
        await self._shift(parent_id, model.position >= at, model.position + 1)

    async def close_gap(self, parent_id: uuid.UUID, at: int) -> None:
        """Close the hole a removed sibling left at `at`."""
        model: Any = self.model
        await self._shift(parent_id, model.position > at, model.position - 1)

    async def move(self, parent_id: uuid.UUID, child_id: uuid.UUID, old: int, new: int) -> None:
        """Move one sibling from `old` to `new`; those in between shift by one."""
        if old == new:
            return
        model: Any = self.model
        low, high = min(old, new), max(old, new)
        step = -1 if new > old else 1
        await self._shift(
            parent_id,
            model.position.between(low, high),
            case((model.id == child_id, new), else_=model.position + step),
        )

    async def set_order(self, parent_id: uuid.UUID, ordered_ids: Sequence[uuid.UUID]) -> None:
        """Number the siblings in exactly this order (one statement)."""
        model: Any = self.model
        if not ordered_ids:
            return
        await self._shift(
            parent_id,
            model.id.in_(list(ordered_ids)),
            case(
                {child_id: index for index, child_id in enumerate(ordered_ids, 1)}, value=model.id
            ),
        )

    async def ids_in_order(self, parent_id: uuid.UUID) -> list[uuid.UUID]:
        model: Any = self.model
        stmt = select(model.id).where(self.parent_column == parent_id).order_by(model.position)
        return list((await self.session.execute(stmt)).scalars())

    async def counts(self, parent_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        """How many children each parent has (one grouped statement)."""
        if not parent_ids:
            return {}
        stmt = (
            select(self.parent_column, func.count())
            .where(self.parent_column.in_(list(parent_ids)))
            .group_by(self.parent_column)
        )
        found = {row[0]: int(row[1]) for row in await self.session.execute(stmt)}
        return {parent_id: found.get(parent_id, 0) for parent_id in parent_ids}

    async def page(
        self, parent_id: uuid.UUID, *, limit: int, offset: int, count: bool = True
    ) -> tuple[Sequence[ChildT], int]:
        """One page in order, and how many there are (`count` False: the page's length)."""
        model: Any = self.model
        stmt = (
            select(model)
            .where(self.parent_column == parent_id)
            .order_by(model.position, model.id)
            .limit(limit)
            .offset(offset)
        )
        # Fresh rows: positions may have just been renumbered by a statement.
        stmt = stmt.execution_options(populate_existing=True)
        rows = (await self.session.execute(stmt)).scalars().all()
        return rows, await self.count(parent_id) if count else len(rows)


class ChapterRepository(Repository[Chapter]):
    model = Chapter

    def siblings(self) -> Siblings[Chapter]:
        return Siblings(self.session, Chapter, Chapter.project_id)


class SceneRepository(Repository[Scene]):
    model = Scene

    def siblings(self) -> Siblings[Scene]:
        return Siblings(self.session, Scene, Scene.chapter_id)


class PanelRepository(Repository[Panel]):
    model = Panel

    async def in_reading_order(
        self,
        project_id: uuid.UUID,
        *,
        chapter_id: uuid.UUID | None = None,
        scene_id: uuid.UUID | None = None,
    ) -> list[tuple[Panel, uuid.UUID]]:
        """A project's panels (or a chapter's, or a scene's) in reading order, each with its
        chapter's id (one statement)."""
        stmt = (
            select(Panel, Scene.chapter_id)
            .join(Scene, Scene.id == Panel.scene_id)
            .join(Chapter, Chapter.id == Scene.chapter_id)
            .where(Panel.project_id == project_id)
            .order_by(Chapter.position, Scene.position, Panel.position)
        )
        if chapter_id is not None:
            stmt = stmt.where(Scene.chapter_id == chapter_id)
        if scene_id is not None:
            stmt = stmt.where(Panel.scene_id == scene_id)
        return [(row[0], row[1]) for row in await self.session.execute(stmt)]

    def siblings(self) -> Siblings[Panel]:
        return Siblings(self.session, Panel, Panel.scene_id)
