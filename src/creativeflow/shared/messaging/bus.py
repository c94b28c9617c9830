"""An in-process event bus. Modules record events on the session of the transaction that
caused them. Durable events are written to the outbox by that transaction and reach the bus
through the outbox's dispatcher; process signals (`durable = False`) are published by the unit of
work after the commit succeeds. Either way no consumer hears of a change that was rolled back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from creativeflow.shared.core.logging import get_logger
from creativeflow.shared.messaging.events import BaseEvent

Handler = Callable[[BaseEvent], Awaitable[None]]
PENDING_EVENTS_KEY = "creativeflow.pending_events"
_log = get_logger("creativeflow.events")


def record_event(session_info: dict[str, Any], event: BaseEvent) -> None:
    """Queue `event` on a session's `info` dict until its transaction commits."""
    session_info.setdefault(PENDING_EVENTS_KEY, []).append(event)


def take_pending_events(session_info: dict[str, Any]) -> list[BaseEvent]:
    return session_info.pop(PENDING_EVENTS_KEY, [])


def take_durable_events(session_info: dict[str, Any]) -> list[BaseEvent]:
    """Remove the durable events pending on a session (for the outbox); signals stay."""
    pending: list[BaseEvent] = session_info.get(PENDING_EVENTS_KEY, [])
    durable = [event for event in pending if event.durable]
    if durable:
        session_info[PENDING_EVENTS_KEY] = [event for event in pending if not event.durable]
    return durable


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)

    def subscribe(self, event_type: str, handler: Handler) -> None:
        self._handlers[event_type].append(handler)

    async def publish(self, event: BaseEvent) -> None:
        _log.info(
            "domain_event",
            event_type=event.event_type,
            version=event.version,
            event_id=str(event.event_id),
        )
        for handler in self._handlers.get(event.event_type, []):
            try:
                await handler(event)
            except Exception:  # one failing consumer must not break the others or the request
                _log.exception("event_handler_failed", event_type=event.event_type)
