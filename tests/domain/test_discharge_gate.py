"""The discharge gate and the suicidality rules as pure functions of rows (no Qt, no database)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from kapmonitor.domain import discharge, discharge_gate, suicidality
from kapmonitor.domain.clock import to_iso
from kapmonitor.domain.questionnaires import load_questionnaires
from kapmonitor.paths import resources_dir
from tests.factories import T0, protocol

DOSE = T0 + timedelta(minutes=5)
NOW = DOSE + timedelta(minutes=125)
FULL = {"sbp": 120, "dbp": 78, "hr": 70, "spo2": 98, "rr": 14, "on_oxygen": 0}


def at(minutes: float) -> str:
    """ISO time ``minutes`` after the dose (negative before it)."""
    return to_iso(DOSE + timedelta(minutes=minutes))


def rows(**tables: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    base: dict[str, list[dict[str, Any]]] = {
        "doses": [{"id": 1, "observed_at": at(0)}],
        "vitals": [
            {"id": 1, "observed_at": at(-5), **FULL},
            {"id": 2, "observed_at": at(120), **FULL},
        ],
        "observations": [
            {"id": 1, "observed_at": at(-5), "moaas": 5, "dissociation": 0},
            {"id": 2, "observed_at": at(118), "moaas": 5, "dissociation": 0},
        ],
    }
    base.update(tables)
    return base


def gate(current: dict[str, list[dict[str, Any]]]) -> discharge_gate.Gate:
    return discharge_gate.evaluate(protocol("clinic-ketamine"), current, NOW)


def test_a_recovered_patient_passes() -> None:
    result = gate(rows())
    assert result.clear and result.complete_vitals
    assert result.fresh["moaas"] == 5 and result.fresh["sbp_baseline"] == 120


def test_the_window_edge_is_inclusive_and_one_minute_more_is_stale() -> None:
    # The last set is at minute 120, 5 min before NOW: move NOW to exactly 15 and 16 min after it.
    current = rows()
    edge = discharge_gate.evaluate(
        protocol("clinic-ketamine"), current, DOSE + timedelta(minutes=135)
    )
    assert not any("vitals set" in b for b in edge.blockers)
    late = discharge_gate.evaluate(
        protocol("clinic-ketamine"), current, DOSE + timedelta(minutes=136)
    )
    assert any(b.startswith("No complete vitals set") for b in late.blockers)
    assert late.fresh["sbp"] is None


def test_patients_own_pre_dose_dissociation_is_the_baseline() -> None:
    current = rows(
        observations=[
            {"id": 1, "observed_at": at(-5), "moaas": 5, "dissociation": 1},
            {"id": 2, "observed_at": at(118), "moaas": 5, "dissociation": 1},
        ]
    )
    assert gate(current).clear
    current["observations"][1]["dissociation"] = 2
    assert gate(current).blockers == (
        "Dissociation not back to baseline: latest Dissociation 2 (baseline 1)",
    )


def test_without_a_pre_dose_observation_the_scale_normal_is_the_baseline() -> None:
    current = rows(observations=[{"id": 2, "observed_at": at(118), "moaas": 4, "dissociation": 0}])
    assert gate(current).blockers == (
        "Sedation not back to baseline: latest MOAA/S 4 (baseline 5)",
    )


def test_an_hr_only_reading_is_not_a_vitals_set() -> None:
    current = rows(
        vitals=[
            {"id": 1, "observed_at": at(-5), **FULL},
            {
                "id": 2,
                "observed_at": at(120),
                "sbp": None,
                "dbp": None,
                "hr": 72,
                "spo2": None,
                "rr": None,
                "on_oxygen": 0,
            },
        ]
    )
    result = gate(current)
    assert not result.complete_vitals
    assert "SBP 120 was measured before the last dose: measure it again" in result.blockers
    assert discharge_gate.vitals_set_reason(15) in result.blockers


def test_readiness_lists_gate_blockers_first_and_once() -> None:
    blockers = ("Critical alarm not acknowledged (3 min ago): SpO₂ 88", "No complete vitals set x")
    state = discharge.readiness(None, {}, T0, NOW, 120, False, blockers)
    assert state.reasons[:2] == blockers
    assert discharge.VITALS_REASON not in state.reasons  # the gate already said it
    assert not state.ready


def test_home_refusals_need_a_ready_assessment_or_a_recent_override() -> None:
    proto = protocol("clinic-ketamine")
    current = rows()
    assert discharge_gate.home_refusals(proto, current, NOW) == (discharge_gate.NOT_ASSESSED_READY,)
    current["discharge_assessments"] = [
        {"observed_at": at(124), "ready": 1, "override_reason": None}
    ]
    assert discharge_gate.home_refusals(proto, current, NOW) == ()
    current["discharge_assessments"] = [
        {"observed_at": at(100), "ready": 0, "override_reason": "Reviewed by Dr A"}
    ]
    assert (
        "override is more than 15 min old" in discharge_gate.home_refusals(proto, current, NOW)[0]
    )
    current["discharge_assessments"][0]["observed_at"] = at(120)
    assert discharge_gate.home_refusals(proto, current, NOW) == ()


def test_item9_threshold_comes_from_the_questionnaire_file() -> None:
    phq9 = load_questionnaires([resources_dir() / "questionnaires"])["phq9"]
    answers = {f"q{i}": 0 for i in range(1, 10)}
    assert suicidality.safety_alarms(phq9, answers) == []
    (alarm,) = suicidality.safety_alarms(phq9, answers | {"q9": 1})
    assert (alarm.parameter, alarm.value, alarm.limit_text) == ("phq9_q9", 1, "≥ 1")
    assert alarm.message.startswith("PHQ-9 item 9")
    assert "C-SSRS" in alarm.source


def test_a_risk_assessment_needs_method_outcome_and_an_action() -> None:
    assert suicidality.assessment_problems(None)
    complete = {"method": "cssrs_screener", "outcome": "high", "actions": ["emergency_referral"]}
    assert suicidality.assessment_problems(complete) == []
    assert len(suicidality.assessment_problems(complete | {"actions": []})) == 1
    assert len(suicidality.assessment_problems(complete | {"outcome": "fine"})) == 1
    assert "Unknown action" in suicidality.assessment_problems(complete | {"actions": ["pray"]})[0]


def test_dosing_is_held_until_the_alarm_has_its_assessment() -> None:
    alarm = {
        "id": 7,
        "rule_id": suicidality.RULE_ID,
        "source_table": "questionnaire_responses",
        "source_id": 3,
        "value": 2.0,
        "parameter": "phq9_q9",
        "message": "PHQ-9 item 9 (thoughts …) answered 2: …",
    }
    current = {"alarms": [alarm], "alarm_acknowledgements": []}
    assert suicidality.dose_hold(current) == (
        "Dosing is held: PHQ-9 item 9 was answered 2; acknowledge the suicidality alarm with a "
        "documented risk assessment first"
    )
    current["alarm_acknowledgements"] = [{"alarm_id": 7, "risk_assessment": '{"outcome": "low"}'}]
    assert suicidality.dose_hold(current) is None
