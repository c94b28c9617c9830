"""A real `creativeflow serve` process, killed with SIGKILL while it runs jobs in process and
started again: the queued jobs run after the restart, and the one cut off mid-run is retried."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx

from creativeflow.jobs.models import JobStatus
from tests.factories import DEFAULT_PASSWORD
from tests.jobs.live import (
    creativeflow_command,
    environment_of,
    free_port,
    live_settings,
    process,
    running_platform,
    submit,
    wait_all,
    wait_for,
)
from tests.jobs.sample_kinds import MARKER_DIR_VARIABLE


async def _until_up(base_url: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base_url) as client:
        while True:
            try:
                if (await client.get("/api/v1/health/live")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the server did not start")
            await asyncio.sleep(0.1)


async def test_a_killed_api_process_loses_no_job(live_database_url: str, tmp_path: Path) -> None:
    settings = live_settings(live_database_url, tmp_path, job_concurrency=1)
    markers = tmp_path / "markers"
    markers.mkdir()
    env = environment_of(settings, **{MARKER_DIR_VARIABLE: str(markers)})
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    serve = creativeflow_command("serve", "--port", str(port), "--no-migrate")
    with process(serve, env, tmp_path / "serve-1.log") as server:
        await _until_up(base_url)
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            username = f"restart{port}"
            await client.post(
                "/api/v1/auth/register",
                json={
                    "email": f"{username}@example.com",
                    "username": username,
                    "name": "Restart",
                    "password": DEFAULT_PASSWORD,
                },
            )
            tokens = (
                await client.post(
                    "/api/v1/auth/login", json={"login": username, "password": DEFAULT_PASSWORD}
                )
            ).json()
            headers = {"Authorization": f"Bearer {tokens['access_token']}"}
            ids = []
            for index in range(4):
                response = await client.post(
                    "/api/v1/tasks/execute",
                    headers=headers,
                    json={
                        "task_type": "dialogue",
                        "input": {
                            "situation": f"Scene {index}: two friends argue about "
                            "the map in the rain",
                            "characters": ["Ana", "Ben"],
                        },
                    },
                )
                assert response.status_code == 202, response.text
                ids.append(response.json()["id"])
        async with running_platform(settings, start_jobs=False) as platform:
            long = await submit(platform, "tests.steps", {"steps": 100, "step_seconds": 0.05})
            await wait_for(platform, long.id, lambda job: job.progress > 0, seconds=30)
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
    with process(serve, env, tmp_path / "serve-2.log"):
        await _until_up(base_url)
        async with running_platform(settings, start_jobs=False) as platform:
            finished = await wait_all(platform, [*ids, long.id], seconds=60)
    assert all(job.status is JobStatus.SUCCEEDED for job in finished), [
        (job.status, job.error_message) for job in finished
    ]
    assert finished[-1].attempts == 2  # cut off by the kill, then retried once
    assert len((markers / f"{long.id}.done").read_text().splitlines()) == 1
