"""CreativeFlow load benchmark: one real server, one worker, wrk over loopback.

    .venv/bin/python bench/run.py [--backend sqlite|postgresql|both] [--quick]

For each backend: a fresh database (SQLite file in a temp DATA_DIR, or a new PostgreSQL database
`creativeflow_bench_<random>` that is dropped at the end), `creativeflow db upgrade`, 11 users
registered through the API, 200,000 ideas bulk-loaded straight into the tables, then
`creativeflow serve --workers 1 --no-migrate` pinned to one core while wrk (pinned to the other)
drives each scenario. A bare Starlette app (bench/baseline_app.py) runs alongside; every
platform number is also shown as a ratio of its requests/s measured in the same run.

Results go to bench/results/ (JSON + Markdown); see bench/README.md for how to read them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform as py_platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import diagnose
import harness
import seeding
from harness import HOST, REPO_DIR, VENV_BIN, Server, WrkResult

RESULTS_DIR = harness.BENCH_DIR / "results"
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
PASSWORD = "Bench-Password-2026!"
API = "/api/v1"
SWEEP = (8, 32, 64, 128, 256)
HEALTH_TIMEOUT = 5.0

# Targets (one worker, 32 connections, the big user).
LIST_MIN_RATIO = 0.10
LIST_MAX_P99_MS = 50.0
FILTERED_MAX_P99_MS = 100.0
DEEP_CURSOR_MIN_RATIO = 0.50


@dataclass(frozen=True)
class Sizes:
    big: int
    other: int
    n_other: int
    duration: float
    warmup: float
    sweep_duration: float
    deep: int
    connections: int = 32
    threads: int = 2

    @property
    def rows(self) -> int:
        return self.big + self.other * self.n_other


FULL = Sizes(
    big=100_000, other=10_000, n_other=10, duration=10, warmup=2, sweep_duration=5, deep=90_000
)
QUICK = Sizes(
    big=10_000, other=1_000, n_other=10, duration=3, warmup=1, sweep_duration=2, deep=9_000
)


@dataclass
class BenchUser:
    username: str
    id: str
    token: str = ""


@dataclass
class Context:
    backend: str
    sizes: Sizes
    work: Path
    stamp: str
    server_cpus: str | None
    wrk_cpus: str | None
    server: Server
    baseline: Server
    big: BenchUser
    others: list[BenchUser]
    idea_ids: list[str] = field(default_factory=list)
    create_bodies: list[str] = field(default_factory=list)
    cursors: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    quiet_wait: float = 60.0  # at most this long before each run for the machine to go idle
    pg_name: str | None = None

    @property
    def ideas_path(self) -> str:
        return f"{API}/{self.big.id}/ideas"


# -- small helpers -----------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def settings_names() -> set[str]:
    from creativeflow.settings import Settings

    return {name.upper() for name in Settings.model_fields}


def server_env(database_url: str, data_dir: Path) -> dict[str, str]:
    """The environment of a production deployment, minus anything the caller's shell sets."""
    names = settings_names() | {"ENVIRONMENT"}
    env = {k: v for k, v in os.environ.items() if k.upper() not in names}
    env.update(
        ENVIRONMENT="production",
        DATABASE_URL=database_url,
        DATA_DIR=str(data_dir),
        SECRET_KEY=secrets.token_urlsafe(48),
        ALLOWED_ORIGINS="https://app.example.com",
        LOG_LEVEL="INFO",  # the per-request JSON log line is part of the product: keep it
        # Rate limits stay on (their cost per request is part of what is measured) but out of
        # reach: the scenarios are thousands of requests a second from a few users.
        RATE_LIMIT_DEFAULT="1000000000/hour",
        RATE_LIMIT_GENERATION="1000000000/hour",
        PYTHONUNBUFFERED="1",
    )
    return env


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def postgres_backends(database: str) -> set[int]:
    """Pids of the PostgreSQL backends connected to `database` (the server's pool)."""

    async def query() -> set[int]:
        import asyncpg

        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", database)
            return {int(r["pid"]) for r in rows}
        finally:
            await conn.close()

    return asyncio.run(query())


PG_STAT_COLUMNS = (
    "xact_commit",
    "xact_rollback",
    "tup_returned",
    "tup_fetched",
    "blks_hit",
    "blks_read",
    "temp_bytes",
)


def postgres_database_stats(database: str) -> dict[str, int]:
    """Cumulative counters of `database` (pg_stat_database; backends flush them about once a
    second, so a delta over a 10 s run is right to within a few percent)."""

    async def query() -> dict[str, int]:
        import asyncpg

        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            row = await conn.fetchrow(
                f"SELECT {', '.join(PG_STAT_COLUMNS)} FROM pg_stat_database WHERE datname = $1",
                database,
            )
            return {k: int(row[k] or 0) for k in PG_STAT_COLUMNS} if row else {}
        finally:
            await conn.close()

    return asyncio.run(query())


def git_info() -> dict[str, Any]:
    def git(*args: str) -> str:
        proc = subprocess.run(
            ["git", *args], cwd=REPO_DIR, capture_output=True, text=True, check=False
        )
        return proc.stdout.strip()

    dirty = [line for line in git("status", "--porcelain", "--", "src").splitlines() if line]
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted_src_files": len(dirty)}


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return py_platform.processor() or "unknown"


# -- setup: users, data, server ----------------------------------------------------------------


def register_users(base_url: str, n_other: int, tag: str) -> tuple[BenchUser, list[BenchUser]]:
    names = [f"bench-big-{tag}"] + [f"bench-{tag}-{i:02d}" for i in range(1, n_other + 1)]
    users: list[BenchUser] = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for name in names:
            response = client.post(
                f"{API}/auth/register",
                json={
                    "email": f"{name}@bench.example.com",
                    "username": name,
                    "name": name.replace("-", " ").title(),
                    "password": PASSWORD,
                },
            )
            if response.status_code != 201:
                raise RuntimeError(f"register {name}: {response.status_code} {response.text}")
            users.append(BenchUser(username=name, id=response.json()["id"]))
    return users[0], users[1:]


def login(client: httpx.Client, user: BenchUser) -> str:
    response = client.post(f"{API}/auth/login", json={"login": user.username, "password": PASSWORD})
    if response.status_code != 200:
        raise RuntimeError(f"login {user.username}: {response.status_code} {response.text}")
    return str(response.json()["access_token"])


