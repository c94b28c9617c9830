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
