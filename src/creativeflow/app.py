"""create_app(settings): the one FastAPI application of the platform."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from creativeflow import __version__
from creativeflow.assets.router import router as images_router
from creativeflow.assets.uploads import remove_abandoned_uploads, upload_directory
from creativeflow.datasources.router import credentials_router
from creativeflow.datasources.router import reaching_router as datasource_calls_router
from creativeflow.datasources.router import router as datasources_router
from creativeflow.http.direct import DirectDispatch, mount_direct_routes
from creativeflow.http.health import build_health_router
from creativeflow.http.middleware import ProblemCORSMiddleware, RequestContextMiddleware
from creativeflow.http.problems import install_problem_handlers, install_problem_openapi
from creativeflow.http.rate_limits import (
    CallerKeys,
    RateLimitMiddleware,
    install_rate_limit_openapi,
)
from creativeflow.ideas.router import router as ideas_router
from creativeflow.identity.admin_router import router as admin_router
from creativeflow.identity.bootstrap import sync_builtin_roles
from creativeflow.identity.router import router as auth_router
from creativeflow.jobs.router import router as jobs_router
from creativeflow.platform import Platform, build_platform
from creativeflow.providers.router import router as generation_router
from creativeflow.realtime.router import install_token_redaction
from creativeflow.realtime.router import router as realtime_router
from creativeflow.settings import Settings, get_settings
from creativeflow.shared.core.logging import configure_logging
from creativeflow.stories.cast.router import router as story_cast_router
from creativeflow.stories.consistency.router import router as story_consistency_router
from creativeflow.stories.content.router import router as story_content_router
from creativeflow.stories.drafts.router import router as story_drafts_router
from creativeflow.stories.generation.router import router as story_generation_router
from creativeflow.stories.instructions.router import router as story_instructions_router
from creativeflow.stories.projects.router import router as projects_router
from creativeflow.stories.prompts.router import router as story_prompts_router
from creativeflow.stories.publishing.router import router as story_publishing_router
from creativeflow.stories.style.router import router as story_style_router
from creativeflow.stories.whole.router import router as story_whole_router
from creativeflow.stories.workflows.router import router as story_workflows_router
from creativeflow.webhooks.router import router as webhooks_router

API_PREFIX = "/api/v1"

DESCRIPTION = """
CreativeFlow is a self-hostable backend for AI-assisted creative work.

**Authentication.** `POST /api/v1/auth/login` returns an access token (30 minutes) and a
refresh token (7 days, single use). Send `Authorization: Bearer <access token>`, or a personal
API key as `X-API-Key` or as the bearer token.

**Errors** are RFC 9457 `application/problem+json` with a stable `code` and a `correlation_id`.
"""


def create_app(settings: Settings | None = None, *, platform: Platform | None = None) -> FastAPI:
    settings = settings or (platform.settings if platform else get_settings())
    configure_logging(settings.service_name, settings.log_level)
    install_token_redaction()
    owns_platform = platform is None
    platform = platform or build_platform(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await sync_builtin_roles(app.state.platform)
        # Uploads a crashed process was receiving (their spool files) are of no use now.
        await asyncio.to_thread(
            remove_abandoned_uploads, upload_directory(app.state.platform.settings.data_dir)
        )
        # The sweeper always; the job runner too unless Celery workers run the jobs.
        await app.state.platform.jobs.start()
        # Dispatches the durable events this process commits; sweeps up others' leftovers.
        await app.state.platform.outbox.start()
        # Everything built so far (modules, routes, models, metadata) lives as long as the
        # process: keep it out of the collector's full passes, which otherwise walk it all
        # and stall every request in flight (list at 32 connections: p99 350 ms -> 48 ms).
        gc.collect()
        gc.freeze()
        yield
        await app.state.platform.jobs.stop()
        await app.state.platform.outbox.stop()
        if owns_platform:
            await app.state.platform.close()

    app = FastAPI(
        title="CreativeFlow API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url="/redoc",
        # The platform reports through /metrics and its request log. FastAPI's OpenTelemetry
        # hooks would otherwise ask the global providers on every request whether anyone
        # listens (~10 us).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.platform = platform
    install_problem_handlers(app)
    install_problem_openapi(app)

    # Routes are matched in order, and in FastAPI each route tried costs ~5-10 us: the busiest
    # routes go first (the ideas of a 100k-idea user listed from last place: +0.3 ms), the
    # health probes (a few a second) after them. No two routers share a path, so the order
    # decides nothing else.
    _include_domain_routers(app)
    app.include_router(build_health_router())
    app.include_router(auth_router, prefix=API_PREFIX)

    # The middleware added last runs first. Direct endpoints are served innermost, right
    # before the router (`http/direct.py`). CORS answers preflights before any route; the
    # request context wraps it, so preflight answers (and CORS refusals) carry the correlation
    # id and security headers and are logged like every other response.
    app.add_middleware(
        DirectDispatch,
        application=app,
        routes=mount_direct_routes(API_PREFIX, ideas_router),
    )
    # Rate limits count a request before any endpoint (direct ones too) sees it; inside CORS,
    # so that a browser can read a 429 and its headers.
    if platform.rate_limits is not None:
        install_rate_limit_openapi(app)
        app.add_middleware(
            RateLimitMiddleware,
            limiter=platform.rate_limits,
            callers=CallerKeys(platform.auth.verifier),
        )
    if settings.allowed_origins:
        app.add_middleware(
            ProblemCORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "X-API-Key",
                "X-Correlation-ID",
                "Idempotency-Key",
                "If-None-Match",
            ],
            expose_headers=[
                "X-Correlation-ID",
                "ETag",
                "Location",
                "Retry-After",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "RateLimit-Policy",
            ],
            max_age=600,
        )
    app.add_middleware(RequestContextMiddleware, hsts=settings.is_production)
    return app


def _include_domain_routers(app: FastAPI) -> None:
    app.include_router(ideas_router, prefix=API_PREFIX)
    app.include_router(admin_router, prefix=API_PREFIX)
    app.include_router(jobs_router, prefix=API_PREFIX)
    app.include_router(generation_router, prefix=API_PREFIX)
    app.include_router(images_router, prefix=API_PREFIX)
    app.include_router(webhooks_router, prefix=API_PREFIX)
    app.include_router(datasource_calls_router, prefix=API_PREFIX)
    app.include_router(datasources_router, prefix=API_PREFIX)
    app.include_router(credentials_router, prefix=API_PREFIX)
    app.include_router(projects_router, prefix=API_PREFIX)
    app.include_router(story_content_router, prefix=API_PREFIX)
    app.include_router(story_drafts_router, prefix=API_PREFIX)
    app.include_router(story_generation_router, prefix=API_PREFIX)
    app.include_router(story_instructions_router, prefix=API_PREFIX)
    app.include_router(story_style_router, prefix=API_PREFIX)
    app.include_router(story_prompts_router, prefix=API_PREFIX)
    app.include_router(story_whole_router, prefix=API_PREFIX)
    app.include_router(story_publishing_router, prefix=API_PREFIX)
    app.include_router(story_cast_router, prefix=API_PREFIX)
    app.include_router(story_consistency_router, prefix=API_PREFIX)
    app.include_router(story_workflows_router, prefix=API_PREFIX)
    app.include_router(realtime_router, prefix=API_PREFIX)
