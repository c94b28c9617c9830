from __future__ import annotations

from collections.abc import Iterator

import pytest

import tests.jobs.sample_kinds  # noqa: F401  (registers the test kinds)
from creativeflow.db import migrate
from tests.conftest import BACKENDS
from tests.databases import empty_database


@pytest.fixture(scope="module", params=BACKENDS)
def live_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database whose writes are committed: dispatchers, runners and requests
    share it as separate processes would."""
    with empty_database(request.param, tmp_path_factory.mktemp("live")) as url:
        migrate.upgrade(url)
        yield url
