"""Fixtures for the HTTP convention tests: log capture, and the platform's app with extra
test-only routes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from creativeflow.app import create_app
from creativeflow.platform import Platform
from creativeflow.shared.core.logging import log_to
from tests.http.support import LogCapture


@pytest.fixture
def capture_logs() -> Iterator[Callable[[], LogCapture]]:
    """Call after the app is built (create_app configures logging): from then on, every line
    the platform logs is also kept, exactly as written on stderr."""
    with ExitStack() as stack:

        def start() -> LogCapture:
            capture = LogCapture()
            stack.enter_context(log_to(capture.stream))
            return capture

        yield start


@pytest.fixture
def build_client(platform: Platform) -> Callable[..., Any]:
    """`async with build_client(extend) as (app, client)`: the platform's app, with `extend(app)`
    adding test-only routes before the first request."""

    @asynccontextmanager
    async def build(
        extend: Callable[[FastAPI], None] | None = None,
    ) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
        app = create_app(platform.settings, platform=platform)
        if extend is not None:
            extend(app)
        transport = httpx.ASGITransport(app=app, client=("203.0.113.20", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client

    return build
