"""Both hubs, the in-process one and the one through Redis (database 12), held to the same
contract: per-channel sequences, replay bounded by count and age, filters, bounded queues."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from redis.asyncio import Redis

from creativeflow.realtime.hub import (
    LocalHub,
    RealtimeHub,
    RealtimeUnavailable,
    Subscription,
    SubscriptionEnded,
    sequence_base,
)
from creativeflow.realtime.models import RealtimeMessage
from creativeflow.realtime.publishing import publish_safely
from creativeflow.realtime.redis_hub import RedisHub
from tests.jobs.live import free_port

HubFactory = Callable[..., RealtimeHub]
DEFAULTS: dict[str, Any] = {"replay_events": 100, "replay_seconds": 60.0, "queue_size": 50}


@asynccontextmanager
async def _hubs(redis_url: str | None) -> AsyncIterator[HubFactory]:
    """Makes hubs: in process, or through Redis, each with its own client (as separate
    processes would) and all sharing a key prefix of this test's own."""
    hubs: list[RealtimeHub] = []
    clients: list[Redis] = []
    prefix = f"test:{uuid.uuid4().hex[:8]}:"

    def make(*, client_name: str | None = None, **options: Any) -> RealtimeHub:
        settings = {**DEFAULTS, **options}
        hub: RealtimeHub
        if redis_url is None:
            hub = LocalHub(**settings)
        else:
            client = Redis.from_url(
                redis_url, socket_timeout=2.0, socket_connect_timeout=2.0, client_name=client_name
            )
            clients.append(client)
            hub = RedisHub(client, key_prefix=prefix, **settings)
        hubs.append(hub)
        return hub

    try:
        yield make
    finally:
        for hub in hubs:
            await hub.close()
        for client in clients:
            await client.aclose()


@pytest.fixture(params=["local", "redis"])
async def make_hub(request: pytest.FixtureRequest) -> AsyncIterator[HubFactory]:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    async with _hubs(redis_url) as make:
        yield make


@pytest.fixture
async def redis_hubs(redis_url: str) -> AsyncIterator[HubFactory]:
    """Hubs of different processes: through Redis only."""
    async with _hubs(redis_url) as make:
        yield make


async def _take(subscription: Subscription, count: int) -> list[RealtimeMessage]:
    async with asyncio.timeout(10):
        return [await subscription.get() for _ in range(count)]


async def _base(hub: RealtimeHub, channel: str) -> int:
    """The channel's latest sequence now: what the next messages count from."""
    return (await hub.replay(channel, None)).latest


def _after(base: int, messages: list[RealtimeMessage]) -> list[int]:
    """The messages' sequences, counted from `base`."""
    return [(message.sequence or 0) - base for message in messages]


async def test_sequences_grow_by_one_per_channel(make_hub: HubFactory) -> None:
    hub = make_hub()
    base_a, base_b = await _base(hub, "user:a"), await _base(hub, "user:b")
    first = [await hub.publish("user:a", "generation_progress", {"n": n}) for n in range(3)]
    other = await hub.publish("user:b", "generation_progress", {"n": 0})
    assert _after(base_a, first) == [1, 2, 3]
    assert _after(base_b, [other]) == [1]
    assert (await hub.replay("user:a", None)).latest == base_a + 3
    # A channel numbers from a time-based base: a number from an earlier life (before a
    # restart, or before Redis forgot the channel) is always smaller.
    assert sequence_base() - 60_000_000 < base_a <= sequence_base()


async def test_a_message_carries_the_whole_envelope(make_hub: HubFactory) -> None:
    hub = make_hub()
    job_id, resource_id = uuid.uuid4(), uuid.uuid4()
    subscription = await hub.subscribe("subject:x")
    published = await hub.publish(
        "subject:x",
        "content_update",
        {"at": uuid.UUID(int=7)},
        job_id=job_id,
        resource_id=resource_id,
    )
    (received,) = await _take(subscription, 1)
    assert received.to_dict() == published.to_dict()
    assert received.to_dict() == {
        "type": "content_update",
        "channel": "subject:x",
        "sequence": await _base(hub, "subject:x"),
        "timestamp": published.timestamp,
        "job_id": str(job_id),
        "resource_id": str(resource_id),
        "data": {"at": str(uuid.UUID(int=7))},
    }
    assert published.timestamp.endswith("Z")
    assert RealtimeMessage.decode(received.text) == received


async def test_a_subscription_gets_its_channel_only_in_order(make_hub: HubFactory) -> None:
    hub = make_hub()
    subscription = await hub.subscribe("user:a")
    for n in range(5):
        await hub.publish("user:a", "generation_progress", {"n": n})
        await hub.publish("user:b", "generation_progress", {"n": n})
    received = await _take(subscription, 5)
    assert [message.data["n"] for message in received] == [0, 1, 2, 3, 4]
    assert {message.channel for message in received} == {"user:a"}
    assert subscription.pending == 0


