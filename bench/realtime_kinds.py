"""The realtime benchmark's job kind (JOB_MODULES=bench.realtime_kinds): each progress report
carries the wall-clock time it was made, so a WebSocket client on the same machine can tell
how long the report took to reach it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import BaseModel, Field

from creativeflow.jobs.context import JobContext
from creativeflow.jobs.kinds import job_kind


class StampedInput(BaseModel):
    steps: int = Field(default=5, ge=1, le=100)
    step_seconds: float = Field(default=0.02, ge=0, le=5)


@job_kind("bench.stamped_progress", StampedInput, time_limit_seconds=60)
async def stamped_progress(context: JobContext, data: StampedInput) -> dict[str, Any]:
    for step in range(data.steps):
        await asyncio.sleep(data.step_seconds)
        await context.progress((step + 1) / data.steps, f"t={time.time():.6f}")
    return {"steps": data.steps}
