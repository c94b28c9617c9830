"""Databases of their own for the migration tests: a temporary SQLite file, and a PostgreSQL
database created and dropped around the test (when TEST_DATABASE_URL is set). The shared,
session-wide test database is never migrated up and down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.databases import empty_database


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database nobody else uses."""
    with empty_database(request.param, tmp_path) as url:
        yield url
