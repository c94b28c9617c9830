"""The jobs API, driven through HTTP; jobs are run by draining the runner in the test, one at a
time, inside the test's transaction."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from creativeflow.db.types import utcnow
from creativeflow.jobs.models import Job, JobStatus
from creativeflow.jobs.service import JobService
from creativeflow.platform import Platform
from tests.factories import TestUser as ApiUser
from tests.factories import UserFactory

SCENE = (
    "Mara climbed the lighthouse stairs while the storm broke over the harbour. "
    "At the top she found Jonah repairing the great lamp with shaking hands. "
    "Mara told Jonah the fishing boats were still out past the reef. "
    "Jonah lit the lamp, and its beam swept across the black water toward the boats."
)


async def submit_steps(
    platform: Platform, user: ApiUser, *, priority: int = 0, label: str = "", steps: int = 1
) -> Job:
    """A `tests.steps` job, submitted through the service as a module would."""
    from creativeflow.identity.principal import Principal

    principal = Principal(
        user_id=uuid.UUID(user.id),
        username=user.username,
        roles=frozenset({"viewer"}),
        permissions=frozenset(),
    )
    async with platform.write_sessions() as session:
        job, _ = await JobService(session, principal, default_max_attempts=3).submit(
            "tests.steps", {"steps": steps, "label": label}, priority=priority
        )
        await session.commit()
    return job


async def run_task(user: ApiUser, **body: object) -> httpx.Response:
    payload = {"task_type": "scene_summary", "input": {"scene_text": SCENE}, **body}
    return await user.post("/api/v1/tasks/execute", json=payload)


async def test_a_task_is_queued_runs_and_gives_a_validated_result(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    response = await run_task(user, seed=7)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "queued" and job["kind"] == "providers.text_task"
    assert response.headers["location"] == f"/api/v1/jobs/{job['id']}"

    queued = (await user.get(f"/api/v1/tasks/{job['id']}/status")).json()
    assert queued["queue_position"] == 1
    not_yet = await user.get(f"/api/v1/tasks/{job['id']}/result")
    assert not_yet.status_code == 409
    assert not_yet.json()["code"] == "JOB_NOT_FINISHED"
    assert not_yet.json()["job_status"] == "queued"

    assert await platform.jobs.drain() == 1
    done = (await user.get(f"/api/v1/jobs/{job['id']}")).json()
    assert done["status"] == "succeeded" and done["progress"] == 1.0
    assert done["attempts"] == 1 and done["sequence"] > job["sequence"]
    result = (await user.get(f"/api/v1/tasks/{job['id']}/result")).json()
    assert result["provider"] == "local" and result["metadata"]["local"] is True
    assert result["seed"] == 7
    assert result["usage"]["input_tokens"] > 0
    summary = result["output"]["summary"]
    assert any(sentence.split(".")[0] in SCENE for sentence in summary.split(". "))
    assert "Mara" in result["output"]["characters"]
    assert result["prompt"] and result["timings"]["provider_ms"] >= 0


async def test_unknown_ids_and_other_users_jobs_are_404(users: UserFactory) -> None:
    owner, stranger = await users.create(), await users.create()
    job = (await run_task(owner)).json()
    for method, url in [
        ("get", f"/api/v1/jobs/{job['id']}"),
        ("get", f"/api/v1/tasks/{job['id']}/status"),
        ("get", f"/api/v1/tasks/{job['id']}/result"),
        ("post", f"/api/v1/tasks/{job['id']}/cancel"),
        ("post", f"/api/v1/jobs/{job['id']}/cancel"),
        ("post", f"/api/v1/jobs/{job['id']}/retry"),
        ("get", f"/api/v1/jobs/{uuid.uuid4()}"),
    ]:
        response = await getattr(stranger, method)(url)
        assert response.status_code == 404, (url, response.text)
        assert response.json()["code"] == "JOB_NOT_FOUND"
    listed = (await stranger.get("/api/v1/jobs")).json()
    assert listed["total"] == 0
    # A task is not an image generation: its id is unknown on /generate/status.
    other_kind = await owner.get(f"/api/v1/generate/status/{job['id']}")
    assert other_kind.status_code == 404


async def test_an_administrator_sees_every_job(users: UserFactory) -> None:
    owner, admin = await users.create(), await users.admin()
    job = (await run_task(owner)).json()
    assert (await admin.get(f"/api/v1/jobs/{job['id']}")).status_code == 200


async def test_cancelling_a_queued_job_means_it_never_starts(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    job = (await run_task(user)).json()
    cancelled = await user.post(f"/api/v1/tasks/{job['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["error"]["code"] == "CANCELLED"
    assert await platform.jobs.drain() == 0
    again = await user.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert again.status_code == 409
    assert again.json()["code"] == "JOB_STATE_CONFLICT"
    result = await user.get(f"/api/v1/tasks/{job['id']}/result")
    assert result.json()["code"] == "JOB_CANCELLED"


async def test_retry_makes_a_new_job_that_records_where_it_came_from(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    job = (await run_task(user, seed=3)).json()
    await user.post(f"/api/v1/jobs/{job['id']}/cancel")
    retried = await user.post(f"/api/v1/jobs/{job['id']}/retry")
    assert retried.status_code == 202, retried.text
    new = retried.json()
    assert new["id"] != job["id"] and new["retried_from"] == job["id"]
    assert new["input"] == job["input"] and new["status"] == "queued"
    await platform.jobs.drain()
    assert (await user.get(f"/api/v1/jobs/{new['id']}")).json()["status"] == "succeeded"
    not_again = await user.post(f"/api/v1/jobs/{new['id']}/retry")
    assert not_again.status_code == 409


async def test_the_same_idempotency_key_gives_the_same_job(users: UserFactory) -> None:
    user = await users.create()
    key = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    first = await run_task(user, seed=1, headers=None) if False else None
    first = await user.client.post(
        "/api/v1/tasks/execute",
        json={"task_type": "scene_summary", "input": {"scene_text": SCENE}},
        headers={**user.headers, **key},
    )
    second = await user.client.post(
        "/api/v1/tasks/execute",
        json={"task_type": "scene_summary", "input": {"scene_text": SCENE}},
        headers={**user.headers, **key},
    )
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
    different = await user.client.post(
        "/api/v1/tasks/execute",
        json={"task_type": "scene_summary", "input": {"scene_text": SCENE + " More."}},
        headers={**user.headers, **key},
    )
    assert different.status_code == 409
    assert different.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    # Keys are per user: another user's same key is another job.
    other = await users.create()
    theirs = await other.client.post(
        "/api/v1/tasks/execute",
        json={"task_type": "scene_summary", "input": {"scene_text": SCENE}},
        headers={**other.headers, **key},
    )
    assert theirs.status_code == 202 and theirs.json()["id"] != first.json()["id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"task_type": "poem", "input": {}}, "task_type"),
        ({"task_type": "scene_summary", "input": {}}, "input.scene_text"),
        ({"task_type": "scene_summary", "input": {"scene_text": SCENE, "x": 1}}, "input.x"),
        ({"task_type": "scene_summary", "input": {"scene_text": SCENE}, "seed": -1}, "seed"),
        (
            {"task_type": "scene_summary", "input": {"scene_text": SCENE}, "subject_type": "x"},
            "body",
        ),
        (
            {
                "task_type": "scene_summary",
                "input": {"scene_text": SCENE},
                "subject_type": "nowhere",
                "subject_id": str(uuid.uuid4()),
            },
            "subject_type",
        ),
        (
            {"task_type": "scene_summary", "input": {"scene_text": SCENE}, "priority": 11},
            "priority",
        ),
    ],
)
async def test_bad_task_requests_name_the_field_and_write_nothing(
    users: UserFactory, body: dict[str, object], field: str
) -> None:
    user = await users.create()
    response = await user.post("/api/v1/tasks/execute", json=body)
    assert response.status_code == 422, response.text
    assert field in [error["field"] for error in response.json()["errors"]], response.json()
    assert (await user.get("/api/v1/jobs")).json()["total"] == 0


async def test_one_users_backlog_does_not_starve_another_user(
    users: UserFactory, platform: Platform
) -> None:
    busy, patient = await users.create(), await users.create()
    backlog = [await submit_steps(platform, busy, label=f"busy-{i}") for i in range(500)]
    single = await submit_steps(platform, patient, label="patient")
    position = (await patient.get(f"/api/v1/jobs/{single.id}")).json()["queue_position"]
    assert position == 2  # after the busy user's first job, not after all 500
    assert (await busy.get(f"/api/v1/jobs/{backlog[-1].id}")).json()["queue_position"] == 501

    first = await platform.jobs.runner.claim()
    second = await platform.jobs.runner.claim()
    assert first is not None and second is not None
    assert first.id == backlog[0].id
    assert second.id == single.id


async def test_priorities_order_a_users_own_jobs(users: UserFactory, platform: Platform) -> None:
    user = await users.create()
    low = await submit_steps(platform, user, priority=-5)
    normal = await submit_steps(platform, user)
    high = await submit_steps(platform, user, priority=5)
    claimed = [await platform.jobs.runner.claim() for _ in range(3)]
    assert [job.id for job in claimed if job] == [high.id, normal.id, low.id]


async def test_a_job_kind_no_worker_knows_fails_with_unknown_job_kind(
    users: UserFactory, platform: Platform, session: object
) -> None:
    user = await users.create()
    job = await submit_steps(platform, user)
    async with platform.write_sessions() as write:
        await write.execute(update(Job).where(Job.id == job.id).values(kind="gone.kind"))
        await write.commit()
    await platform.jobs.drain()
    body = (await user.get(f"/api/v1/jobs/{job.id}")).json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "UNKNOWN_JOB_KIND"


async def test_listing_filters_sorts_and_pages(users: UserFactory, platform: Platform) -> None:
    user = await users.create()
    jobs = [await submit_steps(platform, user, label=str(i)) for i in range(5)]
    task = (await run_task(user)).json()
    await user.post(f"/api/v1/jobs/{jobs[0].id}/cancel")

    everything = (await user.get("/api/v1/jobs", params={"limit": 4})).json()
    assert everything["total"] == 6 and len(everything["items"]) == 4 and everything["has_more"]
    assert everything["items"][0]["id"] == task["id"]  # newest first
    oldest_first = (await user.get("/api/v1/jobs", params={"order": "asc"})).json()
    assert oldest_first["items"][0]["id"] == str(jobs[0].id)
    by_kind = (await user.get("/api/v1/jobs", params={"kind": "tests.steps"})).json()
    assert by_kind["total"] == 5
    by_status = await user.get("/api/v1/jobs", params=[("status", "cancelled")])
    assert [item["id"] for item in by_status.json()["items"]] == [str(jobs[0].id)]
    two_statuses = await user.get(
        "/api/v1/jobs", params=[("status", "cancelled"), ("status", "queued")]
    )
    assert two_statuses.json()["total"] == 6
    future = (utcnow() + timedelta(hours=1)).isoformat()
    assert (await user.get("/api/v1/jobs", params={"created_after": future})).json()["total"] == 0
    naive = await user.get("/api/v1/jobs", params={"created_after": "2026-01-01T00:00:00"})
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "created_after"
    bad = await user.get("/api/v1/jobs", params={"status": "sleeping"})
    assert bad.status_code == 422


async def test_retryable_failures_are_retried_up_to_the_limit(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    async with platform.write_sessions() as session:
        service = JobService(session, None, default_max_attempts=3)
        recovers, _ = await service.submit("tests.flaky", {"fail_attempts": 2})
        gives_up, _ = await service.submit("tests.flaky", {"fail_attempts": 5})
        permanent, _ = await service.submit("tests.flaky", {"fail_attempts": 1, "retryable": False})
        await session.commit()
    await platform.jobs.drain()
    async with platform.read_sessions() as session:
        rows = {
            job.id: job
            for job in (
                await session.execute(select(Job).where(Job.kind == "tests.flaky"))
            ).scalars()
        }
    assert rows[recovers.id].status is JobStatus.SUCCEEDED
    assert rows[recovers.id].attempts == 3 and rows[recovers.id].result == {"attempt": 3}
    assert rows[gives_up.id].status is JobStatus.FAILED and rows[gives_up.id].attempts == 3
    assert rows[gives_up.id].error_code == "FLAKY"
    assert rows[permanent.id].status is JobStatus.FAILED and rows[permanent.id].attempts == 1
    assert user  # the jobs above are the platform's own (no owner)


async def test_time_limits_and_unexpected_errors_fail_the_job_with_a_clear_code(
    platform: Platform,
) -> None:
    async with platform.write_sessions() as session:
        service = JobService(session, None, default_max_attempts=3)
        slow, _ = await service.submit("tests.sleep_without_progress", {"seconds": 5})
        bug, _ = await service.submit("tests.broken", {"seconds": 0})
        await session.commit()
    await platform.jobs.drain()
    async with platform.read_sessions() as session:
        slow_row = await session.get(Job, slow.id, populate_existing=True)
        bug_row = await session.get(Job, bug.id, populate_existing=True)
    assert slow_row is not None and slow_row.error_code == "TIME_LIMIT_EXCEEDED"
    assert bug_row is not None and bug_row.error_code == "INTERNAL_ERROR"
    assert "/srv/secret" not in (bug_row.error_message or "")  # no internals leak to clients
    assert bug_row.attempts == 1


async def test_cpu_heavy_kinds_run_in_a_worker_thread(platform: Platform) -> None:
    async with platform.write_sessions() as session:
        job, _ = await JobService(session, None, default_max_attempts=3).submit(
            "tests.cpu", {"rounds": 2}
        )
        await session.commit()
    await platform.jobs.drain()
    async with platform.read_sessions() as session:
        row = await session.get(Job, job.id, populate_existing=True)
    assert row is not None and row.status is JobStatus.SUCCEEDED, row and row.error_message
    assert row.result is not None and row.result["thread"].startswith("job-cpu")
