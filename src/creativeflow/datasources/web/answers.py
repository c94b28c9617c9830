"""HTTP answers for the web types: read whole up to MAX_RESPONSE_BYTES, their statuses and
transport failures as `SourceError`s. Messages show URLs without their query (where an API key
may travel)."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from dataclasses import dataclass
from typing import Any

import httpx

from creativeflow.datasources.base import SourceError, SourceErrorCode, network_error

MAX_RESPONSE_BYTES = 16 * 1024 * 1024


def shown_url(url: httpx.URL | str) -> str:
    """A URL as messages show it: without its query (an API key may be in it)."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii')}{parsed.path}"


def origin(url: httpx.URL) -> tuple[str, str, int]:
    return url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80)


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer, read whole."""

    url: httpx.URL  # the URL asked (after same-host redirects), without credentials
    status_code: int
    headers: httpx.Headers
    body: bytes

    @property
    def target(self) -> str:
        return shown_url(self.url)

    async def json(self) -> Any:
        try:
            if len(self.body) > 1024 * 1024:
                return await asyncio.to_thread(json.loads, self.body)
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise SourceError(
                SourceErrorCode.PROTOCOL_ERROR,
                f"{self.target} answered HTTP {self.status_code} with something that is not JSON",
            ) from None

    def raise_for_status(self) -> None:
        error = status_error(self)
        if error is not None:
            raise error


def status_error(answer: Answer) -> SourceError | None:
    """The failure an HTTP status means, or None for a 2xx."""
    status, target = answer.status_code, answer.target
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        location = answer.headers.get("location")
        where = ""
        if location:
            try:
                next_url = answer.url.join(location)
            except httpx.InvalidURL:
                next_url = None
            if next_url is not None and origin(next_url) != origin(answer.url):
                where = f" to another host ({next_url.netloc.decode('ascii')})"
        return SourceError(
            SourceErrorCode.PROTOCOL_ERROR,
            f"{target} answered HTTP {status}, a redirect{where}, which is not followed",
        )
    if status == 401:
        return SourceError(
            SourceErrorCode.AUTH_FAILED, f"{target} answered HTTP 401: the credentials were refused"
        )
    if status == 403:
        return SourceError(
            SourceErrorCode.PERMISSION_DENIED,
            f"{target} answered HTTP 403: these credentials may not read it",
        )
    if status == 404:
        return SourceError(SourceErrorCode.NOT_FOUND, f"{target} answered HTTP 404: not found")
    phrase = httpx.codes.get_reason_phrase(status)
    reason = f" ({phrase})" if phrase else ""
    return SourceError(SourceErrorCode.PROTOCOL_ERROR, f"{target} answered HTTP {status}{reason}")


def _cause(exc: BaseException) -> BaseException | None:
    """The socket-level exception under an httpx one (refused, reset, TLS, DNS), if any."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        chain.append(node)
        if isinstance(node, BaseExceptionGroup) and node.exceptions:
            node = node.exceptions[0]
        else:
            node = node.__cause__ or node.__context__
    specific = (
        ssl.SSLError,
        ConnectionRefusedError,
        ConnectionResetError,
        BrokenPipeError,
        TimeoutError,
        socket.gaierror,
    )
    for item in chain:
        if isinstance(item, specific):
            return item
    errors = [item for item in chain if isinstance(item, OSError)]
    return errors[-1] if errors else None


def transport_error(exc: httpx.HTTPError, target: str) -> SourceError:
    if isinstance(exc, httpx.TimeoutException):
        return network_error(TimeoutError(), target)
    cause = _cause(exc)
    if cause is not None:
        return network_error(cause, target)
    if isinstance(exc, httpx.RemoteProtocolError | httpx.DecodingError):
        return SourceError(
            SourceErrorCode.PROTOCOL_ERROR, f"{target} did not answer proper HTTP ({exc})"
        )
    if isinstance(exc, httpx.TransportError):
        return SourceError(SourceErrorCode.UNREACHABLE, f"{target}: {type(exc).__name__}")
    return SourceError(SourceErrorCode.ERROR, f"{target}: {type(exc).__name__}")


def _too_large(target: str) -> SourceError:
    return SourceError(
        SourceErrorCode.PROTOCOL_ERROR,
        f"{target} answered more than {MAX_RESPONSE_BYTES // (1024 * 1024)} MiB",
    )


async def read_capped(response: httpx.Response, target: str) -> bytes:
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_RESPONSE_BYTES:
        raise _too_large(target)
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_RESPONSE_BYTES:
            raise _too_large(target)
    return bytes(body)
