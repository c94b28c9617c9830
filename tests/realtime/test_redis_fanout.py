"""Realtime across processes through Redis (database 12): two `creativeflow serve` processes on
one database, this test process publishing as a third, and a Celery worker whose jobs' events
reach a socket held by an API process."""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from kombu import Connection

from creativeflow.jobs.wakers import JOBS_QUEUE
from creativeflow.platform import Platform
from creativeflow.realtime.publishing import publish_content_update
from tests.factories import UserFactory
from tests.jobs.live import creativeflow_command, process, running_platform, wait_for
from tests.realtime.live import (
    Server,
    authenticated,
    open_socket,
    realtime_settings,
    sequences,
    serve,
    server_environment,
    until_up,
)
from tests.realtime.subjects import PROFILE

QUEUE_SIZE = 16


@dataclass
class Pair:
    first: Server
    second: Server
    platform: Platform  # this process's, publishing through the same Redis
    users: UserFactory  # registers through the first server


@pytest.fixture(scope="module")
async def pair(
    live_database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Pair]:
    data_dir = tmp_path_factory.mktemp("fanout")
    settings = realtime_settings(live_database_url, data_dir, redis_url=redis_url)
    env = server_environment(settings, REDIS_URL=redis_url, REALTIME_QUEUE_SIZE=str(QUEUE_SIZE))
    # This process seeds the built-in roles first: two servers starting at once on an empty
    # PostgreSQL database would race to insert them (one fails on uq_roles_name).
    async with running_platform(settings, start_jobs=False) as platform:
        with serve(env, data_dir / "first.log") as first:
            await until_up(first.base_url)
            with serve(env, data_dir / "second.log") as second:
                await until_up(second.base_url)
                async with httpx.AsyncClient(base_url=first.base_url, timeout=20) as client:
                    yield Pair(first, second, platform, UserFactory(client, platform))


async def _execute_task(user_headers: dict[str, str], base_url: str, user_id: str) -> str:
    async with httpx.AsyncClient(base_url=base_url, timeout=20) as client:
        response = await client.post(
            "/api/v1/tasks/execute",
            headers=user_headers,
            json={
                "task_type": "visual_prompt",
                "input": {"description": "Two lanterns on a pier"},
                "subject_type": PROFILE,
                "subject_id": user_id,
            },
        )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def test_a_jobs_events_reach_its_sockets_on_every_api_process(pair: Pair) -> None:
    user = await pair.users.create()
    async with (
        authenticated(pair.first.ws_url, user.access_token) as on_first,
        authenticated(pair.second.ws_url, user.access_token) as on_second,
        authenticated(f"{pair.second.ws_url}/{user.id}", user.access_token) as subject,
    ):
        job_id = await _execute_task(user.headers, pair.first.base_url, user.id)
        first = await on_first.until("task_complete")
        second = await on_second.until("task_complete")
        on_subject = await subject.until("task_complete")
    # Whichever process ran the job, the other one's sockets got the very same messages.
    assert first == second
    assert [m["type"] for m in first] == ["generation_progress"] * 2 + ["task_complete"]
    assert sequences(first, on_first.base) == [1, 2, 3]
    assert {m["job_id"] for m in first} == {job_id}
    assert sequences(on_subject, subject.base) == [1, 2, 3]
    assert {m["channel"] for m in on_subject} == {f"subject:{user.id}"}


async def test_a_message_published_by_another_process_reaches_a_socket(pair: Pair) -> None:
    user = await pair.users.create()
    panel_id = uuid.uuid4()
    async with authenticated(f"{pair.second.ws_url}/{user.id}", user.access_token) as socket:
        message = await publish_content_update(
            pair.platform.realtime, uuid.UUID(user.id), panel_id, {"action": "updated"}
        )
        received = await socket.receive()
    assert message is not None
    assert received == message.to_dict()
    assert received["type"] == "content_update"
    assert received["resource_id"] == str(panel_id)