def load_data(
    backend: str, sizes: Sizes, big: BenchUser, others: list[BenchUser], database: str
) -> tuple[seeding.LoadStats, list[dict[str, Any]]]:
    stats = seeding.LoadStats()
    plan = [(uuid.UUID(big.id), sizes.big)] + [(uuid.UUID(u.id), sizes.other) for u in others]
    started = time.perf_counter()
    rows = seeding.generate_rows(plan)
    stats.generate_seconds = time.perf_counter() - started
    seeding.describe(rows, uuid.UUID(big.id), stats)
    totals = dict(plan)
    if backend == "sqlite":
        seeding.load_sqlite(database, rows, totals, stats)
    else:
        seeding.load_postgresql(database, rows, totals, stats)
    return stats, rows


def walk_cursor(ctx: Context) -> dict[str, Any]:
    """Page through the big user's list with limit=100 following `next_cursor` until ~`deep`
    rows in; keep the cursors of the last ten pages for the deep-cursor scenario, and check
    the walk returned every row once, newest first."""
    deep = ctx.sizes.deep
    seen: set[str] = set()
    duplicates = 0
    order_ok = True
    previous: str | None = None
    rows = pages = 0
    cursor: str | None = None
    started = time.perf_counter()
    with httpx.Client(
        base_url=ctx.server.url, timeout=30, headers={"Authorization": f"Bearer {ctx.big.token}"}
    ) as client:
        while rows < deep:
            params: dict[str, Any] = {"limit": 100}
            if cursor:
                params["cursor"] = cursor
            response = client.get(ctx.ideas_path, params=params)
            if response.status_code != 200:
                return {
                    "ok": False,
                    "reason": f"page {pages + 1}: HTTP {response.status_code} "
                    f"{_problem_text(response)}",
                    "rows": rows,
                }
            body = response.json()
            items = body.get("items", [])
            pages += 1
            for item in items:
                if item["id"] in seen:
                    duplicates += 1
                seen.add(item["id"])
                created = item.get("created_at")
                if previous is not None and created is not None and created > previous:
                    order_ok = False
                previous = created or previous
            rows += len(items)
            cursor = body.get("next_cursor")
            if not cursor or not items:
                break
            if rows > deep - 1000:
                ctx.cursors.append(cursor)
    seconds = time.perf_counter() - started
    result = {
        "ok": bool(ctx.cursors) and duplicates == 0 and order_ok,
        "rows": rows,
        "pages": pages,
        "seconds": round(seconds, 2),
        "ms_per_page_of_100": round(1000 * seconds / pages, 2) if pages else None,
        "duplicates": duplicates,
        "newest_first": order_ok,
        "deep_cursors": len(ctx.cursors),
        "cursor_example": ctx.cursors[-1] if ctx.cursors else None,
    }
    if not ctx.cursors:
        result["reason"] = (
            "the list answered no next_cursor" if rows < deep else "no cursor collected"
        )
    elif duplicates or not order_ok:
        result["reason"] = f"walk returned {duplicates} duplicates, newest_first={order_ok}"
    return result


# -- scenarios ---------------------------------------------------------------------------------

Request = tuple[str, str, str | None]


@dataclass
class Scenario:
    name: str
    title: str
    requests: Sequence[Request]
    token: str | None
    base_url: str
    expect_status: int = 200
    check: Any = None  # callable(response) -> str | None (problem)
    note: str = ""
    timeout: str = "2s"  # wrk counts a slower response as a timeout (socket error)


def scenarios(ctx: Context) -> list[Scenario]:
    big = ctx.big
    path = ctx.ideas_path
    tags = ",".join(seeding.FILTER_TAGS)

    def searches(words: Sequence[str]) -> list[Request]:
        return [("GET", f"{path}?{seeding.filtered_query(w)}", None) for w in words]

    logins = [
        (
            "POST",
            f"{API}/auth/login",
            json.dumps({"login": u.username, "password": PASSWORD}, separators=(",", ":")),
        )
        for u in ctx.others
    ]
    deep = ctx.sizes.deep

    def check_first_page(response: httpx.Response) -> str | None:
        body = response.json()
        if len(body.get("items", [])) != 20:
            return f"expected 20 items, got {len(body.get('items', []))}"
        if body.get("total") != ctx.notes["big_total"]:
            return f"total {body.get('total')} != {ctx.notes['big_total']}"
        if body.get("has_more") is not True:
            return "has_more should be true"
        return None

    def check_items(response: httpx.Response) -> str | None:
        items = response.json().get("items")
        return None if items else "no items returned"

    def check_filtered(response: httpx.Response) -> str | None:
        body = response.json()
        word = response.request.url.params.get("search")
        expected = ctx.notes["search_matches"].get(word, {}).get("with_stage_and_tags")
        ctx.notes.setdefault("filtered_totals", {})[word] = {
            "api_total": body.get("total"),
            "expected_substring_matches": expected,
        }
        return None

    def check_login(response: httpx.Response) -> str | None:
        return None if response.json().get("access_token") else "no access_token"

    return [
        Scenario(
            "baseline", "baseline (bare Starlette)", [("GET", "/", None)], None, ctx.baseline.url
        ),
        # Two floors that locate the list's cost: the HTTP stack alone (middleware, request
        # log, FastAPI, no database) and an authenticated request that reads the user.
        Scenario(
            "floor_live",
            "floor: GET /api/v1/health/live (no auth, no DB)",
            [("GET", f"{API}/health/live", None)],
            None,
            ctx.server.url,
            note="platform HTTP stack without auth or database",
        ),
        Scenario(
            "floor_me",
            "floor: GET /api/v1/auth/me (auth + user)",
            [("GET", f"{API}/auth/me", None)],
            big.token,
            ctx.server.url,
            note="authentication and one user read, no ideas",
        ),
        Scenario(
            "list",
            "list: default page of 20 + total",
            [("GET", path, None)],
            big.token,
            ctx.server.url,
            check=check_first_page,
        ),
        Scenario(
            "filtered",
            "filtered: search + stage + tags",
            searches(seeding.SEARCH_WORDS),
            big.token,
            ctx.server.url,
            check=check_filtered,
            note=f"search rotates {', '.join(seeding.SEARCH_WORDS)}; "
            f"stage={seeding.FILTER_STAGE.value}, tags={tags}",
        ),
        # Not a target of the issue: how the search holds up for terms the walk cannot find
        # in a page's worth of ideas.
        Scenario(
            "filtered_rare",
            "filtered, rare terms: search + stage + tags",
            searches(seeding.RARE_SEARCH_WORDS),
            big.token,
            ctx.server.url,
            check=check_filtered,
            note=f"search rotates {', '.join(seeding.RARE_SEARCH_WORDS)}",
        ),
        Scenario(
            "get",
            "get one idea",
            [("GET", f"{path}/{i}", None) for i in ctx.idea_ids],
            big.token,
            ctx.server.url,
            note=f"rotates {len(ctx.idea_ids)} ids",
        ),
        Scenario(
            "deep_offset",
            f"deep page: offset={deep}",
            [("GET", f"{path}?offset={deep}", None)],
            big.token,
            ctx.server.url,
            check=check_items,
        ),
        Scenario(
            "deep_cursor",
            f"deep page: cursor ~{deep} rows in",
            [("GET", f"{path}?cursor={quote(c, safe='')}", None) for c in ctx.cursors],
            big.token,
            ctx.server.url,
            check=check_items,
            note=f"rotates {len(ctx.cursors)} cursors",
        ),
        Scenario(
            "create",
            "create an idea (POST)",
            [("POST", path, body) for body in ctx.create_bodies],
            big.token,
            ctx.server.url,
            expect_status=201,
        ),
        # Last: argon2id work queued by this scenario must not leak into another one.
        Scenario(
            "login",
            "login (argon2id verify)",
            logins,
            None,
            ctx.server.url,
            check=check_login,
            timeout="10s",
            note="argon2id is slow on purpose: reported, no target; wrk timeout 10 s",
        ),
    ]


