"""The story studio at size (issue 13): not part of the tests.

A project of 20 chapters x 10 scenes x 8 panels (and a scene of 50 panels) is built through
the API of a real `creativeflow serve` (one worker, production settings, rate limits off).
Then, for each read and write the issue names (the project's stats, its chapter list, a
chapter's scenes, reordering the 50-panel scene):

- SQL statements per request, counted in process (the same app on the same database, a
  cursor-execute listener on its engine), on that project and on a 1 x 1 x 1 one: the counts
  must be equal (a fixed number, whatever the size);
- p50/p95 latency under wrk at 16 connections against the server, beside the bare Starlette
  app's `GET /` at the same concurrency (the baseline of the same run). Target: p95 under
  200 ms;
- the PDF export of the large project (every other panel showing one of 8 photographs, the
  others placeholder frames): its time as a job and the server's peak memory above idle,
  beside the JSON bundle of the same project.

    .venv/bin/python bench/stories.py                       # SQLite
    .venv/bin/python bench/stories.py --backend postgresql
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import free_port, run_wrk, write_requests_file
from bench.uploads import PASSWORD, PG_SERVER, baseline_server, platform_server, register
from tests.databases import create_postgres_database, drop_postgres_database

CHAPTERS, SCENES, PANELS, LONG_SCENE = 20, 10, 8, 50
IMAGES = 8  # photographs, each shown on every eighth panel of the large project


def photo(seed: int) -> bytes:
    """A 1024 x 768 JPEG with the detail of a photograph (noise over a gradient), ~300 KB."""
    noise = Image.effect_noise((1024, 768), 60).convert("RGB")
    gradient = Image.linear_gradient("L").resize((1024, 768)).convert("RGB")
    tint = Image.new("RGB", (1024, 768), ((seed * 70) % 256, (seed * 130) % 256, 160))
    picture = Image.blend(Image.blend(noise, gradient, 0.5), tint, 0.4)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


async def build(
    client: httpx.AsyncClient, shape: tuple[int, int, int], *, images: int = 0
) -> dict[str, Any]:
    """A project of chapters x scenes x panels, and one more scene of LONG_SCENE panels; with
    `images`, that many photographs are uploaded and every other panel shows one."""
    chapters, scenes, panels = shape

    async def post(url: str, payload: dict[str, Any]) -> str:
        response = await client.post(url, json=payload)
        if response.status_code != 201:
            raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
        identifier: str = response.json()["id"]
        return identifier

    project = await post("/api/v1/projects", {"title": f"Bench {chapters}x{scenes}x{panels}"})
    chapter_ids = [
        await post(f"/api/v1/projects/{project}/chapters", {"title": f"Chapter {n}"})
        for n in range(chapters)
    ]
    image_ids = []
    for n in range(images):
        uploaded = await client.post(
            "/api/v1/images/upload",
            files={"file": (f"photo-{n}.jpg", photo(n), "image/jpeg")},
            data={"subject_type": "project", "subject_id": project},
        )
        uploaded.raise_for_status()
        image_ids.append(uploaded.json()["id"])

    async def fill_chapter(chapter: str) -> None:
        for n in range(scenes):
            scene = await post(f"/api/v1/chapters/{chapter}/scenes", {"title": f"Scene {n}"})
            for m in range(panels):
                made = await post(
                    f"/api/v1/scenes/{scene}/panels",
                    {
                        "description": f"Panel {m} of scene {n}",
                        "shot": "medium",
                        "dialogue": [{"text": "A line of dialogue in four words."}],
                    },
                )
                if image_ids and m % 2 == 0:
                    selected = await client.patch(
                        f"/api/v1/panels/{made}",
                        json={"selected_image_id": image_ids[(n * panels + m) % len(image_ids)]},
                    )
                    selected.raise_for_status()

    await asyncio.gather(*(fill_chapter(chapter) for chapter in chapter_ids))
    long_scene = await post(f"/api/v1/chapters/{chapter_ids[0]}/scenes", {"title": "Long"})
    long_panels = [
        await post(f"/api/v1/scenes/{long_scene}/panels", {"description": f"Beat {n}"})
        for n in range(LONG_SCENE)
    ]
    return {
        "project": project,
        "chapter": chapter_ids[0],
        "long_scene": long_scene,
        "long_panels": long_panels,
    }


def scenarios(built: dict[str, Any]) -> dict[str, tuple[str, str, Any]]:
    order = list(reversed(built["long_panels"]))
    return {
        # The floor: authentication and the pipeline, no story query.
        "GET /auth/me": ("GET", "/api/v1/auth/me", None),
        "stats": ("GET", f"/api/v1/projects/{built['project']}/stats", None),
        "chapter list": ("GET", f"/api/v1/projects/{built['project']}/chapters", None),
        "a chapter's scenes": ("GET", f"/api/v1/chapters/{built['chapter']}/scenes", None),
        "reorder 50 panels": (
            "POST",
            f"/api/v1/scenes/{built['long_scene']}/reorder-panels",
            {"panel_ids": order},
        ),
    }


async def count_statements(
    database_url: str, workdir: Path, username: str, built: dict[str, dict[str, Any]]
) -> dict[str, dict[str, int | None]]:
    """Statements each scenario issues, in process, on the big project and the small one."""
    from tests.conftest import _settings

    from creativeflow.app import create_app
    from creativeflow.platform import build_platform

    platform = build_platform(_settings(database_url, workdir / "inprocess"))
    statements = 0

    def counted(*_args: Any) -> None:
        nonlocal statements
        statements += 1

    event.listen(platform.engine.sync_engine, "before_cursor_execute", counted)
    app = create_app(platform.settings, platform=platform)
    counts: dict[str, dict[str, int | None]] = {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bench"
    ) as client:
        # Signed in here (this process has its own signing key), as the same user.
        login = await client.post(
            "/api/v1/auth/login", json={"login": username, "password": PASSWORD}
        )
        client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        for size, project in built.items():
            for name, (method, path, body) in scenarios(project).items():
                await client.request(method, path, json=body)  # warm: compiled statements
                statements = 0
                response = await client.request(method, path, json=body)
                found = response.status_code < 400
                counts.setdefault(name, {})[size] = statements if found else None
    await platform.close()
    return counts


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def pdf_export(client: httpx.AsyncClient, server_pid: int, project: str) -> dict[str, Any]:
    """The project's PDF made by a `stories.export` job on the server: submit to succeeded,
    and the server's resident memory above what it held just before (sampled every 20 ms);
    beside the JSON bundle of the same project (the same reads, no drawing), best of three."""
    url = f"/api/v1/projects/{project}/export"
    bundle_seconds = []
    for _ in range(3):
        started = time.perf_counter()
        (await client.get(url, params={"format": "json"})).raise_for_status()
        bundle_seconds.append(time.perf_counter() - started)
    idle = peak = rss_kb(server_pid)
    sampling = True

    async def sample() -> None:
        nonlocal peak
        while sampling:
            peak = max(peak, rss_kb(server_pid))
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    queued = await client.get(url, params={"format": "pdf", "background": "true"})
    queued.raise_for_status()
    job_id = queued.json()["job"]["id"]
    while True:
        job = (await client.get(f"/api/v1/jobs/{job_id}")).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            break
        await asyncio.sleep(0.1)
    seconds = time.perf_counter() - started
    sampling = False
    await sampler
    if job["status"] != "succeeded":
        raise RuntimeError(f"the export {job['status']}: {job['error']}")
    downloaded = await client.get(queued.json()["download_url"])
    downloaded.raise_for_status()
    return {
        "seconds": round(seconds, 2),
        "json_bundle_seconds": round(min(bundle_seconds), 3),
        "ratio_to_json_bundle": round(seconds / min(bundle_seconds), 1),
        "pages": job["result"]["pages"],
        "file_mb": round(len(downloaded.content) / 1e6, 2),
        "server_rss_idle_mb": round(idle / 1024, 1),
        "peak_rss_above_idle_mb": round((peak - idle) / 1024, 1),
        "warnings": len(job["result"]["warnings"]),
    }


def latency(
    base_url: str,
    workdir: Path,
    name: str,
    request: tuple[str, str, Any],
    token: str | None,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """wrk at `args.connections` for `args.seconds`: requests a second and latency percentiles."""
    method, path, body = request
    lines = write_requests_file(
        workdir / f"{name.replace(' ', '_').replace('/', '_')}.tsv",
        [(method, path, json.dumps(body) if body is not None else None)],
    )
    result = run_wrk(
        base_url,
        lines,
        connections=args.connections,
        duration=args.seconds,
        threads=2,
        token=token,
        timeout="5s",
    )
    if result.non_2xx and result.non_2xx >= result.requests:
        return {"skipped": "the route answers an error (not built yet?)"}
    return {
        "rps": round(result.rps, 1),
        "p50_ms": result.latency_ms["p50"],
        "p95_ms": result.latency_ms["p95"],
        "p99_ms": result.latency_ms["p99"],
        "non_2xx": result.non_2xx,
        "socket_errors": result.socket_errors,
    }


async def run(args: argparse.Namespace, database_url: str, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"backend": args.backend, "connections": args.connections}
    baseline = baseline_server(workdir, free_port())
    baseline.start()
    try:
        results["baseline GET /"] = latency(
            baseline.url, workdir, "baseline", ("GET", "/", None), None, args
        )
    finally:
        baseline.stop()
    server = platform_server(database_url, workdir / "server", free_port())
    server.start()
    try:
        headers = register(server.url)
        username = httpx.get(f"{server.url}/api/v1/auth/me", headers=headers).json()["username"]
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=120) as client:
            started = time.perf_counter()
            built = {
                "20x10x8": await build(client, (CHAPTERS, SCENES, PANELS), images=IMAGES),
                "1x1x1": await build(client, (1, 1, 1)),
            }
            results["build_seconds"] = round(time.perf_counter() - started, 1)
        results["statements"] = await count_statements(database_url, workdir, username, built)
        token = headers["Authorization"].removeprefix("Bearer ")
        for name, request in scenarios(built["20x10x8"]).items():
            results[name] = latency(server.url, workdir, name, request, token, args)
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=120) as client:
            results["pdf export"] = await pdf_export(
                client, server.pid, built["20x10x8"]["project"]
            )
    finally:
        server.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-stories-") as directory:
        workdir = Path(directory)
        if args.backend == "postgresql":
            database_url = create_postgres_database(PG_SERVER)
        else:
            database_url = f"sqlite+aiosqlite:///{workdir / 'stories.db'}"
        try:
            results = asyncio.run(run(args, database_url, workdir))
        finally:
            if args.backend == "postgresql":
                drop_postgres_database(PG_SERVER, database_url)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
