"""What the store types share: the OS-level cause inside a driver's error, and driver text made
safe to show (secrets masked, cut short)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from creativeflow.datasources.base import MASK

T = TypeVar("T")

MAX_REASON = 300  # characters of a server's own error text carried into a message


def os_cause(exc: BaseException) -> OSError | None:
    """The OSError (refused, reset, TLS, timed out) behind a driver's error, from its cause
    and context chain and any exception group in it (anyio's "All connection attempts
    failed" holds the refusals); a specific one (ConnectionRefusedError, SSLError) before a
    bare OSError."""
    found: list[OSError] = []
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError):
            found.append(current)
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    specific = [error for error in found if type(error) is not OSError]
    return next(iter(specific or found), None)


def safe_text(text: str, *secrets: str | None) -> str:
    """A driver's or server's text with every secret masked, cut at MAX_REASON characters."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[:MAX_REASON] + "…"


async def gather_all(coroutines: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Every result, in order; on the first failure the others are cancelled (and awaited)
    before it propagates, so none outlives the connection they share."""
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
