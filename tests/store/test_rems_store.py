"""REMS records through the store the window uses (no Qt): the start details and the
contraindication screen stored with an esketamine session, and the 7-day submission recorded
append-only and audited."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.dose_guards import DoseClearance
from kapmonitor.domain.records import Dose, VitalSigns
from kapmonitor.domain.rems import RemsStart, default_rems_defaults, rems_summary
from kapmonitor.domain.validation import ValidationError
from kapmonitor.store import audit, rems_store, verify
from kapmonitor.store.session_store import SessionStore
from tests.factories import T0, open_store, protocol, session_start

CODES = [c.code for c in default_rems_defaults().contraindications]


def rems_start(**changes: object) -> RemsStart:
    values: dict[str, object] = {
        "first_treatment": True,
        "clinician_phone": "+1 555 0100",
        "clinician_email": "dr.a@clinic.example",
        "setting_name": "Clinic room 2",
        "setting_address": "1 Main St, Springfield",
        "contraindications": dict.fromkeys(CODES, False),
    }
    values.update(changes)
    return RemsStart(**values)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> SessionStore:
    s = open_store(tmp_path / "r.sqlite", clock)
    yield s
    s.close()


def _start(store: SessionStore, clock: FakeClock, **changes: object) -> str:
    return store.start_session(
        session_start(clock, rems=rems_start(**changes)),
        "Dr A",
        protocol=protocol("esketamine-rems"),
    )


def test_start_details_are_stored_with_the_session_and_fill_the_form(
    store: SessionStore, clock: FakeClock
) -> None:
    sid = _start(store, clock)
    details = rems_store.start_details(store.db, sid)
    assert details is not None
    assert details["first_treatment"] == 1
    assert details["setting_address"] == "1 Main St, Springfield"
    assert details["contraindications"] == dict.fromkeys(CODES, False)
    log = store.load(sid)
    current = {t: log.current(t) for t in log.rows}
    form = {
        f.key: f
        for f in rems_summary(
            log.session, log.clinicians, current, None, None, protocol=log.protocol
        )
    }
    assert form["clinician_phone"].value == "+1 555 0100"
    assert form["setting"].value == "Clinic room 2"
    assert form["first_treatment"].value == "Yes"
    actions = {(e["table_name"], e["action"]) for e in audit.entries(store.db)}
    assert ("rems_session_details", "session_started") in actions
    assert not verify.verify(store.db).problems


def test_a_contraindication_refuses_the_session_and_stores_nothing(
    store: SessionStore, clock: FakeClock
) -> None:
    answers = dict.fromkeys(CODES, False) | {"intracerebral_haemorrhage": True}
    with pytest.raises(ValidationError) as refused:
        _start(store, clock, contraindications=answers)
    assert "History of intracerebral haemorrhage" in str(refused.value)
    assert store.db.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0
    assert store.db.execute("SELECT count(*) FROM rems_session_details").fetchone()[0] == 0


def test_an_unanswered_screen_item_refuses_the_session(
    store: SessionStore, clock: FakeClock
) -> None:
    answers = dict.fromkeys(CODES, False) | {"hypersensitivity": None}
    with pytest.raises(ValidationError, match="answer every item"):
        _start(store, clock, contraindications=answers)


def test_start_details_are_append_only(store: SessionStore, clock: FakeClock) -> None:
    sid = _start(store, clock)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("UPDATE rems_session_details SET clinician_phone = 'x'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("DELETE FROM rems_session_details WHERE session_id = ?", [sid])


def _treated(store: SessionStore, clock: FakeClock) -> str:
    sid = _start(store, clock)
    store.add(sid, VitalSigns(clock.now(), sbp=128, dbp=80, hr=72, spo2=98, rr=14), "Dr A")
    clock.advance(minutes=5)
    store.add(sid, Dose("esketamine", "intranasal", 56, clock.now(), lot_number="L1"), "Dr A")
    return sid


def test_submission_is_due_in_7_days_then_recorded_by_whom_and_when(
    store: SessionStore, clock: FakeClock
) -> None:
    sid = _treated(store, clock)
    treated = (T0 + timedelta(minutes=5)).astimezone().date()
    status = rems_store.status(store.db, sid, treated)
    assert status.due == treated + timedelta(days=7)
    assert status.submitted_by is None and not status.overdue
    assert rems_store.status(store.db, sid, treated + timedelta(days=8)).overdue
    clock.advance(hours=24 * 3)
    row_id = rems_store.mark_submitted(
        store.db, sid, "Dr A", clock.now(), "supervisor", clock, reference="REMS-123"
    )
    done = rems_store.status(store.db, sid, treated + timedelta(days=30))
    assert (done.submitted_by, done.submitted_on) == ("Dr A", clock.now().astimezone().date())
    assert not done.overdue
    assert done.text().startswith(f"REMS due {status.due.isoformat()} / submitted by Dr A on")
    entry = [e for e in audit.entries(store.db) if e["table_name"] == "rems_submissions"]
    assert [(e["row_id"], e["actor"], e["action"]) for e in entry] == [
        (row_id, "supervisor", rems_store.SUBMITTED_ACTION)
    ]
    assert not verify.verify(store.db).problems
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("UPDATE rems_submissions SET submitted_by = 'someone else'")


def test_submission_refusals(store: SessionStore, clock: FakeClock) -> None:
    sid = _treated(store, clock)
    with pytest.raises(ValidationError, match="in the future"):
        rems_store.mark_submitted(
            store.db, sid, "Dr A", clock.now() + timedelta(hours=1), "Dr A", clock
        )
    with pytest.raises(ValidationError, match="after the treatment"):
        rems_store.mark_submitted(store.db, sid, "Dr A", T0 - timedelta(days=1), "Dr A", clock)
    with pytest.raises(ValidationError, match="who submitted"):
        rems_store.mark_submitted(store.db, sid, " ", clock.now(), "Dr A", clock)
    rems_store.mark_submitted(store.db, sid, "Dr A", clock.now(), "Dr A", clock)
    with pytest.raises(ValidationError, match="Already marked submitted by Dr A"):
        rems_store.mark_submitted(store.db, sid, "Nurse B", clock.now(), "Nurse B", clock)
    assert len(rems_store.submissions(store.db, sid)) == 1


def test_a_non_rems_session_has_no_submission(store: SessionStore, clock: FakeClock) -> None:
    sid = store.start_session(session_start(clock), "Dr A", protocol=protocol("clinic-ketamine"))
    assert not rems_store.is_rems_session(store.db, sid)
    with pytest.raises(ValidationError, match="esketamine REMS sessions only"):
        rems_store.mark_submitted(store.db, sid, "Dr A", clock.now(), "Dr A", clock)


def test_the_dose_forms_bp_decision_makes_172_over_104_acceptable_after_it(
    store: SessionStore, clock: FakeClock
) -> None:
    sid = _start(store, clock)
    store.add(sid, VitalSigns(clock.now(), sbp=172, dbp=104, hr=72, spo2=98, rr=14), "Dr A")
    clock.advance(minutes=5)
    form = {f.key: f for f in rems_store.form_fields(store.db, store.load(sid))}
    assert form["vitals_ok_before_dosing"].why_missing == "no dose recorded"
    store.add(
        sid,
        Dose(
            "esketamine",
            "intranasal",
            56,
            clock.now(),
            lot_number="L1",
            clearance=DoseClearance(bp_reason="Repeat BP falling; benefit outweighs risk"),
        ),
        "Dr A",
    )
    form = {f.key: f for f in rems_store.form_fields(store.db, store.load(sid))}
    value = form["vitals_ok_before_dosing"].value
    assert value.startswith("Yes — acceptable after clinician decision: BP 172/104 mmHg")
    assert "Dr A decided to proceed" in value and "benefit outweighs risk" in value
