"""Rules below the HTTP layer: the per-user counter under concurrency, derived columns,
cursors, and the query shapes the repository chooses."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, event, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from creativeflow.db.engine import create_session_factory, writer_engine
from creativeflow.ideas.cursor import decode_cursor, encode_cursor
from creativeflow.ideas.models import Idea, IdeaCounter, IdeaPriority, IdeaStage
from creativeflow.ideas.queries import (
    IdeaFilter,
    PageRequest,
    RareSearches,
    escape_like,
    page_statement,
)
from creativeflow.ideas.schemas import IdeaCreate, IdeaListParams
from creativeflow.ideas.service import FilteredTotals, IdeaReader, IdeaService
from creativeflow.identity.models import User
from creativeflow.identity.principal import Principal
from creativeflow.platform import Platform
from creativeflow.shared.core.exceptions import NotFoundException, ValidationException
from tests.factories import UserFactory
from tests.ideas.support import create_idea, ideas_url, list_ideas


def _principal(user_id: uuid.UUID) -> Principal:
    return Principal(
        user_id=user_id,
        username="someone",
        roles=frozenset({"viewer"}),
        permissions=frozenset({"ideas:read", "ideas:create", "ideas:delete"}),
    )


# -- the counter ------------------------------------------------------------------------------


async def test_total_is_counted_when_the_counter_row_is_missing(
    users: UserFactory, session: AsyncSession
) -> None:
    """Ideas stored without a counter (e.g. imported by SQL) still get a true total."""
    user = await users.create()
    for i in range(3):
        await create_idea(user, title=f"i{i}")
    await session.execute(delete(IdeaCounter).where(IdeaCounter.user_id == uuid.UUID(user.id)))
    await session.commit()
    assert (await list_ideas(user))["total"] == 3


async def test_counter_matches_the_rows(users: UserFactory, session: AsyncSession) -> None:
    user = await users.create()
    ideas = [await create_idea(user, title=f"i{i}") for i in range(4)]
    await user.delete(ideas_url(user, ideas[1]["id"]))
    counter = await session.scalar(
        select(IdeaCounter.total).where(IdeaCounter.user_id == uuid.UUID(user.id))
    )
    rows = await session.scalar(
        select(func.count()).select_from(Idea).where(Idea.user_id == uuid.UUID(user.id))
    )
    assert counter == rows == 3


@pytest.fixture
async def committed(engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions outside the test transaction (real commits, real concurrency), for a user
    removed again (with their ideas and counter, by cascade) at the end."""
    sessions = create_session_factory(writer_engine(engine))
    yield sessions
    async with sessions() as session:
        await session.execute(delete(User).where(User.username.like("ideas-race-%")))
        await session.commit()


async def _committed_user(sessions: async_sessionmaker[AsyncSession]) -> Principal:
    user_id = uuid.uuid4()
    async with sessions() as session:
        session.add(User(id=user_id, username=f"ideas-race-{user_id.hex[:8]}", name="Race"))
        await session.commit()
    return _principal(user_id)


async def _count_rows(sessions: async_sessionmaker[AsyncSession], user_id: uuid.UUID) -> int:
    async with sessions() as session:
        stmt = select(func.count()).select_from(Idea).where(Idea.user_id == user_id)
        return int(await session.scalar(stmt) or 0)


async def _counter(sessions: async_sessionmaker[AsyncSession], user_id: uuid.UUID) -> int | None:
    async with sessions() as session:
        return await session.scalar(select(IdeaCounter.total).where(IdeaCounter.user_id == user_id))


async def test_concurrent_first_creates_count_every_idea(
    committed: async_sessionmaker[AsyncSession],
) -> None:
    """Many creates racing for a user without a counter row: one inserts it, the rest add."""
    principal = await _committed_user(committed)

    async def create(n: int) -> None:
        async with committed() as session:
            await IdeaService(session, principal).create(IdeaCreate(title=f"race {n}"))
            await session.commit()

    await asyncio.gather(*(create(n) for n in range(12)))
    assert await _count_rows(committed, principal.user_id) == 12
    assert await _counter(committed, principal.user_id) == 12


async def test_concurrent_deletes_of_one_idea_count_once(
    committed: async_sessionmaker[AsyncSession],
) -> None:
    principal = await _committed_user(committed)
    async with committed() as session:
        service = IdeaService(session, principal)
        idea = await service.create(IdeaCreate(title="delete me twice"))
        await service.create(IdeaCreate(title="keep me"))
        await session.commit()

    first = committed()
    await IdeaService(first, principal).delete(idea.id)  # holds the row until it commits

    async def second_delete() -> None:
        async with committed() as session:
            await IdeaService(session, principal).delete(idea.id)
            await session.commit()

    racing = asyncio.create_task(second_delete())
    await asyncio.sleep(0.2)
    assert not racing.done()  # waiting for the first delete's lock
    await first.commit()
    await first.close()
    with pytest.raises(NotFoundException):
        await racing

    assert await _count_rows(committed, principal.user_id) == 1
    assert await _counter(committed, principal.user_id) == 1


