"""Content idea rules: private to their owner, counted per user, listed by filters and pages.

`IdeaService` changes ideas in the request's session: it flushes, never commits (the route
boundary commits once). `IdeaReader` reads them on a read connection, outside any session.
Both act for one principal and raise the shared exceptions.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.db.reads import DriverRow, ReadConnections
from creativeflow.ideas import queries
from creativeflow.ideas.cursor import decode_cursor, encode_cursor
from creativeflow.ideas.models import Idea
from creativeflow.ideas.queries import SORT_KEYS, IdeaFilter, PageRequest
from creativeflow.ideas.repository import IdeaRepository
from creativeflow.ideas.schemas import IdeaCreate, IdeaListParams, IdeaReplace, IdeaUpdate
from creativeflow.identity.principal import Principal
from creativeflow.shared.core.exceptions import NotFoundException
from creativeflow.shared.core.logging import get_logger

_log = get_logger("creativeflow.ideas")


class FilteredTotals:
    """Filtered totals counted earlier, each valid for one version of its user's ideas.

    Counting a filtered list means testing every candidate row (100k ideas, search + stage +
    tags: 35-50 ms); the answer only changes when the user's ideas change, which raises their
    counter's `version` in the same transaction. An entry is used only while the version read
    with the page is the version it was counted at, so a total is never stale: any write
    since makes it miss and count again. Per process, bounded (least recently used goes).
    """

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, tuple[int, int]] = OrderedDict()

    def get(self, key: Hashable, version: int | None) -> int | None:
        entry = self._entries.get(key)
        if entry is None or version is None or entry[0] != version:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: Hashable, version: int | None, total: int) -> None:
        if version is None:
            return
        self._entries[key] = (version, total)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


filtered_totals = FilteredTotals()


@dataclass(frozen=True, slots=True)
class IdeaPage:
    """One page of ideas (`IdeaRead` documents, see `queries.document`) and where it sits in
    the list."""

    items: Sequence[dict[str, Any]]
    total: int
    limit: int
    offset: int
    has_more: bool
    next_cursor: str | None


class IdeaService:
    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.principal = principal
        self.ideas = IdeaRepository(session)

    # -- single ideas -------------------------------------------------------------------------

    async def create(self, data: IdeaCreate) -> Idea:
        actor = self.principal.user_id
        idea = Idea(user_id=actor, created_by=actor, updated_by=actor, **data.model_dump())
        await self.ideas.add(idea)
        # Same transaction as the insert: the count can never drift from the rows.
        await self.ideas.record_create(self.principal)
        _log.info("idea_created", idea_id=str(idea.id))
        return idea

    async def update(self, idea_id: uuid.UUID, data: IdeaUpdate) -> Idea:
        """PATCH: change only the fields sent."""
        idea = await self._get(idea_id, for_update=True)
        return await self._apply(idea, data.changes())

    async def replace(self, idea_id: uuid.UUID, data: IdeaReplace) -> Idea:
        """PUT: the idea takes exactly the state sent (omitted fields their defaults)."""
        idea = await self._get(idea_id, for_update=True)
        return await self._apply(idea, data.model_dump())

    async def delete(self, idea_id: uuid.UUID) -> None:
        if not await self.ideas.delete_visible(self.principal, idea_id):
            raise _not_found(idea_id)
        await self.ideas.record_delete(self.principal)
        _log.info("idea_deleted", idea_id=str(idea_id))

    async def owned(self, idea_id: uuid.UUID) -> Idea:
        """One of the caller's ideas (404 for anyone else's), for other modules."""
        return await self._get(idea_id)

    async def _get(self, idea_id: uuid.UUID, *, for_update: bool = False) -> Idea:
        idea = await self.ideas.get_visible(self.principal, idea_id, for_update=for_update)
        if idea is None:
            raise _not_found(idea_id)
        return idea

    async def _apply(self, idea: Idea, changes: dict[str, Any]) -> Idea:
        changed = sorted(name for name, value in changes.items() if getattr(idea, name) != value)
        if not changed:
            return idea  # nothing to write: `updated_at` and `updated_by` stay as they were
        for name in changed:
            setattr(idea, name, changes[name])
        idea.touch(self.principal.user_id)
        await self.ideas.flush()
        await self.ideas.record_change(self.principal)  # filtered totals may have moved
        _log.info("idea_updated", idea_id=str(idea.id), fields=changed)
        return idea


class IdeaReader:
    """Reads the principal's own ideas: one idea, or a page of a filtered, sorted list."""

    def __init__(self, reads: ReadConnections, principal: Principal) -> None:
        self.reads = reads
        self.owner = principal.user_id

    async def get(self, idea_id: uuid.UUID) -> dict[str, Any]:
        """The idea as an `IdeaRead` document."""
        row = await queries.fetch_one(self.reads, self.owner, idea_id)
        if row is None:
            raise _not_found(idea_id)
        return queries.document(row)

    # -- lists --------------------------------------------------------------------------------

    async def list_page(self, params: IdeaListParams) -> IdeaPage:
        filters = IdeaFilter(
            search=params.search,
            stage=params.stage,
            priority=params.priority,
            tag_keys=params.tags,
        )
        descending = params.order == "desc"
        key_columns = [column.key for column in SORT_KEYS[params.sort]]
        after = (
            decode_cursor(params.cursor, params.sort, params.order, key_columns)
            if params.cursor
            else None
        )
        offset = 0 if after is not None else params.offset
        request = PageRequest(
            sort=params.sort, descending=descending, limit=params.limit, offset=offset, after=after
        )
        rows = await queries.fetch_page(self.reads, self.owner, filters, request)
        has_more = len(rows) > params.limit
        rows = rows[: params.limit]
        items = [queries.document(row) for row in rows]
        next_cursor = None
        if has_more:
            last = items[-1]
            next_cursor = encode_cursor(
                params.sort, params.order, [last[name] for name in key_columns]
            )
        total = await self._total(
            filters, rows, has_more=has_more, offset=offset, keyset=after is not None
        )
        return IdeaPage(
            items=items,
            total=total,
            limit=params.limit,
            offset=offset,
            has_more=has_more,
            next_cursor=next_cursor,
        )

    async def _total(
        self,
        filters: IdeaFilter,
        rows: Sequence[DriverRow],
        *,
        has_more: bool,
        offset: int,
        keyset: bool,
    ) -> int:
        """How many ideas match, counting rows only when nothing cheaper knows."""
        first = rows[0] if rows else None
        if filters.is_empty:
            counted = first[queries.COUNTER_TOTAL] if first is not None else None
            if counted is None:
                counted = await self.reads.run(
                    lambda connection: queries.counted_total(connection, self.owner)
                )
            if counted is not None:
                return int(counted)
        elif not keyset and not has_more and (rows or offset == 0):
            # The page reaches the end of the list: everything before it was skipped.
            return offset + len(rows)
        key = (self.owner, filters.search, filters.stage, filters.priority,
               tuple(filters.tag_keys or ()))  # fmt: skip
        if first is not None:
            cached = filtered_totals.get(key, first[queries.COUNTER_VERSION])
            if cached is not None:
                return cached
        total, version = await self.reads.run(
            lambda connection: queries.count_matching(connection, self.owner, filters)
        )
        if not filters.is_empty:
            filtered_totals.put(key, version, total)
        return total


def _not_found(idea_id: uuid.UUID) -> NotFoundException:
    # The same answer whether the idea does not exist or belongs to someone else.
    return NotFoundException(f"Idea {idea_id} not found")


__all__ = ["FilteredTotals", "IdeaPage", "IdeaReader", "IdeaService", "filtered_totals"]
