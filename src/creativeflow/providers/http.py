"""HTTP calls to remote providers: explicit timeouts, retries with backoff on 429, 5xx and
connection errors (honouring `Retry-After`), and failures turned into `ProviderError`s."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx

from creativeflow.providers.errors import (
    MalformedResponse,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from creativeflow.shared.core.logging import get_logger

_log = get_logger("creativeflow.providers")

# A Retry-After longer than this is not waited for inside one call: the call fails as rate
# limited and the job's own retry policy (or the client) decides when to come back.
MAX_RETRY_AFTER_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 2
    backoff_seconds: float = 0.5

    def delay(self, attempt: int) -> float:
        """Exponential backoff with jitter for retry number `attempt` (1-based)."""
        base = self.backoff_seconds * (2 ** (attempt - 1))
        return base + random.uniform(0, base / 2)  # noqa: S311 - jitter, not security


def retry_after_seconds(response: httpx.Response) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    provider: str,
    seconds: float,
    policy: RetryPolicy,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request, retrying what may succeed later, within `seconds` overall.
    Returns a 2xx response; raises a `ProviderError` otherwise."""
    deadline = time.monotonic() + seconds
    attempt = 0
    while True:
        attempt += 1
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProviderTimeout(
                f"{provider} did not answer within {seconds:g} s", provider=provider
            )
        try:
            response = await client.request(method, url, timeout=remaining, **kwargs)
        except httpx.TimeoutException as exc:
            error: ProviderError = ProviderTimeout(
                f"{provider} did not answer within {seconds:g} s", provider=provider
            )
            wait = None
            if attempt > policy.retries or time.monotonic() >= deadline:
                raise error from exc
        except httpx.TransportError as exc:
            error = ProviderUnavailable(f"{provider} is unreachable: {exc}", provider=provider)
            wait = None
            if attempt > policy.retries:
                raise error from exc
        else:
            if response.is_success:
                return response
            error, wait = _failure(response, provider)
            if not error.retryable or attempt > policy.retries:
                raise error
            if wait is not None and wait > MAX_RETRY_AFTER_SECONDS:
                raise error
        delay = wait if wait is not None else policy.delay(attempt)
        if time.monotonic() + delay >= deadline:
            raise error
        _log.info(
            "provider_retry",
            provider=provider,
            attempt=attempt,
            delay=round(delay, 3),
            reason=error.code,
        )
        await asyncio.sleep(delay)


def _failure(response: httpx.Response, provider: str) -> tuple[ProviderError, float | None]:
    status = response.status_code
    detail = _error_detail(response)
    if status == 429:
        wait = retry_after_seconds(response)
        return (
            ProviderRateLimited(
                f"{provider} is rate limiting requests: {detail}",
                provider=provider,
                retry_after=wait,
            ),
            wait,
        )
    if status >= 500 or status == 408:
        wait = retry_after_seconds(response) if status == 503 else None
        return (
            ProviderUnavailable(
                f"{provider} answered {status}: {detail}", provider=provider, status=status
            ),
            wait,
        )
    return (
        ProviderRejected(
            f"{provider} refused the request ({status}): {detail}", provider=provider, status=status
        ),
        None,
    )


def _error_detail(response: httpx.Response) -> str:
    """The provider's own error message, short; never the whole body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body.get("message", body)))
        if isinstance(error, dict):
            error = error.get("message", error)
        return str(error)[:200]
    return str(body)[:200]


def json_body(response: httpx.Response, provider: str) -> Any:
    """The response's JSON; a body that is not JSON is a `MalformedResponse`."""
    try:
        return response.json()
    except ValueError as exc:
        raise MalformedResponse(
            f"{provider} answered with a body that is not JSON", provider=provider
        ) from exc
