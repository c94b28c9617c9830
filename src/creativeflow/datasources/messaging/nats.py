"""NATS through nats-py: the server's INFO, JetStream streams, and a stream's last messages read
by sequence with the stream's get API (reading that way consumes nothing and creates no
consumer).

Before nats-py connects, a plain look at the server's INFO line tells a closed port from a
silent one and whether the server speaks TLS: nats-py upgrades to TLS only when the server
requires it, so a config that asks for TLS must not find a plaintext server (it would send
the credentials in the clear).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import httpx
from pydantic import AfterValidator, ConfigDict, Field, field_validator

from creativeflow.datasources.base import (
    MAX_DISCOVERED,
    CheckResult,
    ConnectContext,
    DiscoveredObject,
    Discovery,
    Preview,
    SourceCategory,
    SourceConfig,
    SourceError,
    SourceErrorCode,
    SourceType,
    network_error,
)
from creativeflow.datasources.fields import TlsOptions
from creativeflow.datasources.messaging.common import (
    Budget,
    host_port,
    payload_value,
    server_url,
    timeout_error,
)
from creativeflow.datasources.messaging.nats_auth import NatsAuth, NoAuth, auth_options
from creativeflow.datasources.rows import infer_columns, jsonable

DEFAULT_PORT = 4222
MAX_INFO_BYTES = 1 << 20
GET_BATCH = 50  # stream messages asked for at once
# How far past `limit` a preview looks back for messages when sequences were deleted.
MAX_GAP = 1000
PREVIEW_COLUMNS = ("seq", "subject", "time", "data")
_STREAM = re.compile(r"^[^\s.*>/\\\x00]{1,255}$")


def _server_url(value: str) -> str:
    return server_url(value, ("nats", "tls"), DEFAULT_PORT, auth_field="auth")


ServerUrl = Annotated[str, AfterValidator(_server_url), Field(max_length=300)]


class NatsConfig(SourceConfig):
    # Validation errors never echo what was sent (it may be a secret).
    model_config = ConfigDict(hide_input_in_errors=True)

    type: Literal["nats"] = Field(description="NATS")
    servers: list[ServerUrl] = Field(
        min_length=1,
        max_length=10,
        description="Servers as nats://host:port (tls:// for TLS; port 4222 when left out), "
        "tried in order",
    )
    auth: NatsAuth = Field(
        default_factory=NoAuth,
        description="none, user_password, token, nkey (seed) or creds (a .creds file)",
    )
    tls: TlsOptions = Field(
        default_factory=TlsOptions, description="TLS (also on for tls:// servers)"
    )

    @field_validator("servers")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    def endpoints(self) -> list[tuple[bool, str, int]]:
        """(TLS wanted, host, port) of each server, in order."""
        endpoints = []
        for server in self.servers:
            url = httpx.URL(server)
            port = DEFAULT_PORT if url.port is None else url.port
            endpoints.append((self.tls.enabled or url.scheme == "tls", url.host, port))
        return endpoints

    def hosts(self) -> list[tuple[str, int]]:
        return [(host, port) for _tls, host, port in self.endpoints()]


async def _server_info(address: str, port: int, budget: Budget) -> dict[str, Any]:
    """The server's INFO (it is the first thing a NATS server says)."""
    async with asyncio.timeout(budget.left()):
        reader, writer = await asyncio.open_connection(address, port, limit=MAX_INFO_BYTES)
        try:
            line = await reader.readline()
        finally:
            writer.close()
    if not line.startswith(b"INFO "):
        raise ValueError("not a NATS INFO line")
    info = json.loads(line[5:])
    if not isinstance(info, dict):
        raise ValueError("INFO is not an object")
    return info


@dataclass(frozen=True, slots=True)
class _Session:
    client: Any  # nats.aio.client.Client, connected
    info: dict[str, Any]
    target: str
    budget: Budget  # what is left of the time limit


def _tls(config: NatsConfig, wants_tls: bool, info: dict[str, Any], target: str) -> Any:
    """The TLS context for a server whose INFO is `info`, or None for plain text."""
    if wants_tls and not info.get("tls_required"):
        raise SourceError(
            SourceErrorCode.TLS_ERROR,
            f"{target} does not require TLS, so the client would talk in plain text; turn TLS "
            "on in the server (or off here)",
        )
    if info.get("tls_required") and not wants_tls:
        raise SourceError(SourceErrorCode.TLS_ERROR, f"{target} requires TLS: turn it on")
    if not wants_tls:
        return None
    tls = config.tls
    return TlsOptions(enabled=True, verify=tls.verify, ca_certificate=tls.ca_certificate).context()


