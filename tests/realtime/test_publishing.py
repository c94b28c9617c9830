"""Job events and the studios' helpers reach the hub's channels (the in-process hub of the test
platform; on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid

from creativeflow.jobs.events import JobFinishedEvent
from creativeflow.jobs.runner import JobProgress
from creativeflow.platform import Platform
from creativeflow.realtime.hub import Subscription
from creativeflow.realtime.models import RealtimeMessage
from creativeflow.realtime.publishing import publish_content_update, publish_draft_ready
from tests.factories import UserFactory
from tests.realtime.subjects import PROFILE


async def _take(subscription: Subscription, count: int) -> list[RealtimeMessage]:
    async with asyncio.timeout(10):
        return [await subscription.get() for _ in range(count)]


async def test_a_jobs_progress_reaches_its_owner_and_subject_after_each_commit(
    platform: Platform, users: UserFactory
) -> None:
    user = await users.create()
    own = await platform.realtime.subscribe(f"user:{user.id}")
    subject = await platform.realtime.subscribe(f"subject:{user.id}")
    outside_transaction: list[bool] = []

    async def check_outside(progress: JobProgress) -> None:
        # The write transaction holds SQLite's write gate: a listener never runs inside it.
        gate = platform.write_gate
        outside_transaction.append(gate is None or not gate.locked())

    platform.jobs.runner.progress_listeners.insert(0, check_outside)
    response = await user.client.post(
        "/api/v1/tasks/execute",
        headers=user.headers,
        json={
            "task_type": "visual_prompt",
            "input": {"description": "A lighthouse in fog"},
            "subject_type": PROFILE,
            "subject_id": user.id,
        },
    )
    assert response.status_code == 202, response.text
    assert await platform.jobs.drain() == 1
    assert outside_transaction == [True, True]
    job_id = response.json()["id"]
    for subscription in (own, subject):
        progress = await _take(subscription, 2)
        assert [m.type for m in progress] == ["generation_progress"] * 2
        assert 0 < progress[0].data["progress"] < progress[1].data["progress"] <= 1
        assert progress[0].data["status"] == "running"
        assert {m.job_id for m in progress} == {job_id}


async def test_a_finished_job_becomes_task_complete_on_its_channels(platform: Platform) -> None:
    owner, subject_id, asset_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    own = await platform.realtime.subscribe(f"user:{owner}")
    watching = await platform.realtime.subscribe(f"subject:{subject_id}")
    event = JobFinishedEvent(
        job_id=uuid.uuid4(),
        kind="providers.generate_image",
        status="failed",
        owner_id=owner,
        subject_type=PROFILE,
        subject_id=subject_id,
        error_code="PROVIDER_UNAVAILABLE",
        error_message="The image provider is down",
        asset_ids=[asset_id],
    )
    await platform.events.publish(event)
    for subscription in (own, watching):
        (message,) = await _take(subscription, 1)
        assert message.type == "task_complete"
        assert message.job_id == str(event.job_id)
        assert message.data == {
            "status": "failed",
            "kind": "providers.generate_image",
            "error_code": "PROVIDER_UNAVAILABLE",
            "error_message": "The image provider is down",
            "asset_ids": [str(asset_id)],
        }


async def test_studios_publish_content_updates_and_drafts_to_a_subject(
    platform: Platform,
) -> None:
    subject_id, panel_id, draft_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    watching = await platform.realtime.subscribe(f"subject:{subject_id}")
    narrowed = await platform.realtime.subscribe(
        f"subject:{subject_id}", resource_ids=[str(draft_id)]
    )
    update = await publish_content_update(
        platform.realtime, subject_id, panel_id, {"kind": "panel", "action": "updated"}
    )
    draft = await publish_draft_ready(platform.realtime, subject_id, draft_id, {"title": "Ch. 1"})
    assert update is not None and draft is not None
    received = await _take(watching, 2)
    assert [(m.type, m.resource_id) for m in received] == [
        ("content_update", str(panel_id)),
        ("draft_ready", str(draft_id)),
    ]
    assert received[0].data == {"kind": "panel", "action": "updated"}
    assert [m.type for m in await _take(narrowed, 1)] == ["draft_ready"]
