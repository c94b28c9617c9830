"""One delivery attempt on the wire: resolve and check the target, POST the signed body to the
checked address, and say how it went. No database work here, and none held open around it."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from creativeflow import __version__
from creativeflow.webhooks.signing import signature_header
from creativeflow.webhooks.targets import TargetRefused, parse_target_url, resolve_target

USER_AGENT = f"CreativeFlow-Webhooks/{__version__}"
EVENT_HEADER = "X-CreativeFlow-Event"
DELIVERY_HEADER = "X-CreativeFlow-Delivery"
SIGNATURE_HEADER = "X-CreativeFlow-Signature"


@dataclass(frozen=True, slots=True)
class Attempt:
    """What went to the wire for one attempt."""

    url: str
    body: bytes
    secret: str
    event_type: str
    delivery_id: str


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    delivered: bool
    # Whether trying again later may go better (a refused target will not).
    retryable: bool
    status_code: int | None = None
    error: str | None = None
    duration_ms: int | None = None


def _failed(message: str, *, retryable: bool, started: float) -> AttemptOutcome:
    return AttemptOutcome(
        delivered=False,
        retryable=retryable,
        error=message[:500],
        duration_ms=round((time.perf_counter() - started) * 1000),
    )


async def send(attempt: Attempt, *, allow_private: bool, timeout_seconds: float) -> AttemptOutcome:
    started = time.perf_counter()
    try:
        url = parse_target_url(attempt.url)
        target = await resolve_target(
            url, allow_private=allow_private, resolve_seconds=timeout_seconds
        )
    except ValueError as exc:
        return _failed(f"the URL {exc}", retryable=False, started=started)
    except TargetRefused as exc:
        return _failed(exc.message, retryable=exc.retryable, started=started)
    headers = {
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: attempt.event_type,
        DELIVERY_HEADER: attempt.delivery_id,
        SIGNATURE_HEADER: signature_header(attempt.secret, attempt.body),
    }
    # The TLS handshake names (and the certificate must match) the registered host, while the
    # connection goes to the checked address.
    extensions = {"sni_hostname": target.server_name} if url.scheme == "https" else {}
    timeout = httpx.Timeout(timeout_seconds)
    # A client per attempt: pooled connections are keyed by address, and two hosts sharing
    # one address must never share a TLS connection. No proxies from the environment either:
    # the request goes to the address that was checked.
    async with httpx.AsyncClient(
        timeout=timeout, follow_redirects=False, trust_env=False
    ) as client:
        request = client.build_request(
            "POST", target.connect_url, content=attempt.body, headers=headers, extensions=extensions
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.TimeoutException:
            return _failed(
                f"no answer within {timeout_seconds:g} s", retryable=True, started=started
            )
        except httpx.HTTPError as exc:
            return _failed(
                f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                retryable=True,
                started=started,
            )
        # The answer's body is not needed, only its status: never read an unbounded body.
        await response.aclose()
    duration_ms = round((time.perf_counter() - started) * 1000)
    if 200 <= response.status_code < 300:
        return AttemptOutcome(
            delivered=True,
            retryable=False,
            status_code=response.status_code,
            duration_ms=duration_ms,
        )
    reason = f"answered HTTP {response.status_code}"
    if 300 <= response.status_code < 400:
        reason += " (redirects are not followed)"
    return AttemptOutcome(
        delivered=False,
        retryable=True,
        status_code=response.status_code,
        error=reason,
        duration_ms=duration_ms,
    )