async def test_a_client_reconnecting_to_another_process_gets_what_it_missed(pair: Pair) -> None:
    user = await pair.users.create()
    async with authenticated(pair.first.ws_url, user.access_token) as socket:
        await _execute_task(user.headers, pair.first.base_url, user.id)
        seen = await socket.until("task_complete")
    last_seen = seen[-1]["sequence"]
    missed = await _execute_task(user.headers, pair.second.base_url, user.id)
    await wait_for(pair.platform, missed, seconds=30)
    await asyncio.sleep(0.5)  # its completion is published just after its commit
    url = f"{pair.second.ws_url}?token={user.access_token}&since={last_seen}"
    async with open_socket(url) as socket:
        connected = await socket.receive()
        replayed = [await socket.receive() for _ in range(3)]
    assert connected["data"]["sequence"] == last_seen + 3
    assert [m["sequence"] for m in replayed] == [last_seen + 1, last_seen + 2, last_seen + 3]
    assert {m["job_id"] for m in replayed} == {missed}


async def test_a_client_that_stops_reading_is_disconnected_alone(pair: Pair) -> None:
    """Its queue overflows (4413); a client of the same channel that reads gets everything."""
    user = await pair.users.create()
    subject = f"{pair.second.ws_url}/{user.id}"
    # ~10 MB that permessage-deflate cannot shrink: more than the socket buffers hold.
    count, padding = 300, secrets.token_hex(16_000)
    # The slow client's library stops reading its (small) socket after one frame it was not
    # asked for.
    async with (
        authenticated(subject, user.access_token, max_queue=1, receive_buffer=8192) as slow,
        authenticated(subject, user.access_token) as reader,
    ):
        for n in range(count):
            await publish_content_update(
                pair.platform.realtime, uuid.UUID(user.id), uuid.uuid4(), {"n": n, "pad": padding}
            )
            if n % 20 == 19:  # the reader keeps up as it goes
                assert [(await reader.receive())["data"]["n"] for _ in range(20)] == list(
                    range(n - 19, n + 1)
                )
        code, reason = await slow.closed(seconds=30)
        assert await reader.round_trip() == []  # still open, nothing left behind
    assert code == 4413
    assert f"more than {QUEUE_SIZE} messages" in reason


# -- a Celery worker --------------------------------------------------------------------------


async def test_a_celery_workers_job_events_reach_an_api_processs_socket(
    live_database_url: str, redis_url: str, tmp_path: Path
) -> None:
    with Connection(redis_url) as connection:  # an earlier run's leftover wake-ups
        connection.default_channel.queue_delete(JOBS_QUEUE)
    settings = realtime_settings(
        live_database_url, tmp_path, redis_url=redis_url, celery_broker_url=redis_url
    )
    env = server_environment(settings, REDIS_URL=redis_url, CELERY_BROKER_URL=redis_url)
    worker = creativeflow_command(
        "worker",
        "--concurrency",
        "1",
        "--loglevel",
        "WARNING",
        "--name",
        f"realtime-{os.getpid()}@localhost",
    )
    with ExitStack() as stack:
        server = stack.enter_context(serve(env, tmp_path / "serve.log"))
        stack.enter_context(process(worker, env, tmp_path / "worker.log"))
        await until_up(server.base_url)
        async with (
            running_platform(settings, start_jobs=False) as platform,
            httpx.AsyncClient(base_url=server.base_url, timeout=20) as client,
        ):
            user = await UserFactory(client, platform).create()
            async with authenticated(server.ws_url, user.access_token) as socket:
                job_id = await _execute_task(user.headers, server.base_url, user.id)
                received = await socket.until("task_complete", seconds=60)
            job = await wait_for(platform, job_id, seconds=30)
    assert [m["type"] for m in received] == ["generation_progress"] * 2 + ["task_complete"]
    assert {m["job_id"] for m in received} == {job_id}
    assert received[-1]["data"]["status"] == "succeeded"
    assert job.attempts == 1  # in Celery mode the API process runs no job: the worker did
