"""The process-wide objects one running platform shares between requests."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from collections.abc import AsyncIterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from creativeflow.assets.storage import ObjectStorage, build_storage
from creativeflow.db.engine import create_engine, create_session_factory, writer_engine
from creativeflow.db.reads import ReadConnections, create_read_connections
from creativeflow.encryption import FieldCipher
from creativeflow.http.rate_limits import RateLimiter, build_rate_limiter
from creativeflow.identity.passwords import Passwords
from creativeflow.identity.principal_cache import PrincipalCache
from creativeflow.identity.revocation import (
    NoRevocationMirror,
    RedisRevocationList,
    RevocationList,
)
from creativeflow.identity.service import AuthContext
from creativeflow.identity.throttle import LoginThrottle, limits_storage
from creativeflow.providers.base import ImageProvider, TextProvider
from creativeflow.providers.embeddings import ImageEmbedder
from creativeflow.providers.registry import build_image_provider, build_text_provider
from creativeflow.realtime.hub import RealtimeHub, build_hub
from creativeflow.settings import ConfigurationError, Settings
from creativeflow.shared.messaging.bus import EventBus
from creativeflow.shared.security.auth import (
    ExternalIssuer,
    JWKSCache,
    TokenVerifier,
    configure_token_verifier,
)

if TYPE_CHECKING:
    from creativeflow.jobs.engine import JobEngine
    from creativeflow.webhooks.outbox import OutboxDispatcher


def _redis(url: str) -> Redis:
    # A Redis that stops answering must fail a request quickly, never hang it.
    return Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)


@dataclass
class Platform:
    settings: Settings
    engine: AsyncEngine
    read_sessions: async_sessionmaker[AsyncSession]
    write_sessions: async_sessionmaker[AsyncSession]
    auth: AuthContext
    events: EventBus
    text_provider: TextProvider
    image_provider: ImageProvider
    storage: ObjectStorage
    # Image rendering and other CPU work of providers, off the event loop.
    render_executor: Executor
    # WebSocket channels: in process, or through Redis when REDIS_URL is set (`realtime/`).
    realtime: RealtimeHub
    redis: Redis | None = None
    # Image embeddings for character drift (IMAGE_EMBEDDING_URL); None: features alone.
    image_embedder: ImageEmbedder | None = None
    # Request rate limits (`http/rate_limits.py`); None when RATE_LIMIT_ENABLED is false.
    rate_limits: RateLimiter | None = None
    # SQLite takes one writer at a time: write requests queue here, in arrival order, instead
    # of polling the file lock with SQLite's sleeping busy handler (1, 2, 5 ... 100 ms naps:
    # 32 concurrent creates had a p99 over a second). None on PostgreSQL.
    write_gate: asyncio.Lock | None = None
    # Uploads decoded and re-encoded at once (IMAGE_DECODE_CONCURRENCY): each holds its
    # pixels in memory, so more wait their turn.
    image_decode_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(4))
    # Built right after the platform (it needs it): how this process wakes and runs jobs.
    jobs: JobEngine = field(init=False)
    # Dispatches the durable events this process commits (and sweeps up others' leftovers).
    outbox: OutboxDispatcher = field(init=False)
    # Encrypts secrets kept at rest (`creativeflow.encryption`).
    field_cipher: FieldCipher = field(init=False)

    @contextlib.asynccontextmanager
    async def write_transaction(self) -> AsyncIterator[AsyncSession]:
        """A short write transaction outside any request (jobs, dispatchers, maintenance),
        queued on SQLite's write gate like the requests' writes. Never held across a provider
        or network call."""
        gate = self.write_gate or contextlib.nullcontext()
        async with gate, self.write_sessions() as session, session.begin():
            yield session

    @property
    def reads(self) -> ReadConnections:
        """The read connections (ADR 5), which authentication uses too."""
        return self.auth.reads

    async def close(self) -> None:
        # Jobs first: a job's end dispatches its event; then the dispatcher, which hands back
        # whatever it had claimed and not dispatched.
        await self.jobs.stop()
        await self.outbox.stop()
        await self.text_provider.aclose()
        await self.image_provider.aclose()
        if self.image_embedder is not None:
            await self.image_embedder.aclose()
        await self.storage.aclose()
        self.render_executor.shutdown(wait=False, cancel_futures=True)
        await self.realtime.close()
        if self.redis is not None:
            await self.redis.aclose()
        if self.rate_limits is not None:
            await self.rate_limits.aclose()
        await self.reads.close()
        await self.engine.dispose()


def build_platform(
    settings: Settings, engine: AsyncEngine | None = None, *, role: str = "api"
) -> Platform:
    """`role` names this process in job workers' ids: `api`, `worker`, `sweeper`."""
    settings.ensure_data_dir()
    # First: a malformed key stops the start before anything is opened.
    field_cipher = _field_cipher(settings)
    engine = engine or create_engine(
        settings.resolved_database_url(),
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        echo=settings.database_echo,
    )
    reads = create_read_connections(
        engine.url.render_as_string(hide_password=False),
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        echo=settings.database_echo,
    )
    redis = _redis(settings.redis_url) if settings.redis_url else None
    verifier = TokenVerifier(
        secret=settings.signing_key(),
        issuer=settings.token_issuer,
        external=_external_issuer(settings),
    )
    configure_token_verifier(verifier)
    revocations: RevocationList = (
        RedisRevocationList(redis) if redis is not None else NoRevocationMirror()
    )
    auth = AuthContext(
        verifier=verifier,
        throttle=LoginThrottle(
            limits_storage(settings.redis_url),
            per_account=settings.login_max_failures_per_account,
            per_address=settings.login_max_failures_per_address,
            window_seconds=settings.login_failure_window_seconds,
        ),
        revocations=revocations,
        access_ttl=timedelta(minutes=settings.access_token_expire_minutes),
        refresh_ttl=timedelta(days=settings.refresh_token_expire_days),
        passwords=Passwords(settings.password_hash_memory_kib, settings.password_hash_time_cost),
        principals=PrincipalCache(ttl_seconds=settings.principal_cache_seconds),
        reads=reads,
    )
    render_executor = _render_executor(settings)
    platform = Platform(
        settings=settings,
        engine=engine,
        read_sessions=create_session_factory(engine),
        write_sessions=create_session_factory(writer_engine(engine)),
        auth=auth,
        events=EventBus(),
        text_provider=build_text_provider(settings),
        image_provider=build_image_provider(settings, render_executor),
        image_embedder=ImageEmbedder.from_settings(settings),
        storage=build_storage(settings),
        render_executor=render_executor,
        realtime=build_hub(settings, redis, role=role),
        redis=redis,
        rate_limits=build_rate_limiter(settings),
        write_gate=asyncio.Lock() if engine.dialect.name == "sqlite" else None,
        image_decode_slots=asyncio.Semaphore(settings.image_decode_concurrency),
    )
    from creativeflow.jobs.engine import JobEngine
    from creativeflow.webhooks.outbox import (
        OutboxDispatcher,
        dispatcher_info,
        install_outbox_hooks,
    )

    platform.field_cipher = field_cipher
    platform.jobs = JobEngine(platform, role=role)
    # Every session writes its durable events to the outbox; this platform's write sessions
    # also tell its dispatcher, after they commit, which rows to dispatch at once.
    install_outbox_hooks()
    platform.outbox = OutboxDispatcher(platform)
    platform.write_sessions.configure(info=dispatcher_info(platform.outbox))
    from creativeflow.datasources.notifications import connect_datasource_events
    from creativeflow.realtime.publishing import connect_job_events
    from creativeflow.stories.access import register_story_subjects
    from creativeflow.stories.notifications import connect_story_events
    from creativeflow.stories.tasks.context import register_task_contexts

    connect_job_events(platform)
    connect_datasource_events(platform)
    # Before anything asks who may read a project's jobs, images or channel.
    register_story_subjects()
    # The story's projects, chapters, scenes, panels and characters as text tasks' contexts.
    register_task_contexts()
    connect_story_events(platform)
    return platform


