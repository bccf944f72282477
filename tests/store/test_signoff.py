"""Sign-off: only a supervisor signs, a signed session is locked, amendments keep the original."""

from __future__ import annotations

import random
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from kapmonitor.demo import record_demo
from kapmonitor.domain.clock import FakeClock, from_iso
from kapmonitor.domain.records import Dose, Intervention, Override, VitalSigns
from kapmonitor.domain.session_rows import ReviewCommentRow
from kapmonitor.domain.validation import ValidationError
from kapmonitor.store import audit
from kapmonitor.store.accounts import AccessRefused, Accounts
from kapmonitor.store.database import StoreError
from kapmonitor.store.schema import LOCKED_BY_SIGNATURE
from kapmonitor.store.signoff import FLAGS_CONFIRMED, Review
from kapmonitor.store.verify import verify_database
from tests.factories import T0, open_store


@pytest.fixture
def review(tmp_path: Path):
    clock = FakeClock(T0)
    store = open_store(tmp_path / "r.sqlite", clock)
    for _ in record_demo(store, clock, T0, 0.0, random.Random(2)):
        pass
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    accounts.create_user(admin, "rivera", "Dr. A. Rivera", "clinician", "birch-valley-18")
    accounts.create_user(admin, "chen", "Dr M. Chen", "supervisor", "copper-meadow-9")
    session_id = store.list_sessions()[0]["id"]
    yield Review(store), store, session_id, clock
    store.close()


def test_a_clinician_cannot_sign_and_the_refusal_is_audited(review) -> None:
    rv, store, session_id, _clock = review
    with pytest.raises(AccessRefused, match="may not sign a session"):
        rv.sign(session_id, "rivera", "birch-valley-18")
    assert not rv.is_signed(session_id)
    (actor,) = store.db.execute("SELECT actor FROM audit WHERE action = 'refused'").fetchone()
    assert actor == "rivera"


def test_a_wrong_password_signs_nothing(review) -> None:
    rv, _store, session_id, _clock = review
    with pytest.raises(AccessRefused, match="Wrong"):
        rv.sign(session_id, "chen", "not-it")
    assert not rv.is_signed(session_id)


def test_the_database_refuses_a_signature_from_a_non_supervisor(review) -> None:
    _rv, store, session_id, _clock = review
    conn = sqlite3.connect(store.path)
    with pytest.raises(sqlite3.IntegrityError, match="only an active supervisor"):
        conn.execute(
            "INSERT INTO signatures (session_id, observed_at, recorded_at, recorded_by, "
            "printed_name, role, meaning) VALUES (?, ?, ?, 'rivera', 'Dr. A. Rivera', "
            "'supervisor', 'approved')",
            [session_id, "2026-03-02T12:00:00.000Z", "2026-03-02T12:00:00.000Z"],
        )


