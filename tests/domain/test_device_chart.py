"""Device readings on the chart, without Qt (issue 13): the pending look declared once in the
style (lighter, same colour family, hollow, night too), the gap rule, and what a device write's
change adds to the live chart (pending points, decisions; nothing for values the protocol
confirmed as they arrived, for probe-off readings or uncharted vitals)."""

from __future__ import annotations

import colorsys
import json
from datetime import UTC, datetime, timedelta

import pytest

from kapmonitor.domain.changes import Changes
from kapmonitor.domain.chart_picture import (
    DevicePoint,
    device_delta,
    device_points_delta,
)
from kapmonitor.domain.chart_style import (
    ARTEFACT,
    DAY,
    GAP_MIN_S,
    NIGHT,
    PENDING,
    SERIES_STYLES,
    blend,
    gap_limit,
    pending_color,
)
from kapmonitor.domain.clock import to_iso
from kapmonitor.domain.session_rows import StoredRow, typed_row
from kapmonitor.domain.vitals import charted_vitals

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _hls(color: str) -> tuple[float, float, float]:
    r, g, b = (int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return colorsys.rgb_to_hls(r, g, b)


def _luminance(color: str) -> float:
    return _hls(color)[1]


@pytest.mark.parametrize("night", [False, True])
def test_every_charted_vital_has_a_pending_look_nearer_the_background_in_its_hue(
    night: bool,
) -> None:
    background = (NIGHT if night else DAY).background
    for vital in charted_vitals():
        confirmed = SERIES_STYLES[vital.key].color(night)
        pending = pending_color(vital.key, night)
        assert pending != confirmed
        # Nearer the background than the confirmed colour is (lighter by day, dimmer at night).
        gap_confirmed = abs(_luminance(confirmed) - _luminance(background))
        gap_pending = abs(_luminance(pending) - _luminance(background))
        assert gap_pending < gap_confirmed, vital.key
        # Same colour family: the hue moves by at most a few degrees.
        hue_a, hue_b = _hls(confirmed)[0], _hls(pending)[0]
        turn = min(abs(hue_a - hue_b), 1 - abs(hue_a - hue_b))
        assert turn * 360 < 20, (vital.key, confirmed, pending)
        assert pending.upper() != "#FFFFFF"


def test_pending_is_told_apart_without_colour_and_artefacts_are_grey_crosses() -> None:
    assert PENDING.hollow and PENDING.dash != "solid"
    assert ARTEFACT.symbol == "x"
    for night in (False, True):
        r, g, b = (int(ARTEFACT.color(night)[i : i + 2], 16) for i in (1, 3, 5))
        assert max(r, g, b) - min(r, g, b) < 24  # grey, not a series colour
    assert ARTEFACT.day != ARTEFACT.night


def test_blend_moves_a_colour_toward_another() -> None:
    assert blend("#000000", "#FFFFFF", 0.5) == "#808080"
    assert blend("#1D4ED8", "#1D4ED8", 0.7) == "#1D4ED8"
    assert blend("#102030", "#FFFFFF", 0.0) == "#102030"


def test_gap_limit_is_three_usual_intervals_and_never_under_the_floor() -> None:
    assert gap_limit([]) == float("inf")  # one reading: nothing to call a gap
    assert gap_limit([1.0] * 50) == 3.0  # 1 Hz
    assert gap_limit([300.0] * 4) == 900.0  # NIBP every five minutes
    assert gap_limit([0.2] * 10) == GAP_MIN_S  # a fast feed jittering is not a gap
    # The usual interval is the median: one long pause does not raise the limit.
    assert gap_limit([1.0] * 20 + [600.0]) == 3.0
    # Only the recent intervals count: a feed that slowed down is judged at its new pace.
    assert gap_limit([1.0] * 100 + [5.0] * 30) == 15.0


def reading(
    reading_id: int, vital: str, value: float | None, *, minutes: float = 0, flags: str = "[]"
) -> StoredRow:
    return typed_row(
        "device_readings",
        {
            "id": reading_id,
            "session_id": "s",
            "observed_at": to_iso(AT + timedelta(minutes=minutes)),
            "recorded_at": to_iso(AT),
            "recorded_by": "device:MON",
            "device_time": 1,
            "received_at": to_iso(AT),
            "vital": vital,
            "value": value,
            "unit_received": "%",
            "code": "",
            "device_id": "MON",
            "source": "mllp",
            "message_id": "M1",
            "flags": flags,
        },
    )


def review(review_id: int, reading_id: int, decision: str) -> StoredRow:
    return typed_row(
        "device_reading_reviews",
        {
            "id": review_id,
            "session_id": "s",
            "observed_at": to_iso(AT),
            "recorded_at": to_iso(AT),
            "recorded_by": "Dr A",
            "device_reading_id": reading_id,
            "decision": decision,
            "reason": "motion" if decision == "artefact" else None,
            "automatic": 0,
            "vitals_id": 9 if decision == "confirmed" else None,
        },
    )


def test_a_device_write_adds_its_pending_readings_with_their_ids() -> None:
    changes = Changes(
        "s",
        "device_readings",
        (
            ("device_readings", reading(1, "spo2", 96)),
            ("device_readings", reading(2, "hr", 72)),
            ("device_readings", reading(3, "temp", 36.8)),  # not charted
            ("device_readings", reading(4, "spo2", None, flags=json.dumps(["probe_off"]))),
        ),
    )
    delta = device_delta(changes)
    t = AT.timestamp()
    assert delta.pending == (DevicePoint("spo2", t, 96.0, 1), DevicePoint("hr", t, 72.0, 2))
    assert delta.points == () and delta.decided == ()
    assert delta


def test_a_reading_confirmed_as_it_arrived_is_not_pending_and_decisions_are_named() -> None:
    changes = Changes(
        "s",
        "device_readings",
        (
            ("device_readings", reading(1, "spo2", 96)),
            ("device_readings", reading(2, "sbp", 131)),
            ("device_reading_reviews", review(10, 1, "confirmed")),
        ),
    )
    delta = device_delta(changes)
    assert [p.reading_id for p in delta.pending] == [2]
    assert delta.decided == ((1, "confirmed"),)
    artefact = Changes("s", "x", (("device_reading_reviews", review(11, 2, "artefact")),))
    assert device_delta(artefact).decided == ((2, "artefact"),)


def test_a_reopened_session_draws_pending_and_artefacts_but_not_confirmed() -> None:
    at = to_iso(AT)
    delta = device_points_delta(
        [
            (1, "spo2", at, 96.0, None, "[]"),
            (2, "spo2", at, 61.0, "artefact", "[]"),
            (3, "spo2", at, 97.0, "confirmed", "[]"),  # charted as its vitals row
            (4, "temp", at, 37.0, None, "[]"),
            (5, "hr", at, None, None, '["probe_off"]'),
            (6, "hr", at, 31.0, None, '["artefact"]'),  # the device doubted it
        ]
    )
    t = AT.timestamp()
    assert delta.pending == (DevicePoint("spo2", t, 96.0, 1),)
    assert delta.artefacts == (DevicePoint("spo2", t, 61.0, 2),)
    assert delta.flagged == (DevicePoint("hr", t, 31.0, 6),)


def test_a_reading_the_device_flagged_is_drawn_apart_not_as_pending() -> None:
    changes = Changes(
        "s",
        "device_readings",
        (
            ("device_readings", reading(1, "spo2", 62, flags=json.dumps(["artefact"]))),
            ("device_readings", reading(2, "hr", 71, flags=json.dumps(["corrected"]))),
            ("device_readings", reading(3, "rr", 14, flags=json.dumps(["preliminary"]))),
        ),
    )
    delta = device_delta(changes)
    t = AT.timestamp()
    assert delta.flagged == (DevicePoint("spo2", t, 62.0, 1), DevicePoint("rr", t, 14.0, 3))
    assert delta.pending == (DevicePoint("hr", t, 71.0, 2),)  # corrected: the device's own word
