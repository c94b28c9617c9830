"""The ORM sessions' SQLite driver: aiosqlite, with fewer trips to its thread.

aiosqlite runs every driver call on the connection's own thread, and each trip there and back
(a queue, a wake-up, a future resolved through the event loop) costs ~130 us of CPU on a small
virtual machine. A session that read one row made nine: cursor, BEGIN, close; cursor, SELECT,
fetchall, close; COMMIT; and the pool's ROLLBACK on return (1.2 ms). What can neither wait on
a lock nor touch the disk now runs on the event loop: creating and closing a cursor, BEGIN
DEFERRED (no lock until the first read), and a rollback with no transaction open. A statement
brings back its rows in the same trip. That session now makes two trips: the SELECT, and
COMMIT.

Everything that may wait (a statement, COMMIT, a real ROLLBACK, BEGIN IMMEDIATE on the busy
timeout) still runs on the thread, one call at a time, as before. The loop touches the sqlite3
connection only between those calls (SQLAlchemy awaits each one), so the two threads never
use it at once; `check_same_thread` is off for that reason.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Iterable
from functools import partial
from typing import Any

import aiosqlite
from aiosqlite.context import contextmanager


class FewHopConnection(aiosqlite.Connection):
    @contextmanager
    async def cursor(self) -> aiosqlite.Cursor:
        return FewHopCursor(self, self._conn.cursor())

    async def rollback(self) -> None:
        if self._conn.in_transaction:  # the pool resets every connection it gets back
            await super().rollback()

    def begin_deferred(self) -> None:
        """BEGIN DEFERRED, right here: it takes no lock and reads nothing."""
        self._conn.execute("BEGIN DEFERRED")


class FewHopCursor(aiosqlite.Cursor):
    """A cursor whose `execute` brings back the statement's rows; the fetches then read them
    without a trip to the thread (from the left, so streaming them row by row stays linear)."""

    _rows: deque[Any] | None = None

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> FewHopCursor:
        rows = await self._execute(_execute_and_fetch, self._cursor, sql, parameters or ())
        self._rows = None if rows is None else deque(rows)
        return self

    async def fetchone(self) -> Any:
        if self._rows is None:
            return await super().fetchone()
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        if self._rows is None:
            return list(await super().fetchmany(size))
        count = min(self.arraysize if size is None else size, len(self._rows))
        return [self._rows.popleft() for _ in range(count)]

    async def fetchall(self) -> list[Any]:
        if self._rows is None:
            return list(await super().fetchall())
        rows = list(self._rows)
        self._rows.clear()
        return rows

    async def close(self) -> None:
        self._cursor.close()


def _execute_and_fetch(cursor: sqlite3.Cursor, sql: str, parameters: Any) -> list[Any] | None:
    cursor.execute(sql, parameters)
    return cursor.fetchall() if cursor.description is not None else None


def connect(database: str, **kwargs: Any) -> FewHopConnection:
    """As `aiosqlite.connect`, for SQLAlchemy's aiosqlite dialect (`async_creator_fn`)."""
    connection = FewHopConnection(
        partial(sqlite3.connect, database, **{**kwargs, "check_same_thread": False}),
        iter_chunk_size=64,
    )
    connection._thread.daemon = True  # as the dialect does: an unclosed pool must not hang exit
    return connection