def _connect_error(
    exc: BaseException, config: NatsConfig, info: dict[str, Any], target: str
) -> SourceError:
    text = str(exc).lower()
    if "authorization violation" in text or type(exc).__name__ == "AuthorizationError":
        if isinstance(config.auth, NoAuth) and info.get("auth_required"):
            return SourceError(
                SourceErrorCode.AUTH_FAILED, f"{target} requires authentication; set `auth`"
            )
        return SourceError(
            SourceErrorCode.AUTH_FAILED, f"{target} refused the {config.auth.mode} credentials"
        )
    if isinstance(exc, OSError | TimeoutError):
        return network_error(exc, target)
    return SourceError(SourceErrorCode.PROTOCOL_ERROR, f"{target}: {type(exc).__name__}")


@contextlib.asynccontextmanager
async def _connected(config: NatsConfig, context: ConnectContext) -> AsyncIterator[_Session]:
    """A client connected to the first server that answers, closed on the way out."""
    import nats
    from nats import errors

    budget = Budget(context.timeout_seconds)
    auth = auth_options(config.auth)
    first_error: SourceError | None = None
    for wants_tls, host, port in config.endpoints():
        target = f"the NATS server {host_port(host, port)}"
        address = await context.address(host, port)
        try:
            info = await _server_info(address, port, budget)
        except (OSError, TimeoutError) as exc:
            first_error = first_error or network_error(exc, target)
            if budget.left() <= 0:
                break
            continue
        except (ValueError, asyncio.LimitOverrunError):
            error = SourceError(SourceErrorCode.PROTOCOL_ERROR, f"{target} is not a NATS server")
            raise error from None
        tls = _tls(config, wants_tls, info, target)
        seen: list[BaseException] = []

        async def on_error(exc: BaseException, seen: list[BaseException] = seen) -> None:
            seen.append(exc)

        client = nats.NATS()
        try:
            async with asyncio.timeout(budget.left()):
                await client.connect(
                    servers=[f"nats://{host_port(address, port)}"],
                    name="creativeflow",
                    error_cb=on_error,
                    allow_reconnect=False,
                    # Counted only when positive: one retry, then NoServersError.
                    max_reconnect_attempts=1,
                    reconnect_time_wait=0,
                    connect_timeout=max(1, math.ceil(budget.left())),
                    dont_randomize=True,
                    tls=tls,
                    tls_hostname=host if tls else None,
                    **auth,
                )
        except (errors.NoServersError, OSError, TimeoutError, errors.Error) as exc:
            # nats-py leaves the socket open when the server refuses the CONNECT.
            await _close(client)
            cause = seen[-1] if isinstance(exc, errors.NoServersError) and seen else exc
            raise _connect_error(cause, config, info, target) from None
        try:
            yield _Session(client=client, info=info, target=target, budget=budget)
            return
        finally:
            await _close(client)
    assert first_error is not None
    raise first_error


async def _close(client: Any) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(1.0):
            await client.close()


def stream_name(value: str) -> str:
    if not _STREAM.match(value):
        raise SourceError(
            SourceErrorCode.INVALID_OBJECT,
            "a JetStream stream name is 1-255 characters without spaces, '.', '*', '>' or "
            "path separators",
        )
    return value


def _api_error(exc: BaseException, target: str, stream: str | None = None) -> SourceError:
    from nats.js import errors as js

    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, js.ServiceUnavailableError) or (
        isinstance(exc, js.APIError) and exc.err_code == 10039
    ):
        return SourceError(
            SourceErrorCode.NOT_SUPPORTED,
            f"JetStream is not enabled for this account on {target}; core NATS keeps no "
            "streams to list",
        )
    if isinstance(exc, js.NotFoundError):
        return SourceError(SourceErrorCode.NOT_FOUND, f"{target} has no stream {stream!r}")
    if isinstance(exc, js.APIError) and exc.code == 403:
        return SourceError(SourceErrorCode.PERMISSION_DENIED, f"{target}: not allowed here")
    if isinstance(exc, TimeoutError):
        return timeout_error(target)
    if isinstance(exc, js.APIError):
        return SourceError(
            SourceErrorCode.ERROR, f"{target}: JetStream error {exc.code} ({exc.description})"
        )
    return SourceError(SourceErrorCode.ERROR, f"{target}: {type(exc).__name__}")


