"""Image uploads under load (issue 11): not part of the tests.

A real `creativeflow serve` process (one worker, production settings, rate limits off) takes
100 JPEG uploads of 2-8 MB at 8 connections through `POST /api/v1/images/upload`. Reported:
upload p50/p99 and the server's peak memory above its warmed-up size, beside a baseline
measured in the same run: the bare Starlette app (bench/baseline_app.py) receiving the same
bodies at the same concurrency and only hashing them (`POST /drain`), so the ratio is the
platform's own cost (streaming to disk, decoding, cleaning, re-encoding, thumbnails later).

The target behind the memory figure: an upload is never held whole in memory more than once.
Decoding a picture takes its pixels (width x height x 3 bytes) whatever the file size, so
the figure is shown beside the largest file and the largest decoded picture.

    .venv/bin/python bench/uploads.py                  # SQLite, 100 uploads
    .venv/bin/python bench/uploads.py --backend postgresql --count 40
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import REPO_DIR, VENV_BIN, Server, free_port
from tests.databases import create_postgres_database, drop_postgres_database

PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
PASSWORD = "bench-password-Long-enough-1"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def make_pictures(count: int, seed: int = 7) -> list[bytes]:
    """JPEGs of 2-8 MB: noisy pictures compress badly, so the size follows the pixel count."""
    rng = random.Random(seed)
    pictures = []
    cache: dict[tuple[int, int], bytes] = {}
    for _ in range(count):
        target = rng.uniform(2, 8) * 1024 * 1024
        side = int((target / 0.75) ** 0.5)  # ~0.75 bytes a pixel at quality 92 for this noise
        key = (side // 64 * 64, side // 64 * 64)
        if key not in cache:
            noise = Image.effect_noise(key, 90).convert("RGB")
            tint = Image.new("RGB", key, (rng.randrange(256), 120, rng.randrange(256)))
            picture = Image.blend(noise, tint, 0.35)
            out = io.BytesIO()
            picture.save(out, format="JPEG", quality=92)
            cache[key] = out.getvalue()
        # Same pixels, different bytes: each upload is its own object (no de-duplication).
        pictures.append(cache[key] + secrets.token_bytes(16))
    return pictures


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def reset_peak(pid: int) -> bool:
    """Linux resets VmHWM to the current RSS when 5 is written to clear_refs."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class PeakSampler:
    """Peak RSS of a process: VmHWM after a reset, or sampling VmRSS where that is refused."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.hwm = reset_peak(pid)
        self.sampled = rss_kib(pid, "VmRSS")
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.sampled = max(self.sampled, rss_kib(self.pid, "VmRSS"))
            await asyncio.sleep(0.005)

    def __enter__(self) -> PeakSampler:
        self._task = asyncio.get_running_loop().create_task(self._sample())
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._task is not None
        self._task.cancel()

    def peak_kib(self) -> int:
        return max(self.sampled, rss_kib(self.pid, "VmHWM") if self.hwm else 0)


async def drive(
    client: httpx.AsyncClient,
    url: str,
    pictures: list[bytes],
    connections: int,
    headers: dict[str, str],
    multipart: bool,
) -> list[float]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for picture in pictures:
        queue.put_nowait(picture)
    latencies: list[float] = []

    async def one_connection() -> None:
        while not queue.empty():
            picture = queue.get_nowait()
            started = time.perf_counter()
            if multipart:
                files = {"file": ("photo.jpg", picture, "image/jpeg")}
                response = await client.post(url, files=files, headers=headers)
            else:
                response = await client.post(url, content=picture, headers=headers)
            if response.status_code not in (200, 201):
                raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
            latencies.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(one_connection() for _ in range(connections)))
    return latencies


async def measure(
    server: Server,
    path: str,
    pictures: list[bytes],
    connections: int,
    headers: dict[str, str],
    multipart: bool,
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as client:
        await drive(client, path, pictures[:2], 1, headers, multipart)  # warm: imports, pools
        before = rss_kib(server.pid, "VmRSS")
        with PeakSampler(server.pid) as sampler:
            started = time.perf_counter()
            latencies = await drive(client, path, pictures, connections, headers, multipart)
            seconds = time.perf_counter() - started
        peak = sampler.peak_kib()
    return {
        "uploads": len(latencies),
        "p50_ms": round(percentile(latencies, 0.5), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "mb_per_s": round(sum(len(p) for p in pictures) / seconds / 1e6, 1),
        "rss_before_mib": round(before / 1024, 1),
        "peak_rss_mib": round(peak / 1024, 1),
        "peak_growth_mib": round((peak - before) / 1024, 1),
    }


def register(base_url: str) -> dict[str, str]:
    tag = secrets.token_hex(5)
    with httpx.Client(base_url=base_url, timeout=30) as client:
        response = client.post(
            "/api/v1/auth/register",
            json={
                "email": f"bench-{tag}@example.com",
                "username": f"bench_{tag}",
                "name": "Bench",
                "password": PASSWORD,
            },
        )
        response.raise_for_status()
        tokens = client.post(
            "/api/v1/auth/login", json={"login": f"bench_{tag}", "password": PASSWORD}
        ).json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def platform_server(
    database_url: str, data_dir: Path, port: int, extra_env: dict[str, str] | None = None
) -> Server:
    env = {
        "ENVIRONMENT": "production",
        "DATABASE_URL": database_url,
        "DATA_DIR": str(data_dir),
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ALLOWED_ORIGINS": "https://app.example.com",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_ENABLED": "false",  # one user sends every request
        "PYTHONUNBUFFERED": "1",
        "PATH": str(VENV_BIN) + ":/usr/bin:/bin",
        **(extra_env or {}),
    }
    argv = [str(VENV_BIN / "creativeflow"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    return Server(
        "creativeflow",
        argv,
        env,
        REPO_DIR,
        data_dir / "server.log",
        port,
        None,
        health_path="/api/v1/health/live",
    )


def baseline_server(data_dir: Path, port: int) -> Server:
    argv = [
        str(VENV_BIN / "python"),
        "-m",
        "uvicorn",
        "baseline_app:app",
        "--app-dir",
        "bench",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return Server(
        "baseline",
        argv,
        {"PATH": str(VENV_BIN) + ":/usr/bin:/bin"},
        REPO_DIR,
        data_dir / "baseline.log",
        port,
        None,
        health_path="/",
    )


async def run(args: argparse.Namespace, database_url: str, workdir: Path) -> dict[str, Any]:
    print(f"making {args.count} pictures ...", flush=True)
    pictures = make_pictures(args.count)
    sizes = [len(p) for p in pictures]
    with Image.open(io.BytesIO(max(pictures, key=len))) as largest:
        decoded_mib = largest.width * largest.height * 3 / 2**20
    results: dict[str, Any] = {
        "files": len(pictures),
        "file_mb_min": round(min(sizes) / 1e6, 2),
        "file_mb_max": round(max(sizes) / 1e6, 2),
        "largest_decoded_mib": round(decoded_mib, 1),
        "connections": args.connections,
    }
    print(results, flush=True)
    baseline = baseline_server(workdir, free_port())
    baseline.start()
    try:
        results["baseline"] = await measure(
            baseline, "/drain", pictures, args.connections, {}, multipart=False
        )
    finally:
        baseline.stop()
    print({"baseline": results["baseline"]}, flush=True)
    server = platform_server(database_url, workdir / "data", free_port())
    server.start()
    try:
        headers = register(server.url)
        results["upload"] = await measure(
            server, "/api/v1/images/upload", pictures, args.connections, headers, multipart=True
        )
    finally:
        server.stop()
    upload, base = results["upload"], results["baseline"]
    results["p99_ratio_to_baseline"] = round(upload["p99_ms"] / base["p99_ms"], 1)
    print({"upload": upload, "p99_ratio_to_baseline": results["p99_ratio_to_baseline"]})
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="creativeflow-bench-uploads-"))
    (workdir / "data").mkdir()
    database_url = (
        create_postgres_database(PG_SERVER)
        if args.backend == "postgresql"
        else f"sqlite+aiosqlite:///{workdir / 'data' / 'bench.db'}"
    )
    print(f"backend: {args.backend}; work dir {workdir}", flush=True)
    try:
        asyncio.run(run(args, database_url, workdir))
    finally:
        if args.backend == "postgresql":
            drop_postgres_database(PG_SERVER, database_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
