"""A real HTTP server on 127.0.0.1 that receives webhooks: it records every request (headers
and raw body) and answers with the statuses it is told, in order (the last one repeats)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    host: str
    port: int
    # Statuses answered in turn; the last one repeats.
    statuses: list[int] = field(default_factory=lambda: [200])
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hook", *, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def answer(self, *statuses: int) -> None:
        with self.lock:
            self.statuses = list(statuses)

    def next_status(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]

    def record(self, received: Received) -> None:
        with self.lock:
            self.requests.append(received)

    def received(self, path: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if path is None or r.path == path]

    async def wait_for(
        self, count: int, *, path: str | None = None, seconds: float = 20.0
    ) -> list[Received]:
        deadline = time.monotonic() + seconds
        while True:
            got = self.received(path)
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"received {len(got)} requests, expected {count}: {got}")
            await asyncio.sleep(0.05)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            receiver.record(
                Received(
                    method="POST",
                    path=self.path,
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=body,
                )
            )
            status = receiver.next_status()
            self.send_response(status)
            if 300 <= status < 400:
                # Somewhere a webhook must never be led to.
                self.send_header("Location", f"http://127.0.0.1:{receiver.port}/redirected")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            return  # quiet tests

    return Handler


@contextmanager
def running_receiver(*statuses: int) -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(Receiver("127.0.0.1", 0)))
    receiver = Receiver("127.0.0.1", int(server.server_address[1]), list(statuses or [200]))
    server.RequestHandlerClass = _handler(receiver)
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
