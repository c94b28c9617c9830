"""Request rate limits (graphic-novel-api.md "Rate Limiting"): every request of a caller counts
in the default window (RATE_LIMIT_DEFAULT, 1000 an hour), and a generation request counts in
the generation window (RATE_LIMIT_GENERATION, 10 a minute) as well.

Who the caller is, found without the database: the platform's own access token names its user
once verified (the verifier keeps verified tokens, so the route's authentication does not pay
twice); an API key or an external issuer's token counts against the user it authenticated as
the last time this process saw it. A credential seen for the first time, or none, counts
against the client address: the ASGI client, which uvicorn rewrites from X-Forwarded-For only
for the proxies FORWARDED_ALLOW_IPS trusts. Such a first request is charged to its owner too,
once authentication has named them.

Strategy: `limits`' sliding window counter. Two counters per caller and window (the moving
window keeps a timestamp per request: 1000 entries per user in Redis for the hourly window),
and no double burst at a window edge (a fixed window lets 2000 requests through in a minute
astride the hour).

Storage: this process's memory, or Redis when REDIS_URL is set, so that every worker shares
the counts. The limit protects the service; it is not billing: while Redis fails, requests are
served unlimited (fail-open) and a warning is logged, rather than every request failing.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage, SlidingWindowCounterSupport, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from limits.storage.base import TimestampedSlidingWindow
from prometheus_client import Counter
from redis.asyncio import ConnectionPool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from creativeflow.http.problems import problem_response
from creativeflow.identity.service import API_KEY_PREFIX
from creativeflow.settings import Settings
from creativeflow.shared.core.exceptions import AuthenticationException, RateLimitedException
from creativeflow.shared.core.logging import get_logger
from creativeflow.shared.security.auth import TokenVerifier

DEFAULT_POLICY = "api"
GENERATION_POLICY = "generation"
# Probes and the Prometheus scrape are never limited: a busy monitor must not lock itself out.
EXEMPT_PATH_PREFIXES = ("/health", "/api/v1/health", "/metrics")
# Every API request waits on the storage: past this, Redis is taken as failing, no retries.
STORAGE_TIMEOUT_SECONDS = 0.5
# After a storage failure requests pass unlimited for this long before Redis is tried again,
# so that a dead Redis costs one slow request every few seconds, not one per request.
STORAGE_RETRY_SECONDS = 5.0
# The windows charged to the request, in the ASGI scope's state (what `request.state` reads).
_WINDOWS_STATE = "rate_limit_windows"

_log = get_logger("creativeflow.rate_limits")
REFUSED = Counter(
    "creativeflow_rate_limited_requests_total", "Requests refused by a rate limit", ["policy"]
)
STORAGE_ERRORS = Counter(
    "creativeflow_rate_limit_storage_errors_total",
    "Rate limit storage failures (requests were served unlimited)",
)


def parse_limits(text: str, policy: str) -> list[RateLimitItem]:
    """`1000/hour`, `10 per minute`, or several (`10/minute;200/day`): all of them apply.
    (Settings has checked the text.)"""
    items = parse_many(text)
    # The policy name is the item's namespace, so the windows of two policies never share a key.
    return [type(item)(item.amount, item.multiples, namespace=policy) for item in items]


@dataclass(frozen=True, slots=True)
class Window:
    """One window's state right after the request was counted in it (or refused)."""

    item: RateLimitItem
    allowed: bool
    remaining: int
    reset_seconds: int

    @property
    def policy(self) -> str:
        return self.item.namespace

    @property
    def retry_after(self) -> int:
        return max(1, self.reset_seconds)


