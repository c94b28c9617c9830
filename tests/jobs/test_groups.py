"""Job groups: a parent over child jobs, settled by each child's ending (drained in the
test's transaction, one job at a time)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

from creativeflow.identity.principal import Principal
from creativeflow.jobs.models import Job, JobStatus
from creativeflow.jobs.runner import JobProgress
from creativeflow.jobs.service import JobService
from creativeflow.platform import Platform
from tests.factories import TestUser as ApiUser
from tests.factories import UserFactory
from tests.jobs.sample_kinds import FlakyInput, GroupInput, StepsInput


def _principal(user: ApiUser) -> Principal:
    return Principal(
        user_id=uuid.UUID(user.id),
        username=user.username,
        roles=frozenset({"viewer"}),
        permissions=frozenset(),
    )


async def submit_group(
    platform: Platform, user: ApiUser, children: list[tuple[str, BaseModel]]
) -> Job:
    async with platform.write_sessions() as session:
        group, created = await JobService(
            session, _principal(user), default_max_attempts=3
        ).submit_group("tests.group", GroupInput(label="sequence"), children)
        await session.commit()
    assert created
    return group


def steps(count: int) -> list[tuple[str, BaseModel]]:
    return [("tests.steps", StepsInput(steps=2, label=f"child {n}")) for n in range(count)]


async def test_a_group_runs_its_children_and_ends_with_the_last_one(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    heard: list[JobProgress] = []

    async def listen(progress: JobProgress) -> None:
        heard.append(progress)

    platform.jobs.runner.progress_listeners.append(listen)
    group = await submit_group(platform, user, steps(3))
    read = (await user.get(f"/api/v1/jobs/{group.id}")).json()
    assert read["status"] == "running" and read["progress"] == 0 and read["parent_id"] is None
    children = (await user.get("/api/v1/jobs", params={"parent_id": str(group.id)})).json()
    assert children["total"] == 3
    assert {child["parent_id"] for child in children["items"]} == {str(group.id)}
    assert {child["status"] for child in children["items"]} == {"queued"}

    assert await platform.jobs.drain() == 3  # the group itself is never claimed
    ended = (await user.get(f"/api/v1/jobs/{group.id}")).json()
    assert ended["status"] == "succeeded", ended
    assert ended["progress"] == 1
    assert ended["result"] == {
        "children": 3,
        "queued": 0,
        "running": 0,
        "succeeded": 3,
        "failed": 0,
        "cancelled": 0,
    }
    group_reports = [round(p.progress, 3) for p in heard if p.job_id == group.id]
    assert group_reports == [0.333, 0.667]  # the last child's ending is the group's end


async def test_a_failed_child_fails_the_group_and_retry_reruns_only_what_did_not_succeed(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    children: list[tuple[str, BaseModel]] = [
        *steps(2),
        ("tests.flaky", FlakyInput(fail_attempts=1, retryable=False)),
    ]
    group = await submit_group(platform, user, children)
    await platform.jobs.drain()
    failed = (await user.get(f"/api/v1/jobs/{group.id}")).json()
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "CHILDREN_FAILED"
    assert "1 of 3 did not succeed" in failed["error"]["message"]
    assert failed["result"]["succeeded"] == 2 and failed["result"]["failed"] == 1

    retried = await user.post(f"/api/v1/jobs/{group.id}/retry")
    assert retried.status_code == 202, retried.text
    again = retried.json()
    assert again["retried_from"] == str(group.id) and again["status"] == "running"
    rerun = (await user.get("/api/v1/jobs", params={"parent_id": again["id"]})).json()
    assert [child["kind"] for child in rerun["items"]] == ["tests.flaky"]


async def test_cancelling_a_group_leaves_finished_children_and_cancels_the_rest(
    users: UserFactory, platform: Platform
) -> None:
    user, stranger = await users.create(), await users.create()
    group = await submit_group(platform, user, steps(4))
    assert await platform.jobs.runner.run_next()  # one child finishes
    assert (await stranger.post(f"/api/v1/jobs/{group.id}/cancel")).status_code == 404
    response = await user.post(f"/api/v1/jobs/{group.id}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert response.json()["result"]["succeeded"] == 1
    assert response.json()["result"]["cancelled"] == 3
    children = (await user.get("/api/v1/jobs", params={"parent_id": str(group.id)})).json()
    statuses = sorted(child["status"] for child in children["items"])
    assert statuses == ["cancelled", "cancelled", "cancelled", "succeeded"]
    assert await platform.jobs.drain() == 0
    assert (await user.post(f"/api/v1/jobs/{group.id}/cancel")).status_code == 409


async def test_cancelling_one_child_settles_its_group(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    group = await submit_group(platform, user, steps(2))
    children = (await user.get("/api/v1/jobs", params={"parent_id": str(group.id)})).json()
    first = next(c["id"] for c in children["items"] if c["input"]["label"] == "child 0")
    assert (await user.post(f"/api/v1/jobs/{first}/cancel")).status_code == 200
    halfway = (await user.get(f"/api/v1/jobs/{group.id}")).json()
    assert halfway["status"] == "running" and halfway["progress"] == 0.5
    await platform.jobs.drain()
    ended = (await user.get(f"/api/v1/jobs/{group.id}")).json()
    assert ended["status"] == "failed" and ended["result"]["cancelled"] == 1

    retried = (await user.post(f"/api/v1/jobs/{group.id}/retry")).json()
    await platform.jobs.drain()
    rerun = (await user.get("/api/v1/jobs", params={"parent_id": retried["id"]})).json()
    assert [child["input"]["label"] for child in rerun["items"]] == ["child 0"]
    assert (await user.get(f"/api/v1/jobs/{retried['id']}")).json()["status"] == "succeeded"


async def test_a_running_group_does_not_count_against_its_owners_turn(
    users: UserFactory, platform: Platform
) -> None:
    owner, other = await users.create(), await users.create()
    await submit_group(platform, owner, steps(1))
    async with platform.write_sessions() as session:
        other_job, _ = await JobService(session, _principal(other), default_max_attempts=3).submit(
            "tests.steps", StepsInput(steps=1)
        )
        await session.commit()
    # The owner's child is older and the owner holds no worker: it goes first.
    claimed = await platform.jobs.runner.claim()
    assert claimed is not None and claimed.parent_id is not None
    assert claimed.status is JobStatus.RUNNING and other_job.id != claimed.id
