"""Deliveries end to end: a committed database, the in-process job runner and outbox
dispatcher, and a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update

from creativeflow.db.types import utcnow
from creativeflow.jobs.models import Job
from creativeflow.platform import Platform
from creativeflow.webhooks.delivery import USER_AGENT
from creativeflow.webhooks.schedule import DELIVERY_RETRIES
from creativeflow.webhooks.signing import verify_signature
from tests.factories import TestUser as SignedInUser
from tests.factories import UserFactory
from tests.jobs.live import api_client, wait_for
from tests.webhooks.live import delivery_row, eventually, live_platform, webhook_settings
from tests.webhooks.receiver import Received, running_receiver


async def register(user: SignedInUser, url: str, event_types: list[str]) -> dict[str, Any]:
    response = await user.post("/api/v1/webhooks", json={"url": url, "event_types": event_types})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def generate_image(user: SignedInUser) -> dict[str, Any]:
    response = await user.post(
        "/api/v1/generate/image",
        json={"prompt": "a lighthouse in a storm", "width": 64, "height": 64, "seed": 7},
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def deliveries(user: SignedInUser, webhook_id: str, **params: Any) -> list[dict[str, Any]]:
    response = await user.get(f"/api/v1/webhooks/{webhook_id}/deliveries", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def delivered(user: SignedInUser, webhook_id: str, count: int = 1) -> list[dict[str, Any]]:
    async def check() -> list[dict[str, Any]] | None:
        items = [d for d in await deliveries(user, webhook_id) if d["status"] != "pending"]
        return items if len(items) >= count else None

    result: list[dict[str, Any]] = await eventually(check, what=f"{count} finished deliveries")
    return result


def envelope(received: Received) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(received.body)
    return body


async def test_a_finished_job_is_delivered_signed_with_the_secret_shown_at_creation(
    live_database_url: str, tmp_path: Path
) -> None:
    settings = webhook_settings(live_database_url, tmp_path)
    with running_receiver(200) as receiver:
        async with live_platform(settings) as platform, api_client(platform) as client:
            user = await UserFactory(client, platform).create()
            webhook = await register(user, receiver.url(), ["jobs.finished"])
            job = await generate_image(user)
            finished = await wait_for(platform, job["id"])
            [request] = await receiver.wait_for(1)
            [delivery] = await delivered(user, webhook["id"])

    headers = request.headers
    assert headers["x-creativeflow-event"] == "jobs.finished"
    assert headers["x-creativeflow-delivery"] == delivery["id"]
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == USER_AGENT
    assert headers["host"] == f"127.0.0.1:{receiver.port}"
    assert verify_signature(webhook["secret"], headers["x-creativeflow-signature"], request.body)
    assert not verify_signature("whsec_wrong", headers["x-creativeflow-signature"], request.body)
    tampered = request.body.replace(b"succeeded", b"failed")
    assert not verify_signature(webhook["secret"], headers["x-creativeflow-signature"], tampered)

    body = envelope(request)
    assert body["event_type"] == "jobs.finished" and body["version"] == 1
    assert body["job_id"] == job["id"] and body["status"] == "succeeded"
    assert body["owner_id"] == user.id
    assert body["asset_ids"] == finished.result["image_ids"] and body["asset_ids"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1
    assert delivery["last_status_code"] == 200 and delivery["delivered_at"]
    assert delivery["event_id"] == body["event_id"] and delivery["manual"] is False


async def _due_now(platform: Platform, job_id: str) -> None:
    """Skip a delivery job's backoff (the first retry waits a minute)."""
    async with platform.write_transaction() as session:
        await session.execute(
            update(Job).where(Job.id == uuid.UUID(job_id)).values(run_after=utcnow())
        )
    await platform.jobs.waker.wake()


async def test_a_failed_attempt_is_retried_with_backoff_and_recorded(
    live_database_url: str, tmp_path: Path
) -> None:
    settings = webhook_settings(live_database_url, tmp_path)
    with running_receiver(500, 200) as receiver:
        async with live_platform(settings) as platform, api_client(platform) as client:
            user = await UserFactory(client, platform).create()
            webhook = await register(user, receiver.url(), ["*"])
            await generate_image(user)
            await receiver.wait_for(1)

            async def retrying() -> dict[str, Any] | None:
                items = await deliveries(user, webhook["id"])
                return items[0] if items and items[0]["attempts"] == 1 else None

            waiting = await eventually(retrying, what="the first attempt recorded")
            assert waiting["status"] == "pending" and waiting["last_status_code"] == 500
            assert waiting["last_error"] == "answered HTTP 500"
            first_attempt = waiting["last_attempt_at"]
            job = await wait_for(platform, waiting["job_id"], lambda j: j.status.value == "queued")
            assert job.status.value == "queued" and job.error_code == "WEBHOOK_DELIVERY_FAILED"
            # The schedule's first wait, on the delivery and on its job alike.
            backoff = timedelta(seconds=DELIVERY_RETRIES.delay(1))
            next_at = (await delivery_row(platform, waiting["id"])).next_attempt_at
            assert next_at is not None and abs(next_at - job.run_after) < timedelta(seconds=2)
            assert abs(job.run_after - (utcnow() + backoff)) < backoff

            await _due_now(platform, waiting["job_id"])
            [done] = await delivered(user, webhook["id"])
            requests = receiver.received()

    assert len(requests) == 2
    assert {r.headers["x-creativeflow-delivery"] for r in requests} == {done["id"]}
    # The same body both times, each attempt signed afresh.
    assert requests[0].body == requests[1].body
    assert done["status"] == "delivered" and done["attempts"] == 2
    assert done["last_status_code"] == 200 and done["last_error"] is None
    assert done["next_attempt_at"] is None and done["last_attempt_at"] > first_attempt


