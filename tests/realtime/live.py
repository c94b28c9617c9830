"""Real `creativeflow serve` processes and a real WebSocket client (the `websockets` library)
for the realtime tests."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from creativeflow.identity.principal import Principal
from creativeflow.jobs.models import Job
from creativeflow.jobs.service import JobService, Subject
from creativeflow.platform import Platform
from creativeflow.settings import Settings
from tests.jobs.live import creativeflow_command, environment_of, free_port, live_settings, process
from tests.realtime.subjects import PROFILE

SERVER_MODULES = ["tests.realtime.server_plugins"]
CONNECTION_MESSAGES = {"ping", "pong"}


def realtime_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    return live_settings(database_url, data_dir, job_modules=SERVER_MODULES, **overrides)


@dataclass(frozen=True)
class Server:
    base_url: str
    log: Path

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/api/v1/ws"


async def until_up(base_url: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base_url) as client:
        while True:
            try:
                if (await client.get("/api/v1/health/live")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the server did not start")
            await asyncio.sleep(0.1)


def server_environment(settings: Settings, **extra: str) -> dict[str, str]:
    """`settings` for a child process; REDIS_URL and CELERY_BROKER_URL only when given."""
    env = environment_of(settings, **extra)
    for name in ("REDIS_URL", "CELERY_BROKER_URL"):
        if name not in extra:
            env.pop(name, None)
    return env


@contextmanager
def serve(env: dict[str, str], log: Path) -> Iterator[Server]:
    """A `creativeflow serve` process (killed at exit); wait for it with `until_up`."""
    port = free_port()
    command = creativeflow_command("serve", "--port", str(port), "--no-migrate")
    with process(command, env, log):
        yield Server(f"http://127.0.0.1:{port}", log)


class Socket:
    """A client connection that reads JSON messages, skipping the server's pings unless asked."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.connected: dict[str, Any] = {}  # the `connected` message, once received

    @property
    def base(self) -> int:
        """The channel's latest sequence when this socket connected."""
        return int(self.connected["data"]["sequence"])

    async def receive(self, *, seconds: float = 15.0, pings: bool = False) -> dict[str, Any]:
        async with asyncio.timeout(seconds):
            while True:
                message: dict[str, Any] = json.loads(await self.connection.recv())
                if pings or message["type"] not in CONNECTION_MESSAGES:
                    return message

    async def until(self, message_type: str, *, seconds: float = 30.0) -> list[dict[str, Any]]:
        """Every message up to and including the first of `message_type`."""
        received = []
        async with asyncio.timeout(seconds):
            while True:
                message = await self.receive(seconds=seconds)
                received.append(message)
                if message["type"] == message_type:
                    return received

    async def round_trip(self, *, seconds: float = 15.0) -> list[dict[str, Any]]:
        """Send a ping and wait for its pong: the messages that came before it (the
        server's own pings left out). Anything published before the ping is among them."""
        await self.send({"type": "ping"})
        before = []
        async with asyncio.timeout(seconds):
            while (message := await self.receive(seconds=seconds, pings=True))["type"] != "pong":
                if message["type"] != "ping":
                    before.append(message)
        return before

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        await self.connection.send(json.dumps(message) if isinstance(message, dict) else message)

    async def closed(self, *, seconds: float = 15.0) -> tuple[int, str]:
        """The close code and reason the server sent (messages before it are skipped)."""
        try:
            async with asyncio.timeout(seconds):
                while True:
                    await self.connection.recv()
        except ConnectionClosed as closed:
            assert closed.rcvd is not None, "closed without a close frame"
            return closed.rcvd.code, closed.rcvd.reason
        raise AssertionError("unreachable")


@asynccontextmanager
async def open_socket(
    url: str, *, receive_buffer: int | None = None, **options: Any
) -> AsyncIterator[Socket]:
    """`receive_buffer` caps the kernel's receive buffer (bytes) of this client's socket, so
    that a client which stops reading holds back the server soon."""
    if receive_buffer is not None:
        parsed = urlparse(url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (parsed.hostname, parsed.port))
        options["sock"] = sock
    async with connect(url, open_timeout=10, close_timeout=2, **options) as connection:
        yield Socket(connection)


@asynccontextmanager
async def authenticated(url: str, token: str, **options: Any) -> AsyncIterator[Socket]:
    """A socket past its `connected` message (token in the query)."""
    separator = "&" if "?" in url else "?"
    async with open_socket(f"{url}{separator}token={token}", **options) as socket:
        socket.connected = await socket.receive()
        assert socket.connected["type"] == "connected", socket.connected
        yield socket


async def submit_job(
    platform: Platform,
    user_id: str,
    kind: str,
    data: dict[str, Any],
    *,
    profile: bool = False,
) -> Job:
    """A job of `user_id` (on their own `tests.profile` subject when asked), written to the
    shared database: a server's runner picks it up."""
    principal = Principal(uuid.UUID(user_id), "owner", frozenset(), frozenset())
    subject = Subject(PROFILE, uuid.UUID(user_id)) if profile else None
    async with platform.write_transaction() as session:
        job, _ = await JobService(session, principal, default_max_attempts=1).submit(
            kind, data, subject=subject
        )
    return job


async def submit_steps(
    platform: Platform,
    user_id: str,
    *,
    steps: int,
    step_seconds: float = 0.0,
    profile: bool = False,
) -> Job:
    """A `tests.steps` job: one progress report per step."""
    return await submit_job(
        platform,
        user_id,
        "tests.steps",
        {"steps": steps, "step_seconds": step_seconds},
        profile=profile,
    )


def sequences(messages: list[dict[str, Any]], base: int = 0) -> list[int]:
    """The channel events' sequences, counted from `base`."""
    return [m["sequence"] - base for m in messages if m["sequence"] is not None]
