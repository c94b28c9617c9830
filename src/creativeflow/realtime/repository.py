"""The realtime module's one query: whether a principal may read a subject."""

from __future__ import annotations

import uuid

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.access import subject_types
from creativeflow.identity.principal import Principal


class SubjectRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def readable(self, principal: Principal, subject_id: uuid.UUID) -> bool:
        """Whether `subject_id` is among the subjects `principal` may read, under any
        registered subject type (ids are UUIDv7: unique across types). One statement."""
        checks = [
            exists().where(ids.c[0] == subject_id)
            for ids in (kind.readable(principal).subquery() for kind in subject_types().values())
        ]
        if not checks:
            return False
        return bool(await self.session.scalar(select(or_(*checks))))
