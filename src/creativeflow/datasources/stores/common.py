"""What the store types share: driver text made safe to show (secrets masked, cut short), and
concurrent requests that do not outlive their connection."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from creativeflow.datasources.base import MASK

T = TypeVar("T")

MAX_REASON = 300  # characters of a server's own error text carried into a message


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