async def test_replay_returns_what_was_missed_in_order(make_hub: HubFactory) -> None:
    hub = make_hub()
    base = await _base(hub, "user:a")
    for n in range(6):
        await hub.publish("user:a", "generation_progress", {"n": n})
    replay = await hub.replay("user:a", base + 2)
    assert replay.complete
    assert replay.latest == base + 6
    assert _after(base, replay.messages) == [3, 4, 5, 6]
    assert (await hub.replay("user:a", base + 6)).messages == []  # nothing missed
    assert (await hub.replay("user:a", base + 6)).complete
    assert _after(base, (await hub.replay("user:a", base)).messages) == [1, 2, 3, 4, 5, 6]


async def test_replay_beyond_the_kept_count_is_incomplete(make_hub: HubFactory) -> None:
    hub = make_hub(replay_events=3)
    base = await _base(hub, "user:a")
    for n in range(6):
        await hub.publish("user:a", "generation_progress", {"n": n})
    assert _after(base, (await hub.replay("user:a", base + 3)).messages) == [4, 5, 6]
    too_far = await hub.replay("user:a", base + 2)
    assert not too_far.complete
    assert too_far.messages == []
    assert too_far.latest == base + 6


async def test_replay_of_messages_older_than_the_age_bound_is_incomplete(
    make_hub: HubFactory,
) -> None:
    hub = make_hub(replay_seconds=0.3)
    base = await _base(hub, "user:a")
    await hub.publish("user:a", "generation_progress", {"n": 0})
    await asyncio.sleep(0.5)
    await hub.publish("user:a", "generation_progress", {"n": 1})
    assert not (await hub.replay("user:a", base)).complete
    fresh = await hub.replay("user:a", base + 1)
    assert fresh.complete
    assert _after(base, fresh.messages) == [2]
    await asyncio.sleep(0.5)  # nobody publishes: the kept messages still age out
    assert not (await hub.replay("user:a", base + 1)).complete


async def test_without_replay_any_missed_message_means_reload(make_hub: HubFactory) -> None:
    hub = make_hub(replay_events=0)
    base = await _base(hub, "user:a")
    await hub.publish("user:a", "generation_progress", {})
    assert not (await hub.replay("user:a", base)).complete
    assert (await hub.replay("user:a", base + 1)).complete


async def test_a_since_the_channel_never_gave_out_is_incomplete(make_hub: HubFactory) -> None:
    hub = make_hub()
    base = await _base(hub, "user:a")
    await hub.publish("user:a", "generation_progress", {})
    for since in (base + 40, 5):  # ahead of it; from an earlier life of the channel
        replay = await hub.replay("user:a", since)
        assert not replay.complete
        assert replay.latest == base + 1


async def test_a_channel_that_starts_over_numbers_beyond_its_past(make_hub: HubFactory) -> None:
    """A restarted process (in process), or a channel Redis forgot: a client's old `since` is
    told to reload, never mistaken for one of the new numbers."""
    before = make_hub()
    past = await before.publish("user:a", "generation_progress", {})
    assert past.sequence is not None
    if isinstance(before, RedisHub):
        after: RealtimeHub = before
        await before.redis.delete(*await before.redis.keys(f"{before.key_prefix}*"))
    else:
        after = make_hub()
    replay = await after.replay("user:a", past.sequence)
    assert not replay.complete
    assert replay.latest > past.sequence
    fresh = await after.publish("user:a", "generation_progress", {})
    assert fresh.sequence == replay.latest + 1


async def test_resource_filters_narrow_a_subscription(make_hub: HubFactory) -> None:
    hub = make_hub()
    watched, other = str(uuid.uuid4()), str(uuid.uuid4())
    narrow = await hub.subscribe("subject:s", resource_ids=[watched])
    everything = await hub.subscribe("subject:s")
    base = await _base(hub, "subject:s")
    await hub.publish("subject:s", "generation_progress", {}, job_id=other)
    await hub.publish("subject:s", "generation_progress", {}, job_id=watched)
    await hub.publish("subject:s", "content_update", {}, resource_id=watched)
    await hub.publish("subject:s", "content_update", {}, resource_id=other)
    assert _after(base, await _take(narrow, 2)) == [2, 3]
    assert _after(base, await _take(everything, 4)) == [1, 2, 3, 4]
    narrow.resource_ids.discard(watched)  # no filter left: everything again
    await hub.publish("subject:s", "content_update", {}, resource_id=other)
    assert _after(base, await _take(narrow, 1)) == [5]


async def test_a_slow_subscriber_overflows_alone(make_hub: HubFactory) -> None:
    hub = make_hub(queue_size=3)
    slow = await hub.subscribe("user:a")
    reader = await hub.subscribe("user:a")
    received = []
    for n in range(6):
        await hub.publish("user:a", "generation_progress", {"n": n})
        received.extend(await _take(reader, 1))  # this one keeps up
    async with asyncio.timeout(10):
        await slow.ended.wait()
    assert slow.overflowed
    assert "more than 3 messages" in slow.end_reason
    with pytest.raises(SubscriptionEnded) as ended:
        await slow.get()
    assert ended.value.overflowed
    assert [message.data["n"] for message in received] == [0, 1, 2, 3, 4, 5]
    assert not reader.ended.is_set()


