"""Story content changes to the project's sockets (`WS /api/v1/ws/{project_id}`), as
`content_update` with the entity, its id, the action and the new version."""

from __future__ import annotations

from typing import TYPE_CHECKING

from creativeflow.realtime.publishing import publish_content_update
from creativeflow.shared.messaging.events import BaseEvent
from creativeflow.stories.events import StoryContentChanged

if TYPE_CHECKING:
    from creativeflow.platform import Platform


def connect_story_events(platform: Platform) -> None:
    hub = platform.realtime

    async def on_change(event: BaseEvent) -> None:
        if not isinstance(event, StoryContentChanged):
            return
        await publish_content_update(
            hub,
            event.project_id,
            event.entity_id,
            {
                "entity": event.entity,
                "id": str(event.entity_id),
                "action": event.action,
                "version": event.entity_version,
            },
        )

    platform.events.subscribe(StoryContentChanged.event_type, on_change)
