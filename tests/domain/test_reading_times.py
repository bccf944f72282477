"""The schedule's compact reading times: the same answers as a list of datetimes, 8 bytes a time.

The model keeps a 1 Hz record's times in a :class:`ReadingTimes` and hands the schedule a snapshot
after every save; these tests prove the snapshot is a faithful, immutable stand-in for the sorted
list the schedule used to be given.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kapmonitor.domain.protocol import load_protocols
from kapmonitor.domain.reading_times import ReadingTimes
from kapmonitor.domain.schedule import compute_schedule
from kapmonitor.paths import resources_dir

START = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
PROTOCOLS = load_protocols([resources_dir() / "protocols"]).protocols

offsets_ms = st.lists(st.integers(min_value=0, max_value=4 * 3600 * 1000), max_size=60)


def times_of(offsets: list[int]) -> list[datetime]:
    return sorted(START + timedelta(milliseconds=ms) for ms in offsets)


@given(offsets_ms)
def test_reading_times_hold_exactly_the_times_given(offsets: list[int]) -> None:
    times = times_of(offsets)
    kept = ReadingTimes(times)
    assert list(kept) == times
    assert len(kept) == len(times)
    assert kept == times
    if times:
        assert kept[-1] == times[-1] and kept[0] == times[0]
        assert all(t.tzinfo is UTC for t in kept)


@given(offsets_ms, st.integers(0, 70), st.integers(-5, 70))
def test_a_slice_is_the_list_slice(offsets: list[int], start: int, stop: int) -> None:
    times = times_of(offsets)
    assert list(ReadingTimes(times)[start:stop]) == times[start:stop]
    assert list(ReadingTimes(times)[::2]) == times[::2]


@given(offsets_ms, st.integers(0, 4 * 3600 * 1000), st.sampled_from(sorted(PROTOCOLS)))
@settings(max_examples=300)
def test_the_schedule_answers_alike_from_reading_times_and_from_a_list(
    offsets: list[int], now_ms: int, name: str
) -> None:
    """Every phase, with and without a dose: bisection over the compact times finds the same
    baseline, checkpoints, cadence and discharge check as over the list."""
    times = times_of(offsets)
    now = START + timedelta(milliseconds=now_ms)
    protocol = PROTOCOLS[name]
    for first_dose in (None, START + timedelta(minutes=10)):
        for phase in ("pre_dose", "monitoring", "recovery", "ended"):
            args = (protocol, START, first_dose)
            from_list = compute_schedule(*args, times, now, phase)
            from_compact = compute_schedule(*args, ReadingTimes(times), now, phase)
            assert from_compact == from_list


def test_a_snapshot_does_not_see_later_readings_and_cannot_be_written() -> None:
    live = ReadingTimes([START])
    seen = live.snapshot()
    live.append(START + timedelta(seconds=1))
    assert len(seen) == 1 and list(seen) == [START]
    assert len(live) == 2
    with pytest.raises(TypeError):
        seen.append(START + timedelta(seconds=2))


def test_times_out_of_order_or_without_a_zone_are_refused() -> None:
    live = ReadingTimes([START + timedelta(minutes=1)])
    assert not live.can_append(START)
    with pytest.raises(ValueError, match="time order"):
        live.append(START)
    with pytest.raises(ValueError, match="timezone"):
        live.append(datetime(2026, 1, 15, 9, 5))
    with pytest.raises(IndexError):
        live[5]


def test_a_three_hour_record_costs_eight_bytes_a_reading() -> None:
    """Why it exists: 10,800 datetimes in a list take about 600 KB; the array about 86 KB."""
    times = [START + timedelta(seconds=s) for s in range(10_800)]
    compact = ReadingTimes(times)
    as_list = sys.getsizeof(times) + sum(sys.getsizeof(t) for t in times)
    assert sys.getsizeof(compact._values) < 10_800 * 10 < as_list / 5
