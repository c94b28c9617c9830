"""What the story studio announces."""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from pydantic import Field

from creativeflow.shared.messaging.events import BaseEvent, EventAudience


class StoryContentChanged(BaseEvent):
    """Something in a project changed (a process signal, published after the commit): the
    project's sockets hear it as `content_update`."""

    event_type: ClassVar[str] = "stories.content_changed"
    durable: ClassVar[bool] = False

    project_id: uuid.UUID
    entity: str  # project, member, chapter, scene, panel, character, ...
    entity_id: uuid.UUID
    action: Literal["created", "updated", "deleted", "reordered"]
    entity_version: int | None = None


class DraftReady(BaseEvent):
    """A generation's draft was written (with its job's success). Durable: through the outbox
    to the project's sockets (`draft_ready`), webhooks and subscribers."""

    event_type: ClassVar[str] = "stories.draft_ready"

    project_id: uuid.UUID
    draft_id: uuid.UUID
    job_id: uuid.UUID | None
    kind: str
    operation: str
    target_type: str
    target_id: uuid.UUID
    variants: int
    warnings: list[str] = Field(default_factory=list)
    owner_id: uuid.UUID | None = None

    def audience(self) -> EventAudience:
        return EventAudience(
            owner_id=self.owner_id, subject_type="project", subject_id=self.project_id
        )
