"""Fake remote services for provider tests: a Starlette app served by uvicorn on 127.0.0.1
(a free port) in a background thread, and a scripted server that records every request it
receives and answers each route from a queue of scripted replies, then its default handler.

Providers are exercised over real HTTP against these; nothing of the provider is mocked.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from PIL import Image
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

STARTUP_SECONDS = 10.0


@contextmanager
def serve_app(app: ASGIApp) -> Iterator[str]:
    """Serve `app` on 127.0.0.1:<free port> in a background thread; yields its base URL
    (`http://127.0.0.1:PORT`) and stops the server on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        access_log=False,
        # Slow handlers still sleeping when a test ends must not hold the teardown up.
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_SECONDS)
        sock.close()


@dataclass(frozen=True, slots=True)
class UploadedFile:
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass(slots=True)
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body: bytes
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


Handler = Callable[[Recorded], Awaitable[Response]]
Reply = Response | Handler


class ScriptedServer:
    """Routes answered by scripted replies (used once each, in order) and then by the route's
    default handler; every request is recorded. Handlers run on the server's own loop."""

    def __init__(self) -> None:
        self.base_url = ""
        self.requests: list[Recorded] = []
        self._defaults: dict[tuple[str, str], Handler] = {}
        self._scripts: dict[tuple[str, str], deque[Reply]] = defaultdict(deque)
        self._lock = threading.Condition()

    def app(self) -> Starlette:
        methods = ["GET", "POST", "PUT", "DELETE"]
        return Starlette(routes=[Route("/{path:path}", self._dispatch, methods=methods)])

    def route(self, method: str, path: str, handler: Handler) -> None:
        """The default answer of `method path`."""
        self._defaults[(method.upper(), path)] = handler

    def script(self, method: str, path: str, *replies: Reply) -> None:
        """Answers for the next requests to `method path`, before its default."""
        with self._lock:
            self._scripts[(method.upper(), path)].extend(replies)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._scripts.clear()

    def calls(self, path: str, method: str | None = None) -> list[Recorded]:
        with self._lock:
            return [
                r
                for r in self.requests
                if r.path == path and (method is None or r.method == method.upper())
            ]

    async def received(self, path: str, seconds: float = 5.0) -> Recorded:
        """The first request to `path`, waited for (it arrives on the server's thread)."""
        return await asyncio.to_thread(self._wait_for, path, seconds)

    def _wait_for(self, path: str, seconds: float) -> Recorded:
        with self._lock:
            if not self._lock.wait_for(lambda: self._first(path) is not None, seconds):
                raise TimeoutError(f"no request to {path} within {seconds:g} s")
            found = self._first(path)
            assert found is not None
            return found

    def _first(self, path: str) -> Recorded | None:
        return next((r for r in self.requests if r.path == path), None)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    async def _dispatch(self, request: Request) -> Response:
        recorded = await _record(request)
        key = (recorded.method, recorded.path)
        with self._lock:
            self.requests.append(recorded)
            self._lock.notify_all()
            queue = self._scripts.get(key)
            reply: Reply | None = queue.popleft() if queue else None
        if reply is None:
            reply = self._defaults.get(key)
        if reply is None:
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        if isinstance(reply, Response):
            return reply
        return await reply(recorded)


async def _record(request: Request) -> Recorded:
    body = await request.body()
    recorded = Recorded(
        method=request.method,
        path=request.url.path,
        headers={k.lower(): v for k, v in request.headers.items()},
        query=dict(request.query_params),
        body=body,
    )
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        async with request.form() as form:
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    data = await value.read()
                    recorded.files[name] = UploadedFile(value.filename, value.content_type, data)
                else:
                    recorded.form[name] = value
    return recorded


@contextmanager
def scripted_server() -> Iterator[ScriptedServer]:
    fake = ScriptedServer()
    with serve_app(fake.app()) as base_url:
        fake.base_url = base_url
        yield fake


# -- answers ---------------------------------------------------------------------------------


def image_bytes(width: int = 64, height: int = 48, fmt: str = "PNG", colour: str = "teal") -> bytes:
    """A real encoded image of the given size."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format=fmt)
    return buffer.getvalue()


def b64_image(width: int = 64, height: int = 48, fmt: str = "PNG") -> str:
    return base64.b64encode(image_bytes(width, height, fmt)).decode()


def status(code: int, body: Any = None, headers: dict[str, str] | None = None) -> Response:
    """A JSON error (or any) answer."""
    payload = body if body is not None else {"error": {"message": f"status {code}"}}
    return JSONResponse(payload, status_code=code, headers=headers)


def slow(seconds: float, reply: Response) -> Handler:
    """An answer that takes `seconds` to arrive."""

    async def handler(_: Recorded) -> Response:
        await asyncio.sleep(seconds)
        return reply

    return handler


def raw(text: str, code: int = 200, media_type: str = "application/json") -> Response:
    """A body sent as is (for answers that are not JSON)."""
    return Response(text, status_code=code, media_type=media_type)


# -- protocol answers ------------------------------------------------------------------------

SERVED_MODEL = "gpt-4o-mini-2024-07-18"


def openai_completion(
    content: Any, *, prompt_tokens: int = 12, completion_tokens: int = 5
) -> JSONResponse:
    """An OpenAI chat completion whose message says `content`."""
    return JSONResponse(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": SERVED_MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


def openai_images(count: int, *, width: int = 96, height: int = 64) -> JSONResponse:
    """An OpenAI images answer with `count` inline (base64) PNGs and gpt-image usage."""
    return JSONResponse(
        {
            "created": 1_700_000_000,
            "data": [
                {"b64_json": b64_image(width, height), "revised_prompt": f"revised {i}"}
                for i in range(count)
            ],
            "usage": {"input_tokens": 20, "output_tokens": 300, "total_tokens": 320},
        }
    )