async def test_redeliver_sends_the_same_event_again_as_a_new_delivery(
    live_database_url: str, tmp_path: Path
) -> None:
    settings = webhook_settings(live_database_url, tmp_path)
    with running_receiver(200) as receiver:
        async with live_platform(settings) as platform, api_client(platform) as client:
            user = await UserFactory(client, platform).create()
            webhook = await register(user, receiver.url(), ["jobs.finished"])
            await generate_image(user)
            [original] = await delivered(user, webhook["id"])
            # A delivery still being attempted cannot be redelivered: only finished ones.
            response = await user.post(
                f"/api/v1/webhooks/{webhook['id']}/deliveries/{original['id']}/redeliver"
            )
            assert response.status_code == 202, response.text
            again = response.json()
            assert again["id"] != original["id"] and again["redelivery_of"] == original["id"]
            assert again["status"] == "pending" and again["manual"] is True
            finished = await delivered(user, webhook["id"], 2)
            first, second = await receiver.wait_for(2)

    assert {d["id"] for d in finished} == {original["id"], again["id"]}
    assert first.body == second.body
    assert envelope(first)["event_id"] == envelope(second)["event_id"] == original["event_id"]
    assert second.headers["x-creativeflow-delivery"] == again["id"]


async def test_ping_sends_one_test_delivery_and_a_failed_ping_is_not_retried(
    live_database_url: str, tmp_path: Path
) -> None:
    settings = webhook_settings(live_database_url, tmp_path)
    with running_receiver(200, 503) as receiver:
        async with live_platform(settings) as platform, api_client(platform) as client:
            user = await UserFactory(client, platform).create()
            webhook = await register(user, receiver.url("/ping-me"), ["jobs.finished"])
            pinged = await user.post(f"/api/v1/webhooks/{webhook['id']}/ping")
            assert pinged.status_code == 202, pinged.text
            [ok] = await delivered(user, webhook["id"])
            failing = await user.post(f"/api/v1/webhooks/{webhook['id']}/ping")
            assert failing.status_code == 202
            finished = await delivered(user, webhook["id"], 2)
            job = await wait_for(platform, failing.json()["job_id"])
            requests = receiver.received()

    assert len(requests) == 2 and requests[0].path == "/ping-me"
    ping = envelope(requests[0])
    assert ping["event_type"] == "webhooks.ping" and ping["webhook_id"] == webhook["id"]
    assert requests[0].headers["x-creativeflow-event"] == "webhooks.ping"
    assert verify_signature(
        webhook["secret"], requests[0].headers["x-creativeflow-signature"], requests[0].body
    )
    assert ok["id"] == pinged.json()["id"] and ok["status"] == "delivered"
    failed = next(d for d in finished if d["id"] == failing.json()["id"])
    assert failed["status"] == "failed" and failed["attempts"] == 1
    assert failed["last_status_code"] == 503
    assert job.status.value == "failed" and job.attempts == 1


async def test_endpoints_receive_only_the_event_types_they_subscribed_to(
    live_database_url: str, tmp_path: Path
) -> None:
    settings = webhook_settings(live_database_url, tmp_path)
    with running_receiver(200) as receiver:
        async with live_platform(settings) as platform, api_client(platform) as client:
            user = await UserFactory(client, platform).create()
            await register(user, receiver.url("/jobs"), ["jobs.finished"])
            await register(user, receiver.url("/all"), ["*"])
            await register(user, receiver.url("/other"), ["generation.completed"])
            inactive = await register(user, receiver.url("/inactive"), ["*"])
            response = await user.patch(
                f"/api/v1/webhooks/{inactive['id']}", json={"active": False}
            )
            assert response.status_code == 200 and response.json()["active"] is False
            await generate_image(user)
            await receiver.wait_for(1, path="/jobs")
            await receiver.wait_for(1, path="/all")
            # The outbox is drained: nothing else is on its way.
            await eventually(
                lambda: _all_dispatched(platform), what="every outbox event dispatched"
            )
            await platform.jobs.drain()

    def job_events(path: str) -> list[Received]:
        return [
            r
            for r in receiver.received(path)
            if r.headers["x-creativeflow-event"] == "jobs.finished"
        ]

    assert len(job_events("/jobs")) == len(job_events("/all")) == 1
    assert len(receiver.received("/jobs")) == 1  # nothing but what it subscribed to
    assert receiver.received("/other") == [] and receiver.received("/inactive") == []


