"""Job progress to a WebSocket client (issue 11): not part of the tests.

A real `creativeflow serve` process; a client signed in as one user holds `WS /api/v1/ws`.
Jobs of the bench kind `bench.stamped_progress` (bench/realtime_kinds.py) report progress five
times, each report stamped with the wall-clock time it was made; the client notes when each
arrives. Reported: the latency of each job's first report and of all reports, p50/p99/max,
(1) in process: the API process runs the jobs (target p99 < 100 ms), and
(2) through Celery and Redis: a `creativeflow worker` runs them and its reports reach the API's
    socket through Redis pub/sub (target p99 < 250 ms).
Beside them, the baseline of the same run: a WebSocket ping/pong round trip to the same server.

    .venv/bin/python bench/realtime.py                    # PostgreSQL, Redis DBs 10 and 13
    .venv/bin/python bench/realtime.py --jobs 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import REPO_DIR, VENV_BIN, Server, free_port
from tests.databases import create_postgres_database, drop_postgres_database

from creativeflow.db import migrate
from creativeflow.identity.principal import Principal
from creativeflow.jobs.service import JobService
from creativeflow.platform import build_platform
from creativeflow.settings import Settings

PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
REDIS_REALTIME = "redis://127.0.0.1:6379/10"
REDIS_BROKER = "redis://127.0.0.1:6379/13"
PASSWORD = "bench-password-Long-enough-1"
KIND = "bench.stamped_progress"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def environment(database_url: str, data_dir: Path, secret: str, **extra: str) -> dict[str, str]:
    return {
        "ENVIRONMENT": "production",
        "DATABASE_URL": database_url,
        "DATA_DIR": str(data_dir),
        "SECRET_KEY": secret,
        "ALLOWED_ORIGINS": "https://app.example.com",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_ENABLED": "false",
        "JOB_MODULES": "bench.realtime_kinds",
        "PYTHONPATH": str(REPO_DIR),
        "PYTHONUNBUFFERED": "1",
        "PATH": str(VENV_BIN) + ":/usr/bin:/bin",
        **extra,
    }


def start_server(env: dict[str, str], data_dir: Path) -> Server:
    port = free_port()
    argv = [str(VENV_BIN / "creativeflow"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = Server(
        "creativeflow",
        argv,
        env,
        REPO_DIR,
        data_dir / "server.log",
        port,
        None,
        health_path="/api/v1/health/live",
    )
    server.start()
    return server


def sign_in(base_url: str) -> tuple[uuid.UUID, str]:
    tag = secrets.token_hex(5)
    with httpx.Client(base_url=base_url, timeout=30) as client:
        created = client.post(
            "/api/v1/auth/register",
            json={
                "email": f"bench-{tag}@example.com",
                "username": f"bench_{tag}",
                "name": "Bench",
                "password": PASSWORD,
            },
        )
        created.raise_for_status()
        tokens = client.post(
            "/api/v1/auth/login", json={"login": f"bench_{tag}", "password": PASSWORD}
        ).json()
    return uuid.UUID(created.json()["id"]), tokens["access_token"]


async def round_trips(url: str, token: str, count: int = 200) -> list[float]:
    """The floor: a ping answered by the same server over the same kind of socket."""
    times = []
    async with websockets.connect(f"{url}?token={token}") as socket:
        await socket.recv()  # connected
        for _ in range(count):
            started = time.perf_counter()
            await socket.send(json.dumps({"type": "ping"}))
            while json.loads(await socket.recv())["type"] != "pong":
                pass
            times.append((time.perf_counter() - started) * 1000)
    return times


async def measure(
    settings: Settings, ws_url: str, token: str, user_id: uuid.UUID, jobs: int
) -> dict[str, Any]:
    platform = build_platform(settings)  # submits only: this process runs no job
    principal = Principal(user_id, "bench", frozenset(), frozenset())
    first: dict[str, float] = {}
    every: list[float] = []
    finished: set[str] = set()
    try:
        async with websockets.connect(f"{ws_url}?token={token}") as socket:
            await socket.recv()  # connected

            async def read() -> None:
                # Reads as messages arrive, while jobs are still being submitted.
                while len(finished) < jobs:
                    event = json.loads(await socket.recv())
                    received = time.time()
                    if event["type"] == "generation_progress":
                        stamp = float(event["data"]["message"].removeprefix("t="))
                        latency = (received - stamp) * 1000
                        every.append(latency)
                        first.setdefault(event["job_id"], latency)
                    elif event["type"] == "task_complete":
                        finished.add(event["job_id"])

            reader = asyncio.create_task(read())
            for _ in range(jobs):
                async with platform.write_transaction() as session:
                    await JobService(session, principal, default_max_attempts=1).submit(
                        KIND, {"steps": 5, "step_seconds": 0.02}
                    )
                await platform.jobs.waker.wake()
                await asyncio.sleep(0.05)  # jobs spread out, as users' jobs are
            await asyncio.wait_for(reader, timeout=120)
    finally:
        await platform.close()
    firsts = list(first.values())
    return {
        "jobs": jobs,
        "jobs_seen": len(first),
        "first_report_p50_ms": round(percentile(firsts, 0.5), 1),
        "first_report_p99_ms": round(percentile(firsts, 0.99), 1),
        "first_report_max_ms": round(max(firsts), 1),
        "all_reports_p50_ms": round(percentile(every, 0.5), 1),
        "all_reports_p99_ms": round(percentile(every, 0.99), 1),
        "reports": len(every),
    }


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


async def run(args: argparse.Namespace, database_url: str, workdir: Path) -> bool:
    secret = secrets.token_urlsafe(48)
    results: dict[str, Any] = {}

    env = environment(database_url, workdir / "local", secret)
    (workdir / "local").mkdir()
    server = start_server(env, workdir / "local")
    try:
        user_id, token = sign_in(server.url)
        ws_url = server.url.replace("http", "ws") + "/api/v1/ws"
        pings = await round_trips(ws_url, token)
        results["baseline_ping_round_trip"] = {
            "p50_ms": round(percentile(pings, 0.5), 2),
            "p99_ms": round(percentile(pings, 0.99), 2),
        }
        print(results, flush=True)
        local = Settings.model_validate(
            {
                "database_url": database_url,
                "data_dir": workdir / "local",
                "secret_key": secret,
                "log_level": "WARNING",
                "job_modules": ["bench.realtime_kinds"],
            }
        )
        results["in_process"] = await measure(local, ws_url, token, user_id, args.jobs)
        print({"in_process": results["in_process"]}, flush=True)
    finally:
        server.stop()

    flush_redis(REDIS_REALTIME)
    flush_redis(REDIS_BROKER)
    (workdir / "celery").mkdir()
    env = environment(
        database_url,
        workdir / "celery",
        secret,
        REDIS_URL=REDIS_REALTIME,
        CELERY_BROKER_URL=REDIS_BROKER,
    )
    server = start_server(env, workdir / "celery")
    with (workdir / "celery" / "worker.log").open("ab") as log:
        worker = subprocess.Popen(
            [
                str(VENV_BIN / "creativeflow"),
                "worker",
                "--concurrency",
                "2",
                "--loglevel",
                "WARNING",
            ],
            env=env,
            cwd=REPO_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        await asyncio.sleep(5)  # the worker connects to the broker
        user_id, token = sign_in(server.url)
        ws_url = server.url.replace("http", "ws") + "/api/v1/ws"
        celery = Settings.model_validate(
            {
                "database_url": database_url,
                "data_dir": workdir / "celery",
                "secret_key": secret,
                "log_level": "WARNING",
                "job_modules": ["bench.realtime_kinds"],
                "redis_url": REDIS_REALTIME,
                "celery_broker_url": REDIS_BROKER,
            }
        )
        results["celery_redis"] = await measure(celery, ws_url, token, user_id, args.jobs)
        print({"celery_redis": results["celery_redis"]}, flush=True)
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(timeout=30)
        server.stop()

    local_ok = results["in_process"]["first_report_p99_ms"] < 100
    celery_ok = results["celery_redis"]["first_report_p99_ms"] < 250
    print(
        {
            "in_process_target": "PASS" if local_ok else "FAIL",
            "celery_target": "PASS" if celery_ok else "FAIL",
        },
        flush=True,
    )
    return local_ok and celery_ok


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=200)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="creativeflow-bench-realtime-"))
    database_url = create_postgres_database(PG_SERVER)
    print(f"work dir {workdir}", flush=True)
    try:
        migrate.upgrade(database_url)
        passed = asyncio.run(run(args, database_url, workdir))
    finally:
        drop_postgres_database(PG_SERVER, database_url)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
