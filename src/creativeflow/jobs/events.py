"""What the jobs module announces."""

from __future__ import annotations

import uuid
from typing import ClassVar

from pydantic import Field

from creativeflow.shared.messaging.events import BaseEvent


class JobQueuedEvent(BaseEvent):
    """A job was queued and its transaction committed: time to wake a worker."""

    event_type: ClassVar[str] = "jobs.queued"

    job_id: uuid.UUID
    kind: str


class JobFinishedEvent(BaseEvent):
    """A job ended (succeeded, failed or cancelled) and its final write committed. Durable:
    it goes through the outbox to realtime (`task_complete`), webhooks and subscribers."""

    event_type: ClassVar[str] = "jobs.finished"

    job_id: uuid.UUID
    kind: str
    status: str  # succeeded | failed | cancelled
    owner_id: uuid.UUID | None = None
    subject_type: str | None = None
    subject_id: uuid.UUID | None = None
    error_code: str | None = None
    error_message: str | None = None
    # Images (or other stored things) the job produced, for clients that fetch them next.
    asset_ids: list[uuid.UUID] = Field(default_factory=list)
