"""Signatures that cannot be forged: keys wrapped by the password, the content hash signed,
verify checking every signature with the signer's public key."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

import pytest

from kapmonitor.demo import record_demo
from kapmonitor.domain.clock import FakeClock
from kapmonitor.store import signatures
from kapmonitor.store.accounts import Accounts
from kapmonitor.store.signatures import KeyUnavailable
from kapmonitor.store.signoff import Review
from kapmonitor.store.verify import verify_database
from tests.factories import T0, open_store

CHEN = "copper-meadow-9"


@pytest.fixture
def signed(tmp_path: Path):
    """A demo session signed by the supervisor chen, through the app's sign path."""
    clock = FakeClock(T0)
    store = open_store(tmp_path / "s.sqlite", clock)
    for _ in record_demo(store, clock, T0, 0.0, random.Random(2)):
        pass
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    accounts.create_user(admin, "chen", "Dr M. Chen", "supervisor", CHEN)
    accounts.create_user(admin, "rivera", "Dr. A. Rivera", "clinician", "birch-valley-18")
    session_id = store.list_sessions()[0]["id"]
    review = Review(store)
    clock.advance(hours=2)
    review.sign(
        session_id, "chen", CHEN, confirmed=[f.key for f in review.quality_flags(session_id)]
    )
    yield store, review, session_id, clock
    store.close()


def test_every_account_gets_a_key_wrapped_by_its_password(signed) -> None:
    store, _review, _sid, _clock = signed
    keys = {k.username: k for k in signatures.all_keys(store.db)}
    assert set(keys) == {"admin", "chen", "rivera"}
    chen = keys["chen"]
    assert chen.fingerprint == signatures.fingerprint(chen.public_key)
    private = signatures.unwrap(chen.wrapped_key, CHEN)
    assert signatures.public_hex(private) == chen.public_key
    with pytest.raises(KeyUnavailable, match="does not open"):
        signatures.unwrap(chen.wrapped_key, "someone-elses-password")
    raw = store.path.read_bytes()
    assert CHEN.encode() not in raw
    (fingerprints,) = store.db.execute(
        "SELECT group_concat(detail) FROM audit WHERE action = 'signing_key'"
    ).fetchone()
    assert chen.fingerprint in fingerprints  # the fingerprint is in the chained trail


def test_a_sign_off_signs_the_content_hash_and_verify_checks_it(signed) -> None:
    store, review, session_id, _clock = signed
    seal = review.seal(session_id)
    assert seal is not None and not seal["legacy"]
    chen = signatures.current_key(store.db, "chen")
    assert seal["key_fingerprint"] == chen.fingerprint
    assert signatures.signature_valid(seal, chen.public_key)
    covered = json.loads(seal["covered"])
    assert covered["vitals"] > 0 and set(covered) == set(signatures.COVERED_TABLES)
    head = (seal["audit_head_id"], seal["audit_head_hash"])
    assert signatures.content_hash(store.db, session_id, covered, head) == seal["content_hash"]
    assert signatures.check_signatures(store.db) == []
    assert verify_database(store.path).ok


def test_an_altered_statement_does_not_verify(signed) -> None:
    store, review, session_id, _clock = signed
    seal = dict(review.seal(session_id))
    chen = signatures.current_key(store.db, "chen")
    for name, value in (("role", "administrator"), ("meaning", "not reviewed"), ("signer", "x")):
        assert not signatures.signature_valid({**seal, name: value}, chen.public_key)


def test_a_vital_sign_edited_after_signing_is_named(signed) -> None:
    store, _review, session_id, _clock = signed
    conn = sqlite3.connect(store.path)
    (sql,) = conn.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'vitals_no_update'"
    ).fetchone()
    conn.execute("DROP TRIGGER vitals_no_update")
    conn.execute("UPDATE vitals SET sbp = 138 WHERE id = (SELECT min(id) FROM vitals)")
    conn.execute(sql)
    conn.commit()
    conn.close()
    problems = signatures.check_signatures(store.db)
    assert any(
        "content no longer matches what was signed" in p and session_id in p for p in problems
    )


def test_a_row_added_after_signing_is_named(signed) -> None:
    store, _review, session_id, _clock = signed
    conn = sqlite3.connect(store.path)
    (sql,) = conn.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'interventions_signed_lock'"
    ).fetchone()
    conn.execute("DROP TRIGGER interventions_signed_lock")
    conn.execute(
        "INSERT INTO interventions (session_id, observed_at, recorded_at, recorded_by, category) "
        "VALUES (?, '2026-03-02T12:00:00.000Z', '2026-03-02T12:00:00.000Z', 'x', 'airway')",
        [session_id],
    )
    conn.execute(sql)
    conn.commit()
    conn.close()
    problems = signatures.check_signatures(store.db)
    assert any("interventions row(s) were added" in p for p in problems)


