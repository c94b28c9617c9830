"""The read side of ideas: list pages, counts and single ideas, as Core statements run on a
read connection (`creativeflow.db.reads`), never through the ORM session.

Every statement starts from the owner filter, so no caller can reach another user's idea.
Statements are built once per shape (dialect, sort, which filters are present, how many tags)
with bound parameters for every value, and kept: building and cache-keying a statement of this
size costs more than running it (SQLite, 21 rows: ~125 us to build, ~210 us to execute).

Pages and single ideas are read as documents: `IdeaRead`'s fields in its order, each already
in the spelling the API writes (ids and times as text, formatted by the database), so a row
becomes JSON without any conversion (`document`). They run as driver statements, without
SQLAlchemy's result processing; on PostgreSQL a search term and tag keys are written into the
SQL there (see `_matches`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import orjson
from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Integer,
    Label,
    ScalarSelect,
    Select,
    String,
    Table,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
    tuple_,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.util import ClauseAdapter

from creativeflow.db.reads import DriverRow, DriverStatement, ReadConnections
from creativeflow.db.text import json_text, utc_text, uuid_spelling, uuid_text
from creativeflow.ideas.models import Idea, IdeaCounter, IdeaPriority, IdeaStage

# pg_trgm indexes three-character sequences: shorter terms cannot be looked up through it.
TRIGRAM = 3
# How many of a stage's ideas a search walks for one page before it asks the trigram indexes
# instead (PostgreSQL; see `fetch_page`). Read at each call, so tests can lower it.
WALK_BUDGET = 10_000

if TYPE_CHECKING:  # SQLAlchemy 2.1 spelling; only for the type checker (2.0 is also supported)
    AnySelect: TypeAlias = Select[*tuple[Any, ...]]

IDEAS = cast(Table, Idea.__table__)
COUNTERS = cast(Table, IdeaCounter.__table__)

# What a list or a single read returns: `IdeaRead`'s fields, in its order, as the API writes
# them, except the two ranks (`document` names them) and the tags (JSON text, parsed there:
# the stored text has the stdlib's spacing).
DOCUMENT_COLUMNS: tuple[Label[Any], ...] = (
    uuid_text(IDEAS.c.id).label("id"),
    utc_text(IDEAS.c.created_at).label("created_at"),
    utc_text(IDEAS.c.updated_at).label("updated_at"),
    uuid_text(IDEAS.c.created_by).label("created_by"),
    uuid_text(IDEAS.c.updated_by).label("updated_by"),
    uuid_text(IDEAS.c.user_id).label("user_id"),
    IDEAS.c.title.label("title"),
    IDEAS.c.notes.label("notes"),
    type_coerce(IDEAS.c.stage, Integer).label("stage"),
    type_coerce(IDEAS.c.priority, Integer).label("priority"),
    json_text(IDEAS.c.tags).label("tags"),
    utc_text(IDEAS.c.due_date).label("due_date"),
)
# A page row carries the owner's counter after the document.
COUNTER_TOTAL, COUNTER_VERSION = len(DOCUMENT_COLUMNS), len(DOCUMENT_COLUMNS) + 1

_STAGE_NAMES = (None, *(stage.value for stage in IdeaStage))  # by rank (`OrderedEnum`)
_PRIORITY_NAMES = (None, *(priority.value for priority in IdeaPriority))


def document(row: DriverRow) -> dict[str, Any]:
    """The idea in `row` as `IdeaRead`'s JSON document (its fields, in its order).

    Unpacked in one go and built as one literal: the row is touched once per column, which on
    asyncpg's records costs a third of a name-by-name build."""
    (id_, created_at, updated_at, created_by, updated_by, user_id, title, notes, stage,
     priority, tags, due_date, *_counters) = row  # fmt: skip
    return {
        "id": uuid_spelling(id_),
        "created_at": created_at,
        "updated_at": updated_at,
        "created_by": uuid_spelling(created_by),
        "updated_by": uuid_spelling(updated_by),
        "user_id": uuid_spelling(user_id),
        "title": title,
        "notes": notes,
        "stage": _STAGE_NAMES[stage],
        "priority": _PRIORITY_NAMES[priority],
        "tags": orjson.loads(tags),
        "due_date": due_date,
    }


