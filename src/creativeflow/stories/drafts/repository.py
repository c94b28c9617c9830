"""Draft queries: the only place in the package that builds SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, delete, func, select

from creativeflow.db.repository import Repository
from creativeflow.stories.drafts.models import Draft, DraftFeedback


@dataclass(frozen=True, slots=True)
class DraftFilters:
    project_id: uuid.UUID | None = None
    target_type: str | None = None
    target_id: uuid.UUID | None = None
    kind: str | None = None
    operation: str | None = None
    statuses: Sequence[str] = ()


class DraftRepository(Repository[Draft]):
    model = Draft

    async def page_in(
        self,
        projects: Select[Any],
        filters: DraftFilters,
        *,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[Draft], int]:
        """Newest first, among the drafts of `projects` (a select of project ids)."""
        stmt = select(Draft).where(Draft.project_id.in_(projects))
        if filters.project_id is not None:
            stmt = stmt.where(Draft.project_id == filters.project_id)
        if filters.target_type is not None:
            stmt = stmt.where(Draft.target_type == filters.target_type)
        if filters.target_id is not None:
            stmt = stmt.where(Draft.target_id == filters.target_id)
        if filters.kind is not None:
            stmt = stmt.where(Draft.kind == filters.kind)
        if filters.operation is not None:
            stmt = stmt.where(Draft.operation == filters.operation)
        if filters.statuses:
            stmt = stmt.where(Draft.status.in_(list(filters.statuses)))
        stmt = stmt.order_by(Draft.created_at.desc(), Draft.id.desc())
        return await self.page(stmt, limit=limit, offset=offset)

    async def many(self, draft_ids: Sequence[uuid.UUID]) -> list[Draft]:
        """The drafts by id, locked for the transaction (a bulk action decides on all of them
        at once)."""
        stmt = select(Draft).where(Draft.id.in_(draft_ids)).with_for_update()
        return list((await self.session.execute(stmt)).scalars())

    async def feedback_of(
        self, draft_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[DraftFeedback]]:
        if not draft_ids:
            return {}
        stmt = (
            select(DraftFeedback)
            .where(DraftFeedback.draft_id.in_(draft_ids))
            .order_by(DraftFeedback.created_at, DraftFeedback.id)
        )
        found: dict[uuid.UUID, list[DraftFeedback]] = {}
        for row in (await self.session.execute(stmt)).scalars():
            found.setdefault(row.draft_id, []).append(row)
        return found

    async def delete_many(self, draft_ids: Sequence[uuid.UUID]) -> int:
        stmt = delete(Draft).where(Draft.id.in_(draft_ids))
        return (await self.session.execute(stmt)).rowcount  # type: ignore[attr-defined,no-any-return]

    async def pending_counts(self, project_id: uuid.UUID) -> dict[str, int]:
        """Pending drafts of a project by target type."""
        stmt = (
            select(Draft.target_type, func.count())
            .where(Draft.project_id == project_id, Draft.status == "pending")
            .group_by(Draft.target_type)
        )
        return {target: count for target, count in (await self.session.execute(stmt)).all()}

    async def by_job(self, job_id: uuid.UUID) -> Draft | None:
        stmt = select(Draft).where(Draft.job_id == job_id)
        return (await self.session.execute(stmt)).scalars().first()
