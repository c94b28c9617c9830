"""The built-in roles at start-up, when several processes start at once on a new database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select

from creativeflow.db import migrate
from creativeflow.identity.bootstrap import sync_builtin_roles
from creativeflow.identity.models import Role
from creativeflow.identity.permissions import BUILTIN_ROLE_PERMISSIONS
from creativeflow.platform import build_platform
from creativeflow.settings import Environment, Settings
from tests.conftest import BACKENDS
from tests.databases import empty_database


async def _start_together(settings: Settings, processes: int) -> int:
    platforms = [build_platform(settings) for _ in range(processes)]
    try:
        # Each reads "no such role" before any has committed, then inserts: all but the first
        # collide on the unique name and must still start.
        await asyncio.gather(*(sync_builtin_roles(platform) for platform in platforms))
        async with platforms[0].read_sessions() as session:
            return await session.scalar(select(func.count()).select_from(Role)) or 0
    finally:
        for platform in platforms:
            await platform.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_processes_starting_together_on_a_new_database_all_start(
    backend: str, tmp_path: Path
) -> None:
    with empty_database(backend, tmp_path) as url:
        migrate.upgrade(url)
        settings = Settings.model_validate(
            {
                "environment": Environment.TEST,
                "database_url": url,
                "data_dir": tmp_path,
                "secret_key": "test-secret-key-with-enough-entropy-0123456789",
                "log_level": "WARNING",
                "image_render_processes": 0,
            }
        )
        count = asyncio.run(_start_together(settings, 4))
    assert count == len(BUILTIN_ROLE_PERMISSIONS)