async def test_filtered_total_is_counted_once_per_version(
    users: UserFactory, session: AsyncSession, platform: Platform, connection: AsyncConnection
) -> None:
    user = await users.create()
    for i in range(4):
        await create_idea(user, title=f"idea {i}", tags=["x"])
    counts: list[str] = []

    def note_counts(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT COUNT("):
            counts.append(statement)

    event.listen(connection.sync_connection, "before_cursor_execute", note_counts)
    principal = _principal(uuid.UUID(user.id))
    params = IdeaListParams(tags=["x"], limit=2)  # type: ignore[arg-type]
    reader = IdeaReader(platform.reads, principal)

    for _ in range(3):
        page = await reader.list_page(params)
        assert page.total == 4
    assert len(counts) == 1
    # (All sessions of a test share one connection: end this one's savepoint first, so that
    # rolling it back later could not take the API's write with it.)
    await session.commit()

    await create_idea(user, title="one more", tags=["x"])  # raises the version
    assert (await reader.list_page(params)).total == 5
    assert len(counts) == 2
    event.remove(connection.sync_connection, "before_cursor_execute", note_counts)


def test_filtered_totals_cache() -> None:
    totals = FilteredTotals(size=2)
    totals.put("a", 1, 10)
    assert totals.get("a", 1) == 10
    assert totals.get("a", 2) is None  # another version: count again
    assert totals.get("a", None) is None
    totals.put("b", None, 5)  # no counter row, nothing to validate against: not kept
    assert totals.get("b", None) is None
    totals.put("b", 1, 20)
    totals.get("a", 1)
    totals.put("c", 1, 30)  # evicts the least recently used ("b")
    assert totals.get("b", 1) is None
    assert (totals.get("a", 1), totals.get("c", 1)) == (10, 30)


def test_rare_searches_are_bounded() -> None:
    rare = RareSearches(size=2)
    rare.add("a")
    rare.add("b")
    assert ("a" in rare, "b" in rare, len(rare)) == (True, True, 2)
    rare.add("c")  # full: forgets the others
    assert ("a" in rare, "b" in rare, "c" in rare, len(rare)) == (False, False, True, 1)


# -- derived columns ---------------------------------------------------------------------------


def test_tag_keys_follow_tags() -> None:
    idea = Idea(title="Plans", tags=["Blog", "ÉTÉ", "Straße"])
    assert idea.tag_keys == ["blog", "été", "strasse"]
    idea.tags = ["X"]
    assert idea.tag_keys == ["x"]


async def test_tag_keys_are_stored(users: UserFactory, session: AsyncSession) -> None:
    user = await users.create()
    idea = await create_idea(user, title="Alpha", tags=["Gamma"])
    await user.patch(ideas_url(user, idea["id"]), json={"tags": ["Eps", "ZETA"]})
    keys = await session.scalar(select(Idea.tag_keys).where(Idea.id == uuid.UUID(idea["id"])))
    assert keys == ["eps", "zeta"]
    assert (await list_ideas(user, tags="gamma"))["total"] == 0
    assert (await list_ideas(user, tags="zeta"))["total"] == 1


# -- cursors -----------------------------------------------------------------------------------


def test_cursor_round_trip() -> None:
    key = (IdeaPriority.HIGH, datetime(2026, 1, 5, 10, 30, 0, 123456, tzinfo=UTC), uuid.uuid4())
    cursor = encode_cursor("priority", "desc", key)
    assert "=" not in cursor and "+" not in cursor and "/" not in cursor
    assert decode_cursor(cursor, "priority", "desc", ["priority", "created_at", "id"]) == key


def test_cursor_for_another_order_is_refused() -> None:
    cursor = encode_cursor("title", "asc", ("Ünïcode title", uuid.uuid4()))
    with pytest.raises(ValidationException) as refused:
        decode_cursor(cursor, "title", "desc", ["title", "id"])
    assert refused.value.errors == [
        {"field": "cursor", "message": refused.value.errors[0]["message"]}
    ]
    assert "sort=title&order=asc" in refused.value.errors[0]["message"]


def test_list_params_parse_tags_into_keys() -> None:
    params = IdeaListParams.model_validate({"tags": " Blog, ,VIDEO,blog "})
    assert params.tags == ["blog", "video"]
    assert params.is_filtered
    assert not IdeaListParams.model_validate({"tags": " , "}).is_filtered


# -- query shapes --------------------------------------------------------------------------


def test_escape_like() -> None:
    assert escape_like("50%_off\\") == "%50\\%\\_off\\\\%"


async def test_search_query_shapes(session: AsyncSession, backend: str) -> None:
    """PostgreSQL: ILIKE (answered by the trigram indexes) from three characters on, strpos on
    the lower-cased text below that, texticlike (a row test) when a stage or priority already
    narrows; tags through the GIN index only when nothing else narrows. SQLite: its own
    case-insensitive LIKE, no lower()."""
    dialect = session.get_bind().dialect

    def sql(filters: IdeaFilter) -> str:
        stmt = page_statement(dialect.name, filters, PageRequest("created_at", True, limit=20))
        return str(stmt.compile(dialect=dialect))

    long_term = sql(IdeaFilter(search="Video"))
    short_term = sql(IdeaFilter(search="ai"))
    combined = sql(IdeaFilter(search="video", tag_keys=["blog"]))
    tags_only = sql(IdeaFilter(tag_keys=["blog"]))
    staged = sql(IdeaFilter(search="video", stage=IdeaStage.DRAFT))
    if backend == "postgresql":
        assert "ideas.title ILIKE" in long_term and "ideas.notes ILIKE" in long_term
        # ...over the first `walk_budget` ideas of the stage, in the page's order.
        assert "texticlike(walked.title" in staged and "ILIKE" not in staged
        assert (
            "ORDER BY ideas.created_at DESC, ideas.id DESC \n"
            " LIMIT __[POSTCOMPILE_walk_budget]) AS walked" in staged
        )
        assert "strpos(lower(ideas.title)" in short_term
        assert "tag_keys ?|" in tags_only  # the GIN index
        assert "jsonb_exists_any(ideas.tag_keys" in combined  # a row test after the others
    else:
        for statement in (long_term, short_term, combined, staged):
            assert "ideas.title LIKE" in statement and "ideas.notes LIKE" in statement
            assert "lower(" not in statement
        assert "json_each(ideas.tag_keys)" in combined
