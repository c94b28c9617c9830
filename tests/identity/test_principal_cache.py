"""The principal cache: credentials resolve without the database for a few seconds, and any
identity change committed in this process takes effect at once."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from creativeflow.identity.models import User
from creativeflow.identity.principal import Principal
from creativeflow.identity.principal_cache import PrincipalCache
from creativeflow.platform import Platform
from tests.factories import UserFactory


def test_entries_expire_and_the_oldest_are_evicted() -> None:
    cache = PrincipalCache(ttl_seconds=60, max_entries=2)
    principals = [
        Principal(
            user_id=uuid.uuid4(), username=f"u{i}", roles=frozenset(), permissions=frozenset()
        )
        for i in range(3)
    ]
    for i, principal in enumerate(principals):
        cache.put(i, principal)
    assert cache.get(0) is None  # evicted: over max_entries
    assert cache.get(1) is principals[1]
    assert cache.get(2) is principals[2]
    disabled = PrincipalCache(ttl_seconds=0)
    disabled.put("k", principals[0])
    assert disabled.get("k") is None


def _principal(name: str = "someone") -> Principal:
    return Principal(
        user_id=uuid.uuid4(), username=name, roles=frozenset(), permissions=frozenset()
    )


async def test_concurrent_misses_of_one_credential_load_it_once() -> None:
    cache = PrincipalCache(ttl_seconds=60)
    loads: list[int] = []
    released = asyncio.Event()
    principal = _principal()

    async def load() -> Principal:
        loads.append(1)
        await released.wait()  # still loading while the other requests arrive
        return principal

    waiting = [asyncio.create_task(cache.get_or_load("token", load)) for _ in range(20)]
    await asyncio.sleep(0.01)
    released.set()
    assert all(result is principal for result in await asyncio.gather(*waiting))
    assert len(loads) == 1
    assert await cache.get_or_load("token", load) is principal  # cached now
    assert len(loads) == 1


async def test_when_the_first_load_fails_each_waiter_gets_its_own_answer() -> None:
    cache = PrincipalCache(ttl_seconds=60)
    released = asyncio.Event()
    principal = _principal()
    attempts: list[str] = []

    async def failing() -> Principal:
        attempts.append("first")
        await released.wait()
        raise RuntimeError("database went away")

    async def working() -> Principal:
        attempts.append("again")
        return principal

    first = asyncio.create_task(cache.get_or_load("token", failing))
    await asyncio.sleep(0)
    second = asyncio.create_task(cache.get_or_load("token", working))
    await asyncio.sleep(0.01)
    released.set()
    with pytest.raises(RuntimeError):
        await first
    assert await second is principal
    assert attempts == ["first", "again"]


async def test_a_disabled_cache_loads_every_time() -> None:
    cache = PrincipalCache(ttl_seconds=0)
    loads: list[int] = []

    async def load() -> Principal:
        loads.append(1)
        return _principal()

    await asyncio.gather(*(cache.get_or_load("token", load) for _ in range(3)))
    assert len(loads) == 3


async def test_a_committed_identity_change_clears_the_cache_at_once(
    users: UserFactory, platform: Platform, session: AsyncSession
) -> None:
    user = await users.create()
    assert (await user.get("/api/v1/auth/me")).status_code == 200  # now cached

    await session.execute(update(User).where(User.id == uuid.UUID(user.id)).values(is_active=False))
    await session.commit()

    response = await user.get("/api/v1/auth/me")
    assert response.status_code == 401
    assert response.json()["code"] == "ACCOUNT_DISABLED"


@pytest.mark.parametrize("settings_overrides", [{"principal_cache_seconds": 0.3}])
async def test_a_change_made_elsewhere_is_seen_within_the_ttl(
    users: UserFactory, connection: AsyncConnection
) -> None:
    user = await users.create()
    assert (await user.get("/api/v1/auth/me")).status_code == 200

    # Another process's write: plain SQL on the connection, no ORM session of ours sees it.
    await connection.execute(
        text("UPDATE users SET is_active = :inactive WHERE id = :id"),
        {
            "inactive": False,
            "id": uuid.UUID(user.id).hex
            if connection.dialect.name == "sqlite"
            else uuid.UUID(user.id),
        },
    )
    cached = await user.get("/api/v1/auth/me")
    assert cached.status_code == 200  # still within the TTL: served from the cache

    await asyncio.sleep(0.35)
    response = await user.get("/api/v1/auth/me")
    assert response.status_code == 401
    assert response.json()["code"] == "ACCOUNT_DISABLED"