class ProcessMemoryStorage(Storage, SlidingWindowCounterSupport, TimestampedSlidingWindow):
    """This process's counters, for the sliding window counter (a `limits` async storage).

    Not `limits`' own MemoryStorage: after nearly every increment it starts a task that walks
    every key to expire old ones, which with 10,000 callers in the window costs ~0.75 ms a
    request (bench: 30 us with one caller, 760 us with 10,000). Here nothing awaits between
    reading and writing a counter (one event loop: each call is atomic as it stands), expired
    counters go in a sweep at most once a minute, and the number of counters is bounded (the
    oldest go first: a flood of new addresses cannot exhaust memory).
    """

    SWEEP_SECONDS = 60.0

    def __init__(self, *, max_counters: int = 200_000) -> None:
        super().__init__()
        self.max_counters = max_counters
        # key -> (count, expires at); insertion order is creation order, for eviction.
        self._counters: dict[str, tuple[int, float]] = {}
        self._next_sweep = time.time() + self.SWEEP_SECONDS

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError  # nothing here fails; the base class asks

    def _count(self, key: str, now: float) -> int:
        entry = self._counters.get(key)
        if entry is None:
            return 0
        if entry[1] <= now:
            del self._counters[key]
            return 0
        return entry[0]

    def _add(self, key: str, expiry: float, amount: int, now: float) -> int:
        if now >= self._next_sweep:
            self._next_sweep = now + self.SWEEP_SECONDS
            for stale in [k for k, (_, expires) in self._counters.items() if expires <= now]:
                del self._counters[stale]
        entry = self._counters.get(key)
        if entry is None or entry[1] <= now:
            entry = (amount, now + expiry)
            self._counters.pop(key, None)
            while len(self._counters) >= self.max_counters:
                del self._counters[next(iter(self._counters))]
        else:
            entry = (entry[0] + amount, entry[1])
        self._counters[key] = entry
        return entry[0]

    def _window(self, key: str, expiry: int, now: float) -> tuple[int, float, int, float]:
        # The sliding window counter's inputs, as `limits` defines them: the previous and the
        # current clock-aligned window's counts, and how much of each is still ahead.
        previous_key, current_key = self.sliding_window_keys(key, expiry, now)
        previous = self._count(previous_key, now)
        current = self._count(current_key, now)
        previous_ttl = (1 - (((now - expiry) / expiry) % 1)) * expiry if previous else 0.0
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        return previous, previous_ttl, current, current_ttl

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self._add(key, expiry, amount, time.time())

    async def get(self, key: str) -> int:
        return self._count(key, time.time())

    async def get_expiry(self, key: str) -> float:
        now = time.time()
        entry = self._counters.get(key)
        return entry[1] if entry is not None and entry[1] > now else now

    async def check(self) -> bool:
        return True

    async def reset(self) -> int | None:
        count = len(self._counters)
        self._counters.clear()
        return count

    async def clear(self, key: str) -> None:
        self._counters.pop(key, None)

    async def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        now = time.time()
        previous, previous_ttl, current, _ = self._window(key, expiry, now)
        if (
            amount > limit
            or math.floor(previous * previous_ttl / expiry + current) + amount > limit
        ):
            return False
        # The current window's counter outlives it by one window: it is the next one's previous.
        self._add(self.sliding_window_keys(key, expiry, now)[1], 2 * expiry, amount, now)
        return True

    async def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        return self._window(key, expiry, time.time())

    async def clear_sliding_window(self, key: str, expiry: int) -> None:
        for window_key in self.sliding_window_keys(key, expiry, time.time()):
            self._counters.pop(window_key, None)


class RateLimiter:
    """Counts requests in sliding windows; steps aside while its storage fails."""

    def __init__(
        self,
        storage: Storage,
        *,
        default: Sequence[RateLimitItem],
        generation: Sequence[RateLimitItem],
        pool: ConnectionPool | None = None,
    ) -> None:
        self.default = list(default)
        self.generation = list(generation)
        self._strategy = SlidingWindowCounterRateLimiter(storage)
        self._pool = pool
        self._paused_until = 0.0
        self._failing = False

    async def charge(self, items: Sequence[RateLimitItem], key: str) -> list[Window] | None:
        """Count one request of `key` in each window of `items`, stopping at the first that
        refuses it (the windows before it keep the request: `limits` has no transaction over
        several). None when the storage failed: the request goes unlimited."""
        if self._paused_until and time.monotonic() < self._paused_until:
            return None
        windows: list[Window] = []
        try:
            for item in items:
                allowed = await self._strategy.hit(item, key)
                stats = await self._strategy.get_window_stats(item, key)
                reset = max(0, math.ceil(stats.reset_time - time.time()))
                windows.append(Window(item, allowed, stats.remaining, reset))
                if not allowed:
                    REFUSED.labels(item.namespace).inc()
                    break
        except (StorageError, OSError) as exc:
            self._storage_failed(exc)
            return None
        if self._failing:
            self._failing = False
            self._paused_until = 0.0
            # At the level of the outage's warning, so whoever saw one sees the other.
            _log.warning("rate_limit_storage_recovered", action="requests are rate limited again")
        return windows

    def _storage_failed(self, exc: Exception) -> None:
        STORAGE_ERRORS.inc()
        self._paused_until = time.monotonic() + STORAGE_RETRY_SECONDS
        if not self._failing:  # once per outage, not once per request
            self._failing = True
            cause = exc.storage_error if isinstance(exc, StorageError) else exc
            _log.warning(
                "rate_limit_storage_unavailable",
                error=type(cause).__name__,
                detail=str(cause),
                action=f"requests are not rate limited; retrying in {STORAGE_RETRY_SECONDS:g}s",
            )

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


