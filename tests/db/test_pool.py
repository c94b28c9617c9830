"""The connection pool serves waiting requests first come, first served."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy.exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from creativeflow.db.engine import create_engine
from creativeflow.db.pool import FirstComePool
from creativeflow.db.reads import AsyncDriverReads, create_read_connections
from tests.databases import empty_database


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    with empty_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
async def one_connection(url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(
        url, poolclass=FirstComePool, pool_size=1, max_overflow=0, pool_timeout=0.3
    )
    yield engine
    await engine.dispose()


async def test_the_platforms_engines_use_it(url: str) -> None:
    engine = create_engine(url)
    reads = create_read_connections(url, pool_size=2, max_overflow=2)
    try:
        assert isinstance(engine.pool, FirstComePool)
        if isinstance(reads, AsyncDriverReads):
            assert isinstance(reads.engine.pool, FirstComePool)
    finally:
        await engine.dispose()
        await reads.close()


async def test_a_returned_connection_goes_to_the_longest_waiter(
    one_connection: AsyncEngine,
) -> None:
    """A request that gives its connection back and asks again at once does not get ahead of
    those already waiting (SQLAlchemy's own asyncio queue served it first, then C, then B)."""
    order: list[str] = []

    async def use(name: str) -> None:
        async with one_connection.connect() as connection:
            await connection.execute(text("SELECT 1"))
            order.append(name)

    holder = await one_connection.connect()
    await holder.execute(text("SELECT 1"))
    waiters = [asyncio.create_task(use("B")), asyncio.create_task(use("C"))]
    await asyncio.sleep(0.05)  # both are waiting now
    await holder.close()
    order.append("A gave back")
    await use("A again")  # asks at once, before any waiter has run
    await asyncio.gather(*waiters)
    assert order == ["A gave back", "B", "C", "A again"]


async def test_a_waiter_that_gives_up_is_skipped(one_connection: AsyncEngine) -> None:
    async def checkout() -> AsyncConnection:
        return await one_connection.connect()

    holder = await one_connection.connect()
    await holder.execute(text("SELECT 1"))
    with pytest.raises(sqlalchemy.exc.TimeoutError):
        await one_connection.connect()  # waits pool_timeout, then gives up
    cancelled = asyncio.create_task(checkout())
    patient = asyncio.create_task(checkout())
    await asyncio.sleep(0.05)
    cancelled.cancel()
    await holder.close()
    connection = await patient  # the connection skipped both, and was not lost
    assert (await connection.execute(text("SELECT 2"))).scalar_one() == 2
    assert one_connection.pool.checkedout() == 1  # type: ignore[attr-defined]
    await connection.close()
    assert cancelled.cancelled()
    assert one_connection.pool.checkedout() == 0  # type: ignore[attr-defined]
