"""Story news to the project's sockets (`WS /api/v1/ws/{project_id}`): content changes as
`content_update` (the entity, its id, the action and the new version), and drafts written by
generations as `draft_ready`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from creativeflow.realtime.publishing import publish_content_update, publish_draft_ready
from creativeflow.shared.messaging.events import BaseEvent
from creativeflow.stories.events import DraftReady, StoryContentChanged

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

    async def on_draft(event: BaseEvent) -> None:
        if not isinstance(event, DraftReady):
            return
        await publish_draft_ready(
            hub,
            event.project_id,
            event.draft_id,
            {
                "draft_id": str(event.draft_id),
                "kind": event.kind,
                "operation": event.operation,
                "target_type": event.target_type,
                "target_id": str(event.target_id),
                "variants": event.variants,
                "warnings": event.warnings,
            },
            job_id=event.job_id,
        )

    platform.events.subscribe(StoryContentChanged.event_type, on_change)
    platform.events.subscribe(DraftReady.event_type, on_draft)