# Each sort is a key of columns ending in `id`, so the order is total (stable paging) and each
# matches a composite index after `user_id`. Stage and priority break ties newest first.
SORT_KEYS: dict[str, tuple[Column[Any], ...]] = {
    "created_at": (IDEAS.c.created_at, IDEAS.c.id),
    "updated_at": (IDEAS.c.updated_at, IDEAS.c.id),
    "title": (IDEAS.c.title, IDEAS.c.id),
    "priority": (IDEAS.c.priority, IDEAS.c.created_at, IDEAS.c.id),
    "stage": (IDEAS.c.stage, IDEAS.c.created_at, IDEAS.c.id),
}


@dataclass(frozen=True, slots=True)
class IdeaFilter:
    """The list filters, already validated: `tag_keys` are case-folded."""

    search: str | None = None
    stage: IdeaStage | None = None
    priority: IdeaPriority | None = None
    tag_keys: Sequence[str] | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.search or self.stage or self.priority or self.tag_keys)


@dataclass(frozen=True, slots=True)
class PageRequest:
    sort: str
    descending: bool
    limit: int
    offset: int = 0
    # The sort key values of the last row already seen (keyset paging); offset is then unused.
    after: tuple[Any, ...] | None = None


def escape_like(term: str) -> str:
    """A LIKE pattern matching `term` literally anywhere (wildcards escaped with `\\`)."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# -- shapes: what decides a statement's SQL, apart from its parameter values ------------------


@dataclass(frozen=True, slots=True)
class FilterShape:
    dialect: str
    search: str | None  # None, "like" (SQLite), "trigram", "walk" or "short" (PostgreSQL)
    stage: bool
    priority: bool
    tag_count: int

    @classmethod
    def of(cls, dialect: str, filters: IdeaFilter) -> FilterShape:
        search = None
        if filters.search:
            if dialect != "postgresql":
                search = "like"
            else:
                narrowed = filters.stage is not None or filters.priority is not None
                if len(filters.search) < TRIGRAM:
                    search = "short"
                else:
                    search = "walk" if narrowed else "trigram"
        return cls(
            dialect=dialect,
            search=search,
            stage=filters.stage is not None,
            priority=filters.priority is not None,
            tag_count=len(filters.tag_keys or ()),
        )


def _filter_params(shape: FilterShape, filters: IdeaFilter) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if shape.stage:
        params["stage"] = filters.stage
    if shape.priority:
        params["priority"] = filters.priority
    if filters.search:
        if shape.search == "short":
            params["needle"] = filters.search.lower()
        else:
            params["pattern"] = escape_like(filters.search)
    if filters.tag_keys:
        keys = list(filters.tag_keys)
        if shape.dialect == "postgresql":
            params["tag_keys"] = keys
        else:
            params.update({f"tag_key_{i}": key for i, key in enumerate(keys)})
            params.update({f"tag_text_{i}": json.dumps(key) for i, key in enumerate(keys)})
    return params


def _conditions(
    shape: FilterShape,
) -> tuple[list[ColumnElement[bool]], list[ColumnElement[bool]]]:
    """The filter as two lists: what an index range selects (owner, stage, priority), and
    what is tested on the rows, or through other indexes (tags, search)."""
    ranged: list[ColumnElement[bool]] = [IDEAS.c.user_id == bindparam("owner")]
    tested: list[ColumnElement[bool]] = []
    if shape.stage:
        ranged.append(IDEAS.c.stage == bindparam("stage"))
    if shape.priority:
        ranged.append(IDEAS.c.priority == bindparam("priority"))
    if shape.tag_count:
        narrowed = shape.stage or shape.priority or shape.search is not None
        tested.append(_has_any_tag(shape, narrowed=narrowed))
    if shape.search:
        tested.append(_matches(shape))
    return ranged, tested


def _matches(shape: FilterShape) -> ColumnElement[bool]:
    """The search term occurs in the title or the notes, ignoring case.

    PostgreSQL: `ILIKE`, which the trigram indexes answer. The pattern is written into the SQL
    text rather than bound: asyncpg prepares statements, and the read connections plan each
    prepared statement once (`db/reads.py`); a plan made for any pattern ignores the trigram
    indexes (100k ideas, "sourdough" + stage + tags: 35 ms generic, 9 ms planned for the
    pattern). Terms under three characters have no trigram to look up (the index would be read
    whole), so they use `strpos` on the lower-cased text instead, which the planner cannot send
    to those indexes.
    With a stage or priority filter ("walk"), the same test is written as `texticlike()`, the
    function behind `ILIKE`, which the planner cannot send to the trigram indexes: the search
    then walks the owner's ideas of that stage newest first, as the tag filter does. Left to
    choose, PostgreSQL ANDs a bitmap of the whole stage with the trigram bitmaps for terms of
    middling rarity, which costs more than the walk and more still under load (100k ideas,
    "keyboards" + stage + tags: 5.3-6.5 ms against 2.1-2.5 ms; 32 connections: the bitmaps
    cost ~450 page faults a query, and 367-494 req/s when two of the five benchmark words got
    them against 584 when none did). A page walks at most `WALK_BUDGET` ideas of the stage:
    a term too rare to fill it there goes to the trigram indexes (see `fetch_page`). The
    pattern is bound, as it no longer changes the plan.
    SQLite: its `LIKE` ignores ASCII case by itself (no `lower()` per row); no index serves
    substrings, so the other filters' indexes narrow the rows first.
    """
    title, notes = IDEAS.c.title, IDEAS.c.notes
    if shape.search == "trigram":
        inline = bindparam("pattern", type_=String(), literal_execute=True)
        return or_(title.ilike(inline, escape="\\"), notes.ilike(inline, escape="\\"))
    if shape.search == "walk":
        bound = bindparam("pattern", type_=String())  # `\` escapes, as in ILIKE's default
        return or_(func.texticlike(title, bound), func.texticlike(notes, bound))
    if shape.search == "short":
        needle = bindparam("needle", type_=String())
        return or_(
            func.strpos(func.lower(title), needle) > 0,
            func.strpos(func.lower(notes), needle) > 0,
        )
    pattern = bindparam("pattern", type_=String())
    return or_(title.like(pattern, escape="\\"), notes.like(pattern, escape="\\"))


def _has_any_tag(shape: FilterShape, *, narrowed: bool) -> ColumnElement[bool]:
    """The idea carries one of the (case-folded) tag keys.

    PostgreSQL: `tag_keys ?| ARRAY[...]`, answered by the GIN index, with the keys inline for
    the same reason as the search pattern (how common they are decides the plan). When stage,
    priority or search also filter (`narrowed`), the same test is written as
    `jsonb_exists_any(...)`, which the planner cannot send to the GIN index: it then tests the
    few rows those filters leave instead of building a bitmap of every idea carrying a common
    tag (100k ideas, "keyboards" + stage + two common tags: 20 ms -> 6 ms).
    """
    tag_keys = IDEAS.c.tag_keys
    if shape.dialect == "postgresql":
        array = bindparam("tag_keys", type_=postgresql.ARRAY(postgresql.TEXT), literal_execute=True)
        if narrowed:
            return func.jsonb_exists_any(tag_keys, array)
        return tag_keys.op("?|")(array)
    # SQLite: `EXISTS (SELECT 1 FROM json_each(ideas.tag_keys) WHERE value IN (...))`, after a
    # cheap test that the JSON text holds one of the encoded keys at all (the column is written
    # by the stdlib's `json.dumps`), so json_each runs on candidates only.
    each = func.json_each(tag_keys).table_valued("value").alias("tag")
    candidates = or_(
        *(
            func.instr(tag_keys, bindparam(f"tag_text_{i}", type_=String())) > 0
            for i in range(shape.tag_count)
        )
    )
    return and_(
        candidates,
        exists(
            select(1)
            .select_from(each)
            .where(
                each.c.value.in_(
                    [bindparam(f"tag_key_{i}", type_=String()) for i in range(shape.tag_count)]
                )
            )
        ),
    )


def _counter(column: str) -> ScalarSelect[Any]:
    return (
        select(COUNTERS.c[column]).where(COUNTERS.c.user_id == bindparam("owner")).scalar_subquery()
    )


# -- statements, one per shape -----------------------------------------------------------------


@lru_cache(maxsize=1024)
def _page_statement(
    shape: FilterShape, sort: str, descending: bool, keyset: bool, offset: bool
) -> AnySelect:
    keys = SORT_KEYS[sort]
    order_by = [key.desc() if descending else key.asc() for key in keys]
    ranged, tested = _conditions(shape)
    if keyset:
        ranged.append(_after(keys, descending=descending))
    counters = (
        _counter("total").label("counter_total"),
        _counter("version").label("counter_version"),
    )
    limit = bindparam("limit", type_=Integer())
    if offset:
        return _deferred_join([*ranged, *tested], order_by, limit).add_columns(*counters)
    if shape.search == "walk":
        return _bounded_walk(ranged, tested, order_by, limit).add_columns(*counters)
    return (
        select(*DOCUMENT_COLUMNS, *counters)
        .where(*ranged, *tested)
        .order_by(*order_by)
        .limit(limit)
    )


def _bounded_walk(
    ranged: list[ColumnElement[bool]],
    tested: list[ColumnElement[bool]],
    order_by: list[Any],
    limit: Any,
) -> AnySelect:
    """The page among the first `walk_budget` ideas of the range, in the sort order: the walk
    stops at the page's last match or at the budget, whichever comes first. The tests apply
    to the rows the subquery yields, in its order, so nothing is sorted again."""
    budget = bindparam("walk_budget", type_=Integer(), literal_execute=True)
    walked = select(IDEAS).where(*ranged).order_by(*order_by).limit(budget).subquery("walked")
    page = select(*DOCUMENT_COLUMNS).where(*tested).order_by(*order_by).limit(limit)
    return cast("AnySelect", ClauseAdapter(walked).traverse(page))


def _after(keys: tuple[Column[Any], ...], *, descending: bool) -> ColumnElement[bool]:
    """Rows after the cursor's key in the sort order: one row-value comparison, which both
    backends turn into a range scan of the sort's composite index."""
    bound = tuple_(*(bindparam(f"after_{i}", type_=key.type) for i, key in enumerate(keys)))
    row = tuple_(*keys)
    return row < bound if descending else row > bound


