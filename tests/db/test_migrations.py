"""The schema comes from the migrations: they build it from nothing, take it down again, and
agree with the models on both backends."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

import creativeflow.ideas.models
import creativeflow.identity.models  # noqa: F401  (register every table on Base.metadata)
from creativeflow.db import migrate
from creativeflow.db.base import Base
from creativeflow.db.engine import create_engine


def _on_connection(url: str, fn: Any) -> Any:
    """Run `fn(sync_connection)` on a short-lived engine of the platform's own making."""

    async def run() -> Any:
        engine = create_engine(url, null_pool=True)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(fn)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _schema_diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


def test_upgrade_head_builds_every_table_from_nothing(fresh_database_url: str) -> None:
    assert _on_connection(fresh_database_url, migrate.current_revision) is None
    migrate.upgrade(fresh_database_url)
    assert _on_connection(fresh_database_url, migrate.current_revision) == migrate.head_revision()
    tables = _on_connection(fresh_database_url, _tables)
    assert set(Base.metadata.tables) <= tables, set(Base.metadata.tables) - tables


def test_models_and_migrations_agree(fresh_database_url: str) -> None:
    migrate.upgrade(fresh_database_url)
    diff = _on_connection(fresh_database_url, _schema_diff)
    assert diff == [], (
        "models and migrations differ; run `creativeflow db revision`:\n"
        + "\n".join(map(str, diff))
    )


def test_downgrade_base_then_upgrade_head(fresh_database_url: str) -> None:
    migrate.upgrade(fresh_database_url)
    migrate.downgrade(fresh_database_url, "base")
    assert _on_connection(fresh_database_url, migrate.current_revision) is None
    assert _on_connection(fresh_database_url, _tables) <= {"alembic_version"}

    migrate.upgrade(fresh_database_url)
    assert _on_connection(fresh_database_url, migrate.current_revision) == migrate.head_revision()
    assert _on_connection(fresh_database_url, _schema_diff) == []


def test_every_revision_steps_down_and_up_again(fresh_database_url: str) -> None:
    """Each migration's downgrade undoes exactly its upgrade, one step at a time."""
    migrate.upgrade(fresh_database_url)
    steps = 0
    while _on_connection(fresh_database_url, migrate.current_revision) is not None:
        migrate.downgrade(fresh_database_url, "-1")
        steps += 1
    assert steps >= 2
    for _ in range(steps):
        migrate.upgrade(fresh_database_url, "+1")
    assert _on_connection(fresh_database_url, _schema_diff) == []


async def test_migrations_can_run_from_inside_an_event_loop(fresh_database_url: str) -> None:
    """An async caller (a test, a start-up hook) can migrate without a loop conflict."""
    migrate.upgrade(fresh_database_url)
    engine = create_engine(fresh_database_url, null_pool=True)
    try:
        async with engine.connect() as connection:
            revision = await connection.run_sync(migrate.current_revision)
    finally:
        await engine.dispose()
    assert revision == migrate.head_revision()
