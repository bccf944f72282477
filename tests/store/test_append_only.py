"""The database itself refuses to alter or delete clinical rows; corrections are new rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import (
    AdverseEvent,
    AdverseEventOutcome,
    AlarmAcknowledgement,
    DischargeAssessment,
    Dose,
    Intervention,
    Observation,
    Override,
    QuestionnaireResponse,
    SessionEnd,
    VitalSigns,
)
from kapmonitor.domain.session_rows import VitalsRow
from kapmonitor.domain.validation import ValidationError
from kapmonitor.store.schema import CLINICAL_TABLES
from tests.factories import T0, open_store, protocol, session_start


@pytest.fixture
def filled(tmp_path: Path):
    clock = FakeClock(T0)
    store = open_store(tmp_path / "s.sqlite", clock)
    sid = store.start_session(session_start(clock), "Dr A", protocol=protocol("clinic-ketamine"))
    clock.advance(minutes=5)
    store.add(sid, QuestionnaireResponse("phq9", "pre", {"q1": 1}, clock.now()), "Dr A")
    store.add(sid, Override("dose_without_baseline", "monitor failed", clock.now()), "Dr A")
    store.add(sid, Dose("ketamine", "im", 50, clock.now()), "Nurse B")
    store.add(sid, VitalSigns(clock.now(), hr=70, sbp=120, dbp=80, spo2=88, rr=14), "Dr A")
    alarm = store.load(sid).active_alarms()[0]
    store.add(sid, AlarmAcknowledgement(alarm["id"], "oxygen", clock.now()), "Dr A")
    store.add(sid, Observation(clock.now(), moaas=5, dissociation=0), "Nurse B")  # recovered
    ae = store.add(sid, AdverseEvent("nausea", 1, clock.now()), "Nurse B").primary_id
    store.add(sid, AdverseEventOutcome(ae, "resolved", clock.now()), "Nurse B")
    store.add(sid, Intervention("note", clock.now(), detail="calm"), "Dr A")
    yield store, sid, clock
    store.close()


@pytest.mark.parametrize("table", CLINICAL_TABLES)
def test_update_and_delete_are_refused_by_sqlite(filled, table: str) -> None:
    store, sid, clock = filled
    assessment = DischargeAssessment(
        "aldrete", 10, 10, 9, True, (), {}, True, (), clock.now(), override_reason=""
    )
    store.add(sid, assessment, "Dr A")
    store.add(
        sid, SessionEnd("home_with_escort", clock.now(), escort="Sister", summary="ok"), "Dr A"
    )
    assert store.db[table].count > 0
    path = store.path
    raw = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute(f"UPDATE {table} SET recorded_by = 'someone else'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute(f"DELETE FROM {table}")
    finally:
        raw.close()


def test_every_row_has_both_times_and_recorder(filled) -> None:
    store, _sid, _clock = filled
    for table in CLINICAL_TABLES:
        for row in store.db.query(f"SELECT observed_at, recorded_at, recorded_by FROM {table}"):
            assert row["observed_at"].endswith("Z") and row["recorded_at"].endswith("Z")
            assert row["recorded_by"].strip()


def test_correction_keeps_the_original(filled) -> None:
    store, sid, clock = filled
    original = store.load(sid).current("vitals")[0]
    clock.advance(minutes=1)
    new_id = store.correct(
        sid,
        original["id"],
        VitalSigns(clock.now(), hr=75, sbp=120, dbp=80, spo2=98, rr=14),
        "HR misread from the monitor",
        "Nurse B",
    ).primary_id
    log = store.load(sid)
    assert [r.id for r in log.rows["vitals"]] == [original.id, new_id]
    assert log.current_of(VitalsRow) == [log.rows["vitals"][1]]
    assert log.rows["vitals"][0].hr == 70  # untouched
    current = log.current_of(VitalsRow)
    assert len(current) == 1 and current[0].hr == 75
    assert current[0]["supersedes_id"] == original["id"]
    assert current[0]["correction_reason"] == "HR misread from the monitor"
    assert current[0]["recorded_by"] == "Nurse B"


def test_correction_needs_reason_and_cannot_fork(filled) -> None:
    store, sid, clock = filled
    original = store.load(sid).current("vitals")[0]
    with pytest.raises(ValidationError, match="reason"):
        store.correct(sid, original["id"], VitalSigns(clock.now(), hr=71), " ", "Dr A")
    store.correct(sid, original["id"], VitalSigns(clock.now(), hr=71), "typo", "Dr A")
    with pytest.raises(ValidationError, match="already corrected"):
        store.correct(sid, original["id"], VitalSigns(clock.now(), hr=72), "typo", "Dr A")


def test_void_withdraws_an_entry(filled) -> None:
    store, sid, clock = filled
    obs = store.load(sid).current("observations")[0]
    store.correct(
        sid, obs["id"], Observation(clock.now(), moaas=4), "wrong patient", "Dr A", void=True
    )
    assert store.load(sid).current("observations") == []


def test_first_dose_moves_phase_to_dosing(filled) -> None:
    store, sid, _clock = filled
    assert [r["phase"] for r in store.load(sid).rows["phase_changes"]] == ["preparation", "dosing"]
    assert store.load(sid).phase() == "dosing"


def test_dose_mg_per_kg_and_cumulative(filled) -> None:
    store, sid, clock = filled
    store.add(sid, Dose("ketamine", "im", 20, clock.now(), booster=True), "Dr A")
    log = store.load(sid)
    assert [r["dose_mg_per_kg"] for r in log.current("doses")] == [
        round(50 / 70, 3),
        round(20 / 70, 3),
    ]
    assert log.cumulative_dose_mg() == 70


def test_recorder_required(filled) -> None:
    store, sid, clock = filled
    with pytest.raises(ValidationError, match="who is recording"):
        store.add(sid, VitalSigns(clock.now(), hr=70), "")