def build_rate_limiter(settings: Settings) -> RateLimiter | None:
    """The limiter the settings ask for; None when RATE_LIMIT_ENABLED is false."""
    if not settings.rate_limit_enabled:
        return None
    default = parse_limits(settings.rate_limit_default, DEFAULT_POLICY)
    generation = parse_limits(settings.rate_limit_generation, GENERATION_POLICY)
    if not settings.redis_url:
        return RateLimiter(ProcessMemoryStorage(), default=default, generation=generation)
    # Our own pool of the project's redis client (limits' "redispy" bridge), so that a failing
    # Redis fails fast: no retries, a short timeout (the platform's client retries for seconds).
    pool = ConnectionPool.from_url(
        settings.redis_url,
        socket_timeout=STORAGE_TIMEOUT_SECONDS,
        socket_connect_timeout=STORAGE_TIMEOUT_SECONDS,
    )
    options: dict[str, Any] = {"connection_pool": pool}
    storage = RedisStorage(
        _limits_uri(settings.redis_url),
        implementation="redispy",
        wrap_exceptions=True,
        key_prefix=f"{settings.service_name}:ratelimit",
        **options,
    )
    return RateLimiter(storage, default=default, generation=generation, pool=pool)


def _limits_uri(redis_url: str) -> str:
    # limits names its async Redis storage `async+redis://`, `async+rediss://`, and
    # `async+redis+unix://` for redis-py's `unix://`.
    if redis_url.startswith("unix://"):
        return "async+redis+" + redis_url
    return "async+" + redis_url


# -- who is asking -------------------------------------------------------------------------------


def user_key(user_id: uuid.UUID | str) -> str:
    return f"user:{user_id}"


@dataclass(frozen=True, slots=True)
class Caller:
    key: str
    # A credential whose owner this process does not know yet (the request counts against the
    # address); learnt from the request's authentication.
    unresolved: Hashable | None = None


class CallerKeys:
    """The rate-limit key of a request, from its credential or its client address.

    A credential's owner never changes (an API key belongs to one user; an external subject
    maps to one local user), so what authentication once found is kept, bounded, with no expiry.
    Only credentials that authenticated are kept: made-up keys never fill it.
    """

    def __init__(self, verifier: TokenVerifier, *, max_entries: int = 10_000) -> None:
        self.verifier = verifier
        self.max_entries = max_entries
        self._owners: OrderedDict[Hashable, str] = OrderedDict()

    async def identify(self, scope: Scope) -> Caller:
        # The credential `http.auth` authenticates: an X-API-Key header first, else the bearer
        # token (an API key or an access token), each the first of its header.
        authorization: bytes | None = None
        api_key: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"authorization" and authorization is None:
                authorization = value
            elif name == b"x-api-key" and api_key is None:
                api_key = value
        if api_key:
            return self._known(("api_key", hashlib.sha256(api_key).digest()), scope)
        if authorization is None:
            return Caller(_address_key(scope))
        scheme, _, param = authorization.decode("latin-1").partition(" ")
        bearer = param.strip()
        if scheme.lower() != "bearer" or not bearer:
            return Caller(_address_key(scope))
        if bearer.startswith(API_KEY_PREFIX):
            return self._known(("api_key", hashlib.sha256(bearer.encode()).digest()), scope)
        try:
            identity = await self.verifier.identity(bearer)
        except AuthenticationException:
            return Caller(_address_key(scope))  # the route answers 401
        if identity.external_subject is None:
            return Caller(user_key(identity.id))
        return self._known(("external", identity.issuer, identity.external_subject), scope)

    def _known(self, credential: Hashable, scope: Scope) -> Caller:
        owner = self._owners.get(credential)
        if owner is None:
            return Caller(_address_key(scope), unresolved=credential)
        self._owners.move_to_end(credential)
        return Caller(owner)

    def learn(self, caller: Caller, scope: Scope) -> str | None:
        """The owner the request's authentication found for its unresolved credential."""
        state = scope.get("state") or {}
        user_id = state.get("user_id")  # set by `http.auth` once it has authenticated
        if caller.unresolved is None or not isinstance(user_id, str):
            return None
        owner = user_key(user_id)
        self._owners[caller.unresolved] = owner
        self._owners.move_to_end(caller.unresolved)
        while len(self._owners) > self.max_entries:
            self._owners.popitem(last=False)
        return owner


def _address_key(scope: Scope) -> str:
    client = scope.get("client")
    return f"address:{client[0] if client else 'unknown'}"


def is_exempt(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in EXEMPT_PATH_PREFIXES)


# -- headers and refusals ------------------------------------------------------------------------