def test_a_signature_from_before_keys_is_sealed_as_legacy(tmp_path: Path) -> None:
    """Migration 0012 gives a signature already in the file a legacy seal: not checked with a
    key (it never had one), but a signature row without any seal is named."""
    clock = FakeClock(T0)
    store = open_store(tmp_path / "l.sqlite", clock)
    for _ in record_demo(store, clock, T0, 0.0, random.Random(2)):
        pass
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    accounts.create_user(admin, "chen", "Dr M. Chen", "supervisor", CHEN)
    session_id = store.list_sessions()[0]["id"]
    db = store.db
    with db.atomic():
        db.execute(
            "INSERT INTO signatures (session_id, observed_at, recorded_at, recorded_by, "
            "printed_name, role, meaning) VALUES (?, '2026-03-02T12:00:00.000Z', "
            "'2026-03-02T12:00:00.000Z', 'chen', 'Dr M. Chen', 'supervisor', 'approved')",
            [session_id],
        )
        db.execute("DELETE FROM temp.kapmonitor_pending_audit")
    assert any("has no cryptographic seal" in p for p in signatures.check_signatures(db))
    db.execute("DELETE FROM _sqlite_migrations WHERE name = '0012_signing_keys'")
    for table in ("signing_keys", "account_roles", "account_pins", "signature_seals"):
        db.execute(f"DROP TABLE {table}")
    db.execute("DROP TABLE imported_signatures")
    # 0015 rewrites a trigger 0012 makes (addenda after a central sign-off): an old file has
    # neither, so 0015 is taken out too and both run again, in order
    db.execute("DELETE FROM _sqlite_migrations WHERE name = '0015_central_reviews'")
    db.execute("DROP TABLE central_reviews")
    for (name,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%_central_lock'"
    ).fetchall():
        db.execute(f"DROP TRIGGER {name}")
    store.close()
    store = open_store(tmp_path / "l.sqlite", clock)  # 0012 runs again, as on an old file
    (legacy,) = store.db.execute("SELECT legacy FROM signature_seals").fetchone()
    assert legacy == 1
    assert signatures.check_signatures(store.db) == []
    store.close()


def test_a_new_key_is_appended_to_the_anchor_log(tmp_path: Path, monkeypatch) -> None:
    """The clinic's anchor log (a second place) gets each new key's fingerprint with the chain
    head that covers it: a key planted later is on neither the log nor the account sheet."""
    from kapmonitor.store import anchors

    folder = tmp_path / "anchors"
    monkeypatch.setattr(anchors, "log_folder", lambda: folder)
    clock = FakeClock(T0)
    store = open_store(tmp_path / "k.sqlite", clock)
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    accounts.create_user(admin, "chen", "Dr M. Chen", "supervisor", CHEN)
    lines = [
        json.loads(line)
        for line in (folder / anchors.LOG_NAME).read_text(encoding="utf-8").splitlines()
    ]
    chen = accounts.signing_key("chen")
    (entry,) = [line for line in lines if "chen" in line["event"]]
    assert entry["event"] == f"signing_key chen {chen.fingerprint} created"
    assert anchors.read(folder / anchors.LOG_NAME)  # the log still reads as anchors
    assert "chen" in accounts.sheet() and signatures.printable(chen.fingerprint) in accounts.sheet()
    store.close()


def test_a_real_signature_holds_against_the_anchor_log(tmp_path: Path, monkeypatch) -> None:
    """Keys made while the log was kept are in it; a key made before the log was set up is
    not expected there."""
    from kapmonitor.store import anchors

    clock = FakeClock(T0)
    store = open_store(tmp_path / "a.sqlite", clock)
    for _ in record_demo(store, clock, T0, 0.0, random.Random(2)):
        pass
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    accounts.create_user(admin, "chen", "Dr M. Chen", "supervisor", CHEN)
    folder = tmp_path / "anchors"
    monkeypatch.setattr(anchors, "log_folder", lambda: folder)  # set up after chen's key
    accounts.create_user(admin, "ray", "Ray Super", "supervisor", "rowan-quartz-64")
    review = Review(store)
    sid = store.list_sessions()[0]["id"]
    review.sign(sid, "chen", CHEN, confirmed=[f.key for f in review.quality_flags(sid)])
    log = folder / anchors.LOG_NAME
    assert "signing_key ray" in log.read_text(encoding="utf-8")
    assert "signing_key chen" not in log.read_text(encoding="utf-8")
    assert signatures.check_signatures(store.db, [log]) == []
    store.close()
