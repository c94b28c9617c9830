"""The realtime hub: publishes messages to channels, keeps each channel's recent messages for
replay, and hands them to the sockets subscribed in this process.

Two implementations, chosen by settings: `LocalHub` (no REDIS_URL) keeps everything in this
process; `RedisHub` (`redis_hub.py`) numbers, keeps and fans out messages through Redis, so a
message published by any process (an API process, a Celery worker) reaches the sockets held
by every API process.

A socket's subscription has a bounded queue: publishing never waits for a socket. A socket
that falls behind by more than the bound is ended (its connection closes with a reason);
nobody else is held up.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from creativeflow.realtime.models import RealtimeMessage
from creativeflow.shared.core.logging import get_logger

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from creativeflow.settings import Settings

_log = get_logger("creativeflow.realtime")


class RealtimeUnavailable(Exception):
    """The hub cannot publish or subscribe right now (Redis is unreachable). `repeated`: the
    same outage was already reported moments ago."""

    def __init__(self, message: str, *, repeated: bool = False) -> None:
        super().__init__(message)
        self.repeated = repeated


class SubscriptionEnded(Exception):
    def __init__(self, reason: str, *, overflowed: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.overflowed = overflowed


class Subscription:
    """One socket's view of one channel: a bounded queue of the messages it wants."""

    def __init__(self, channel: str, *, queue_size: int, resource_ids: Iterable[str] = ()) -> None:
        self.channel = channel
        self.queue_size = queue_size
        # Narrows the channel to these job or resource ids; empty: everything.
        self.resource_ids: set[str] = set(resource_ids)
        self._queue: deque[RealtimeMessage] = deque()
        self._wakeup = asyncio.Event()
        self.ended = asyncio.Event()
        self.end_reason = ""
        self.overflowed = False

    def offer(self, message: RealtimeMessage) -> None:
        """Queue `message` if this socket wants it. Never blocks: a full queue ends the
        subscription instead."""
        if self.ended.is_set() or not message.concerns(self.resource_ids):
            return
        if len(self._queue) >= self.queue_size:
            self.overflowed = True
            self.end(f"too slow: more than {self.queue_size} messages waiting")
            return
        self._queue.append(message)
        self._wakeup.set()

    def end(self, reason: str) -> None:
        if self.ended.is_set():
            return
        self.end_reason = reason
        self._queue.clear()
        self.ended.set()
        self._wakeup.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def get(self) -> RealtimeMessage:
        """The next message; raises `SubscriptionEnded` once the subscription ended."""
        while not self._queue:
            if self.ended.is_set():
                raise SubscriptionEnded(self.end_reason, overflowed=self.overflowed)
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._queue.popleft()


def sequence_base() -> int:
    """Where a channel's numbering starts when it is created (or created again after a
    restart, or after Redis forgot it): microseconds since the epoch. Any number a client kept
    from the channel's previous life is smaller, unless that life averaged more than a message
    a microsecond, so a `since` from before is always told to reload and never confused with
    the new numbers. Below 2**53: exact in JavaScript."""
    return time.time_ns() // 1000


@dataclass(frozen=True, slots=True)
class Replay:
    """What a channel still holds after a sequence number."""

    latest: int  # the channel's last sequence number (its base: nothing published yet)
    messages: list[RealtimeMessage] = field(default_factory=list)
    # False when messages after `since` are gone (too old, too many, or the channel started
    # over): the client must reload what it shows.
    complete: bool = True


def replay_after(since: int | None, latest: int, kept: Iterable[RealtimeMessage]) -> Replay:
    """The replay of a channel whose last sequence is `latest` and which still keeps `kept`
    (in order): complete only if every message after `since` is there."""
    if since is None:
        return Replay(latest)
    if since > latest:  # not a number this channel gave out
        return Replay(latest, complete=False)
    missed = [message for message in kept if (message.sequence or 0) > since]
    complete = len(missed) == latest - since and (not missed or missed[0].sequence == since + 1)
    return Replay(latest, missed if complete else [], complete)


