"""The job engine's benchmark (issue 10): not part of the tests.

In one run:
1. the in-process runner (JOB_CONCURRENCY jobs at a time, in this process's event loop), then
   Celery with two `creativeflow worker` processes on Redis: 1,000 local text jobs and 200 local
   image jobs each, submit-to-finish p50/p99 (queued_at -> finished_at) and jobs/s;
2. the API's event loop while four image jobs run in process: the lateness of a 10 ms timer
   (target p99 < 20 ms) and `GET /api/v1/health/live` (target p99 < 50 ms), both served by
   the same loop that runs the jobs, as in `creativeflow serve`.

    .venv/bin/python bench/jobs.py                       # PostgreSQL if reachable, else SQLite
    .venv/bin/python bench/jobs.py --backend sqlite --text 200 --images 40   # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.databases import create_postgres_database, drop_postgres_database

from creativeflow.db import migrate
from creativeflow.identity.bootstrap import ensure_builtin_roles
from creativeflow.identity.principal import Principal
from creativeflow.identity.service import AuthService
from creativeflow.jobs.models import Job, JobStatus
from creativeflow.jobs.service import JobService
from creativeflow.platform import Platform, build_platform
from creativeflow.settings import Settings
from creativeflow.shared.api.dtos.user import UserCreate
from creativeflow.shared.core.logging import configure_logging

PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
REDIS = "redis://127.0.0.1:6379/13"
SECRET = "bench-secret-key-with-enough-entropy-0123456789abcdef"
WORDS = [
    "harbour",
    "storm",
    "lamp",
    "boats",
    "reef",
    "keeper",
    "night",
    "signal",
    "rain",
    "captain",
    "map",
    "island",
    "bridge",
    "lantern",
    "tide",
    "rope",
    "gull",
    "cliff",
    "engine",
    "whistle",
]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def scene(index: int) -> str:
    words = [WORDS[(index * 7 + k) % len(WORDS)] for k in range(12)]
    return (
        f"Mara watched the {words[0]} over the {words[1]}. Jonah checked the {words[2]} and the "
        f"{words[3]} before the {words[4]} came. They argued about the {words[5]} while the "
        f"{words[6]} rose. In the end Mara lit the {words[7]} and the {words[8]} answered."
    )


def settings_for(url: str, data_dir: Path, **extra: Any) -> Settings:
    return Settings.model_validate(
        {
            "environment": "test",
            "database_url": url,
            "data_dir": data_dir,
            "secret_key": SECRET,
            "log_level": "WARNING",
            **extra,
        }
    )


async def bench_owner(platform: Platform) -> Principal:
    """A registered user to own the jobs: images belong to someone."""
    tag = uuid.uuid4().hex[:10]
    data = UserCreate(
        email=f"bench-{tag}@example.com",
        username=f"bench_{tag}",
        name="Bench",
        password="bench-password-Long-enough-1",
    )
    async with platform.write_sessions() as session, session.begin():
        await ensure_builtin_roles(session)
        user = await AuthService(session, platform.auth).register(data)
    return Principal(user.id, user.username, frozenset(), frozenset())


async def submit_batch(
    platform: Platform, owner: Principal, kind: str, inputs: list[dict[str, Any]]
) -> list[uuid.UUID]:
    ids = []
    for start in range(0, len(inputs), 50):
        async with platform.write_transaction() as session:
            service = JobService(session, owner, default_max_attempts=1)
            for data in inputs[start : start + 50]:
                job, _ = await service.submit(kind, data)
                ids.append(job.id)
        await platform.jobs.waker.wake(len(inputs[start : start + 50]))
    return ids


async def wait_finished(
    platform: Platform, ids: list[uuid.UUID], timeout: float = 1800
) -> list[Job]:
    deadline = time.monotonic() + timeout
    wanted = set(ids)
    while True:
        async with platform.read_sessions() as session:
            rows = list((await session.execute(select(Job).where(Job.id.in_(wanted)))).scalars())
        if all(row.status.finished for row in rows) and len(rows) == len(wanted):
            return rows
        if time.monotonic() > deadline:
            raise RuntimeError("jobs did not finish in time")
        await asyncio.sleep(0.2)


def summarise(label: str, rows: list[Job]) -> dict[str, Any]:
    failed = [row for row in rows if row.status is not JobStatus.SUCCEEDED]
    latencies = [
        (row.finished_at - row.queued_at).total_seconds() * 1000
        for row in rows
        if row.finished_at is not None
    ]
    span = (
        max(r.finished_at for r in rows if r.finished_at) - min(r.queued_at for r in rows)
    ).total_seconds()
    line = {
        "scenario": label,
        "jobs": len(rows),
        "failed": len(failed),
        "p50_ms": round(percentile(latencies, 0.5), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "jobs_per_s": round(len(rows) / span, 1),
    }
    if failed:
        line["first_error"] = f"{failed[0].error_code}: {failed[0].error_message}"
    print(line, flush=True)
    return line


def text_inputs(n: int) -> list[dict[str, Any]]:
    return [
        {"task_type": "scene_summary", "input": {"scene_text": scene(i)}, "seed": i}
        for i in range(n)
    ]


def image_inputs(n: int, size: int = 512) -> list[dict[str, Any]]:
    return [
        {
            "prompt": f"a lighthouse over a {WORDS[i % len(WORDS)]} at dusk, poster",
            "width": size,
            "height": size,
            "seed": i,
        }
        for i in range(n)
    ]


async def throughput(
    settings: Settings, texts: int, images: int, label: str
) -> list[dict[str, Any]]:
    platform = build_platform(settings)
    owner = await bench_owner(platform)
    await platform.jobs.start()  # in Celery mode: the sweeper only
    try:
        out = []
        ids = await submit_batch(platform, owner, "providers.text_task", text_inputs(texts))
        out.append(summarise(f"{label}: {texts} text jobs", await wait_finished(platform, ids)))
        ids = await submit_batch(platform, owner, "providers.generate_image", image_inputs(images))
        out.append(summarise(f"{label}: {images} image jobs", await wait_finished(platform, ids)))
        return out
    finally:
        await platform.close()


async def event_loop_under_images(settings: Settings, seconds: float = 10.0) -> dict[str, Any]:
    """Four image jobs always running in this loop, a 10 ms timer and a liveness probe beside."""
    from creativeflow.app import create_app

    platform = build_platform(settings)
    owner = await bench_owner(platform)
    await platform.jobs.start()
    app = create_app(settings, platform=platform)
    lags: list[float] = []
    probes: list[float] = []
    stop = asyncio.Event()

    async def timer() -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            planned = loop.time() + 0.010
            await asyncio.sleep(0.010)
            lags.append((loop.time() - planned) * 1000)

    async def probe(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            response = await client.get("/api/v1/health/live")
            assert response.status_code == 200
            probes.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.02)

    try:
        # Enough 1024x1024 images that four are running for the whole window.
        await submit_batch(platform, owner, "providers.generate_image", image_inputs(40, 1024))
        await asyncio.sleep(1.0)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            tasks = [asyncio.create_task(timer()), asyncio.create_task(probe(client))]
            async with platform.read_sessions() as session:
                running = len(
                    list(
                        (
                            await session.execute(
                                select(Job.id).where(Job.status == JobStatus.RUNNING)
                            )
                        ).scalars()
                    )
                )
            await asyncio.sleep(seconds)
            stop.set()
            await asyncio.gather(*tasks)
    finally:
        await platform.close()
    result = {
        "scenario": f"event loop with {running} image jobs running in process",
        "timer_lag_p50_ms": round(percentile(lags, 0.5), 2),
        "timer_lag_p99_ms": round(percentile(lags, 0.99), 2),
        "timer_lag_max_ms": round(max(lags), 2),
        "health_live_p50_ms": round(percentile(probes, 0.5), 2),
        "health_live_p99_ms": round(percentile(probes, 0.99), 2),
        "probes": len(probes),
        "lag_target": "PASS" if percentile(lags, 0.99) < 20 else "FAIL",
        "health_target": "PASS" if percentile(probes, 0.99) < 50 else "FAIL",
    }
    print(result, flush=True)
    return result


def start_workers(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": settings.resolved_database_url(),
        "DATA_DIR": str(settings.data_dir),
        "SECRET_KEY": SECRET,
        "LOG_LEVEL": "WARNING",
        "CELERY_BROKER_URL": REDIS,
    }
    with log.open("ab") as output:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "creativeflow.cli",
                "worker",
                "--concurrency",
                "2",
                "--loglevel",
                "WARNING",
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def run_all(args: argparse.Namespace, database_url: str, workdir: Path) -> bool:
    """True when no job failed and both event-loop targets passed."""
    local = settings_for(database_url, workdir / "local", job_concurrency=args.concurrency)
    lines = await throughput(
        local, args.text, args.images, f"in-process (concurrency {args.concurrency})"
    )
    celery = settings_for(database_url, workdir / "celery", celery_broker_url=REDIS)
    from kombu import Connection

    with Connection(REDIS) as connection:
        connection.default_channel.queue_delete("creativeflow.jobs")
    workers = start_workers(celery, workdir / "workers.log")
    try:
        lines += await throughput(
            celery, args.text, args.images, "celery (2 worker processes, Redis)"
        )
    finally:
        os.killpg(workers.pid, 15)
        workers.wait(timeout=30)
    loop = await event_loop_under_images(
        settings_for(database_url, workdir / "loop", job_concurrency=4)
    )
    return all(line["failed"] == 0 for line in lines) and (
        loop["lag_target"] == loop["health_target"] == "PASS"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default=None)
    parser.add_argument("--text", type=int, default=1000)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    configure_logging("creativeflow-bench", "WARNING")
    workdir = Path(tempfile.mkdtemp(prefix="creativeflow-bench-jobs-"))
    backend = args.backend or "postgresql"
    database_url = (
        create_postgres_database(PG_SERVER)
        if backend == "postgresql"
        else f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    )
    print(f"backend: {backend}; work dir {workdir}", flush=True)
    try:
        migrate.upgrade(database_url)
        passed = asyncio.run(run_all(args, database_url, workdir))
    finally:
        if backend == "postgresql":
            drop_postgres_database(PG_SERVER, database_url)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
