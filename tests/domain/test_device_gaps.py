"""A pause in device data is a gap on the record's own curve (issue 13, window part 1).

Values the protocol confirms as they arrive (the 1 Hz SpO₂/HR trend) are vitals rows drawn by the
record's curve; across a pause of the feed that curve must break, as the pending curve does, but
never between hand-entered readings (15 minutes apart is normal) nor between a hand reading and a
device one. The rule is decided point by point (:class:`DeviceGaps`) and lives in the chart
picture, so the live chart, the review chart and the PDF (tests/reports/test_device_gap_pdf.py)
show the same gaps."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from kapmonitor.domain.chart_picture import DeviceGaps, build_picture, chart_delta
from kapmonitor.domain.clock import to_iso
from kapmonitor.domain.reference import default_reference
from kapmonitor.domain.session_rows import StoredRow, typed_row

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def vitals(row_id: int, seconds: float, *, device: bool, spo2: int = 97) -> StoredRow:
    """A vitals row ``seconds`` after AT, from a device reading or typed."""
    return typed_row(
        "vitals",
        {
            "id": row_id,
            "session_id": "s",
            "observed_at": to_iso(AT + timedelta(seconds=seconds)),
            "recorded_at": to_iso(AT),
            "recorded_by": "Dr A",
            "spo2": spo2,
            "device_reading_id": row_id if device else None,
            "source": "mllp" if device else None,
        },
    )


def test_a_vitals_row_from_a_device_is_marked_device_in_its_delta() -> None:
    ref = default_reference()
    assert chart_delta("vitals", vitals(1, 0, device=True), ref).device
    assert not chart_delta("vitals", vitals(2, 0, device=False), ref).device


def test_device_points_break_after_a_pause_hand_points_never() -> None:
    gaps = DeviceGaps()
    feed = [0, 1, 2, 3, 4, 5, 6, 7]
    assert not any(gaps.breaks("spo2", float(t), True) for t in feed)  # 1 Hz: joined
    assert not gaps.breaks("spo2", 9.0, True)  # 2 s: jitter, not a gap (limit 3 s)
    assert gaps.breaks("spo2", 40.0, True)  # 31 s without data: a gap
    assert not gaps.breaks("spo2", 41.0, True)  # the feed is back: joined again
    # Another series has its own history: HR's first interval is not judged by SpO₂'s.
    assert not gaps.breaks("hr", 0.0, True) and not gaps.breaks("hr", 60.0, True)

    hand = DeviceGaps()
    assert not any(hand.breaks("sbp", m * 60.0, False) for m in (0, 15, 30, 90))  # typed: joined


def test_a_hand_reading_between_device_points_is_joined_both_ways() -> None:
    gaps = DeviceGaps()
    for t in range(10):
        assert not gaps.breaks("spo2", float(t), True)
    assert not gaps.breaks("spo2", 300.0, False)  # typed after a pause: joined to the device
    assert not gaps.breaks("spo2", 900.0, True)  # device after a typed one: joined
    assert not gaps.breaks("spo2", 901.0, True)


def test_a_back_dated_point_neither_breaks_nor_moves_the_rule() -> None:
    gaps = DeviceGaps()
    for t in range(10):
        gaps.breaks("spo2", float(t), True)
    assert not gaps.breaks("spo2", 2.5, True)  # late arrival: inserted in place, not judged
    assert gaps.breaks("spo2", 30.0, True)  # still judged from the newest point (9 s)


def test_the_picture_breaks_the_record_curve_where_the_device_feed_paused() -> None:
    """Ten 1 Hz device rows, a 5-minute pause, ten more; then typed rows 15 minutes apart."""
    ref = default_reference()
    rows = [vitals(i, i, device=True) for i in range(10)]
    rows += [vitals(100 + i, 310 + i, device=True) for i in range(10)]
    rows += [vitals(200 + i, 900 + 900 * i, device=False) for i in range(3)]
    picture = build_picture(
        {"vitals": rows}, start=AT, first_dose=None, end=None, protocol=None, ref=ref
    )
    series = picture.series["spo2"]
    nan_at = [i for i, y in enumerate(series.y) if math.isnan(y)]
    assert nan_at == [10]  # one break, between 9 s and 310 s, none among the typed rows
    assert series.t[10] == series.t[9]  # at the previous point's time: time order is kept
    assert len(series.y) == len(rows) + 1
    assert all(math.isfinite(y) for i, y in enumerate(series.y) if i != 10)


def test_the_same_rows_typed_by_hand_give_an_unbroken_curve() -> None:
    ref = default_reference()
    rows = [vitals(i, t, device=False) for i, t in enumerate([0, 1, 2, 3, 300, 301])]
    picture = build_picture(
        {"vitals": rows}, start=AT, first_dose=None, end=None, protocol=None, ref=ref
    )
    assert all(math.isfinite(y) for y in picture.series["spo2"].y)
