"""Every store write returns what its transaction wrote (``Changes``), exactly as stored.

The bedside shows a save from this value alone, so it must be the record: each row in it equals
the row a full load reads back, the derived NEWS2 score and alarms are in it, the first dose
carries the dosing phase the store adds (and a later dose does not), and nothing is read after
the commit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from kapmonitor.domain import dose_guards
from kapmonitor.domain.changes import Changes
from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import AlarmAcknowledgement, Dose, Observation, VitalSigns
from kapmonitor.domain.session_rows import (
    AlarmRow,
    PhaseChangeRow,
    VitalScoreRow,
    VitalsRow,
)
from kapmonitor.store.session_store import SessionStore
from tests.factories import T0, open_store, protocol, session_start

BASELINE = {"sbp": 120, "dbp": 78, "hr": 70, "spo2": 98, "rr": 14}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    s = open_store(tmp_path / "c.sqlite", clock)
    yield s
    s.close()


def _session(store: SessionStore, clock: FakeClock) -> str:
    return store.start_session(session_start(clock), "Dr A", protocol=protocol("esketamine-rems"))


def _stored(store: SessionStore, sid: str, table: str, row_id: int) -> dict:
    """The row exactly as SQLite holds it (not through the store's typed reads)."""
    return dict(
        next(
            store.db.query(f"SELECT * FROM {table} WHERE id = ? AND session_id = ?", [row_id, sid])
        )
    )


def test_vitals_change_holds_the_reading_and_its_score_exactly_as_stored(store, clock) -> None:
    sid = _session(store, clock)
    changes = store.add(sid, VitalSigns(clock.now(), **BASELINE), "Dr A")
    assert isinstance(changes, Changes)
    assert changes.session_id == sid and changes.action == "insert"
    assert changes.primary_table == "vitals"
    reading = changes.primary_row
    assert isinstance(reading, VitalsRow)
    assert reading.sbp == 120 and reading["sbp"] == 120
    assert dict(reading) == _stored(store, sid, "vitals", reading.id)
    [score] = changes.scores
    assert isinstance(score, VitalScoreRow) and score.vitals_id == reading.id
    assert dict(score) == _stored(store, sid, "vital_scores", score.id)
    assert changes.alarms_raised == ()  # a calm baseline raises nothing
    assert changes.phase is None


def test_an_alarm_is_in_the_change_of_the_reading_that_raised_it(store, clock) -> None:
    sid = _session(store, clock)
    store.add(sid, VitalSigns(clock.now(), **BASELINE), "Dr A")
    clock.advance(minutes=5)
    store.add(sid, Dose("esketamine", "intranasal", 56, clock.now()), "Dr A")
    clock.advance(minutes=10)
    changes = store.add(sid, VitalSigns(clock.now(), **{**BASELINE, "spo2": 85}), "Dr A")
    [alarm] = changes.alarms_raised
    assert isinstance(alarm, AlarmRow)
    assert alarm.source_table == "vitals" and alarm.source_id == changes.primary_id
    assert alarm.priority == "critical"
    assert dict(alarm) == _stored(store, sid, "alarms", alarm.id)
    # Acknowledging it clears it, and says which.
    clock.advance(minutes=1)
    ack = store.add(sid, AlarmAcknowledgement(alarm.id, "repositioned", clock.now()), "Dr A")
    assert ack.alarms_cleared == {alarm.id}
    assert ack.alarms_raised == ()


def test_the_first_dose_carries_the_dosing_phase_and_a_later_one_does_not(store, clock) -> None:
    sid = _session(store, clock)
    store.add(sid, VitalSigns(clock.now(), **BASELINE), "Dr A")
    clock.advance(minutes=5)
    first = store.add(sid, Dose("esketamine", "intranasal", 28, clock.now()), "Dr A")
    assert first.primary_table == "doses"
    [phase] = first.phase_changes
    assert isinstance(phase, PhaseChangeRow) and phase.phase == "dosing"
    assert first.phase == "dosing"
    assert first.dose_times == (clock.now(),)
    assert dict(phase) == _stored(store, sid, "phase_changes", phase.id)
    clock.advance(minutes=5)
    second = store.add(sid, Dose("esketamine", "intranasal", 28, clock.now()), "Dr A")
    assert second.phase_changes == () and second.phase is None


def test_a_correction_says_what_it_corrects_and_a_void_derives_nothing(store, clock) -> None:
    sid = _session(store, clock)
    original = store.add(sid, VitalSigns(clock.now(), **BASELINE), "Dr A")
    fixed = store.correct(
        sid, original.primary_id, VitalSigns(clock.now(), **{**BASELINE, "hr": 72}), "typo", "Dr A"
    )
    assert fixed.action == "correction" and fixed.corrects == original.primary_id
    assert fixed.primary_row["hr"] == 72 and len(fixed.scores) == 1  # scored again
    withdrawn = store.correct(
        sid,
        fixed.primary_id,
        VitalSigns(clock.now(), **BASELINE),
        "wrong patient",
        "Dr A",
        void=True,
    )
    assert withdrawn.primary_row.voided == 1
    assert withdrawn.derived == ()


def test_an_observation_without_protocol_derives_nothing(store, clock) -> None:
    sid = store.start_session(session_start(clock), "Dr A")
    changes = store.add(sid, Observation(clock.now(), moaas=2), "Dr A")
    assert changes.tables() == {"observations"}


def test_a_dose_deferral_is_an_audit_only_change(store, clock) -> None:
    sid = _session(store, clock)
    store.add(sid, VitalSigns(clock.now(), **{**BASELINE, "sbp": 150, "dbp": 92}), "Dr A")
    log = store.load(sid)
    review = dose_guards.review_dose(
        protocol("esketamine-rems"),
        log.current_rows(("vitals", "doses")),
        "esketamine",
        "intranasal",
        56,
        70,
        clock.now(),
    )
    assert review.bp is not None
    changes = store.record_dose_deferral(sid, review.bp, "Recheck after rest", "Dr A")
    assert changes.rows == () and changes.audit_actions == (dose_guards.BP_DEFER,)
    assert changes  # still something happened


def test_nothing_is_read_after_the_commit(store, clock) -> None:
    """The change is collected while writing (INSERT … RETURNING), not read back afterwards."""
    sid = _session(store, clock)
    statements: list[str] = []
    connection: sqlite3.Connection = store.db.conn
    connection.set_trace_callback(statements.append)
    try:
        store.add(sid, VitalSigns(clock.now(), **BASELINE), "Dr A")
    finally:
        connection.set_trace_callback(None)
    commit = max(i for i, s in enumerate(statements) if s.strip().upper().startswith("COMMIT"))
    assert statements[commit + 1 :] == []
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO VITALS")]
    assert inserts and all("RETURNING" in s.upper() for s in inserts)
