"""Data-source, check and credential queries: the only place in the module that builds SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, delete, func, or_, select, update

from creativeflow.datasources.models import (
    Credential,
    DataSource,
    DataSourceCheck,
    DataSourceCredential,
)
from creativeflow.db.repository import Repository, escape_like

SourceSort = Literal["name", "-name", "created_at", "-created_at", "updated_at", "-updated_at"]


def _ordering(sort: str) -> list[ColumnElement[Any]]:
    column = {
        "name": DataSource.name,
        "created_at": DataSource.created_at,
        "updated_at": DataSource.updated_at,
    }[sort.lstrip("-")]
    if sort.startswith("-"):
        return [column.desc(), DataSource.id.desc()]
    return [column.asc(), DataSource.id.asc()]


class DataSourceRepository(Repository[DataSource]):
    model = DataSource

    async def get_owned(
        self, source_id: uuid.UUID, owner_id: uuid.UUID | None
    ) -> DataSource | None:
        """The source, when `owner_id` owns it (None: any owner, for administrators)."""
        stmt = select(DataSource).where(DataSource.id == source_id)
        if owner_id is not None:
            stmt = stmt.where(DataSource.owner_id == owner_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def name_taken(
        self, owner_id: uuid.UUID, name: str, *, except_id: uuid.UUID | None = None
    ) -> bool:
        stmt = select(DataSource.id).where(DataSource.owner_id == owner_id, DataSource.name == name)
        if except_id is not None:
            stmt = stmt.where(DataSource.id != except_id)
        return (await self.session.execute(stmt.limit(1))).first() is not None

    async def search_page(
        self,
        *,
        owner_id: uuid.UUID | None,
        search: str | None,
        types: Sequence[str],
        categories: Sequence[str],
        statuses: Sequence[str],
        sort: str,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[DataSource], int]:
        stmt = select(DataSource)
        if owner_id is not None:
            stmt = stmt.where(DataSource.owner_id == owner_id)
        if search:
            pattern = f"%{escape_like(search.lower())}%"
            stmt = stmt.where(
                or_(
                    func.lower(DataSource.name).like(pattern, escape="\\"),
                    func.lower(DataSource.description).like(pattern, escape="\\"),
                )
            )
        if types:
            stmt = stmt.where(DataSource.type.in_(list(types)))
        if categories:
            stmt = stmt.where(DataSource.category.in_(list(categories)))
        if statuses:
            stmt = stmt.where(DataSource.status.in_(list(statuses)))
        return await self.page(stmt.order_by(*_ordering(sort)), limit=limit, offset=offset)

    async def owned_by_names(self, owner_id: uuid.UUID, names: Sequence[str]) -> set[str]:
        if not names:
            return set()
        stmt = select(DataSource.name).where(
            DataSource.owner_id == owner_id, DataSource.name.in_(list(names))
        )
        return set((await self.session.execute(stmt)).scalars())

    async def owned(
        self, owner_id: uuid.UUID, ids: Sequence[uuid.UUID] | None
    ) -> Sequence[DataSource]:
        stmt = select(DataSource).where(DataSource.owner_id == owner_id)
        if ids is not None:
            stmt = stmt.where(DataSource.id.in_(list(ids)))
        return (await self.session.execute(stmt.order_by(DataSource.name))).scalars().all()

    async def using_credential(self, credential_id: uuid.UUID) -> Sequence[DataSource]:
        stmt = (
            select(DataSource)
            .join(DataSourceCredential, DataSourceCredential.source_id == DataSource.id)
            .where(DataSourceCredential.credential_id == credential_id)
            .order_by(DataSource.name)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def link_credentials(
        self, source_id: uuid.UUID, credential_ids: Sequence[uuid.UUID]
    ) -> None:
        """Make the source's credential links exactly `credential_ids`."""
        await self.session.execute(
            delete(DataSourceCredential).where(DataSourceCredential.source_id == source_id)
        )
        for credential_id in dict.fromkeys(credential_ids):
            self.session.add(DataSourceCredential(source_id=source_id, credential_id=credential_id))
        await self.session.flush()

    async def due_for_check(self, now: datetime, limit: int) -> Sequence[DataSource]:
        stmt = (
            select(DataSource)
            .where(DataSource.next_check_at.is_not(None), DataSource.next_check_at <= now)
            .order_by(DataSource.next_check_at)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def advance_schedule(
        self, source_id: uuid.UUID, expected: datetime, next_check_at: datetime
    ) -> bool:
        """Move the source's next check on, if nobody else did (the scheduler's claim)."""
        result = await self.session.execute(
            update(DataSource)
            .where(DataSource.id == source_id, DataSource.next_check_at == expected)
            .values(next_check_at=next_check_at)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def batch_after(self, after: uuid.UUID | None, limit: int) -> Sequence[DataSource]:
        stmt = select(DataSource).order_by(DataSource.id).limit(limit)
        if after is not None:
            stmt = stmt.where(DataSource.id > after)
        return (await self.session.execute(stmt)).scalars().all()


class CheckRepository(Repository[DataSourceCheck]):
    model = DataSourceCheck

    async def page_for(
        self, source_id: uuid.UUID, *, limit: int, offset: int
    ) -> tuple[Sequence[DataSourceCheck], int]:
        stmt = (
            select(DataSourceCheck)
            .where(DataSourceCheck.source_id == source_id)
            .order_by(DataSourceCheck.created_at.desc(), DataSourceCheck.id.desc())
        )
        return await self.page(stmt, limit=limit, offset=offset)

    async def keep_newest(self, source_id: uuid.UUID, keep: int) -> None:
        """Drop all but the newest `keep` checks of the source."""
        newest = (
            select(DataSourceCheck.id)
            .where(DataSourceCheck.source_id == source_id)
            .order_by(DataSourceCheck.created_at.desc(), DataSourceCheck.id.desc())
            .limit(keep)
        )
        await self.session.execute(
            delete(DataSourceCheck)
            .where(DataSourceCheck.source_id == source_id, DataSourceCheck.id.not_in(newest))
            .execution_options(synchronize_session=False)
        )


class CredentialRepository(Repository[Credential]):
    model = Credential

    async def get_owned(
        self, credential_id: uuid.UUID, owner_id: uuid.UUID | None
    ) -> Credential | None:
        stmt = select(Credential).where(Credential.id == credential_id)
        if owner_id is not None:
            stmt = stmt.where(Credential.owner_id == owner_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def owned_many(
        self, ids: Sequence[uuid.UUID], owner_id: uuid.UUID
    ) -> dict[uuid.UUID, Credential]:
        if not ids:
            return {}
        stmt = select(Credential).where(
            Credential.id.in_(list(ids)), Credential.owner_id == owner_id
        )
        return {row.id: row for row in (await self.session.execute(stmt)).scalars()}

    async def name_taken(
        self, owner_id: uuid.UUID, name: str, *, except_id: uuid.UUID | None = None
    ) -> bool:
        stmt = select(Credential.id).where(Credential.owner_id == owner_id, Credential.name == name)
        if except_id is not None:
            stmt = stmt.where(Credential.id != except_id)
        return (await self.session.execute(stmt.limit(1))).first() is not None

    async def page_for(
        self, owner_id: uuid.UUID | None, *, limit: int, offset: int
    ) -> tuple[Sequence[Credential], int]:
        stmt = select(Credential).order_by(Credential.name, Credential.id)
        if owner_id is not None:
            stmt = stmt.where(Credential.owner_id == owner_id)
        return await self.page(stmt, limit=limit, offset=offset)

    async def batch_after(self, after: uuid.UUID | None, limit: int) -> Sequence[Credential]:
        stmt = select(Credential).order_by(Credential.id).limit(limit)
        if after is not None:
            stmt = stmt.where(Credential.id > after)
        return (await self.session.execute(stmt)).scalars().all()
