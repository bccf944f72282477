"""The archive a supervisor reviews, without Qt: filters, counts, dashboard and a patient's course.

A small archive with known numbers is built through the real store (doses, readings, alarms the
protocol raises, corrections, a signature), so every assertion checks what the store wrote.
"""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from kapmonitor.demo import record_demo
from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.quality import quality_flags
from kapmonitor.domain.records import (
    AdverseEvent,
    AdverseEventOutcome,
    AlarmAcknowledgement,
    Dose,
    QuestionnaireResponse,
    SessionEnd,
    VitalSigns,
)
from kapmonitor.store import archive
from kapmonitor.store.accounts import Accounts
from kapmonitor.store.archive import ArchiveCounts, ArchiveFilter
from kapmonitor.store.session_store import SessionStore
from kapmonitor.store.signoff import Review
from tests.factories import open_store, protocol, session_start

# Noon UTC keeps each session on the same calendar day in any time zone from UTC-11 to UTC+11.
BASE = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
# Item 9 "not at all": a positive item 9 would raise its own alarm and hold the dose.
PHQ9 = {f"q{i}": 1 for i in range(1, 9)} | {"q9": 0}
SUPERVISOR = ("chen", "Dr M. Chen", "copper-meadow-9")


@dataclass
class Known:
    """The known archive: four sessions with hand-checked numbers."""

    path: Path
    store: SessionStore
    clock: FakeClock
    a: str  # KAP-0001, ended, nausea, a critical BP alarm (acknowledged), 1.0 mg/kg, rise 65
    b: str  # KAP-0001 a week later, ended and signed, 0.5 mg/kg, rise 12, every check on time
    c: str  # KAP-0002, esketamine, still open, two corrections, two alarms unanswered
    d: str  # KAP-0003, forty days earlier, ended, nothing notable

    def log(self, session_id: str):
        return self.store.load(session_id)


def _session(
    store: SessionStore,
    clock: FakeClock,
    *,
    code: str,
    start: datetime,
    clinicians: tuple[str, ...],
    weight: float = 70.0,
    protocol_id: str = "clinic-ketamine",
) -> tuple[str, datetime]:
    """Start a session at ``start``; returns it and the dose time (15 minutes later)."""
    clock.set(start + timedelta(seconds=20))
    record = session_start(
        clock, patient_code=code, started_at=start, clinicians=clinicians, weight_kg=weight
    )
    session_id = store.start_session(record, clinicians[0], protocol=protocol(protocol_id))
    return session_id, start + timedelta(minutes=15)


def _add(store: SessionStore, clock: FakeClock, session_id: str, entry, by: str) -> int:
    clock.set(entry.observed_at + timedelta(seconds=30))  # typed half a minute later
    return store.add(session_id, entry, by).primary_id


def _vitals(at: datetime, sbp: int, dbp: int) -> VitalSigns:
    return VitalSigns(at, hr=80, sbp=sbp, dbp=dbp, spo2=97, rr=14)


