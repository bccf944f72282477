"""The REMS monitoring form from a synthetic esketamine session (Spravato REMS): every field is
filled when the log holds the data, each gap says why, and the dose reads 56, 84 or other."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kapmonitor.domain.clock import to_iso
from kapmonitor.domain.rems import RemsField, rems_summary

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # noon UTC: same calendar date in most zones
DOSE = START + timedelta(minutes=20)
MEDS = {
    "benzodiazepines": True,
    "sedative_hypnotics": False,
    "psychostimulants": False,
    "maois": False,
    "opioids": False,
}
EXPECTED_KEYS = [
    "concomitant_benzodiazepines",
    "concomitant_sedative_hypnotics",
    "concomitant_psychostimulants",
    "concomitant_maois",
    "concomitant_opioids",
    "monitoring_clinician",
    "setting",
    "treatment_date",
    "dose",
    "lot_number",
    "total_minutes",
    "minutes_until_ready",
    "vitals_ok_before_dosing",
    "vitals_ok_before_end",
    "bp_before_dosing",
    "bp_at_40_min",
    "bp_before_end",
    "sedation",
    "dissociation",
    "respiratory_depression",
    "serious_adverse_event",
]


def at(minutes_after_dose: float) -> str:
    return to_iso(DOSE + timedelta(minutes=minutes_after_dose))


_ids = iter(range(1, 10_000))


def row(minute: float, **values: Any) -> dict[str, Any]:
    return {
        "id": next(_ids),
        "observed_at": at(minute),
        "voided": 0,
        "supersedes_id": None,
        **values,
    }


def vitals(minute: float, sbp: int | None, dbp: int | None, hr=72, spo2=98, rr=14):
    return row(minute, sbp=sbp, dbp=dbp, hr=hr, spo2=spo2, rr=rr, temp_c=None, on_oxygen=0)


def observation(minute: float, moaas=5, rass=0, dissociation=0):
    return row(minute, moaas=moaas, rass=rass, dissociation=dissociation)


def session(**changes: Any) -> dict[str, Any]:
    base = {
        "id": "a" * 32,
        "patient_code": "KAP-0042",
        "observed_at": to_iso(START),
        "eligibility": json.dumps({"consent": True}),
        "concomitant_medicines": json.dumps(MEDS),
    }
    return {**base, **changes}


def full_log() -> dict[str, list[dict[str, Any]]]:
    return {
        "doses": [
            row(0, drug="esketamine", dose_mg=56.0, lot_number="LOT-A1", route="intranasal"),
        ],
        "vitals": [
            vitals(-15, 126, 78),
            vitals(-5, 128, 80),
            vitals(20, None, None, hr=80),
            vitals(38, 150, 95),  # 2 min from minute 40
            vitals(44, 148, 92),
            vitals(90, 134, 84),
            vitals(118, 130, 82, hr=76),
        ],
        "observations": [
            observation(-10),
            observation(30, moaas=3, rass=-1, dissociation=2),
            observation(90, moaas=5, rass=0, dissociation=0),
        ],
        "adverse_events": [
            row(25, term="nausea", serious=0, serious_criterion=None, verbatim=None),
        ],
        "session_ends": [row(125, disposition="home_with_escort")],
    }


def summary(
    current: dict[str, list[dict[str, Any]]] | None = None,
    *,
    sess: dict[str, Any] | None = None,
    clinicians: list[str] | None = None,
    ready: datetime | None = DOSE + timedelta(minutes=95),
    end: datetime | None = None,
    setting: str = "Clinic room 2 (healthcare setting)",
) -> dict[str, RemsField]:
    fields = rems_summary(
        sess or session(),
        ["Dr A", "Nurse B"] if clinicians is None else clinicians,
        full_log() if current is None else current,
        ready,
        end,
        setting,
    )
    return {f.key: f for f in fields}


def test_every_field_filled_in_form_order() -> None:
    fields = rems_summary(session(), ["Dr A", "Nurse B"], full_log(), DOSE, None, "Clinic")
    assert [f.key for f in fields] == EXPECTED_KEYS
    unfilled = [(f.key, f.why_missing) for f in fields if not f.filled]
    assert unfilled == []
    assert all(f.value and f.label and f.why_missing == "" for f in fields)


def test_values_from_a_full_session() -> None:
    form = summary()
    assert form["concomitant_benzodiazepines"].value == "Yes"
    assert form["concomitant_opioids"].value == "No"
    assert form["monitoring_clinician"].value == "Dr A, Nurse B"
    assert form["setting"].value == "Clinic room 2 (healthcare setting)"
    assert form["treatment_date"].value == "2026-03-02"
    assert form["dose"].value == "56 mg"
    assert form["lot_number"].value == "LOT-A1"
    assert form["total_minutes"].value == "125 min"
    assert form["minutes_until_ready"].value == "95 min"
    assert form["bp_before_dosing"].value.startswith("128/80 mmHg")
    assert "5 min before the first dose" in form["bp_before_dosing"].value
    assert form["bp_at_40_min"].value == "150/95 mmHg at minute 38"
    assert form["bp_before_end"].value.startswith("130/82 mmHg at minute 118")
    assert "7 min before the end" in form["bp_before_end"].value
    assert form["vitals_ok_before_dosing"].value.startswith("Yes")
    assert "SBP < 180" in form["vitals_ok_before_dosing"].value
    assert form["vitals_ok_before_end"].value.startswith("Yes")
    assert form["sedation"].value.startswith("Yes")
    assert "MOAA/S 3 at minute 30" in form["sedation"].value
    assert form["dissociation"].value.startswith("Yes")
    assert "dissociation 2 at minute 30" in form["dissociation"].value
    assert form["respiratory_depression"].value.startswith("No")
    assert "lowest RR 14" in form["respiratory_depression"].value
    assert "RR ≤ 9" in form["respiratory_depression"].value
    assert form["serious_adverse_event"].value.startswith("No")


@pytest.mark.parametrize(
    ("doses", "expected"),
    [
        ([56.0], "56 mg"),
        ([84.0], "84 mg"),
        ([28.0, 28.0, 28.0], "84 mg"),  # three devices
        ([28.0, 28.0], "56 mg"),
        ([28.0], "Other: 28 mg"),
        ([112.0], "Other: 112 mg"),
        ([30.5], "Other: 30.5 mg"),
    ],
)
def test_dose_56_84_or_other(doses: list[float], expected: str) -> None:
    log = full_log()
    log["doses"] = [
        row(i * 5, drug="esketamine", dose_mg=mg, lot_number=f"L{i}") for i, mg in enumerate(doses)
    ]
    form = summary(log)
    assert form["dose"].value == expected
    assert form["lot_number"].value == ", ".join(f"L{i}" for i in range(len(doses)))


def test_lot_numbers_joined_without_repeats() -> None:
    log = full_log()
    log["doses"] = [
        row(0, drug="esketamine", dose_mg=28.0, lot_number="X1"),
        row(5, drug="esketamine", dose_mg=28.0, lot_number="X1"),
        row(10, drug="esketamine", dose_mg=28.0, lot_number="Y2"),
    ]
    assert summary(log)["lot_number"].value == "X1, Y2"


def test_missing_lot_number_is_not_filled() -> None:
    log = full_log()
    log["doses"] = [
        row(0, drug="esketamine", dose_mg=28.0, lot_number="X1"),
        row(5, drug="esketamine", dose_mg=28.0, lot_number=None),
    ]
    lot = summary(log)["lot_number"]
    assert not lot.filled and lot.value == ""
    assert "1 of 2" in lot.why_missing and "X1" in lot.why_missing


def test_no_esketamine_dose() -> None:
    log = full_log()
    log["doses"] = [row(0, drug="ketamine", dose_mg=35.0, lot_number="K")]
    form = summary(log)
    assert not form["dose"].filled
    assert "no esketamine dose" in form["dose"].why_missing
    assert "ketamine" in form["dose"].why_missing
    # Times still count from the first administration of any drug.
    assert form["total_minutes"].value == "125 min"


def test_empty_log_says_why_for_each_field() -> None:
    empty: dict[str, list[dict[str, Any]]] = {}
    form = summary(
        empty, sess=session(concomitant_medicines=None), clinicians=[], ready=None, setting=""
    )
    assert [k for k, f in form.items() if f.filled] == ["treatment_date", "serious_adverse_event"]
    for key, field in form.items():
        if not field.filled:
            assert field.value == ""
            assert field.why_missing, key
    assert form["concomitant_maois"].why_missing == "not recorded when the session started"
    assert "setting is not recorded" in form["setting"].why_missing
    assert form["total_minutes"].why_missing == "no dose recorded"
    assert form["treatment_date"].value == "2026-03-02"  # from the session start
    assert form["serious_adverse_event"].value == "No — no adverse effect recorded"


def test_monitoring_not_ended() -> None:
    log = full_log()
    log["session_ends"] = []
    form = summary(log)
    assert not form["total_minutes"].filled
    assert "not ended" in form["total_minutes"].why_missing
    assert not form["bp_before_end"].filled
    assert not form["vitals_ok_before_end"].filled


def test_explicit_monitoring_end_wins_over_the_session_end() -> None:
    form = summary(end=DOSE + timedelta(minutes=100))
    assert form["total_minutes"].value == "100 min"
    assert form["bp_before_end"].value.startswith("134/84 mmHg at minute 90")


def test_no_bp_before_the_dose() -> None:
    log = full_log()
    log["vitals"] = [v for v in log["vitals"] if v["observed_at"] > at(0)]
    form = summary(log)
    assert not form["bp_before_dosing"].filled
    assert form["bp_before_dosing"].why_missing == "no BP recorded before the first dose"
    assert not form["vitals_ok_before_dosing"].filled


@pytest.mark.parametrize(("minute", "found"), [(30, True), (50, True), (29, False), (51, False)])
def test_bp_at_40_within_ten_minutes(minute: float, found: bool) -> None:
    log = full_log()
    log["vitals"] = [vitals(-5, 128, 80), vitals(minute, 150, 95), vitals(118, 130, 82)]
    field = summary(log)["bp_at_40_min"]
    assert field.filled is found
    if found:
        assert field.value == f"150/95 mmHg at minute {minute}"
    else:
        assert field.why_missing == "no BP recorded within 10 min of minute 40"


def test_bp_at_40_takes_the_closest_reading() -> None:
    log = full_log()
    log["vitals"] = [vitals(33, 140, 90), vitals(43, 152, 96), vitals(48, 150, 94)]
    assert summary(log)["bp_at_40_min"].value == "152/96 mmHg at minute 43"


def test_vitals_not_acceptable_names_the_crossing() -> None:
    log = full_log()
    log["vitals"] = [vitals(-5, 182, 96, hr=72), vitals(118, 130, 82, spo2=91)]
    form = summary(log)
    pre, end = form["vitals_ok_before_dosing"], form["vitals_ok_before_end"]
    assert pre.filled and pre.value.startswith("No — SBP 182 outside < 180")
    assert end.value.startswith("No — SpO₂ 91 outside ≥ 92")


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        ({"hr": 49}, "HR 49 outside 50–110"),
        ({"hr": 111}, "HR 111 outside 50–110"),
        ({"rr": 9}, "RR 9 outside 10–24"),
        ({"rr": 25}, "RR 25 outside 10–24"),
        ({"dbp": 110}, "DBP 110 outside < 110"),
    ],
)
def test_acceptability_edges(changes: dict[str, int], text: str) -> None:
    values = {"sbp": 140, "dbp": 90, "hr": 72, "spo2": 98, "rr": 14} | changes
    log = full_log()
    log["vitals"] = [vitals(-5, **values)]
    assert summary(log)["vitals_ok_before_dosing"].value.startswith(f"No — {text}")


def test_acceptability_at_the_limits_is_yes() -> None:
    log = full_log()
    log["vitals"] = [
        vitals(-5, 179, 109, hr=110, spo2=92, rr=24),
        vitals(100, 150, 90, hr=50, rr=10),
    ]
    form = summary(log)
    assert form["vitals_ok_before_dosing"].value.startswith("Yes")
    assert form["vitals_ok_before_end"].value.startswith("Yes")


def test_no_sedation_dissociation_or_respiratory_depression() -> None:
    log = full_log()
    log["observations"] = [observation(30, moaas=4, rass=-1, dissociation=0)]
    form = summary(log)
    assert form["sedation"].value.startswith("No — lowest MOAA/S 4, lowest RASS -1")
    assert form["dissociation"].value.startswith("No")


@pytest.mark.parametrize(
    ("obs", "ae", "expected"),
    [
        ({"moaas": 3}, None, "MOAA/S 3"),
        ({"rass": -2}, None, "RASS -2"),
        ({}, "sedation", "adverse effect 'sedation'"),
        ({}, "somnolence", "adverse effect 'somnolence'"),
    ],
)
def test_sedation_yes(obs: dict[str, int], ae: str | None, expected: str) -> None:
    log = full_log()
    log["observations"] = [observation(30, **obs)]
    log["adverse_events"] = [row(30, term=ae, serious=0)] if ae else []
    field = summary(log)["sedation"]
    assert field.value.startswith("Yes") and expected in field.value


def test_dissociation_adverse_effect_is_yes() -> None:
    log = full_log()
    log["observations"] = [observation(30, dissociation=0)]
    log["adverse_events"] = [row(31, term="dissociation", serious=0)]
    assert summary(log)["dissociation"].value.startswith("Yes — adverse effect 'dissociation'")


@pytest.mark.parametrize(
    ("vital", "ae", "expected"),
    [
        ({"rr": 9}, None, "RR 9 at minute 30"),
        ({"spo2": 89}, None, "SpO₂ 89 % at minute 30"),
        ({}, "respiratory_depression", "adverse effect 'respiratory_depression'"),
        ({}, "apnoea", "adverse effect 'apnoea'"),
        ({}, "spo2_decreased", "adverse effect 'spo2_decreased'"),
    ],
)
def test_respiratory_depression_yes(vital: dict[str, int], ae: str | None, expected: str) -> None:
    log = full_log()
    log["vitals"].append(vitals(30, 130, 80, **vital))
    log["adverse_events"] = [row(30, term=ae, serious=0)] if ae else []
    field = summary(log)["respiratory_depression"]
    assert field.value.startswith("Yes") and expected in field.value


def test_rr_10_and_spo2_90_are_not_respiratory_depression() -> None:
    log = full_log()
    log["vitals"].append(vitals(30, 130, 80, rr=10, spo2=90))
    assert summary(log)["respiratory_depression"].value.startswith("No")


def test_no_observations_after_dosing_cannot_say_no() -> None:
    log = full_log()
    log["observations"] = [observation(-10)]
    form = summary(log)
    assert not form["sedation"].filled
    assert "after the first dose" in form["sedation"].why_missing
    assert not form["dissociation"].filled


def test_serious_adverse_event_yes() -> None:
    log = full_log()
    log["adverse_events"].append(
        row(60, term="hypertension", serious=1, serious_criterion="hospitalisation", verbatim=None)
    )
    field = summary(log)["serious_adverse_event"]
    assert field.value.startswith("Yes — hypertension (hospitalisation) at minute 60")


def test_unreadable_medicine_list() -> None:
    field = summary(sess=session(concomitant_medicines="{not json"))["concomitant_opioids"]
    assert not field.filled and "could not be read" in field.why_missing


def test_many_findings_are_listed_in_clinical_order_and_counted() -> None:
    log = full_log()
    log["observations"] = [observation(m, moaas=3, rass=-2) for m in (50, 10, 30)]
    value = summary(log)["sedation"].value
    assert value.startswith("Yes — MOAA/S 3 at minute 10; RASS -2 at minute 10; MOAA/S 3 at")
    assert "and 3 more" in value


def test_acceptability_names_the_reading_it_judged() -> None:
    value = summary()["vitals_ok_before_dosing"].value
    assert "reading 5 min before the first dose: SBP 128, DBP 80, HR 72" in value
    end = summary()["vitals_ok_before_end"].value
    assert "reading at minute 118, 7 min before the end of monitoring: SBP 130" in end


def test_acceptability_says_what_was_not_measured() -> None:
    log = full_log()
    log["vitals"] = [vitals(-5, 128, 80, rr=None)]
    value = summary(log)["vitals_ok_before_dosing"].value
    assert value.startswith("Yes") and "not measured: RR" in value
