"""A request is one unit of work (STYLE.md habit 1): the route boundary commits once before the
response is sent, rolls back on any error, and a failed commit is never a success."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.http.auth import DbSession
from creativeflow.http.routing import api_router
from creativeflow.identity.models import Role
from creativeflow.shared.core.exceptions import AuthenticationException, ConflictException
from tests.http.support import assert_problem


def _routes(app: FastAPI) -> None:
    router = api_router(prefix="/test/uow")

    async def add_role(session: AsyncSession, name: str) -> None:
        session.add(Role(name=name, description="unit of work probe", permissions=[]))
        await session.flush()

    @router.post("/ok/{name}", status_code=201, summary="Writes and succeeds")
    async def ok(name: str, session: DbSession) -> dict[str, str]:
        await add_role(session, name)
        return {"name": name}

    @router.post("/conflict/{name}", summary="Writes, then fails as expected")
    async def conflict(name: str, session: DbSession) -> None:
        await add_role(session, name)
        raise ConflictException("already there")

    @router.post("/keep/{name}", summary="Writes, then fails but keeps the write")
    async def keep(name: str, session: DbSession) -> None:
        await add_role(session, name)
        raise AuthenticationException("refresh token replayed", commit=True)

    @router.post("/crash/{name}", summary="Writes, then crashes")
    async def crash(name: str, session: DbSession) -> None:
        await add_role(session, name)
        raise RuntimeError("bug")

    @router.post("/commit-fails/{name}", status_code=201, summary="The commit itself fails")
    async def commit_fails(name: str, session: DbSession) -> dict[str, str]:
        await add_role(session, name)

        async def failing_commit() -> None:
            raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

        session.commit = failing_commit  # type: ignore[method-assign]
        return {"name": name}

    app.include_router(router)


async def _stored(session: AsyncSession, name: str) -> bool:
    session.expire_all()
    return (await session.scalar(select(Role).where(Role.name == name))) is not None


@pytest.fixture
def name() -> str:
    return f"uow-{uuid.uuid4().hex[:12]}"


async def test_a_successful_write_is_committed_before_the_response(
    build_client: Callable[..., Any], session: AsyncSession, name: str
) -> None:
    async with build_client(_routes) as (_app, client):
        response = await client.post(f"/test/uow/ok/{name}")
    assert response.status_code == 201
    assert await _stored(session, name)


async def test_an_expected_failure_rolls_the_writes_back(
    build_client: Callable[..., Any], session: AsyncSession, name: str
) -> None:
    async with build_client(_routes) as (_app, client):
        response = await client.post(f"/test/uow/conflict/{name}")
    assert_problem(response, 409)
    assert not await _stored(session, name)


async def test_a_failure_may_keep_its_writes_when_it_says_so(
    build_client: Callable[..., Any], session: AsyncSession, name: str
) -> None:
    async with build_client(_routes) as (_app, client):
        response = await client.post(f"/test/uow/keep/{name}")
    assert_problem(response, 401)
    assert await _stored(session, name)


async def test_a_crash_rolls_the_writes_back(
    build_client: Callable[..., Any], session: AsyncSession, name: str
) -> None:
    async with build_client(_routes) as (_app, client):
        response = await client.post(f"/test/uow/crash/{name}")
    assert_problem(response, 500)
    assert "bug" not in response.text
    assert not await _stored(session, name)


async def test_a_failed_commit_is_an_error_not_a_success(
    build_client: Callable[..., Any], session: AsyncSession, name: str
) -> None:
    async with build_client(_routes) as (_app, client):
        response = await client.post(f"/test/uow/commit-fails/{name}")
    body = assert_problem(response, 500)
    assert "disk I/O" not in response.text
    assert body["code"] == "INTERNAL_ERROR"
    assert not await _stored(session, name)
