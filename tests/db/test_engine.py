"""The engines: SQLite with WAL, foreign keys and savepoints on every connection; PostgreSQL
replacing pooled connections the server closed, without pinging."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from creativeflow.db import migrate
from creativeflow.db.engine import create_engine, writer_engine
from tests.databases import empty_database


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}"
    migrate.upgrade(url)
    return url


@pytest.mark.parametrize("null_pool", [False, True])
async def test_sqlite_connections_use_wal_and_foreign_keys(
    sqlite_url: str, null_pool: bool
) -> None:
    engine = create_engine(sqlite_url, null_pool=null_pool)
    try:
        for _ in range(3):  # every connection the pool hands out, not just the first
            async with engine.connect() as connection:
                journal = (await connection.execute(text("PRAGMA journal_mode"))).scalar_one()
                foreign_keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar_one()
                busy_timeout = (await connection.execute(text("PRAGMA busy_timeout"))).scalar_one()
            assert journal.lower() == "wal"
            assert foreign_keys == 1
            assert busy_timeout > 0
    finally:
        await engine.dispose()


async def test_sqlite_enforces_foreign_keys(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        async with engine.connect() as connection:
            with pytest.raises(IntegrityError):
                await connection.execute(
                    text(
                        "INSERT INTO user_roles (id, user_id, role_id, created_at, updated_at) "
                        "VALUES (:id, :user_id, :role_id, '2026-01-01 00:00:00', "
                        "'2026-01-01 00:00:00')"
                    ),
                    {
                        "id": uuid.uuid4().hex,
                        "user_id": uuid.uuid4().hex,
                        "role_id": uuid.uuid4().hex,
                    },
                )
    finally:
        await engine.dispose()


async def test_sqlite_savepoints_roll_back_only_their_part(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("CREATE TABLE t (v INTEGER)"))
            await connection.execute(text("INSERT INTO t VALUES (1)"))
            savepoint = await connection.begin_nested()
            await connection.execute(text("INSERT INTO t VALUES (2)"))
            await savepoint.rollback()
            values = (await connection.execute(text("SELECT v FROM t"))).scalars().all()
            await connection.rollback()
        assert values == [1]
    finally:
        await engine.dispose()


async def test_write_transactions_take_the_lock_up_front(sqlite_url: str) -> None:
    """A writer begins IMMEDIATE, so a second writer waits on the busy timeout instead of
    failing on a read-to-write lock upgrade."""
    engine = create_engine(sqlite_url)
    statements: list[str] = []

    from sqlalchemy import event

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _record(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    try:
        async with writer_engine(engine).connect() as connection:
            await connection.execute(text("SELECT 1"))
            await connection.rollback()
    finally:
        await engine.dispose()
    assert "BEGIN IMMEDIATE" in statements


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    with empty_database("postgresql", tmp_path) as url:
        yield url


async def test_postgresql_replaces_a_connection_the_server_closed_without_pinging(
    postgres_url: str,
) -> None:
    """No pre-ping: a checkout sends nothing, yet a pooled connection whose backend the
    server ended is replaced, not handed out."""
    engine = create_engine(postgres_url, pool_size=1, max_overflow=0)
    pid_query = text("SELECT pg_backend_pid()")
    try:
        async with engine.connect() as connection:
            first_pid = (await connection.execute(pid_query)).scalar_one()
            driver = (await connection.get_raw_connection()).driver_connection
        sent: list[str] = []  # what the driver sends as plain queries: pings, BEGIN, ROLLBACK
        driver.add_query_logger(lambda record: sent.append(record.query))
        async with engine.connect() as connection:
            assert (await connection.execute(pid_query)).scalar_one() == first_pid
        # The connection's own transaction only: a pre-ping would add "BEGIN;", ";" and
        # "ROLLBACK;" first (the SELECT goes as a prepared statement, which is not logged).
        assert sent == ["BEGIN;", "ROLLBACK;"]

        admin = create_engine(postgres_url, null_pool=True)
        async with admin.connect() as connection:
            assert await connection.scalar(
                text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": first_pid}
            )
        await admin.dispose()
        await asyncio.sleep(0.2)  # the loop reads the server's goodbye

        async with engine.connect() as connection:
            second_pid = (await connection.execute(pid_query)).scalar_one()
        assert second_pid != first_pid
    finally:
        await engine.dispose()


async def test_a_sqlite_file_gets_a_pool_as_large_as_postgresqls(sqlite_url: str) -> None:
    """SQLAlchemy's default for SQLite (5 + 10) is fewer than the requests one worker serves
    at once."""
    engine = create_engine(sqlite_url, pool_size=20, max_overflow=20)
    try:
        assert engine.pool.size() == 20  # type: ignore[attr-defined]
        assert engine.pool._max_overflow == 20  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