def _deferred_join(
    conditions: list[ColumnElement[bool]], order_by: list[Any], limit: Any
) -> AnySelect:
    """A deep offset skips entries of the sort's composite index only (its key and `id` are in
    it: an index-only scan once the table is vacuumed) and then reads just the rows of the
    page, instead of reading every skipped row from the table. PostgreSQL, offset 99,980 of
    100k, vacuumed: ~40 ms instead of ~170 ms."""
    ids = (
        select(IDEAS.c.id)
        .where(*conditions)
        .order_by(*order_by)
        .limit(limit)
        .offset(bindparam("offset", type_=Integer()))
        .subquery("page_ids")
    )
    return (
        select(*DOCUMENT_COLUMNS)
        .select_from(IDEAS.join(ids, IDEAS.c.id == ids.c.id))
        .order_by(*order_by)
    )


@lru_cache(maxsize=256)
def _count_statement(shape: FilterShape) -> AnySelect:
    if shape.search == "walk":
        # A count reads every match: no early stop for a walk to win, while the trigram
        # bitmaps skip the stage's other rows (100k ideas, search + stage + tags: rare word
        # 5.6 ms against 34 ms walking, common word 19 against 29 ms).
        shape = replace(shape, search="trigram")
    ranged, tested = _conditions(shape)
    return select(func.count(), _counter("version")).select_from(IDEAS).where(*ranged, *tested)


