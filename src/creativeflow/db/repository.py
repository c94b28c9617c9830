"""A small generic repository: the shared verbs every table needs, bound to one session."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.db.base import Entity

ModelT = TypeVar("ModelT", bound=Entity)


def escape_like(value: str) -> str:
    """`value` taken literally in a LIKE pattern (with `escape="\\"`)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Repository(Generic[ModelT]):
    model: type[ModelT]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_or_none(self, entity_id: uuid.UUID, *options: Any) -> ModelT | None:
        if options:
            stmt = select(self.model).where(self.model.id == entity_id).options(*options)
            return (await self.session.execute(stmt)).scalar_one_or_none()
        return await self.session.get(self.model, entity_id)

    async def add(self, entity: ModelT) -> ModelT:
        self.session.add(entity)
        await self.session.flush()
        return entity

    async def delete(self, entity: ModelT) -> None:
        await self.session.delete(entity)
        await self.session.flush()

    async def flush(self) -> None:
        await self.session.flush()

    async def refresh(self, entity: ModelT) -> ModelT:
        """Read the row again (after statements that changed it behind the ORM's back)."""
        await self.session.refresh(entity)
        return entity

    async def page(
        self, stmt: Select[Any], *, limit: int, offset: int
    ) -> tuple[Sequence[ModelT], int]:
        """One page of `stmt` and the total it would return without limit and offset."""
        count_stmt = select(func.count()).select_from(stmt.order_by(None).subquery())
        total = (await self.session.execute(count_stmt)).scalar_one()
        rows = (await self.session.execute(stmt.limit(limit).offset(offset))).scalars().all()
        return rows, total