def preflight(scenario: Scenario) -> str | None:
    """One real request (each distinct one for small rotations) before wrk: a scenario that
    answers errors is reported as such instead of being benchmarked at 4xx speed."""
    if not scenario.requests:
        return "no requests to send (setup failed)"
    headers = {"Authorization": f"Bearer {scenario.token}"} if scenario.token else {}
    sample = scenario.requests if len(scenario.requests) <= 10 else scenario.requests[:3]
    with httpx.Client(base_url=scenario.base_url, timeout=30) as client:
        for method, target, body in sample:
            extra = {"Content-Type": "application/json"} if body else {}
            response = client.request(method, target, content=body, headers={**headers, **extra})
            if response.status_code != scenario.expect_status:
                return (
                    f"{method} {_short_target(target)} -> HTTP {response.status_code} "
                    f"(expected {scenario.expect_status}): {_problem_text(response)}"
                )
            if scenario.check is not None:
                problem = scenario.check(response)
                if problem:
                    return f"{method} {_short_target(target)}: {problem}"
    return None


def _short_target(target: str) -> str:
    """The path with the user id shortened, for readable reasons in the report."""
    parts = target.split("/")
    return "/".join(p[:8] + "…" if len(p) == 36 and p.count("-") == 4 else p for p in parts)[:140]


def _problem_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and "code" in body:
        errors = body.get("errors") or []
        fields = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors[:3])
        return f"{body.get('code')} {body.get('detail', '')}" + (f" ({fields})" if fields else "")
    return response.text[:200]


# A run during which other processes used more than this much CPU (in cores) is noisy: it is
# repeated once after waiting for the machine to calm down, and the quieter attempt is kept.
NOISE_LIMIT_CORES = 0.25
PY_SPY_RATE = 250


def _wrk_args(
    ctx: Context, scenario: Scenario, connections: int | None
) -> tuple[Path, dict[str, Any], harness.CpuMeter]:
    requests_file = harness.write_requests_file(
        ctx.work / f"{ctx.backend}-{scenario.name}.tsv", scenario.requests
    )
    kwargs: dict[str, Any] = {
        "connections": connections or ctx.sizes.connections,
        "threads": ctx.sizes.threads,
        "token": scenario.token,
        "cpus": ctx.wrk_cpus,
        "timeout": scenario.timeout,
    }
    on_platform = scenario.base_url == ctx.server.url
    pg_name = ctx.pg_name
    meter = harness.CpuMeter(
        server_pid=ctx.server.pid if on_platform else ctx.baseline.pid,
        postgres_pids=(lambda: postgres_backends(pg_name)) if on_platform and pg_name else None,
    )
    return requests_file, kwargs, meter


def measure(
    ctx: Context,
    scenario: Scenario,
    *,
    connections: int | None = None,
    duration: float | None = None,
    warmup: float | None = None,
) -> WrkResult:
    """Wait for a quiet machine, warm up, measure; repeat once if the run was noisy."""
    requests_file, kwargs, meter = _wrk_args(ctx, scenario, connections)
    warm = ctx.sizes.warmup if warmup is None else warmup
    best: WrkResult | None = None
    for attempt in range(1, 3):
        waited = harness.wait_for_quiet(NOISE_LIMIT_CORES, ctx.quiet_wait)
        if warm > 0:
            harness.run_wrk(scenario.base_url, requests_file, duration=warm, **kwargs)
        pg_stats = (
            postgres_database_stats(ctx.pg_name)
            if ctx.pg_name and scenario.base_url == ctx.server.url
            else None
        )
        meter.start()
        result = harness.run_wrk(
            scenario.base_url, requests_file, duration=duration or ctx.sizes.duration, **kwargs
        )
        result.cpu = meter.stop()
        if pg_stats is not None and ctx.pg_name and result.requests:
            time.sleep(1.1)  # let the backends flush their statistics
            after = postgres_database_stats(ctx.pg_name)
            result.postgres_per_request = {
                k: round((after.get(k, 0) - pg_stats.get(k, 0)) / result.requests, 2)
                for k in PG_STAT_COLUMNS
            }
        result.waited_for_quiet_s = waited
        result.attempts = attempt
        if best is None or result.cpu["foreign_cores"] < best.cpu["foreign_cores"]:
            best = result
        if result.cpu["foreign_cores"] <= NOISE_LIMIT_CORES or scenario.name == "create":
            break  # (create is not repeated: every attempt adds rows)
        log(
            f"  {scenario.name}: other processes used {result.cpu['foreign_cores']} cores "
            "during the run; repeating it once"
        )
    assert best is not None
    return best


def settle(ctx: Context, pause: float = 1.0) -> None:
    """A pause between scenarios, then wait (bounded) until the server answers /health again,
    so work left over from one scenario is not billed to the next."""
    time.sleep(pause)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not health_ok(ctx.server):
        time.sleep(0.5)


def health_ok(server: Server) -> bool:
    try:
        return httpx.get(server.url + "/health", timeout=HEALTH_TIMEOUT).status_code == 200
    except httpx.HTTPError:
        return False


SWEEP_TIMEOUT = "10s"
SWEEP_COLLAPSE = 0.5


