"""One guarded way for the data-source types to make an HTTP request.

Every host is resolved and checked with `ConnectContext.address()` (once per host for the
session) and the request goes to that address, naming the host in the Host header and as the
TLS server name, so the certificate is verified against the name while DNS cannot change the
address in between. Each origin gets its own httpx client (pooled connections are keyed by
address, and two hosts sharing one must never share a TLS connection); proxies from the
environment are not used. Redirects are followed only when asked, and only to the same scheme,
host and port (another host would bypass the check). Answers are streamed and read up to a cap,
every request is bounded by the context's time limit (or the session's deadline), and every
transport failure is a `SourceError` whose message holds no secret and no query string.

Families build on it: their authentication, their API's error bodies (through `status_error`
or their own mapping first) and their JSON conventions stay with them.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx

from creativeflow import __version__
from creativeflow.datasources.base import (
    MASK,
    ConnectContext,
    SourceError,
    SourceErrorCode,
    network_error,
    os_cause,
)

USER_AGENT = f"CreativeFlow-DataSources/{__version__}"
MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MIN_SECRET = 4  # shorter "secrets" are not masked: they would mask ordinary text
PARSE_IN_THREAD_BYTES = 256 * 1024


def shown_url(url: httpx.URL | str) -> str:
    """A URL as messages show it: without its query (an API key may be in it)."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii')}{parsed.path}"


def origin(url: httpx.URL) -> tuple[str, str, int]:
    return url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret (of MIN_SECRET characters or more) replaced by the mask."""
    for secret in secrets:
        if len(secret) >= MIN_SECRET:
            text = text.replace(secret, MASK)
    return text


def tls_verify(verify: bool = True, ca_certificate: str | None = None) -> ssl.SSLContext | bool:
    """httpx's `verify` for a source: off accepts any certificate, a CA's PEM trusts it only."""
    if not verify:
        unverified = ssl.create_default_context()
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE
        return unverified
    if ca_certificate:
        return ssl.create_default_context(cadata=ca_certificate)
    return True


async def parse_json(body: bytes) -> Any:
    """The JSON document in `body` (parsed in a thread when large); ValueError when not JSON."""
    if len(body) > PARSE_IN_THREAD_BYTES:
        return await asyncio.to_thread(json.loads, body)
    return json.loads(body)  # UnicodeDecodeError is a ValueError too


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer, read whole (or up to the cap, `cut` saying there was more)."""

    url: httpx.URL  # the URL asked (after same-host redirects), without secret parameters
    status_code: int
    headers: httpx.Headers
    body: bytes
    cut: bool = False

    @property
    def target(self) -> str:
        return shown_url(self.url)

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    async def json(self) -> Any:
        """The body as JSON; PROTOCOL_ERROR when it is not."""
        try:
            return await parse_json(self.body)
        except ValueError:
            raise SourceError(
                SourceErrorCode.PROTOCOL_ERROR,
                f"{self.target} answered HTTP {self.status_code} with something that is not JSON",
            ) from None

    def raise_for_status(self) -> None:
        error = status_error(self)
        if error is not None:
            raise error


def status_error(answer: Answer, target: str | None = None, detail: str = "") -> SourceError | None:
    """The failure an HTTP status means (None for a 2xx), for APIs without their own error
    body; `detail` (the API's own words, already safe) is appended. APIs with one map their
    answers first and fall back on this."""
    status, target = answer.status_code, target or answer.target
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
            SourceErrorCode.AUTH_FAILED,
            f"{target} answered HTTP 401: the credentials were refused{detail}",
        )
    if status == 403:
        return SourceError(
            SourceErrorCode.PERMISSION_DENIED,
            f"{target} answered HTTP 403: these credentials may not read it{detail}",
        )
    if status == 404:
        return SourceError(
            SourceErrorCode.NOT_FOUND, f"{target} answered HTTP 404: not found{detail}"
        )
    phrase = httpx.codes.get_reason_phrase(status)
    reason = f" ({phrase})" if phrase else ""
    return SourceError(
        SourceErrorCode.PROTOCOL_ERROR, f"{target} answered HTTP {status}{reason}{detail}"
    )


def transport_error(exc: httpx.HTTPError, target: str) -> SourceError:
    """An httpx failure as a SourceError: the socket-level cause (refused, reset, TLS, DNS)
    where there is one, else what httpx says went wrong."""
    if isinstance(exc, httpx.TimeoutException):
        return network_error(TimeoutError(), target)
    cause = os_cause(exc)
    if cause is not None:
        return network_error(cause, target)
    if isinstance(exc, httpx.ConnectError) and "refused" in str(exc).lower():
        return SourceError(SourceErrorCode.CONNECTION_REFUSED, f"{target} refused the connection")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.DecodingError):
        return SourceError(
            SourceErrorCode.PROTOCOL_ERROR, f"{target} does not answer like an HTTP server"
        )
    if isinstance(exc, httpx.TransportError):
        return SourceError(SourceErrorCode.UNREACHABLE, f"{target} is unreachable")
    return SourceError(SourceErrorCode.ERROR, f"{target}: {type(exc).__name__}")


def too_large(target: str, max_bytes: int) -> SourceError:
    return SourceError(
        SourceErrorCode.PROTOCOL_ERROR,
        f"{target} answered more than {max_bytes // (1024 * 1024)} MiB",
    )


