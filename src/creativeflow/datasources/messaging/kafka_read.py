"""Reading the newest messages of a Kafka topic without changing anything: a consumer that
joins no group, commits nothing and only seeks and fetches."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from typing import Any

from creativeflow.datasources.messaging.common import (
    MARGIN_SECONDS,
    Budget,
    payload_text,
    payload_value,
)

PREVIEW_COLUMNS = ("partition", "offset", "timestamp", "key", "value")


async def newest_messages(
    options: dict[str, Any],
    topic: str,
    partitions: list[int],
    limit: int,
    budget: Budget,
) -> tuple[list[dict[str, Any]], int]:
    """The newest `limit` messages of `topic` over all its partitions (oldest first) and how
    many the topic holds: each partition read from max(end - limit, beginning) to the end it
    had when the read began, by a consumer that joins no group and commits nothing."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        group_id=None, enable_auto_commit=False, auto_offset_reset="earliest", **options
    )
    records: list[Any] = []
    try:
        # The read loop stops at the budget; this limit is the call's own end.
        async with asyncio.timeout(budget.left() + MARGIN_SECONDS):
            await consumer.start()
            assigned = [TopicPartition(topic, partition) for partition in partitions]
            consumer.assign(assigned)
            beginnings = await consumer.beginning_offsets(assigned)
            ends = await consumer.end_offsets(assigned)
            pending = set()
            for part in assigned:
                start = max(ends[part] - limit, beginnings[part])
                if start < ends[part]:
                    consumer.seek(part, start)
                    pending.add(part)
            while pending and budget.left() > 0:
                batches = await consumer.getmany(
                    *pending, timeout_ms=int(budget.left(1.0) * 1000), max_records=limit
                )
                for part, messages in batches.items():
                    records.extend(m for m in messages if m.offset < ends[part])
                for part in list(pending):
                    if await consumer.position(part) >= ends[part]:
                        pending.discard(part)
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await consumer.stop()
    available = sum(ends[part] - beginnings[part] for part in assigned)
    records.sort(key=lambda m: (m.timestamp, m.partition, m.offset))
    return [_row(record) for record in records[-limit:]], available


def _row(record: Any) -> dict[str, Any]:
    timestamp = (
        dt.datetime.fromtimestamp(record.timestamp / 1000, tz=dt.UTC)
        if record.timestamp is not None and record.timestamp >= 0
        else None
    )
    return {
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": timestamp,
        "key": payload_text(record.key),
        "value": payload_value(record.value),
    }
