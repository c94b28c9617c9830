"""The write side of ideas, in the request's ORM session: adding, changing and deleting ideas
and keeping each user's counter in step (reads are in `creativeflow.ideas.queries`).

Every statement starts from the owner filter (`_owned_by`, through `visible_to` for entities),
so no caller can reach another user's idea.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from creativeflow.db.ids import uuid7
from creativeflow.db.repository import Repository
from creativeflow.db.types import utcnow
from creativeflow.ideas.models import Idea
from creativeflow.ideas.queries import COUNTERS, IDEAS
from creativeflow.identity.principal import Principal


class IdeaRepository(Repository[Idea]):
    model = Idea

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    # -- the owner filter every query starts from ------------------------------------------

    @staticmethod
    def _owned_by(principal: Principal) -> ColumnElement[bool]:
        return IDEAS.c.user_id == principal.user_id

    def visible_to(self, principal: Principal) -> Select[Idea]:
        """The ideas `principal` may see: their own, and only those."""
        return select(Idea).where(self._owned_by(principal))

    # -- single ideas -------------------------------------------------------------------------

    async def get_visible(
        self, principal: Principal, idea_id: uuid.UUID, *, for_update: bool = False
    ) -> Idea | None:
        stmt = self.visible_to(principal).where(IDEAS.c.id == idea_id)
        if for_update:
            # Concurrent PATCHes of one idea apply one after the other, not over each other.
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def delete_visible(self, principal: Principal, idea_id: uuid.UUID) -> bool:
        """Delete in one statement; False when there was nothing of theirs to delete (so two
        concurrent deletes of one idea count once)."""
        stmt = delete(IDEAS).where(self._owned_by(principal), IDEAS.c.id == idea_id)
        result = await self.session.execute(stmt)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- the per-user counter -----------------------------------------------------------------

    async def record_create(self, principal: Principal) -> None:
        """total + 1 and version + 1 in one atomic upsert: the first idea creates the row,
        concurrent creators serialise on it, nothing is read and written back."""
        now = utcnow()
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        stmt = insert(COUNTERS).values(
            id=uuid7(),
            user_id=principal.user_id,
            total=1,
            version=1,
            created_at=now,
            updated_at=now,
            created_by=principal.user_id,
            updated_by=principal.user_id,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[COUNTERS.c.user_id],
            set_={
                "total": COUNTERS.c.total + 1,
                "version": COUNTERS.c.version + 1,
                "updated_at": now,
            },
        )
        await self.session.execute(stmt)

    async def record_delete(self, principal: Principal) -> None:
        await self._bump(principal, total=COUNTERS.c.total - 1)

    async def record_change(self, principal: Principal) -> None:
        await self._bump(principal)

    async def _bump(self, principal: Principal, **values: Any) -> None:
        stmt = (
            update(COUNTERS)
            .where(COUNTERS.c.user_id == principal.user_id)
            .values(version=COUNTERS.c.version + 1, updated_at=utcnow(), **values)
        )
        await self.session.execute(stmt)


__all__ = ["IdeaRepository"]
