"""The WebSocket endpoints against a real `creativeflow serve` process (in-process hub), with
the `websockets` client: authentication, access, job events, replay, filters, heartbeats."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
import pytest

from creativeflow.platform import Platform
from tests.factories import UserFactory
from tests.jobs.live import running_platform, wait_for
from tests.realtime.live import (
    Server,
    authenticated,
    open_socket,
    realtime_settings,
    sequences,
    serve,
    server_environment,
    submit_job,
    submit_steps,
    until_up,
)
from tests.realtime.subjects import PROFILE

if TYPE_CHECKING:
    from tests.factories import TestUser

REPLAY_EVENTS = 8


@dataclass
class Live:
    server: Server
    platform: Platform  # this test process's, on the server's database
    users: UserFactory

    @property
    def ws(self) -> str:
        return self.server.ws_url


@pytest.fixture(scope="module")
async def live(
    live_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Live]:
    data_dir = tmp_path_factory.mktemp("realtime")
    settings = realtime_settings(live_database_url, data_dir)
    env = server_environment(
        settings,
        LOG_LEVEL="INFO",  # the handshake lines, to check that tokens stay out of them
        REALTIME_REPLAY_EVENTS=str(REPLAY_EVENTS),
        REALTIME_AUTH_TIMEOUT_SECONDS="1",
        REALTIME_PING_SECONDS="1",
    )
    with serve(env, data_dir / "serve.log") as server:
        await until_up(server.base_url)
        async with (
            running_platform(settings, start_jobs=False) as platform,
            httpx.AsyncClient(base_url=server.base_url, timeout=20) as client,
        ):
            yield Live(server, platform, UserFactory(client, platform))


async def _job_finished(live: Live, job_id: uuid.UUID | str) -> None:
    await wait_for(live.platform, job_id, seconds=30)


# -- authentication ---------------------------------------------------------------------------


async def test_a_token_in_the_query_opens_the_callers_channel(live: Live) -> None:
    user = await live.users.create()
    async with open_socket(f"{live.ws}?token={user.access_token}") as socket:
        connected = await socket.receive()
    assert connected["type"] == "connected"
    assert connected["channel"] == f"user:{user.id}"
    assert connected["sequence"] is None  # a connection message, not a channel event
    # Where the channel's numbering stands: microseconds since the epoch for a new channel, so
    # a number kept from before a restart is always smaller (and means: reload).
    assert connected["data"]["sequence"] > 1_700_000_000 * 10**6
    assert set(connected) == {
        "type",
        "channel",
        "sequence",
        "timestamp",
        "job_id",
        "resource_id",
        "data",
    }


async def test_the_first_message_authenticates_with_a_token_or_an_api_key(live: Live) -> None:
    user = await live.users.create()
    response = await user.post("/api/v1/auth/api-keys", json={"name": "socket"})
    assert response.status_code == 201, response.text
    api_key = response.json()["key"]
    for credential in (user.access_token, api_key):
        async with open_socket(live.ws) as socket:
            await socket.send({"type": "auth", "token": credential})
            connected = await socket.receive()
            assert connected["type"] == "connected"
            assert connected["channel"] == f"user:{user.id}"


@pytest.mark.parametrize("where", ["query", "message"])
@pytest.mark.parametrize("credential", ["not-a-token", "cfk_abcdef_notakey", ""])
async def test_a_bad_credential_closes_with_4401(live: Live, where: str, credential: str) -> None:
    url = f"{live.ws}?token={credential}" if where == "query" else live.ws
    async with open_socket(url) as socket:
        if where == "message":
            await socket.send({"type": "auth", "token": credential})
        code, reason = await socket.closed()
    if where == "message" and not credential:  # an empty token is not a valid auth message
        assert code == 4400
        return
    assert code == 4401
    assert reason


async def test_a_revoked_session_cannot_open_a_socket(live: Live) -> None:
    user = await live.users.create()
    assert (await user.post("/api/v1/auth/logout")).status_code == 204
    async with open_socket(f"{live.ws}?token={user.access_token}") as socket:
        code, _ = await socket.closed()
    assert code == 4401


async def test_no_auth_message_in_time_closes_with_4408(live: Live) -> None:
    async with open_socket(live.ws) as socket:
        code, reason = await socket.closed(seconds=10)
    assert code == 4408
    assert "auth" in reason


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ("{not json", "not JSON"),
        ({"token": "x"}, '"type"'),
        ({"type": "launch"}, "unknown type"),
        ({"type": "subscribe", "resource_id": "nope"}, "resource_id"),
        ({"type": "subscribe"}, "resource_id"),
        (b"\x00\x01", "binary"),
        ({"type": "auth", "token": "again"}, "already authenticated"),
    ],
)
async def test_malformed_messages_close_with_4400_naming_the_problem(
    live: Live, message: dict[str, str] | str | bytes, words: str
) -> None:
    user = await live.users.create()
    async with authenticated(live.ws, user.access_token) as socket:
        await socket.send(message)
        code, reason = await socket.closed()
    assert code == 4400
    assert words in reason


@pytest.mark.parametrize("query", ["since=soon", "since=-1", "resource_id=not-a-uuid"])
async def test_bad_query_parameters_close_with_4400(live: Live, query: str) -> None:
    user = await live.users.create()
    async with open_socket(f"{live.ws}?token={user.access_token}&{query}") as socket:
        code, reason = await socket.closed()
    assert code == 4400
    assert query.split("=")[0] in reason


async def test_tokens_in_the_query_stay_out_of_the_server_log(live: Live) -> None:
    user = await live.users.create()
    async with authenticated(live.ws, user.access_token):
        pass
    log = live.server.log.read_text()
    assert "token=[redacted]" in log
    assert user.access_token not in log


# -- access -----------------------------------------------------------------------------------


async def test_a_subject_the_caller_may_not_read_closes_exactly_like_a_missing_one(
    live: Live,
) -> None:
    owner, other = await live.users.create(), await live.users.create()
    async with authenticated(f"{live.ws}/{owner.id}", owner.access_token) as socket:
        assert await socket.round_trip() == []
    closes = []
    for subject in (owner.id, str(uuid.uuid4()), "not-a-uuid"):
        async with open_socket(f"{live.ws}/{subject}?token={other.access_token}") as socket:
            closes.append(await socket.closed())
    assert closes == [(4404, "not found")] * 3


async def test_an_administrator_may_watch_any_subject(live: Live) -> None:
    owner, admin = await live.users.create(), await live.users.admin()
    async with authenticated(f"{live.ws}/{owner.id}", admin.access_token) as socket:
        assert await socket.round_trip() == []


# -- job events -------------------------------------------------------------------------------


async def _execute_task(user: TestUser) -> str:
    response = await user.post(
        "/api/v1/tasks/execute",
        json={
            "task_type": "visual_prompt",
            "input": {"description": "A red fox at dawn"},
            "subject_type": PROFILE,
            "subject_id": user.id,
        },
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def test_a_job_streams_its_progress_to_its_owner_and_its_subject(live: Live) -> None:
    owner, other = await live.users.create(), await live.users.create()
    async with (
        authenticated(live.ws, owner.access_token) as own,
        authenticated(f"{live.ws}/{owner.id}", owner.access_token) as subject,
        authenticated(live.ws, other.access_token) as bystander,
    ):
        job_id = await _execute_task(owner)
        await _job_finished(live, job_id)
        for socket, channel in ((own, f"user:{owner.id}"), (subject, f"subject:{owner.id}")):
            progress = [await socket.receive() for _ in range(2)]
            assert [m["type"] for m in progress] == ["generation_progress"] * 2
            assert {m["channel"] for m in progress} == {channel}
            assert {m["job_id"] for m in progress} == {job_id}
            assert sequences(progress, socket.base) == [1, 2]
            assert progress[0]["data"]["status"] == "running"
            assert progress[0]["data"]["kind"] == "providers.text_task"
            assert 0 < progress[0]["data"]["progress"] < progress[1]["data"]["progress"] <= 1
            assert progress[0]["data"]["message"]
        # Nothing of the job's came to the bystander before the answer to its ping.
        assert await bystander.round_trip() == []


async def test_a_finished_job_sends_task_complete_after_its_progress(live: Live) -> None:
    owner = await live.users.create()
    async with (
        authenticated(live.ws, owner.access_token) as own,
        authenticated(f"{live.ws}/{owner.id}", owner.access_token) as subject,
    ):
        job_id = await _execute_task(owner)
        for socket in (own, subject):
            received = await socket.until("task_complete")
            assert [m["type"] for m in received] == [
                "generation_progress",
                "generation_progress",
                "task_complete",
            ]
            complete = received[-1]
            assert complete["job_id"] == job_id
            assert complete["data"]["status"] == "succeeded"
            assert complete["data"]["kind"] == "providers.text_task"
            assert complete["data"]["error_code"] is None
            assert sequences(received, socket.base) == [1, 2, 3]


async def test_a_failed_job_sends_task_complete_with_its_error(live: Live) -> None:
    owner = await live.users.create()
    async with authenticated(live.ws, owner.access_token) as own:
        job = await submit_job(
            live.platform, owner.id, "tests.flaky", {"fail_attempts": 1, "retryable": False}
        )
        complete = await own.receive()
    assert complete["type"] == "task_complete"
    assert complete["job_id"] == str(job.id)
    assert complete["data"]["status"] == "failed"
    assert complete["data"]["error_code"] == "FLAKY"
    assert complete["data"]["asset_ids"] == []


# -- replay -----------------------------------------------------------------------------------


async def test_since_replays_what_was_missed_in_order_then_continues_live(live: Live) -> None:
    user = await live.users.create()
    async with authenticated(live.ws, user.access_token) as socket:
        first = await submit_steps(live.platform, user.id, steps=2)
        seen = await socket.until("task_complete")
    assert [m["job_id"] for m in seen] == [str(first.id)] * 3
    last_seen = seen[-1]["sequence"]
    missed_job = await submit_steps(live.platform, user.id, steps=3)
    await _job_finished(live, missed_job.id)
    await asyncio.sleep(0.5)  # the job's last messages are published just after its commit
    async with open_socket(f"{live.ws}?token={user.access_token}&since={last_seen}") as socket:
        connected = await socket.receive()
        latest = connected["data"]["sequence"]
        assert latest == last_seen + 4  # three progress reports and the completion
        replayed = [await socket.receive() for _ in range(latest - last_seen)]
        assert sequences(replayed) == list(range(last_seen + 1, latest + 1))
        assert {m["job_id"] for m in replayed} == {str(missed_job.id)}
        assert [m["type"] for m in replayed] == ["generation_progress"] * 3 + ["task_complete"]
        live_job = await submit_steps(live.platform, user.id, steps=2)
        after = [await socket.receive() for _ in range(2)]
    assert {m["job_id"] for m in after} == {str(live_job.id)}
    assert sequences(after) == [latest + 1, latest + 2]  # no gap, no duplicate


async def test_a_client_too_far_behind_is_told_to_reload_then_continues_live(
    live: Live,
) -> None:
    user = await live.users.create()
    async with authenticated(live.ws, user.access_token) as socket:
        await submit_steps(live.platform, user.id, steps=1)
        last_seen = (await socket.receive())["sequence"]
    job = await submit_steps(live.platform, user.id, steps=REPLAY_EVENTS + 4)
    await _job_finished(live, job.id)
    await asyncio.sleep(0.5)
    async with open_socket(f"{live.ws}?token={user.access_token}&since={last_seen}") as socket:
        connected = await socket.receive()
        reload = await socket.receive()
        assert reload["type"] == "reload"
        assert reload["sequence"] is None
        assert reload["data"]["sequence"] == connected["data"]["sequence"]
        live_job = await submit_steps(live.platform, user.id, steps=1)
        after = await socket.receive()
    assert after["job_id"] == str(live_job.id)
    assert after["sequence"] > reload["data"]["sequence"]


@pytest.mark.parametrize("since", [500, 10**17])
async def test_a_since_the_channel_never_gave_out_means_reload(live: Live, since: int) -> None:
    user = await live.users.create()
    async with open_socket(f"{live.ws}?token={user.access_token}&since={since}") as socket:
        assert (await socket.receive())["type"] == "connected"
        assert (await socket.receive())["type"] == "reload"


# -- subscriptions ----------------------------------------------------------------------------


async def test_subscribe_narrows_a_socket_to_a_job_and_unsubscribe_widens_it(live: Live) -> None:
    user = await live.users.create()
    async with authenticated(live.ws, user.access_token) as socket:
        watched = await submit_steps(live.platform, user.id, steps=4, step_seconds=0.3)
        await socket.send({"type": "subscribe", "resource_id": str(watched.id)})
        *early, ack = await socket.until("subscribed")
        assert {m["job_id"] for m in early} <= {str(watched.id)}
        assert ack["resource_id"] == str(watched.id)
        assert ack["data"]["resource_ids"] == [str(watched.id)]
        ignored = await submit_steps(live.platform, user.id, steps=4, step_seconds=0.3)
        received = early + await socket.until("task_complete")
        assert {m["job_id"] for m in received} == {str(watched.id)}
        assert len(received) == 5  # four steps and the completion
        await _job_finished(live, ignored.id)
        await asyncio.sleep(0.5)  # its completion is published just after its commit
        await socket.send({"type": "unsubscribe", "resource_id": str(watched.id)})
        # What the filter held back is not sent later.
        ack = await socket.receive()
        assert ack["type"] == "unsubscribed"
        assert ack["data"]["resource_ids"] == []
        another = await submit_steps(live.platform, user.id, steps=1)
        assert (await socket.receive())["job_id"] == str(another.id)


async def test_resource_ids_in_the_query_narrow_from_the_start(live: Live) -> None:
    user = await live.users.create()
    watched_id = uuid.uuid4()  # not yet a job: a filter names any id
    url = f"{live.ws}?token={user.access_token}&resource_id={watched_id}"
    async with open_socket(url) as socket:
        connected = await socket.receive()
        assert connected["data"]["resource_ids"] == [str(watched_id)]
        other = await submit_steps(live.platform, user.id, steps=2)
        await _job_finished(live, other.id)
        await asyncio.sleep(0.5)  # its completion is published just after its commit
        assert await socket.round_trip() == []


# -- heartbeat --------------------------------------------------------------------------------


async def test_the_server_pings_and_answers_pings(live: Live) -> None:
    user = await live.users.create()
    async with authenticated(live.ws, user.access_token) as socket:
        await socket.send({"type": "pong"})  # an answer needs no reply
        assert await socket.round_trip() == []
        ping = await socket.receive(pings=True, seconds=5)
    assert ping["type"] == "ping"
    assert ping["channel"] == f"user:{user.id}"


async def test_a_projects_members_watch_its_channel_and_hear_its_changes(live: Live) -> None:
    owner, viewer, stranger = [await live.users.create() for _ in range(3)]
    book = (await owner.post("/api/v1/projects", json={"title": "Watched"})).json()
    shared = await owner.post(
        f"/api/v1/projects/{book['id']}/members", json={"user": viewer.username, "role": "viewer"}
    )
    assert shared.status_code == 201, shared.text
    async with open_socket(f"{live.ws}/{book['id']}?token={stranger.access_token}") as socket:
        assert await socket.closed() == (4404, "not found")
    async with authenticated(f"{live.ws}/{book['id']}", viewer.access_token) as socket:
        assert await socket.round_trip() == []
        chapter = await owner.post(f"/api/v1/projects/{book['id']}/chapters", json={"title": "One"})
        assert chapter.status_code == 201
        update = (await socket.until("content_update"))[-1]
        assert update["data"] == {
            "entity": "chapter",
            "id": chapter.json()["id"],
            "action": "created",
            "version": 1,
        }
        assert update["resource_id"] == chapter.json()["id"]
