"""What the story studio announces."""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from creativeflow.shared.messaging.events import BaseEvent


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