def _require_jetstream(session: _Session) -> None:
    if not session.info.get("jetstream"):
        raise SourceError(
            SourceErrorCode.NOT_SUPPORTED,
            f"JetStream is not enabled on {session.target}; core NATS keeps no streams to list "
            "or read",
        )


class NatsConnector:
    async def check(self, config: NatsConfig, context: ConnectContext) -> CheckResult:
        async with _connected(config, context) as session:
            info = session.info
            return CheckResult(
                server_version=info.get("version"),
                details={
                    "server": session.target.removeprefix("the NATS server "),
                    "server_name": info.get("server_name"),
                    "jetstream": bool(info.get("jetstream")),
                    "max_payload": info.get("max_payload"),
                },
            )

    async def discover(self, config: NatsConfig, context: ConnectContext) -> Discovery:
        async with _connected(config, context) as session:
            _require_jetstream(session)
            manager = session.client.jsm(timeout=context.timeout_seconds)
            streams: list[Any] = []
            total = 0
            try:
                async with asyncio.timeout(session.budget.left()):
                    while len(streams) < MAX_DISCOVERED:
                        page = await manager.streams_info_iterator(offset=len(streams))
                        total = page.total
                        batch = list(page)
                        streams += batch
                        if not batch or len(streams) >= total:
                            break
            except Exception as exc:
                raise _api_error(exc, session.target) from exc
        objects = [
            DiscoveredObject(
                name=stream.config.name,
                kind="stream",
                details={
                    "subjects": list(stream.config.subjects or []),
                    "messages": stream.state.messages,
                    "bytes": stream.state.bytes,
                    "first_seq": stream.state.first_seq,
                    "last_seq": stream.state.last_seq,
                    "consumers": stream.state.consumer_count,
                },
            )
            for stream in streams[:MAX_DISCOVERED]
        ]
        return Discovery(objects=objects, truncated=total > len(objects))

    async def preview(
        self, config: NatsConfig, context: ConnectContext, object_name: str, limit: int
    ) -> Preview:
        name = stream_name(object_name)
        async with _connected(config, context) as session:
            _require_jetstream(session)
            manager = session.client.jsm(timeout=context.timeout_seconds)
            try:
                async with asyncio.timeout(session.budget.left()):
                    info = await manager.stream_info(name)
                    messages = await _last_messages(manager, name, info, limit)
            except Exception as exc:
                raise _api_error(exc, session.target, name) from exc
        rows = [
            {"seq": m.seq, "subject": m.subject, "time": m.time, "data": payload_value(m.data)}
            for m in messages
        ]
        return Preview(
            columns=infer_columns(rows, order=PREVIEW_COLUMNS),
            rows=[jsonable(row) for row in rows],
            truncated=info.state.messages > len(rows),
        )


async def _last_messages(manager: Any, name: str, info: Any, limit: int) -> list[Any]:
    """The last `limit` messages by sequence, oldest first; deleted sequences are skipped,
    looking at most MAX_GAP sequences further back. Direct get where the stream allows it."""
    from nats.js.errors import NotFoundError

    direct = bool(getattr(info.config, "allow_direct", False))
    first, last = info.state.first_seq, info.state.last_seq
    if not info.state.messages or last < first:
        return []
    lowest = max(first, last - limit - MAX_GAP + 1)
    found: list[Any] = []
    seq = last
    while seq >= lowest and len(found) < limit:
        batch = range(seq, max(lowest, seq - GET_BATCH + 1) - 1, -1)

        async def get(number: int) -> Any:
            try:
                return await manager.get_msg(name, seq=number, direct=direct)
            except NotFoundError:
                return None

        answers = await asyncio.gather(*(get(number) for number in batch))
        found += [answer for answer in answers if answer is not None]
        seq = batch[-1] - 1
    return sorted(found[:limit], key=lambda message: message.seq)


SOURCE_TYPE = SourceType(
    name="nats",
    display_name="NATS",
    category=SourceCategory.STREAMING,
    config_model=NatsConfig,
    connector=NatsConnector(),
    description="A NATS server and its JetStream streams, with a stream's last messages",
    drivers=("nats",),
    extra="nats",
)
