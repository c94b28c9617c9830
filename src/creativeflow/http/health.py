"""Liveness, readiness and dependency health, plus the Prometheus scrape endpoint.

Public by design: orchestrators and scrapers call them without credentials. They reveal only
whether each dependency answers, never addresses or errors.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from pydantic import BaseModel
from sqlalchemy import text

from creativeflow import __version__

ServiceStatus = Literal["connected", "unavailable", "not_configured", "available"]


class HealthReport(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    version: str
    services: dict[str, ServiceStatus]
    timestamp: datetime


# A dependency that accepts connections but never answers (a hung server, a dropped route)
# counts as unavailable after this long, so probes answer in bounded time.
CHECK_TIMEOUT_SECONDS = 2.0


async def _database_status(request: Request) -> ServiceStatus:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            async with request.app.state.platform.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception:
        return "unavailable"
    return "connected"


async def _redis_status(request: Request) -> ServiceStatus:
    redis = request.app.state.platform.redis
    if redis is None:
        return "not_configured"
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await redis.ping()
    except Exception:
        return "unavailable"
    return "connected"


def _filesystem_status(request: Request) -> ServiceStatus:
    data_dir = request.app.state.platform.settings.data_dir
    return "available" if os.access(data_dir, os.W_OK) else "unavailable"


async def _report(
    request: Request, *, checks: tuple[str, ...], strict: bool = True
) -> JSONResponse:
    """`strict` reports answer 503 when a dependency is down; the others report it and stay 200
    (the process itself is up)."""
    services: dict[str, ServiceStatus] = {}
    if "database" in checks:
        services["database"] = await _database_status(request)
    if "redis" in checks:
        services["redis"] = await _redis_status(request)
    if "filesystem" in checks:
        services["filesystem"] = _filesystem_status(request)
    healthy = all(state != "unavailable" for state in services.values())
    state = "healthy" if healthy else ("unhealthy" if strict else "degraded")
    report = HealthReport(
        status=state, version=__version__, services=services, timestamp=datetime.now(UTC)
    )
    status_code = 503 if strict and not healthy else 200
    return JSONResponse(report.model_dump(mode="json"), status_code=status_code)


ALL = ("database", "redis", "filesystem")
_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {"model": HealthReport, "description": "A dependency is unavailable"}
}


_METRICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Prometheus text exposition format",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}


MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own name for it


def scrape() -> bytes:
    """The metrics in Prometheus's text format: every worker's, summed, when the workers share
    a directory (`PROMETHEUS_MULTIPROC_DIR`, which `creativeflow serve --workers N` sets), so a
    scrape that reaches any one worker sees the whole server; else this process's."""
    if os.environ.get(MULTIPROCESS_DIR_VARIABLE):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest()


def build_health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get(
        "/health",
        response_model=HealthReport,
        summary="Process is up, with the state of each dependency",
    )
    @router.get(
        "/api/v1/health",
        response_model=HealthReport,
        summary="Process is up, with the state of each dependency",
    )
    async def health(request: Request) -> JSONResponse:
        return await _report(request, checks=ALL, strict=False)

    @router.get("/api/v1/health/live", response_model=HealthReport, summary="Liveness probe")
    async def live(request: Request) -> JSONResponse:
        return await _report(request, checks=())

    @router.get(
        "/health/db", response_model=HealthReport, summary="Database answers", responses=_RESPONSES
    )
    async def database(request: Request) -> JSONResponse:
        return await _report(request, checks=("database",))

    @router.get(
        "/health/ready",
        response_model=HealthReport,
        summary="Readiness: every configured dependency answers",
        responses=_RESPONSES,
    )
    @router.get(
        "/api/v1/health/ready",
        response_model=HealthReport,
        summary="Readiness probe",
        responses=_RESPONSES,
    )
    async def ready(request: Request) -> JSONResponse:
        return await _report(request, checks=ALL)

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        include_in_schema=True,
        responses=_METRICS_RESPONSES,
    )
    async def metrics() -> Response:
        return Response(scrape(), media_type=CONTENT_TYPE_LATEST)

    return router
