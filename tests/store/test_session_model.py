"""The session model (no Qt): loaded once, kept current by each write's Changes, it must answer
exactly what a fresh load of the database answers, and tell its listeners what changed."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from kapmonitor.domain.changes import Changes
from kapmonitor.domain.chart_picture import picture_of
from kapmonitor.domain.clock import FakeClock, from_iso
from kapmonitor.domain.records import (
    AlarmAcknowledgement,
    Dose,
    Observation,
    PhaseChange,
    VitalSigns,
)
from kapmonitor.domain.session_rows import VitalsRow
from kapmonitor.store.session_model import SessionModel
from kapmonitor.store.session_store import SessionStore
from tests.factories import T0, open_store, protocol, session_start

BASELINE = {"sbp": 120, "dbp": 78, "hr": 70, "spo2": 98, "rr": 14}
TABLES = ("vitals", "observations", "doses", "alarms", "alarm_acknowledgements", "phase_changes")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    s = open_store(tmp_path / "m.sqlite", clock)
    yield s
    s.close()


def _same_as_a_fresh_load(model: SessionModel, store: SessionStore) -> None:
    fresh = SessionModel.load(store, model.id)
    for table in TABLES:
        assert [dict(r) for r in model.current(table)] == [dict(r) for r in fresh.current(table)]
    assert model.phase() == fresh.phase()
    assert model.first_dose_at() == fresh.first_dose_at()
    assert model.vitals_times() == fresh.vitals_times()
    assert model.latest_values() == fresh.latest_values()
    assert [a["id"] for a in model.active_alarms()] == [a["id"] for a in fresh.active_alarms()]
    assert model.latest_news2() == fresh.latest_news2()


def test_applying_each_change_keeps_the_model_equal_to_the_database(store, clock) -> None:
    sid = store.start_session(session_start(clock), "Dr A", protocol=protocol("esketamine-rems"))
    model = SessionModel.load(store, sid)
    heard: list[Changes] = []
    model.subscribe(heard.append)

    def write(changes: Changes) -> Changes:
        model.apply(changes)
        _same_as_a_fresh_load(model, store)
        return changes

    write(store.add(sid, VitalSigns(clock.now(), **BASELINE, temp_c=36.6), "Dr A"))
    assert model.phase() == "preparation" and model.first_dose_at() is None
    clock.advance(minutes=5)
    write(store.add(sid, Dose("esketamine", "intranasal", 56, clock.now()), "Dr A"))
    assert model.phase() == "dosing" and model.first_dose_at() == clock.now()
    clock.advance(minutes=10)
    low = write(store.add(sid, VitalSigns(clock.now(), **{**BASELINE, "spo2": 85}), "Dr A"))
    assert [a["id"] for a in model.active_alarms()] == [a.id for a in low.alarms_raised]
    assert model.latest_values()["spo2"] == (85, low.primary_row["observed_at"])
    assert model.latest_values()["temp_c"][0] == 36.6  # the latest of each vital, not one row
    assert model.latest_news2() is not None and model.latest_news2().vitals_id == low.primary_id
    clock.advance(minutes=1)
    [alarm] = low.alarms_raised
    write(store.add(sid, AlarmAcknowledgement(alarm.id, "repositioned", clock.now()), "Dr A"))
    assert model.active_alarms() == []
    write(store.add(sid, Observation(clock.now(), moaas=3, dissociation=2), "Dr A"))
    # A correction of an earlier reading: the cached order is rebuilt, not appended to.
    write(
        store.correct(
            sid,
            low.primary_id,
            VitalSigns(from_iso_of(low), **{**BASELINE, "spo2": 88}),
            "misread",
            "Dr A",
        )
    )
    assert model.latest_values()["spo2"][0] == 88
    write(store.add(sid, PhaseChange("monitoring", clock.now()), "Dr A"))
    assert model.phase() == "monitoring"
    assert len(heard) == 7 and heard[0].primary_table == "vitals"


def from_iso_of(changes: Changes) -> datetime:
    """The clinical time of a change's entry."""
    assert changes.primary_row is not None
    return from_iso(changes.primary_row.observed_at)


def test_rows_are_typed_and_news2_rows_are_not_kept(store, clock) -> None:
    sid = store.start_session(session_start(clock), "Dr A")
    for _ in range(3):
        clock.advance(minutes=1)
        store.add(sid, VitalSigns(clock.now(), **BASELINE), "Dr A")
    model = SessionModel.load(store, sid)
    assert all(isinstance(r, VitalsRow) for r in model.current("vitals"))
    assert model.rows["vital_scores"] == []  # shown (latest_news2), not held: a 1 Hz feed
    assert model.latest_news2() is not None
    assert model.latest_news2().vitals_id == model.current("vitals")[-1].id


def test_a_change_of_another_session_is_refused(store, clock) -> None:
    first = store.start_session(session_start(clock), "Dr A")
    other = store.start_session(session_start(clock, patient_code="KAP-0200"), "Dr A")
    model = SessionModel.load(store, first)
    changes = store.add(other, VitalSigns(clock.now(), **BASELINE), "Dr A")
    with pytest.raises(ValueError, match="another session"):
        model.apply(changes)
    assert model.current("vitals") == []


def test_the_model_draws_the_same_chart_picture_as_a_fresh_load(store, clock) -> None:
    """The chart picture hook: after changes are applied, the model's picture is the one the
    review view and the PDF build from the database."""
    sid = store.start_session(session_start(clock), "Dr A", protocol=protocol("esketamine-rems"))
    model = SessionModel.load(store, sid)
    for spo2 in (98, 96, 99):
        clock.advance(minutes=1)
        model.apply(store.add(sid, VitalSigns(clock.now(), **{**BASELINE, "spo2": spo2}), "Dr A"))
    model.apply(store.add(sid, Observation(clock.now(), moaas=4, dissociation=1), "Dr A"))
    fresh = picture_of(store.load(sid), store.ref)
    drawn = model.chart_picture(store.ref)
    assert drawn.xy("spo2") == fresh.xy("spo2") and drawn.xy("spo2")[1] == [98, 96, 99]
    assert drawn.markers == fresh.markers


