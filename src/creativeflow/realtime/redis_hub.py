"""The hub through Redis (REDIS_URL): any process publishes, every API process delivers.

Publishing is one Lua script, atomic in Redis: it raises the channel's counter, keeps the
message in the channel's replay log (a sorted set by sequence, bounded by count and age) and
PUBLISHes it. Sequence order is therefore the same for every process, and pub/sub delivers
messages in that order.

Each process holds one pub/sub connection, subscribed to the channels its sockets watch. A
socket's subscription counts only once Redis has confirmed the SUBSCRIBE, so a replay read
after it leaves no gap. When the connection drops, redis-py reconnects and subscribes again;
each channel then catches up from its replay log (or tells its sockets to reload).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from creativeflow.realtime.hub import (
    RealtimeHub,
    RealtimeUnavailable,
    Replay,
    Subscription,
    replay_after,
)
from creativeflow.realtime.models import MessageType, RealtimeMessage, encode_parts
from creativeflow.shared.core.logging import get_logger

_log = get_logger("creativeflow.realtime")

KEY_PREFIX = "creativeflow:realtime:"
# A channel silent this long starts its numbering over (its clients are told to reload).
COUNTER_TTL_SECONDS = 30 * 24 * 3600
# After a failed publish, later ones fail at once for this long instead of each waiting on a
# dead connection: a job's progress reports must not slow down while Redis is away.
COOLDOWN_SECONDS = 5.0
# How long a new socket waits for Redis to confirm its channel's SUBSCRIBE.
CONFIRM_SECONDS = 5.0

# A channel's counter starts at Redis's clock in microseconds (see `hub.sequence_base`): a
# channel Redis forgot (expired, flushed, restarted without persistence) numbers from a new,
# larger base. Numbers are formatted with %d: Lua's own number-to-text is "%.14g".
_ENSURE_COUNTER = """
local function ensure_counter(key, ttl)
  if redis.call('EXISTS', key) == 0 then
    local clock = redis.call('TIME')
    local base = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
    redis.call('SET', key, string.format('%d', base), 'EX', ttl)
  end
end
"""

# KEYS: the channel's counter, its replay log. ARGV: the message's JSON before and after its
# sequence, the pub/sub channel, most messages kept, longest kept (ms), counter lifetime (s).
# Log members are "<redis time in ms>:<message>", so age trimming needs no second key.
PUBLISH_SCRIPT = (
    _ENSURE_COUNTER
    + """
local ttl = tonumber(ARGV[6])
ensure_counter(KEYS[1], ttl)
local sequence = string.format('%d', redis.call('INCR', KEYS[1]))
redis.call('EXPIRE', KEYS[1], ttl)
local message = ARGV[1] .. sequence .. ARGV[2]
local max_events = tonumber(ARGV[4])
local max_age = tonumber(ARGV[5])
if max_events > 0 then
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  redis.call('ZADD', KEYS[2], sequence, string.format('%d', now) .. ':' .. message)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(max_events + 1))
  local cutoff = now - max_age
  while true do
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
    if not oldest then break end
    local stamp = tonumber(string.match(oldest, '^(%d+):'))
    if stamp >= cutoff then break end
    redis.call('ZREMRANGEBYRANK', KEYS[2], 0, 0)
  end
  redis.call('PEXPIRE', KEYS[2], max_age)
end
redis.call('PUBLISH', ARGV[3], message)
return sequence
"""
)

# KEYS: the channel's counter, its replay log. ARGV: the sequence to read after ("" for none),
# counter lifetime (s). Returns the latest sequence, Redis's clock in ms and the kept members
# after that sequence, read at one instant.
REPLAY_SCRIPT = (
    _ENSURE_COUNTER
    + """
ensure_counter(KEYS[1], tonumber(ARGV[2]))
local latest = redis.call('GET', KEYS[1])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local kept = {}
if ARGV[1] ~= '' then
  kept = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf')
end
return {latest, string.format('%d', now), kept}
"""
)


@dataclass
class _Watched:
    """A channel this process's sockets watch."""

    subscriptions: set[Subscription] = field(default_factory=set)
    # How many SUBSCRIBE confirmations mean "ours is active" (see `_confirmed`).
    target: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    last_sequence: int | None = None
    # The channel's sequence when this process started watching it: where a catch-up starts
    # if no message has arrived since.
    baseline: int | None = None
    # While catching up after a reconnect, live messages wait here so order is kept.
    held: list[RealtimeMessage] | None = None


