"""What travels on a realtime channel: one envelope for every message, encoded once.

Every server message is a JSON object with the same keys, in this order:
`{"type", "channel", "sequence", "timestamp", "job_id", "resource_id", "data"}`. Channel events
(`generation_progress`, `task_complete`, `content_update`, `draft_ready`) carry the channel's
`sequence`, which grows by one per message on that channel across every process; messages
about the connection itself (`connected`, `reload`, `ping`, acknowledgements) have `sequence`
null.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson
from pydantic_core import to_jsonable_python

USER_CHANNEL_PREFIX = "user:"
SUBJECT_CHANNEL_PREFIX = "subject:"


def user_channel(user_id: uuid.UUID | str) -> str:
    """The channel of a user's own jobs (`WS /api/v1/ws`)."""
    return f"{USER_CHANNEL_PREFIX}{user_id}"


def subject_channel(subject_id: uuid.UUID | str) -> str:
    """The channel of a subject: a story project, a brand ... (`WS /api/v1/ws/{id}`). Subject
    ids are UUIDv7, unique across subject types, so the id alone names the channel."""
    return f"{SUBJECT_CHANNEL_PREFIX}{subject_id}"


class MessageType(StrEnum):
    # Channel events: sequenced, kept for replay.
    GENERATION_PROGRESS = "generation_progress"
    TASK_COMPLETE = "task_complete"
    CONTENT_UPDATE = "content_update"
    DRAFT_READY = "draft_ready"
    DATASOURCE_STATUS = "datasource_status"
    # About the connection: not sequenced, never replayed.
    CONNECTED = "connected"
    RELOAD = "reload"
    PING = "ping"
    PONG = "pong"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"


def now_timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _id(value: uuid.UUID | str | None) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class EncodedParts:
    """A message's JSON split around its sequence number, so the sequence can be filled in by
    whoever assigns it (Redis, in one script) without decoding and re-encoding the rest."""

    head: bytes
    tail: bytes

    def with_sequence(self, sequence: int | None) -> bytes:
        return self.head + (b"null" if sequence is None else str(sequence).encode()) + self.tail


def encode_parts(
    message_type: str,
    channel: str,
    data: dict[str, Any],
    *,
    job_id: uuid.UUID | str | None = None,
    resource_id: uuid.UUID | str | None = None,
    timestamp: str | None = None,
) -> EncodedParts:
    head = orjson.dumps({"type": str(message_type), "channel": channel})[:-1] + b',"sequence":'
    rest = {
        "timestamp": timestamp or now_timestamp(),
        "job_id": _id(job_id),
        "resource_id": _id(resource_id),
        "data": to_jsonable_python(data),
    }
    return EncodedParts(head, b"," + orjson.dumps(rest)[1:])


@dataclass(frozen=True, slots=True)
class RealtimeMessage:
    type: str
    channel: str
    sequence: int | None
    timestamp: str
    job_id: str | None
    resource_id: str | None
    data: dict[str, Any]
    # The JSON text sent to every socket: encoded once, whatever the number of sockets.
    text: str = field(repr=False, compare=False)

    @classmethod
    def decode(cls, raw: bytes | str) -> RealtimeMessage:
        document = orjson.loads(raw)
        return cls(
            type=document["type"],
            channel=document["channel"],
            sequence=document["sequence"],
            timestamp=document["timestamp"],
            job_id=document["job_id"],
            resource_id=document["resource_id"],
            data=document["data"],
            text=raw.decode() if isinstance(raw, bytes) else raw,
        )

    @classmethod
    def build(
        cls,
        message_type: str,
        channel: str,
        data: dict[str, Any],
        *,
        sequence: int | None = None,
        job_id: uuid.UUID | str | None = None,
        resource_id: uuid.UUID | str | None = None,
    ) -> RealtimeMessage:
        """A message with its sequence already known (in process, or a connection message)."""
        parts = encode_parts(message_type, channel, data, job_id=job_id, resource_id=resource_id)
        return cls.decode(parts.with_sequence(sequence))

    def concerns(self, resource_ids: Collection[str]) -> bool:
        """Whether a socket narrowed to `resource_ids` (none: everything) receives this."""
        if not resource_ids:
            return True
        return self.job_id in resource_ids or self.resource_id in resource_ids

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "channel": self.channel,
            "sequence": self.sequence,
            "timestamp": self.timestamp,
            "job_id": self.job_id,
            "resource_id": self.resource_id,
            "data": self.data,
        }
