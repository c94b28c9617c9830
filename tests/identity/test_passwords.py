"""Password storage: argon2id with OWASP's parameters, old bcrypt (and weaker argon2) hashes
upgraded at login, unknown users cost a verification too, and hashing never blocks the event
loop."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import bcrypt
import httpx
import pytest
from argon2 import PasswordHasher
from argon2.low_level import Type
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.identity.models import User
from creativeflow.identity.passwords import hash_password, verify_password
from tests.factories import DEFAULT_PASSWORD, UserFactory

LOGIN = "/api/v1/auth/login"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """OWASP's parameters, as deployed (the suite's other modules hash at a test cost)."""
    return {"password_hash_memory_kib": 19 * 1024, "password_hash_time_cost": 2}


OWASP_ARGON2ID = "$argon2id$v=19$m=19456,t=2,p=1$"


async def _stored_hash(session: AsyncSession, user_id: str) -> str:
    value = (
        await session.execute(select(User.password_hash).where(User.id == uuid.UUID(user_id)))
    ).scalar_one()
    await session.commit()
    assert value is not None
    return value


async def _set_hash(session: AsyncSession, user_id: str, password_hash: str) -> None:
    await session.execute(
        update(User).where(User.id == uuid.UUID(user_id)).values(password_hash=password_hash)
    )
    await session.commit()


async def _login(client: httpx.AsyncClient, login: str, password: str) -> httpx.Response:
    return await client.post(LOGIN, json={"login": login, "password": password})


async def test_stored_hash_is_argon2id_with_owasp_parameters(
    users: UserFactory, session: AsyncSession
) -> None:
    user = await users.create()

    stored = await _stored_hash(session, user.id)

    assert stored.startswith(OWASP_ARGON2ID), stored
    assert DEFAULT_PASSWORD not in stored
    other = await users.create()
    assert await _stored_hash(session, other.id) != stored  # salted


async def test_changed_password_is_stored_as_argon2id(
    users: UserFactory, session: AsyncSession
) -> None:
    user = await users.create()
    before = await _stored_hash(session, user.id)

    response = await user.post(
        "/api/v1/auth/change-password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": "Fresh-Password-55$"},
    )

    assert response.status_code == 204
    after = await _stored_hash(session, user.id)
    assert after != before and after.startswith(OWASP_ARGON2ID)


async def test_a_bcrypt_user_can_log_in_and_is_rehashed_to_argon2id(
    client: httpx.AsyncClient, users: UserFactory, session: AsyncSession
) -> None:
    user = await users.create()
    legacy = bcrypt.hashpw(DEFAULT_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    await _set_hash(session, user.id, legacy)
    assert (await _login(client, user.username, "Wrong-Password-1!")).status_code == 401
    assert await _stored_hash(session, user.id) == legacy  # a failure changes nothing

    response = await _login(client, user.username, DEFAULT_PASSWORD)

    assert response.status_code == 200, response.text
    upgraded = await _stored_hash(session, user.id)
    assert upgraded.startswith(OWASP_ARGON2ID)
    # The upgraded hash works, and keeps working without being rewritten again.
    assert (await _login(client, user.email, DEFAULT_PASSWORD)).status_code == 200
    assert await _stored_hash(session, user.id) == upgraded


async def test_a_weaker_argon2_hash_is_upgraded_at_login(
    client: httpx.AsyncClient, users: UserFactory, session: AsyncSession
) -> None:
    user = await users.create()
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID).hash(
        DEFAULT_PASSWORD
    )
    await _set_hash(session, user.id, weak)

    assert (await _login(client, user.username, DEFAULT_PASSWORD)).status_code == 200

    assert (await _stored_hash(session, user.id)).startswith(OWASP_ARGON2ID)


@pytest.mark.parametrize("stored", ["", "not-a-hash", "$2b$12$truncated", "$argon2id$v=19$junk"])
async def test_an_unreadable_stored_hash_never_matches(
    client: httpx.AsyncClient, users: UserFactory, session: AsyncSession, stored: str
) -> None:
    user = await users.create()
    await _set_hash(session, user.id, stored)

    response = await _login(client, user.username, DEFAULT_PASSWORD)

    assert response.status_code == 401
    assert response.json()["code"] == "INVALID_CREDENTIALS"


async def test_verify_password_results() -> None:
    stored = await hash_password(DEFAULT_PASSWORD)

    assert await verify_password(DEFAULT_PASSWORD, stored) == (True, None)
    assert await verify_password("Wrong-Password-1!", stored) == (False, None)
    assert await verify_password(DEFAULT_PASSWORD, None) == (False, None)
    legacy = bcrypt.hashpw(DEFAULT_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    matches, new_hash = await verify_password(DEFAULT_PASSWORD, legacy)
    assert matches is True and new_hash is not None and new_hash.startswith(OWASP_ARGON2ID)


# -- timing: unknown users cost a verification -------------------------------------------------


async def _median_seconds(action: Callable[[], Awaitable[Any]], runs: int = 5) -> float:
    await action()  # warm up
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


async def test_verifying_against_no_hash_costs_as_much_as_a_real_verification() -> None:
    stored = await hash_password(DEFAULT_PASSWORD)

    real = await _median_seconds(lambda: verify_password("Wrong-Password-1!", stored))
    missing = await _median_seconds(lambda: verify_password("Wrong-Password-1!", None))
    unreadable = await _median_seconds(lambda: verify_password("Wrong-Password-1!", "junk"))

    assert real > 0.005, "argon2id with m=19 MiB, t=2 should take milliseconds"
    assert missing >= 0.3 * real, (missing, real)
    assert unreadable >= 0.3 * real, (unreadable, real)


async def test_login_of_an_unknown_user_takes_as_long_as_a_wrong_password(
    client: httpx.AsyncClient, users: UserFactory
) -> None:
    user = await users.create()

    async def wrong_password() -> None:
        assert (await _login(client, user.username, "Wrong-Password-1!")).status_code == 401

    async def unknown_user() -> None:
        response = await _login(client, f"nobody-{uuid.uuid4().hex[:8]}", "Wrong-Password-1!")
        assert response.status_code == 401

    # Four attempts each stay under the account throttle (five failures).
    known = await _median_seconds(wrong_password, runs=3)
    unknown = await _median_seconds(unknown_user, runs=3)

    assert unknown >= 0.3 * known, (unknown, known)


# -- hashing runs off the event loop -----------------------------------------------------------


async def _longest_loop_stall(work: Awaitable[Any]) -> tuple[float, float, int]:
    """(longest gap between ticks of another coroutine, duration of `work`, ticks) while
    `work` runs."""
    ticks: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    started = time.perf_counter()
    try:
        await work
    finally:
        duration = time.perf_counter() - started
        done.set()
        await task
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    return max(gaps, default=duration), duration, len(ticks)


async def test_hashing_does_not_block_the_event_loop() -> None:
    stall, duration, ticks = await _longest_loop_stall(hash_password(DEFAULT_PASSWORD))

    assert duration > 0.005
    assert ticks >= 3, (ticks, duration)
    assert stall < duration / 2, (stall, duration)


async def test_verification_does_not_block_the_event_loop() -> None:
    stored = await hash_password(DEFAULT_PASSWORD)

    stall, duration, ticks = await _longest_loop_stall(verify_password(DEFAULT_PASSWORD, stored))

    assert ticks >= 3, (ticks, duration)
    assert stall < duration / 2, (stall, duration)


async def test_other_requests_make_progress_while_a_login_hashes(
    client: httpx.AsyncClient, users: UserFactory
) -> None:
    user = await users.create()

    stall, duration, ticks = await _longest_loop_stall(
        _login(client, user.username, DEFAULT_PASSWORD)
    )

    assert ticks >= 3, (ticks, duration)
    assert stall < duration / 2, (stall, duration)


def test_production_refuses_a_cost_below_owasps(tmp_path: Any) -> None:
    from creativeflow.settings import ConfigurationError, Settings

    values: dict[str, Any] = {
        "environment": "production",
        "secret_key": "x" * 40,
        "database_url": "sqlite+aiosqlite:///x.db",
        "allowed_origins": ["https://app.example.com"],
        "data_dir": tmp_path,
    }
    assert Settings(_env_file=None, **values).password_hash_memory_kib == 19 * 1024
    with pytest.raises(ConfigurationError, match="PASSWORD_HASH_MEMORY_KIB"):
        Settings(_env_file=None, **values, password_hash_memory_kib=64)