async def test_unsubscribed_sockets_receive_nothing_more(make_hub: HubFactory) -> None:
    hub = make_hub()
    subscription = await hub.subscribe("user:a")
    base = await _base(hub, "user:a")
    await hub.unsubscribe(subscription)
    await hub.publish("user:a", "generation_progress", {})
    assert subscription.pending == 0
    assert subscription.ended.is_set()
    again = await hub.subscribe("user:a")  # the channel can be watched again
    await hub.publish("user:a", "generation_progress", {})
    assert _after(base, await _take(again, 1)) == [2]


async def test_closing_the_hub_ends_every_subscription(make_hub: HubFactory) -> None:
    hub = make_hub()
    subscriptions = [await hub.subscribe(f"user:{n}") for n in range(3)]
    await hub.close()
    for subscription in subscriptions:
        assert subscription.ended.is_set()
        assert not subscription.overflowed
        assert subscription.end_reason == "server shutting down"


# -- across processes (Redis) -----------------------------------------------------------------


async def test_hubs_in_different_processes_share_one_numbering(redis_hubs: HubFactory) -> None:
    api, worker, other_api = (redis_hubs(queue_size=200) for _ in range(3))
    watching = [await api.subscribe("subject:p"), await other_api.subscribe("subject:p")]
    base = await _base(worker, "subject:p")

    async def publish_many(hub: RealtimeHub, label: str) -> list[int]:
        published = []
        for n in range(40):
            message = await hub.publish("subject:p", "generation_progress", {label: n})
            assert message.sequence is not None
            published.append(message.sequence)
        return published

    by_worker, by_api = await asyncio.gather(
        publish_many(worker, "worker"), publish_many(api, "api")
    )
    # Atomic: no number given out twice, none skipped.
    assert sorted(sequence - base for sequence in by_worker + by_api) == list(range(1, 81))
    for subscription in watching:
        received = await _take(subscription, 80)
        assert _after(base, received) == list(range(1, 81))
    replay = await other_api.replay("subject:p", base + 70)  # the replay log is shared too
    assert _after(base, replay.messages) == list(range(71, 81))


async def test_a_new_subscription_is_live_when_subscribe_returns(redis_hubs: HubFactory) -> None:
    api, worker = redis_hubs(), redis_hubs()
    for n in range(20):
        channel = f"user:{n}"
        subscription = await api.subscribe(channel)
        published = await worker.publish(channel, "generation_progress", {})
        assert await _take(subscription, 1) == [published]


async def test_a_lost_pubsub_connection_catches_up_from_the_replay_log(
    redis_hubs: HubFactory, redis_url: str
) -> None:
    name = f"realtime-test-{uuid.uuid4().hex[:8]}"
    api, worker = redis_hubs(client_name=name), redis_hubs()
    subscription = await api.subscribe("user:a")
    base = await _base(worker, "user:a")
    await worker.publish("user:a", "generation_progress", {"n": 0})
    assert _after(base, await _take(subscription, 1)) == [1]
    # Cut the api hub's pub/sub connection, as a Redis restart or a network blip would.
    admin = Redis.from_url(redis_url)
    try:
        listening = [
            client for client in await admin.client_list(_type="pubsub") if client["name"] == name
        ]
        assert len(listening) == 1  # one pub/sub connection per hub
        await admin.client_kill_filter(_id=listening[0]["id"])
        for n in range(1, 4):  # published while it is away
            await worker.publish("user:a", "generation_progress", {"n": n})
        received = await _take(subscription, 3)
        await worker.publish("user:a", "generation_progress", {"n": 4})
        received += await _take(subscription, 1)
    finally:
        await admin.aclose()
    assert _after(base, received) == [2, 3, 4, 5]  # no gap, no duplicate
    assert [message.data["n"] for message in received] == [1, 2, 3, 4]


async def test_publishing_fails_fast_and_quietly_while_redis_is_unreachable() -> None:
    down = Redis.from_url(
        f"redis://127.0.0.1:{free_port()}/12", socket_timeout=1.0, socket_connect_timeout=1.0
    )
    hub = RedisHub(down, **DEFAULTS)
    try:
        with pytest.raises(RealtimeUnavailable) as first:
            await hub.publish("user:a", "generation_progress", {})
        assert not first.value.repeated
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(RealtimeUnavailable) as second:
            await hub.publish("user:a", "generation_progress", {})
        assert second.value.repeated
        assert loop.time() - started < 0.1  # no second wait on a dead server
        # What jobs and studios call never raises.
        assert await publish_safely(hub, "user:a", "generation_progress", {}) is None
        with pytest.raises(RealtimeUnavailable):
            await hub.subscribe("user:a")
    finally:
        await hub.close()
        await down.aclose()
