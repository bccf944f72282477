"""Each attending clinician attests the record at the session's end with their own key; verify
checks every attestation as it checks a sign-off."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from kapmonitor.demo import record_demo
from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import VitalSigns
from kapmonitor.domain.validation import ValidationError
from kapmonitor.store import signatures
from kapmonitor.store.accounts import AccessRefused, Accounts
from kapmonitor.store.signoff import Review
from kapmonitor.store.verify import verify_database
from tests.factories import T0, open_store

RIVERA = "birch-valley-18"


@pytest.fixture
def ended(tmp_path: Path):
    clock = FakeClock(T0)
    store = open_store(tmp_path / "e.sqlite", clock)
    for _ in record_demo(store, clock, T0, 0.0, random.Random(2)):
        pass
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    accounts.create_user(admin, "rivera", "Dr. A. Rivera", "clinician", RIVERA)
    accounts.create_user(admin, "lee", "Dr Lee", "clinician", "linden-river-31")
    session_id = store.list_sessions()[0]["id"]
    yield store, Review(store), session_id, clock
    store.close()


def test_an_attending_clinician_attests_with_their_key_and_verify_checks_it(ended) -> None:
    store, review, session_id, clock = ended
    review.attest(session_id, "rivera", RIVERA)
    (row,) = review.attestations(session_id)
    key = signatures.current_key(store.db, "rivera")
    assert (row["signer"], row["printed_name"], row["role"]) == (
        "rivera",
        "Dr. A. Rivera",
        "clinician",
    )
    assert row["key_fingerprint"] == key.fingerprint and signatures.signature_valid(
        row, key.public_key
    )
    with pytest.raises(ValidationError, match="already attested"):
        review.attest(session_id, "rivera", RIVERA)
    # A correction after the attestation is a new row, not covered: the attestation holds.
    first = store.load(session_id).current("vitals")[0]
    clock.advance(minutes=5)
    fixed = VitalSigns(clock.now(), hr=first["hr"], sbp=first["sbp"] + 2, dbp=first["dbp"])
    store.correct(session_id, first["id"], fixed, "Transposed digits", "Dr. A. Rivera")
    assert signatures.check_signatures(store.db) == []
    assert verify_database(store.path).ok


def test_only_an_attending_clinician_with_their_password_attests(ended) -> None:
    _store, review, session_id, _clock = ended
    with pytest.raises(AccessRefused, match="not an attending clinician"):
        review.attest(session_id, "lee", "linden-river-31")
    with pytest.raises(AccessRefused, match="Wrong user name or password"):
        review.attest(session_id, "rivera", "not-my-password")
    assert review.attestations(session_id) == []


def test_an_attested_row_edited_afterwards_is_named(ended) -> None:
    store, review, session_id, _clock = ended
    review.attest(session_id, "rivera", RIVERA)
    conn = sqlite3.connect(store.path)
    (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'doses_no_update'").fetchone()
    conn.execute("DROP TRIGGER doses_no_update")
    conn.execute("UPDATE doses SET dose_mg = dose_mg * 10 WHERE id = (SELECT min(id) FROM doses)")
    conn.execute(sql)
    conn.commit()
    conn.close()
    found = signatures.check_signatures(store.db)
    assert any(
        p.startswith(f"attestation #1 of session {session_id} by rivera")
        and "content no longer matches" in p
        for p in found
    ), found
