"""The embedded runner against a committed database: concurrency, cancelling running jobs,
lost workers, restarts, pruning."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, update

import tests.jobs.sample_kinds as sample_kinds
from creativeflow.db.types import utcnow
from creativeflow.jobs.maintenance import PRUNE_KIND
from creativeflow.jobs.models import Job, JobStatus
from creativeflow.jobs.repository import JobRepository
from creativeflow.jobs.service import JobService
from creativeflow.platform import Platform
from tests.factories import UserFactory
from tests.jobs.live import (
    api_client,
    job_row,
    live_settings,
    running_platform,
    submit,
    submit_owned,
    wait_all,
    wait_for,
)


async def test_jobs_run_in_process_at_most_job_concurrency_at_a_time(
    live_database_url: str, tmp_path: Path
) -> None:
    settings = live_settings(live_database_url, tmp_path, job_concurrency=3)
    async with running_platform(settings) as platform:
        sample_kinds.most_at_once = 0
        jobs = [
            await submit(platform, "tests.steps", {"steps": 4, "step_seconds": 0.05})
            for _ in range(8)
        ]
        finished = await wait_all(platform, [job.id for job in jobs])
    assert all(job.status is JobStatus.SUCCEEDED for job in finished)
    assert 2 <= sample_kinds.most_at_once <= 3


async def test_a_running_job_is_cancelled_at_its_next_progress_point(
    live_database_url: str, tmp_path: Path
) -> None:
    settings = live_settings(live_database_url, tmp_path)
    async with running_platform(settings) as platform, api_client(platform) as client:
        user = await UserFactory(client, platform).create()
        job = await submit_owned(platform, user.id, {"steps": 500, "step_seconds": 0.02})
        await wait_for(platform, job.id, lambda j: j.progress > 0)
        response = await user.post(f"/api/v1/jobs/{job.id}/cancel")
        assert response.status_code == 200, response.text
        assert response.json()["status"] in {"running", "cancelled"}
        assert response.json()["cancel_requested"] is True
        ended = await wait_for(platform, job.id, seconds=5)
    assert ended.status is JobStatus.CANCELLED
    assert ended.progress < 1.0 and ended.result is None


async def test_a_job_waiting_on_a_long_call_is_cancelled_by_its_heartbeat(
    live_database_url: str, tmp_path: Path
) -> None:
    """No progress point for 20 s (a slow provider): the heartbeat stops it anyway."""
    settings = live_settings(live_database_url, tmp_path)
    async with running_platform(settings) as platform, api_client(platform) as client:
        user = await UserFactory(client, platform).create()
        job = await submit_owned(platform, user.id, {"steps": 1, "step_seconds": 20})
        await wait_for(platform, job.id, lambda j: j.status is JobStatus.RUNNING)
        assert (await user.post(f"/api/v1/jobs/{job.id}/cancel")).status_code == 200
        started = asyncio.get_running_loop().time()
        ended = await wait_for(platform, job.id, seconds=5)
        assert asyncio.get_running_loop().time() - started < 3
    assert ended.status is JobStatus.CANCELLED


async def _claim_as_dead_worker(platform: Platform, job_id: uuid.UUID) -> None:
    """Claim the job for a worker that then vanished: its last heartbeat is long ago."""
    long_ago = utcnow() - timedelta(hours=1)
    async with platform.write_transaction() as session:
        assert await JobRepository(session).claim(job_id, "worker@gone:1:dead", long_ago)


async def test_a_job_whose_worker_died_is_retried_or_failed_with_worker_lost(
    live_database_url: str, tmp_path: Path
) -> None:
    settings = live_settings(live_database_url, tmp_path)
    async with running_platform(settings, start_jobs=False) as platform:
        retried = await submit(platform, "tests.steps", {"steps": 1})
        exhausted = await submit(platform, "tests.steps", {"steps": 1})
        async with platform.write_transaction() as session:
            await session.execute(update(Job).where(Job.id == exhausted.id).values(max_attempts=1))
        await _claim_as_dead_worker(platform, retried.id)
        await _claim_as_dead_worker(platform, exhausted.id)

        report = await platform.jobs.sweeper.sweep()
        assert (report.requeued, report.failed) == (1, 1)
        lost = await job_row(platform, exhausted.id)
        assert lost.status is JobStatus.FAILED and lost.error_code == "WORKER_LOST"
        assert "worker@gone:1:dead" in (lost.error_message or "")
        again = await job_row(platform, retried.id)
        assert again.status is JobStatus.QUEUED and again.error_code == "WORKER_LOST"

        await platform.jobs.start()
        done = await wait_for(platform, retried.id)
    assert done.status is JobStatus.SUCCEEDED and done.attempts == 2
    assert done.error_code is None  # the successful attempt clears the earlier failure


async def test_queued_jobs_survive_a_restart_and_a_stopped_job_is_handed_back(
    live_database_url: str, tmp_path: Path
) -> None:
    settings = live_settings(live_database_url, tmp_path, job_concurrency=1)
    async with running_platform(settings) as first:
        long = await submit(first, "tests.steps", {"steps": 100, "step_seconds": 0.05})
        queued = [await submit(first, "tests.steps", {"steps": 1}) for _ in range(3)]
        await wait_for(first, long.id, lambda j: j.progress > 0)
    # The first process stopped mid-job: the job went back to the queue, its attempt uncounted.
    async with running_platform(settings, start_jobs=False) as second:
        stopped = await job_row(second, long.id)
        assert stopped.status is JobStatus.QUEUED and stopped.attempts == 0
        await second.jobs.start()
        finished = await wait_all(second, [long.id, *(job.id for job in queued)])
    assert all(job.status is JobStatus.SUCCEEDED for job in finished)


async def test_finished_jobs_past_retention_are_pruned_by_a_daily_job(
    live_database_url: str, tmp_path: Path
) -> None:
    settings = live_settings(live_database_url, tmp_path, job_retention_days=7)
    async with running_platform(settings, start_jobs=False) as platform:
        old = await submit(platform, "tests.steps", {"steps": 1})
        recent = await submit(platform, "tests.steps", {"steps": 1})
        unfinished = await submit(platform, "tests.steps", {"steps": 1})
        await platform.jobs.drain()
        async with platform.write_transaction() as session:
            await session.execute(
                update(Job)
                .where(Job.id.in_([old.id, unfinished.id]))
                .values(finished_at=utcnow() - timedelta(days=8))
            )
            await session.execute(
                update(Job).where(Job.id == unfinished.id).values(status=JobStatus.QUEUED)
            )
        first = await platform.jobs.sweeper.sweep()
        second = await platform.jobs.sweeper.sweep()
        assert (first.prune_scheduled, second.prune_scheduled) == (True, False)
        async with platform.read_sessions() as session:
            prune_jobs = await session.scalar(
                select(func.count())
                .select_from(Job)
                .where(Job.kind == PRUNE_KIND, Job.idempotency_key.like("%:7d"))
            )
        assert prune_jobs == 1
        await platform.jobs.drain()
        async with platform.read_sessions() as session:
            left = set(
                (
                    await session.execute(
                        select(Job.id).where(Job.id.in_([old.id, recent.id, unfinished.id]))
                    )
                ).scalars()
            )
    assert left == {recent.id, unfinished.id}


async def test_children_ending_together_settle_their_group_exactly_once(
    live_database_url: str, tmp_path: Path
) -> None:
    from tests.jobs.sample_kinds import GroupInput, StepsInput

    settings = live_settings(live_database_url, tmp_path, job_concurrency=4)
    async with running_platform(settings) as platform:
        async with platform.write_transaction() as session:
            group, _ = await JobService(session, None, default_max_attempts=3).submit_group(
                "tests.group",
                GroupInput(),
                [("tests.steps", StepsInput(steps=2, step_seconds=0.01)) for _ in range(12)],
            )
        await platform.jobs.waker.wake(12)
        ended = await wait_for(platform, group.id, seconds=30)
    assert ended.status is JobStatus.SUCCEEDED, ended.error_message
    assert ended.result is not None and ended.result["succeeded"] == 12
    assert ended.progress == 1.0
