"""Celery mode against the real brokers on this machine (Redis and RabbitMQ) with real
`creativeflow worker` processes: jobs submitted through the API run on a worker, a worker
killed mid-job leaves the job retried elsewhere (never stuck, never completed twice), and a
restarted API process loses no queued job."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlparse

import pytest
from kombu import Connection

from creativeflow.jobs.models import JobStatus
from creativeflow.jobs.wakers import JOBS_QUEUE
from creativeflow.settings import Settings
from tests.factories import UserFactory
from tests.jobs.live import (
    api_client,
    creativeflow_command,
    environment_of,
    live_settings,
    process,
    running_platform,
    submit_owned,
    wait_all,
    wait_for,
)
from tests.jobs.sample_kinds import MARKER_DIR_VARIABLE

BROKERS = {"redis": "TEST_REDIS_URL", "rabbitmq": "TEST_RABBITMQ_URL"}


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 0), 1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module", params=sorted(BROKERS))
def broker_url(request: pytest.FixtureRequest) -> str:
    variable = BROKERS[request.param]
    url = os.environ.get(variable, "")
    if request.param == "redis" and url:
        url = url.rsplit("/", 1)[0] + "/14"  # its own database, beside the cache tests' one
    if not url or not _reachable(url):
        pytest.skip(f"{request.param}: {variable} is not set or not reachable")
    with Connection(url) as connection:  # an earlier run's leftover wake-ups; Celery declares it
        connection.default_channel.queue_delete(JOBS_QUEUE)
    return url


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    directory = tmp_path / "markers"
    directory.mkdir()
    return directory


class Workers:
    def __init__(self, stack: ExitStack, env: dict[str, str], logs: Path) -> None:
        self.stack, self.env, self.logs = stack, env, logs
        self.children: list[subprocess.Popen[bytes]] = []

    def start(self, name: str) -> int:
        child = self.stack.enter_context(
            process(
                creativeflow_command(
                    "worker",
                    "--concurrency",
                    "1",
                    "--loglevel",
                    "WARNING",
                    "--name",
                    f"{name}-{os.getpid()}@localhost",
                ),
                self.env,
                self.logs / f"{name}.log",
            )
        )
        self.children.append(child)
        return child.pid


def _settings(live_database_url: str, tmp_path: Path, broker_url: str) -> Settings:
    return live_settings(live_database_url, tmp_path, celery_broker_url=broker_url)


async def test_a_job_submitted_through_the_api_runs_on_a_worker_and_never_in_the_api(
    live_database_url: str, broker_url: str, tmp_path: Path, markers: Path
) -> None:
    settings = _settings(live_database_url, tmp_path, broker_url)
    env = environment_of(settings, **{MARKER_DIR_VARIABLE: str(markers)})
    async with running_platform(settings) as platform, api_client(platform) as client:
        assert platform.jobs.local is False
        user = await UserFactory(client, platform).create()
        with ExitStack() as stack:
            Workers(stack, env, tmp_path).start("solo")
            response = await user.post(
                "/api/v1/tasks/execute",
                json={"task_type": "visual_prompt", "input": {"description": "A red fox at dawn"}},
            )
            assert response.status_code == 202, response.text
            done = await wait_for(platform, response.json()["id"], seconds=60)
            # An image job renders on the worker (its pool process renders in threads).
            response = await user.post(
                "/api/v1/generate/image",
                json={"prompt": "a lighthouse at dusk", "width": 256, "height": 256, "seed": 3},
            )
            assert response.status_code == 202, response.text
            drawn = await wait_for(platform, response.json()["id"], seconds=60)
            assert drawn.status is JobStatus.SUCCEEDED, drawn.error_message
            assert drawn.result is not None
            image = await user.get(f"/api/v1/images/{drawn.result['image_ids'][0]}")
    assert done.status is JobStatus.SUCCEEDED, done.error_message
    assert done.result is not None and done.result["provider"] == "local"
    assert done.worker_id is None  # released when finished
    assert "fox" in done.result["output"]["prompt"].lower()
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")


async def test_a_worker_killed_mid_job_leaves_it_retried_on_another_worker(
    live_database_url: str, broker_url: str, tmp_path: Path, markers: Path
) -> None:
    settings = _settings(live_database_url, tmp_path, broker_url)
    env = environment_of(settings, **{MARKER_DIR_VARIABLE: str(markers)})
    async with running_platform(settings) as platform, api_client(platform) as client:
        user = await UserFactory(client, platform).create()
        with ExitStack() as stack:
            pool = Workers(stack, env, tmp_path)
            pool.start("first")
            pool.start("second")
            job = await submit_owned(platform, user.id, {"steps": 30, "step_seconds": 0.1})
            running = await wait_for(platform, job.id, lambda j: j.progress > 0, seconds=60)
            assert running.worker_id is not None
            victim_pid = int(running.worker_id.split(":")[1])
            holder = next(child for child in pool.children if _is_ancestor(child.pid, victim_pid))
            os.killpg(holder.pid, signal.SIGKILL)
            done = await wait_for(platform, job.id, seconds=60)
    assert done.status is JobStatus.SUCCEEDED, done.error_message
    assert done.attempts == 2
    completions = (markers / f"{job.id}.done").read_text().splitlines()
    assert len(completions) == 1, completions  # ran to completion exactly once
    assert str(victim_pid) not in completions[0]


def _is_ancestor(ancestor: int, pid: int) -> bool:
    """Whether `ancestor` is `pid` or one of its parents (Celery runs jobs in a child)."""
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False


async def test_a_restarted_api_process_loses_no_queued_job(
    live_database_url: str, broker_url: str, tmp_path: Path, markers: Path
) -> None:
    settings = _settings(live_database_url, tmp_path, broker_url)
    env = environment_of(settings, **{MARKER_DIR_VARIABLE: str(markers)})
    # Jobs queued while no worker runs, then the API process goes away.
    async with running_platform(settings) as first, api_client(first) as client:
        user = await UserFactory(client, first).create()
        jobs = [await submit_owned(first, user.id, {"steps": 2}) for _ in range(5)]
    async with running_platform(settings) as second:
        with ExitStack() as stack:
            Workers(stack, env, tmp_path).start("after-restart")
            finished = await wait_all(second, [job.id for job in jobs], seconds=60)
    assert all(job.status is JobStatus.SUCCEEDED for job in finished)
    assert all((markers / f"{job.id}.done").exists() for job in jobs)
