"""A request is one unit of work: routes get one session, and the route boundary commits it once
before the response leaves (rolling back on any error), so a 2xx always means committed."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.http.direct import is_direct
from creativeflow.shared.core.exceptions import BaseAPIException
from creativeflow.shared.messaging.bus import take_pending_events

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SESSION_KEY = "db_session"


def open_request_session(request: Request, *, write: bool | None = None) -> AsyncSession:
    """The request's session, opened on first use. Writes (by default: requests that are not
    GET, HEAD or OPTIONS) get the write-locking engine."""
    session: AsyncSession | None = getattr(request.state, _SESSION_KEY, None)
    if session is None:
        platform = request.app.state.platform
        if write is None:
            write = request.method not in SAFE_METHODS
        factory = platform.write_sessions if write else platform.read_sessions
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


class UngatedRoute(APIRoute):
    """A route that talks to something slow (a client streaming an upload, a data source being
    tested) and so must not hold a transaction, or SQLite's write gate, for the whole request
    as `UnitOfWorkRoute` does. Its endpoint opens short units of work itself
    (`unit_of_work`) around the slow part. Whatever is still open at the end (authentication's
    session after an error) is rolled back here on every exit."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            finally:
                await finish_request_session(request, commit=False)

        return handle


@contextlib.asynccontextmanager
async def unit_of_work(request: Request, *, write: bool = True) -> AsyncIterator[AsyncSession]:
    """One unit of work of an `UngatedRoute`'s request, begun now: a write queues on SQLite's
    write gate like every write request and commits once (rolled back on any error); a read
    is rolled back and released at the end. An endpoint may open several, one after another."""
    gate = request.app.state.platform.write_gate if write else None
    async with gate or contextlib.nullcontext():
        session = open_request_session(request, write=write)
        try:
            yield session
        except BaseAPIException as exc:
            await finish_request_session(request, commit=write and exc.commit_changes)
            raise
        except BaseException:
            await finish_request_session(request, commit=False)
            raise
        await finish_request_session(request, commit=write)
