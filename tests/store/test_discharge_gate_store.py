"""The discharge gate and the PHQ-9 item 9 rules, through the store the window uses (no Qt).

Each rule is proved both ways: refused (with its reason listed) and allowed once fixed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kapmonitor.domain import discharge_gate, suicidality
from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import (
    AdverseEvent,
    AdverseEventOutcome,
    AlarmAcknowledgement,
    Dose,
    Observation,
    QuestionnaireResponse,
    SessionEnd,
    VitalSigns,
)
from kapmonitor.domain.validation import ValidationError
from kapmonitor.store import verify
from kapmonitor.store.session_store import SessionStore
from tests.factories import T0, open_store, protocol, session_start

ASSESSMENT = {"method": "cssrs_screener", "outcome": "low", "actions": ["safety_plan"]}
FULL = {"sbp": 120, "dbp": 78, "hr": 70, "spo2": 98, "rr": 14}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> SessionStore:
    s = open_store(tmp_path / "g.sqlite", clock)
    yield s
    s.close()


def _start(store: SessionStore, clock: FakeClock) -> str:
    sid = store.start_session(session_start(clock), "Dr A", protocol=protocol("clinic-ketamine"))
    store.add(sid, VitalSigns(clock.now(), **FULL), "Dr A")
    store.add(sid, Observation(clock.now(), moaas=5, dissociation=0), "Dr A")
    clock.advance(minutes=5)
    store.add(sid, Dose("ketamine", "im", 35, clock.now()), "Dr A")
    return sid


def _gate(store: SessionStore, sid: str, clock: FakeClock) -> discharge_gate.Gate:
    return discharge_gate.evaluate(
        protocol("clinic-ketamine"), store.load(sid).current_rows(), clock.now()
    )


def _phq9(item9: int, clock: FakeClock) -> QuestionnaireResponse:
    answers = {f"q{i}": 1 for i in range(1, 9)} | {"q9": item9}
    return QuestionnaireResponse("phq9", "post", answers, clock.now(), total=8 + item9)


def test_recovered_patient_with_fresh_full_set_passes_the_gate(
    store: SessionStore, clock: FakeClock
) -> None:
    sid = _start(store, clock)
    clock.advance(minutes=120)
    store.add(sid, VitalSigns(clock.now(), **FULL), "Dr A")
    store.add(sid, Observation(clock.now(), moaas=5, dissociation=0), "Dr A")
    gate = _gate(store, sid, clock)
    assert gate.blockers == ()
    assert gate.fresh["sbp"] == 120 and gate.fresh["moaas"] == 5


def test_stale_and_pre_dose_values_are_listed_and_not_used(
    store: SessionStore, clock: FakeClock
) -> None:
    sid = _start(store, clock)
    clock.advance(minutes=20)
    store.add(sid, Observation(clock.now(), moaas=5, dissociation=0), "Dr A")
    clock.advance(minutes=95)  # the observation is 95 min old; vitals only pre-dose
    store.add(sid, VitalSigns(clock.now(), hr=72), "Dr A")  # an HR-only set
    gate = _gate(store, sid, clock)
    text = "\n".join(gate.blockers)
    assert "MOAA/S 5 is 95 min old (freshness window 15 min)" in text
    assert "SBP 120 was measured before the last dose" in text
    assert "No complete vitals set (BP, HR, SpO₂ and RR in one reading)" in text
    assert gate.fresh["sbp"] is None and gate.fresh["moaas"] is None
    assert gate.fresh["hr"] == 72  # the HR itself is fresh, but it is not a set
    ages = {i.code: i.age_minutes for i in gate.inputs}
    assert ages["moaas"] == pytest.approx(95)


def test_dissociation_not_back_to_baseline_blocks_then_clears(
    store: SessionStore, clock: FakeClock
) -> None:
    sid = _start(store, clock)
    clock.advance(minutes=120)
    store.add(sid, VitalSigns(clock.now(), **FULL), "Dr A")
    store.add(sid, Observation(clock.now(), moaas=5, dissociation=3), "Dr A")
    assert "Dissociation not back to baseline: latest Dissociation 3 (baseline 0)" in (
        _gate(store, sid, clock).blockers
    )
    clock.advance(minutes=5)
    store.add(sid, Observation(clock.now(), moaas=4, dissociation=0), "Dr A")
    assert _gate(store, sid, clock).blockers == (
        "Sedation not back to baseline: latest MOAA/S 4 (baseline 5)",
    )
    clock.advance(minutes=5)
    store.add(sid, Observation(clock.now(), moaas=5, dissociation=0), "Dr A")
    assert _gate(store, sid, clock).blockers == ()


def test_open_serious_event_and_critical_alarm_block_until_closed(
    store: SessionStore, clock: FakeClock
) -> None:
    sid = _start(store, clock)
    ae = store.add(
        sid,
        AdverseEvent(
            "hypertension", 4, clock.now(), serious=True, serious_criterion="life_threatening"
        ),
        "Dr A",
    ).primary_id
    clock.advance(minutes=120)
    store.add(sid, VitalSigns(clock.now(), **FULL), "Dr A")
    store.add(sid, Observation(clock.now(), moaas=5, dissociation=0), "Dr A")
    text = "\n".join(_gate(store, sid, clock).blockers)
    assert "Open adverse event" in text and "grade 4, serious" in text
    store.add(sid, AdverseEventOutcome(ae, "resolved", clock.now()), "Dr A")
    assert not any("Open adverse event" in b for b in _gate(store, sid, clock).blockers)
    for alarm in store.load(sid).active_alarms():  # e.g. the serious event's own alarm
        assert alarm["priority"] == "critical"
        assert "Critical alarm not acknowledged" in "\n".join(_gate(store, sid, clock).blockers)
        store.add(sid, AlarmAcknowledgement(alarm["id"], "physician_informed", clock.now()), "Dr A")
    assert _gate(store, sid, clock).blockers == ()


def test_item9_raises_critical_alarm_holds_dosing_and_needs_assessment(
    store: SessionStore, clock: FakeClock
) -> None:
    sid = _start(store, clock)
    clock.advance(minutes=10)
    store.add(sid, _phq9(3, clock), "Dr A")
    log = store.load(sid)
    alarm = next(a for a in log.current("alarms") if suicidality.is_safety_alarm(a))
    assert (alarm["priority"], alarm["parameter"], alarm["value"]) == ("critical", "phq9_q9", 3)
    # Dosing held, with the reason.
    with pytest.raises(ValidationError, match="Dosing is held: PHQ-9 item 9 was answered 3"):
        store.add(sid, Dose("ketamine", "im", 35, clock.now(), booster=True), "Dr A")
    # Acknowledgement without an assessment is refused; with one, accepted.
    with pytest.raises(ValidationError, match="Document the suicide risk assessment"):
        store.add(sid, AlarmAcknowledgement(alarm["id"], "physician_informed", clock.now()), "Dr A")
    with pytest.raises(ValidationError, match="outcome"):
        store.add(
            sid,
            AlarmAcknowledgement(
                alarm["id"],
                "physician_informed",
                clock.now(),
                risk_assessment={"method": "cssrs_screener", "actions": ["safety_plan"]},
            ),
            "Dr A",
        )
    assert "PHQ-9 item 9 positive" in "\n".join(_gate(store, sid, clock).blockers)
    store.add(
        sid,
        AlarmAcknowledgement(
            alarm["id"], "physician_informed", clock.now(), risk_assessment=ASSESSMENT
        ),
        "Dr A",
    )
    assert suicidality.dose_hold(store.load(sid).current_rows()) is None
    store.add(sid, Dose("ketamine", "im", 35, clock.now(), booster=True), "Dr A")
    assert not any("PHQ-9" in b for b in _gate(store, sid, clock).blockers)
    assert not verify.verify(store.db).problems


def test_item9_zero_raises_no_alarm(store: SessionStore, clock: FakeClock) -> None:
    sid = _start(store, clock)
    store.add(sid, _phq9(0, clock), "Dr A")
    assert not store.load(sid).current("alarms")


def test_ending_home_goes_through_the_gate(store: SessionStore, clock: FakeClock) -> None:
    from kapmonitor.domain import discharge_check

    sid = _start(store, clock)
    clock.advance(minutes=120)
    store.add(sid, VitalSigns(clock.now(), hr=70), "Dr A")
    end = SessionEnd("home_with_escort", clock.now(), escort="Partner", summary="Well")
    with pytest.raises(ValidationError) as refused:
        store.add(sid, end, "Dr A")
    messages = [e.message for e in refused.value.errors]
    assert discharge_gate.NOT_ASSESSED_READY in messages
    assert any("No complete vitals set" in m for m in messages)
    store.add(sid, VitalSigns(clock.now(), **FULL), "Dr A")
    store.add(sid, Observation(clock.now(), moaas=5, dissociation=0), "Dr A")
    rows = store.load(sid).current_rows()
    proto = protocol("clinic-ketamine")
    facts = discharge_check.discharge_facts(proto, rows, clock.now())
    judged = {
        c: discharge_check.best_points(proto.discharge_score, c)
        for c in discharge_check.judged_codes(proto.discharge_score)
    }
    check = discharge_check.assess(
        proto, facts, judged, {c: True for c, _ in discharge_check.discharge.CHECKLIST}, clock.now()
    )
    assert check.ready, check.reasons
    store.add(
        sid,
        discharge_check.assessment_record(
            check.score,
            {c: True for c, _ in discharge_check.discharge.CHECKLIST},
            check.readiness,
            clock.now(),
        ),
        "Dr A",
    )
    store.add(
        sid, SessionEnd("home_with_escort", clock.now(), escort="Partner", summary="Well"), "Dr A"
    )