def test_a_signature_shows_name_time_and_meaning_and_locks_everything(review) -> None:
    rv, store, session_id, clock = review
    clock.advance(hours=20)
    rv.sign(session_id, "chen", "copper-meadow-9")
    (signature,) = rv.signatures(session_id)
    assert (signature["printed_name"], signature["role"], signature["meaning"]) == (
        "Dr M. Chen",
        "supervisor",
        "reviewed and approved",
    )
    assert signature["observed_at"].startswith("2026-03-03")
    # The store API refuses, plainly.
    with pytest.raises(StoreError, match=r"signed by Dr M\. Chen and is locked"):
        store.add(session_id, Intervention("note", clock.now(), detail="late"), "Dr. A. Rivera")
    first = store.load(session_id).current("vitals")[0]
    with pytest.raises(StoreError, match="locked"):
        store.correct(session_id, first["id"], VitalSigns(clock.now(), hr=60), "x", "Dr. A. Rivera")
    with pytest.raises(AccessRefused, match="already signed"):
        rv.sign(session_id, "chen", "copper-meadow-9")
    # Raw SQL meets the triggers, for every locked table.
    conn = sqlite3.connect(store.path)
    for table in LOCKED_BY_SIGNATURE:
        with pytest.raises(sqlite3.IntegrityError, match="signed and locked"):
            conn.execute(f"INSERT INTO {table} (session_id) VALUES (?)", [session_id])
    for table in ("signatures", "vitals", "sessions"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(f"DELETE FROM {table}")
    assert verify_database(store.path).ok


def test_addenda_only_after_signing_and_marked_as_such(review) -> None:
    rv, store, session_id, clock = review
    rivera = rv.accounts.find("rivera")
    with pytest.raises(AccessRefused, match="Addenda are for signed sessions"):
        rv.add_addendum(session_id, rivera, "Patient phoned: slept well")
    rv.sign(session_id, "chen", "copper-meadow-9")
    clock.advance(days=1)
    rv.add_addendum(session_id, rivera, "Patient phoned next day: slept well, no nausea")
    (addendum,) = store.load(session_id).rows["addenda"]
    assert addendum["recorded_by"] == "Dr. A. Rivera" and "slept well" in addendum["text"]
    assert verify_database(store.path).ok


def test_review_comments_are_for_supervisors_before_sign_off(review) -> None:
    rv, store, session_id, _clock = review
    rivera, chen = rv.accounts.find("rivera"), rv.accounts.find("chen")
    at = store.load(session_id).first_dose_at() + timedelta(minutes=40)
    with pytest.raises(AccessRefused, match="may not add a review comment"):
        rv.add_review_comment(session_id, rivera, at, "ok")
    with pytest.raises(ValidationError, match="longest one field can hold"):
        rv.add_review_comment(session_id, chen, at, "x" * 20_001)
    rv.add_review_comment(session_id, chen, at, "BP peak expected; response documented")
    (comment,) = store.load(session_id).current_of(ReviewCommentRow)
    assert from_iso(comment.observed_at) == at
    assert comment.text == "BP peak expected; response documented"
    assert comment.recorded_by == "Dr M. Chen"
    rv.sign(session_id, "chen", "copper-meadow-9")
    with pytest.raises(StoreError, match="signed and locked"):
        rv.add_review_comment(session_id, chen, at, "one more")


def test_amendments_keep_the_original_and_only_the_author_amends(review) -> None:
    rv, store, session_id, _clock = review
    log = store.load(session_id)
    mine = next(v for v in log.current("vitals") if v["recorded_by"] == "Dr. A. Rivera")
    theirs = next(v for v in log.current("vitals") if v["recorded_by"] != "Dr. A. Rivera")
    rivera = rv.accounts.find("rivera")
    taken = from_iso(mine["observed_at"])  # the same moment: a misread, not a later reading
    entry = VitalSigns(taken, hr=mine["hr"] + 4, sbp=mine["sbp"], dbp=mine["dbp"])
    with pytest.raises(AccessRefused, match="who recorded this entry"):
        rv.amend(session_id, rivera, theirs["id"], entry, "misread")
    new_id = rv.amend(
        session_id, rivera, mine["id"], entry, "HR misread from the monitor"
    ).primary_id
    log = store.load(session_id)
    original = next(r for r in log.rows["vitals"] if r["id"] == mine["id"])
    assert original["hr"] == mine["hr"]  # kept, unchanged
    amended = next(r for r in log.current("vitals") if r["id"] == new_id)
    assert (amended["supersedes_id"], amended["correction_reason"]) == (
        mine["id"],
        "HR misread from the monitor",
    )
    rv.sign(session_id, "chen", "copper-meadow-9")
    with pytest.raises(StoreError, match="signed and locked"):
        rv.amend(session_id, rivera, new_id, entry, "again")


def test_an_open_session_cannot_be_signed(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    store = open_store(tmp_path / "o.sqlite", clock)
    steps = record_demo(store, clock, T0, 0.0, random.Random(1))
    next(steps)  # the session starts; nothing more
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    rv = Review(store)
    with pytest.raises(AccessRefused, match="End the session before signing"):
        rv.sign(store.list_sessions()[0]["id"], admin.username, "alpine-harbour-7")
    store.close()


# --- Quality flags are confirmed one by one, and the confirmations are kept -------------------


def _tenfold_dose_correction(store, session_id: str) -> int:
    """The demo's first dose corrected to ten times its amount (a slipped decimal point)."""
    dose = store.load(session_id).current("doses")[0]
    entry = Dose(dose["drug"], dose["route"], dose["dose_mg"] * 10, from_iso(dose["observed_at"]))
    return store.correct(
        session_id, dose["id"], entry, "Decimal point", dose["recorded_by"]
    ).primary_id


def test_every_flag_must_be_confirmed_and_the_confirmations_are_stored(review) -> None:
    rv, store, session_id, clock = review
    assert rv.quality_flags(session_id) == []
    fix_id = _tenfold_dose_correction(store, session_id)
    clock.advance(minutes=1)
    store.add(session_id, Override("dose_without_baseline", "Cuff failed", clock.now()), "Dr A")
    flags = rv.quality_flags(session_id)
    assert [(f.code, f.table) for f in flags] == [
        ("large_correction", "doses"),
        ("override", "overrides"),
    ]
    assert flags[0].row_id == fix_id and "(10×)" in flags[0].message
    clock.advance(hours=20)
    # Nothing confirmed, or one of two: refused, nothing signed, nothing recorded.
    for confirmed in ((), [flags[0].key]):
        with pytest.raises(ValidationError, match=r"quality flag before signing: \d of 2"):
            rv.sign(session_id, "chen", "copper-meadow-9", confirmed=confirmed)
    assert not rv.is_signed(session_id) and rv.confirmations(session_id) == []
    signature_id = rv.sign(
        session_id, "chen", "copper-meadow-9", confirmed=[f.key for f in flags]
    ).primary_id
    assert rv.is_signed(session_id)
    assert rv.confirmations(session_id) == [
        {"signature_id": signature_id, "flags": [f.as_record() for f in flags]}
    ]
    actor, action = store.db.execute(
        "SELECT actor, action FROM audit WHERE session_id = ? ORDER BY id DESC LIMIT 1",
        [session_id],
    ).fetchone()
    assert (actor, action) == ("chen", FLAGS_CONFIRMED)
    assert verify_database(store.path).ok
    # Append-only, like the signature itself.
    conn = sqlite3.connect(store.path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit SET detail = '{}' WHERE action = ?", [FLAGS_CONFIRMED])


def test_a_flag_that_appeared_after_the_dialog_opened_must_be_confirmed_too(review) -> None:
    rv, store, session_id, _clock = review
    shown = [f.key for f in rv.quality_flags(session_id)]
    assert shown == []
    _tenfold_dose_correction(store, session_id)
    with pytest.raises(ValidationError, match="1 of 1 not confirmed"):
        rv.sign(session_id, "chen", "copper-meadow-9", confirmed=shown)
    # A confirmation of words that have since changed is not a confirmation of the new words.
    [flag] = rv.quality_flags(session_id)
    stale = flag.key.replace("Decimal point", "Decimal")
    with pytest.raises(ValidationError, match="changed since they were shown"):
        rv.sign(session_id, "chen", "copper-meadow-9", confirmed=[stale])
    assert not rv.is_signed(session_id)
    rv.sign(session_id, "chen", "copper-meadow-9", confirmed=[flag.key])
    [stored] = rv.confirmations(session_id)
    assert [f["message"] for f in stored["flags"]] == [flag.message]


def test_a_session_without_flags_records_that_none_were_shown(review) -> None:
    rv, _store, session_id, _clock = review
    signature_id = rv.sign(session_id, "chen", "copper-meadow-9").primary_id
    assert rv.confirmations(session_id) == [{"signature_id": signature_id, "flags": []}]


def test_the_alarm_sound_turned_off_in_the_session_is_a_flag_to_confirm(review) -> None:
    rv, store, session_id, clock = review
    detail = {"setting": "alarm_sound", "on": False, "reason": "Patient asleep"}
    with store.db.atomic():
        audit.event(store.db, "Dr. A. Rivera", "alarm_sound_off", clock.now(), detail, session_id)
        audit.event(store.db, "admin", "alarm_sound_off", clock.now(), detail, None)  # no session
    [flag] = rv.quality_flags(session_id)
    assert (flag.code, flag.table) == ("override", "audit")
    assert flag.message.endswith(
        "by Dr. A. Rivera: Critical alarm sound turned off on the "
        "bedside laptop. Reason: Patient asleep"
    )
    with pytest.raises(ValidationError, match="1 of 1 not confirmed"):
        rv.sign(session_id, "chen", "copper-meadow-9")
    rv.sign(session_id, "chen", "copper-meadow-9", confirmed=[flag.key])
    assert rv.confirmations(session_id)[0]["flags"] == [flag.as_record()]
