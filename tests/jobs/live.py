"""Committed databases and real processes for the tests where jobs run beside requests, in
workers or across restarts (the rolled-back test transaction cannot be shared by them)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx

from creativeflow.app import create_app
from creativeflow.identity.bootstrap import sync_builtin_roles
from creativeflow.identity.principal import Principal
from creativeflow.jobs.models import Job
from creativeflow.jobs.service import JobService
from creativeflow.platform import Platform, build_platform
from creativeflow.settings import Environment, Settings

ROOT = Path(__file__).resolve().parents[2]
SECRET = "live-test-secret-key-with-enough-entropy-0123456789"
# Fast heartbeats and sweeps, so a lost worker is noticed within seconds.
FAST_JOBS = {
    "job_heartbeat_seconds": 0.2,
    "job_heartbeat_timeout_seconds": 2.0,
    "job_sweep_seconds": 0.3,
    "job_wakeup_resend_seconds": 5.0,
    "job_modules": ["tests.jobs.sample_kinds"],
    "image_render_processes": 0,
}


def live_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": Environment.TEST,
        "database_url": database_url,
        "data_dir": data_dir,
        "secret_key": SECRET,
        "log_level": "WARNING",
        **FAST_JOBS,
        **overrides,
    }
    return Settings.model_validate(values)


def environment_of(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a subprocess needs to run with `settings`."""
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": settings.resolved_database_url(),
        "DATA_DIR": str(settings.data_dir),
        "SECRET_KEY": SECRET,
        "LOG_LEVEL": "WARNING",
        "JOB_HEARTBEAT_SECONDS": str(settings.job_heartbeat_seconds),
        "JOB_HEARTBEAT_TIMEOUT_SECONDS": str(settings.job_heartbeat_timeout_seconds),
        "JOB_SWEEP_SECONDS": str(settings.job_sweep_seconds),
        "JOB_WAKEUP_RESEND_SECONDS": str(settings.job_wakeup_resend_seconds),
        "JOB_MODULES": ",".join(settings.job_modules),
        "PYTHONPATH": str(ROOT),
        **extra,
    }
    if settings.celery_broker_url:
        env["CELERY_BROKER_URL"] = settings.celery_broker_url
    else:
        env.pop("CELERY_BROKER_URL", None)
    return env


@asynccontextmanager
async def running_platform(
    settings: Settings, *, start_jobs: bool = True
) -> AsyncIterator[Platform]:
    platform = build_platform(settings)
    await sync_builtin_roles(platform)
    if start_jobs:
        await platform.jobs.start()
    try:
        yield platform
    finally:
        await platform.close()


@asynccontextmanager
async def api_client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(platform.settings, platform=platform)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.20", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def job_row(platform: Platform, job_id: uuid.UUID | str) -> Job:
    async with platform.read_sessions() as session:
        job = await session.get(Job, uuid.UUID(str(job_id)), populate_existing=True)
    assert job is not None
    return job


async def wait_for(
    platform: Platform,
    job_id: uuid.UUID | str,
    done: Callable[[Job], bool] = lambda job: job.status.finished,
    *,
    seconds: float = 30.0,
) -> Job:
    deadline = time.monotonic() + seconds
    while True:
        job = await job_row(platform, job_id)
        if done(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job.status} ({job.error_message})")
        await asyncio.sleep(0.05)


async def wait_all(
    platform: Platform, job_ids: list[uuid.UUID], *, seconds: float = 60.0
) -> list[Job]:
    return [await wait_for(platform, job_id, seconds=seconds) for job_id in job_ids]


async def submit(platform: Platform, kind: str, data: dict[str, Any], **options: Any) -> Job:
    """A job of the platform's own (no owner), submitted as a module would, then woken."""
    async with platform.write_transaction() as session:
        job, _ = await JobService(session, None, default_max_attempts=3).submit(
            kind, data, **options
        )
    await platform.jobs.waker.wake()
    return job


async def submit_owned(platform: Platform, user_id: str, data: dict[str, Any]) -> Job:
    """A `tests.steps` job of the user `user_id`."""
    principal = Principal(uuid.UUID(user_id), "owner", frozenset(), frozenset())
    async with platform.write_transaction() as session:
        job, _ = await JobService(session, principal, default_max_attempts=3).submit(
            "tests.steps", data
        )
    await platform.jobs.waker.wake()
    return job


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child in its own process group (so a kill reaches its children too), killed at exit."""
    with log.open("ab") as output:
        child = subprocess.Popen(  # noqa: S603 - our own command
            args,
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield child
    finally:
        kill_group(child)


def kill_group(child: subprocess.Popen[bytes], sig: int = 9) -> None:
    if child.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(child.pid, sig)
        child.wait(timeout=20)


def creativeflow_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "creativeflow.cli", *args]
