"""A real `creativeflow serve` process restarted: the in-process hub forgets everything, and a
client reconnecting with a number from before is told to reload (its own database: no other
server runs jobs beside it)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.factories import UserFactory
from tests.jobs.live import running_platform
from tests.realtime.live import (
    authenticated,
    open_socket,
    realtime_settings,
    serve,
    server_environment,
    submit_steps,
    until_up,
)


async def test_after_a_restart_a_since_from_before_means_reload(
    live_database_url: str, tmp_path: Path
) -> None:
    """The in-process hub forgets everything when its process restarts: a client reconnecting
    with a number from before is told to reload (the new numbers are all larger)."""
    settings = realtime_settings(live_database_url, tmp_path)
    env = server_environment(settings)
    async with running_platform(settings, start_jobs=False) as platform:
        with serve(env, tmp_path / "first.log") as server:
            await until_up(server.base_url)
            async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client:
                user = await UserFactory(client, platform).create()
            async with authenticated(server.ws_url, user.access_token) as socket:
                await submit_steps(platform, user.id, steps=1)
                last_seen = (await socket.until("task_complete"))[-1]["sequence"]
        with serve(env, tmp_path / "second.log") as server:
            await until_up(server.base_url)
            url = f"{server.ws_url}?token={user.access_token}&since={last_seen}"
            async with open_socket(url) as socket:
                connected = await socket.receive()
                reload = await socket.receive()
                job = await submit_steps(platform, user.id, steps=1)
                after = await socket.receive()
    assert reload["type"] == "reload"
    assert connected["data"]["sequence"] > last_seen
    assert after["job_id"] == str(job.id)
    assert after["sequence"] == connected["data"]["sequence"] + 1
