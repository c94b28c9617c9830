"""A source turning unhealthy, or recovering, told to its owner's sockets (`WS /api/v1/ws`) as
`datasource_status`. Webhooks hear the same events through the outbox."""

from __future__ import annotations

from typing import TYPE_CHECKING

from creativeflow.datasources.events import DataSourceRecoveredEvent, DataSourceUnhealthyEvent
from creativeflow.realtime.models import MessageType, user_channel
from creativeflow.realtime.publishing import publish_safely
from creativeflow.shared.messaging.events import BaseEvent

if TYPE_CHECKING:
    from creativeflow.platform import Platform


def connect_datasource_events(platform: Platform) -> None:
    hub = platform.realtime

    async def on_status(event: BaseEvent) -> None:
        if isinstance(event, DataSourceUnhealthyEvent):
            data = {"status": "unhealthy", "error_code": event.error_code, "message": event.message}
        elif isinstance(event, DataSourceRecoveredEvent):
            data = {"status": "healthy"}
        else:
            return
        data |= {"source_id": str(event.source_id), "name": event.name, "type": event.type}
        await publish_safely(
            hub,
            user_channel(event.owner_id),
            MessageType.DATASOURCE_STATUS,
            data,
            resource_id=event.source_id,
        )

    platform.events.subscribe(DataSourceUnhealthyEvent.event_type, on_status)
    platform.events.subscribe(DataSourceRecoveredEvent.event_type, on_status)
