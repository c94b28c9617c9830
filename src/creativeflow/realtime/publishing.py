"""Publishing that never fails its caller: what jobs and the studios call to reach sockets.

Call these after your transaction has committed (never inside one: a socket must not hear of
a change that is rolled back, and the write must not wait on Redis). A hub that cannot publish
(Redis unreachable) costs a log line, never an error: realtime is a notification, the row is
the truth, and a client that missed something reconnects with `since` or reloads.

For the studios::

    from creativeflow.realtime.publishing import publish_content_update, publish_draft_ready

    await publish_content_update(platform.realtime, project.id, panel.id, {"kind": "panel",
                                 "action": "updated", "fields": ["caption"]})
    await publish_draft_ready(platform.realtime, project.id, draft.id, {"title": draft.title})

Both reach `WS /api/v1/ws/{project_id}`, and a socket that sent
`{"type": "subscribe", "resource_id": "<panel or draft id>"}` gets only its resources' news.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from creativeflow.jobs.events import JobFinishedEvent
from creativeflow.jobs.models import JobStatus
from creativeflow.jobs.runner import JobProgress
from creativeflow.realtime.hub import RealtimeHub, RealtimeUnavailable
from creativeflow.realtime.models import (
    MessageType,
    RealtimeMessage,
    subject_channel,
    user_channel,
)
from creativeflow.shared.core.logging import get_logger
from creativeflow.shared.messaging.events import BaseEvent

if TYPE_CHECKING:
    from creativeflow.platform import Platform

_log = get_logger("creativeflow.realtime")


async def publish_safely(
    hub: RealtimeHub,
    channel: str,
    message_type: str,
    data: dict[str, Any],
    *,
    job_id: uuid.UUID | str | None = None,
    resource_id: uuid.UUID | str | None = None,
) -> RealtimeMessage | None:
    """`hub.publish(...)`, or None (logged) when the hub cannot publish."""
    try:
        return await hub.publish(
            channel, message_type, data, job_id=job_id, resource_id=resource_id
        )
    except RealtimeUnavailable as exc:
        report = _log.debug if exc.repeated else _log.warning
        report("realtime_publish_failed", channel=channel, type=message_type, error=str(exc))
    except Exception:
        _log.exception("realtime_publish_failed", channel=channel, type=message_type)
    return None


async def publish_to_subject(
    hub: RealtimeHub,
    subject_id: uuid.UUID,
    message_type: str,
    data: dict[str, Any],
    *,
    resource_id: uuid.UUID | str | None = None,
    job_id: uuid.UUID | str | None = None,
) -> RealtimeMessage | None:
    """A message to everyone watching a subject (`WS /api/v1/ws/{subject_id}`)."""
    return await publish_safely(
        hub,
        subject_channel(subject_id),
        message_type,
        data,
        job_id=job_id,
        resource_id=resource_id,
    )


async def publish_content_update(
    hub: RealtimeHub,
    subject_id: uuid.UUID,
    resource_id: uuid.UUID,
    data: dict[str, Any],
    *,
    job_id: uuid.UUID | None = None,
) -> RealtimeMessage | None:
    """`content_update`: something inside a subject (a chapter, a panel ...) changed;
    `data` says what (the studio's own fields)."""
    return await publish_to_subject(
        hub, subject_id, MessageType.CONTENT_UPDATE, data, resource_id=resource_id, job_id=job_id
    )


async def publish_draft_ready(
    hub: RealtimeHub,
    subject_id: uuid.UUID,
    draft_id: uuid.UUID,
    data: dict[str, Any],
    *,
    job_id: uuid.UUID | None = None,
) -> RealtimeMessage | None:
    """`draft_ready`: a generated draft can be read now."""
    return await publish_to_subject(
        hub, subject_id, MessageType.DRAFT_READY, data, resource_id=draft_id, job_id=job_id
    )


def job_channels(owner_id: uuid.UUID | None, subject_id: uuid.UUID | None) -> list[str]:
    """A job's news goes to its owner and, when it has one, to its subject."""
    channels = [] if owner_id is None else [user_channel(owner_id)]
    if subject_id is not None:
        channels.append(subject_channel(subject_id))
    return channels


async def publish_job_progress(hub: RealtimeHub, progress: JobProgress) -> None:
    data = {
        "status": JobStatus.RUNNING.value,
        "progress": progress.progress,
        "message": progress.message,
        "kind": progress.kind,
    }
    for channel in job_channels(progress.owner_id, progress.subject_id):
        await publish_safely(
            hub, channel, MessageType.GENERATION_PROGRESS, data, job_id=progress.job_id
        )


async def publish_task_complete(hub: RealtimeHub, event: JobFinishedEvent) -> None:
    data = {
        "status": event.status,
        "kind": event.kind,
        "error_code": event.error_code,
        "error_message": event.error_message,
        "asset_ids": [str(asset_id) for asset_id in event.asset_ids],
    }
    for channel in job_channels(event.owner_id, event.subject_id):
        await publish_safely(hub, channel, MessageType.TASK_COMPLETE, data, job_id=event.job_id)


def connect_job_events(platform: Platform) -> None:
    """Push this process's jobs' progress, and the job endings dispatched in this process,
    to their sockets (`platform.realtime`: in process, or through Redis to every process)."""
    hub = platform.realtime

    async def on_progress(progress: JobProgress) -> None:
        await publish_job_progress(hub, progress)

    async def on_finished(event: BaseEvent) -> None:
        if isinstance(event, JobFinishedEvent):
            await publish_task_complete(hub, event)

    platform.jobs.runner.progress_listeners.append(on_progress)
    platform.events.subscribe(JobFinishedEvent.event_type, on_finished)