_ONE = select(*DOCUMENT_COLUMNS).where(
    IDEAS.c.user_id == bindparam("owner"), IDEAS.c.id == bindparam("idea_id")
)
_TOTAL = select(COUNTERS.c.total).where(COUNTERS.c.user_id == bindparam("owner"))


# -- running them ------------------------------------------------------------------------------


def page_statement(dialect: str, filters: IdeaFilter, page: PageRequest) -> AnySelect:
    """The statement `fetch_page` runs (for tests and EXPLAIN)."""
    return _statement_for(FilterShape.of(dialect, filters), page)


def _statement_for(shape: FilterShape, page: PageRequest) -> AnySelect:
    return _page_statement(
        shape,
        page.sort,
        page.descending,
        page.after is not None,
        page.after is None and page.offset > 0,
    )


class RareSearches:
    """Searches whose walk came up short: a first page that did not fill within `WALK_BUDGET`
    ideas of its stage, so the term is rare there or found nowhere. They go to the trigram
    indexes from then on, without walking first.

    Only a choice of plan, never of rows: both plans return the same page. Per process and
    bounded: when full it forgets them all, which costs each one walk to learn again."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._keys: set[Hashable] = set()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: Hashable) -> None:
        if len(self._keys) >= self.size:
            self._keys.clear()
        self._keys.add(key)


rare_searches = RareSearches()


async def fetch_page(
    reads: ReadConnections, owner: uuid.UUID, filters: IdeaFilter, page: PageRequest
) -> Sequence[DriverRow]:
    """Up to `page.limit + 1` document rows in the requested order (the extra row says
    whether there is a next page). Each row also carries the owner's counter
    (`COUNTER_TOTAL`, `COUNTER_VERSION`, read in the same statement, so in the same snapshot),
    which saves the unfiltered list a second query.

    A staged search on PostgreSQL walks the stage (see `_matches`) for at most `WALK_BUDGET`
    ideas. A page that does not fill within them may be missing matches further on (unless
    the owner has no more ideas than that), so it is read again through the trigram indexes,
    which answer a rare term, or one found nowhere, in a fraction of a millisecond where the
    whole walk could take tens (40k ideas: 74 ms). A first page that comes up short marks
    the search as rare (`rare_searches`), so the next one skips the walk."""
    shape = FilterShape.of(reads.dialect.name, filters)
    rare_key: Hashable = None
    if shape.search == "walk":
        rare_key = (owner, filters.search, filters.stage, filters.priority,
                    tuple(filters.tag_keys or ()), page.sort, page.descending)  # fmt: skip
        if rare_key in rare_searches:
            shape = replace(shape, search="trigram")
    params = _filter_params(shape, filters)
    params["owner"] = owner
    params["limit"] = page.limit + 1
    if page.after is not None:
        params.update({f"after_{i}": value for i, value in enumerate(page.after)})
    elif page.offset:
        params["offset"] = page.offset
    # An unfiltered page without an offset reads at most `limit + 1` entries of an index.
    bounded = filters.is_empty and "offset" not in params
    walking = shape.search == "walk" and "offset" not in params
    if walking:
        params["walk_budget"] = WALK_BUDGET
    rows = await _fetch(reads, shape, page, params, bounded=bounded)
    if walking and not _walk_complete(rows, page.limit):
        if page.after is None:
            rare_searches.add(rare_key)
        rows = await _fetch(reads, replace(shape, search="trigram"), page, params, bounded=False)
    return rows


def _walk_complete(rows: Sequence[DriverRow], limit: int) -> bool:
    """Whether a bounded walk's page is the page: it filled, or the owner has no more ideas
    than the budget, so the walk saw all of its range (the usual case, and a second query
    for every small account would buy nothing). The owner's count comes with the rows, so an
    empty page cannot tell, and is read again."""
    if len(rows) > limit:
        return True
    total = rows[0][COUNTER_TOTAL] if rows else None
    return total is not None and total <= WALK_BUDGET


async def _fetch(
    reads: ReadConnections,
    shape: FilterShape,
    page: PageRequest,
    params: dict[str, Any],
    *,
    bounded: bool,
) -> list[DriverRow]:
    driver = DriverStatement.for_dialect(
        _statement_for(shape, page), reads.dialect, bounded=bounded
    )
    return await reads.fetch(driver, params)


def count_matching(
    connection: Connection, owner: uuid.UUID, filters: IdeaFilter
) -> tuple[int, int | None]:
    """Matching ideas, and the counter's version in the same statement (same snapshot): the
    count is exact for that version (None when the owner has no counter row)."""
    shape = FilterShape.of(connection.dialect.name, filters)
    params = _filter_params(shape, filters)
    params["owner"] = owner
    total, version = connection.execute(_count_statement(shape), params).one()
    return int(total), version


def counted_total(connection: Connection, owner: uuid.UUID) -> int | None:
    """The owner's idea count from the counter; None if the counter row does not exist."""
    return connection.execute(_TOTAL, {"owner": owner}).scalar_one_or_none()


async def fetch_one(
    reads: ReadConnections, owner: uuid.UUID, idea_id: uuid.UUID
) -> DriverRow | None:
    """The owner's idea as a document row, or None."""
    driver = DriverStatement.for_dialect(_ONE, reads.dialect, bounded=True)
    rows = await reads.fetch(driver, {"owner": owner, "idea_id": idea_id})
    return rows[0] if rows else None


__all__ = [
    "COUNTERS",
    "COUNTER_TOTAL",
    "COUNTER_VERSION",
    "DOCUMENT_COLUMNS",
    "IDEAS",
    "SORT_KEYS",
    "IdeaFilter",
    "PageRequest",
    "RareSearches",
    "count_matching",
    "counted_total",
    "document",
    "escape_like",
    "fetch_one",
    "fetch_page",
    "page_statement",
    "rare_searches",
]