def _reported(windows: Sequence[Window]) -> Window:
    """The window the headers describe: the one that refused, else the closest to running out
    (draft-ietf-httpapi-ratelimit-headers: several policies, report the most restrictive)."""
    refused = [window for window in windows if not window.allowed]
    if refused:
        return max(refused, key=lambda window: window.reset_seconds)
    return min(windows, key=lambda window: (window.remaining, -window.reset_seconds))


def rate_limit_headers(windows: Sequence[Window]) -> dict[str, str]:
    """`RateLimit-Limit`, `-Remaining`, `-Reset` (seconds) and `-Policy` (every window that
    applied, as `quota;w=seconds`), in the IETF draft's form."""
    reported = _reported(windows)
    return {
        "RateLimit-Limit": str(reported.item.amount),
        "RateLimit-Remaining": str(reported.remaining),
        "RateLimit-Reset": str(
            reported.reset_seconds if reported.allowed else reported.retry_after
        ),
        "RateLimit-Policy": ", ".join(
            f"{window.item.amount};w={window.item.get_expiry()}" for window in windows
        ),
    }


def _refusal(window: Window) -> RateLimitedException:
    what = "generation requests" if window.policy == GENERATION_POLICY else "requests"
    return RateLimitedException(
        f"Too many {what}: the limit is {window.item}; retry in {window.retry_after} seconds",
        retry_after=window.retry_after,
        data={"retry_after": window.retry_after, "limit_policy": window.policy},
    )


class RateLimitMiddleware:
    """Counts every HTTP request (but the probes) in the default window before any work is
    done, refuses it with 429 over the limit, and adds the RateLimit headers to the response.

    Pure ASGI, inside the CORS and request-context middlewares (so a 429 carries the
    correlation id, the security and CORS headers, and is logged), outside the direct
    endpoints and the router: streaming responses pass through untouched.
    """

    def __init__(self, app: ASGIApp, *, limiter: RateLimiter, callers: CallerKeys) -> None:
        self.app = app
        self.limiter = limiter
        self.callers = callers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        caller = await self.callers.identify(scope)
        windows = await self.limiter.charge(self.limiter.default, caller.key)
        if windows is None:  # the storage is failing: serve the request unlimited
            await self.app(scope, receive, send)
            return
        # The generation dependency adds its windows to this same list.
        scope.setdefault("state", {})[_WINDOWS_STATE] = windows
        refused = next((window for window in windows if not window.allowed), None)
        if refused is not None:
            exc = _refusal(refused)
            response = problem_response(
                exc.status_code,
                exc.detail,
                code=exc.code,
                title=exc.title,
                data=exc.data,
                headers={**exc.headers, **rate_limit_headers(windows)},
            )
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [
                    (name.lower().encode(), value.encode())
                    for name, value in rate_limit_headers(windows).items()
                ]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
        owner = self.callers.learn(caller, scope)
        if owner is not None:
            # Its owner was not known when it arrived: count it against them now as well.
            await self.limiter.charge(self.limiter.default, owner)


async def charge_generation(request: Request, user_id: uuid.UUID) -> None:
    """Count a generation request of `user_id` in the generation window: 429 over it. Call it
    from a route dependency after authentication and before any work."""
    limiter: RateLimiter | None = request.app.state.platform.rate_limits
    if limiter is None:
        return
    windows = await limiter.charge(limiter.generation, user_key(user_id))
    if windows is None:
        return
    charged: list[Window] | None = getattr(request.state, _WINDOWS_STATE, None)
    if charged is not None:  # the middleware reports both windows' state
        charged.extend(windows)
    refused = next((window for window in windows if not window.allowed), None)
    if refused is not None:
        raise _refusal(refused)


def install_rate_limit_openapi(app: Any) -> None:
    """Every limited operation may answer 429: say so in the OpenAPI document, with the
    headers a client reads to wait (the probes and /metrics are never limited)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        first = app.openapi_schema is None
        document: dict[str, Any] = generate()
        if first:
            _document_429(document)
        return document

    app.openapi = openapi


def _document_429(document: dict[str, Any]) -> None:
    problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
    integer = {"schema": {"type": "integer"}}
    for path, item in document.get("paths", {}).items():
        if is_exempt(path):
            continue
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            response = operation["responses"].setdefault(
                "429",
                {
                    "description": "Too Many Requests",
                    "content": {"application/problem+json": problem},
                },
            )
            response.setdefault("description", "Too Many Requests")
            response["headers"] = {
                "Retry-After": {"description": "Seconds to wait", **integer},
                "RateLimit-Limit": {"description": "Requests the window allows", **integer},
                "RateLimit-Remaining": {"description": "Requests left in it", **integer},
                "RateLimit-Reset": {"description": "Seconds until it resets", **integer},
            }