def build_known_archive(path: Path) -> Known:
    clock = FakeClock(BASE)
    store = open_store(path, clock)
    m = timedelta(minutes=1)

    # A: KAP-0001. Baseline 120/80, 70 mg (1.0 mg/kg), BP 150 then 185 (critical alarm,
    # acknowledged), nausea, PHQ-9 15 before; ended at 45 min.
    a, dose = _session(
        store, clock, code="KAP-0001", start=BASE, clinicians=("Dr Zoë Adams", "Nurse Bo")
    )
    by = "Dr Zoë Adams"
    _add(
        store,
        clock,
        a,
        QuestionnaireResponse("phq9", "pre", PHQ9, dose - 12 * m, total=15, band="moderate"),
        by,
    )
    _add(store, clock, a, _vitals(dose - 10 * m, 120, 80), by)
    _add(store, clock, a, Dose("ketamine", "im", 70, dose), by)
    _add(store, clock, a, _vitals(dose + 10 * m, 150, 90), by)
    _add(store, clock, a, _vitals(dose + 35 * m, 185, 100), by)
    alarm = store.load(a).active_alarms()[0]
    _add(store, clock, a, AlarmAcknowledgement(alarm["id"], "rechecked", dose + 36 * m), by)
    _add(store, clock, a, AdverseEvent("nausea", 1, dose + 20 * m), by)
    _add(store, clock, a, SessionEnd("stayed_for_observation", dose + 45 * m, summary="ok"), by)

    # B: KAP-0001 a week later. 35 mg (0.5 mg/kg); baseline 118, peak 130; every check on
    # time; PHQ-9 10 before; ended, then signed by a supervisor.
    b, dose = _session(
        store,
        clock,
        code="KAP-0001",
        start=BASE + timedelta(days=7),
        clinicians=("Dr Zoë Adams", "Nurse Bo"),
    )
    _add(
        store,
        clock,
        b,
        QuestionnaireResponse("phq9", "pre", PHQ9, dose - 12 * m, total=10, band="mild"),
        by,
    )
    _add(store, clock, b, _vitals(dose - 10 * m, 118, 78), by)
    _add(store, clock, b, Dose("ketamine", "im", 35, dose), by)
    for minute, sbp in ((10, 125), (20, 130), (30, 128), (40, 122)):
        _add(store, clock, b, _vitals(dose + minute * m, sbp, 80), by)
    _add(store, clock, b, SessionEnd("stayed_for_observation", dose + 45 * m, summary="ok"), by)

    # C: KAP-0002 on esketamine, still open. A reading of 200 corrected to 150 (its alarm
    # stays); a reading of 210 withdrawn as entered in error (its alarm stays); dizziness
    # (resolved) and nausea.
    c, dose = _session(
        store,
        clock,
        code="KAP-0002",
        start=BASE + timedelta(days=8),
        clinicians=("Dr Cruz", "Dr Diaz"),
        weight=80.0,
        protocol_id="esketamine-rems",
    )
    by = "Dr Cruz"
    _add(
        store,
        clock,
        c,
        QuestionnaireResponse("phq9", "pre", PHQ9, dose - 12 * m, total=20, band="severe"),
        by,
    )
    _add(store, clock, c, _vitals(dose - 5 * m, 130, 85), by)
    _add(store, clock, c, Dose("esketamine", "intranasal", 56, dose), by)
    _add(store, clock, c, _vitals(dose + 10 * m, 140, 88), by)
    typo = _add(store, clock, c, _vitals(dose + 20 * m, 200, 88), by)
    store.correct(c, typo, _vitals(dose + 20 * m, 150, 88), "typed 200 for 150", by)
    wrong = _add(store, clock, c, _vitals(dose + 30 * m, 210, 90), by)
    store.correct(c, wrong, _vitals(dose + 30 * m, 210, 90), "other patient", by, void=True)
    dizzy = _add(store, clock, c, AdverseEvent("dizziness", 1, dose + 12 * m), by)
    _add(store, clock, c, AdverseEvent("nausea", 2, dose + 14 * m), by)
    _add(store, clock, c, AdverseEventOutcome(dizzy, "resolved", dose + 25 * m), by)

    # D: KAP-0003 forty days before A: baseline, dose, two readings, ended.
    d, dose = _session(
        store,
        clock,
        code="KAP-0003",
        start=BASE - timedelta(days=40),
        clinicians=("Dr Ó Briain", "Nurse Bo"),
    )
    by = "Dr Ó Briain"
    _add(store, clock, d, _vitals(dose - 10 * m, 124, 80), by)
    _add(store, clock, d, Dose("ketamine", "sublingual", 84, dose), by)
    _add(store, clock, d, _vitals(dose + 10 * m, 130, 82), by)
    _add(store, clock, d, _vitals(dose + 20 * m, 128, 82), by)
    _add(store, clock, d, SessionEnd("stayed_for_observation", dose + 25 * m, summary="ok"), by)

    clock.set(BASE + timedelta(days=8, hours=1))
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    accounts.create_user(admin, SUPERVISOR[0], SUPERVISOR[1], "supervisor", SUPERVISOR[2])
    accounts.create_user(admin, "adams", "Dr Zoë Adams", "clinician", "amber-lattice-5")
    Review(store).sign(b, SUPERVISOR[0], SUPERVISOR[2])
    return Known(path, store, clock, a, b, c, d)


@pytest.fixture
def known(tmp_path: Path):
    built = build_known_archive(tmp_path / "archive.sqlite")
    yield built
    built.store.close()


def ids(rows) -> set[str]:
    return {r.session_id for r in rows}


def listed(known: Known, **filters) -> set[str]:
    return ids(archive.list_sessions(known.store.db, ArchiveFilter(**filters)))


