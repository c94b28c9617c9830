"""Empty databases for tests: a SQLite file, or a PostgreSQL database created on the server
named by TEST_DATABASE_URL and dropped afterwards."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, async_sessionmaker

from creativeflow.db.engine import create_engine
from creativeflow.db.reads import ConnectionReads
from creativeflow.platform import Platform


@contextmanager
def empty_database(backend: str, directory: Path) -> Iterator[str]:
    """The URL of an empty database nobody else uses; skips PostgreSQL when it is not set up."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'test.db'}"
        return
    base_url = os.environ.get("TEST_DATABASE_URL")
    if not base_url:
        pytest.skip("PostgreSQL: TEST_DATABASE_URL is not set")
    url = create_postgres_database(base_url)
    try:
        yield url
    finally:
        drop_postgres_database(base_url, url)


def _admin_url(base_url: str) -> str:
    return (
        make_url(base_url)
        .set(drivername="postgresql+asyncpg")
        .render_as_string(hide_password=False)
    )


def create_postgres_database(base_url: str) -> str:
    name = f"creativeflow_test_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        engine = create_engine(_admin_url(base_url), null_pool=True)
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await engine.dispose()

    asyncio.run(create())
    return make_url(_admin_url(base_url)).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(base_url: str, url: str) -> None:
    name = make_url(url).database

    async def drop() -> None:
        engine = create_engine(_admin_url(base_url), null_pool=True)
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await engine.dispose()

    asyncio.run(drop())


async def bind_to_transaction(platform: Platform, connection: AsyncConnection) -> None:
    """Make every session and read of `platform` join the transaction on `connection`: a
    route's commit releases a savepoint, reads see uncommitted writes, and the test's rollback
    undoes everything."""
    bound = async_sessionmaker(
        bind=connection,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="create_savepoint",
    )
    platform.read_sessions = bound
    platform.write_sessions = bound
    await platform.reads.close()
    platform.auth = replace(platform.auth, reads=ConnectionReads(connection))
