"""One guarded way for the web types to make an HTTP request.

Every host is resolved and checked with `ConnectContext.address()` and the request goes to that
address, naming the host in the Host header and as the TLS server name (so the certificate is
verified against the name while DNS cannot change the address in between). Redirects are
followed only to the same scheme, host and port (another host would bypass the check), answers
are read up to answers.MAX_RESPONSE_BYTES, and every failure is a `SourceError` whose message never
holds a secret or a query string (where an API key may travel).
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, urlencode

import httpx

from creativeflow import __version__
from creativeflow.datasources.base import (
    MASK,
    ConnectContext,
    SourceError,
    SourceErrorCode,
    network_error,
    reveal,
)
from creativeflow.datasources.web.answers import (
    Answer,
    origin,
    read_capped,
    shown_url,
    transport_error,
)
from creativeflow.datasources.web.auth import (
    AnyAuth,
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    OAuth2ClientCredentials,
)

MAX_REDIRECTS = 5
USER_AGENT = f"CreativeFlow-DataSources/{__version__}"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_OAUTH_ERROR_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz_-.0123456789")


def _oauth_error_code(error: Any) -> bool:
    return isinstance(error, str) and 0 < len(error) <= 64 and set(error) <= _OAUTH_ERROR_CHARS


class HttpClient:
    """Requests for one connector call (`async with HttpClient(...) as client`): an httpx
    client per origin (pooled connections are keyed by address, and two hosts sharing one
    must never share a TLS connection), each host checked once, an OAuth2 token fetched once."""

    def __init__(
        self,
        context: ConnectContext,
        *,
        auth: AnyAuth,
        headers: Mapping[str, str] | None = None,
        verify: bool = True,
        ca_certificate: str | None = None,
    ) -> None:
        self._context = context
        self._auth = auth
        self._headers = dict(headers or {})
        self._verify: ssl.SSLContext | bool = True
        if not verify:
            unverified = ssl.create_default_context()
            unverified.check_hostname = False
            unverified.verify_mode = ssl.CERT_NONE
            self._verify = unverified
        elif ca_certificate:
            self._verify = ssl.create_default_context(cadata=ca_certificate)
        self._clients: dict[tuple[str, str, int], httpx.AsyncClient] = {}
        self._addresses: dict[tuple[str, int], str] = {}
        self._token: str | None = None
        self._token_lock = asyncio.Lock()

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
        """`text` (an answer's message) with any of this client's secrets masked."""
        for secret in self._secrets():
            if len(secret) >= 4:
                text = text.replace(secret, MASK)
        return text

    def _secrets(self) -> list[str]:
        auth = self._auth
        values: list[str] = [self._token] if self._token else []
        if isinstance(auth, BasicAuth):
            values.append(reveal(auth.password))
        elif isinstance(auth, BearerAuth):
            values.append(reveal(auth.token))
        elif isinstance(auth, ApiKeyAuth):
            values.append(reveal(auth.value))
        elif isinstance(auth, OAuth2ClientCredentials):
            values.append(reveal(auth.client_secret))
        return values

    async def get(self, url: str, *, params: Mapping[str, str] | None = None) -> Answer:
        """GET `url` (same-host redirects followed)."""
        return await self.request("GET", url, params=params, follow_redirects=True)

    async def post_json(self, url: str, body: Any, *, accept: str | None = None) -> Answer:
        headers = {"Content-Type": "application/json"}
        if accept:
            headers["Accept"] = accept
        return await self.request(
            "POST", url, content=json.dumps(body).encode(), extra_headers=headers
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        extra_headers: Mapping[str, str] | None = None,
        authenticate: bool = True,
        follow_redirects: bool = False,
    ) -> Answer:
        """One request with the source's headers and credentials (neither when not
        `authenticate`: the token endpoint is another party); any status is answered (see
        `Answer.raise_for_status`), transport failures raise SourceError."""
        asked = httpx.URL(url)
        if params:
            asked = asked.copy_merge_params(dict(params))
        headers = httpx.Headers(self._headers if authenticate else {})
        headers.update(extra_headers or {})
        auth_params: dict[str, str] = {}
        if authenticate:
            auth_headers, auth_params = await self._credentials()
            headers.update(auth_headers)
        for _ in range(MAX_REDIRECTS + 1):
            wire = asked.copy_merge_params(auth_params) if auth_params else asked
            answer = await self._send(method, wire, asked, headers, content)
            location = answer.headers.get("location")
            if not (follow_redirects and answer.status_code in _REDIRECTS and location):
                return answer
            try:
                next_url = asked.join(location)
            except httpx.InvalidURL:
                return answer
            if origin(next_url) != origin(asked):
                return answer  # raise_for_status says it went to another host
            asked = next_url
        raise SourceError(
            SourceErrorCode.PROTOCOL_ERROR,
            f"{shown_url(asked)} redirected more than {MAX_REDIRECTS} times",
        )

    async def _send(
        self,
        method: str,
        wire: httpx.URL,
        asked: httpx.URL,
        headers: httpx.Headers,
        content: bytes | None,
    ) -> Answer:
        scheme, host, port = origin(wire)
        target = shown_url(asked)
        address = self._addresses.get((host, port))
        if address is None:
            address = await self._context.address(host, port)
            self._addresses[(host, port)] = address
        client = self._clients.get((scheme, host, port))
        if client is None:
            client = httpx.AsyncClient(
                verify=self._verify,
                timeout=httpx.Timeout(self._context.timeout_seconds),
                follow_redirects=False,
                trust_env=False,
            )
            self._clients[(scheme, host, port)] = client
        sent = httpx.Headers({"User-Agent": USER_AGENT, "Accept": "application/json"})
        sent.update(headers)
        sent["Host"] = wire.netloc.decode("ascii")
        request = client.build_request(
            method,
            wire.copy_with(host=address),
            headers=sent,
            content=content,
            # The handshake names the host, and its certificate must match the name.
            extensions={"sni_hostname": host} if scheme == "https" else {},
        )
        try:
            # httpx's time-outs are per operation: this bounds a slowly dripping answer too.
            async with asyncio.timeout(self._context.timeout_seconds):
                response = await client.send(request, stream=True)
                try:
                    body = await read_capped(response, target)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise network_error(TimeoutError(), target) from None
        except httpx.HTTPError as exc:
            raise transport_error(exc, target) from None
        return Answer(asked, response.status_code, response.headers, body)

    async def _credentials(self) -> tuple[dict[str, str], dict[str, str]]:
        """The headers and query parameters that authenticate a request."""
        auth = self._auth
        if isinstance(auth, BasicAuth):
            pair = f"{auth.username}:{reveal(auth.password)}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}, {}
        if isinstance(auth, BearerAuth):
            return {"Authorization": f"Bearer {reveal(auth.token)}"}, {}
        if isinstance(auth, ApiKeyAuth):
            if auth.location == "query":
                return {}, {auth.name: reveal(auth.value)}
            return {auth.name: reveal(auth.value)}, {}
        if isinstance(auth, OAuth2ClientCredentials):
            async with self._token_lock:
                if self._token is None:
                    self._token = await self._fetch_token(auth)
            return {"Authorization": f"Bearer {self._token}"}, {}
        return {}, {}

    async def _fetch_token(self, auth: OAuth2ClientCredentials) -> str:
        """An access token from the token endpoint (RFC 6749 4.4), through the same guard."""
        form = {"grant_type": "client_credentials"}
        if auth.scopes:
            form["scope"] = " ".join(auth.scopes)
        if auth.audience:
            form["audience"] = auth.audience
        secret = reveal(auth.client_secret)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if auth.client_authentication == "client_secret_basic":
            # RFC 6749 2.3.1: both are form-encoded before they are joined.
            pair = f"{quote(auth.client_id, safe='')}:{quote(secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form["client_id"] = auth.client_id
            form["client_secret"] = secret
        answer = await self.request(
            "POST",
            auth.token_url,
            content=urlencode(form).encode(),
            extra_headers=headers,
            authenticate=False,
        )
        where = f"the token endpoint {answer.target}"
        payload: Any = None
        try:
            payload = await answer.json()
        except SourceError:
            if 200 <= answer.status_code < 300:
                raise SourceError(
                    SourceErrorCode.AUTH_FAILED, f"{where} did not answer JSON"
                ) from None
        if not 200 <= answer.status_code < 300:
            error = payload.get("error") if isinstance(payload, dict) else None
            # Only the error code (`invalid_client`): a description is free text.
            told = f": {error}" if _oauth_error_code(error) else ""
            raise SourceError(
                SourceErrorCode.AUTH_FAILED,
                f"{where} refused the client credentials (HTTP {answer.status_code}{told})",
            )
        token = payload.get("access_token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            raise SourceError(SourceErrorCode.AUTH_FAILED, f"{where} answered no access_token")
        return token
