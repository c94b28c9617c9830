"""Test harness: the schema comes from the migrations, every test runs inside a transaction
that is rolled back at its end, and the whole suite runs on SQLite and, when
TEST_DATABASE_URL is set, again on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from creativeflow.app import create_app
from creativeflow.db import migrate
from creativeflow.db.engine import create_engine, is_sqlite
from creativeflow.identity.bootstrap import sync_builtin_roles
from creativeflow.platform import Platform, build_platform
from creativeflow.settings import Environment, Settings
from tests.databases import bind_to_transaction, empty_database
from tests.factories import UserFactory

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh, migrated database per backend for the whole session."""
    with empty_database(request.param, tmp_path_factory.mktemp("sqlite")) as url:
        migrate.upgrade(url)
        yield url


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
        # Threads: a spawned render process per test would cost a second each.
        "image_render_processes": 0,
        # Rate limits stay on (every response is counted and carries the headers), but the
        # default window is out of reach: the suite's anonymous requests all come from one
        # address, and in Redis (TEST_REDIS_URL) the counts outlive a run. The limits
        # themselves are tested in tests/http/test_rate_limits.py with small windows.
        "rate_limit_default": "100000/hour",
        # Every fixture user hashes and verifies a password: at OWASP's cost that is ~0.1 s
        # each. tests/identity/test_passwords.py checks the real parameters.
        "password_hash_memory_kib": 64,
        "password_hash_time_cost": 1,
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
    await bind_to_transaction(platform, connection)
    yield platform
    if platform.redis is not None:
        await platform.redis.aclose()
    if platform.rate_limits is not None:
        await platform.rate_limits.aclose()


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