# --- the list -------------------------------------------------------------------------------


def test_the_list_shows_each_session_with_its_counts_and_signature(known: Known) -> None:
    rows = {r.session_id: r for r in archive.list_sessions(known.store.db)}
    assert [r.session_id for r in archive.list_sessions(known.store.db)] == [
        known.c,
        known.b,
        known.a,
        known.d,
    ]  # newest first
    a, b, c, d = rows[known.a], rows[known.b], rows[known.c], rows[known.d]
    assert (a.patient_code, a.clinicians) == ("KAP-0001", ("Dr Zoë Adams", "Nurse Bo"))
    assert a.status == "ended" and a.status_label == "Ended — not signed"
    assert a.started_at == BASE and a.ended_at == BASE + timedelta(minutes=60)
    assert (a.dose_mg, a.dose_mg_per_kg) == (70.0, 1.0)
    assert (a.vitals, a.adverse_events, a.alarms, a.unacknowledged_alarms) == (3, 1, 1, 0)
    assert a.protocol_id == "clinic-ketamine" and a.protocol_name.startswith("Clinic default")
    assert (b.status, b.signed_by, b.signed_role) == ("signed", "Dr M. Chen", "supervisor")
    assert b.meaning == "reviewed and approved" and b.signed_at == known.clock.now()
    assert (b.dose_mg_per_kg, b.vitals, b.adverse_events, b.alarms) == (0.5, 5, 0, 0)
    # C: the corrected reading counts once, the withdrawn one not at all; both alarms stay.
    assert c.status == "open" and c.ended_at is None and c.protocol_id == "esketamine-rems"
    assert (c.vitals, c.adverse_events, c.alarms, c.unacknowledged_alarms) == (3, 2, 2, 2)
    assert (c.dose_mg, c.dose_mg_per_kg) == (56.0, 0.7)
    assert d.clinicians == ("Dr Ó Briain", "Nurse Bo") and d.signed_by == ""


def test_counts_agree_with_each_session_log(known: Known) -> None:
    """Both paths of the one query (corrected sessions row by row, the rest off the index)
    give what SessionLog.current gives."""
    for row in archive.list_sessions(known.store.db):
        log = known.log(row.session_id)
        acknowledged = {r["alarm_id"] for r in log.current("alarm_acknowledgements")}
        assert row.vitals == len(log.current("vitals"))
        assert row.adverse_events == len(log.current("adverse_events"))
        assert row.alarms == len(log.current("alarms"))
        assert row.unacknowledged_alarms == sum(
            1 for r in log.current("alarms") if r["id"] not in acknowledged
        )
        assert row.dose_mg == log.cumulative_dose_mg()
        assert row.ended_at == log.ended_at()


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"patient_code": "kap-0001"}, "ab"),
        ({"patient_code": "0002"}, "c"),
        ({"clinician": "ADAMS"}, "ab"),
        ({"clinician": "zoë"}, "ab"),
        ({"clinician": "ó BRIAIN"}, "d"),
        ({"clinician": "nurse bo"}, "abd"),
        ({"protocol_id": "esketamine-rems"}, "c"),
        ({"protocol_id": "clinic-ketamine"}, "abd"),
        ({"status": "open"}, "c"),
        ({"status": "ended"}, "abd"),
        ({"status": "signed"}, "b"),
        ({"status": "unsigned"}, "acd"),
        ({"unsigned_only": True}, "acd"),
        ({"has_adverse_effects": True}, "ac"),
        ({"has_alarms": True}, "ac"),
        ({"has_alarms": True, "unsigned_only": True, "status": "ended"}, "a"),
        ({"date_from": date(2026, 3, 2), "date_to": date(2026, 3, 9)}, "ab"),
        ({"date_from": date(2026, 3, 3)}, "bc"),
        ({"date_to": date(2026, 3, 1)}, "d"),
        ({"date_from": BASE + timedelta(minutes=1)}, "bc"),
        ({"date_to": BASE}, "d"),  # an instant bound is exclusive
        ({"patient_code": "nobody"}, ""),
    ],
)
def test_each_filter_narrows_the_list(known: Known, filters: dict, expected: str) -> None:
    wanted = {getattr(known, letter) for letter in expected}
    assert listed(known, **filters) == wanted
    # The summary counts select exactly the same sessions.
    assert archive.counts(known.store.db, ArchiveFilter(**filters)).sessions == len(wanted)


