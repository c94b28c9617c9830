"""What the registry announces: a source turning unhealthy, and recovering."""

from __future__ import annotations

import uuid
from typing import ClassVar

from creativeflow.shared.messaging.events import BaseEvent, EventAudience


class DataSourceUnhealthyEvent(BaseEvent):
    """A data source that was healthy (or never checked) failed its connection check."""

    event_type: ClassVar[str] = "datasources.unhealthy"

    source_id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    type: str
    error_code: str
    message: str
    scheduled: bool

    def audience(self) -> EventAudience:
        return EventAudience(owner_id=self.owner_id)


class DataSourceRecoveredEvent(BaseEvent):
    """An unhealthy data source passed its connection check again."""

    event_type: ClassVar[str] = "datasources.recovered"

    source_id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    type: str
    scheduled: bool

    def audience(self) -> EventAudience:
        return EventAudience(owner_id=self.owner_id)
