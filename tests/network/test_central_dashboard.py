"""The dashboard and a patient's series over the central archive, against a real PostgreSQL.

Two laptops sync to one archive: room-1 holds the store tests' known archive (hand-checked
numbers, a corrected and a withdrawn reading, an acknowledged and two unanswered alarms, a
signature), room-2 three demo-recorded sessions plus two sessions of the same patient KAP-0001
(one with a corrected dose). For each laptop alone the central result must equal the laptop's
own :mod:`kapmonitor.store.archive` result on its file, field by field and in order; across both
laptops the totals are the sums and the per-session lists the union; the patient seen in both
rooms gets one course with both rooms' sessions, oldest first.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest

from kapmonitor.domain.clock import from_iso
from kapmonitor.domain.records import AdverseEvent, Dose, SessionEnd
from kapmonitor.network import admin, central_dashboard
from kapmonitor.network.central_archive import CentralArchive
from kapmonitor.network.central_review import sign_centrally
from kapmonitor.network.connection import NetworkError
from kapmonitor.network.sync import sync_once
from kapmonitor.store import archive as local_archive
from kapmonitor.store.archive import ArchiveFilter
from kapmonitor.store.database import connect_readonly
from tests.factories import protocol, session_start
from tests.network.conftest import Archive, Laptop, make_laptop, record_demo_session
from tests.network.test_central_archive import add_reviewer
from tests.store.test_archive import BASE, Known, _vitals, build_known_archive

NOW = BASE + timedelta(days=60)
PERIODS = [
    (None, None),
    (date(2026, 3, 1), date(2026, 3, 31)),
    (BASE + timedelta(days=6), None),
    (None, BASE - timedelta(days=1)),
    (BASE + timedelta(days=100), None),  # nothing
]


def _room_two_patient(laptop: Laptop) -> tuple[str, str]:
    """Two sessions of KAP-0001 (the known archive's patient) in room 2: one between room 1's
    two (its first dose corrected from 70 to 50 mg), one after; both ended."""
    m = timedelta(minutes=1)
    store = laptop.store()
    try:
        made = []
        for day, weight in ((3, 72.0), (20, 71.0)):
            start = BASE + timedelta(days=day)
            laptop.clock.set(start + timedelta(seconds=20))
            record = session_start(
                laptop.clock,
                patient_code="kap-0001",  # the same patient, typed in lower case here
                started_at=start,
                clinicians=("Dr Ó Briain", "Nurse Bo"),
                weight_kg=weight,
            )
            sid = store.start_session(record, "Admin", protocol=protocol("clinic-ketamine"))
            dose = start + 15 * m
            laptop.clock.set(dose - 9 * m)
            store.add(sid, _vitals(dose - 10 * m, 122, 80), "Admin")
            laptop.clock.set(dose + m)
            given = store.add(sid, Dose("ketamine", "im", 70, dose), "Admin").primary_id
            if day == 3:
                store.correct(sid, given, Dose("ketamine", "im", 50, dose), "typed 70", "Admin")
            laptop.clock.set(dose + 11 * m)
            store.add(sid, _vitals(dose + 10 * m, 141, 88), "Admin")
            store.add(sid, AdverseEvent("nausea", 1, dose + 10 * m), "Admin")
            laptop.clock.set(dose + 31 * m)
            store.add(
                sid, SessionEnd("stayed_for_observation", dose + 30 * m, summary="ok"), "Admin"
            )
            made.append(sid)
        return made[0], made[1]
    finally:
        store.close()


@pytest.fixture
def rooms(archive: Archive, tmp_path: Path):
    """room-1: the known archive; room-2: demo sessions and KAP-0001 twice; both synced."""
    known = build_known_archive(tmp_path / "room-1.sqlite")
    room2 = make_laptop(tmp_path / "b", "room-2")
    for k in range(3):
        room2.clock.set(BASE + timedelta(days=2 * k + 1))
        record_demo_session(room2, 40 + k)
    _room_two_patient(room2)
    sync_once(known.path, archive.add_laptop("room-1"))
    room2_url = archive.add_laptop("room-2")
    sync_once(room2.path, room2_url, room2.keys)
    yield archive, known, room2, add_reviewer(archive), room2_url
    known.store.close()


def _local_db(laptop: Known | Laptop):
    return connect_readonly(laptop.path, getattr(laptop, "keys", None))


def test_each_laptops_dashboard_at_the_centre_equals_its_own(rooms) -> None:
    _archive, known, room2, reviewer, _url = rooms
    with CentralArchive(reviewer) as central:
        for name, laptop in (("room-1", known), ("room-2", room2)):
            db = _local_db(laptop)
            try:
                for since, until in PERIODS:
                    local = local_archive.dashboard(db, since, until, now=NOW)
                    mine = central_dashboard.dashboard(central, since, until, name, now=NOW)
                    assert mine == local, (name, since, until)
            finally:
                db.close()
        # The comparison is not vacuous: the known numbers are there, and checks were assessed.
        known_board = central_dashboard.dashboard(central, laptop_id="room-1", now=NOW)
        assert known_board.sessions == 4 and known_board.sessions_with_adverse_effects == 2
        points = {p.session_id: p for p in known_board.dose_response}
        assert (points[known.c].baseline_sbp, points[known.c].peak_sbp) == (130, 150)
        assert {c.session_id: c.value for c in known_board.unacknowledged_alarms}[known.c] == 2
        room2_board = central_dashboard.dashboard(central, laptop_id="room-2", now=NOW)
        assert room2_board.sessions == 5
        assert sum(c.value for c in room2_board.missed_checks + room2_board.late_checks) > 0


def test_every_laptop_together_is_the_sum_and_the_union(rooms) -> None:
    _archive, known, room2, reviewer, _url = rooms
    for since, until in PERIODS:
        boards = []
        for laptop in (known, room2):
            db = _local_db(laptop)
            try:
                boards.append(local_archive.dashboard(db, since, until, now=NOW))
            finally:
                db.close()
        with CentralArchive(reviewer) as central:
            both = central_dashboard.dashboard(central, since, until, now=NOW)
        assert both.sessions == sum(b.sessions for b in boards)
        assert both.sessions_with_adverse_effects == sum(
            b.sessions_with_adverse_effects for b in boards
        )
        terms: Counter[str] = Counter()
        for b in boards:
            terms.update({t.term: t.sessions for t in b.adverse_effects})
        assert {t.term: t.sessions for t in both.adverse_effects} == dict(terms)
        assert all(t.total == both.sessions for t in both.adverse_effects)
        assert [t.sessions for t in both.adverse_effects] == sorted(
            (t.sessions for t in both.adverse_effects), reverse=True
        )
        for series in ("alarms", "unacknowledged_alarms", "missed_checks", "late_checks"):
            union = [c for b in boards for c in getattr(b, series)]
            got = getattr(both, series)
            assert sorted(got, key=lambda c: c.session_id) == sorted(
                union, key=lambda c: c.session_id
            ), series
            assert [c.started_at for c in got] == sorted(c.started_at for c in got)
        union = [p for b in boards for p in b.dose_response]
        assert sorted(both.dose_response, key=lambda p: p.session_id) == sorted(
            union, key=lambda p: p.session_id
        )
    with CentralArchive(reviewer) as central:
        assert central_dashboard.dashboard(central, now=NOW).sessions == 9


def test_a_patient_seen_in_two_rooms_has_one_course(rooms) -> None:
    _archive, known, room2, reviewer, _url = rooms
    db1, db2 = _local_db(known), _local_db(room2)
    try:
        first = local_archive.patient_series(db1, "KAP-0001")
        second = local_archive.patient_series(db2, "KAP-0001")
        codes = {r[0] for r in db2.execute("SELECT patient_code FROM sessions").fetchall()}
    finally:
        db1.close()
        db2.close()
    assert len(first) == 2 and len(second) == 2
    with CentralArchive(reviewer) as central:
        course = central_dashboard.patient_series(central, "Kap-0001")
        assert course == sorted(first + second, key=lambda p: p.started_at)
        # Interleaved in time: room 1, room 2, room 1, room 2.
        assert [p.session_id for p in course] == [
            first[0].session_id,
            second[0].session_id,
            first[1].session_id,
            second[1].session_id,
        ]
        corrected = course[1]
        assert (corrected.dose_mg, corrected.first_dose_mg_per_kg) == (50.0, round(50 / 72, 3))
        assert corrected.adverse_effects == ("Nausea",) and corrected.status == "ended"
        assert course[2].status == "signed"
        # One laptop only: exactly that laptop's own course.
        assert central_dashboard.patient_series(central, "kap-0001", "room-1") == first
        assert central_dashboard.patient_series(central, "KAP-0001", "room-2") == second
        # Every other patient's course equals the laptop's own.
        for code in codes - {"kap-0001"}:
            db2 = _local_db(room2)
            try:
                assert central_dashboard.patient_series(central, code) == (
                    local_archive.patient_series(db2, code)
                )
            finally:
                db2.close()
        assert central_dashboard.patient_series(central, "KAP-9999") == []
        assert central_dashboard.patient_series(central, "kap-000") == []  # whole code only


def test_a_laptop_role_sees_only_its_own_sessions(rooms) -> None:
    archive, _known, room2, _reviewer, _url = rooms
    url = archive.add_laptop("room-3")
    sync_once(make_laptop(room2.path.parent.parent / "c", "room-3").path, url)
    with psycopg.connect(url, autocommit=True) as conn:
        assert central_dashboard.dashboard(conn, now=NOW).sessions == 0
        assert central_dashboard.patient_series(conn, "KAP-0001") == []


def test_an_unreachable_archive_is_one_plain_sentence() -> None:
    central = CentralArchive("postgresql://kap_rev:s3cret-word@127.0.0.1:1/kapmonitor")
    with pytest.raises(NetworkError) as refused:
        central_dashboard.dashboard(central, now=NOW)
    assert "s3cret-word" not in str(refused.value)
    with pytest.raises(NetworkError):
        central_dashboard.patient_series(central, "KAP-0001")


def test_a_session_signed_at_the_centre_is_signed_in_the_course(rooms) -> None:
    archive, _known, room2, _reviewer, _url = rooms
    added = admin.add_reviewer(archive.admin_url, "dr-chen", "Dr M. Chen", "supervisor")
    reviewer = archive.server.url(archive.name, added.role, added.password)
    db = _local_db(room2)
    try:
        before = local_archive.patient_series(db, "KAP-0001")
    finally:
        db.close()
    assert [p.status for p in before] == ["ended", "ended"]
    sign_centrally(reviewer, "room-2", before[1].session_id, added.password)
    with CentralArchive(reviewer) as central:
        course = central_dashboard.patient_series(central, "KAP-0001", "room-2")
        listed = central.page(ArchiveFilter(patient_code="kap-0001"), laptop_id="room-2")
    assert [p.status for p in course] == ["ended", "signed"]
    assert {r.session_id: r.status for r in listed.rows} == {
        p.session_id: p.status for p in course
    }  # as the central list says


def _counts(board) -> dict[str, tuple[int, int]]:
    late = {c.session_id: c.value for c in board.late_checks}
    return {c.session_id: (c.value, late[c.session_id]) for c in board.missed_checks}


def test_remembered_check_counts_follow_new_rows_and_the_horizon(rooms) -> None:
    _archive, known, room2, reviewer, room2_url = rooms
    central_dashboard.forget_cached_counts()
    later = NOW + timedelta(days=30)

    def local(laptop, now):
        db = _local_db(laptop)
        try:
            return local_archive.dashboard(db, now=now)
        finally:
            db.close()

    with CentralArchive(reviewer) as central:
        cold = central_dashboard.dashboard(central, laptop_id="room-2", now=NOW)
        warm = central_dashboard.dashboard(central, laptop_id="room-2", now=later)
        assert cold == local(room2, NOW) and warm == local(room2, later)
        # Room 1's session C is open: its checks are counted up to `now`, never remembered.
        early = BASE + timedelta(days=8, minutes=50)  # 35 minutes after C's dose
        for now in (early, later):
            board = central_dashboard.dashboard(central, laptop_id="room-1", now=now)
            assert board == local(known, now)
        assert _counts(board)[known.c] != _counts(local(known, early))[known.c]
    # A reading of an ended session withdrawn on its laptop and synced: its counts change.
    db = _local_db(room2)
    try:
        sid = local_archive.patient_series(db, "KAP-0001")[1].session_id
    finally:
        db.close()
    store = room2.store()
    try:
        reading = next(v for v in store.load(sid).current("vitals") if v["sbp"] == 141)
        again = _vitals(from_iso(reading["observed_at"]), 141, 88)
        store.correct(sid, reading["id"], again, "other patient", "Admin", void=True)
    finally:
        store.close()
    sync_once(room2.path, room2_url, room2.keys)
    with CentralArchive(reviewer) as central:
        after = central_dashboard.dashboard(central, laptop_id="room-2", now=later)
    assert after == local(room2, later)
    assert _counts(after)[sid] != _counts(warm)[sid]  # the remembered count was not reused
