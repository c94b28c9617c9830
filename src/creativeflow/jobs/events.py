"""What the jobs module announces."""

from __future__ import annotations

import uuid
from typing import ClassVar

from creativeflow.shared.messaging.events import BaseEvent


class JobQueuedEvent(BaseEvent):
    """A job was queued and its transaction committed: time to wake a worker."""

    event_type: ClassVar[str] = "jobs.queued"

    job_id: uuid.UUID
    kind: str
