"""JSON over HTTP to the address the guard checked.

Each request goes to the checked IP address, with the URL's host in the Host header and as the
TLS server name (SNI, and the name the certificate must match), as webhook delivery does: a DNS
answer that changes after the check cannot point the request elsewhere. Redirects are not
followed (they could lead anywhere), proxies from the environment are not used, and an answer
is read up to MAX_BODY_BYTES only.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from creativeflow.datasources.base import (
    ConnectContext,
    SourceError,
    SourceErrorCode,
    network_error,
)
from creativeflow.datasources.fields import url_host_port
from creativeflow.datasources.stores.common import os_cause

MAX_BODY_BYTES = 32 * 1024 * 1024
PARSE_IN_THREAD_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any  # the parsed JSON; None when the body was empty or not JSON

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class PinnedHttp:
    """An HTTP client for one base URL (its path is the prefix of every request path)."""

    def __init__(
        self,
        base_url: str,
        address: str,
        *,
        timeout_seconds: float,
        tls: ssl.SSLContext | None,
        headers: Mapping[str, str],
    ) -> None:
        self._url = httpx.URL(base_url)
        host, port = url_host_port(base_url)
        self.target = f"{host}:{port}"
        self._connect = self._url.copy_with(host=address)
        self._headers = {"Host": self._url.netloc.decode("ascii"), **headers}
        self._extensions = (
            {"sni_hostname": self._url.raw_host.decode("ascii")}
            if self._url.scheme == "https"
            else {}
        )
        # A client per source: pooled connections are keyed by address, and two hosts sharing
        # one address must never share a TLS connection.
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            verify=tls if tls is not None else True,
            follow_redirects=False,
            trust_env=False,
        )

    async def __aenter__(self) -> PinnedHttp:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Answer:
        """`path` is already percent-encoded (names from users quoted by the caller)."""
        base_path = self._connect.raw_path.split(b"?", 1)[0].rstrip(b"/")
        url = self._connect.copy_with(raw_path=base_path + path.encode("ascii"))
        if params:
            url = url.copy_merge_params(dict(params))
        request = self._client.build_request(
            method, url, headers=self._headers, json=json_body, extensions=self._extensions
        )
        try:
            response = await self._client.send(request, stream=True)
            try:
                if 300 <= response.status_code < 400:
                    raise SourceError(
                        SourceErrorCode.PROTOCOL_ERROR,
                        f"{self.target} answered a redirect (HTTP {response.status_code}), "
                        "which is not followed; use the URL it points to",
                    )
                body = await self._read(response)
            finally:
                await response.aclose()
        except httpx.TimeoutException:
            raise SourceError(
                SourceErrorCode.TIMEOUT, f"{self.target} did not answer in time"
            ) from None
        except httpx.HTTPError as exc:
            raise self._error(exc) from None
        return Answer(response.status_code, await _parsed(body))

    async def _read(self, response: httpx.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise SourceError(
                    SourceErrorCode.PROTOCOL_ERROR,
                    f"{self.target} answered more than {MAX_BODY_BYTES // 2**20} MiB",
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _error(self, exc: httpx.HTTPError) -> SourceError:
        cause = os_cause(exc)
        if cause is not None:
            return network_error(cause, self.target)
        if isinstance(exc, httpx.RemoteProtocolError | httpx.DecodingError):
            return SourceError(
                SourceErrorCode.PROTOCOL_ERROR, f"{self.target} does not answer like an HTTP server"
            )
        if isinstance(exc, httpx.TransportError):
            return SourceError(SourceErrorCode.UNREACHABLE, f"{self.target} is unreachable")
        return SourceError(SourceErrorCode.ERROR, f"{self.target}: {type(exc).__name__}")


async def _parsed(body: bytes) -> Any:
    if not body.strip():
        return None
    try:
        if len(body) > PARSE_IN_THREAD_BYTES:
            return await asyncio.to_thread(json.loads, body)
        return json.loads(body)
    except ValueError:
        return None


async def pinned_http(
    base_url: str,
    context: ConnectContext,
    *,
    tls: ssl.SSLContext | None,
    headers: Mapping[str, str],
) -> PinnedHttp:
    """A client for `base_url` whose host has passed the address guard."""
    host, port = url_host_port(base_url)
    address = await context.address(host, port)
    return PinnedHttp(
        base_url, address, timeout_seconds=context.timeout_seconds, tls=tls, headers=headers
    )