def run_sweep(ctx: Context, scenario: Scenario) -> list[dict[str, Any]]:
    """The list at rising connection counts. wrk's timeout is 10 s here, so a response that is
    merely slow because 256 requests queue for one worker is measured (its latency is in the
    table), while a stall is any of: a request unanswered for 10 s, a level where nothing
    completes, throughput at a level above 32 connections falling below half of the
    32-connection level (the server doing less work under more load: pool starvation, lock
    convoys), or /health not answering within 5 s after the level."""
    sweep = Scenario(**{**scenario.__dict__, "timeout": SWEEP_TIMEOUT})
    levels: list[dict[str, Any]] = []
    reference: float | None = None
    for connections in SWEEP:
        row: dict[str, Any] = {"connections": connections}
        problems: list[str] = []
        try:
            result = measure(
                ctx, sweep, connections=connections, duration=ctx.sizes.sweep_duration, warmup=0
            )
            row.update(result.as_dict())
            if result.non_2xx:
                problems.append(f"{result.non_2xx} non-2xx")
            if result.socket_errors:
                problems.append(
                    "socket errors "
                    + ", ".join(f"{k} {v}" for k, v in result.errors.items() if k != "status" and v)
                )
            if result.requests == 0:
                problems.append("no request completed (stall)")
            if connections == 32:
                reference = result.rps
            elif connections > 32 and reference and result.rps < SWEEP_COLLAPSE * reference:
                problems.append(
                    f"throughput collapsed to {result.rps:.0f} req/s "
                    f"(< {SWEEP_COLLAPSE:.0%} of {reference:.0f} at c=32)"
                )
        except harness.WrkFailed as exc:
            problems.append(f"wrk failed: {exc}")
        if not ctx.server.alive():
            problems.append("server process died")
        elif not health_ok(ctx.server):
            problems.append(f"/health did not answer 200 within {HEALTH_TIMEOUT:g}s afterwards")
        row["problems"] = problems
        row["ok"] = not problems
        levels.append(row)
        log(
            f"  sweep c={connections:<3} "
            + (
                f"{row.get('rps', 0):8.1f} req/s  "
                f"p99 {row.get('latency_ms', {}).get('p99', 0):8.1f}"
                f" ms  {'ok' if row['ok'] else 'FAIL: ' + '; '.join(problems)}"
            )
        )
        if not ctx.server.alive():
            break
    return levels


def profile(ctx: Context, scenario: Scenario, *, connections: int, label: str) -> dict[str, Any]:
    duration = max(ctx.sizes.duration, 5)
    raw = RESULTS_DIR / f"{ctx.stamp}-{ctx.backend}-{label}.pyspy.txt"
    requests_file, kwargs, meter = _wrk_args(ctx, scenario, connections)
    harness.wait_for_quiet(NOISE_LIMIT_CORES, ctx.quiet_wait)
    harness.run_wrk(scenario.base_url, requests_file, duration=1, **kwargs)  # warm-up
    spy = harness.start_py_spy(ctx.server.pid, raw, duration, rate=PY_SPY_RATE)
    time.sleep(0.3)  # let py-spy attach; wrk outlasts it by a second
    meter.start()
    result = harness.run_wrk(scenario.base_url, requests_file, duration=duration + 1, **kwargs)
    result.cpu = meter.stop()
    out, _ = spy.communicate(timeout=duration + 60)
    if spy.returncode != 0 or not raw.exists():
        return {"ok": False, "reason": out.decode(errors="replace")[-500:]}
    analysis = harness.analyse_py_spy(raw, rate=PY_SPY_RATE, duration=duration)
    analysis.update(
        {
            "ok": True,
            "scenario": scenario.name,
            "connections": connections,
            "rps_while_profiling": round(result.rps, 1),
            "p99_ms_while_profiling": result.latency_ms["p99"],
            "raw_file": str(raw),
            "cpu_while_profiling": result.cpu,
            "py_spy": out.decode(errors="replace").strip().splitlines()[-2:],
            "duration_s": duration,
        }
    )
    return analysis


# -- one backend -------------------------------------------------------------------------------


