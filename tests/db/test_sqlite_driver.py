"""The sessions' SQLite driver: what can wait on a lock or the disk runs on aiosqlite's thread,
the rest on the event loop, and results read the same either way."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from creativeflow.db.engine import create_engine, create_session_factory, writer_engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncEngine:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE t (v INTEGER)"))
        await connection.execute(text("INSERT INTO t VALUES (1), (2), (3), (4), (5)"))
    yield engine
    await engine.dispose()


async def _trace(connection: AsyncConnection) -> list[tuple[str, bool]]:
    """Each statement SQLite runs on this connection, and whether the event loop ran it."""
    loop_thread = threading.get_ident()
    seen: list[tuple[str, bool]] = []
    driver = (await connection.get_raw_connection()).driver_connection
    await driver.set_trace_callback(
        lambda sql: seen.append((sql, threading.get_ident() == loop_thread))
    )
    return seen


async def test_a_read_session_goes_to_the_thread_for_its_statement_and_commit_only(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        seen = await _trace(connection)
    async with create_session_factory(engine)() as session:
        assert (await session.execute(text("SELECT sum(v) FROM t"))).scalar_one() == 15
        await session.commit()
    assert seen == [
        ("BEGIN DEFERRED", True),  # takes no lock: on the loop
        ("SELECT sum(v) FROM t", False),
        ("COMMIT", False),
    ]  # and no ROLLBACK when the pool takes the connection back: nothing is open


async def test_writes_wait_for_their_lock_on_the_thread_and_roll_back_there(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        seen = await _trace(connection)
    async with writer_engine(engine).connect() as connection:
        await connection.execute(text("INSERT INTO t VALUES (6)"))
        await connection.rollback()
    assert seen == [
        ("BEGIN IMMEDIATE", False),  # may wait on the busy timeout
        ("INSERT INTO t VALUES (6)", False),
        ("ROLLBACK", False),
    ]
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar_one() == 5


async def test_rows_read_whole_or_streamed_in_order(engine: AsyncEngine) -> None:
    query = text("SELECT v FROM t ORDER BY v")
    async with engine.connect() as connection:
        assert (await connection.execute(query)).scalars().all() == [1, 2, 3, 4, 5]
        result = await connection.stream(query)  # fetchone / fetchmany, server-side style
        assert (await result.fetchone()) == (1,)
        parts = [[row.v for row in part] async for part in result.partitions(2)]
        assert parts == [[2, 3], [4, 5]]
        empty = await connection.execute(text("SELECT v FROM t WHERE v > 9"))
        assert empty.all() == []
        assert (await connection.execute(text("UPDATE t SET v = v WHERE v > 3"))).rowcount == 2
