"""Instruction queries: the only place in the aggregate that builds SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import case, or_, select

from creativeflow.db.repository import Repository
from creativeflow.stories.instructions.models import SCOPE_RANK, Instruction

_SCOPE_ORDER = case(
    {scope.value: rank for scope, rank in SCOPE_RANK.items()}, value=Instruction.scope
)


class InstructionRepository(Repository[Instruction]):
    model = Instruction

    async def page_of_project(
        self,
        project_id: uuid.UUID,
        *,
        scope: str | None,
        enabled: bool | None,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[Instruction], int]:
        stmt = select(Instruction).where(Instruction.project_id == project_id)
        if scope is not None:
            stmt = stmt.where(Instruction.scope == scope)
        if enabled is not None:
            stmt = stmt.where(Instruction.enabled.is_(enabled))
        stmt = stmt.order_by(
            _SCOPE_ORDER,
            Instruction.priority.desc(),
            Instruction.created_at,
            Instruction.id,
        )
        return await self.page(stmt, limit=limit, offset=offset)

    async def enabled_of_project(self, project_id: uuid.UUID) -> Sequence[Instruction]:
        stmt = select(Instruction).where(
            Instruction.project_id == project_id, Instruction.enabled.is_(True)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def chain(
        self,
        project_id: uuid.UUID,
        *,
        chapter_id: uuid.UUID | None = None,
        scene_id: uuid.UUID | None = None,
        panel_id: uuid.UUID | None = None,
    ) -> Sequence[Instruction]:
        """The enabled instructions of a target's chain, in one statement: the project's, and
        those of the chapter, scene and panel given."""
        targets = [Instruction.scope == "project"]
        if chapter_id is not None:
            targets.append(Instruction.chapter_id == chapter_id)
        if scene_id is not None:
            targets.append(Instruction.scene_id == scene_id)
        if panel_id is not None:
            targets.append(Instruction.panel_id == panel_id)
        stmt = select(Instruction).where(
            Instruction.project_id == project_id,
            Instruction.enabled.is_(True),
            or_(*targets),
        )
        return (await self.session.execute(stmt)).scalars().all()
