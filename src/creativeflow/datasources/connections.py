"""Running a connector: the driver check, the time limit, the latency, and every failure as a
`SourceError` with a code (a connector's unexpected exception is logged by class, never with
its message, which might hold what the driver was given)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from creativeflow.datasources.base import (
    MAX_PREVIEW_ROWS,
    ConnectContext,
    Discovery,
    Preview,
    SourceConfig,
    SourceError,
    SourceErrorCode,
    SourceType,
)
from creativeflow.shared.core.logging import get_logger

_log = get_logger("creativeflow.datasources")
ResultT = TypeVar("ResultT")

MAX_MESSAGE = 1000


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    ok: bool
    latency_ms: int
    server_version: str | None = None
    error_code: str | None = None
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


async def _run(
    source_type: SourceType,
    context: ConnectContext,
    operation: str,
    call: Callable[[], Awaitable[ResultT]],
) -> ResultT:
    missing = source_type.driver_error()
    if missing is not None:
        raise missing
    try:
        # A little over the drivers' own time-outs, so theirs (with a better message) fire first.
        async with asyncio.timeout(context.timeout_seconds + 1.0):
            return await call()
    except SourceError as exc:
        exc.message = exc.message[:MAX_MESSAGE]
        raise
    except TimeoutError:
        raise SourceError(
            SourceErrorCode.TIMEOUT,
            f"no answer within {context.timeout_seconds:g} s",
        ) from None
    except Exception as exc:
        _log.warning(
            "datasource_connector_error",
            type=source_type.name,
            operation=operation,
            error=type(exc).__name__,
        )
        raise SourceError(
            SourceErrorCode.ERROR, f"{operation} failed unexpectedly ({type(exc).__name__})"
        ) from None


async def check(
    source_type: SourceType, config: SourceConfig, context: ConnectContext
) -> CheckOutcome:
    started = time.perf_counter()

    def elapsed() -> int:
        return round((time.perf_counter() - started) * 1000)

    try:
        result = await _run(
            source_type, context, "the check", lambda: source_type.connector.check(config, context)
        )
    except SourceError as exc:
        return CheckOutcome(
            ok=False, latency_ms=elapsed(), error_code=exc.code.value, message=exc.message
        )
    version = result.server_version[:200] if result.server_version else None
    return CheckOutcome(
        ok=True, latency_ms=elapsed(), server_version=version, details=result.details
    )


async def discover(
    source_type: SourceType, config: SourceConfig, context: ConnectContext
) -> Discovery:
    if not source_type.can_discover:
        raise SourceError(
            SourceErrorCode.NOT_SUPPORTED, f"the {source_type.name} type has no discovery"
        )
    return await _run(
        source_type, context, "discovery", lambda: source_type.connector.discover(config, context)
    )


async def preview(
    source_type: SourceType,
    config: SourceConfig,
    context: ConnectContext,
    object_name: str,
    limit: int,
) -> Preview:
    if not source_type.can_preview:
        raise SourceError(
            SourceErrorCode.NOT_SUPPORTED, f"the {source_type.name} type has no preview"
        )
    limit = max(1, min(limit, MAX_PREVIEW_ROWS))
    result = await _run(
        source_type,
        context,
        "the preview",
        lambda: source_type.connector.preview(config, context, object_name, limit),
    )
    return Preview(columns=result.columns, rows=result.rows[:limit], truncated=result.truncated)
