"""Alembic environment: async engines, batch mode on SQLite, every module's tables."""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection, pool
from sqlalchemy.ext.asyncio import async_engine_from_config

import creativeflow.assets.models
import creativeflow.datasources.models
import creativeflow.ideas.models
import creativeflow.identity.models
import creativeflow.jobs.models
import creativeflow.providers.models
import creativeflow.stories.cast.models
import creativeflow.stories.content.models
import creativeflow.stories.drafts.models
import creativeflow.stories.instructions.models
import creativeflow.stories.projects.models
import creativeflow.stories.style.models
import creativeflow.webhooks.models  # noqa: F401  (registers the tables)
from creativeflow.db.base import Base
from creativeflow.db.types import JSONDocument, OrderedEnum, UTCDateTime

config = context.config
target_metadata = Base.metadata


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render the platform's column types by name, so migrations read like the models."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "creativeflow.db.types.UTCDateTime()"
    if type_ == "type" and isinstance(obj, OrderedEnum):
        # Stored as SmallInteger ranks; the enum lives in the model, not the schema.
        return "sa.SmallInteger()"
    if type_ == "type" and obj is JSONDocument:
        return "creativeflow.db.types.JSONDocument"
    return False


def _configure(connection: Connection | None = None, **kwargs: object) -> None:
    url = config.get_main_option("sqlalchemy.url") or ""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=url.startswith("sqlite"),
        compare_type=True,
        render_item=_render_item,
        **kwargs,  # type: ignore[arg-type]
    )


def run_offline() -> None:
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    engine = async_engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    async with engine.connect() as conn:
        await conn.run_sync(_run_sync)
        await conn.commit()
    await engine.dispose()


def _run_online_from_sync_code() -> None:
    """`asyncio.run` cannot start inside a running event loop (an async test, an async start-up
    hook calling `migrate.upgrade`); there the migration gets a loop of its own in a thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(run_online())
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool_:
        pool_.submit(asyncio.run, run_online()).result()


if context.is_offline_mode():
    run_offline()
else:
    _run_online_from_sync_code()
