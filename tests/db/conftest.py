"""Databases of their own for the migration tests: a temporary SQLite file, and a PostgreSQL
database created and dropped around the test (when TEST_DATABASE_URL is set). The shared,
session-wide test database is never migrated up and down."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _create_postgres_database, _drop_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database nobody else uses."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        return
    base_url = os.environ.get("TEST_DATABASE_URL")
    if not base_url:
        pytest.skip("PostgreSQL: TEST_DATABASE_URL is not set")
    url = _create_postgres_database(base_url)
    try:
        yield url
    finally:
        _drop_postgres_database(base_url, url)
