"""Test harness: the schema comes from the migrations, every test runs inside a transaction
that is rolled back at its end, and the whole suite runs on SQLite and, when
TEST_DATABASE_URL is set, again on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio.to_thread
import httpx
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from creativeflow.app import create_app
from creativeflow.db import migrate
from creativeflow.db.engine import create_engine, is_sqlite
from creativeflow.identity.bootstrap import sync_builtin_roles
from creativeflow.platform import Platform, build_platform
from creativeflow.settings import Environment, Settings
from tests.factories import UserFactory

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh, migrated database per backend for the whole session."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "test.db"
        url = f"sqlite+aiosqlite:///{path}"
        migrate.upgrade(url)
        yield url
        return
    base_url = os.environ.get("TEST_DATABASE_URL")
    if not base_url:
        pytest.skip("PostgreSQL: TEST_DATABASE_URL is not set")
    url = _create_postgres_database(base_url)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        _drop_postgres_database(base_url, url)


def _admin_url(base_url: str) -> str:
    return (
        make_url(base_url)
        .set(drivername="postgresql+asyncpg")
        .render_as_string(hide_password=False)
    )


def _create_postgres_database(base_url: str) -> str:
    import asyncio

    name = f"creativeflow_test_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        engine = create_engine(_admin_url(base_url), null_pool=True)
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await engine.dispose()

    asyncio.run(create())
    return make_url(_admin_url(base_url)).set(database=name).render_as_string(hide_password=False)


def _drop_postgres_database(base_url: str, url: str) -> None:
    import asyncio

    name = make_url(url).database

    async def drop() -> None:
        engine = create_engine(_admin_url(base_url), null_pool=True)
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await engine.dispose()

    asyncio.run(drop())


@pytest.fixture(scope="session")
def backend(database_url: str) -> str:
    return "sqlite" if is_sqlite(database_url) else "postgresql"


@pytest.fixture(scope="session")
async def engine(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=5, max_overflow=5)
    # Built-in roles are data every test relies on; committed once, outside the test
    # transactions.
    platform = build_platform(_settings(database_url, tmp_path_factory.mktemp("seed")), engine)
    await sync_builtin_roles(platform)
    yield engine
    await engine.dispose()


def _settings(database_url: str, data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": Environment.TEST,
        "database_url": database_url,
        "data_dir": data_dir,
        "secret_key": "test-secret-key-with-enough-entropy-0123456789",
        "log_level": "WARNING",
        "allowed_origins": ["https://app.example.com"],
        **overrides,
    }
    return Settings.model_validate(values)


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """The test's outer transaction; rolled back at the end whatever the test committed."""
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            yield conn
        finally:
            if transaction.is_active:
                await transaction.rollback()


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """Override in a test module (or with indirect parametrisation) to change settings."""
    return {}


@pytest.fixture
def settings(database_url: str, tmp_path: Path, settings_overrides: dict[str, object]) -> Settings:
    return _settings(database_url, tmp_path, **settings_overrides)


@pytest.fixture
async def platform(
    settings: Settings, engine: AsyncEngine, connection: AsyncConnection
) -> AsyncIterator[Platform]:
    platform = build_platform(settings, engine)
    # Every session of the app joins the test's transaction through savepoints: a route's
    # commit releases a savepoint, and the test's rollback undoes everything.
    bound = async_sessionmaker(
        bind=connection,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="create_savepoint",
    )
    platform.read_sessions = bound
    platform.write_sessions = bound
    yield platform
    await platform.auth.revocations.close()
    if platform.redis is not None:
        await platform.redis.aclose()


@pytest.fixture
async def session(platform: Platform) -> AsyncIterator[AsyncSession]:
    """A session in the test transaction, for arranging data and checking what was stored."""
    async with platform.write_sessions() as session:
        yield session


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(platform.settings, platform=platform)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.10", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def users(client: httpx.AsyncClient, platform: Platform) -> UserFactory:
    return UserFactory(client, platform)


async def run_in_thread(fn, *args):  # type: ignore[no-untyped-def]
    return await anyio.to_thread.run_sync(fn, *args)
