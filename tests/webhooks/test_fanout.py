"""Which endpoints an event fans out to: subscribed, active, existing when it happened, and
whose owner may read it (its owner, or a member of its subject through `creativeflow.access`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Select, Uuid, false, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.access import register_subject_type, unregister_subject_type
from creativeflow.identity.principal import Principal
from creativeflow.jobs.events import JobFinishedEvent
from creativeflow.jobs.models import Job
from creativeflow.platform import Platform
from creativeflow.webhooks.service import WebhookFanout
from tests.factories import TestUser as SignedInUser
from tests.factories import UserFactory

BOARD = uuid.uuid4()
_members: set[uuid.UUID] = set()


def _board_ids(principal: Principal) -> Select[Any]:
    board = select(literal(BOARD, Uuid()).label("id"))
    return board if principal.user_id in _members else board.where(false())


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"webhook_allow_private_targets": True}


@pytest.fixture
def boards() -> Iterator[set[uuid.UUID]]:
    """A subject type `tests.board` with one board; whoever is in the set may read it."""
    register_subject_type("tests.board", readable=_board_ids, writable=_board_ids)
    try:
        yield _members
    finally:
        _members.clear()
        unregister_subject_type("tests.board")


async def endpoint(user: SignedInUser, path: str, event_types: list[str]) -> str:
    response = await user.post(
        "/api/v1/webhooks",
        json={"url": f"http://127.0.0.1:9/{path}", "event_types": event_types},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def finished(
    owner: SignedInUser | None, *, subject: uuid.UUID | None = None, **fields: object
) -> JobFinishedEvent:
    return JobFinishedEvent(
        job_id=uuid.uuid4(),
        kind="tests.steps",
        status="succeeded",
        owner_id=uuid.UUID(owner.id) if owner else None,
        subject_type="tests.board" if subject else None,
        subject_id=subject,
        **fields,  # type: ignore[arg-type]
    )


async def fan_out(platform: Platform, session: AsyncSession, event: JobFinishedEvent) -> set[str]:
    made = await WebhookFanout(session, platform.settings).deliver(event)
    for delivery in made:
        job = await session.get(Job, delivery.job_id)
        assert job is not None and job.owner_id is None and job.kind == "webhooks.deliver"
    return {str(delivery.endpoint_id) for delivery in made}


async def test_an_event_goes_to_its_owners_subscribed_active_endpoints(
    users: UserFactory, platform: Platform, session: AsyncSession
) -> None:
    owner, other = await users.create(), await users.create()
    jobs_hook = await endpoint(owner, "jobs", ["jobs.finished"])
    all_hook = await endpoint(owner, "all", ["*"])
    await endpoint(owner, "ideas", ["identity.user_registered"])
    off = await endpoint(owner, "off", ["*"])
    assert (await owner.patch(f"/api/v1/webhooks/{off}", json={"active": False})).status_code == 200
    await endpoint(other, "other", ["*"])
    assert await fan_out(platform, session, finished(owner)) == {jobs_hook, all_hook}


async def test_an_event_of_a_subject_goes_to_its_members_too(
    users: UserFactory, platform: Platform, session: AsyncSession, boards: set[uuid.UUID]
) -> None:
    owner, member, outsider = await users.create(), await users.create(), await users.create()
    boards.add(uuid.UUID(member.id))
    owner_hook = await endpoint(owner, "owner", ["*"])
    member_hook = await endpoint(member, "member", ["jobs.finished"])
    await endpoint(outsider, "outsider", ["*"])
    event = finished(owner, subject=BOARD)
    assert await fan_out(platform, session, event) == {owner_hook, member_hook}
    # Another board: the member may not read it.
    assert await fan_out(platform, session, finished(owner, subject=uuid.uuid4())) == {owner_hook}


async def test_the_platforms_own_events_and_earlier_events_reach_nobody(
    users: UserFactory, platform: Platform, session: AsyncSession
) -> None:
    admin = await users.admin()
    await endpoint(admin, "admin", ["*"])
    owner = await users.create()
    owner_hook = await endpoint(owner, "owner", ["*"])
    # No owner, no subject (a delivery job, the pruning): nobody's, administrators included.
    assert await fan_out(platform, session, finished(None)) == set()
    # Another user's event is not an administrator's webhook's either.
    assert await fan_out(platform, session, finished(owner)) == {owner_hook}
    # An event from before the endpoint existed (swept up late after a crash): not sent.
    before = finished(owner)
    earlier = before.model_copy(update={"timestamp": before.timestamp - timedelta(hours=1)})
    assert await fan_out(platform, session, earlier) == set()
