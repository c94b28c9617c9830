"""A request is one unit of work: routes get one session, and the route boundary commits it once
before the response leaves (rolling back on any error), so a 2xx always means committed."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.http.direct import is_direct
from creativeflow.shared.core.exceptions import BaseAPIException
from creativeflow.shared.messaging.bus import take_pending_events

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SESSION_KEY = "db_session"


def open_request_session(request: Request) -> AsyncSession:
    """The request's session, opened on first use. Writes get the write-locking engine."""
    session: AsyncSession | None = getattr(request.state, _SESSION_KEY, None)
    if session is None:
        platform = request.app.state.platform
        factory = (
            platform.read_sessions if request.method in SAFE_METHODS else platform.write_sessions
        )
        session = factory()
        setattr(request.state, _SESSION_KEY, session)
    return session


async def finish_request_session(request: Request, *, commit: bool) -> None:
    session: AsyncSession | None = getattr(request.state, _SESSION_KEY, None)
    if session is None:
        return
    setattr(request.state, _SESSION_KEY, None)
    try:
        if commit:
            await session.commit()
        else:
            await session.rollback()
    finally:
        await session.close()
    events = take_pending_events(session.info)
    if commit:
        # Durable events went to the outbox with the commit, and reach subscribers through its
        # dispatcher (signalled by the commit itself); what is left are process signals.
        for event in events:
            if not event.durable:
                await request.app.state.platform.events.publish(event)


class UnitOfWorkRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = self.endpoint if is_direct(self.endpoint) else super().get_route_handler()

        async def handle(request: Request) -> Response:
            gate = request.app.state.platform.write_gate
            if gate is None or request.method in SAFE_METHODS:
                return await run(request)
            async with gate:
                return await run(request)

        async def run(request: Request) -> Response:
            try:
                response = await handler(request)
            except BaseAPIException as exc:
                await finish_request_session(request, commit=exc.commit_changes)
                raise
            except BaseException:
                await finish_request_session(request, commit=False)
                raise
            await finish_request_session(request, commit=response.status_code < 400)
            return response

        return handle


def api_router(**kwargs: Any) -> APIRouter:
    """An APIRouter whose routes commit once at the boundary."""
    return APIRouter(route_class=UnitOfWorkRoute, **kwargs)
