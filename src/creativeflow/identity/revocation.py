"""Revoked sessions mirrored to Redis (when configured) so every worker sees a logout at once.

The database stays the source of truth and is always checked as well; Redis answers "is this
session revoked?" across workers and survives restarts of the API processes. Because every check
also asks the database, a Redis outage degrades to database-only checks (logged) instead of
failing every authenticated request or losing a logout.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from creativeflow.shared.core.logging import get_logger

_log = get_logger("creativeflow.identity.revocation")


class RevocationList(Protocol):
    async def revoke(self, session_id: uuid.UUID, ttl_seconds: int) -> None: ...
    async def is_revoked(self, session_id: uuid.UUID) -> bool: ...


class NoRevocationMirror:
    """Embedded mode: the database answers alone."""

    async def revoke(self, session_id: uuid.UUID, ttl_seconds: int) -> None:
        return None

    async def is_revoked(self, session_id: uuid.UUID) -> bool:
        return False


class RedisRevocationList:
    """Uses the platform's Redis client; the platform owns and closes it."""

    def __init__(self, redis: Redis, *, prefix: str = "creativeflow:revoked-session:") -> None:
        self._redis = redis
        self._prefix = prefix

    def key(self, session_id: uuid.UUID) -> str:
        return f"{self._prefix}{session_id}"

    async def revoke(self, session_id: uuid.UUID, ttl_seconds: int) -> None:
        try:
            await self._redis.set(self.key(session_id), "1", ex=max(1, ttl_seconds))
        except RedisError as exc:  # the database revocation still stands
            _log.warning("revocation_mirror_unavailable", operation="revoke", error=str(exc))

    async def is_revoked(self, session_id: uuid.UUID) -> bool:
        try:
            return bool(await self._redis.exists(self.key(session_id)))
        except RedisError as exc:  # the caller checks the database as well
            _log.warning("revocation_mirror_unavailable", operation="check", error=str(exc))
            return False
