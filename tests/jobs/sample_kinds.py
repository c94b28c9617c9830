"""Job kinds for the tests, registered on import (JOB_MODULES=tests.jobs.sample_kinds makes a
`creativeflow worker` process know them too).

`tests.steps` writes a line to a file in MARKER_DIR when it completes, so a test can count how
many times each job ran to completion, across processes.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from creativeflow.jobs.context import JobContext, SyncJobContext
from creativeflow.jobs.errors import JobFailed
from creativeflow.jobs.kinds import Retries, job_group, job_kind

MARKER_DIR_VARIABLE = "CREATIVEFLOW_TEST_MARKER_DIR"
# Jobs of `tests.steps` running at this moment in this process, and the most seen at once.
running_now = 0
most_at_once = 0


class StepsInput(BaseModel):
    steps: int = Field(default=3, ge=1, le=1000)
    step_seconds: float = Field(default=0.0, ge=0, le=30)
    label: str = ""


@job_kind("tests.steps", StepsInput, time_limit_seconds=60, retries=Retries(backoff_seconds=0))
async def steps(context: JobContext, data: StepsInput) -> dict[str, Any]:
    global running_now, most_at_once
    running_now += 1
    most_at_once = max(most_at_once, running_now)
    try:
        for step in range(data.steps):
            await asyncio.sleep(data.step_seconds)
            await context.progress((step + 1) / data.steps, f"step {step + 1}/{data.steps}")
    finally:
        running_now -= 1
    marker_dir = os.environ.get(MARKER_DIR_VARIABLE)
    if marker_dir:
        with (Path(marker_dir) / f"{context.job_id}.done").open("a") as marker:
            marker.write(f"{os.getpid()} attempt {context.attempt}\n")
    return {"steps": data.steps, "label": data.label, "attempt": context.attempt}


class FlakyInput(BaseModel):
    fail_attempts: int = Field(ge=0, le=10)
    retryable: bool = True


@job_kind("tests.flaky", FlakyInput, retries=Retries(max_attempts=3, backoff_seconds=0))
async def flaky(context: JobContext, data: FlakyInput) -> dict[str, Any]:
    if context.attempt <= data.fail_attempts:
        raise JobFailed("FLAKY", f"attempt {context.attempt} fails", retryable=data.retryable)
    return {"attempt": context.attempt}


class SleepInput(BaseModel):
    seconds: float = Field(ge=0, le=60)


@job_kind("tests.sleep_without_progress", SleepInput, time_limit_seconds=0.3)
async def sleep_without_progress(context: JobContext, data: SleepInput) -> dict[str, Any]:
    await asyncio.sleep(data.seconds)
    return {}


@job_kind("tests.broken", SleepInput)
async def broken(context: JobContext, data: SleepInput) -> dict[str, Any]:
    raise RuntimeError("a bug, with a secret path /srv/secret in its message")


class CpuInput(BaseModel):
    rounds: int = Field(default=3, ge=1, le=100)


@job_kind("tests.cpu", CpuInput, cpu_heavy=True)
def cpu(context: SyncJobContext, data: CpuInput) -> dict[str, Any]:
    total = 0
    for round_number in range(data.rounds):
        total += sum(i * i for i in range(20_000))
        context.progress((round_number + 1) / data.rounds, "crunching")
        time.sleep(0.01)
    return {"thread": threading.current_thread().name, "total": total}


class GroupInput(BaseModel):
    label: str = ""


job_group("tests.group", GroupInput, description="Children of any test kind")
