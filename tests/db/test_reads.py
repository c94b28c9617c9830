"""The read path: pooled connections outside any session, in a worker thread for SQLite and
through the async driver for PostgreSQL, seeing committed data and never writing."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Connection,
    Integer,
    String,
    Uuid,
    bindparam,
    column,
    event,
    func,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import create_async_engine

from creativeflow.db.engine import create_engine
from creativeflow.db.reads import (
    SQLITE_MMAP_BYTES,
    AsyncDriverReads,
    DriverStatement,
    ReadConnections,
    SQLiteThreadReads,
    create_read_connections,
)
from tests.databases import empty_database


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database with one committed table, `notes(id, body)`."""
    with empty_database(request.param, tmp_path) as url:

        async def arrange() -> None:
            engine = create_engine(url, null_pool=True)
            async with engine.begin() as connection:
                await connection.execute(
                    text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
                )
                await connection.execute(
                    text("INSERT INTO notes VALUES (1, 'first'), (2, 'second')")
                )
            await engine.dispose()

        asyncio.run(arrange())
        yield url


@pytest.fixture
async def reads(fresh_url: str) -> AsyncIterator[ReadConnections]:
    connections = create_read_connections(fresh_url, pool_size=2, max_overflow=0)
    yield connections
    await connections.close()


def _bodies(connection: Connection) -> list[str]:
    return list(connection.execute(text("SELECT body FROM notes ORDER BY id")).scalars())


async def test_reads_return_what_the_work_returns(reads: ReadConnections) -> None:
    assert await reads.run(_bodies) == ["first", "second"]


async def test_reads_see_writes_committed_elsewhere(fresh_url: str, reads: ReadConnections) -> None:
    await reads.run(_bodies)  # a pooled connection now exists and is reused below
    engine = create_engine(fresh_url, null_pool=True)
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO notes VALUES (3, 'third')"))
    await engine.dispose()
    assert await reads.run(_bodies) == ["first", "second", "third"]


async def test_many_reads_at_once_share_the_pool(reads: ReadConnections) -> None:
    results = await asyncio.gather(*(reads.run(_bodies) for _ in range(20)))
    assert all(result == ["first", "second"] for result in results)


async def test_each_backend_gets_its_read_path(fresh_url: str, reads: ReadConnections) -> None:
    expected = SQLiteThreadReads if fresh_url.startswith("sqlite") else AsyncDriverReads
    assert isinstance(reads, expected)


@pytest.mark.parametrize("fresh_url", ["sqlite"], indirect=True)
async def test_sqlite_reads_run_off_the_event_loop_and_cannot_write(
    reads: ReadConnections,
) -> None:
    loop_thread = threading.current_thread().name
    assert await reads.run(lambda _connection: threading.current_thread().name) != loop_thread

    def write(connection: Connection) -> None:
        connection.execute(text("INSERT INTO notes VALUES (9, 'sneaky')"))

    with pytest.raises(OperationalError, match="readonly"):
        await reads.run(write)
    assert await reads.run(_bodies) == ["first", "second"]

    def mmap_size(connection: Connection) -> int:
        return int(connection.execute(text("PRAGMA mmap_size")).scalar_one())

    assert await reads.run(mmap_size) == SQLITE_MMAP_BYTES


async def _terminate(url: str, pid: int) -> None:
    """End a server backend, and wait until it has gone (the signal is asynchronous: a
    statement sent right after could still be answered)."""
    admin = create_engine(url, null_pool=True)
    async with admin.connect() as connection:
        ended = await connection.scalar(
            text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}
        )
        await connection.commit()
    await admin.dispose()
    assert ended


@pytest.mark.parametrize("fresh_url", ["postgresql"], indirect=True)
async def test_postgresql_reads_retry_once_on_a_dropped_connection(
    fresh_url: str, reads: ReadConnections
) -> None:
    """The read pool has no pre-ping: a connection the server has dropped (restart, idle
    timeout) fails its first statement, and the read is run again on a new connection."""

    def backend_pid(connection: Connection) -> int:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())

    first_pid = await reads.run(backend_pid)
    await _terminate(fresh_url, first_pid)

    second_pid = await reads.run(backend_pid)
    assert second_pid != first_pid
    assert await reads.run(_bodies) == ["first", "second"]


