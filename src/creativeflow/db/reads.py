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
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from creativeflow.db.engine import json_deserializer

T = TypeVar("T")
SQLITE_MMAP_BYTES = 1 << 30  # address space, not memory: only the pages read are mapped in
ReadWork = Callable[[Connection], T]


class ReadConnections(Protocol):
    async def run(self, work: ReadWork[T]) -> T: ...

    async def close(self) -> None: ...


class SQLiteThreadReads:
    """Reads over the stdlib sqlite3 driver in a small pool of worker threads."""

    def __init__(self, url: str, *, size: int = 4) -> None:
        sync_url = make_url(url).set(drivername="sqlite")
        self.engine = create_engine(
            sync_url,
            pool_size=size,
            max_overflow=0,
            connect_args={"check_same_thread": False, "timeout": 15},  # = busy_timeout
            json_deserializer=json_deserializer,
        )
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

    def _run_in_thread(self, work: ReadWork[T]) -> T:
        with self.engine.connect() as connection:
            return work(connection)

    async def run(self, work: ReadWork[T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._run_in_thread, work)

    async def close(self) -> None:
        self._threads.shutdown(wait=True)
        self.engine.dispose()


class AsyncDriverReads:
    """Reads through an async driver, in autocommit, without pre-ping."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

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

    async def close(self) -> None:
        await self.engine.dispose()


class ConnectionReads:
    """Reads on one given connection, inside whatever transaction it is in (a script's unit of
    work, or a test's transaction that is rolled back at its end): they see its uncommitted
    writes, which pooled read connections cannot."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def run(self, work: ReadWork[T]) -> T:
        return await self.connection.run_sync(work)

    async def close(self) -> None:
        """The connection belongs to the caller."""


def create_read_connections(
    url: str, *, pool_size: int, max_overflow: int, echo: bool = False
) -> ReadConnections:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            # A second engine would open a second, empty in-memory database.
            raise ValueError("the read path needs a SQLite file, not an in-memory database")
        return SQLiteThreadReads(url)
    engine = create_async_engine(
        url,
        echo=echo,
        # Every connection is kept: overflow connections are opened for a burst and closed
        # after each use (32 connections on a pool of 20: a new PostgreSQL connection, TLS
        # attempt included, on a third of the requests).
        pool_size=pool_size + max_overflow,
        max_overflow=0,
        pool_recycle=3600,
        isolation_level="AUTOCOMMIT",
        json_deserializer=json_deserializer,
    )
    return AsyncDriverReads(engine)


__all__ = [
    "SQLITE_MMAP_BYTES",
    "AsyncDriverReads",
    "ConnectionReads",
    "ReadConnections",
    "ReadWork",
    "SQLiteThreadReads",
    "create_read_connections",
]