class RedisHub(RealtimeHub):
    def __init__(
        self,
        redis: Redis,
        *,
        replay_events: int,
        replay_seconds: float,
        queue_size: int,
        key_prefix: str = KEY_PREFIX,
    ) -> None:
        super().__init__(
            replay_events=replay_events, replay_seconds=replay_seconds, queue_size=queue_size
        )
        self.redis = redis
        self.key_prefix = key_prefix
        self._publish_script = redis.register_script(PUBLISH_SCRIPT)
        self._replay_script = redis.register_script(REPLAY_SCRIPT)
        self._watched: dict[str, _Watched] = {}
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None
        # SUBSCRIBE commands sent and confirmed per channel on the pub/sub connection.
        self._sent: defaultdict[str, int] = defaultdict(int)
        self._confirmed: defaultdict[str, int] = defaultdict(int)
        # Subscribe and unsubscribe commands go out in the order they were decided.
        self._commands = asyncio.Lock()
        self._down_until = 0.0
        self._catching_up: set[asyncio.Task[None]] = set()

    # -- keys -----------------------------------------------------------------------------------

    def _counter_key(self, channel: str) -> str:
        # One hash tag per channel: both keys live in the same Redis Cluster slot.
        return f"{self.key_prefix}{{{channel}}}:sequence"

    def _log_key(self, channel: str) -> str:
        return f"{self.key_prefix}{{{channel}}}:log"

    def _pubsub_name(self, channel: str) -> str:
        return f"{self.key_prefix}{channel}"

    def _channel_of(self, pubsub_name: bytes | str) -> str:
        name = pubsub_name.decode() if isinstance(pubsub_name, bytes) else pubsub_name
        return name.removeprefix(self.key_prefix)

    # -- publishing -----------------------------------------------------------------------------

    async def publish(
        self,
        channel: str,
        message_type: str,
        data: dict[str, Any],
        *,
        job_id: uuid.UUID | str | None = None,
        resource_id: uuid.UUID | str | None = None,
    ) -> RealtimeMessage:
        loop = asyncio.get_running_loop()
        if loop.time() < self._down_until:
            raise RealtimeUnavailable("Redis was unreachable moments ago", repeated=True)
        parts = encode_parts(message_type, channel, data, job_id=job_id, resource_id=resource_id)
        try:
            sequence = await self._publish_script(
                keys=[self._counter_key(channel), self._log_key(channel)],
                args=[
                    parts.head,
                    parts.tail,
                    self._pubsub_name(channel),
                    self.replay_events,
                    int(self.replay_seconds * 1000),
                    COUNTER_TTL_SECONDS,
                ],
            )
        except (RedisError, OSError) as exc:
            self._down_until = loop.time() + COOLDOWN_SECONDS
            raise RealtimeUnavailable(f"Redis: {exc}") from exc
        return RealtimeMessage.decode(parts.with_sequence(int(sequence)))

    # -- replay ---------------------------------------------------------------------------------

    async def replay(self, channel: str, since: int | None) -> Replay:
        try:
            latest, now, members = await self._replay_script(
                keys=[self._counter_key(channel), self._log_key(channel)],
                args=["" if since is None else str(since), COUNTER_TTL_SECONDS],
            )
        except (RedisError, OSError) as exc:
            raise RealtimeUnavailable(f"Redis: {exc}") from exc
        cutoff = int(now) - self.replay_seconds * 1000
        kept = []
        for member in members:
            if isinstance(member, str):  # a client made with decode_responses=True
                member = member.encode()
            stamp, _, raw = member.partition(b":")
            if int(stamp) >= cutoff:
                kept.append(RealtimeMessage.decode(raw))
        return replay_after(since, int(latest), kept)

    # -- subscriptions --------------------------------------------------------------------------

    async def subscribe(self, channel: str, *, resource_ids: Iterable[str] = ()) -> Subscription:
        subscription = Subscription(channel, queue_size=self.queue_size, resource_ids=resource_ids)
        watched = self._watched.get(channel)
        if watched is None:
            watched = self._watched[channel] = _Watched()
            try:
                await self._send_subscribe(channel, watched)
            except (RedisError, OSError) as exc:
                if self._watched.get(channel) is watched and not watched.subscriptions:
                    del self._watched[channel]
                raise RealtimeUnavailable(f"Redis: {exc}") from exc
        watched.subscriptions.add(subscription)
        try:
            async with asyncio.timeout(CONFIRM_SECONDS):
                await watched.ready.wait()
        except TimeoutError:
            await self.unsubscribe(subscription)
            raise RealtimeUnavailable("Redis did not confirm the subscription") from None
        if watched.baseline is None:
            try:
                watched.baseline = (await self.replay(channel, None)).latest
            except RealtimeUnavailable:
                await self.unsubscribe(subscription)
                raise
        return subscription

    async def _send_subscribe(self, channel: str, watched: _Watched) -> None:
        async with self._commands:
            if self._pubsub is None:
                self._pubsub = self.redis.pubsub()
            self._sent[channel] += 1
            watched.target = self._sent[channel]
            await self._pubsub.subscribe(self._pubsub_name(channel))
            if self._listener is None or self._listener.done():
                self._listener = asyncio.create_task(self._listen(), name="realtime-redis")

    async def unsubscribe(self, subscription: Subscription) -> None:
        subscription.end("unsubscribed")
        channel = subscription.channel
        watched = self._watched.get(channel)
        if watched is None:
            return
        watched.subscriptions.discard(subscription)
        if watched.subscriptions:
            return
        del self._watched[channel]
        async with self._commands:
            if self._pubsub is None or channel in self._watched:
                return  # a new socket watches it again: keep the Redis subscription
            try:
                await self._pubsub.unsubscribe(self._pubsub_name(channel))
            except (RedisError, OSError):
                _log.warning("realtime_unsubscribe_failed", channel=channel)

    # -- the pub/sub connection -----------------------------------------------------------------

    async def _listen(self) -> None:
        assert self._pubsub is not None
        failures = 0
        while True:
            try:
                item = await self._pubsub.get_message(timeout=None)
            except Exception as exc:  # Redis away (or a bug): keep listening, reconnecting
                failures += 1
                if failures == 1:
                    _log.warning("realtime_redis_disconnected", error=repr(exc))
                await asyncio.sleep(min(5.0, 0.2 * 2**failures))
                continue
            if failures:
                _log.info("realtime_redis_reconnected")
                failures = 0
            if item is None:
                continue
            kind = item["type"]
            if kind == "message":
                self._receive(self._channel_of(item["channel"]), item["data"])
            elif kind == "subscribe":
                self._on_confirmed(self._channel_of(item["channel"]))

    def _on_confirmed(self, channel: str) -> None:
        # A confirmation beyond those we asked for is redis-py subscribing again after a
        # reconnect: messages may have been missed meanwhile.
        resubscribed = self._confirmed[channel] >= self._sent[channel]
        self._confirmed[channel] = min(self._confirmed[channel] + 1, self._sent[channel])
        watched = self._watched.get(channel)
        if watched is None:
            return
        if not watched.ready.is_set():
            if self._confirmed[channel] >= watched.target:
                watched.ready.set()
            return
        if resubscribed and watched.held is None:
            task = asyncio.create_task(self._catch_up(channel, watched))
            self._catching_up.add(task)
            task.add_done_callback(self._catching_up.discard)

    def _receive(self, channel: str, raw: bytes) -> None:
        watched = self._watched.get(channel)
        if watched is None or not watched.ready.is_set():
            # Before our SUBSCRIBE is confirmed, a message on this connection was published
            # for an earlier watch of the channel (one connection keeps Redis's order): not
            # these sockets' news (what they missed comes from the replay).
            return
        try:
            message = RealtimeMessage.decode(raw)
        except (ValueError, KeyError):
            _log.warning("realtime_message_unreadable", channel=channel)
            return
        if watched.held is not None:
            watched.held.append(message)
        else:
            self._deliver(watched, message)

    @staticmethod
    def _deliver(watched: _Watched, message: RealtimeMessage) -> None:
        if message.sequence is not None:
            if watched.last_sequence is not None and message.sequence <= watched.last_sequence:
                return  # already delivered (a catch-up overlapping live messages)
            watched.last_sequence = message.sequence
        for subscription in list(watched.subscriptions):
            subscription.offer(message)

    async def _catch_up(self, channel: str, watched: _Watched) -> None:
        """After a reconnect: deliver what the replay log holds beyond the last message seen,
        then the live messages that arrived meanwhile; or tell the sockets to reload."""
        watched.held = []
        try:
            since = watched.last_sequence
            if since is None:
                since = watched.baseline
            replay = await self.replay(channel, since)
            if since is not None and not replay.complete:
                notice = RealtimeMessage.build(
                    MessageType.RELOAD,
                    channel,
                    {
                        "reason": "messages were missed while Redis was unreachable",
                        "sequence": replay.latest,
                    },
                )
                for subscription in list(watched.subscriptions):
                    subscription.offer(notice)
                watched.last_sequence = replay.latest
            for message in replay.messages:
                self._deliver(watched, message)
        except RealtimeUnavailable:
            _log.warning("realtime_catch_up_failed", channel=channel)
        finally:
            held, watched.held = watched.held or [], None
            for message in held:
                self._deliver(watched, message)

    async def close(self) -> None:
        for watched in self._watched.values():
            for subscription in list(watched.subscriptions):
                subscription.end("server shutting down")
        self._watched.clear()
        for task in [self._listener, *self._catching_up]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
                    await task
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()
            self._pubsub = None
