"""The runner reports what the app did: committed or refused with the store's words, the alarms
a step raised, NEWS2, and the discharge verdict from the discharge dialog's own code."""

from __future__ import annotations

from typing import Any

from kapmonitor.scenario import runner
from kapmonitor.scenario.reader import parse

BASELINE = {"at": -10, "vitals": {"sbp": 124, "dbp": 78, "hr": 72, "spo2": 98, "rr": 14}}
DOSE = {"at": 0, "dose": {"drug": "esketamine", "route": "intranasal", "mg": 56}}


def run(steps: list[dict[str, Any]], **top: Any) -> runner.Run:
    return runner.run(parse({"protocol": "esketamine-rems", "steps": steps, **top}))


def test_a_refused_step_carries_the_store_s_reason_and_the_run_goes_on() -> None:
    result = run([{**DOSE, "at": -5}, {**BASELINE, "at": -4}, DOSE])
    first, second, third = result.lines
    assert first["result"] == "refused"
    assert any("baseline" in reason for reason in first["reasons"])
    assert second["result"] == third["result"] == "committed"
    assert result.ok  # no expectation, nothing failed


def test_an_unmet_expectation_fails_the_run_and_says_what_differed() -> None:
    result = run([{**DOSE, "expect": {"result": "committed"}}])
    assert not result.ok
    assert result.lines[0]["expect"].startswith("failed: result refused, expected committed")


def test_alarms_are_those_the_step_raised_only() -> None:
    high = {"sbp": 185, "dbp": 100, "hr": 80, "spo2": 97, "rr": 14}
    result = run([BASELINE, DOSE, {"at": 40, "vitals": high}, {"at": 45, "note": "calm"}])
    assert {"parameter": "sbp", "priority": "critical", "rule": "sbp_high_critical"} in (
        result.lines[2]["alarms"]
    )
    assert result.lines[3]["alarms"] == []


def test_news2_comes_from_the_stored_score_of_the_vitals_step() -> None:
    full = {"sbp": 124, "dbp": 78, "hr": 72, "spo2": 98, "rr": 14, "temp_c": 36.8}
    result = run([{"at": -12, "observation": {"moaas": 5}}, {"at": -10, "vitals": full}])
    assert result.lines[0]["news2"] is None
    assert result.lines[1]["news2"]["total"] == 0
    assert result.lines[1]["news2"]["band"] == "routine"  # NEWS2 0: routine monitoring
    assert "missing" not in result.lines[1]["news2"]


def test_discharge_check_uses_the_dialog_s_verdict_and_records_it() -> None:
    late = {"at": 118, "vitals": {"sbp": 124, "dbp": 78, "hr": 72, "spo2": 98, "rr": 14}}
    early = run([BASELINE, DOSE, {"at": 60, "discharge_check": {}}])
    line = early.lines[-1]
    assert line["result"] == "committed" and line["ready"] is False
    assert any("of the required 120 min" in b for b in line["blockers"])
    judged = run(
        [
            BASELINE,
            DOSE,
            {"at": 60, "observation": {"moaas": 5, "dissociation": 0}},
            late,
            {"at": 125, "discharge_check": {"assessment": {"activity": 0}, "record": False}},
        ]
    )
    line = judged.lines[-1]
    assert line["ready"] is False
    assert any("below the pass mark" in b for b in line["blockers"])


def test_going_home_needs_a_cleared_check_and_an_override_clears_it() -> None:
    result = run(
        [
            BASELINE,
            DOSE,
            {"at": 60, "discharge_check": {"override": "Reviewed by Dr A; escort waiting"}},
            {"at": 61, "end": {"disposition": "home_with_escort"}},
        ]
    )
    check, end = result.lines[-2:]
    assert check["ready"] is False and check["cleared"] is True
    assert end["result"] == "committed"


def test_acknowledge_with_nothing_active_is_refused() -> None:
    result = run([BASELINE, {"at": -5, "acknowledge": "all"}])
    assert result.lines[1]["result"] == "refused"
    assert result.lines[1]["reasons"] == ["No active alarm to acknowledge"]


def test_a_session_that_cannot_start_is_reported_not_raised() -> None:
    result = run([BASELINE], patient={"code": "x"})
    assert result.setup_error.startswith("the session could not be started")
    assert not result.ok


def test_acknowledge_passes_the_risk_assessment_the_alarm_needs() -> None:
    phq9 = {"at": -5, "questionnaire": {"id": "phq9", "answers": [1, 1, 1, 1, 1, 1, 1, 1, 2]}}
    assessment = {"method": "cssrs_screener", "outcome": "low", "actions": ["safety_plan"]}
    result = run(
        [BASELINE, phq9, {"at": -4, "acknowledge": "all"},
         {"at": -3, "acknowledge": {"parameter": "phq9_q9", "risk_assessment": assessment}}]
    )  # fmt: skip
    raised, bare, documented = result.lines[1:]
    assert {a["priority"] for a in raised["alarms"]} == {"critical"}
    assert bare["result"] == "refused"
    assert any("risk assessment" in reason for reason in bare["reasons"])
    assert documented["result"] == "committed", documented["reasons"]


def test_a_start_step_can_be_refused_and_then_nothing_else_runs() -> None:
    screen = {"rems": {"contraindications": {"arteriovenous_malformation": True}}}
    result = run(
        [{"at": -15, "start": screen, "expect": {"result": "refused"}}, BASELINE,
         {**DOSE, "expect": {"result": "committed"}}]
    )  # fmt: skip
    start, vitals, dose = result.lines
    assert start["result"] == "refused" and start["expect"] == "met"
    assert any("contraindicated" in reason for reason in start["reasons"])
    assert vitals["result"] == "refused"
    assert vitals["reasons"] == ["The session was not started (its start step was refused)"]
    assert dose["expect"].startswith("failed: result refused")


def test_an_explicit_start_with_the_screen_answered_no_starts_the_session() -> None:
    result = run([{"at": -15, "start": {"rems": {"first_treatment": True}}}, BASELINE, DOSE])
    assert [line["result"] for line in result.lines] == ["committed"] * 3
