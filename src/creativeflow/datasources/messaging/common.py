"""What the messaging types share: `host:port` entries and `scheme://host:port` server URLs in
configs, message payloads as preview values (JSON when they parse, else text, else base64),
the socket error behind a driver's exception, and a time budget for reads that wait."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
from pydantic import TypeAdapter, ValidationError

from creativeflow.datasources.base import SourceError, SourceErrorCode
from creativeflow.datasources.fields import HostName, Port, TlsOptions
from creativeflow.datasources.rows import MAX_TEXT

# Time kept back from the service's own deadline, so a read that waits for messages answers
# with what it has instead of being cancelled.
MARGIN_SECONDS = 0.25

_SOCKET_MODULES = frozenset({"builtins", "socket", "ssl", "asyncio.exceptions"})

_HOST: TypeAdapter[str] = TypeAdapter(HostName)


def checked_host(host: str, whole: str) -> str:
    """A host name or address, or a ValueError that names `whole` and what is wrong."""
    try:
        return _HOST.validate_python(host)
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise ValueError(f"the host of {whole!r} {reason}") from None


def parse_host_port(text: str, default_port: int) -> tuple[str, int]:
    """`host:port`, `[v6 address]:port` or `host` (the default port) as a checked pair."""
    value = text.strip()
    if not value:
        raise ValueError("must be host:port")
    if "://" in value or "/" in value:
        raise ValueError(f"{value!r} must be host:port, not a URL")
    port_text: str | None = None
    if value.startswith("["):
        host, closed, rest = value[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ValueError(f"{value!r} must be [IPv6 address]:port")
        port_text = rest[1:] if rest else None
    elif value.count(":") > 1:
        raise ValueError(f"{value!r}: write an IPv6 address in brackets, [address]:port")
    elif ":" in value:
        host, _, port_text = value.partition(":")
    else:
        host = value
    host = checked_host(host, value)
    if port_text is None:
        return host, default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"the port of {value!r} must be a number from 1 to 65535")
    return host, int(port_text)


def server_url(value: str, schemes: tuple[str, ...], default_port: int, auth_field: str) -> str:
    """`scheme://host[:port]` with one of `schemes`, normalised with its port."""
    try:
        url = httpx.URL(value.strip())
    except (httpx.InvalidURL, ValueError, TypeError):
        raise ValueError(
            f"{value!r} is not a URL like {schemes[0]}://host:{default_port}"
        ) from None
    if url.scheme not in schemes:
        raise ValueError(f"{value!r} must be a {' or '.join(s + '://' for s in schemes)} URL")
    if not url.host:
        raise ValueError(f"{value!r} must name a host")
    if url.userinfo:
        raise ValueError(f"{value!r} must not carry credentials; use `{auth_field}`")
    if url.path not in ("", "/") or url.query or url.fragment:
        raise ValueError(f"{value!r} must be only scheme://host:port")
    if url.port is not None and not 1 <= url.port <= 65535:
        raise ValueError(f"the port of {value!r} must be a number from 1 to 65535")
    host = checked_host(url.host, value)
    return f"{url.scheme}://{host_port(host, default_port if url.port is None else url.port)}"


def host_port(host: str, port: int) -> str:
    """`host:port` as a URL or a driver writes it (IPv6 addresses in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def default_port(port: Port | None, tls: TlsOptions, plain: int, secure: int) -> int:
    """The configured port, or the protocol's standard one with or without TLS."""
    if port is not None:
        return port
    return secure if tls.enabled else plain


def payload_value(data: bytes | None) -> Any:
    """A message body as a preview shows it: the JSON it holds, else its text, else base64."""
    if data is None:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(data[:MAX_TEXT]).decode()
    try:
        return json.loads(text)
    except ValueError:
        return text


def payload_text(data: bytes | None) -> str | None:
    """A message key as text, or base64 when it is not UTF-8."""
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(data[:MAX_TEXT]).decode()


class Budget:
    """Seconds left of an operation's time limit, less a margin for answering."""

    def __init__(self, seconds: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._deadline = self._loop.time() + seconds - MARGIN_SECONDS

    def left(self, at_most: float | None = None) -> float:
        left = max(0.0, self._deadline - self._loop.time())
        return left if at_most is None else min(left, at_most)


def cause_chain(exc: BaseException) -> list[BaseException]:
    """The exception and what it was raised from or during (drivers wrap socket errors)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def os_error_in(exc: BaseException) -> OSError | None:
    """The standard library's socket-level error behind a driver's exception (the deepest in
    the chain; a driver's own OSError subclasses do not count), or None."""
    found = None
    for item in cause_chain(exc):
        if isinstance(item, OSError) and type(item).__module__ in _SOCKET_MODULES:
            found = item
    return found


def timeout_error(target: str) -> SourceError:
    return SourceError(SourceErrorCode.TIMEOUT, f"{target} did not answer in time")
