"""Revoked sessions mirrored to Redis (when configured) so every worker sees a logout at once.

The database stays the source of truth; Redis only answers "is this session revoked?" without a
database round trip and survives restarts of the API processes.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from redis.asyncio import Redis


class RevocationList(Protocol):
    async def revoke(self, session_id: uuid.UUID, ttl_seconds: int) -> None: ...
    async def is_revoked(self, session_id: uuid.UUID) -> bool: ...
    async def close(self) -> None: ...


class NoRevocationMirror:
    """Embedded mode: the database answers alone."""

    async def revoke(self, session_id: uuid.UUID, ttl_seconds: int) -> None:
        return None

    async def is_revoked(self, session_id: uuid.UUID) -> bool:
        return False

    async def close(self) -> None:
        return None


class RedisRevocationList:
    def __init__(self, redis: Redis, *, prefix: str = "creativeflow:revoked-session:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def revoke(self, session_id: uuid.UUID, ttl_seconds: int) -> None:
        await self._redis.set(f"{self._prefix}{session_id}", "1", ex=max(1, ttl_seconds))

    async def is_revoked(self, session_id: uuid.UUID) -> bool:
        return bool(await self._redis.exists(f"{self._prefix}{session_id}"))

    async def close(self) -> None:
        await self._redis.aclose()
