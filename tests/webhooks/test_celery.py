"""A job that ends in a Celery worker's pool process has its event dispatched by that process
at once (it runs no dispatcher loop of its own), and the delivery runs on a worker too."""

from __future__ import annotations

import os
import socket
from contextlib import ExitStack
from pathlib import Path

import pytest
from kombu import Connection
from sqlalchemy import make_url

from creativeflow.jobs.wakers import JOBS_QUEUE
from tests.factories import UserFactory
from tests.jobs.live import api_client, environment_of, wait_for
from tests.jobs.test_celery import Workers
from tests.webhooks.live import live_platform, webhook_settings
from tests.webhooks.receiver import running_receiver
from tests.webhooks.test_delivery import delivered, envelope, register

# This suite's own Redis database (the shared suite uses 15, the jobs' Celery tests 14).
REDIS_DB = 9


def _reachable(url: str) -> bool:
    parsed = make_url(url)
    try:
        with socket.create_connection((parsed.host or "127.0.0.1", parsed.port or 6379), 1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def broker_url() -> str:
    url = os.environ.get("TEST_REDIS_URL", "")
    if not url or not _reachable(url):
        pytest.skip("TEST_REDIS_URL is not set or not reachable")
    url = url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    with Connection(url) as connection:  # an earlier run's leftover wake-ups
        connection.default_channel.queue_delete(JOBS_QUEUE)
    return url


async def test_a_job_finished_on_a_worker_is_delivered_without_waiting_for_a_sweep(
    live_database_url: str, broker_url: str, tmp_path: Path
) -> None:
    # No sweep comes within the test: only the worker's own dispatch can deliver it.
    settings = webhook_settings(
        live_database_url, tmp_path, celery_broker_url=broker_url, outbox_sweep_seconds=300
    )
    env = environment_of(settings, WEBHOOK_ALLOW_PRIVATE_TARGETS="true", OUTBOX_SWEEP_SECONDS="300")
    with running_receiver(200) as receiver:
        async with (
            live_platform(settings, start_outbox=False) as platform,
            api_client(platform) as client,
        ):
            user = await UserFactory(client, platform).create()
            webhook = await register(user, receiver.url(), ["jobs.finished"])
            with ExitStack() as stack:
                Workers(stack, env, tmp_path).start("webhooks")
                response = await user.post(
                    "/api/v1/tasks/execute",
                    json={"task_type": "visual_prompt", "input": {"description": "A red fox"}},
                )
                assert response.status_code == 202, response.text
                job = await wait_for(platform, response.json()["id"], seconds=60)
                # Within seconds, though no sweep comes for 300 s.
                [request] = await receiver.wait_for(1, seconds=30)
                [delivery] = await delivered(user, webhook["id"])
    assert job.status.value == "succeeded"
    assert envelope(request)["job_id"] == str(job.id)
    assert delivery["status"] == "delivered"
