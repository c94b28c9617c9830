from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from redis import Redis
from redis.exceptions import RedisError

import tests.jobs.sample_kinds  # noqa: F401  (registers the test kinds)
from creativeflow.db import migrate
from tests.conftest import BACKENDS
from tests.databases import empty_database
from tests.realtime.subjects import register_profiles, unregister_profiles

# This suite's own Redis database (the cache tests use 15, Celery's 14, others 13).
REDIS_DB = 12


def realtime_redis_url() -> str:
    base = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    return base.rsplit("/", 1)[0] + f"/{REDIS_DB}"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """Redis database 12, emptied once per run; skips when Redis is not reachable."""
    url = realtime_redis_url()
    client = Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=2.0)
    try:
        client.ping()
        client.flushdb()
    except (RedisError, OSError) as exc:
        pytest.skip(f"Redis is not reachable at {url}: {exc}")
    finally:
        client.close()
    return url


@pytest.fixture(autouse=True)
def profile_subjects() -> Iterator[None]:
    """The `tests.profile` subject type, registered for each test of this suite only."""
    register_profiles()
    yield
    unregister_profiles()


@pytest.fixture(scope="module", params=BACKENDS)
def live_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database whose writes are committed, shared with real server processes."""
    with empty_database(request.param, tmp_path_factory.mktemp("live")) as url:
        migrate.upgrade(url)
        yield url