def _as_loaded(model: SessionModel, store: SessionStore) -> None:
    """The model's answers equal a plain load of the database (the rows every rule is given)."""
    loaded = store.load(model.id)
    for table in TABLES:
        assert [dict(r) for r in model.current(table)] == [dict(r) for r in loaded.current(table)]
        assert sorted(r["id"] for r in model.live(table)) == sorted(
            r["id"] for r in loaded.live(table)
        )
    assert model.vitals_times() == loaded.vitals_times()
    assert model.latest_values() == loaded.last_vitals()
    assert model.latest_recorded_at() == loaded.latest_recorded_at()
    assert model.has_baseline() == loaded.has_baseline()
    assert {t: [r["id"] for r in rows] for t, rows in model.current_rows().items()} == {
        t: [r["id"] for r in rows] for t, rows in loaded.current_rows().items()
    }
    every = model.all_rows()
    for table in TABLES:
        assert [r["id"] for r in every[table]] == [r["id"] for r in loaded.rows[table]]


def test_after_many_writes_corrections_voids_and_late_entries_the_model_equals_a_load(
    store, clock
) -> None:
    """Readings are summarised, not held: after a stream of readings, a late entry (older than
    the newest), a correction of the newest and a voiding, every answer is still the load's."""
    sid = store.start_session(session_start(clock), "Dr A", protocol=protocol("esketamine-rems"))
    model = SessionModel.load(store, sid)
    ids = []
    for second in range(60):
        clock.advance(seconds=1)
        changes = store.add(sid, VitalSigns(clock.now(), **{**BASELINE, "hr": 60 + second}), "Dr A")
        model.apply(changes)
        ids.append(changes.primary_id)
    model.apply(store.add(sid, Observation(clock.now(), moaas=4, dissociation=1), "Dr A"))
    _as_loaded(model, store)
    late = clock.now() - timedelta(seconds=30, milliseconds=500)
    model.apply(store.add(sid, VitalSigns(late, **{**BASELINE, "temp_c": 37.1}), "Dr A"))
    _as_loaded(model, store)
    newest = store.row("vitals", ids[-1])
    corrected = VitalSigns(from_iso(newest.observed_at), **{**BASELINE, "hr": 101})
    model.apply(store.correct(sid, ids[-1], corrected, "misread", "Dr A"))
    _as_loaded(model, store)
    assert model.latest_values()["hr"][0] == 101
    assert model.row("vitals", ids[3]).hr == 63  # an older reading, read back on demand
    assert model.all_rows()["vitals"][-1].supersedes_id == ids[-1]


def _traced_after(model: SessionModel, store: SessionStore, clock: FakeClock, count: int) -> int:
    for _ in range(count):
        clock.advance(seconds=1)
        model.apply(store.add(model.id, VitalSigns(clock.now(), **BASELINE), "Dr A"))
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def test_the_model_does_not_hold_a_row_per_reading(store, clock) -> None:
    """A 1 Hz feed: the model's memory grows by the reading's time only (the schedule's scan),
    not by a row per reading (about 340 B each when they were held)."""
    sid = store.start_session(session_start(clock), "Dr A", protocol=protocol("esketamine-rems"))
    model = SessionModel.load(store, sid)
    readings = 150
    tracemalloc.start()
    try:
        _traced_after(model, store, clock, 20)  # the first readings fill the caches
        before = _traced_after(model, store, clock, readings)
        after = _traced_after(model, store, clock, 4 * readings)
    finally:
        tracemalloc.stop()
    per_reading = (after - before) / (4 * readings)
    # The times list is a datetime and its slot (about 57 B); a held row was about 340 B more.
    assert per_reading < 96, f"{per_reading:.0f} B held per reading"
    assert len(model.vitals_times()) == 20 + 5 * readings


def test_reading_once_gives_the_same_answers_from_one_read_per_table(store, clock) -> None:
    """Opening a session asks for the streamed tables several times (chart, timeline, alarm
    levels); inside ``read_once`` each is read from SQLite once and every answer is still the
    load's, a corrected and a withdrawn reading included. After the block nothing is held."""
    sid = store.start_session(session_start(clock), "Dr A", protocol=protocol("esketamine-rems"))
    ids = []
    for second in range(30):
        clock.advance(seconds=1)
        ids.append(store.add(sid, VitalSigns(clock.now(), **{**BASELINE, "hr": 60 + second}), "A"))
    store.add(sid, Observation(clock.now(), moaas=4, dissociation=1), "Dr A")
    fixed = VitalSigns(from_iso(store.row("vitals", ids[5].primary_id).observed_at), hr=99)
    store.correct(sid, ids[5].primary_id, fixed, "misread", "Dr A")
    gone = VitalSigns(from_iso(store.row("vitals", ids[9].primary_id).observed_at), hr=70)
    store.correct(sid, ids[9].primary_id, gone, "wrong patient", "Dr A", void=True)
    model = SessionModel.load(store, sid)
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    try:
        with model.read_once():
            _as_loaded(model, store)
            reads = [s for s in statements if "FROM vitals WHERE session_id" in s]
            # _as_loaded's own store.load reads vitals once; the model once more, not per ask.
            assert len(reads) == 2, reads
    finally:
        store.db.conn.set_trace_callback(None)
    assert model._once is None
    _as_loaded(model, store)