def run_backend(
    backend: str,
    args: argparse.Namespace,
    sizes: Sizes,
    work_root: Path,
    stamp: str,
    baseline: Server,
) -> dict[str, Any]:
    out: dict[str, Any] = {"backend": backend, "scenarios": {}, "sweep": [], "profiles": {}}
    work = work_root / backend
    data_dir = work / "data"
    data_dir.mkdir(parents=True)
    pg_name: str | None = None
    server: Server | None = None
    try:
        if backend == "postgresql":
            pg_name = f"creativeflow_bench_{secrets.token_hex(5)}"
            asyncio.run(_pg_admin(f'CREATE DATABASE "{pg_name}"'))
            database_url = PG_URL.format(name=pg_name)
            load_target = f"postgresql://postgres@127.0.0.1:5432/{pg_name}"
            out["database"] = pg_name
        else:
            db_file = data_dir / "creativeflow.db"
            database_url = f"sqlite+aiosqlite:///{db_file}"
            load_target = str(db_file)
            out["database"] = str(db_file)
        env = server_env(database_url, data_dir)

        log(f"{backend}: creativeflow db upgrade")
        started = time.perf_counter()
        subprocess.run(
            [str(VENV_BIN / "creativeflow"), "db", "upgrade"],
            cwd=work,
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        out["migrate_seconds"] = round(time.perf_counter() - started, 2)

        port = harness.free_port()
        server = Server(
            name=f"creativeflow ({backend})",
            argv=[
                str(VENV_BIN / "creativeflow"),
                "serve",
                "--host",
                HOST,
                "--port",
                str(port),
                "--workers",
                "1",
                "--no-migrate",
            ],
            env=env,
            cwd=work,
            log_path=RESULTS_DIR / f"{stamp}-{backend}-server.log",
            port=port,
            cpus=args.server_cpus,
        )
        log(f"{backend}: registering {sizes.n_other + 1} users through the API")
        server.start()
        big, others = register_users(server.url, sizes.n_other, secrets.token_hex(3))
        server.stop()

        log(f"{backend}: generating and bulk-loading {sizes.rows:,} ideas")
        stats, rows = load_data(backend, sizes, big, others, load_target)
        out["load"] = stats.as_dict()
        log(
            f"{backend}: loaded {stats.rows:,} rows in {stats.insert_seconds:.1f}s "
            f"(generated in {stats.generate_seconds:.1f}s"
            + (
                f", VACUUM ANALYZE + CHECKPOINT {stats.analyze_seconds:.1f}s"
                if stats.analyze_seconds
                else ""
            )
            + ")"
        )

        log(f"{backend}: starting the server (pinned to CPU {args.server_cpus or 'any'})")
        server.start()
        ctx = Context(
            backend=backend,
            sizes=sizes,
            work=work,
            stamp=stamp,
            server_cpus=args.server_cpus,
            wrk_cpus=args.wrk_cpus,
            server=server,
            baseline=baseline,
            big=big,
            others=others,
            quiet_wait=args.quiet_wait,
            pg_name=pg_name,
        )
        ctx.notes["big_total"] = sizes.big
        ctx.notes["search_matches"] = stats.search_matches
        ctx.idea_ids = seeding.sample_idea_ids(rows, uuid.UUID(big.id), 1000)
        gen = seeding.IdeaGenerator(seed=99)
        for i in range(50):
            title, notes, stage, priority, tags = gen.content()
            ctx.create_bodies.append(
                json.dumps(
                    {
                        "title": f"{title} #{i}",
                        "notes": notes,
                        "stage": stage.value,
                        "priority": priority.value,
                        "tags": tags,
                    },
                    separators=(",", ":"),
                )
            )
        del rows
        with httpx.Client(base_url=server.url, timeout=30) as client:
            big.token = login(client, big)
            for user in others:
                user.token = login(client, user)

        log(f"{backend}: walking the cursor {sizes.deep:,} rows deep with limit=100")
        out["cursor_walk"] = walk_cursor(ctx)
        if not out["cursor_walk"]["ok"]:
            log(f"  cursor walk: {out['cursor_walk'].get('reason')}")
        else:
            log(f"  {out['cursor_walk']['pages']} pages in {out['cursor_walk']['seconds']}s")

        by_name: dict[str, Scenario] = {}
        for scenario in scenarios(ctx):
            by_name[scenario.name] = scenario
            if scenario.name == "login":
                # The sweep runs before login, whose queued argon2 work would distort it.
                log(f"{backend}: connection sweep on the default list")
                if out["scenarios"]["list"]["status"] == "ok":
                    out["sweep"] = run_sweep(ctx, by_name["list"])
                settle(ctx)
            entry: dict[str, Any] = {"title": scenario.title, "note": scenario.note}
            problem = preflight(scenario)
            if problem:
                entry.update(status="error", reason=problem)
                log(f"  {scenario.name:<12} SKIPPED: {problem}")
            else:
                result = measure(ctx, scenario)
                entry.update(status="ok", **result.as_dict())
                log(
                    f"  {scenario.name:<12} {result.rps:9.1f} req/s  p50 "
                    f"{result.latency_ms['p50']:7.2f} ms  p99 {result.latency_ms['p99']:7.2f} ms"
                    + (
                        f"  errors {result.errors}"
                        if result.non_2xx or result.socket_errors
                        else ""
                    )
                )
                if not server.alive():
                    raise harness.ServerFailed(
                        f"server died during {scenario.name}:\n" + server.log_tail()
                    )
                settle(ctx)
            out["scenarios"][scenario.name] = entry
        out["filtered_totals"] = ctx.notes.get("filtered_totals", {})

        baseline_rps = out["scenarios"].get("baseline", {}).get("rps")
        for entry in out["scenarios"].values():
            if baseline_rps and entry.get("rps") is not None:
                entry["ratio_to_baseline"] = round(entry["rps"] / baseline_rps, 4)
        out["targets"] = evaluate_targets(out)

        for label, name, connections in profile_plan(args.profile, out):
            if harness.py_spy_available() is None:
                out["profiles"][label] = {"ok": False, "reason": "py-spy not installed"}
                break
            if out["scenarios"].get(name, {}).get("status") != "ok" or not server.alive():
                continue
            settle(ctx)
            log(f"{backend}: profiling {name} at c={connections} with py-spy")
            out["profiles"][label] = profile(
                ctx, by_name[name], connections=connections, label=label
            )

        if args.explain:
            log(f"{backend}: capturing each scenario's SQL in-process and explaining it")
            try:
                out["sql"] = explain_scenarios(ctx, by_name, env, load_target)
            except Exception as exc:  # diagnostics never fail the run
                out["sql_error"] = f"{type(exc).__name__}: {exc}"
                log(f"  SQL capture failed: {out['sql_error']}")
    except Exception as exc:  # report what was measured; the table marks the rest missing
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["traceback"] = traceback.format_exc()
        log(f"{backend}: ERROR {out['error']}")
        out.setdefault("targets", evaluate_targets(out))
    finally:
        if server is not None:
            server.stop()
            out["server_log"] = summarize_log(server.log_path, keep=args.keep_logs)
        if pg_name:
            with contextlib.suppress(Exception):
                asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
                log(f"{backend}: dropped database {pg_name}")
    return out


def explain_scenarios(
    ctx: Context, by_name: dict[str, Scenario], env: dict[str, str], explain_target: str
) -> dict[str, Any]:
    from creativeflow.settings import Settings

    settings = Settings.model_validate(
        {
            "environment": env["ENVIRONMENT"],
            "database_url": env["DATABASE_URL"],
            "data_dir": env["DATA_DIR"],
            "secret_key": env["SECRET_KEY"],
            "allowed_origins": env["ALLOWED_ORIGINS"].split(","),
            "log_level": "WARNING",
            "rate_limit_default": env["RATE_LIMIT_DEFAULT"],
            "rate_limit_generation": env["RATE_LIMIT_GENERATION"],
        }
    )
    requests: dict[str, tuple[str, str, str | None, str | None]] = {}
    for name, scenario in by_name.items():
        if scenario.base_url != ctx.server.url or not scenario.requests:
            continue
        if name.startswith("filtered"):  # the search words differ a lot in cost: explain each
            for method, target, body in scenario.requests:
                word = target.split("search=", 1)[1].split("&", 1)[0]
                requests[f"filtered[{word}]"] = (method, target, body, scenario.token)
            continue
        method, target, body = scenario.requests[0]
        requests[name] = (method, target, body, scenario.token)
    return diagnose.diagnose(settings, requests, backend=ctx.backend, explain_target=explain_target)


def profile_plan(option: str, out: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(label, scenario, connections) to run under py-spy."""
    if option == "none":
        return []
    if option != "auto":
        return [(name, name, 32) for name in option.split(",") if name]
    plan = [("list", "list", 32)]
    failing = {t["id"] for t in out.get("targets", []) if t["result"] == "FAIL"}
    if "filtered" in failing:
        plan.append(("filtered", "filtered", 32))
    if "deep_cursor" in failing:
        plan.append(("deep_cursor", "deep_cursor", 32))
    if "sweep" in failing:
        bad = [lvl["connections"] for lvl in out.get("sweep", []) if not lvl.get("ok")]
        if bad:
            plan.append((f"list-c{bad[0]}", "list", bad[0]))
    return plan


def summarize_log(path: Path, *, keep: bool) -> dict[str, Any]:
    """Counts of the server's log lines by level and event; the full log is deleted unless
    --keep-logs (INFO logs one line per request: tens of MB per run)."""
    levels: Counter[str] = Counter()
    events: Counter[str] = Counter()
    errors_seen: Counter[str] = Counter()
    problems: list[str] = []
    lines = 0
    if not path.exists():
        return {}
    with path.open(errors="replace") as handle:
        for line in handle:
            lines += 1
            try:
                record = json.loads(line)
            except ValueError:
                levels["non-json"] += 1
                if len(problems) < 20 and line.strip():
                    problems.append(line.strip()[:300])
                continue
            level = str(record.get("level", "?"))
            levels[level] += 1
            events[str(record.get("event", "?"))[:80]] += 1
            if level in {"warning", "error", "critical"}:
                exception = str(record.get("exception", "")).strip().splitlines()
                key = (
                    f"{level} {record.get('event')} {record.get('path', '')} "
                    f"{exception[-1] if exception else ''}"
                ).strip()
                errors_seen[key[:300]] += 1
    summary: dict[str, Any] = {
        "lines": lines,
        "bytes": path.stat().st_size,
        "by_level": dict(levels),
        "events": dict(events.most_common(10)),
        "warnings_and_errors": [f"{n} x {key}" for key, n in errors_seen.most_common(10)]
        + problems,
    }
    if keep:
        summary["file"] = str(path)
    else:
        path.unlink()
    return summary


# -- targets -----------------------------------------------------------------------------------


def _scenario_ok(out: dict[str, Any], name: str) -> tuple[dict[str, Any] | None, str | None]:
    entry = out.get("scenarios", {}).get(name)
    if entry is None:
        return None, "not measured"
    if entry.get("status") != "ok":
        return None, f"not measured: {entry.get('reason', '')[:200]}"
    if entry.get("non_2xx") or entry.get("socket_errors"):
        return entry, f"{entry['non_2xx']} non-2xx, {entry['socket_errors']} socket errors"
    return entry, None


def evaluate_targets(out: dict[str, Any]) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = []

    def add(target_id: str, title: str, passed: bool, value: str, detail: str = "") -> None:
        targets.append(
            {
                "id": target_id,
                "title": title,
                "result": "PASS" if passed else "FAIL",
                "value": value,
                "detail": detail,
            }
        )

    lst, problem = _scenario_ok(out, "list")
    title = (
        f"list of 20 + total: >= {LIST_MIN_RATIO:.0%} of baseline req/s, "
        f"p99 < {LIST_MAX_P99_MS:g} ms"
    )
    if lst is None or problem:
        add("list", title, False, "-", problem or "")
    else:
        ratio = lst.get("ratio_to_baseline") or 0.0
        p99 = lst["latency_ms"]["p99"]
        add(
            "list",
            title,
            ratio >= LIST_MIN_RATIO and p99 < LIST_MAX_P99_MS,
            f"{ratio:.1%} of baseline ({lst['rps']:.0f} req/s), p99 {p99:.1f} ms",
        )

    flt, problem = _scenario_ok(out, "filtered")
    title = f"filtered search: p99 < {FILTERED_MAX_P99_MS:g} ms"
    if flt is None or problem:
        add("filtered", title, False, "-", problem or "")
    else:
        p99 = flt["latency_ms"]["p99"]
        add(
            "filtered",
            title,
            p99 < FILTERED_MAX_P99_MS,
            f"p99 {p99:.1f} ms ({flt['rps']:.0f} req/s)",
        )

    cur, problem = _scenario_ok(out, "deep_cursor")
    off = out.get("scenarios", {}).get("deep_offset", {})
    title = f"deep page by cursor: >= {DEEP_CURSOR_MIN_RATIO:.0%} of first-page req/s"
    offset_ratio = (off.get("rps") / lst["rps"]) if (off.get("rps") and lst) else None
    offset_text = (
        f"plain offset: {offset_ratio:.1%} of first page"
        if offset_ratio is not None
        else "plain offset: not measured"
    )
    if cur is None or problem or lst is None:
        walk = out.get("cursor_walk", {})
        reason = problem or ("first page not measured" if lst is None else "")
        if walk and not walk.get("ok"):
            reason = f"{reason}; cursor walk: {walk.get('reason')}"
        add("deep_cursor", title, False, "-", f"{reason}; {offset_text}")
    else:
        ratio = cur["rps"] / lst["rps"]
        add(
            "deep_cursor",
            title,
            ratio >= DEEP_CURSOR_MIN_RATIO,
            f"{ratio:.1%} of first page ({cur['rps']:.0f} vs {lst['rps']:.0f} req/s)",
            offset_text,
        )

    sweep = out.get("sweep") or []
    title = f"default list at {'/'.join(map(str, SWEEP))} connections: no errors or stalls"
    if len(sweep) < len(SWEEP):
        add(
            "sweep",
            title,
            False,
            "-",
            f"only {len(sweep)} of {len(SWEEP)} levels ran"
            + (
                "; "
                + "; ".join(
                    f"c={s['connections']}: {', '.join(s['problems'])}"
                    for s in sweep
                    if not s.get("ok")
                )
                if sweep
                else ""
            ),
        )
    else:
        bad = [s for s in sweep if not s.get("ok")]
        add(
            "sweep",
            title,
            not bad,
            "all levels clean" if not bad else f"{len(bad)} level(s) failed",
            "; ".join(f"c={s['connections']}: {', '.join(s['problems'])}" for s in bad),
        )
    return targets


# -- report ------------------------------------------------------------------------------------


def _fmt(value: Any, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def render_markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        f"# CreativeFlow benchmark — {meta['started']} ({meta['mode']})",
        "",
        f"- commit `{meta['git']['commit']}`"
        + (
            f" + {meta['git']['uncommitted_src_files']} uncommitted file(s) in src/"
            if meta["git"]["uncommitted_src_files"]
            else ""
        ),
        f"- {meta['cpus']} x {meta['cpu_model']}, Python {meta['python']}; "
        f"server pinned to CPU {meta['server_cpus'] or 'any'}, wrk to CPU "
        f"{meta['wrk_cpus'] or 'any'} (PostgreSQL itself is not pinned)",
        f"- wrk -t{meta['wrk_threads']} -c{meta['connections']} -d{meta['duration_s']:g}s "
        f"(warm-up {meta['warmup_s']:g}s), sweep {meta['sweep_duration_s']:g}s per level; "
        f"one uvicorn worker; INFO request log to a file",
        f"- data: {meta['sizes']['big']:,} ideas for the big user + {meta['sizes']['n_other']} x "
        f"{meta['sizes']['other']:,} ({meta['sizes']['rows']:,} rows)",
        "",
    ]
    for backend, out in results["backends"].items():
        lines += [f"## {backend}", ""]
        if out.get("error"):
            lines += [f"**Run error:** `{out['error']}`", ""]
        load = out.get("load")
        if load:
            lines += [
                f"Loaded {load['rows']:,} rows in {load['insert_seconds']}s "
                f"({_fmt(load.get('rows_per_second'), ',')} rows/s)"
                + (
                    f", VACUUM ANALYZE + CHECKPOINT {load['analyze_seconds']}s"
                    if load.get("analyze_seconds")
                    else ""
                )
                + ".",
                "",
            ]
        lines += [
            "| scenario | req/s | x baseline | p50 ms | p99 ms | max ms | errors "
            "| server CPU ms/req (sys share, context switches/req) "
            "| CPU cores server/wrk/pg/other | notes |",
            "|---|---:|---:|---:|---:|---:|---|---:|---|---|",
        ]
        for entry in out.get("scenarios", {}).values():
            if entry.get("status") != "ok":
                lines.append(
                    f"| {entry['title']} | - | - | - | - | - | not run | - | - | "
                    f"{_md(entry.get('reason', ''))[:200]} |"
                )
                continue
            lat = entry["latency_ms"]
            errors = (
                f"{entry['non_2xx']} non-2xx, {entry['socket_errors']} socket"
                if entry["non_2xx"] or entry["socket_errors"]
                else "0"
            )
            lines.append(
                f"| {entry['title']} | {entry['rps']:,.0f} | "
                f"{_fmt(entry.get('ratio_to_baseline'), '.3f')} | {lat['p50']:.2f} | "
                f"{lat['p99']:.2f} | {lat['max']:.1f} | {errors} | {_cpu_per_request(entry)} | "
                f"{_cpu_text(entry)} | "
                f"{_md(entry.get('note', ''))} |"
            )
        pg_rows = [
            (e["title"], e["postgres_per_request"])
            for e in out.get("scenarios", {}).values()
            if e.get("postgres_per_request")
        ]
        if pg_rows:
            lines += [
                "",
                "PostgreSQL work per request (pg_stat_database deltas / requests; "
                "a pool pre-ping shows as a rollback):",
                "",
                "| scenario | commits | rollbacks | tuples returned | tuples fetched "
                "| buffer hits | blocks read | temp bytes |",
                "|---|---:|---:|---:|---:|---:|---:|---:|",
            ]
            for title, pg in pg_rows:
                lines.append(
                    f"| {title} | {pg['xact_commit']} | {pg['xact_rollback']} | "
                    f"{pg['tup_returned']:,} | {pg['tup_fetched']:,} | {pg['blks_hit']:,} | "
                    f"{pg['blks_read']:,} | {pg['temp_bytes']:,.0f} |"
                )
        walk = out.get("cursor_walk")
        if walk:
            lines += [
                "",
                (
                    f"Cursor walk: {walk.get('rows', 0):,} rows in {walk.get('pages', 0)} "
                    f"pages of 100, {walk.get('seconds', '-')}s "
                    f"({walk.get('ms_per_page_of_100', '-')} ms/page), duplicates "
                    f"{walk.get('duplicates', '-')}, newest first "
                    f"{walk.get('newest_first', '-')}"
                    + (f" — **{walk['reason']}**" if walk.get("reason") else "")
                ),
            ]
        totals = out.get("filtered_totals")
        if totals:
            lines += [
                "",
                "Filtered totals (API vs substring matches in the generated data): "
                + ", ".join(
                    f"{w}: {t['api_total']} vs {t['expected_substring_matches']}"
                    for w, t in totals.items()
                ),
            ]
        sweep = out.get("sweep")
        if sweep:
            lines += [
                "",
                "Connection sweep (default list):",
                "",
                "| connections | req/s | p50 ms | p99 ms | max ms | non-2xx | socket errors | "
                "CPU cores server/wrk/pg/other | result |",
                "|---:|---:|---:|---:|---:|---:|---|---|---|",
            ]
            for lvl in sweep:
                lat = lvl.get("latency_ms", {})
                lines.append(
                    f"| {lvl['connections']} | {_fmt(lvl.get('rps'), ',.0f')} | "
                    f"{_fmt(lat.get('p50'), '.2f')} | {_fmt(lat.get('p99'), '.2f')} | "
                    f"{_fmt(lat.get('max'), '.1f')} | {lvl.get('non_2xx', '-')} | "
                    f"{_socket_text(lvl)} | {_cpu_text(lvl)} | "
                    f"{'ok' if lvl.get('ok') else 'FAIL: ' + _md('; '.join(lvl['problems']))} |"
                )
        log_summary = out.get("server_log")
        if log_summary and log_summary.get("warnings_and_errors"):
            lines += ["", f"Server log: {log_summary['by_level']}; first warnings/errors:", ""]
            lines += [f"    {p[:300]}" for p in log_summary["warnings_and_errors"][:8]]
        lines.append("")

    lines += [
        "## Targets",
        "",
        "| target | " + " | ".join(results["backends"]) + " |",
        "|---|" + "---|" * len(results["backends"]),
    ]
    target_ids: dict[str, str] = {}
    for out in results["backends"].values():
        for t in out.get("targets", []):
            target_ids.setdefault(t["id"], t["title"])
    for target_id, title in target_ids.items():
        cells = []
        for out in results["backends"].values():
            t = next((t for t in out.get("targets", []) if t["id"] == target_id), None)
            if t is None:
                cells.append("-")
            else:
                detail = f" ({_md(t['detail'])})" if t["detail"] else ""
                cells.append(f"**{t['result']}** {_md(t['value'])}{detail}")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    lines.append("")

    for backend, out in results["backends"].items():
        sql = out.get("sql")
        if not sql:
            continue
        lines += [
            f"## SQL per request: {backend}",
            "",
            "One request per scenario, in-process against the same database; statement "
            "times are wall time seen by SQLAlchemy (driver included). Plans for the "
            "SELECTs on the ideas tables.",
            "",
            "```",
        ]
        for name, info in sql.items():
            lines.append(f"{name}: {info['count']} statements, {info['db_ms']} ms")
            for st in info["statements"]:
                lines.append(f"  {st['ms']:7.2f} ms  {st['sql'][:150]}")
                for plan_line in st["plan"][:14]:
                    lines.append(f"               | {plan_line[:130]}")
        lines += ["```", ""]

    for backend, out in results["backends"].items():
        for label, prof in out.get("profiles", {}).items():
            lines += [f"## Profile: {backend} / {label}", ""]
            if not prof.get("ok"):
                lines += [f"not available: {prof.get('reason')}", ""]
                continue
            lines += [
                f"py-spy --nonblocking, {prof['duration_s']}s at c={prof['connections']} "
                f"({prof['rps_while_profiling']:.0f} req/s while sampling): the event loop's "
                f"thread was busy {prof['main_thread_busy_percent']}% of the time "
                f"({prof['main_thread_samples']} samples); the tables below are shares of "
                "those samples. Samples by thread: "
                + ", ".join(f"{t['name']} {t['percent']}%" for t in prof["threads"])
                + (
                    ". Other threads' top frames (share of all samples; aiosqlite threads "
                    "look busy while they wait): "
                    + ", ".join(
                        f"`{_md(t['name'])}` {t['percent']}%" for t in prof["other_threads_top"][:3]
                    )
                    if prof["other_threads_top"]
                    else ""
                ),
                "",
                "| self time by package | % |",
                "|---|---:|",
                *[f"| {r['name']} | {r['percent']} |" for r in prof["self_by_package"][:12]],
                "",
                "| self time by function | % |",
                "|---|---:|",
                *[
                    f"| `{_md(r['name'])}` | {r['percent']} |"
                    for r in prof["self_by_function"][:15]
                ],
                "",
                "| inclusive time (frames on < 60% of samples) | % |",
                "|---|---:|",
                *[
                    f"| `{_md(r['name'])}` | {r['percent']} |"
                    for r in prof["inclusive_by_function"][:25]
                ],
                "",
                "| inclusive time, creativeflow code (ORM work in greenlets not included) | % |",
                "|---|---:|",
                *[
                    f"| `{_md(r['name'])}` | {r['percent']} |"
                    for r in prof["inclusive_creativeflow"][:15]
                ],
                "",
            ]
    return "\n".join(lines)


def _cpu_per_request(entry: dict[str, Any]) -> str:
    """Server CPU time per request (user+system, system share in brackets) and the server's
    context switches per request: the cost a worker pays, whatever the concurrency."""
    cpu = entry.get("cpu") or {}
    if not cpu or not entry.get("rps"):
        return "-"
    text = f"{1000 * cpu['server_cores'] / entry['rps']:.2f}"
    if "server_sys_cores" in cpu and entry.get("requests"):
        sys_share = cpu["server_sys_cores"] / cpu["server_cores"] if cpu["server_cores"] else 0
        switches = cpu["server_context_switches"] / entry["requests"]
        text += f" ({sys_share:.0%} sys, {switches:.1f} cs)"
    return text


def _cpu_text(entry: dict[str, Any]) -> str:
    cpu = entry.get("cpu")
    if not cpu:
        return "-"
    text = (
        f"{cpu['server_cores']:.2f}/{cpu['wrk_cores']:.2f}/{cpu['postgres_cores']:.2f}/"
        f"{cpu['foreign_cores']:.2f}"
    )
    return text + (" **noisy**" if cpu["foreign_cores"] > NOISE_LIMIT_CORES else "")


def _socket_text(level: dict[str, Any]) -> str:
    errors = level.get("errors")
    if not errors:
        return "-"
    parts = [f"{k} {v}" for k, v in errors.items() if k != "status" and v]
    return ", ".join(parts) or "0"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


# -- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--quick", action="store_true", help="smoke check: 20k rows, 3 s runs, 2 s sweep levels"
    )
    parser.add_argument(
        "--server-cpus",
        default="0",
        help="taskset CPU list for the servers (default 0; '' to not pin)",
    )
    parser.add_argument(
        "--wrk-cpus", default="1", help="taskset CPU list for wrk (default 1; '' to not pin)"
    )
    parser.add_argument(
        "--profile",
        default="auto",
        help="py-spy runs after the measurements: 'auto' (the list, plus every "
        "scenario whose target failed), 'none', or scenario names "
        "separated by commas",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=None,
        help="before each run, wait up to this many seconds for other "
        "processes to leave the CPUs idle (default 120, --quick 15)",
    )
    parser.add_argument(
        "--no-explain",
        dest="explain",
        action="store_false",
        help="skip capturing and explaining each scenario's SQL",
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the servers' full logs in bench/results/"
    )
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="keep the temporary directory (SQLite file, request files)",
    )
    args = parser.parse_args(argv)
    if args.quiet_wait is None:
        args.quiet_wait = 15.0 if args.quick else 120.0
    args.server_cpus = args.server_cpus or None
    args.wrk_cpus = args.wrk_cpus or None
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    if (args.server_cpus or args.wrk_cpus) and shutil.which("taskset") is None:
        print("taskset is not installed; pass --server-cpus '' --wrk-cpus ''", file=sys.stderr)
        return 2
    sizes = QUICK if args.quick else FULL
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    work_root = Path(tempfile.mkdtemp(prefix="creativeflow-bench-"))
    results: dict[str, Any] = {
        "meta": {
            "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "mode": "quick" if args.quick else "full",
            "git": git_info(),
            "python": py_platform.python_version(),
            "cpu_model": cpu_model(),
            "cpus": os.cpu_count(),
            "server_cpus": args.server_cpus,
            "wrk_cpus": args.wrk_cpus,
            "connections": sizes.connections,
            "wrk_threads": sizes.threads,
            "duration_s": sizes.duration,
            "warmup_s": sizes.warmup,
            "sweep_duration_s": sizes.sweep_duration,
            "sizes": {
                "big": sizes.big,
                "other": sizes.other,
                "n_other": sizes.n_other,
                "rows": sizes.rows,
                "deep": sizes.deep,
            },
        },
        "backends": {},
    }
    port = harness.free_port()
    baseline = Server(
        name="baseline",
        argv=[
            sys.executable,
            "-m",
            "uvicorn",
            "baseline_app:app",
            "--app-dir",
            str(harness.BENCH_DIR),
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=dict(os.environ),
        cwd=work_root,
        log_path=RESULTS_DIR / f"{stamp}-baseline.log",
        port=port,
        cpus=args.server_cpus,
        health_path="/",
    )
    try:
        log(f"baseline: bare Starlette on port {port}")
        baseline.start()
        for backend in backends:
            results["backends"][backend] = run_backend(
                backend, args, sizes, work_root, stamp, baseline
            )
    except KeyboardInterrupt:
        log("interrupted: stopping servers")
    finally:
        baseline.stop()
        if args.keep_data:
            log(f"temporary files kept in {work_root}")
        else:
            shutil.rmtree(work_root, ignore_errors=True)
        with contextlib.suppress(OSError):
            log_file = RESULTS_DIR / f"{stamp}-baseline.log"
            if log_file.exists() and log_file.stat().st_size == 0:
                log_file.unlink()

    json_path = RESULTS_DIR / f"{stamp}-{results['meta']['mode']}.json"
    md_path = json_path.with_suffix(".md")
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    markdown = render_markdown(results)
    md_path.write_text(markdown + "\n")
    shutil.copyfile(json_path, RESULTS_DIR / "latest.json")
    shutil.copyfile(md_path, RESULTS_DIR / "latest.md")
    print()
    print(markdown)
    print(f"\nresults: {json_path.relative_to(REPO_DIR)}, {md_path.relative_to(REPO_DIR)}")
    failed = [
        t
        for out in results["backends"].values()
        for t in out.get("targets", [])
        if t["result"] == "FAIL"
    ]
    return 1 if failed or len(results["backends"]) < len(backends) else 0


if __name__ == "__main__":
    sys.exit(main())
