"""Rate limits through the HTTP API: the default window per user (per address when anonymous),
the generation window on top of it, the RateLimit headers, Redis shared between instances, and
serving on (unlimited) when Redis fails."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from prometheus_client import REGISTRY
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from creativeflow.app import create_app
from creativeflow.http import rate_limits
from creativeflow.http.health import build_health_router
from creativeflow.http.rate_limits import ProcessMemoryStorage, build_rate_limiter, is_exempt
from creativeflow.jobs.models import Job
from creativeflow.platform import Platform, build_platform
from creativeflow.settings import Settings
from tests import factories
from tests.databases import bind_to_transaction
from tests.factories import UserFactory
from tests.http.support import LogCapture, assert_problem, assert_security_headers

ME = "/api/v1/auth/me"
OPENAPI = "/openapi.json"
REDIS_URL = "redis://127.0.0.1:6379/11"  # this module's own Redis database
LIMIT_HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "ratelimit-policy")
IMAGE = {"prompt": "A lighthouse at dusk", "width": 64, "height": 64}
TASK = {"task_type": "visual_prompt", "input": {"description": "A misty pine forest"}}

ClientAt = Callable[[str], httpx.AsyncClient]


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, object]:
    # Hour-long windows: a test never straddles a window edge by more than a few milliseconds.
    return {"rate_limit_default": "5/hour", **getattr(request, "param", {})}


def limits(**overrides: object) -> Any:
    return pytest.mark.parametrize("settings_overrides", [overrides], indirect=True)


@pytest.fixture
def app(platform: Platform) -> FastAPI:
    return create_app(platform.settings, platform=platform)


@pytest.fixture
async def client_at(app: FastAPI) -> AsyncIterator[ClientAt]:
    """`client_at("192.0.2.7")`: a client of the app whose requests come from that address."""
    opened: list[httpx.AsyncClient] = []

    def at(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 50000))
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        opened.append(client)
        return client

    yield at
    for client in opened:
        await client.aclose()


async def new_user(platform: Platform, client_at: ClientAt, address: str) -> factories.TestUser:
    """A registered, logged-in user; the two anonymous requests come from `address`."""
    return await UserFactory(client_at(address), platform).create()


def remaining(response: httpx.Response) -> int:
    return int(response.headers["ratelimit-remaining"])


def assert_limited(response: httpx.Response, *, limit: int, policy: str = "api") -> int:
    """A 429 problem with Retry-After and the RateLimit headers; returns Retry-After."""
    body = assert_problem(response, 429, "RATE_LIMITED")
    assert_security_headers(response)
    assert body["limit_policy"] == policy
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 3600
    assert body["retry_after"] == retry_after
    assert response.headers["ratelimit-limit"] == str(limit)
    assert response.headers["ratelimit-remaining"] == "0"
    assert int(response.headers["ratelimit-reset"]) == retry_after
    return retry_after


# -- the default window ------------------------------------------------------------------------


@limits(rate_limit_default="3/hour")
async def test_the_request_past_the_limit_is_a_429_problem_with_retry_after(
    client_at: ClientAt,
) -> None:
    client = client_at("192.0.2.1")
    answers = [await client.get(path) for path in (OPENAPI, ME, OPENAPI)]
    assert [response.status_code for response in answers] == [200, 401, 200]
    for left, response in zip((2, 1, 0), answers, strict=True):
        assert response.headers["ratelimit-limit"] == "3"
        assert remaining(response) == left
        assert 0 <= int(response.headers["ratelimit-reset"]) <= 3600
        assert response.headers["ratelimit-policy"] == "3;w=3600"

    refused = await client.get(OPENAPI, headers={"X-Correlation-ID": "over-the-limit-1"})
    assert_limited(refused, limit=3)
    assert refused.json()["correlation_id"] == "over-the-limit-1"
    assert "3 per 1 hour" in refused.json()["detail"]
    # Refused requests do not count: the caller is not pushed further back by retrying.
    again = await client.get(OPENAPI)
    assert_limited(again, limit=3)


@limits(rate_limit_default="5/hour")
async def test_every_kind_of_response_carries_the_headers(
    platform: Platform, client_at: ClientAt
) -> None:
    user = await new_user(platform, client_at, "192.0.2.2")  # its first request: GET /me
    me = await user.get(ME)
    assert me.status_code == 200
    assert remaining(me) == 3
    # A direct endpoint (`http/direct.py`) and a validation error are counted and marked too.
    ideas = await user.get(f"/api/v1/{user.id}/ideas")
    assert ideas.status_code == 200 and remaining(ideas) == 2
    invalid = await user.get(f"/api/v1/{user.id}/ideas", params={"limit": "0"})
    assert_problem(invalid, 422)
    assert remaining(invalid) == 1
    missing = await user.get("/api/v1/jobs/" + str(uuid.uuid4()))
    assert_problem(missing, 404)
    assert remaining(missing) == 0
    assert_limited(await user.get(ME), limit=5)


@limits(rate_limit_default="2/hour")
async def test_cors_lets_a_browser_read_a_429_and_its_headers(client_at: ClientAt) -> None:
    client = client_at("192.0.2.3")
    origin = {"Origin": "https://app.example.com"}
    for _ in range(2):
        assert (await client.get(OPENAPI, headers=origin)).status_code == 200
    refused = await client.get(OPENAPI, headers=origin)
    assert_limited(refused, limit=2)
    assert refused.headers["access-control-allow-origin"] == "https://app.example.com"
    exposed = {
        name.strip().lower() for name in refused.headers["access-control-expose-headers"].split(",")
    }
    assert exposed >= {"retry-after", *LIMIT_HEADERS}
    # A preflight is answered before any limit: it is not a request of the API.
    preflight = await client.options(ME, headers={**origin, "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 200


async def test_users_are_counted_apart(platform: Platform, client_at: ClientAt) -> None:
    first = await new_user(platform, client_at, "192.0.2.10")
    second = await new_user(platform, client_at, "192.0.2.11")
    for left in (3, 2, 1, 0):  # the factory's own GET /me was the first
        response = await first.get(ME)
        assert response.status_code == 200 and remaining(response) == left
    assert_limited(await first.get(ME), limit=5)

    # The other user, and anonymous callers at the first user's address, are not affected.
    other = await second.get(ME)
    assert other.status_code == 200 and remaining(other) == 3
    anonymous = await client_at("192.0.2.10").get(OPENAPI)
    assert anonymous.status_code == 200
    assert remaining(anonymous) == 2  # the first user's registration and login, then this one


@limits(rate_limit_default="2/hour")
async def test_anonymous_callers_are_counted_by_address(client_at: ClientAt) -> None:
    near, far = client_at("192.0.2.20"), client_at("192.0.2.21")
    for _ in range(2):
        assert (await near.get(OPENAPI)).status_code == 200
    assert_limited(await near.get(OPENAPI), limit=2)
    # X-Forwarded-For is not believed (uvicorn applies it only for trusted proxies).
    spoofed = await near.get(OPENAPI, headers={"X-Forwarded-For": "198.51.100.99"})
    assert_limited(spoofed, limit=2)
    assert (await far.get(OPENAPI)).status_code == 200


@limits(rate_limit_default="3/hour")
async def test_invalid_credentials_count_against_the_address(
    platform: Platform, client_at: ClientAt
) -> None:
    client = client_at("192.0.2.30")
    made_up = [
        {"X-API-Key": f"cfk_{uuid.uuid4().hex[:12]}_{'x' * 40}"},
        {"Authorization": f"Bearer cfk_{uuid.uuid4().hex[:12]}_{'y' * 40}"},
        {"Authorization": "Bearer not-a-token"},
    ]
    for headers in made_up:
        assert_problem(await client.get(ME, headers=headers), 401)
    # A fresh made-up key is no fresh window: the address is used up.
    fresh = {"X-API-Key": f"cfk_{uuid.uuid4().hex[:12]}_{'z' * 40}"}
    assert_limited(await client.get(ME, headers=fresh), limit=3)


@limits(rate_limit_default="7/hour")
async def test_an_api_key_counts_against_its_owner(platform: Platform, client_at: ClientAt) -> None:
    user = await new_user(platform, client_at, "192.0.2.40")
    created = await user.post("/api/v1/auth/api-keys", json={"name": "deploy script"})
    assert created.status_code == 201, created.text
    assert remaining(created) == 5
    key = created.json()["key"]
    script = client_at("192.0.2.41")

    # Seen for the first time, the key's owner is not known yet: this request is limited by its
    # address, and charged to the owner once authentication has named them.
    first = await script.get(ME, headers={"X-API-Key": key})
    assert first.status_code == 200 and remaining(first) == 6  # the address's window
    counted = [
        await script.get(ME, headers={"X-API-Key": key}),
        await user.get(ME),
        await script.get(ME, headers={"Authorization": f"Bearer {key}"}),
        await user.get(ME),
    ]
    assert [response.status_code for response in counted] == [200] * 4
    assert [remaining(response) for response in counted] == [3, 2, 1, 0]

    # The owner's window is used up: the key is refused from any address, the token too...
    elsewhere = client_at("192.0.2.42")
    assert_limited(await elsewhere.get(ME, headers={"X-API-Key": key}), limit=7)
    assert_limited(await user.get(ME), limit=7)
    # ...while those addresses still serve anonymous callers.
    assert (await elsewhere.get(OPENAPI)).status_code == 200
    assert remaining(await script.get(OPENAPI)) == 5


# -- the generation window ---------------------------------------------------------------------


async def _job_count(session: AsyncSession, user: factories.TestUser) -> int:
    statement = select(func.count()).select_from(Job).where(Job.owner_id == uuid.UUID(user.id))
    return int((await session.execute(statement)).scalar_one())


@limits(rate_limit_default="100/hour", rate_limit_generation="2/hour")
async def test_generation_routes_have_their_own_window_and_a_refusal_submits_nothing(
    platform: Platform, client_at: ClientAt, session: AsyncSession
) -> None:
    user = await new_user(platform, client_at, "192.0.2.50")
    other = await new_user(platform, client_at, "192.0.2.50")
    accepted = [
        await user.post("/api/v1/generate/image", json=IMAGE),
        await user.post("/api/v1/tasks/execute", json=TASK),
    ]
    assert [response.status_code for response in accepted] == [202, 202], accepted[-1].text
    # The headers describe the window closest to running out: the generation window.
    assert [response.headers["ratelimit-limit"] for response in accepted] == ["2", "2"]
    assert [remaining(response) for response in accepted] == [1, 0]
    assert accepted[0].headers["ratelimit-policy"] == "100;w=3600, 2;w=3600"

    for path, body in (("/api/v1/generate/image", IMAGE), ("/api/v1/tasks/execute", TASK)):
        headers = {**user.headers, "Idempotency-Key": f"k-{path}"}
        refused = await user.client.post(path, json=body, headers=headers)
        assert_limited(refused, limit=2, policy="generation")
        assert "generation requests" in refused.json()["detail"]
    assert await _job_count(session, user) == 2

    # Other routes answer as before; every one of those requests counted in the default window.
    me = await user.get(ME)
    assert me.status_code == 200
    assert me.headers["ratelimit-limit"] == "100" and remaining(me) == 100 - 6
    # Another user generates freely.
    assert (await other.post("/api/v1/generate/image", json=IMAGE)).status_code == 202
    assert await _job_count(session, other) == 1


@limits(rate_limit_default="4/hour", rate_limit_generation="10/hour")
async def test_a_generation_request_counts_in_the_default_window_too(
    platform: Platform, client_at: ClientAt, session: AsyncSession
) -> None:
    user = await new_user(platform, client_at, "192.0.2.51")
    for left in (2, 1, 0):
        response = await user.post("/api/v1/generate/image", json=IMAGE)
        assert response.status_code == 202 and remaining(response) == left
    assert_limited(await user.post("/api/v1/generate/image", json=IMAGE), limit=4)
    assert await _job_count(session, user) == 3


# -- what is never limited, and turning it off -------------------------------------------------


@limits(rate_limit_default="1/hour")
async def test_health_probes_and_metrics_are_never_limited(client_at: ClientAt) -> None:
    client = client_at("192.0.2.60")
    for _ in range(3):
        for path in ("/health", "/health/db", "/health/ready", "/api/v1/health"):
            response = await client.get(path)
            assert response.status_code == 200, (path, response.text)
            assert not any(name in response.headers for name in LIMIT_HEADERS)
        for path in ("/api/v1/health/live", "/api/v1/health/ready", "/metrics"):
            assert (await client.get(path)).status_code == 200
    assert (await client.get(OPENAPI)).status_code == 200
    assert_limited(await client.get(OPENAPI), limit=1)


def test_every_health_route_is_exempt() -> None:
    paths = [route.path for route in build_health_router().routes if isinstance(route, APIRoute)]
    assert len(paths) >= 7
    assert all(is_exempt(path) for path in paths), paths
    assert not is_exempt("/api/v1/healthcare") and not is_exempt("/metricsx")


@limits(rate_limit_enabled=False, rate_limit_default="1/hour")
async def test_limits_can_be_turned_off(platform: Platform, client_at: ClientAt) -> None:
    assert platform.rate_limits is None
    client = client_at("192.0.2.70")
    for _ in range(5):
        response = await client.get(OPENAPI)
        assert response.status_code == 200
        assert not any(name in response.headers for name in LIMIT_HEADERS)


@pytest.mark.parametrize("value", ["lots", "0/hour", "10/fortnight", "ten/minute"])
def test_a_limit_that_cannot_be_read_is_refused_at_start(value: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(rate_limit_generation=value, data_dir=tmp_path)
    assert "rate_limit_generation" in str(raised.value)


def test_several_windows_can_be_set() -> None:
    settings = Settings(rate_limit_generation="10/minute; 200 per day")
    limiter = build_rate_limiter(settings)
    assert limiter is not None
    assert [(item.amount, item.get_expiry()) for item in limiter.generation] == [
        (10, 60),
        (200, 86400),
    ]
    assert {item.namespace for item in limiter.generation} == {"generation"}


# -- Redis -------------------------------------------------------------------------------------


@pytest.fixture
async def redis_db() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except RedisError as exc:
        await client.aclose()
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {exc}")
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture
async def second_platform(
    settings: Settings, engine: AsyncEngine, connection: AsyncConnection
) -> AsyncIterator[Platform]:
    """Another API process: its own limiter and Redis connections, the same settings."""
    other = build_platform(settings, engine)
    await bind_to_transaction(other, connection)
    yield other
    if other.redis is not None:
        await other.redis.aclose()
    if other.rate_limits is not None:
        await other.rate_limits.aclose()


@limits(redis_url=REDIS_URL, rate_limit_default="3/hour")
async def test_two_instances_share_the_counts_through_redis(
    redis_db: Redis, platform: Platform, second_platform: Platform, client_at: ClientAt
) -> None:
    first = client_at("192.0.2.80")
    other_app = create_app(second_platform.settings, platform=second_platform)
    transport = httpx.ASGITransport(app=other_app, client=("192.0.2.80", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as second:
        answers = [await first.get(OPENAPI), await second.get(OPENAPI), await first.get(OPENAPI)]
        assert [remaining(response) for response in answers] == [2, 1, 0]
        assert_limited(await second.get(OPENAPI), limit=3)
        assert_limited(await first.get(OPENAPI), limit=3)
    keys = [key.decode() async for key in redis_db.scan_iter("creativeflow:ratelimit*")]
    assert keys and all("address:192.0.2.80" in key for key in keys), keys


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def closed_port() -> int:
    return _free_port()  # nothing listens there once the probe socket is closed


@pytest.fixture
def redis_server_on(tmp_path: Path) -> Iterator[Callable[[int], None]]:
    """`redis_server_on(port)` starts a throwaway Redis server there, stopped after the test."""
    binary = shutil.which("redis-server")
    started: list[subprocess.Popen[bytes]] = []

    def start(port: int) -> None:
        if binary is None:
            pytest.skip("redis-server is not installed")
        started.append(
            subprocess.Popen(  # noqa: S603 - our own redis-server binary
                [
                    binary,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--dir",
                    str(tmp_path),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=10)


async def _wait_for_redis(url: str) -> None:
    client = Redis.from_url(url)
    try:
        for _ in range(100):
            try:
                await client.ping()
                return
            except RedisError:
                await asyncio.sleep(0.05)
        raise AssertionError(f"no Redis answered at {url}")
    finally:
        await client.aclose()


def _storage_errors() -> float:
    value = REGISTRY.get_sample_value("creativeflow_rate_limit_storage_errors_total")
    return value or 0.0


@limits(rate_limit_default="2/hour")
async def test_an_unreachable_redis_leaves_requests_unlimited_and_says_so(
    platform: Platform,
    client_at: ClientAt,
    build_client: Callable[..., Any],
    capture_logs: Callable[[], LogCapture],
    closed_port: int,
) -> None:
    user = await new_user(platform, client_at, "192.0.2.90")
    unreachable = f"redis://127.0.0.1:{closed_port}/11"
    limiter = build_rate_limiter(platform.settings.model_copy(update={"redis_url": unreachable}))
    in_memory, platform.rate_limits = platform.rate_limits, limiter
    errors_before = _storage_errors()
    try:
        async with build_client() as (_app, client):
            logs = capture_logs()
            for _ in range(5):
                response = await client.get(ME, headers=user.headers)
                assert response.status_code == 200, response.text
                assert not any(name in response.headers for name in LIMIT_HEADERS)
                generated = await client.post(
                    "/api/v1/generate/image", json=IMAGE, headers=user.headers
                )
                assert generated.status_code == 202, generated.text
    finally:
        platform.rate_limits = in_memory
        assert limiter is not None
        await limiter.aclose()
    warnings = [line for line in logs.lines() if line["event"] == "rate_limit_storage_unavailable"]
    assert len(warnings) == 1, warnings  # once per outage, not once per request
    assert warnings[0]["level"] == "warning" and warnings[0]["error"] == "ConnectionError"
    # After the failure, Redis is left alone for a few seconds rather than tried per request.
    assert _storage_errors() - errors_before == 1


@limits(rate_limit_default="2/hour")
async def test_limits_apply_again_when_redis_comes_back(
    platform: Platform,
    client_at: ClientAt,
    build_client: Callable[..., Any],
    capture_logs: Callable[[], LogCapture],
    closed_port: int,
    redis_server_on: Callable[[int], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = await new_user(platform, client_at, "192.0.2.91")
    monkeypatch.setattr(rate_limits, "STORAGE_RETRY_SECONDS", 0.0)  # try Redis on every request
    url = f"redis://127.0.0.1:{closed_port}/11"
    limiter = build_rate_limiter(platform.settings.model_copy(update={"redis_url": url}))
    in_memory, platform.rate_limits = platform.rate_limits, limiter
    try:
        async with build_client() as (_app, client):
            logs = capture_logs()
            assert (await client.get(ME, headers=user.headers)).status_code == 200
            redis_server_on(closed_port)
            await _wait_for_redis(url)
            statuses = [(await client.get(ME, headers=user.headers)).status_code for _ in range(3)]
    finally:
        platform.rate_limits = in_memory
        assert limiter is not None
        await limiter.aclose()
    assert statuses == [200, 200, 429]
    events = [line["event"] for line in logs.lines()]
    assert events.count("rate_limit_storage_unavailable") == 1
    assert events.count("rate_limit_storage_recovered") == 1


async def test_the_in_process_counters_are_bounded() -> None:
    storage = ProcessMemoryStorage(max_counters=3)
    for key in ("a", "b", "c", "d"):
        assert await storage.incr(key, 3600) == 1
    assert await storage.incr("d", 3600) == 2
    # The oldest counter made room for the newest; the others are intact.
    assert [await storage.get(key) for key in ("a", "b", "c", "d")] == [0, 1, 1, 2]
    assert await storage.incr("short", 0) == 1
    assert await storage.get("short") == 0  # expired at once


async def test_the_openapi_document_says_which_operations_may_answer_429(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    limited = exempt = 0
    for path, item in document["paths"].items():
        for operation in item.values():
            answer = operation["responses"].get("429")
            if path.startswith(("/health", "/api/v1/health", "/metrics")):
                assert answer is None, path
                exempt += 1
            else:
                assert answer is not None, path
                assert "Retry-After" in answer["headers"]
                assert answer["content"]["application/problem+json"]["schema"]["$ref"] == (
                    "#/components/schemas/Problem"
                )
                limited += 1
    assert limited > 40 and exempt >= 3
