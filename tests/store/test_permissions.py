"""Permission rules stated once: the window's question (why_not_*) and the store's refusal
give the same sentence, and an allowed action is answered None and then works (no Qt)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from kapmonitor.demo import record_demo
from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import Intervention, Observation, SessionEnd, VitalSigns
from kapmonitor.domain.validation import ValidationError
from kapmonitor.store import permissions
from kapmonitor.store.accounts import AccessRefused, Accounts
from kapmonitor.store.database import StoreError
from kapmonitor.store.signoff import Review
from tests.factories import T0, open_store

ENDED = "This session has ended; new entries are closed."


@pytest.fixture
def ended(tmp_path: Path):
    """A whole demo session, ended, with a clinician, a supervisor and an administrator."""
    clock = FakeClock(T0)
    store = open_store(tmp_path / "p.sqlite", clock)
    for _ in record_demo(store, clock, T0, 0.0, random.Random(2)):
        pass
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    accounts.create_user(admin, "rivera", "Dr. A. Rivera", "clinician", "birch-valley-18")
    accounts.create_user(admin, "chen", "Dr M. Chen", "supervisor", "copper-meadow-9")
    yield store, Review(store), store.list_sessions()[0]["id"], clock
    store.close()


def _refusal(exc: pytest.ExceptionInfo[BaseException]) -> str:
    error = exc.value
    if isinstance(error, ValidationError):
        (field,) = error.errors
        return field.message
    return str(error)


def test_monitoring_entries_close_at_the_end_and_late_notes_stay_open(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    store = open_store(tmp_path / "o.sqlite", clock)
    steps = record_demo(store, clock, T0, 0.0, random.Random(1))
    next(steps)  # the session starts; nothing more
    sid = store.list_sessions()[0]["id"]
    db = store.db
    for table in permissions.CLOSED_AFTER_END:
        assert permissions.why_not_add(db, sid, table) is None
    store.add(sid, VitalSigns(clock.now(), hr=72), "Dr A")  # allowed: it works
    store.add(sid, SessionEnd("stayed_for_observation", clock.now(), summary="ok"), "Dr A")

    reason = permissions.why_not_add(db, sid, "vitals")
    assert reason == ENDED
    with pytest.raises(StoreError) as refused:
        store.add(sid, VitalSigns(clock.now(), hr=70), "Dr A")
    assert _refusal(refused) == reason and refused.value.kind == "ended"
    with pytest.raises(StoreError, match="new entries are closed"):
        store.add(
            sid, SessionEnd("stayed_for_observation", clock.now(), summary="ok"), "Dr A"
        )  # a second end
    with pytest.raises(StoreError, match="new entries are closed"):
        store.add(sid, Observation(clock.now(), moaas=5), "Dr A")
    # A late note is still recorded after the end.
    assert permissions.why_not_add(db, sid, "interventions") is None
    store.add(sid, Intervention("note", clock.now(), detail="Left with partner"), "Dr A")
    store.close()


def test_correction_rules_both_ways(ended) -> None:
    store, _rv, sid, clock = ended
    db = store.db
    first = store.load(sid).current("vitals")[0]
    assert permissions.why_not_correct(db, sid, "vitals", first["id"]) is None
    new_id = store.correct(
        sid, first["id"], VitalSigns(clock.now(), hr=61), "typo", "Dr A"
    ).primary_id

    reason = permissions.why_not_correct(db, sid, "vitals", first["id"])
    assert reason == "This entry was already corrected: correct the latest version."
    with pytest.raises(ValidationError) as refused:
        store.correct(sid, first["id"], VitalSigns(clock.now(), hr=62), "typo", "Dr A")
    assert _refusal(refused) == reason
    assert permissions.why_not_correct(db, sid, "vitals", new_id) is None  # the latest one

    alarm = store.load(sid).current("alarms")[0]
    derived = permissions.why_not_correct(db, sid, "alarms", alarm["id"])
    assert derived is not None and "correct the entry they came from" in derived
    missing = permissions.why_not_correct(db, sid, "vitals", 10**9)
    assert missing == "The entry to correct was not found in this session."


def test_amending_is_for_the_author_before_sign_off(ended) -> None:
    store, rv, sid, clock = ended
    db = store.db
    rivera = rv.accounts.find("rivera")
    log = store.load(sid)
    mine = next(v for v in log.current("vitals") if v["recorded_by"] == "Dr. A. Rivera")
    theirs = next(v for v in log.current("vitals") if v["recorded_by"] != "Dr. A. Rivera")
    entry = VitalSigns(clock.now(), hr=80)

    reason = permissions.why_not_amend(db, sid, rivera, "vitals", theirs["id"])
    assert reason == (
        f"Only {theirs['recorded_by']}, who recorded this entry, can amend it; add a review "
        "comment instead"
    )
    with pytest.raises(AccessRefused) as refused:
        rv.amend(sid, rivera, theirs["id"], entry, "misread")
    assert _refusal(refused) == reason

    assert permissions.why_not_amend(db, sid, rivera) is None
    assert permissions.why_not_amend(db, sid, rivera, "vitals", mine["id"]) is None
    rv.amend(sid, rivera, mine["id"], entry, "misread")


def test_signing_rules_both_ways_and_the_lock_after_it(ended) -> None:
    store, rv, sid, clock = ended
    db = store.db
    rivera, chen = rv.accounts.find("rivera"), rv.accounts.find("chen")

    role = permissions.why_not_sign(db, sid, rivera)
    assert role == (
        "Dr. A. Rivera (clinician) may not sign a session: it needs a supervisor or "
        "administrator account"
    )
    with pytest.raises(AccessRefused) as refused:
        rv.sign(sid, "rivera", "birch-valley-18")
    assert _refusal(refused) == role

    addendum = permissions.why_not_addendum(db, sid)
    assert addendum is not None
    with pytest.raises(AccessRefused) as refused:
        rv.add_addendum(sid, rivera, "late phone call")
    assert _refusal(refused) == addendum

    assert permissions.why_not_comment(db, sid, chen) is None
    assert permissions.why_not_sign(db, sid, chen) is None
    rv.sign(sid, "chen", "copper-meadow-9", confirmed=[f.key for f in rv.quality_flags(sid)])

    again = permissions.why_not_sign(db, sid, chen)
    assert again == "This session is already signed"
    with pytest.raises(AccessRefused) as refused:
        rv.sign(sid, "chen", "copper-meadow-9")
    assert _refusal(refused) == again

    locked = permissions.why_not_add(db, sid, "interventions")
    assert locked is not None and "signed by Dr M. Chen and is locked" in locked
    assert permissions.why_not_change(db, sid) == locked
    for question in (
        permissions.why_not_correct(db, sid, "vitals", 1),
        permissions.why_not_amend(db, sid, rivera, "vitals", 1),
        permissions.why_not_comment(db, sid, chen),
    ):
        assert question == locked
    with pytest.raises(StoreError) as refused:
        store.add(sid, Intervention("note", clock.now(), detail="late"), "Dr A")
    assert _refusal(refused) == locked
    with pytest.raises(StoreError) as refused:
        rv.add_review_comment(sid, chen, clock.now(), "late thought")
    assert _refusal(refused) == locked

    assert permissions.why_not_addendum(db, sid) is None
    rv.add_addendum(sid, rivera, "Patient phoned next day: slept well")


def test_an_open_session_is_not_signed(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    store = open_store(tmp_path / "s.sqlite", clock)
    steps = record_demo(store, clock, T0, 0.0, random.Random(1))
    next(steps)
    sid = store.list_sessions()[0]["id"]
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    reason = permissions.why_not_sign(store.db, sid, admin)
    assert reason == "End the session before signing it (it is still being recorded)"
    with pytest.raises(AccessRefused) as refused:
        Review(store).sign(sid, "admin", "alpine-harbour-7")
    assert _refusal(refused) == reason
    store.close()
