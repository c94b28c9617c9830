"""A short-lived, in-process cache of resolved principals.

Resolving a credential costs database round trips (session, user, roles) on every request. The
cache keeps each credential's Principal for a few seconds. Correctness rules:

- Any committed write to an identity table in this process (logout, password change, role or
  user change, API key revocation) clears every cache of the process at once.
- Other processes learn of a revocation through Redis when it is configured (checked on every
  request, before the cache), and of anything else within `ttl_seconds`.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, UOWTransaction

from creativeflow.identity.models import ApiKey, AuthSession, Role, User, UserRole
from creativeflow.identity.principal import Principal

_IDENTITY_TABLES = frozenset(
    model.__tablename__ for model in (User, Role, UserRole, AuthSession, ApiKey)
)
_IDENTITY_MODELS = (User, Role, UserRole, AuthSession, ApiKey)
_CHANGED = "creativeflow.identity_changed"
_caches: weakref.WeakSet[PrincipalCache] = weakref.WeakSet()


class PrincipalCache:
    def __init__(self, ttl_seconds: float = 5.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[float, Principal]] = OrderedDict()
        self._loading: dict[Hashable, asyncio.Future[Principal | None]] = {}
        _caches.add(self)

    def get(self, key: Hashable) -> Principal | None:
        if self.ttl <= 0:
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, principal = entry
        if expires < time.monotonic():
            self._entries.pop(key, None)
            return None
        return principal

    def put(self, key: Hashable, principal: Principal) -> None:
        if self.ttl <= 0:
            return
        self._entries[key] = (time.monotonic() + self.ttl, principal)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    async def get_or_load(
        self, key: Hashable, load: Callable[[], Awaitable[Principal]]
    ) -> Principal:
        """The cached principal of `key`, or the one `load` resolves, which is then cached.

        Concurrent misses of one key wait for a single load: when a busy credential's entry
        expires, every request in flight would otherwise go to the database at once (32
        connections, SQLite: a 0.6-0.8 s stall every `ttl_seconds`). A waiter whose leader
        failed loads for itself, so it gets its own answer, never someone else's error.
        """
        principal = self.get(key)
        if principal is not None:
            return principal
        if self.ttl <= 0:
            return await load()
        pending = self._loading.get(key)
        if pending is not None:
            shared = await asyncio.shield(pending)
            if shared is not None:
                return shared
            principal = await load()
            self.put(key, principal)
            return principal
        future: asyncio.Future[Principal | None] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        loaded: Principal | None = None
        try:
            loaded = await load()
            self.put(key, loaded)
            return loaded
        finally:
            del self._loading[key]
            future.set_result(loaded)


def clear_all_principal_caches() -> None:
    for cache in list(_caches):
        cache.clear()


@event.listens_for(Session, "after_flush")
def _note_identity_flush(session: Session, _flush: UOWTransaction) -> None:
    for instance in (*session.new, *session.dirty, *session.deleted):
        if isinstance(instance, _IDENTITY_MODELS):
            session.info[_CHANGED] = True
            return


@event.listens_for(Session, "do_orm_execute")
def _note_identity_statement(orm_execute_state: Any) -> None:
    if not (orm_execute_state.is_update or orm_execute_state.is_delete):
        return
    table = getattr(orm_execute_state.statement, "table", None)
    if getattr(table, "name", None) in _IDENTITY_TABLES:
        orm_execute_state.session.info[_CHANGED] = True


@event.listens_for(Session, "after_commit")
def _clear_on_identity_commit(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        clear_all_principal_caches()


@event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    session.info.pop(_CHANGED, None)


__all__ = ["PrincipalCache", "clear_all_principal_caches"]