async def test_other_errors_are_not_retried(reads: ReadConnections) -> None:
    calls: list[int] = []

    def broken(connection: Connection) -> None:
        calls.append(1)
        connection.execute(text("SELECT body FROM no_such_table"))

    with pytest.raises((OperationalError, ProgrammingError)):
        await reads.run(broken)
    assert len(calls) == 1


def test_sqlite_in_memory_is_refused() -> None:
    with pytest.raises(ValueError, match="SQLite file"):
        create_read_connections("sqlite+aiosqlite:///:memory:", pool_size=1, max_overflow=0)


# -- driver statements: compiled once, run on the driver's own connection ----------------------

NOTES = table("notes", column("id", Integer), column("body", String))
BODIES_AFTER = (
    select(NOTES.c.body).where(NOTES.c.id > bindparam("after")).order_by(NOTES.c.id).limit(10)
)


def _driver_statement(reads: ReadConnections, *, bounded: bool = False) -> DriverStatement:
    return DriverStatement.compile(BODIES_AFTER, reads.dialect, bounded=bounded)


@pytest.mark.parametrize("bounded", [False, True])
async def test_fetch_returns_the_drivers_rows(reads: ReadConnections, bounded: bool) -> None:
    statement = _driver_statement(reads, bounded=bounded)
    # The LIMIT's value is the statement's own: the caller names only `after`.
    assert [tuple(row) for row in await reads.fetch(statement, {"after": 0})] == [
        ("first",),
        ("second",),
    ]
    assert [tuple(row) for row in await reads.fetch(statement, {"after": 1})] == [("second",)]


async def test_fetch_sees_writes_committed_elsewhere(
    fresh_url: str, reads: ReadConnections
) -> None:
    statement = _driver_statement(reads, bounded=True)
    await reads.fetch(statement, {"after": 0})
    engine = create_engine(fresh_url, null_pool=True)
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO notes VALUES (3, 'third')"))
    await engine.dispose()
    rows = await reads.fetch(statement, {"after": 0})
    assert [row[0] for row in rows] == ["first", "second", "third"]


async def test_bind_conversions_are_applied(reads: ReadConnections) -> None:
    """A parameter's type still converts its value (here a UUID, 32 hex digits on SQLite)."""
    marker = uuid.UUID("0193a5f2-7c1e-7d3a-9b1c-2f4e5a6b7c8d")
    statement = DriverStatement.compile(
        select(literal_column("1")).where(
            bindparam("marker", type_=Uuid()) == bindparam("same", type_=Uuid())
        ),
        reads.dialect,
    )
    assert len(await reads.fetch(statement, {"marker": marker, "same": marker})) == 1
    assert await reads.fetch(statement, {"marker": marker, "same": uuid.uuid4()}) == []


def test_expanding_parameters_are_refused(reads: ReadConnections) -> None:
    expanding = select(NOTES.c.body).where(NOTES.c.id.in_(bindparam("ids", expanding=True)))
    with pytest.raises(ValueError, match="expanding parameters"):
        DriverStatement.compile(expanding, reads.dialect)


# Quotes and backslashes: what a literal's quoting must get right (PostgreSQL reads a backslash
# as itself only with `standard_conforming_strings`, which the dialect learns on connecting).
AWKWARD_WORDS = ["it's", "back\\slash\\", "'; DROP TABLE notes; --", "%_"]


async def test_literal_parameters_are_written_into_the_sql_exactly(
    reads: ReadConnections,
) -> None:
    """Every value comes back as it was given, from the first statement of a new pool on,
    and each value makes its own SQL (so its own plan)."""
    echo = select(
        bindparam("word", type_=String(), literal_execute=True),
        NOTES.c.body,
    ).where(NOTES.c.id == bindparam("id"))
    statement = DriverStatement.compile(echo, reads.dialect)
    assert statement.names == ("id",)  # the literal is not a driver parameter
    for word in AWKWARD_WORDS:
        assert [tuple(row) for row in await reads.fetch(statement, {"word": word, "id": 1})] == [
            (word, "first")
        ]
    assert statement.sql_for({"word": "a"}) != statement.sql_for({"word": "b"})
    assert await reads.run(_bodies) == ["first", "second"]  # the table is still there


