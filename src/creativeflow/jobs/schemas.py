"""Request and response models of the jobs API."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from creativeflow.jobs.models import Job, JobStatus


class JobError(BaseModel):
    code: str = Field(description="Stable UPPER_SNAKE name: WORKER_LOST, TIME_LIMIT_EXCEEDED, ...")
    message: str


class JobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    status: JobStatus
    sequence: int = Field(description="Grows on every change of the job")
    progress: float = Field(ge=0, le=1)
    progress_message: str | None
    owner_id: uuid.UUID | None
    subject_type: str | None
    subject_id: uuid.UUID | None
    input: dict[str, Any]
    result: dict[str, Any] | None
    error: JobError | None = Field(
        description="Why the job failed or was cancelled; while it is queued again after a "
        "failed attempt, why that attempt failed"
    )
    attempts: int
    max_attempts: int
    priority: int
    cancel_requested: bool
    retried_from: uuid.UUID | None
    parent_id: uuid.UUID | None = Field(
        description="The group this job belongs to (e.g. one panel of a sequence); its "
        "children are listed by `GET /jobs?parent_id=`"
    )
    queue_position: int | None = Field(
        default=None, description="1 = runs next; set on a single queued job"
    )
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, job: Job, *, queue_position: int | None = None) -> JobRead:
        error = (
            JobError(code=job.error_code, message=job.error_message or job.error_code)
            if job.error_code
            else None
        )
        return cls.model_validate(
            {
                **{name: getattr(job, name) for name in _COLUMNS},
                "error": error,
                "queue_position": queue_position,
            }
        )


_COLUMNS = [name for name in JobRead.model_fields if name not in {"error", "queue_position"}]


class JobSort(StrEnum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    QUEUED_AT = "queued_at"
    FINISHED_AT = "finished_at"
    PRIORITY = "priority"


class SortOrder(StrEnum):
    ASC = "asc"
    DESC = "desc"