async def _all_dispatched(platform: Platform) -> bool:
    from tests.webhooks.live import outbox_rows

    return all(row.dispatched_at is not None for row in await outbox_rows(platform))


async def test_another_users_events_are_never_delivered_to_you(
    live_database_url: str, tmp_path: Path
) -> None:
    settings = webhook_settings(live_database_url, tmp_path)
    with running_receiver(200) as receiver:
        async with live_platform(settings) as platform, api_client(platform) as client:
            factory = UserFactory(client, platform)
            mine, theirs = await factory.create(), await factory.create()
            await register(mine, receiver.url("/mine"), ["*"])
            await register(theirs, receiver.url("/theirs"), ["*"])
            job = await generate_image(theirs)
            await receiver.wait_for(1, path="/theirs")
            await eventually(
                lambda: _all_dispatched(platform), what="every outbox event dispatched"
            )
            await platform.jobs.drain()

    # Only their own registration, at most, ever reaches my endpoint; nothing of theirs.
    for request in receiver.received("/mine"):
        assert envelope(request)["event_type"] == "identity.user_registered"
        assert envelope(request)["user_id"] == mine.id
    theirs_received = [envelope(r) for r in receiver.received("/theirs")]
    assert job["id"] in [body.get("job_id") for body in theirs_received]


async def test_redirects_are_not_followed(live_database_url: str, tmp_path: Path) -> None:
    settings = webhook_settings(live_database_url, tmp_path)
    with running_receiver(302) as receiver:
        async with live_platform(settings) as platform, api_client(platform) as client:
            user = await UserFactory(client, platform).create()
            webhook = await register(user, receiver.url("/moved"), ["jobs.finished"])
            await user.post(f"/api/v1/webhooks/{webhook['id']}/ping")
            [ping] = await delivered(user, webhook["id"])

    assert [r.path for r in receiver.received()] == ["/moved"]
    assert ping["status"] == "failed" and ping["last_status_code"] == 302
    assert "redirects are not followed" in ping["last_error"]


async def test_a_loopback_target_is_refused_at_delivery_when_private_targets_are_not_allowed(
    live_database_url: str, tmp_path: Path
) -> None:
    """Registered while allowed; the platform that delivers does not allow it: the name
    `localhost` is resolved at the attempt, found loopback, and nothing is sent."""
    with running_receiver(200) as receiver:
        allowed = webhook_settings(live_database_url, tmp_path)
        async with (
            live_platform(allowed, start_jobs=False) as platform,
            api_client(platform) as client,
        ):
            user = await UserFactory(client, platform).create()
            webhook = await register(user, receiver.url(host="localhost"), ["*"])
            pinged = await user.post(f"/api/v1/webhooks/{webhook['id']}/ping")
            assert pinged.status_code == 202
        strict = webhook_settings(live_database_url, tmp_path, webhook_allow_private_targets=False)
        async with live_platform(strict) as platform:
            row = await eventually(
                lambda: _finished(platform, pinged.json()["id"]), what="the ping refused"
            )
    assert receiver.received() == []
    assert row.status.value == "failed" and row.attempts == 1 and row.last_status_code is None
    assert "localhost" in (row.last_error or "") and "loopback" in (row.last_error or "")


async def _finished(platform: Platform, delivery_id: str) -> Any:
    row = await delivery_row(platform, delivery_id)
    return row if row.status.value != "pending" else None


async def test_a_target_that_does_not_answer_in_time_is_a_failed_attempt(
    live_database_url: str, tmp_path: Path
) -> None:
    """A listening socket that never answers: the explicit time-out ends the attempt."""
    import socket

    settings = webhook_settings(live_database_url, tmp_path, webhook_timeout_seconds=0.5)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        async with live_platform(settings) as platform, api_client(platform) as client:
            user = await UserFactory(client, platform).create()
            webhook = await register(user, f"http://127.0.0.1:{port}/slow", ["*"])
            await user.post(f"/api/v1/webhooks/{webhook['id']}/ping")
            [ping] = await delivered(user, webhook["id"])
    assert ping["status"] == "failed" and ping["last_status_code"] is None
    assert ping["last_error"] == "no answer within 0.5 s"


def test_the_retry_schedule_spans_about_a_day() -> None:
    from creativeflow.webhooks.schedule import retry_delays

    delays = retry_delays()
    assert DELIVERY_RETRIES.max_attempts == len(delays) + 1 == 14
    assert delays[:3] == [60, 120, 240] and delays[-1] == 4 * 3600
    assert delays == sorted(delays)
    assert 23 * 3600 <= sum(delays) <= 25 * 3600