def test_the_summary_line_counts_what_is_listed(known: Known) -> None:
    db = known.store.db
    everything = archive.counts(db)
    assert everything == ArchiveCounts(
        sessions=4, with_adverse_effects=2, with_alarms=2, unsigned=3, open=1
    )
    assert everything == ArchiveCounts.of(archive.list_sessions(db))
    assert everything.summary() == (
        "4 sessions · 2 with adverse effects · 2 with alarms · 3 unsigned · 1 still open"
    )
    one = archive.counts(db, ArchiveFilter(patient_code="KAP-0003"))
    assert one.summary() == "1 session · 0 with adverse effects · 0 with alarms · 1 unsigned"


def test_an_unknown_status_or_a_naive_time_is_refused(known: Known) -> None:
    with pytest.raises(ValueError, match="unknown status"):
        archive.list_sessions(known.store.db, ArchiveFilter(status="pending"))
    with pytest.raises(ValueError, match="naive"):
        archive.list_sessions(known.store.db, ArchiveFilter(date_from=datetime(2026, 3, 2)))


def test_protocols_in_use(known: Known) -> None:
    found = dict(archive.protocols_in_use(known.store.db))
    assert set(found) == {"clinic-ketamine", "esketamine-rems"}


def test_corrections_of_doses_ends_and_acknowledgements_are_counted_as_current(
    tmp_path: Path,
) -> None:
    """Demo sessions, one with a dose corrected and an acknowledgement withdrawn: every count
    still matches the session log."""
    clock = FakeClock(BASE)
    store = open_store(tmp_path / "demo.sqlite", clock)
    try:
        for seed, days in ((1, 0), (2, 3)):
            start = BASE + timedelta(days=days)
            for _ in record_demo(store, clock, start, 0.0, random.Random(seed)):
                pass
        first = store.list_sessions()[-1]["id"]
        log = store.load(first)
        dose = log.current("doses")[0]
        ack = log.current("alarm_acknowledgements")[0]
        by = log.clinicians[0]
        clock.advance(minutes=1)
        store.correct(
            first,
            dose["id"],
            Dose("ketamine", "im", 60, log.first_dose_at()),
            "wrong syringe size",
            by,
        )
        store.correct(
            first,
            ack["id"],
            AlarmAcknowledgement(ack["alarm_id"], "rechecked", clock.now()),
            "acknowledged the wrong alarm",
            by,
            void=True,
        )
        rows = {r.session_id: r for r in archive.list_sessions(store.db)}
        assert len(rows) == 2
        for session_id, row in rows.items():
            log = store.load(session_id)
            acknowledged = {r["alarm_id"] for r in log.current("alarm_acknowledgements")}
            assert row.dose_mg == log.cumulative_dose_mg()
            assert row.vitals == len(log.current("vitals"))
            assert row.unacknowledged_alarms == sum(
                1 for r in log.current("alarms") if r["id"] not in acknowledged
            )
        assert rows[first].dose_mg == 60.0 and rows[first].unacknowledged_alarms == 1
    finally:
        store.close()


# --- the dashboard ------------------------------------------------------------------------


def test_dashboard_numbers_on_the_known_archive(known: Known) -> None:
    board = archive.dashboard(known.store.db, now=known.clock.now())
    assert board.sessions == 4 and board.sessions_with_adverse_effects == 2
    incidence = {t.term: (t.label, t.sessions, t.total) for t in board.adverse_effects}
    assert incidence == {"nausea": ("Nausea", 2, 4), "dizziness": ("Dizziness", 1, 4)}
    assert board.adverse_effects[0].term == "nausea"  # most frequent first
    assert board.adverse_effects[0].percent == 50.0

    points = {p.session_id: p for p in board.dose_response}
    assert (points[known.a].first_dose_mg_per_kg, points[known.a].rise) == (1.0, 65)
    assert (points[known.b].first_dose_mg_per_kg, points[known.b].rise) == (0.5, 12)
    # C: the corrected 150 counts, the withdrawn 210 does not.
    assert (points[known.c].baseline_sbp, points[known.c].peak_sbp) == (130, 150)
    assert (points[known.d].first_dose_mg_per_kg, points[known.d].rise) == (1.2, 6)

    alarms = {c.session_id: c.value for c in board.alarms}
    assert alarms == {known.a: 1, known.b: 0, known.c: 2, known.d: 0}
    unanswered = {c.session_id: c.value for c in board.unacknowledged_alarms}
    assert unanswered == {known.a: 0, known.b: 0, known.c: 2, known.d: 0}
    assert [c.session_id for c in board.alarms] == [known.d, known.a, known.b, known.c]
    assert board.mean("alarms") == 0.75


