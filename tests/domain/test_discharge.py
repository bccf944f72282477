"""Discharge scores and readiness (Aldrete 1995; Chung 1995): every item boundary of the
modified Aldrete and PADSS, pass and fail at the mark, PADSS out of 8 with bleeding not
applicable, and every reason readiness can give, including the minimum time at exactly the
minute."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from kapmonitor.domain.discharge import (
    CHECKLIST,
    AldreteInputs,
    PadssInputs,
    ScoreResult,
    aldrete,
    padss,
    readiness,
)

FULL_ALDRETE = AldreteInputs(
    activity=2,
    respiration=2,
    sbp_now=120,
    sbp_baseline=120,
    moaas=5,
    spo2=97,
    on_oxygen=False,
)
FULL_PADSS = PadssInputs(
    vitals_now={"sbp": 120, "hr": 70},
    vitals_baseline={"sbp": 120, "hr": 70},
    ambulation=2,
    nausea_vomiting=2,
    pain_vas=0,
)
DOSE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ALL_CHECKED = {code: True for code, _ in CHECKLIST}


def item(result: ScoreResult, code: str):
    return next(i for i in result.items if i.code == code)


# --- Aldrete ---------------------------------------------------------------------------------


def test_aldrete_full_marks() -> None:
    result = aldrete(FULL_ALDRETE, pass_mark=9)
    assert [i.code for i in result.items] == [
        "activity",
        "respiration",
        "circulation",
        "consciousness",
        "spo2",
    ]
    assert (result.total, result.maximum, result.pass_mark, result.passed) == (10, 10, 9, True)
    assert result.name == "aldrete"


@pytest.mark.parametrize("points", [0, 1, 2])
def test_aldrete_clinician_items(points: int) -> None:
    result = aldrete(replace(FULL_ALDRETE, activity=points, respiration=points), 9)
    assert item(result, "activity").points == points
    assert item(result, "respiration").points == points
    assert item(result, "activity").basis.startswith("Clinician:")


@pytest.mark.parametrize("bad", [-1, 3, True])
def test_aldrete_clinician_item_out_of_range_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="Activity"):
        aldrete(replace(FULL_ALDRETE, activity=bad), 9)


@pytest.mark.parametrize(
    ("now", "points"),
    [
        (120, 2),  # +20 % exactly: "within ±20 %"
        (80, 2),  # −20 % exactly
        (121, 1),  # +21 %
        (79, 1),  # −21 %
        (149, 1),  # +49 %
        (51, 1),  # −49 %
        (150, 0),  # +50 %
        (50, 0),  # −50 %
        (200, 0),
    ],
)
def test_aldrete_circulation_edges(now: int, points: int) -> None:
    result = aldrete(replace(FULL_ALDRETE, sbp_now=now, sbp_baseline=100), 9)
    circulation = item(result, "circulation")
    assert circulation.points == points
    assert f"SBP {now}" in circulation.basis and "100" in circulation.basis


def test_aldrete_circulation_fractional_percent_just_above_20() -> None:
    # 146 vs 121: 20.66 % — above 20 %, shown with its decimal so the basis does not say "20 %".
    circulation = item(
        aldrete(replace(FULL_ALDRETE, sbp_now=146, sbp_baseline=121), 9), "circulation"
    )
    assert circulation.points == 1
    assert "20.7 %" in circulation.basis


@pytest.mark.parametrize(("now", "baseline"), [(None, 120), (120, None), (None, None)])
def test_aldrete_circulation_without_bp_scores_zero(now: int | None, baseline: int | None) -> None:
    circulation = item(
        aldrete(replace(FULL_ALDRETE, sbp_now=now, sbp_baseline=baseline), 9), "circulation"
    )
    assert circulation.points == 0
    assert "no BP to compare" in circulation.basis


@pytest.mark.parametrize(("moaas", "points"), [(5, 2), (4, 1), (3, 1), (2, 0), (1, 0), (0, 0)])
def test_aldrete_consciousness(moaas: int, points: int) -> None:
    consciousness = item(aldrete(replace(FULL_ALDRETE, moaas=moaas), 9), "consciousness")
    assert consciousness.points == points
    assert f"MOAA/S {moaas}" in consciousness.basis


def test_aldrete_consciousness_not_assessed() -> None:
    consciousness = item(aldrete(replace(FULL_ALDRETE, moaas=None), 9), "consciousness")
    assert consciousness.points == 0
    assert "not assessed" in consciousness.basis


@pytest.mark.parametrize(
    ("spo2", "on_oxygen", "points"),
    [
        (93, False, 2),
        (100, False, 2),
        (92, False, 0),  # not > 92 on air; oxygen point only with oxygen
        (90, False, 0),
        (91, True, 1),
        (98, True, 1),  # on oxygen: at best "needs O₂"
        (90, True, 0),  # not "kept > 90"
        (85, True, 0),
        (None, False, 0),
    ],
)
def test_aldrete_spo2(spo2: int | None, on_oxygen: bool, points: int) -> None:
    result = aldrete(replace(FULL_ALDRETE, spo2=spo2, on_oxygen=on_oxygen), 9)
    assert item(result, "spo2").points == points
    assert item(result, "spo2").basis


def test_aldrete_spo2_in_between_value_is_explained() -> None:
    basis = item(aldrete(replace(FULL_ALDRETE, spo2=91), 9), "spo2").basis
    assert "on air" in basis and "92" in basis


def test_aldrete_pass_and_fail_at_the_mark() -> None:
    nine = aldrete(replace(FULL_ALDRETE, activity=1), pass_mark=9)
    assert (nine.total, nine.passed) == (9, True)
    eight = aldrete(replace(FULL_ALDRETE, activity=1, respiration=1), pass_mark=9)
    assert (eight.total, eight.passed) == (8, False)


@pytest.mark.parametrize("mark", [-1, 11])
def test_aldrete_impossible_pass_mark_refused(mark: int) -> None:
    with pytest.raises(ValueError, match="pass mark"):
        aldrete(FULL_ALDRETE, mark)


# --- PADSS -----------------------------------------------------------------------------------


def test_padss_maximum_is_8_with_bleeding_not_applicable() -> None:
    result = padss(FULL_PADSS, pass_mark=8)
    assert result.name == "padss"
    assert (result.total, result.maximum, result.passed) == (8, 8, True)
    bleeding = item(result, "surgical_bleeding")
    assert bleeding.points is None
    assert bleeding.basis == "not applicable in KAP"
    assert len(result.items) == 5


def test_padss_pass_mark_above_8_is_refused_not_rescaled() -> None:
    with pytest.raises(ValueError, match="maximum"):
        padss(FULL_PADSS, pass_mark=9)


def test_padss_pass_and_fail_at_the_mark() -> None:
    seven = padss(replace(FULL_PADSS, pain_vas=4), pass_mark=7)
    assert (seven.total, seven.passed) == (7, True)
    six = padss(replace(FULL_PADSS, pain_vas=4, ambulation=1), pass_mark=7)
    assert (six.total, six.passed) == (6, False)


@pytest.mark.parametrize(
    ("sbp", "hr", "points"),
    [
        (100, 50, 2),
        (120, 60, 2),  # +20 % and +20 %: within 20 %
        (80, 40, 2),  # −20 %
        (121, 50, 1),  # SBP +21 %
        (100, 61, 1),  # HR +22 %
        (140, 70, 1),  # +40 % exactly
        (60, 30, 1),  # −40 %
        (141, 50, 0),  # +41 %
        (100, 71, 0),  # HR +42 %
        (59, 50, 0),
    ],
)
def test_padss_vital_sign_edges(sbp: int, hr: int, points: int) -> None:
    inputs = replace(
        FULL_PADSS, vitals_now={"sbp": sbp, "hr": hr}, vitals_baseline={"sbp": 100, "hr": 50}
    )
    vitals = item(padss(inputs, 6), "vital_signs")
    assert vitals.points == points
    assert f"SBP {sbp}" in vitals.basis and f"HR {hr}" in vitals.basis


@pytest.mark.parametrize(
    ("now", "baseline", "absent"),
    [
        ({"sbp": None, "hr": 70}, {"sbp": 120, "hr": 70}, "SBP"),
        ({"sbp": 120, "hr": 70}, {"sbp": 120, "hr": None}, "HR"),
        ({}, {}, "SBP or HR"),
    ],
)
def test_padss_vitals_missing_scores_zero(
    now: dict[str, int | None], baseline: dict[str, int | None], absent: str
) -> None:
    vitals = item(
        padss(replace(FULL_PADSS, vitals_now=now, vitals_baseline=baseline), 6), "vital_signs"
    )
    assert vitals.points == 0
    assert f"no {absent} to compare" in vitals.basis


@pytest.mark.parametrize(
    ("vas", "points"),
    [(0, 2), (3, 2), (4, 1), (6, 1), (7, 0), (10, 0)],
)
def test_padss_pain_edges(vas: int, points: int) -> None:
    assert item(padss(replace(FULL_PADSS, pain_vas=vas), 6), "pain").points == points


@pytest.mark.parametrize("vas", [-1, 11])
def test_padss_pain_out_of_range_refused(vas: int) -> None:
    with pytest.raises(ValueError, match="VAS"):
        padss(replace(FULL_PADSS, pain_vas=vas), 6)


@pytest.mark.parametrize("points", [0, 1, 2])
def test_padss_clinician_items(points: int) -> None:
    result = padss(replace(FULL_PADSS, ambulation=points, nausea_vomiting=points), 0)
    assert item(result, "ambulation").points == points
    assert item(result, "nausea_vomiting").points == points
    assert result.total == 2 + 2 * points + 2


# --- readiness -------------------------------------------------------------------------------


def ready(**changes):
    values = {
        "score": aldrete(FULL_ALDRETE, 9),
        "checklist": dict(ALL_CHECKED),
        "first_dose": DOSE,
        "now": DOSE + timedelta(minutes=120),
        "minimum_minutes": 120,
        "recent_vitals": True,
    }
    values.update(changes)
    return readiness(**values)


def test_ready_when_everything_is_met_at_exactly_the_minute() -> None:
    result = ready()
    assert result.ready
    assert result.reasons == ()
    assert result.minutes_monitored == 120
    assert result.minimum_minutes == 120
    assert result.checklist_missing == ()


def test_one_second_short_of_the_minimum_is_not_ready() -> None:
    result = ready(now=DOSE + timedelta(minutes=120) - timedelta(seconds=1))
    assert not result.ready
    assert result.reasons == ("Monitored 119 min of the required 120 min since the first dose",)


def test_time_reason_in_plain_words() -> None:
    result = ready(now=DOSE + timedelta(minutes=90))
    assert "Monitored 90 min of the required 120 min since the first dose" in result.reasons


def test_no_dose_means_no_monitoring_time() -> None:
    result = ready(first_dose=None)
    assert not result.ready
    assert result.minutes_monitored is None
    assert any("No dose recorded" in r for r in result.reasons)


def test_failing_score_reason() -> None:
    score = aldrete(replace(FULL_ALDRETE, activity=1, respiration=1), 9)
    result = ready(score=score)
    assert result.reasons == ("Modified Aldrete score 8/10 is below the pass mark 9",)
    assert result.score is score


def test_padss_failing_reason_shows_out_of_8() -> None:
    result = ready(score=padss(replace(FULL_PADSS, pain_vas=5), 8))
    assert result.reasons == ("PADSS score 7/8 is below the pass mark 8",)


def test_missing_score_reason() -> None:
    assert ready(score=None).reasons == ("No discharge score recorded",)


def test_each_unconfirmed_checklist_item_is_named() -> None:
    checklist = dict(ALL_CHECKED, escort_present=False)
    del checklist["instructions_given"]
    result = ready(checklist=checklist)
    assert result.checklist_missing == ("escort_present", "instructions_given")
    assert result.reasons == (
        "Checklist: responsible adult escort present not confirmed",
        "Checklist: written instructions given (no driving until next day, etc.) not confirmed",
    )


def test_no_recent_vitals_reason() -> None:
    result = ready(recent_vitals=False)
    assert not result.ready
    assert len(result.reasons) == 1
    assert result.reasons[0].startswith("No vitals before discharge")


def test_every_unmet_condition_is_listed_together() -> None:
    result = readiness(
        score=aldrete(replace(FULL_ALDRETE, moaas=3), 10),
        checklist={},
        first_dose=DOSE,
        now=DOSE + timedelta(minutes=45),
        minimum_minutes=120,
        recent_vitals=False,
    )
    assert not result.ready
    assert len(result.reasons) == 1 + 1 + len(CHECKLIST) + 1
    assert result.reasons[0].startswith("Monitored 45 min")
    assert result.reasons[1] == "Modified Aldrete score 9/10 is below the pass mark 10"
    assert result.reasons[-1].startswith("No vitals before discharge")