@pytest.mark.parametrize("fresh_url", ["postgresql"], indirect=True)
async def test_postgresql_read_connections_keep_generic_plans(reads: ReadConnections) -> None:
    """Plans are reused, not made again at every execution (see `_plan_once_per_statement`)."""
    statement = DriverStatement.compile(
        select(func.current_setting("plan_cache_mode")), reads.dialect
    )
    assert (await reads.fetch(statement, {}))[0][0] == "force_generic_plan"


@pytest.mark.parametrize("fresh_url", ["sqlite"], indirect=True)
async def test_sqlite_runs_bounded_statements_on_the_loop_and_others_in_threads(
    reads: ReadConnections,
) -> None:
    assert isinstance(reads, SQLiteThreadReads)

    @event.listens_for(reads.engine, "connect")
    def _thread_name_function(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.create_function("thread_name", 0, lambda: threading.current_thread().name)

    where = select(func.thread_name())
    bounded = DriverStatement.compile(where, reads.dialect, bounded=True)
    unbounded = DriverStatement.compile(where, reads.dialect)
    loop_thread = threading.current_thread().name
    assert (await reads.fetch(bounded, {}))[0][0] == loop_thread
    assert (await reads.fetch(unbounded, {}))[0][0] != loop_thread


@pytest.mark.parametrize("fresh_url", ["sqlite"], indirect=True)
async def test_sqlite_a_long_read_does_not_hold_up_the_others(reads: ReadConnections) -> None:
    assert isinstance(reads, SQLiteThreadReads)
    release = threading.Event()

    @event.listens_for(reads.engine, "connect")
    def _blocking_function(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.create_function("wait_for_release", 0, lambda: release.wait(5))

    long_read = asyncio.ensure_future(
        reads.fetch(DriverStatement.compile(select(func.wait_for_release()), reads.dialect), {})
    )
    await asyncio.sleep(0.05)  # the long read holds its thread
    rows = await asyncio.wait_for(reads.fetch(_driver_statement(reads), {"after": 0}), 2)
    assert [row[0] for row in rows] == ["first", "second"]
    assert not long_read.done()
    release.set()
    assert (await long_read)[0][0] == 1


@pytest.mark.parametrize("fresh_url", ["postgresql"], indirect=True)
async def test_postgresql_fetch_retries_once_on_a_dropped_connection(
    fresh_url: str, reads: ReadConnections
) -> None:
    backend_pid = DriverStatement.compile(select(func.pg_backend_pid()), reads.dialect)
    first_pid = (await reads.fetch(backend_pid, {}))[0][0]
    await _terminate(fresh_url, first_pid)

    # Both pooled connections may be the dropped one's siblings: each read gets an answer.
    assert (await reads.fetch(backend_pid, {}))[0][0] != first_pid
    rows = await reads.fetch(_driver_statement(reads), {"after": 0})
    assert [row[0] for row in rows] == ["first", "second"]


@pytest.mark.parametrize("fresh_url", ["postgresql"], indirect=True)
async def test_postgresql_runs_at_most_keep_driver_statements_at_once(fresh_url: str) -> None:
    """Six 0.1 s statements on a pool of six, two at a time: three rounds, in arrival order."""
    engine = create_async_engine(fresh_url, pool_size=6, max_overflow=0)
    reads = AsyncDriverReads(engine, keep=2)
    nap = DriverStatement.compile(
        select(func.pg_sleep(0.1), bindparam("n", type_=Integer())), reads.dialect
    )
    finished: list[int] = []

    async def read(n: int) -> None:
        await reads.fetch(nap, {"n": n})
        finished.append(n)

    started = time.perf_counter()
    await asyncio.gather(*(read(n) for n in range(6)))
    elapsed = time.perf_counter() - started
    await reads.close()
    assert elapsed >= 0.3  # six in parallel would take 0.1 s
    assert sorted(finished[:2]) == [0, 1] and sorted(finished[-2:]) == [4, 5]


async def test_fetch_errors_other_than_a_dropped_connection_surface(
    reads: ReadConnections,
) -> None:
    missing = DriverStatement.compile(text("SELECT body FROM no_such_table"), reads.dialect)
    with pytest.raises(Exception, match=r"no_such_table|no such table"):
        await reads.fetch(missing, {})
    # The connection went back to the pool in working order.
    assert len(await reads.fetch(_driver_statement(reads), {"after": 0})) == 2
