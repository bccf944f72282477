"""NEWS2 against the full RCP NEWS2 chart (2017): every edge of every parameter on both SpO₂
scales, the bands, totals, the incomplete rule (no band when anything is missing) and the
freshness of consciousness. Each edge case varies one parameter from an all-zero baseline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kapmonitor.domain.news2 import (
    INCOMPLETE,
    ScaleChoice,
    alert_from_observation,
    alert_within_window,
    band,
    scale_in_force,
    scale_label,
    score,
    spo2_points,
)
from kapmonitor.domain.reference import default_reference
from kapmonitor.domain.validation import ValidationError

NORMAL: dict[str, Any] = {
    "rr": 16,
    "spo2": 98,
    "on_oxygen": False,
    "sbp": 120,
    "hr": 70,
    "alert": True,
    "temp_c": 37.0,
}


def news(**changes: Any):
    return score(**{**NORMAL, **changes})


def test_normal_set_scores_zero_routine() -> None:
    result = news()
    assert result.total == 0
    assert result.band == "routine"
    assert result.complete and result.missing == ()
    assert set(result.parts) == {"rr", "spo2", "oxygen", "sbp", "hr", "consciousness", "temp"}


@pytest.mark.parametrize(
    ("rr", "points"),
    [(4, 3), (8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (60, 3)],
)
def test_respiration_edges(rr: int, points: int) -> None:
    result = news(rr=rr)
    assert result.parts["rr"] == points
    assert result.total == points


@pytest.mark.parametrize(
    ("spo2", "points"),
    [(50, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)],
)
def test_spo2_scale1_edges(spo2: int, points: int) -> None:
    assert news(spo2=spo2).parts["spo2"] == points


@pytest.mark.parametrize(("on_oxygen", "points"), [(True, 2), (False, 0)])
def test_oxygen(on_oxygen: bool, points: int) -> None:
    result = news(on_oxygen=on_oxygen)
    assert result.parts["oxygen"] == points
    assert result.total == points


@pytest.mark.parametrize(
    ("sbp", "points"),
    [(40, 3), (90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)],
)
def test_systolic_edges(sbp: int, points: int) -> None:
    assert news(sbp=sbp).parts["sbp"] == points


@pytest.mark.parametrize(
    ("hr", "points"),
    [
        (20, 3),
        (40, 3),
        (41, 1),
        (50, 1),
        (51, 0),
        (90, 0),
        (91, 1),
        (110, 1),
        (111, 2),
        (130, 2),
        (131, 3),
        (300, 3),
    ],
)
def test_pulse_edges(hr: int, points: int) -> None:
    assert news(hr=hr).parts["hr"] == points


@pytest.mark.parametrize(
    ("temp", "points"),
    [
        (30.0, 3),
        (35.0, 3),
        (35.1, 1),
        (36.0, 1),
        (36.1, 0),
        (38.0, 0),
        (38.1, 1),
        (39.0, 1),
        (39.1, 2),
        (42.0, 2),
    ],
)
def test_temperature_edges(temp: float, points: int) -> None:
    assert news(temp_c=temp).parts["temp"] == points


def test_temperature_with_float_noise_stays_on_the_printed_side() -> None:
    assert news(temp_c=36.0000001).parts["temp"] == 1
    assert news(temp_c=35.1 - 1e-9).parts["temp"] == 1


@pytest.mark.parametrize(("alert", "points"), [(True, 0), (False, 3)])
def test_consciousness(alert: bool, points: int) -> None:
    assert news(alert=alert).parts["consciousness"] == points


def test_single_three_with_low_total_is_low_medium() -> None:
    result = news(alert=False)
    assert result.total == 3
    assert result.band == "low-medium"
    result = news(rr=8, hr=95)  # 3 + 1 = 4
    assert result.total == 4
    assert result.band == "low-medium"


def test_low_band_without_a_three() -> None:
    assert news(hr=95).band == "low"  # 1
    result = news(rr=22, on_oxygen=True)  # 2 + 2 = 4
    assert (result.total, result.band) == (4, "low")


@pytest.mark.parametrize(
    ("changes", "total", "expected"),
    [
        ({"rr": 22, "on_oxygen": True, "hr": 95}, 5, "medium"),  # 2 + 2 + 1
        ({"alert": False, "on_oxygen": True}, 5, "medium"),  # a 3 at ≥ 5 is medium, not low-medium
        ({"alert": False, "on_oxygen": True, "hr": 95}, 6, "medium"),
        ({"alert": False, "on_oxygen": True, "spo2": 92}, 7, "high"),
        (
            {"rr": 25, "spo2": 91, "on_oxygen": True, "sbp": 90, "hr": 131, "alert": False},
            17,
            "high",
        ),
    ],
)
def test_totals_and_upper_bands(changes: dict[str, Any], total: int, expected: str) -> None:
    result = news(**changes)
    assert result.total == total
    assert result.band == expected


def test_maximum_total_is_20() -> None:
    result = score(rr=4, spo2=80, on_oxygen=True, sbp=80, hr=150, alert=False, temp_c=34.0)
    assert result.total == 3 + 3 + 2 + 3 + 3 + 3 + 3
    assert result.total == 20
    assert result.band == "high"


def test_total_is_the_sum_of_parts() -> None:
    result = news(rr=10, spo2=94, sbp=105, hr=45, temp_c=38.5)
    assert result.parts == {
        "rr": 1,
        "spo2": 1,
        "oxygen": 0,
        "sbp": 1,
        "hr": 1,
        "consciousness": 0,
        "temp": 1,
    }
    assert result.total == 5 == sum(result.parts.values())


def test_missing_parameters_score_zero_and_are_listed() -> None:
    result = score(rr=None, spo2=None, on_oxygen=False, sbp=None, hr=None, alert=None, temp_c=None)
    assert result.total == 0
    assert result.missing == ("rr", "spo2", "sbp", "hr", "consciousness", "temp")
    assert not result.complete
    assert all(points == 0 for points in result.parts.values())


def test_a_set_with_nothing_measured_gets_no_band() -> None:
    """Nothing measured totals 0: that must never read as "routine"."""
    result = score(rr=None, spo2=None, on_oxygen=False, sbp=None, hr=None, alert=None, temp_c=None)
    assert result.band == INCOMPLETE == "incomplete"
    assert result.summary() == "0 partial (incomplete)"


def test_temperature_missing_leaves_a_partial_total_and_no_band() -> None:
    result = news(temp_c=None, rr=8)
    assert result.missing == ("temp",)
    assert result.total == 3  # partial: what was measured
    assert result.band == "incomplete"
    assert result.summary() == "3 partial (incomplete)"


@pytest.mark.parametrize(
    "missing", ["rr", "spo2", "sbp", "hr", "alert", "temp_c"], ids=lambda name: name
)
def test_any_one_missing_parameter_makes_the_set_incomplete(missing: str) -> None:
    result = news(**{missing: None})
    assert len(result.missing) == 1 and not result.complete
    assert result.band == "incomplete"


@pytest.mark.parametrize("changes", [{}, {"rr": 8}, {"alert": False, "on_oxygen": True}])
def test_a_complete_set_always_gets_a_band(changes: dict[str, Any]) -> None:
    result = news(**changes)
    assert result.complete
    assert result.band in ("routine", "low", "low-medium", "medium", "high")
    assert result.summary() == f"{result.total} ({result.band})"


# --- SpO₂ Scale 2 (RCP NEWS2 2017, chart 2: hypercapnic respiratory failure, target 88–92 %) ---

SCALE2_ON_AIR = [
    (50, 3),
    (83, 3),
    (84, 2),
    (85, 2),
    (86, 1),
    (87, 1),
    (88, 0),
    (92, 0),
    (93, 0),  # on air, 93 and above score 0 on Scale 2
    (96, 0),
    (97, 0),
    (100, 0),
]
SCALE2_ON_OXYGEN = [
    (50, 3),
    (83, 3),
    (84, 2),
    (85, 2),
    (86, 1),
    (87, 1),
    (88, 0),
    (92, 0),
    (93, 1),
    (94, 1),
    (95, 2),
    (96, 2),
    (97, 3),
    (100, 3),
]


@pytest.mark.parametrize(("spo2", "points"), SCALE2_ON_AIR)
def test_spo2_scale2_edges_on_air(spo2: int, points: int) -> None:
    assert spo2_points(spo2, on_oxygen=False, scale=2) == points
    result = news(spo2=spo2, scale=2)
    assert result.parts["spo2"] == points and result.total == points
    assert result.scale == 2


@pytest.mark.parametrize(("spo2", "points"), SCALE2_ON_OXYGEN)
def test_spo2_scale2_edges_on_oxygen(spo2: int, points: int) -> None:
    assert spo2_points(spo2, on_oxygen=True, scale=2) == points
    result = news(spo2=spo2, on_oxygen=True, scale=2)
    assert result.parts["spo2"] == points
    assert result.parts["oxygen"] == 2  # the air-or-oxygen row is the same on both scales
    assert result.total == points + 2


@pytest.mark.parametrize(
    ("spo2", "on_oxygen", "scale1", "scale2"),
    [
        (88, False, 3, 0),  # the target range of Scale 2 scores 3 on Scale 1
        (92, False, 2, 0),
        (93, False, 2, 0),
        (97, True, 0, 3),  # over-oxygenation scores only on Scale 2
        (86, False, 3, 1),
    ],
)
def test_the_two_scales_differ_where_the_chart_says(
    spo2: int, on_oxygen: bool, scale1: int, scale2: int
) -> None:
    assert news(spo2=spo2, on_oxygen=on_oxygen).parts["spo2"] == scale1
    assert news(spo2=spo2, on_oxygen=on_oxygen, scale=2).parts["spo2"] == scale2


def test_scale2_band_and_an_unknown_scale_is_refused() -> None:
    result = news(spo2=97, on_oxygen=True, scale=2)  # 3 + 2
    assert (result.total, result.band) == (5, "medium")
    with pytest.raises(ValueError, match="scales 1 and 2"):
        news(scale=3)


def test_scale_in_force_is_the_newest_choice_at_or_before_the_reading() -> None:
    choices = [
        {"id": 1, "observed_at": "2026-01-01T10:00:00.000Z", "scale": 2},
        {"id": 2, "observed_at": "2026-01-01T11:00:00.000Z", "scale": 1},
    ]
    assert scale_in_force([], "2026-01-01T10:30:00.000Z") == 1
    assert scale_in_force(choices, "2026-01-01T09:59:59.999Z") == 1
    assert scale_in_force(choices, "2026-01-01T10:00:00.000Z") == 2
    assert scale_in_force(choices, "2026-01-01T10:59:00.000Z") == 2
    assert scale_in_force(choices, "2026-01-01T11:00:00.000Z") == 1
    assert scale_label(2) == "NEWS2 (Scale 2)" and scale_label(1) == "NEWS2"


def test_a_scale_choice_needs_a_known_scale_and_a_reason() -> None:
    now = datetime(2026, 1, 1, 10, tzinfo=UTC)
    ref = default_reference()
    ScaleChoice(2, "COPD with hypercapnic respiratory failure, target 88–92 %", now).validate(
        ref, now
    )
    with pytest.raises(ValidationError) as refused:
        ScaleChoice(2, "   ", now).validate(ref, now)
    assert "reason" in str(refused.value)
    with pytest.raises(ValidationError):
        ScaleChoice(3, "a reason", now).validate(ref, now)
    assert ScaleChoice(2, " why ", now).columns() == {"scale": 2, "reason": "why"}


# --- consciousness only from a recent observation -------------------------------------------

READING = "2026-01-01T10:30:00.000Z"


def _obs(minutes_before: float, moaas: int | None = 5, dissociation: int | None = 0) -> dict:
    at = datetime(2026, 1, 1, 10, 30, tzinfo=UTC) - timedelta(minutes=minutes_before)
    return {
        "observed_at": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "moaas": moaas,
        "dissociation": dissociation,
    }


@pytest.mark.parametrize(
    ("minutes_before", "expected"),
    [(0, True), (10, True), (15, True), (15.5, None), (95, None)],
)
def test_consciousness_counts_only_within_the_window(
    minutes_before: float, expected: bool | None
) -> None:
    assert alert_within_window(_obs(minutes_before), READING, 15) is expected


def test_an_old_observation_leaves_the_set_incomplete_not_alert() -> None:
    """A pre-dose MOAA/S 5 must not make a 95-minute-later set look complete and calm."""
    alert = alert_within_window(_obs(95), READING, 15)
    result = news(alert=alert)
    assert result.missing == ("consciousness",) and result.band == "incomplete"


def test_a_recent_dissociation_still_scores_as_new_confusion() -> None:
    alert = alert_within_window(_obs(5, moaas=5, dissociation=2), READING, 15)
    assert alert is False
    assert news(alert=alert).parts["consciousness"] == 3


def test_no_observation_or_a_later_one_is_not_assessed() -> None:
    assert alert_within_window(None, READING, 15) is None
    assert alert_within_window(_obs(-5), READING, 15) is None


@pytest.mark.parametrize(
    ("total", "parts", "expected"),
    [
        (0, {}, "routine"),
        (1, {"hr": 1}, "low"),
        (4, {"rr": 2, "oxygen": 2}, "low"),
        (3, {"consciousness": 3}, "low-medium"),
        (4, {"consciousness": 3, "hr": 1}, "low-medium"),
        (5, {"rr": 3, "oxygen": 2}, "medium"),
        (6, {"rr": 2, "oxygen": 2, "spo2": 2}, "medium"),
        (7, {"rr": 3, "oxygen": 2, "spo2": 2}, "high"),
        (20, {}, "high"),
    ],
)
def test_band_rules(total: int, parts: dict[str, int], expected: str) -> None:
    assert band(total, parts) == expected


@pytest.mark.parametrize(
    ("moaas", "dissociation", "expected"),
    [
        (None, None, None),
        (5, 0, True),
        (5, None, True),
        (None, 0, True),
        (4, 0, False),
        (5, 1, False),
        (None, 2, False),
        (0, None, False),
    ],
)
def test_alert_from_observation(
    moaas: int | None, dissociation: int | None, expected: bool | None
) -> None:
    assert alert_from_observation(moaas, dissociation) is expected


def test_dissociation_scores_as_new_confusion() -> None:
    result = news(alert=alert_from_observation(5, 1))
    assert result.parts["consciousness"] == 3
    assert result.band == "low-medium"


# --- through the store: what the window and the scenario runner both call ------------------


def _stored_score(store, sid: str, vitals_id: int) -> dict:
    import json

    row = store.load(sid).current("vital_scores")
    (found,) = [r for r in row if r["vitals_id"] == vitals_id]
    return {**found, "parts": json.loads(found["news2_parts"])}


def test_store_scores_on_the_chosen_scale_and_keeps_the_reason(tmp_path) -> None:
    from kapmonitor.domain.clock import FakeClock
    from kapmonitor.domain.records import Observation, VitalSigns
    from tests.factories import T0, open_store, protocol, session_start

    clock = FakeClock(T0)
    store = open_store(tmp_path / "s.sqlite", clock)
    sid = store.start_session(session_start(clock), "Dr A", protocol=protocol("clinic-ketamine"))
    full = {"sbp": 120, "dbp": 80, "hr": 70, "rr": 16, "temp_c": 37.0}
    clock.advance(minutes=1)
    store.add(sid, Observation(clock.now(), moaas=5, dissociation=0), "Nurse B")
    first = store.add(sid, VitalSigns(clock.now(), spo2=90, **full), "Nurse B").primary_id
    scored = _stored_score(store, sid, first)
    assert (scored["parts"]["spo2"], scored["parts"]["spo2_scale"]) == (3, 1)
    assert scored["news2_band"] == "low-medium"
    with pytest.raises(ValidationError):
        store.add(sid, ScaleChoice(2, "", clock.now()), "Dr A")  # no reason: refused
    clock.advance(minutes=1)
    reason = "Hypercapnic respiratory failure (COPD), prescribed target 88–92 %"
    store.add(sid, ScaleChoice(2, reason, clock.now()), "Dr A")
    second = store.add(sid, VitalSigns(clock.now(), spo2=90, **full), "Nurse B").primary_id
    scored = _stored_score(store, sid, second)
    assert (scored["parts"]["spo2"], scored["parts"]["spo2_scale"]) == (0, 2)
    assert (scored["news2_total"], scored["news2_band"]) == (0, "routine")
    (choice,) = store.load(sid).current("news2_scale_choices")
    assert (choice["scale"], choice["reason"], choice["recorded_by"]) == (2, reason, "Dr A")
    audited = store.db.execute(
        "SELECT actor FROM audit WHERE table_name = 'news2_scale_choices' AND row_id = ?",
        [choice["id"]],
    ).fetchall()
    assert audited == [("Dr A",)]
    with pytest.raises(Exception, match="append-only"):
        store.db.execute("UPDATE news2_scale_choices SET scale = 1")
    with pytest.raises(Exception, match="append-only"):
        store.db.execute("DELETE FROM news2_scale_choices")
    # Consciousness from 20 minutes ago is stale (window 15): the set is incomplete.
    clock.advance(minutes=20)
    third = store.add(sid, VitalSigns(clock.now(), spo2=90, **full), "Nurse B").primary_id
    scored = _stored_score(store, sid, third)
    assert scored["news2_band"] == "incomplete"
    assert "consciousness" in scored["news2_missing"]
    store.close()
