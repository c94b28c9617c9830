"""Throttling of failed logins, per account and per client address (`limits`, memory or Redis)."""

from __future__ import annotations

import time

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from creativeflow.shared.core.exceptions import RateLimitedException


def limits_storage(redis_url: str | None) -> Storage:
    """Redis when configured (shared by every worker), else this process's memory."""
    if redis_url:
        storage = storage_from_string("async+" + redis_url)
        assert isinstance(storage, Storage)
        return storage
    return MemoryStorage()


class LoginThrottle:
    def __init__(
        self, storage: Storage, *, per_account: int, per_address: int, window_seconds: int
    ) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._account = RateLimitItemPerSecond(per_account, window_seconds, namespace="login-acct")
        self._address = RateLimitItemPerSecond(per_address, window_seconds, namespace="login-addr")

    async def check(self, account: str, address: str | None) -> None:
        """Raise 429 while either the account or the address has failed too often."""
        checks = [(self._account, account.lower())]
        if address is not None:
            checks.append((self._address, address))
        for item, key in checks:
            if not await self._limiter.test(item, key):
                stats = await self._limiter.get_window_stats(item, key)
                retry_after = int(stats.reset_time - time.time()) + 1
                raise RateLimitedException(
                    "Too many failed sign-in attempts; try again later", retry_after=retry_after
                )

    async def record_failure(self, account: str, address: str | None) -> None:
        await self._limiter.hit(self._account, account.lower())
        if address is not None:
            await self._limiter.hit(self._address, address)

    async def clear_account(self, account: str) -> None:
        await self._limiter.clear(self._account, account.lower())
