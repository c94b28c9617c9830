"""Which SQL each scenario runs, how long it takes, and the database's plan for it.

After the measurements, the same application (`create_app`, same database, same SECRET_KEY, so
the benchmark's tokens are valid) is driven in-process through httpx's ASGI transport with a
SQLAlchemy cursor-execute listener on its engine: one request per scenario (after two warm-up
calls) yields the exact statements and parameters it sends. Each statement that touches the
ideas tables is then explained on the same database: `EXPLAIN QUERY PLAN` on SQLite,
`EXPLAIN (ANALYZE, BUFFERS)` on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import event


@dataclass
class Statement:
    sql: str
    params: Any
    ms: float


@dataclass
class Capture:
    statements: list[Statement] = field(default_factory=list)
    active: bool = False


def _listen(engine: Any, capture: Capture) -> None:
    sync_engine = getattr(engine, "sync_engine", engine)  # async engines wrap a sync one

    @event.listens_for(sync_engine, "before_cursor_execute")
    def before(
        conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _executemany: bool
    ) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    @event.listens_for(sync_engine, "after_cursor_execute")
    def after(
        conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _executemany: bool
    ) -> None:
        started = conn.info.get("bench_started", [time.perf_counter()]).pop()
        if capture.active:
            capture.statements.append(
                Statement(statement, parameters, (time.perf_counter() - started) * 1000)
            )


def _wrap_driver_fetch(reads: Any, capture: Capture) -> None:
    """Driver statements (`ReadConnections.fetch`) bypass SQLAlchemy's execute events: time
    them around the call instead."""
    fetch = reads.fetch

    async def timed(statement: Any, params: Any) -> Any:
        started = time.perf_counter()
        rows = await fetch(statement, params)
        if capture.active:
            ms = (time.perf_counter() - started) * 1000
            capture.statements.append(
                Statement(statement.sql_for(params), statement.arguments(params), ms)
            )
        return rows

    reads.fetch = timed


async def _capture_all(
    settings: Any, requests: dict[str, tuple[str, str, str | None, str | None]]
) -> dict[str, list[Statement]]:
    from creativeflow.app import create_app

    app = create_app(settings)
    platform = app.state.platform
    capture = Capture()
    _listen(platform.engine, capture)
    _listen(platform.reads.engine, capture)  # the read path's own pool (ADR 5)
    _wrap_driver_fetch(platform.reads, capture)
    results: dict[str, list[Statement]] = {}
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for name, (method, target, body, token) in requests.items():
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                if body:
                    headers["Content-Type"] = "application/json"
                runs = 1 if method != "GET" else 3  # GETs warm up; writes run once
                for run in range(runs):
                    capture.statements = []
                    capture.active = run == runs - 1
                    await client.request(method, target, content=body, headers=headers)
                results[name] = list(capture.statements)
                capture.active = False
    finally:
        await platform.close()
    return results


def _touches_ideas(sql: str) -> bool:
    lowered = sql.lower()
    return " ideas" in lowered or "idea_counters" in lowered


def _explain_sqlite(path: str, statements: list[Statement]) -> list[list[str]]:
    plans: list[list[str]] = []
    conn = sqlite3.connect(path)
    try:
        for st in statements:
            if not _touches_ideas(st.sql) or not st.sql.lstrip().upper().startswith("SELECT"):
                plans.append([])
                continue
            try:
                rows = conn.execute(f"EXPLAIN QUERY PLAN {st.sql}", st.params or ()).fetchall()
                plans.append([f"{'  ' * _depth(rows, r)}{r[3]}" for r in rows])
            except sqlite3.Error as exc:
                plans.append([f"(explain failed: {exc})"])
    finally:
        conn.close()
    return plans


def _depth(rows: list[tuple[Any, ...]], row: tuple[Any, ...]) -> int:
    parents = {r[0]: r[1] for r in rows}
    depth, parent = 0, row[1]
    while parent and depth < 10:
        depth += 1
        parent = parents.get(parent, 0)
    return depth


async def _explain_postgresql(dsn: str, statements: list[Statement]) -> list[list[str]]:
    import asyncpg

    plans: list[list[str]] = []
    conn = await asyncpg.connect(dsn)
    try:
        for st in statements:
            if not _touches_ideas(st.sql) or not st.sql.lstrip().upper().startswith("SELECT"):
                plans.append([])
                continue
            params = list(st.params) if isinstance(st.params, list | tuple) else []
            try:
                rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {st.sql}", *params)
                plans.append([r[0] for r in rows])
            except Exception as exc:  # an explain failure is reported, not fatal
                plans.append([f"(explain failed: {type(exc).__name__}: {exc})"])
    finally:
        await conn.close()
    return plans


def diagnose(
    settings: Any,
    requests: dict[str, tuple[str, str, str | None, str | None]],
    *,
    backend: str,
    explain_target: str,
) -> dict[str, Any]:
    """{scenario: {statements: [...], plans: [...]}} for one request of each scenario."""
    captured = asyncio.run(_capture_all(settings, requests))
    out: dict[str, Any] = {}
    for name, statements in captured.items():
        if backend == "sqlite":
            plans = _explain_sqlite(explain_target, statements)
        else:
            plans = asyncio.run(_explain_postgresql(explain_target, statements))
        out[name] = {
            "count": len(statements),
            "db_ms": round(sum(s.ms for s in statements), 2),
            "statements": [
                {"sql": " ".join(s.sql.split()), "ms": round(s.ms, 3), "plan": plan}
                for s, plan in zip(statements, plans, strict=True)
            ],
        }
    return out
