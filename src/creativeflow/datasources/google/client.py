"""Requests to Google's REST APIs on the guarded transport (`datasources.http`): the context's
time limit over the whole operation, no redirects, answers read up to a cap, the API key or the
service account's access token (JWT bearer exchange), and Google's error bodies (`{"error":
{"code", "message", "status", "errors", "details"}}`) turned into SourceErrors. Messages never
carry the API key, the access token or the key file."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from creativeflow.datasources.base import ConnectContext, SourceError, SourceErrorCode, reveal
from creativeflow.datasources.google.auth import (
    JWT_BEARER_GRANT,
    ApiKeyAuth,
    GoogleAuth,
    NoAuth,
    ServiceAccountAuth,
    parse_service_account_key,
    signed_assertion,
)
from creativeflow.datasources.http import Answer, GuardedHttp, origin, status_error

MAX_JSON_BYTES = 16 * 1024 * 1024
MAX_MESSAGE = 300
_QUOTA_REASONS = {
    "quotaExceeded",
    "rateLimitExceeded",
    "dailyLimitExceeded",
    "userRateLimitExceeded",
    "RATE_LIMIT_EXCEEDED",
}
_KEY_REASONS = {"API_KEY_INVALID", "keyInvalid", "keyExpired", "API_KEY_EXPIRED"}
Params = Mapping[str, str | int | Sequence[str]]


@dataclass(frozen=True, slots=True)
class GoogleApi:
    """One API as the messages name it, with the OAuth scope a service account asks for."""

    name: str
    version: str
    scope: str


class GoogleClient:
    """A session with one API: `async with GoogleClient(...) as client: await client.json(...)`.
    The access token (service accounts) is fetched on the first request and kept for the rest."""

    def __init__(
        self, context: ConnectContext, base_url: str, auth: GoogleAuth, api: GoogleApi
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._auth = auth
        self._api = api
        self._token: str | None = None
        self._secrets: list[str] = []
        if isinstance(auth, ApiKeyAuth):
            self._secrets.append(reveal(auth.api_key))
        elif isinstance(auth, ServiceAccountAuth):
            self._secrets.append(reveal(auth.service_account_key))
        self._http = GuardedHttp(context, secrets=lambda: self._secrets, deadline=True)

    async def __aenter__(self) -> GoogleClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.aclose()

    @property
    def anonymous(self) -> bool:
        return isinstance(self._auth, NoAuth)

    async def json(self, path: str, params: Params | None = None, *, missing: str) -> Any:
        """GET `path` (under the API's base URL) as JSON; `missing` is the NOT_FOUND message."""
        body = await self._get(path, params, headers={}, max_bytes=MAX_JSON_BYTES, missing=missing)
        if body.cut:
            raise self._error(
                SourceErrorCode.PROTOCOL_ERROR,
                f"the answer is larger than {MAX_JSON_BYTES // (1024 * 1024)} MiB",
            )
        return self._decode(body.body)

    async def download(
        self, path: str, params: Params | None, *, max_bytes: int, missing: str, ranged: bool
    ) -> Answer:
        """GET `path` as bytes: the first `max_bytes` when `ranged` (a Range request; an answer
        that ignores it is cut), else the whole answer, which must fit in `max_bytes`."""
        headers = {"Range": f"bytes=0-{max_bytes - 1}"} if ranged else {}
        body = await self._get(path, params, headers=headers, max_bytes=max_bytes, missing=missing)
        if body.cut and not ranged:
            raise SourceError(
                SourceErrorCode.INVALID_OBJECT,
                f"the object is larger than {max_bytes // (1024 * 1024)} MiB, too large to preview",
            )
        return body

    # -- internals ---------------------------------------------------------------------------

    async def _get(
        self,
        path: str,
        params: Params | None,
        *,
        headers: dict[str, str],
        max_bytes: int,
        missing: str,
    ) -> Answer:
        key: dict[str, str] = {}
        if isinstance(self._auth, ApiKeyAuth):
            key["key"] = reveal(self._auth.api_key)
        elif isinstance(self._auth, ServiceAccountAuth):
            headers = {**headers, "Authorization": f"Bearer {await self._access_token()}"}
        url = httpx.URL(self._base_url + path, params=dict(params or {}))
        body = await self._send("GET", url, headers=headers, max_bytes=max_bytes, secret_params=key)
        if body.ok:
            return body
        raise self._failure(body, missing)

    async def _access_token(self) -> str:
        if self._token is not None:
            return self._token
        assert isinstance(self._auth, ServiceAccountAuth)
        try:
            key = parse_service_account_key(reveal(self._auth.service_account_key))
        except ValueError as exc:
            raise SourceError(
                SourceErrorCode.AUTH_FAILED, f"the service-account key {exc}"
            ) from None
        assertion = signed_assertion(key, self._api.scope)
        self._secrets.extend((key.private_key, assertion))
        form = {"grant_type": JWT_BEARER_GRANT, "assertion": assertion}
        body = await self._send(
            "POST", httpx.URL(key.token_uri), form=form, headers={}, max_bytes=MAX_JSON_BYTES
        )
        answer = _loads(body.body) if not body.cut else None
        if body.status_code in (400, 401, 403):
            reason = ""
            if isinstance(answer, dict) and isinstance(answer.get("error"), str):
                described = answer.get("error_description")
                reason = f" ({answer['error']}{': ' + str(described) if described else ''})"
            raise self._error(
                SourceErrorCode.AUTH_FAILED,
                f"the token endpoint refused the service account {key.client_email}{reason}",
            )
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if body.status_code != 200 or not isinstance(token, str) or not token:
            raise self._error(
                SourceErrorCode.PROTOCOL_ERROR,
                f"the token endpoint answered HTTP {body.status_code} without an access token",
            )
        self._secrets.append(token)
        self._token = token
        return token

    async def _send(
        self,
        method: str,
        url: httpx.URL,
        *,
        headers: dict[str, str],
        max_bytes: int,
        form: dict[str, str] | None = None,
        secret_params: Mapping[str, str] | None = None,
    ) -> Answer:
        _, host, port = origin(url)
        target = f"{self._api.name if form is None else 'the token endpoint'} at {host}:{port}"
        return await self._http.request(
            method,
            url,
            headers=headers,
            data=form,
            secret_params=secret_params,
            max_bytes=max_bytes,
            truncate=True,  # the caller says what a cut answer means
            target=target,
        )

    def _decode(self, data: bytes) -> Any:
        try:
            return json.loads(data)
        except ValueError:
            raise SourceError(
                SourceErrorCode.PROTOCOL_ERROR,
                f"{self._api.name} answered something that is not JSON; check api_base_url",
            ) from None

    def _failure(self, body: Answer, missing: str) -> SourceError:
        """A non-2xx answer as a SourceError, from Google's error body where there is one."""
        code = body.status_code
        status, message, reasons = _google_error(body.body)
        said = f": {message}" if message else ""
        if 300 <= code < 400:
            return self._error(
                SourceErrorCode.PROTOCOL_ERROR,
                f"{self._api.name} answered a redirect (HTTP {code}), which is not followed; "
                "check api_base_url",
            )
        if reasons & _QUOTA_REASONS or status == "RESOURCE_EXHAUSTED" or code == 429:
            return self._error(
                SourceErrorCode.PROTOCOL_ERROR,
                f"{self._api.name}'s quota is exhausted for now (HTTP {code}){said}",
            )
        if code == 401 or status == "UNAUTHENTICATED":
            if self.anonymous:
                return self._error(
                    SourceErrorCode.PERMISSION_DENIED,
                    f"{self._api.name} does not serve this without credentials (HTTP {code}); "
                    f"use service_account auth{said}",
                )
            return self._error(
                SourceErrorCode.AUTH_FAILED, f"{self._api.name} refused the credentials{said}"
            )
        if code == 400 and (reasons & _KEY_REASONS or "api key not valid" in message.lower()):
            return self._error(
                SourceErrorCode.AUTH_FAILED, f"{self._api.name} refused the API key{said}"
            )
        if code == 403 or status == "PERMISSION_DENIED":
            return self._error(
                SourceErrorCode.PERMISSION_DENIED, f"{self._api.name} denied access{said}"
            )
        if code == 404 or status == "NOT_FOUND":
            return self._error(SourceErrorCode.NOT_FOUND, missing)
        if code in (502, 503, 504):
            return self._error(
                SourceErrorCode.UNREACHABLE, f"{self._api.name} is unavailable (HTTP {code}){said}"
            )
        error = status_error(body, self._api.name, said)
        assert error is not None  # not a 2xx
        return self._error(error.code, error.message)

    def _error(self, code: SourceErrorCode, message: str) -> SourceError:
        return self._http.error(code, message)


def _loads(data: bytes) -> Any:
    """The JSON document in `data`, or None when it is not JSON."""
    try:
        return json.loads(data)
    except ValueError:
        return None


def _google_error(data: bytes) -> tuple[str | None, str, set[str]]:
    """The status, message and reasons of Google's error body (empty when it is not one)."""
    document = _loads(data)
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict):
        return None, "", set()
    status = error.get("status")
    message = error.get("message")
    status = status if isinstance(status, str) else None
    message = message if isinstance(message, str) else ""
    reasons: set[str] = set()
    for key in ("errors", "details"):
        items = error.get(key)
        if isinstance(items, list):
            reasons.update(
                item["reason"]
                for item in items
                if isinstance(item, dict) and isinstance(item.get("reason"), str)
            )
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + "…"
    return status, message, reasons