class RealtimeHub(ABC):
    def __init__(self, *, replay_events: int, replay_seconds: float, queue_size: int) -> None:
        self.replay_events = replay_events
        self.replay_seconds = replay_seconds
        self.queue_size = queue_size

    @abstractmethod
    async def publish(
        self,
        channel: str,
        message_type: str,
        data: dict[str, Any],
        *,
        job_id: uuid.UUID | str | None = None,
        resource_id: uuid.UUID | str | None = None,
    ) -> RealtimeMessage:
        """Number, keep and fan out one message. Raises `RealtimeUnavailable` when it cannot;
        callers that must not fail use `creativeflow.realtime.publishing`."""

    @abstractmethod
    async def subscribe(self, channel: str, *, resource_ids: Iterable[str] = ()) -> Subscription:
        """A live subscription: every message published to `channel` from the moment this
        returns is offered to it (so a replay read afterwards leaves no gap)."""

    @abstractmethod
    async def unsubscribe(self, subscription: Subscription) -> None: ...

    @abstractmethod
    async def replay(self, channel: str, since: int | None) -> Replay:
        """The messages published to `channel` after sequence `since`, if all are still kept;
        `since` None asks only for the latest sequence."""

    @abstractmethod
    async def close(self) -> None:
        """End every subscription (their sockets close) and release connections."""


@dataclass
class _LocalChannel:
    sequence: int = field(default_factory=sequence_base)
    # (monotonic time, message), oldest first; bounded by count here, by age on each publish.
    kept: deque[tuple[float, RealtimeMessage]] = field(default_factory=deque)
    subscriptions: set[Subscription] = field(default_factory=set)


class LocalHub(RealtimeHub):
    """Everything in this process: for a single API process without Redis (the embedded
    default). After a restart every channel numbers from a new base; a client reconnecting
    with a `since` from before is told to reload."""

    def __init__(self, *, replay_events: int, replay_seconds: float, queue_size: int) -> None:
        super().__init__(
            replay_events=replay_events, replay_seconds=replay_seconds, queue_size=queue_size
        )
        self._channels: dict[str, _LocalChannel] = {}
        self._next_sweep = time.monotonic() + replay_seconds

    def _channel(self, name: str) -> _LocalChannel:
        channel = self._channels.get(name)
        if channel is None:
            channel = self._channels[name] = _LocalChannel(kept=deque(maxlen=self.replay_events))
        return channel

    async def publish(
        self,
        channel: str,
        message_type: str,
        data: dict[str, Any],
        *,
        job_id: uuid.UUID | str | None = None,
        resource_id: uuid.UUID | str | None = None,
    ) -> RealtimeMessage:
        state = self._channel(channel)
        state.sequence += 1
        message = RealtimeMessage.build(
            message_type,
            channel,
            data,
            sequence=state.sequence,
            job_id=job_id,
            resource_id=resource_id,
        )
        now = time.monotonic()
        if self.replay_events:
            state.kept.append((now, message))
        self._trim(state, now)
        for subscription in list(state.subscriptions):
            subscription.offer(message)
        if now >= self._next_sweep:
            self._sweep(now)
        return message

    def _trim(self, state: _LocalChannel, now: float) -> None:
        cutoff = now - self.replay_seconds
        while state.kept and state.kept[0][0] < cutoff:
            state.kept.popleft()

    def _sweep(self, now: float) -> None:
        """Forget channels nobody watches whose kept messages all aged out: memory stays
        bounded by the active channels. One that comes back numbers from a new base."""
        for name, state in list(self._channels.items()):
            self._trim(state, now)
            if not state.kept and not state.subscriptions:
                del self._channels[name]
        self._next_sweep = now + self.replay_seconds

    async def subscribe(self, channel: str, *, resource_ids: Iterable[str] = ()) -> Subscription:
        subscription = Subscription(channel, queue_size=self.queue_size, resource_ids=resource_ids)
        self._channel(channel).subscriptions.add(subscription)
        return subscription

    async def unsubscribe(self, subscription: Subscription) -> None:
        subscription.end("unsubscribed")
        state = self._channels.get(subscription.channel)
        if state is not None:
            state.subscriptions.discard(subscription)

    async def replay(self, channel: str, since: int | None) -> Replay:
        state = self._channel(channel)
        self._trim(state, time.monotonic())
        return replay_after(since, state.sequence, (message for _, message in state.kept))

    async def close(self) -> None:
        for state in self._channels.values():
            for subscription in list(state.subscriptions):
                subscription.end("server shutting down")
            state.subscriptions.clear()


def build_hub(settings: Settings, redis: Redis | None, *, role: str = "api") -> RealtimeHub:
    """Redis when REDIS_URL is set (`redis` is the platform's client), in process otherwise."""
    options: dict[str, Any] = {
        "replay_events": settings.realtime_replay_events,
        "replay_seconds": settings.realtime_replay_seconds,
        "queue_size": settings.realtime_queue_size,
    }
    if redis is not None:
        from creativeflow.realtime.redis_hub import RedisHub

        return RedisHub(redis, **options)
    if role == "worker":
        _log.warning(
            "realtime_in_process_worker",
            detail="REDIS_URL is not set: this worker's job progress reaches no WebSocket",
        )
    return LocalHub(**options)
