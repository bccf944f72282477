"""The REMS monitoring form from a synthetic esketamine session (Spravato REMS): every field is
filled when the log holds the data, each gap says why, and the dose reads 56, 84 or other."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kapmonitor.domain import discharge
from kapmonitor.domain.clock import to_iso
from kapmonitor.domain.protocol import Protocol, load_protocols
from kapmonitor.domain.rems import (
    RemsDefaultsError,
    RemsField,
    RemsStart,
    default_rems_defaults,
    fit_apart_from_minimum,
    parse_rems_defaults,
    rems_summary,
    submission_status,
)

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
PROTOCOL = load_protocols([RESOURCES / "protocols"]).protocols["esketamine-rems"]

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
    "first_treatment",
    "concomitant_benzodiazepines",
    "concomitant_sedative_hypnotics",
    "concomitant_psychostimulants",
    "concomitant_maois",
    "concomitant_opioids",
    "monitoring_clinician",
    "clinician_phone",
    "clinician_email",
    "setting",
    "setting_address",
    "treatment_date",
    "dose",
    "lot_number",
    "total_minutes",
    "minutes_until_ready",
    "minimum_stay_met",
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
        "rems_session_details": [
            row(
                -20,
                first_treatment=1,
                clinician_phone="+1 555 0100",
                clinician_email="dr.a@clinic.example",
                setting_name="Clinic room 2 (healthcare setting)",
                setting_address="1 Main St, Springfield",
                contraindications=json.dumps({}),
            )
        ],
        "discharge_assessments": [
            assessment(80, False, "Aldrete score 8/10 is below the pass mark 9"),
            assessment(95, False, "Monitored 95 min of the required 120 min since the first dose"),
            assessment(121, True),
        ],
    }


def assessment(minute: float, ready: bool, *reasons: str) -> dict[str, Any]:
    return row(minute, ready=int(ready), reasons=json.dumps(list(reasons)))


def summary(
    current: dict[str, list[dict[str, Any]]] | None = None,
    *,
    sess: dict[str, Any] | None = None,
    clinicians: list[str] | None = None,
    ready: datetime | None = DOSE + timedelta(minutes=95),
    end: datetime | None = None,
    setting: str = "Clinic room 2 (healthcare setting)",
    protocol: Protocol | None = None,
) -> dict[str, RemsField]:
    fields = rems_summary(
        sess or session(),
        ["Dr A", "Nurse B"] if clinicians is None else clinicians,
        full_log() if current is None else current,
        ready,
        end,
        setting,
        protocol=protocol,
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
    assert form["minutes_until_ready"].value.startswith("95 min (first discharge assessment")
    assert form["minimum_stay_met"].value.startswith("Yes — 125 min of the minimum 120 min")
    assert form["first_treatment"].value == "Yes"
    assert form["clinician_phone"].value == "+1 555 0100"
    assert form["clinician_email"].value == "dr.a@clinic.example"
    assert form["setting_address"].value == "1 Main St, Springfield"
    assert form["bp_before_dosing"].value.startswith("128/80 mmHg")
    assert "5 min before the first dose" in form["bp_before_dosing"].value
    assert form["bp_at_40_min"].value == "150/95 mmHg at minute 38"
    assert form["bp_before_end"].value.startswith("130/82 mmHg at minute 118")
    assert "7 min before the end" in form["bp_before_end"].value
    assert form["vitals_ok_before_dosing"].value.startswith("Yes")
    assert "BP 128/80 mmHg not above 140/90" in form["vitals_ok_before_dosing"].value
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


@pytest.mark.parametrize(
    ("minute", "found"), [(35, True), (45, True), (34, False), (46, False), (49, False)]
)
def test_bp_at_40_within_the_protocol_window(minute: float, found: bool) -> None:
    log = full_log()
    log["vitals"] = [vitals(-5, 128, 80), vitals(minute, 150, 95), vitals(118, 130, 82)]
    field = summary(log, protocol=PROTOCOL)["bp_at_40_min"]
    assert field.filled is found
    if found:
        assert field.value == f"150/95 mmHg at minute {minute}"
    else:
        assert field.why_missing.startswith("no BP recorded within 5 min of minute 40 (")
        assert "Spravato REMS" in field.why_missing  # the checkpoint's own source


def test_bp_at_40_follows_a_clinic_window() -> None:
    wider = dataclasses.replace(
        PROTOCOL,
        checkpoints=tuple(dataclasses.replace(c, window_minutes=10) for c in PROTOCOL.checkpoints),
    )
    log = full_log()
    log["vitals"] = [vitals(-5, 128, 80), vitals(49, 150, 95), vitals(118, 130, 82)]
    assert not summary(log, protocol=PROTOCOL)["bp_at_40_min"].filled
    assert summary(log, protocol=wider)["bp_at_40_min"].value == "150/95 mmHg at minute 49"


def test_an_hr_only_reading_at_40_is_not_the_bp_check() -> None:
    log = full_log()
    log["vitals"] = [vitals(-5, 128, 80), vitals(40, None, None, hr=90), vitals(118, 130, 82)]
    assert not summary(log, protocol=PROTOCOL)["bp_at_40_min"].filled


def test_bp_at_40_takes_the_closest_reading() -> None:
    log = full_log()
    log["vitals"] = [vitals(33, 140, 90), vitals(43, 152, 96), vitals(48, 150, 94)]
    assert summary(log)["bp_at_40_min"].value == "152/96 mmHg at minute 43"


def test_vitals_not_acceptable_names_the_crossing() -> None:
    log = full_log()
    log["vitals"] = [vitals(-5, 182, 96, hr=72), vitals(118, 130, 82, spo2=91)]
    form = summary(log)
    pre, end = form["vitals_ok_before_dosing"], form["vitals_ok_before_end"]
    assert pre.filled and pre.value.startswith("No — BP 182/96 mmHg is above 140/90")
    assert end.value.startswith("No — SpO₂ 91 outside ≥ 92")


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        ({"hr": 49}, "HR 49 outside 50–110"),
        ({"hr": 111}, "HR 111 outside 50–110"),
        ({"rr": 9}, "RR 9 outside 10–24"),
        ({"rr": 25}, "RR 25 outside 10–24"),
        ({"dbp": 91}, "BP 140/91 mmHg is above 140/90"),
        ({"sbp": 141}, "BP 141/90 mmHg is above 140/90"),
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
        vitals(-5, 140, 90, hr=110, spo2=92, rr=24),
        vitals(100, 150, 90, hr=50, rr=10),
    ]
    form = summary(log)
    assert form["vitals_ok_before_dosing"].value.startswith("Yes")
    assert form["vitals_ok_before_end"].value.startswith("Yes")


def test_no_sedation_dissociation_or_respiratory_depression() -> None:
    log = full_log()
    log["observations"] = [observation(30, moaas=5, rass=0, dissociation=0)]
    form = summary(log)
    assert form["sedation"].value.startswith("No — lowest MOAA/S 5, lowest RASS 0")
    assert form["dissociation"].value.startswith("No")


def test_moaas_4_after_dosing_is_sedation() -> None:
    log = full_log()
    log["observations"] = [observation(30, moaas=4, rass=0, dissociation=0)]
    field = summary(log)["sedation"]
    assert field.value.startswith("Yes — MOAA/S 4 at minute 30")
    assert "MOAA/S below 5" in field.value


def test_moaas_4_before_dosing_only_is_not_sedation() -> None:
    log = full_log()
    log["observations"] = [observation(-10, moaas=4), observation(30, moaas=5, rass=0)]
    assert summary(log)["sedation"].value.startswith("No — lowest MOAA/S 5")


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
    log["vitals"] = [vitals(-5, 128, 80), vitals(118, 128, 80, rr=None)]
    value = summary(log)["vitals_ok_before_end"].value
    assert value.startswith("Yes") and "not measured: RR" in value


# --- the corrections of issue 10 (item 7), one field at a time -------------------------------


def test_172_over_104_before_dosing_is_not_acceptable_without_a_decision() -> None:
    log = full_log()
    log["vitals"] = [vitals(-5, 172, 104), vitals(118, 130, 82)]
    value = summary(log, protocol=PROTOCOL)["vitals_ok_before_dosing"].value
    assert value.startswith("No — BP 172/104 mmHg is above 140/90 and no decision to proceed")
    assert "prescribing information §5.6" in value  # the guide's source, named


def test_above_the_guide_with_a_documented_decision_is_acceptable_after_it() -> None:
    log = full_log()
    log["vitals"] = [vitals(-5, 172, 104), vitals(118, 130, 82)]
    log["bp_decisions"] = [
        row(-3, decision="proceed", reason="anxious; repeat BP 150/92", recorded_by="Dr A")
    ]
    value = summary(log, protocol=PROTOCOL)["vitals_ok_before_dosing"].value
    assert value.startswith("Yes — acceptable after clinician decision: BP 172/104 mmHg")
    assert "Dr A decided to proceed at minute -3: anxious; repeat BP 150/92" in value


def test_a_deferral_or_a_decision_after_the_dose_does_not_make_it_acceptable() -> None:
    log = full_log()
    log["vitals"] = [vitals(-5, 172, 104), vitals(118, 130, 82)]
    log["bp_decisions"] = [
        row(-3, decision="defer", reason="recheck", recorded_by="Dr A"),
        row(2, decision="proceed", reason="late", recorded_by="Dr A"),
    ]
    assert summary(log)["vitals_ok_before_dosing"].value.startswith("No — BP 172/104")


def test_pre_dose_hr_is_judged_by_the_protocols_limits() -> None:
    log = full_log()
    log["vitals"] = [vitals(-5, 128, 80, hr=118), vitals(118, 130, 82)]
    value = summary(log, protocol=PROTOCOL)["vitals_ok_before_dosing"].value
    assert value.startswith("No — Heart rate 118 /min ≥ 111 /min (warning)")


def test_before_the_end_is_judged_by_the_protocols_limits() -> None:
    log = full_log()
    log["vitals"] = [vitals(-5, 128, 80), vitals(118, 172, 96)]
    value = summary(log, protocol=PROTOCOL)["vitals_ok_before_end"].value
    assert value.startswith("No — Systolic BP 172 mmHg ≥ baseline + 40 mmHg")


def test_fit_at_60_minutes_is_reported_as_60_apart_from_the_2_hour_minimum() -> None:
    log = full_log()
    log["discharge_assessments"] = [
        assessment(45, False, "Aldrete score 8/10 is below the pass mark 9"),
        assessment(60, False, "Monitored 60 min of the required 120 min since the first dose"),
        assessment(121, True),
    ]
    form = summary(log, protocol=PROTOCOL, ready=DOSE + timedelta(minutes=121))
    assert form["minutes_until_ready"].value.startswith("60 min")
    assert form["minimum_stay_met"].value.startswith("Yes — 125 min of the minimum 120 min")


def test_not_fit_before_the_end_leaves_ready_unfilled_and_says_why() -> None:
    log = full_log()
    log["discharge_assessments"] = [assessment(100, False, "Checklist: escort not confirmed")]
    field = summary(log)["minutes_until_ready"]
    assert not field.filled and "apart from the 2-hour minimum" in field.why_missing


def test_stopped_before_the_minimum_says_no() -> None:
    form = summary(end=DOSE + timedelta(minutes=100), protocol=PROTOCOL)
    assert form["minimum_stay_met"].value.startswith("No — 100 min of the minimum 120 min")


def test_the_discharge_rules_own_time_reason_is_recognised() -> None:
    state = discharge.readiness(None, {}, DOSE, DOSE + timedelta(minutes=60), 120, True)
    time_reason = state.reasons[0]
    assert time_reason.startswith("Monitored 60 min")
    assert fit_apart_from_minimum({"ready": 0, "reasons": json.dumps([time_reason])})
    assert not fit_apart_from_minimum({"ready": 0, "reasons": json.dumps(list(state.reasons))})


@pytest.mark.parametrize(("age", "flagged"), [(15, False), (16, True), (60, True)])
def test_a_before_the_end_bp_older_than_the_freshness_window_is_flagged(
    age: int, flagged: bool
) -> None:
    log = full_log()
    log["vitals"] = [vitals(-5, 128, 80), vitals(125 - age, 130, 82)]
    form = summary(log, protocol=PROTOCOL)
    assert bool(form["bp_before_end"].flag) is flagged
    assert bool(form["vitals_ok_before_end"].flag) is flagged
    if flagged:
        assert f"taken {age} min before the end" in form["bp_before_end"].flag
        assert "15-min freshness window" in form["bp_before_end"].flag


def test_session_details_missing_say_so() -> None:
    log = full_log()
    log["rems_session_details"] = []
    form = summary(log, setting="")
    for key in ("first_treatment", "clinician_phone", "clinician_email", "setting_address"):
        assert not form[key].filled
        assert form[key].why_missing == "not recorded when the esketamine session started"
    assert not form["setting"].filled


def test_first_treatment_no() -> None:
    log = full_log()
    log["rems_session_details"][0]["first_treatment"] = 0
    assert summary(log)["first_treatment"].value == "No"


def test_the_sessions_setting_wins_over_the_laptops_free_text() -> None:
    assert summary(setting="Old laptop value")["setting"].value.startswith("Clinic room 2")
    log = full_log()
    log["rems_session_details"] = []
    assert summary(log, setting="Old laptop value")["setting"].value == "Old laptop value"


# --- contraindication screen and the start fields --------------------------------------------

CODES = [c.code for c in default_rems_defaults().contraindications]


def start(**changes: Any) -> RemsStart:
    base: dict[str, Any] = {
        "first_treatment": True,
        "clinician_phone": "+1 555 0100",
        "clinician_email": "dr.a@clinic.example",
        "setting_name": "Clinic room 2",
        "setting_address": "1 Main St",
        "contraindications": dict.fromkeys(CODES, False),
    }
    return RemsStart(**(base | changes))


def test_screen_lists_the_labels_contraindications() -> None:
    labels = " ".join(c.label for c in default_rems_defaults().contraindications)
    for words in (
        "Aneurysmal vascular disease",
        "thoracic and abdominal aorta, intracranial and peripheral arterial",
        "Arteriovenous malformation",
        "intracerebral haemorrhage",
        "Hypersensitivity to esketamine, ketamine",
    ):
        assert words in labels


def test_all_answered_no_allows_the_start() -> None:
    assert start().problems() == []


@pytest.mark.parametrize("code", CODES)
def test_a_yes_refuses_the_start_with_the_reason(code: str) -> None:
    answers = dict.fromkeys(CODES, False) | {code: True}
    problems = start(contraindications=answers).problems()
    assert [p.field for p in problems] == ["rems_contraindications"]
    assert "Esketamine is contraindicated" in problems[0].message
    assert "cannot start" in problems[0].message
    assert "§4 Contraindications" in problems[0].message


def test_an_unanswered_item_refuses_the_start() -> None:
    answers = dict.fromkeys(CODES, False) | {"arteriovenous_malformation": None}
    problems = start(contraindications=answers).problems()
    assert len(problems) == 1
    assert "answer every item" in problems[0].message
    assert "Arteriovenous malformation" in problems[0].message


def test_start_fields_are_required() -> None:
    problems = start(
        first_treatment=None,
        clinician_phone=" ",
        clinician_email="not-an-address",
        setting_name="",
        setting_address="",
    ).problems()
    assert [p.field for p in problems] == [
        "rems_first_treatment",
        "rems_phone",
        "rems_email",
        "rems_setting",
        "rems_address",
    ]


# --- the 7-day submission --------------------------------------------------------------------


def test_due_seven_days_after_the_treatment_and_overdue_after() -> None:
    status = submission_status(DOSE, [], date(2026, 3, 9))
    assert status.due == date(2026, 3, 9)
    assert not status.overdue
    assert status.text() == "REMS due 2026-03-09 — not submitted"
    assert "within 7 days" in status.source
    late = submission_status(DOSE, [], date(2026, 3, 10))
    assert late.overdue and late.text() == "REMS due 2026-03-09 — OVERDUE, not submitted"


def test_submitted_by_whom_and_when() -> None:
    sub = row(0, submitted_by="Dr A")
    sub["observed_at"] = to_iso(datetime(2026, 3, 5, 12, 0, tzinfo=UTC))
    status = submission_status(DOSE, [sub], date(2026, 4, 1))
    assert not status.overdue
    assert status.text() == "REMS due 2026-03-09 / submitted by Dr A on 2026-03-05"


def test_defaults_without_a_source_are_refused() -> None:
    data = json.loads((RESOURCES / "rems.json").read_text(encoding="utf-8"))
    assert parse_rems_defaults(data, "rems.json").submission_due_days == 7
    del data["submission_due_days"]["source"]
    with pytest.raises(RemsDefaultsError, match="submission_due_days"):
        parse_rems_defaults(data, "rems.json")
