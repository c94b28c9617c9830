"""The web types' requests, on the guarded transport (`datasources.http`): the source's headers
and credentials (basic, bearer, API key in a header or the query, OAuth2 client credentials),
same-host redirects followed for GETs, answers read up to answers.MAX_RESPONSE_BYTES.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, urlencode

import httpx

from creativeflow.datasources import http
from creativeflow.datasources.base import ConnectContext, SourceError, SourceErrorCode, reveal
from creativeflow.datasources.http import Answer, GuardedHttp
from creativeflow.datasources.web import answers
from creativeflow.datasources.web.auth import (
    AnyAuth,
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    OAuth2ClientCredentials,
)

_OAUTH_ERROR_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz_-.0123456789")


def _oauth_error_code(error: Any) -> bool:
    return isinstance(error, str) and 0 < len(error) <= 64 and set(error) <= _OAUTH_ERROR_CHARS


class HttpClient:
    """Requests for one connector call (`async with HttpClient(...) as client`): each host
    checked once, an httpx client per origin, an OAuth2 token fetched once."""

    def __init__(
        self,
        context: ConnectContext,
        *,
        auth: AnyAuth,
        headers: Mapping[str, str] | None = None,
        verify: bool = True,
        ca_certificate: str | None = None,
    ) -> None:
        self._auth = auth
        self._headers = dict(headers or {})
        self._http = GuardedHttp(
            context, verify=http.tls_verify(verify, ca_certificate), secrets=self._secrets
        )
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
        await self._http.aclose()

    def redact(self, text: str) -> str:
        """`text` (an answer's message) with any of this client's secrets masked."""
        return self._http.redact(text)

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
        return await self._http.request(
            method,
            asked,
            headers=headers,
            secret_params=auth_params,
            content=content,
            # Read now, not at import: a test may lower the cap.
            max_bytes=answers.MAX_RESPONSE_BYTES,
            follow_redirects=follow_redirects,
        )

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
