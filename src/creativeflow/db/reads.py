"""Read-only work outside the ORM session: the path hot GET requests take.

A read needs no unit of work: no identity map, no flush, no BEGIN/COMMIT pair around one
SELECT. `ReadConnections.run(work)` hands `work` a pooled Core `Connection` in autocommit, in
which each statement is its own snapshot, and returns what `work` returns. `work` is plain
synchronous SQLAlchemy code; where it runs depends on the database:

- SQLite file: in a worker thread, over the stdlib driver. The whole unit of work (statements
  and row processing) is one thread hop, where aiosqlite costs one hop per driver call
  (cursor, execute, fetch, close: 10-13 per request).
- PostgreSQL (and anything else with an async driver): on the event loop, through the async
  engine's greenlet bridge (`AsyncConnection.run_sync`). The pool has no pre-ping (one round
  trip per checkout); instead a read that meets a connection the server has dropped is
  retried once on a fresh one, which is safe because it writes nothing.

The hottest reads skip SQLAlchemy's result processing too: `fetch(statement, params)` runs a
`DriverStatement` (a Core statement compiled once for the dialect) on the driver's own
connection and returns its plain rows. Their columns should be what the caller writes out
as they are (see `creativeflow.db.text`). On SQLite a statement marked `bounded` (an index walk
of at most a page, or one row by key: tens of microseconds) runs right on the event loop,
where the thread hop alone costs ~50 us; anything that may scan goes to the threads.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import greenlet_spawn

from creativeflow.db.engine import is_sqlite_file, json_deserializer
from creativeflow.db.pool import FirstComePool

T = TypeVar("T")
SQLITE_MMAP_BYTES = 1 << 30  # address space, not memory: only the pages read are mapped in
ReadWork = Callable[[Connection], T]


DriverRow = Sequence[Any]


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A Core statement compiled once for one dialect, run with the driver's own `execute`.

    Parameters marked `literal_execute` are written into the SQL as literals at each run
    (`sql_for`), as SQLAlchemy itself would: a value that decides the plan (a search term) then
    gets a statement, and a plan, of its own. `bounded` marks a statement whose cost is capped
    by its LIMIT or its key, which SQLite may then run on the event loop."""

    sql: str
    names: tuple[str, ...]  # the bound parameters, in the driver's positional order
    processors: tuple[Callable[[Any], Any] | None, ...]  # each parameter's bind conversion
    defaults: Mapping[str, Any]  # values the statement carries itself (`OFFSET 0`)
    bounded: bool = False
    # (placeholder in `sql`, parameter, renderer as a quoted literal of the dialect)
    literals: tuple[tuple[str, str, Callable[[Any], str]], ...] = ()

    @classmethod
    def compile(
        cls, statement: ClauseElement, dialect: Dialect, *, bounded: bool = False
    ) -> DriverStatement:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        if compiled.post_compile_params - compiled.literal_execute_params:
            raise ValueError("expanding parameters change the SQL's shape: run it with `run`")
        literals = []
        for bind in compiled.literal_execute_params:
            placeholder = f"__[POSTCOMPILE_{bind.key}]"  # how SQLAlchemy marks the spot
            if placeholder not in compiled.string:
                raise ValueError(f"no placeholder for the literal parameter {bind.key!r}")
            render = partial(compiled.render_literal_value, type_=bind.type)
            literals.append((placeholder, bind.key, render))
        literal_names = {bind.key for bind in compiled.literal_execute_params}
        names = tuple(name for name in compiled.positiontup or () if name not in literal_names)
        processors = tuple(
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in names
        )
        defaults = {
            name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required
        }
        return cls(compiled.string, names, processors, defaults, bounded, tuple(literals))

    @classmethod
    def for_dialect(
        cls, statement: ClauseElement, dialect: Dialect, *, bounded: bool = False
    ) -> DriverStatement:
        """`compile`, once per driver ("sqlite+pysqlite") and statement, whichever engine
        asks. The statement must be kept (built once per shape), as it keys the cache."""
        driver = f"{dialect.name}+{dialect.driver}"
        _DIALECTS.setdefault(driver, dialect)
        return _compiled(driver, statement, bounded)

    def sql_for(self, params: Mapping[str, Any]) -> str:
        """The SQL with the literal parameters written in. On PostgreSQL, call it once the
        engine has connected: the quoting follows `standard_conforming_strings`, which the
        dialect learns on its first connect."""
        sql = self.sql
        for placeholder, name, render in self.literals:
            sql = sql.replace(placeholder, render(params[name]))
        return sql

    def arguments(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        values = [params[name] if name in params else self.defaults[name] for name in self.names]
        return tuple(
            value if process is None else process(value)
            for value, process in zip(values, self.processors, strict=True)
        )


_DIALECTS: dict[str, Dialect] = {}


@lru_cache(maxsize=512)
def _compiled(driver: str, statement: ClauseElement, bounded: bool) -> DriverStatement:
    return DriverStatement.compile(statement, _DIALECTS[driver], bounded=bounded)


class ReadConnections(Protocol):
    dialect: Dialect

    async def run(self, work: ReadWork[T]) -> T: ...

    async def fetch(self, statement: DriverStatement, params: Mapping[str, Any]) -> list[DriverRow]:
        """The rows of `statement` as the driver returns them (no type processing)."""
        ...

    async def close(self) -> None: ...


def _cpus_available() -> int:
    if hasattr(os, "sched_getaffinity"):  # Linux: honours taskset and cpusets
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class SQLiteThreadReads:
    """Reads over the stdlib sqlite3 driver in a small pool of worker threads.

    One thread per CPU the process may run on (two to four): a read of a file in the page
    cache only computes, so more threads than CPUs just take turns on them, with the event
    loop among them, and the slowest searches set the tail. Two at least, so that one long
    scan cannot hold up every other read. A worker pinned to one CPU (100k ideas, filtered
    search, 32 connections, three alternating runs each): p99/p50 1.53 with two threads,
    1.75 with four, at the same throughput."""

    def __init__(self, url: str, *, size: int | None = None) -> None:
        size = size or min(4, max(2, _cpus_available()))
        sync_url = make_url(url).set(drivername="sqlite")
        self.engine = create_engine(
            sync_url,
            pool_size=size + 1,  # one more, kept by the event loop for bounded statements
            max_overflow=0,
            connect_args={"check_same_thread": False, "timeout": 15},  # = busy_timeout
            json_deserializer=json_deserializer,
        )
        self.dialect = self.engine.dialect
        self._threads = ThreadPoolExecutor(max_workers=size, thread_name_prefix="sqlite-read")

        @event.listens_for(self.engine, "connect")
        def _read_only(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # autocommit: no BEGIN around a SELECT
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA query_only=ON")  # this path can never write
            # Read pages through a memory map of the file instead of one pread() per page: a
            # search walking thousands of rows spent ~30% of its time in those system calls.
            # The map shares the OS page cache, so it costs no memory per connection.
            cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
            cursor.close()

        self._loop_connection: Any = None  # the event loop's own, opened on first use

    def _run_in_thread(self, work: ReadWork[T]) -> T:
        with self.engine.connect() as connection:
            return work(connection)

    async def run(self, work: ReadWork[T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._run_in_thread, work)

    async def fetch(self, statement: DriverStatement, params: Mapping[str, Any]) -> list[DriverRow]:
        sql, arguments = statement.sql_for(params), statement.arguments(params)
        if statement.bounded:
            try:
                return self._fetch_on_loop(sql, arguments)
            except sqlite3.OperationalError as exc:
                # A reader in WAL mode waits only while the WAL index is rebuilt; the loop must
                # never wait, so that rare case goes to a thread, which may.
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                    raise
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._fetch_in_thread, sql, arguments)

    def _fetch_on_loop(self, sql: str, arguments: tuple[Any, ...]) -> list[DriverRow]:
        if self._loop_connection is None:
            self._loop_connection = self.engine.raw_connection()
            self._loop_connection.driver_connection.execute("PRAGMA busy_timeout=0")
        driver: Any = self._loop_connection.driver_connection
        return driver.execute(sql, arguments).fetchall()

    def _fetch_in_thread(self, sql: str, arguments: tuple[Any, ...]) -> list[DriverRow]:
        connection = self.engine.raw_connection()
        try:
            driver: Any = connection.driver_connection
            return driver.execute(sql, arguments).fetchall()
        finally:
            connection.close()

    async def close(self) -> None:
        self._threads.shutdown(wait=True)
        if self._loop_connection is not None:
            self._loop_connection.close()
            self._loop_connection = None
        self.engine.dispose()


class AsyncDriverReads:
    """Reads through an async driver, in autocommit, without pre-ping.

    Driver statements keep up to `keep` of the pool's connections between uses: checking one
    out of SQLAlchemy's pool and back (a greenlet each way, the pool's events and reset) cost
    ~60 us, a tenth of a list request. The rest of the pool stays free for `run`.

    At most `keep` driver statements run at once; the others wait their turn, first come first
    served. Thirty searches at once on a small database server share its CPUs, each taking
    many times its own time, so the slowest kind sets the tail; in line, each runs at full
    speed (100k ideas, filtered search, 32 connections, 2 cores: lower p99 in 5 of 6
    alternating runs, e.g. 68-71 ms against 76-79 ms, at 3-6% more requests/s)."""

    def __init__(self, engine: AsyncEngine, *, keep: int = 1) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self._keep = max(1, keep)
        self._kept: list[Any] = []  # checked-out pool connections, idle, newest last
        self._turns = asyncio.Semaphore(self._keep)

    async def run(self, work: ReadWork[T]) -> T:
        try:
            return await self._run(work)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            return await self._run(work)  # the pool has dropped the dead connection

    async def _run(self, work: ReadWork[T]) -> T:
        async with self.engine.connect() as connection:
            return await connection.run_sync(work)

    async def fetch(self, statement: DriverStatement, params: Mapping[str, Any]) -> list[DriverRow]:
        arguments = statement.arguments(params)
        async with self._turns:
            try:
                return await self._fetch(statement, params, arguments)
            except _ConnectionDropped:
                return await self._fetch(statement, params, arguments)

    async def _fetch(
        self, statement: DriverStatement, params: Mapping[str, Any], arguments: tuple[Any, ...]
    ) -> list[DriverRow]:
        # The pooled connection's asyncpg connection itself (its own prepared-statement cache
        # and C row decoding), without a Connection, a greenlet per call or a Result.
        connection = self._kept.pop() if self._kept else await self.engine.raw_connection()
        try:
            driver: Any = connection.driver_connection  # asyncpg's Connection
            sql = statement.sql_for(params)  # on the connection: see `sql_for`
            rows: list[DriverRow] = await driver.fetch(sql, *arguments)
        except BaseException as exc:
            if isinstance(exc, Exception) and not _dropped(exc):
                await self._release(connection)  # a statement error: the connection is fine
                raise
            # Dropped, or cancelled mid-statement (the connection's state is then unknown):
            # the pool replaces it. Shielded, so a cancellation cannot skip the pool's books.
            await asyncio.shield(greenlet_spawn(connection.invalidate, exc))
            if isinstance(exc, Exception):
                raise _ConnectionDropped from exc
            raise
        await self._release(connection)
        return rows

    async def _release(self, connection: Any) -> None:
        if len(self._kept) < self._keep:
            self._kept.append(connection)
        else:
            await greenlet_spawn(connection.close)

    async def close(self) -> None:
        kept, self._kept = self._kept, []
        for connection in kept:
            await greenlet_spawn(connection.close)
        await self.engine.dispose()


class _ConnectionDropped(Exception):
    """The server closed the read connection (restart, failover, idle timeout)."""


def _dropped(exc: Exception) -> bool:
    import asyncpg

    return isinstance(
        exc,
        asyncpg.exceptions.ConnectionDoesNotExistError
        | asyncpg.exceptions.AdminShutdownError
        | asyncpg.exceptions.CannotConnectNowError
        | asyncpg.InterfaceError
        | ConnectionError,
    )


class ConnectionReads:
    """Reads on one given connection, inside whatever transaction it is in (a script's unit of
    work, or a test's transaction that is rolled back at its end): they see its uncommitted
    writes, which pooled read connections cannot."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.dialect = connection.dialect

    async def run(self, work: ReadWork[T]) -> T:
        return await self.connection.run_sync(work)

    async def fetch(self, statement: DriverStatement, params: Mapping[str, Any]) -> list[DriverRow]:
        result = await self.connection.exec_driver_sql(
            statement.sql_for(params), statement.arguments(params)
        )
        return list(result.all())

    async def close(self) -> None:
        """The connection belongs to the caller."""


def create_read_connections(
    url: str, *, pool_size: int, max_overflow: int, echo: bool = False
) -> ReadConnections:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not is_sqlite_file(url):
            # A second engine would open a second, empty in-memory database.
            raise ValueError("the read path needs a SQLite file, not an in-memory database")
        return SQLiteThreadReads(url)
    engine = create_async_engine(
        url,
        echo=echo,
        # Every connection is kept: overflow connections are opened for a burst and closed
        # after each use (32 connections on a pool of 20: a new PostgreSQL connection, TLS
        # attempt included, on a third of the requests).
        poolclass=FirstComePool,
        pool_size=pool_size + max_overflow,
        max_overflow=0,
        pool_recycle=3600,
        isolation_level="AUTOCOMMIT",
        json_deserializer=json_deserializer,
    )
    if parsed.get_backend_name() == "postgresql":
        _plan_once_per_statement(engine)
    return AsyncDriverReads(engine, keep=pool_size // 2)


def _plan_once_per_statement(engine: AsyncEngine) -> None:
    """Prepared statements on the read connections are planned once, not at every execution.

    Left to itself, PostgreSQL re-plans a prepared statement on every execution when the
    estimate for its parameters beats its generic plan's, and the owner's id does that: under
    load the filtered searches spent ~1.1 ms in bind (planning) next to 3-7 ms executing,
    a third of the database's CPU (100k ideas, 32 connections: 451 -> 565 req/s without it).
    What decides a read's plan (a search term, tag keys) is written into its SQL instead (see
    `creativeflow.ideas.queries`), so each term gets its own statement and plan. What is left
    as parameters (owner, stage, limit, cursor) is planned for as an average owner: the same
    plans as the custom ones for the benchmark's owners of 100k and 10k ideas."""

    @event.listens_for(engine.sync_engine, "connect")
    def _generic_plans(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("SET plan_cache_mode = force_generic_plan")
        cursor.close()


__all__ = [
    "SQLITE_MMAP_BYTES",
    "AsyncDriverReads",
    "ConnectionReads",
    "DriverRow",
    "DriverStatement",
    "ReadConnections",
    "ReadWork",
    "SQLiteThreadReads",
    "create_read_connections",
]
