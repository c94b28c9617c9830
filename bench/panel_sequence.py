"""`POST /generate/panel-sequence` over a 50-panel scene (issue 14): not part of the tests.

A real `creativeflow serve` on a fresh database; a project with a style guide, two characters
and a location, and one scene of 50 panels, built through the API. Then, twice:

1. in process: the API's own runner (JOB_CONCURRENCY, default 4) renders beside the requests;
2. on Celery: the API runs no job; one `creativeflow worker --concurrency 2` (two worker
   processes) on Redis.

Each time: the sequence's wall time (the request to the group job's end, polled), jobs/s, every
child and draft accounted for, and the latency of the API's `GET /scenes/{id}/panels` from four
client loops while it runs, beside the same loop on the idle server of the same run (the ratio
is the report).

    .venv/bin/python bench/panel_sequence.py                      # PostgreSQL
    .venv/bin/python bench/panel_sequence.py --backend sqlite --panels 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import REPO_DIR, VENV_BIN, free_port
from bench.jobs import percentile
from bench.uploads import PG_SERVER, platform_server, register
from tests.databases import create_postgres_database, drop_postgres_database

REDIS = "redis://127.0.0.1:6379/12"
CLIENTS = 4


async def build(client: httpx.AsyncClient, panels: int) -> dict[str, str]:
    async def post(url: str, payload: dict[str, Any]) -> str:
        response = await client.post(url, json=payload)
        if response.status_code != 201:
            raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
        identifier: str = response.json()["id"]
        return identifier

    project = await post("/api/v1/projects", {"title": "Bench sequence"})
    guide = await client.put(
        f"/api/v1/projects/{project}/style-guide",
        json={"art_style": "ink and watercolour", "aspect_ratio": "2:3", "negative_prompt": "blur"},
    )
    guide.raise_for_status()
    cast = [
        await post(
            f"/api/v1/projects/{project}/characters",
            {"name": name, "appearance": traits},
        )
        for name, traits in (("Mara", ["red scarf"]), ("Jonah", ["oilskin coat"]))
    ]
    place = await post(f"/api/v1/projects/{project}/locations", {"name": "Harbour"})
    chapter = await post(f"/api/v1/projects/{project}/chapters", {"title": "One"})
    scene = await post(f"/api/v1/chapters/{chapter}/scenes", {"title": "The long night"})
    for n in range(panels):
        await post(
            f"/api/v1/scenes/{scene}/panels",
            {
                "description": f"Beat {n}: the storm over the harbour",
                "shot": "wide" if n % 2 else "close_up",
                "character_ids": [cast[n % 2]],
                "location_id": place,
            },
        )
    return {"project": project, "scene": scene}


async def probe_latency(
    client: httpx.AsyncClient, path: str, stop: asyncio.Event, samples: list[float]
) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        response = await client.get(path)
        response.raise_for_status()
        samples.append((time.perf_counter() - started) * 1000)


async def latency_for(client: httpx.AsyncClient, path: str, seconds: float) -> list[float]:
    stop, samples = asyncio.Event(), []
    loops = [
        asyncio.create_task(probe_latency(client, path, stop, samples)) for _ in range(CLIENTS)
    ]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*loops)
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "requests": len(samples),
        "p50_ms": round(percentile(samples, 0.5), 1),
        "p99_ms": round(percentile(samples, 0.99), 1),
    }


async def one_run(base_url: str, headers: dict[str, str], panels: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:
        built = await build(client, panels)
        path = f"/api/v1/scenes/{built['scene']}/panels?limit=50"
        idle = await latency_for(client, path, 5.0)

        stop, samples = asyncio.Event(), []
        loops = [
            asyncio.create_task(probe_latency(client, path, stop, samples)) for _ in range(CLIENTS)
        ]
        started = time.perf_counter()
        response = await client.post(
            "/api/v1/generate/panel-sequence", json={"scene_id": built["scene"], "seed": 1}
        )
        response.raise_for_status()
        group_id = response.json()["id"]
        while True:
            group = (await client.get(f"/api/v1/jobs/{group_id}")).json()
            if group["status"] not in ("queued", "running"):
                break
            await asyncio.sleep(0.1)
        wall = time.perf_counter() - started
        stop.set()
        await asyncio.gather(*loops)
        drafts = (
            await client.get("/api/v1/drafts/pending", params={"project_id": built["project"]})
        ).json()
    busy, quiet = summary(samples), summary(idle)
    return {
        "group_status": group["status"],
        "children": group["result"],
        "drafts_pending": drafts["total"],
        "wall_seconds": round(wall, 2),
        "jobs_per_second": round(panels / wall, 2),
        "GET panels idle": quiet,
        "GET panels during": busy,
        "p99 ratio (during / idle)": round(busy["p99_ms"] / quiet["p99_ms"], 2),
    }


def start_workers(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [
                str(VENV_BIN / "creativeflow"),
                "worker",
                "--concurrency",
                "2",
                "--loglevel",
                "WARNING",
            ],
            env={**os.environ, **env},
            cwd=REPO_DIR,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def run(args: argparse.Namespace, database_url: str, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"backend": args.backend, "panels": args.panels}
    common = {"STORY_IMAGE_LONG_SIDE": str(args.long_side)}
    server = platform_server(database_url, workdir / "inprocess", free_port(), common)
    server.start()
    try:
        results["in process"] = await one_run(server.url, register(server.url), args.panels)
    finally:
        server.stop()

    from kombu import Connection

    with Connection(REDIS) as connection:
        connection.default_channel.queue_delete("creativeflow.jobs")
    celery = {**common, "CELERY_BROKER_URL": REDIS}
    server = platform_server(database_url, workdir / "celery", free_port(), celery)
    server.start()
    worker_env = {**server.env, "DATA_DIR": str(workdir / "celery")}
    workers = start_workers(worker_env, workdir / "workers.log")
    try:
        results["celery, 2 worker processes"] = await one_run(
            server.url, register(server.url), args.panels
        )
    finally:
        os.killpg(workers.pid, 15)
        workers.wait(timeout=30)
        server.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--panels", type=int, default=50)
    parser.add_argument("--long-side", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sequence-") as directory:
        workdir = Path(directory)
        if args.backend == "postgresql":
            database_url = create_postgres_database(PG_SERVER)
        else:
            database_url = f"sqlite+aiosqlite:///{workdir / 'sequence.db'}"
        try:
            results = asyncio.run(run(args, database_url, workdir))
        finally:
            if args.backend == "postgresql":
                drop_postgres_database(PG_SERVER, database_url)
    print(json.dumps(results, indent=2))
    runs = [value for key, value in results.items() if isinstance(value, dict)]
    ok = all(r["group_status"] == "succeeded" and r["drafts_pending"] == args.panels for r in runs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
