"""The application's own cost per request, in-process: no network, no uvicorn, no load generator.

For iterating on the code between full `bench/run.py` runs. The app is driven through raw ASGI
calls one request at a time, so each figure is the CPU (and, for SQLite, thread hop) cost of one
request through middleware, routing, auth, database and serialisation. The data persists between
runs under `--data-dir` (SQLite) or in the database `creativeflow_inprocess` (PostgreSQL).

    .venv/bin/python bench/inprocess.py --backend sqlite [--profile list]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import re
import secrets
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import seeding

PASSWORD = "Bench-Password-2026!"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DATABASE = "creativeflow_inprocess"


def _settings(backend: str, data_dir: Path) -> Any:
    from creativeflow.settings import Settings

    database_url = (
        f"sqlite+aiosqlite:///{data_dir / 'inprocess.db'}"
        if backend == "sqlite"
        else f"postgresql+asyncpg://postgres@127.0.0.1:5432/{PG_DATABASE}"
    )
    key_file = data_dir / "secret"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(48))
    return Settings(
        environment="production",
        database_url=database_url,
        data_dir=data_dir,
        secret_key=key_file.read_text(),
        allowed_origins=["https://app.example.com"],
        log_level="INFO",
        # On, as deployed, but out of reach of a benchmark's request rate (bench/README.md).
        rate_limit_default="1000000000/hour",
        rate_limit_generation="1000000000/hour",
    )


async def _prepare(backend: str, data_dir: Path, big: int, other: int) -> None:
    """Create the schema, users and ideas once; later runs find them."""
    import asyncpg

    from creativeflow.app import create_app
    from creativeflow.db.migrate import upgrade

    marker = data_dir / f"{backend}.ready"
    if marker.exists():
        return
    if backend == "postgresql":
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE}")
        await admin.execute(f"CREATE DATABASE {PG_DATABASE}")
        await admin.close()
    settings = _settings(backend, data_dir)
    await asyncio.to_thread(upgrade, settings.resolved_database_url())
    app = create_app(settings)
    ids: list[uuid.UUID] = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for i in range(11):
                name = f"inproc-{i:02d}"
                response = await client.post(
                    "/api/v1/auth/register",
                    json={
                        "email": f"{name}@bench.example.com",
                        "username": name,
                        "name": name,
                        "password": PASSWORD,
                    },
                )
                response.raise_for_status()
                ids.append(uuid.UUID(response.json()["id"]))
    plan = [(ids[0], big)] + [(user_id, other) for user_id in ids[1:]]
    rows = seeding.generate_rows(plan)
    stats = seeding.LoadStats()
    totals = dict(plan)
    if backend == "sqlite":
        seeding.load_sqlite(str(data_dir / "inprocess.db"), rows, totals, stats)
    else:
        await seeding._load_postgresql(
            f"postgresql://postgres@127.0.0.1:5432/{PG_DATABASE}", rows, totals, stats
        )
    marker.write_text(str(ids[0]))


class Driver:
    """Raw ASGI requests against one app."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def request(
        self, method: str, path: str, query: str = "", token: str | None = None, body: bytes = b""
    ) -> tuple[int, bytes]:
        headers = [(b"host", b"bench"), (b"user-agent", b"inprocess")]
        if token:
            headers.append((b"authorization", f"Bearer {token}".encode()))
        if body:
            headers.append((b"content-type", b"application/json"))
            headers.append((b"content-length", str(len(body)).encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


async def _measure(args: argparse.Namespace) -> None:
    import logging

    from creativeflow.app import create_app

    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    await _prepare(args.backend, data_dir, args.big, args.other)
    big_id = (data_dir / f"{args.backend}.ready").read_text().strip()
    settings = _settings(args.backend, data_dir)
    app = create_app(settings)
    log_file = open(os.devnull if args.no_log else data_dir / "requests.log", "w")  # noqa: SIM115
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(log_file)
    async with app.router.lifespan_context(app):
        driver = Driver(app)
        body = b'{"login": "inproc-00", "password": "' + PASSWORD.encode() + b'"}'
        status, payload = await driver.request("POST", "/api/v1/auth/login", body=body)
        assert status == 200, payload
        import json

        token = json.loads(payload)["access_token"]
        status, payload = await driver.request(
            "GET", f"/api/v1/{big_id}/ideas", "limit=1", token=token
        )
        idea_id = json.loads(payload)["items"][0]["id"]
        scenarios: dict[str, tuple[str, str, str]] = {
            "live": ("GET", "/api/v1/health/live", ""),
            "me": ("GET", "/api/v1/auth/me", ""),
            "list": ("GET", f"/api/v1/{big_id}/ideas", ""),
            "get": ("GET", f"/api/v1/{big_id}/ideas/{idea_id}", ""),
        }

        # As bench/run.py's `filtered`: a search word with the stage and tags; `filtered`
        # rotates through the benchmark's words, `filtered-<word>` runs one.
        def search(word: str) -> tuple[str, str, str]:
            return "GET", f"/api/v1/{big_id}/ideas", seeding.filtered_query(word)

        rotations: dict[str, list[tuple[str, str, str]]] = {
            name: [request] for name, request in scenarios.items()
        }
        rotations["filtered"] = [search(word) for word in seeding.SEARCH_WORDS]
        selected = args.scenario or [*scenarios, "filtered"]
        for name in selected:
            # `filtered-<word>`: any one word, such as one found nowhere.
            word = name.removeprefix("filtered-")
            requests = rotations[name] if name in rotations else [search(word)]
            for method, path, query in requests:
                status, payload = await driver.request(method, path, query, token=token)
                assert status == 200, (name, status, payload[:300])
            for i in range(args.warmup):
                method, path, query = requests[i % len(requests)]
                await driver.request(method, path, query, token=token)
            # CPU time, not wall time: a coroutine waiting on the database costs nothing.
            profiler = cProfile.Profile(time.process_time) if args.profile == name else None
            rounds: list[tuple[float, float]] = []
            for _ in range(args.repeat):
                cpu0, wall0 = time.process_time(), time.perf_counter()
                if profiler:
                    profiler.enable()
                for i in range(args.n):
                    method, path, query = requests[i % len(requests)]
                    await driver.request(method, path, query, token=token)
                if profiler:
                    profiler.disable()
                rounds.append((time.process_time() - cpu0, time.perf_counter() - wall0))
            # The quietest round: other load on the machine only ever adds time.
            cpu, wall = min(rounds, key=lambda r: r[1])
            print(
                f"{name:10s} wall {wall / args.n * 1e6:8.0f} us/req   "
                f"cpu {cpu / args.n * 1e6:8.0f} us/req   ({len(payload)} bytes)",
                flush=True,
            )
            if profiler:
                stats = pstats.Stats(profiler)
                _print_by_package(stats, args.n)
                stats.sort_stats(args.sort).print_stats(args.top)
    log_file.close()


def _print_by_package(stats: pstats.Stats, n: int) -> None:
    """Self time per package per request: where the CPU goes, without cProfile's confusion
    over coroutine and greenlet frames in cumulative figures."""
    totals: dict[str, float] = {}
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        match = re.search(
            r"site-packages/([^/]+)|src/creativeflow/([^/]+)|python3\.11/([^/]+)", filename
        )
        key = next((g for g in match.groups() if g), "?") if match else filename
        if match and match.group(2):
            key = "creativeflow." + key
        totals[key] = totals.get(key, 0.0) + tottime
    for key, value in sorted(totals.items(), key=lambda kv: -kv[1])[:25]:
        print(f"  {key:40s} {value / n * 1e6:8.1f} us/req")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--data-dir", default="/tmp/creativeflow-inprocess")
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--other", type=int, default=10_000)
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5, help="rounds; the quietest is shown")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--scenario", action="append")
    parser.add_argument("--profile", help="cProfile this scenario")
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--no-log", action="store_true", help="request log to /dev/null")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(_measure(args))
    except ImportError:
        asyncio.run(_measure(args))


if __name__ == "__main__":
    main()
