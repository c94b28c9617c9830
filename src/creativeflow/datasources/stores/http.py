"""JSON over HTTP for Elasticsearch, on the guarded transport (`datasources.http`): requests to
the checked address with the host's name in the Host header and as the TLS server name, no
redirects followed (they could lead anywhere; an answer that is one is refused), answers read up
to MAX_BODY_BYTES and parsed leniently (a body that is not JSON is None: the status says more).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from creativeflow.datasources.base import ConnectContext, SourceError, SourceErrorCode
from creativeflow.datasources.fields import url_host_port
from creativeflow.datasources.http import GuardedHttp, parse_json

MAX_BODY_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any  # the parsed JSON; None when the body was empty or not JSON

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class PinnedHttp:
    """Requests under one base URL (its path is the prefix of every request path)."""

    def __init__(
        self,
        base_url: str,
        context: ConnectContext,
        *,
        tls: ssl.SSLContext | None,
        headers: Mapping[str, str],
    ) -> None:
        self._url = httpx.URL(base_url)
        host, port = url_host_port(base_url)
        self.target = f"{host}:{port}"
        self._headers = dict(headers)
        self._http = GuardedHttp(context, verify=tls if tls is not None else True)

    async def __aenter__(self) -> PinnedHttp:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._http.aclose()

    async def check_host(self) -> None:
        """Resolve and check the host now (the guard's refusal before any request)."""
        host, port = url_host_port(str(self._url))
        await self._http.address(host, port)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Answer:
        """`path` is already percent-encoded (names from users quoted by the caller)."""
        base_path = self._url.raw_path.split(b"?", 1)[0].rstrip(b"/")
        url = self._url.copy_with(raw_path=base_path + path.encode("ascii"))
        if params:
            url = url.copy_merge_params(dict(params))
        answer = await self._http.request(
            method,
            url,
            headers=self._headers,
            json_body=json_body,
            max_bytes=MAX_BODY_BYTES,
            target=self.target,
        )
        if 300 <= answer.status_code < 400:
            raise SourceError(
                SourceErrorCode.PROTOCOL_ERROR,
                f"{self.target} answered a redirect (HTTP {answer.status_code}), "
                "which is not followed; use the URL it points to",
            )
        return Answer(answer.status_code, await _parsed(answer.body))


async def _parsed(body: bytes) -> Any:
    if not body.strip():
        return None
    try:
        return await parse_json(body)
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
    http = PinnedHttp(base_url, context, tls=tls, headers=headers)
    await http.check_host()  # no client is open yet: nothing to close when it is refused
    return http
