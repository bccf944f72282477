"""Alarm tiers, respiratory and serious adverse events, and checklist steps, through the store the
window and the scenario runner use (no Qt). Each rule is proved both ways.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kapmonitor.domain.checklists import AlarmChecklistStep
from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import AdverseEvent, Dose, VitalSigns
from kapmonitor.domain.validation import ValidationError
from kapmonitor.store import verify
from kapmonitor.store.session_store import SessionStore
from tests.factories import T0, open_store, protocol, session_start

BASELINE = {"sbp": 120, "dbp": 78, "hr": 70, "spo2": 98, "rr": 14}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> SessionStore:
    s = open_store(tmp_path / "t.sqlite", clock)
    yield s
    s.close()


def _dosed(store: SessionStore, clock: FakeClock, protocol_id: str = "esketamine-rems") -> str:
    sid = store.start_session(session_start(clock), "Dr A", protocol=protocol(protocol_id))
    store.add(sid, VitalSigns(clock.now(), **BASELINE), "Dr A")
    clock.advance(minutes=5)
    store.add(sid, Dose("esketamine", "intranasal", 56, clock.now()), "Dr A")
    clock.advance(minutes=10)
    return sid


def _alarms_of(store: SessionStore, sid: str, row_id: int, table: str = "vitals") -> list[dict]:
    return [
        a
        for a in store.load(sid).current("alarms")
        if a["source_table"] == table and a["source_id"] == row_id
    ]


def _vitals(store: SessionStore, sid: str, clock: FakeClock, **values: float) -> list[dict]:
    clock.advance(minutes=1)
    row_id = store.add(sid, VitalSigns(clock.now(), **values), "Dr A").primary_id
    return _alarms_of(store, sid, row_id)


def test_sbp_78_after_dosing_is_one_critical_hypotension_alarm(store, clock) -> None:
    sid = _dosed(store, clock)
    [alarm] = _vitals(store, sid, clock, sbp=78, dbp=45)
    assert (alarm["parameter"], alarm["priority"]) == ("sbp", "critical")
    assert alarm["message"].startswith("Hypotension: Systolic BP 78 mmHg ≤ 79 mmHg (critical)")
    assert "≥ 30 % below baseline (120 → ≤ 84 mmHg) (critical)" in alarm["message"]


def test_a_fall_of_20_percent_warns_and_19_does_not(store, clock) -> None:
    sid = _dosed(store, clock)
    [alarm] = _vitals(store, sid, clock, sbp=96, dbp=60)
    assert (alarm["rule_id"], alarm["priority"]) == ("sbp_fall", "warning")
    assert _vitals(store, sid, clock, sbp=97, dbp=60) == []


def test_apnoea_and_deep_desaturation_can_be_recorded_and_are_critical(store, clock) -> None:
    sid = _dosed(store, clock)
    alarms = _vitals(store, sid, clock, rr=0, spo2=30)
    by_parameter = {a["parameter"]: a for a in alarms}
    assert by_parameter["rr"]["rule_id"] == "rr_apnoea"
    assert by_parameter["rr"]["message"].startswith("Apnoea: Respiratory rate 0 /min")
    assert by_parameter["spo2"]["rule_id"] == "spo2_severe"
    assert {a["priority"] for a in alarms} == {"critical"}
    assert len(alarms) == 2  # one per vital, naming the other limits crossed


def test_below_the_widened_ranges_is_still_refused(store, clock) -> None:
    sid = _dosed(store, clock)
    with pytest.raises(ValidationError, match="SpO₂ 29 % is not possible: enter 30–100 %"):
        store.add(sid, VitalSigns(clock.now(), spo2=29), "Dr A")
    with pytest.raises(ValidationError, match="Respiratory rate -1 /min is not possible"):
        store.add(sid, VitalSigns(clock.now(), rr=-1), "Dr A")


def _ae(store: SessionStore, sid: str, clock: FakeClock, **fields: object) -> tuple[int, list]:
    clock.advance(minutes=1)
    row_id = store.add(sid, AdverseEvent(observed_at=clock.now(), **fields), "Dr A").primary_id
    return row_id, _alarms_of(store, sid, row_id, "adverse_events")


@pytest.mark.parametrize("term", ["apnoea", "laryngospasm", "respiratory_depression", "aspiration"])
def test_a_respiratory_adverse_event_raises_the_airway_alarm(store, clock, term: str) -> None:
    sid = _dosed(store, clock)
    _, [alarm] = _ae(store, sid, clock, term=term, grade=2)
    assert (alarm["rule_id"], alarm["parameter"], alarm["priority"]) == (
        "ae_respiratory",
        "airway",
        "critical",
    )
    assert alarm["message"].startswith("Respiratory adverse event: ")
    assert "airway checklist" in alarm["message"]


def test_a_non_serious_non_respiratory_event_raises_nothing(store, clock) -> None:
    sid = _dosed(store, clock)
    _, alarms = _ae(store, sid, clock, term="nausea", grade=3)
    assert alarms == []


def test_grade_4_refused_as_non_serious_and_raises_escalation_when_serious(store, clock) -> None:
    sid = _dosed(store, clock)
    with pytest.raises(ValidationError, match="Grade 4 is serious by definition"):
        store.add(sid, AdverseEvent("seizure", 4, clock.now()), "Dr A")
    with pytest.raises(ValidationError, match="Grade 5 is serious by definition"):
        store.add(sid, AdverseEvent("seizure", 5, clock.now()), "Dr A")
    assert store.load(sid).current("adverse_events") == []
    _, [alarm] = _ae(
        store, sid, clock, term="seizure", grade=4, serious=True,
        serious_criterion="life_threatening",
    )  # fmt: skip
    assert (alarm["rule_id"], alarm["parameter"], alarm["priority"]) == (
        "ae_serious",
        "sae",
        "critical",
    )
    assert alarm["message"] == (
        "Serious adverse event: Seizure / tonic-clonic movements (grade 4; serious: "
        "Life-threatening); "
        "escalation checklist (critical)"
    )


def test_a_serious_laryngospasm_raises_both_alarms(store, clock) -> None:
    sid = _dosed(store, clock)
    _, alarms = _ae(
        store, sid, clock, term="laryngospasm", grade=4, serious=True,
        serious_criterion="life_threatening",
    )  # fmt: skip
    assert sorted(a["rule_id"] for a in alarms) == ["ae_respiratory", "ae_serious"]


def test_checklist_steps_are_recorded_once_with_time_and_who_and_append_only(
    store, clock, tmp_path
) -> None:
    sid = _dosed(store, clock)
    _, [alarm] = _ae(
        store, sid, clock, term="seizure", grade=5, serious=True, serious_criterion="death"
    )
    clock.advance(minutes=1)
    step = AlarmChecklistStep(alarm["id"], "sae_escalation", "stop_dosing", clock.now())
    store.add(sid, step, "Nurse B")
    with pytest.raises(ValidationError, match="already ticked"):
        store.add(sid, step, "Dr A")
    with pytest.raises(ValidationError, match="unknown step"):
        store.add(sid, AlarmChecklistStep(alarm["id"], "sae_escalation", "x", clock.now()), "Dr A")
    [row] = store.load(sid).current("alarm_checklist_steps")
    assert (row["step"], row["recorded_by"], row["observed_at"]) == (
        "stop_dosing",
        "Nurse B",
        "2026-03-02T09:17:00.000Z",
    )
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute("UPDATE alarm_checklist_steps SET step = 'report'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute("DELETE FROM alarm_checklist_steps")
    audited = store.db.execute(
        "SELECT count(*) FROM audit WHERE table_name = 'alarm_checklist_steps'"
    ).fetchone()[0]
    assert audited == 1
    assert verify.verify(store.db).ok