async def read_capped(
    response: httpx.Response, max_bytes: int, target: str, *, truncate: bool = False
) -> tuple[bytes, bool]:
    """The body up to `max_bytes`, and whether there was more: cut there when `truncate`,
    else a longer body is PROTOCOL_ERROR (refused before reading when it says its length)."""
    length = response.headers.get("content-length", "")
    if not truncate and length.isdigit() and int(length) > max_bytes:
        raise too_large(target, max_bytes)
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            if truncate:
                return bytes(body[:max_bytes]), True
            raise too_large(target, max_bytes)
    return bytes(body), False


class GuardedHttp:
    """The requests of one connector call (`async with GuardedHttp(context) as http`).

    `secrets` gives the values masked in every message; `deadline` bounds the whole session
    by the context's time limit (else each request is bounded by it)."""

    def __init__(
        self,
        context: ConnectContext,
        *,
        verify: ssl.SSLContext | bool = True,
        secrets: Callable[[], Iterable[str]] = tuple,
        deadline: bool = False,
    ) -> None:
        self._context = context
        self._verify = verify
        self._secrets = secrets
        self._deadline = time.monotonic() + context.timeout_seconds if deadline else None
        self._clients: dict[tuple[str, str, int], httpx.AsyncClient] = {}
        self._addresses: dict[tuple[str, int], str] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    def redact(self, text: str) -> str:
        """`text` with this session's secrets masked."""
        return redact(text, self._secrets())

    def error(self, code: SourceErrorCode, message: str) -> SourceError:
        return SourceError(code, self.redact(message))

    async def address(self, host: str, port: int) -> str:
        """The checked address of `host` (resolved and checked once per session)."""
        address = self._addresses.get((host, port))
        if address is None:
            address = await self._context.address(host, port)
            self._addresses[(host, port)] = address
        return address

    async def request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        headers: Mapping[str, str] | None = None,
        secret_params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        data: Mapping[str, str] | None = None,
        json_body: Any = None,
        max_bytes: int,
        truncate: bool = False,
        follow_redirects: bool = False,
        target: str | None = None,
    ) -> Answer:
        """One request; any status is answered, transport failures raise SourceError.
        `secret_params` (an API key) go on the wire only, never in the answer's URL or a
        message; same-host redirects are followed when `follow_redirects`. `target` names
        the server in messages (the URL without its query by default)."""
        asked = httpx.URL(url)
        for _ in range(MAX_REDIRECTS + 1):
            wire = asked.copy_merge_params(dict(secret_params)) if secret_params else asked
            answer = await self._send(
                method,
                wire,
                asked,
                headers=headers,
                content=content,
                data=data,
                json_body=json_body,
                max_bytes=max_bytes,
                truncate=truncate,
                target=target or shown_url(asked),
            )
            location = answer.headers.get("location")
            if not (follow_redirects and answer.status_code in REDIRECTS and location):
                return answer
            try:
                next_url = asked.join(location)
            except httpx.InvalidURL:
                return answer
            if origin(next_url) != origin(asked):
                return answer  # status_error says it went to another host
            asked = next_url
        raise self.error(
            SourceErrorCode.PROTOCOL_ERROR,
            f"{target or shown_url(asked)} redirected more than {MAX_REDIRECTS} times",
        )

    def _client(self, key: tuple[str, str, int]) -> httpx.AsyncClient:
        client = self._clients.get(key)
        if client is None:
            client = httpx.AsyncClient(
                verify=self._verify,
                timeout=httpx.Timeout(self._context.timeout_seconds),
                follow_redirects=False,
                trust_env=False,
            )
            self._clients[key] = client
        return client

    def _time_left(self) -> float:
        if self._deadline is None:
            return self._context.timeout_seconds
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise SourceError(
                SourceErrorCode.TIMEOUT, f"no answer within {self._context.timeout_seconds:g} s"
            )
        return remaining

    async def _send(
        self,
        method: str,
        wire: httpx.URL,
        asked: httpx.URL,
        *,
        headers: Mapping[str, str] | None,
        content: bytes | None,
        data: Mapping[str, str] | None,
        json_body: Any,
        max_bytes: int,
        truncate: bool,
        target: str,
    ) -> Answer:
        scheme, host, port = origin(wire)
        address = await self.address(host, port)
        remaining = self._time_left()
        client = self._client((scheme, host, port))
        sent = httpx.Headers({"User-Agent": USER_AGENT, "Accept": "application/json"})
        sent.update(headers or {})
        sent["Host"] = wire.netloc.decode("ascii")
        request = client.build_request(
            method,
            wire.copy_with(host=address),
            headers=sent,
            content=content,
            data=data,
            json=json_body,
            # The handshake names the host, and its certificate must match the name.
            extensions={"sni_hostname": host} if scheme == "https" else {},
            timeout=httpx.Timeout(remaining),
        )
        try:
            # httpx's time-outs are per operation: this bounds a slowly dripping answer too.
            async with asyncio.timeout(remaining):
                response = await client.send(request, stream=True)
                try:
                    body, cut = await read_capped(response, max_bytes, target, truncate=truncate)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise self._failed(network_error(TimeoutError(), target)) from None
        except httpx.HTTPError as exc:
            raise self._failed(transport_error(exc, target)) from None
        except SourceError as exc:
            raise self._failed(exc) from None
        return Answer(asked, response.status_code, response.headers, body, cut)

    def _failed(self, error: SourceError) -> SourceError:
        return self.error(error.code, error.message)