def _field_cipher(settings: Settings) -> FieldCipher:
    configured = settings.field_encryption_keys
    keys = configured.get_secret_value().split(",") if configured else []
    try:
        return FieldCipher.from_secrets(settings.signing_key(), [k for k in keys if k.strip()])
    except ValueError as exc:
        raise ConfigurationError(f"FIELD_ENCRYPTION_KEYS: {exc}") from exc


def _render_executor(settings: Settings) -> Executor:
    # A Celery worker's pool process is daemonic and may not have children; it is already
    # one process of several, with no requests to keep serving, so it renders in threads.
    if settings.image_render_processes == 0 or multiprocessing.current_process().daemon:
        return ThreadPoolExecutor(max_workers=settings.job_cpu_threads, thread_name_prefix="render")
    # Spawned, not forked: the parent holds an event loop, threads and database connections.
    # Workers start on first use, so a process that renders nothing starts none.
    return ProcessPoolExecutor(
        max_workers=settings.image_render_processes,
        mp_context=multiprocessing.get_context("spawn"),
    )


def _external_issuer(settings: Settings) -> ExternalIssuer | None:
    if not settings.external_tokens_enabled:
        return None
    if not settings.jwt_issuer or not settings.jwt_audience:
        raise ConfigurationError(
            "JWT_PUBLIC_KEY/JWT_JWKS_URL need JWT_ISSUER and JWT_AUDIENCE to be set as well"
        )
    public_key = settings.jwt_public_key.get_secret_value() if settings.jwt_public_key else None
    if public_key:
        public_key = public_key.replace("\\n", "\n")
        # A key that cannot verify RS256 would refuse every external token with a 401; say so
        # at start-up instead.
        try:
            key = RSAAlgorithm(RSAAlgorithm.SHA256).prepare_key(public_key)
        except jwt.PyJWTError as exc:
            raise ConfigurationError(
                f"JWT_PUBLIC_KEY is not a PEM-encoded RSA public key: {exc}"
            ) from exc
        if not isinstance(key, RSAPublicKey):
            raise ConfigurationError(
                "JWT_PUBLIC_KEY must be the issuer's public key, not a private key"
            )
    return ExternalIssuer(
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        public_key=public_key or None,
        jwks=JWKSCache(settings.jwt_jwks_url) if settings.jwt_jwks_url and not public_key else None,
    )