def test_dashboard_missed_checks_are_the_quality_flags_of_each_session(known: Known) -> None:
    now = known.clock.now()
    board = archive.dashboard(known.store.db, now=now)
    missed = {c.session_id: c.value for c in board.missed_checks}
    late = {c.session_id: c.value for c in board.late_checks}
    for session_id in (known.a, known.b, known.c, known.d):
        log = known.log(session_id)
        current = {t: log.current(t) for t in log.rows}
        flags = quality_flags(log.session, current, log.protocol, now)
        assert missed[session_id] == sum(1 for f in flags if f.code == "missed_check")
        assert late[session_id] == sum(1 for f in flags if f.code == "late_check")
    assert missed[known.b] == 0  # every check of B was on time
    assert missed[known.a] >= 1  # A had no reading between 10 and 35 minutes


def test_dashboard_period(known: Known) -> None:
    db = known.store.db
    march = archive.dashboard(db, date(2026, 3, 1), date(2026, 3, 31), now=known.clock.now())
    assert march.sessions == 3 and {c.session_id for c in march.alarms} == {
        known.a,
        known.b,
        known.c,
    }
    week = archive.dashboard(db, BASE + timedelta(days=6), None, now=known.clock.now())
    assert week.sessions == 2
    assert {t.term: t.sessions for t in week.adverse_effects} == {"nausea": 1, "dizziness": 1}
    assert week.since == BASE + timedelta(days=6) and week.until is None
    empty = archive.dashboard(db, BASE + timedelta(days=100), None)
    assert empty.sessions == 0 and empty.adverse_effects == [] and empty.mean("alarms") == 0.0


# --- a patient's course -------------------------------------------------------------------


def test_patient_series_follows_a_course(known: Known) -> None:
    series = archive.patient_series(known.store.db, "kap-0001")
    assert [p.session_id for p in series] == [known.a, known.b]  # oldest first
    first, second = series
    assert (first.dose_mg, first.dose_mg_per_kg, first.first_dose_mg_per_kg) == (70.0, 1.0, 1.0)
    assert (first.phq9_before, first.phq9_band) == (15, "moderate")
    assert (first.baseline_sbp, first.peak_sbp, first.sbp_rise) == (120, 185, 65)
    assert first.adverse_effects == ("Nausea",) and first.status == "ended"
    assert (second.dose_mg, second.phq9_before, second.peak_sbp) == (35.0, 10, 130)
    assert second.adverse_effects == () and second.status == "signed"
    other = archive.patient_series(known.store.db, "KAP-0002")
    assert other[0].adverse_effects == ("Dizziness", "Nausea") and other[0].status == "open"
    assert other[0].peak_sbp == 150
    assert archive.patient_series(known.store.db, "KAP-9999") == []


def test_the_worker_connection_reads_only(known: Known) -> None:
    db = archive.open_read_only(known.path)
    try:
        assert len(archive.list_sessions(db)) == 4
        with pytest.raises(sqlite3.OperationalError, match="readonly database"):
            db.execute("CREATE TABLE x (a)")
    finally:
        db.close()


def test_a_missing_file_is_said_plainly(tmp_path: Path) -> None:
    from kapmonitor.store.database import StoreError

    with pytest.raises(StoreError, match="no database"):
        archive.open_read_only(tmp_path / "nowhere.sqlite")


def test_the_rems_sessions_are_found_through_their_index_not_every_copy(known: Known) -> None:
    """Migration 0017: the list reads the REMS sessions off a partial index on the stored
    protocol copies (about 19 KB of JSON each), so the query must name the index's expression
    exactly; and it still finds the REMS session, and only it."""
    db = known.store.db
    plan = " ".join(str(r[-1]) for r in db.execute("EXPLAIN QUERY PLAN " + archive._REMS_SQL))
    assert "USING INDEX session_protocols_rems" in plan
    rows = {r.session_id: r for r in archive.list_sessions(db)}
    assert [sid for sid, r in rows.items() if r.rems] == [known.c]
    assert rows[known.c].rems_treated_at is not None
