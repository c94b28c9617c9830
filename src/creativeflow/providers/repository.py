"""Usage ledger queries: the only place in the module that builds SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, func, select

from creativeflow.db.repository import Repository
from creativeflow.providers.models import UsageRecord


class UsageRepository(Repository[UsageRecord]):
    model = UsageRecord

    def _day(self) -> Any:
        """The UTC calendar day of a record, as text, on either backend."""
        if self.session.bind is not None and self.session.bind.dialect.name == "postgresql":
            return func.to_char(func.timezone("UTC", UsageRecord.created_at), "YYYY-MM-DD")
        return func.strftime("%Y-%m-%d", UsageRecord.created_at)

    async def totals(
        self,
        *,
        user_id: uuid.UUID | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[RowMapping], int]:
        """Sums per (day, provider, model, modality), newest day first."""
        day = self._day().label("day")
        stmt = select(
            day,
            UsageRecord.provider,
            UsageRecord.model,
            UsageRecord.modality,
            func.count().label("calls"),
            func.sum(func.cast(UsageRecord.succeeded, type_=UsageRecord.input_tokens.type)).label(
                "succeeded"
            ),
            func.sum(UsageRecord.input_tokens).label("input_tokens"),
            func.sum(UsageRecord.output_tokens).label("output_tokens"),
            func.sum(UsageRecord.images).label("images"),
            func.sum(UsageRecord.duration_ms).label("duration_ms"),
        )
        if user_id is not None:
            stmt = stmt.where(UsageRecord.user_id == user_id)
        if since is not None:
            stmt = stmt.where(UsageRecord.created_at >= since)
        if until is not None:
            stmt = stmt.where(UsageRecord.created_at < until)
        stmt = stmt.group_by(
            day, UsageRecord.provider, UsageRecord.model, UsageRecord.modality
        ).order_by(day.desc(), UsageRecord.provider, UsageRecord.model, UsageRecord.modality)
        total = (
            await self.session.execute(select(func.count()).select_from(stmt.subquery()))
        ).scalar_one()
        rows = (await self.session.execute(stmt.limit(limit).offset(offset))).mappings().all()
        return rows, total
