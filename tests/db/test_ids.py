"""Identifiers are time-ordered UUID v7 (RFC 9562)."""

from __future__ import annotations

import time
import uuid

import pytest

from creativeflow.db import ids
from creativeflow.db.ids import uuid7


@pytest.fixture(autouse=True)
def _restore_generator_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests below move the clock; put the generator's memory of it back afterwards, so ids
    minted by later tests carry the real time."""
    monkeypatch.setattr(ids, "_last_ms", ids._last_ms)
    monkeypatch.setattr(ids, "_counter", ids._counter)


def _unix_ms(value: uuid.UUID) -> int:
    return value.int >> 80


def test_uuid7_has_version_7_and_the_rfc_variant() -> None:
    value = uuid7()
    assert isinstance(value, uuid.UUID)
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert uuid.UUID(str(value)) == value


def test_uuid7_carries_the_current_unix_time_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    # The counter may borrow the next millisecond when exhausted; allow for that.
    assert before <= _unix_ms(value) <= after + 1


def test_uuid7_is_strictly_increasing_within_a_millisecond(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frozen = time.time_ns() + 10_000_000_000  # later than anything minted so far
    monkeypatch.setattr(ids.time, "time_ns", lambda: frozen)
    values = [uuid7() for _ in range(1000)]
    assert all(_unix_ms(v) == frozen // 1_000_000 for v in values)
    assert values == sorted(values)
    assert len(set(values)) == len(values)
    assert all(v.version == 7 for v in values)


def test_uuid7_stays_increasing_when_the_counter_runs_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frozen = time.time_ns() + 20_000_000_000
    monkeypatch.setattr(ids.time, "time_ns", lambda: frozen)
    values = [uuid7() for _ in range(10_000)]  # more than the 12-bit counter holds
    assert values == sorted(values)
    assert len(set(values)) == len(values)
    assert all(v.version == 7 and v.variant == uuid.RFC_4122 for v in values)


def test_uuid7_stays_increasing_when_the_clock_steps_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [time.time_ns() + 30_000_000_000]
    monkeypatch.setattr(ids.time, "time_ns", lambda: now[0])
    first = uuid7()
    now[0] -= 5_000_000_000  # NTP correction: five seconds back
    second = uuid7()
    assert second > first


def test_uuid7_sorts_by_creation_across_milliseconds() -> None:
    values = []
    for _ in range(5):
        values.append(uuid7())
        time.sleep(0.002)
    assert values == sorted(values)
    assert len({_unix_ms(v) for v in values}) == 5
    assert len({v.int & ((1 << 62) - 1) for v in values}) == 5  # random tails differ
