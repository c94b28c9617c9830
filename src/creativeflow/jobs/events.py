"""What the jobs module announces."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from creativeflow.shared.messaging.events import BaseEvent, EventAudience

if TYPE_CHECKING:
    from creativeflow.jobs.models import Job


class JobQueuedEvent(BaseEvent):
    """A job was queued and its transaction committed: time to wake a worker. A process
    signal, not a durable event: a lost wake-up is re-sent by the sweeper from the row."""

    event_type: ClassVar[str] = "jobs.queued"
    durable: ClassVar[bool] = False

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
    # The group it belongs to (one panel of a sequence), if any.
    parent_id: uuid.UUID | None = None
    # Images (or other stored things) the job produced, for clients that fetch them next.
    asset_ids: list[uuid.UUID] = Field(default_factory=list)

    def audience(self) -> EventAudience:
        return EventAudience(
            owner_id=self.owner_id, subject_type=self.subject_type, subject_id=self.subject_id
        )

    @classmethod
    def of(
        cls,
        job: Job,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> JobFinishedEvent:
        """The event for `job` ending with `status`; its images from the result's
        `image_ids`."""
        return cls(
            job_id=job.id,
            kind=job.kind,
            status=str(status),
            owner_id=job.owner_id,
            subject_type=job.subject_type,
            subject_id=job.subject_id,
            error_code=error_code,
            error_message=error_message,
            parent_id=job.parent_id,
            asset_ids=_image_ids(result),
        )


def _image_ids(result: dict[str, Any] | None) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for value in (result or {}).get("image_ids") or []:
        try:
            ids.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return ids
