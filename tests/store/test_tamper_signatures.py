"""The issue's signature attacks, tried as an insider with the file and SQLite would, and what
verify (or the app's sign path) says about each.

- a forged signature row inserted with SQL (a supervisor who never typed a password);
- the supervisor's password hash swapped for a known one, a signature made in the app, the hash
  put back;
- a clinician's role raised with SQL, a signature made in the app, the role put back.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kapmonitor.demo import record_demo
from kapmonitor.domain.clock import FakeClock
from kapmonitor.store import signatures
from kapmonitor.store.accounts import AccessRefused, Accounts, hash_secret
from kapmonitor.store.signatures import KeyUnavailable
from kapmonitor.store.signoff import Review
from kapmonitor.store.verify import verify_database
from tests.factories import T0, open_store

CHEN = "copper-meadow-9"
RIVERA = "birch-valley-18"
KNOWN = "attacker-knows-this-1"
SIGNED_AT = "2026-03-02T12:00:00.000Z"


@pytest.fixture
def clinic(tmp_path: Path) -> Iterator[tuple[Path, str, FakeClock]]:
    """An ended demo session, a supervisor (chen) and a clinician (rivera); closed."""
    clock = FakeClock(T0)
    path = tmp_path / "clinic.sqlite"
    store = open_store(path, clock)
    for _ in record_demo(store, clock, T0, 0.0, random.Random(2)):
        pass
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    accounts.create_user(admin, "chen", "Dr M. Chen", "supervisor", CHEN)
    accounts.create_user(admin, "rivera", "Dr. A. Rivera", "clinician", RIVERA)
    session_id = store.list_sessions()[0]["id"]
    store.close()
    clock.advance(hours=2)
    yield path, session_id, clock


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """The sqlite3 shell on the file: no app, no audit triggers."""
    conn = sqlite3.connect(path)
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()


def without_trigger(conn: sqlite3.Connection, name: str, *statements: tuple[str, list]) -> None:
    """Drop a trigger, run the statements, put the trigger back as it was (a careful insider:
    a missing trigger is named by the schema check)."""
    (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", [name]).fetchone()
    conn.execute(f"DROP TRIGGER {name}")
    for statement, params in statements:
        conn.execute(statement, params)
    conn.execute(sql)


def sign_in_app(path: Path, clock: FakeClock, session_id: str, username: str, secret: str):
    store = open_store(path, clock)
    try:
        review = Review(store)
        flags = [f.key for f in review.quality_flags(session_id)]
        return review.sign(session_id, username, secret, confirmed=flags)
    finally:
        store.close()


def problems(path: Path) -> list[str]:
    return verify_database(path).problems


def test_a_forged_signature_row_is_named(clinic) -> None:
    path, session_id, _clock = clinic
    with raw(path) as conn:
        conn.execute(
            "INSERT INTO signatures (session_id, observed_at, recorded_at, recorded_by, "
            "printed_name, role, meaning) VALUES (?, ?, ?, 'chen', 'Dr M. Chen', 'supervisor', "
            "'reviewed and approved')",
            [session_id, SIGNED_AT, SIGNED_AT],
        )
    found = problems(path)
    assert any("has no cryptographic seal" in p and "chen" in p for p in found), found


@pytest.mark.parametrize("claims_chens_key", [False, True])
def test_a_forged_signature_with_a_made_up_seal_is_named(clinic, claims_chens_key: bool) -> None:
    """The insider adds a seal too, signed with a key of their own (they cannot open chen's):
    either naming their own key (unknown) or claiming chen's fingerprint (does not verify)."""
    path, session_id, _clock = clinic
    mine = Ed25519PrivateKey.generate()
    public = signatures.public_hex(mine)
    with raw(path) as conn:
        conn.execute(
            "INSERT INTO signatures (session_id, observed_at, recorded_at, recorded_by, "
            "printed_name, role, meaning) VALUES (?, ?, ?, 'chen', 'Dr M. Chen', 'supervisor', "
            "'reviewed and approved')",
            [session_id, SIGNED_AT, SIGNED_AT],
        )
        (signature_id,) = conn.execute("SELECT max(id) FROM signatures").fetchone()
        (chen_fp,) = conn.execute(
            "SELECT fingerprint FROM signing_keys WHERE username = 'chen'"
        ).fetchone()
        fingerprint = chen_fp if claims_chens_key else signatures.fingerprint(public)
        fields = {
            "session_id": session_id,
            "signer": "chen",
            "printed_name": "Dr M. Chen",
            "role": "supervisor",
            "meaning": "reviewed and approved",
            "signed_at": SIGNED_AT,
            "content_hash": "0" * 64,
            "audit_head_id": 1,
            "audit_head_hash": "0" * 64,
            "key_fingerprint": fingerprint,
        }
        conn.execute(
            "INSERT INTO signature_seals (session_id, signature_id, signer, printed_name, role, "
            "meaning, signed_at, content_hash, covered, audit_head_id, audit_head_hash, "
            "key_fingerprint, public_key, signature, legacy, observed_at, recorded_at, "
            "recorded_by) VALUES (?, ?, 'chen', 'Dr M. Chen', 'supervisor', "
            "'reviewed and approved', ?, ?, '{}', 1, ?, ?, ?, ?, 0, ?, ?, 'chen')",
            [
                session_id,
                signature_id,
                SIGNED_AT,
                "0" * 64,
                "0" * 64,
                fingerprint,
                public,
                mine.sign(signatures.statement(fields)).hex(),
                SIGNED_AT,
                SIGNED_AT,
            ],
        )
    found = problems(path)
    if claims_chens_key:
        assert any("does not verify with chen's public key" in p for p in found), found
    else:
        assert any("not one of chen's keys" in p and "unknown key" in p for p in found), found
    assert any("audit trail it was signed on" in p for p in found), found
    assert any("signature_seals row" in p and "outside the app" in p for p in found), found


def test_a_swapped_password_hash_signs_in_but_cannot_sign(clinic) -> None:
    """The insider puts a hash of a password they know in chen's row, signs in the app as
    chen, and puts the hash back. The sign-in works, but chen's key is wrapped by chen's real
    password: nothing is signed, and the refusal is audited."""
    path, session_id, clock = clinic
    with raw(path) as conn:
        (real,) = conn.execute("SELECT password_hash FROM users WHERE username = 'chen'").fetchone()
        conn.execute(
            "UPDATE users SET password_hash = ? WHERE username = 'chen'", [hash_secret(KNOWN)]
        )
    with pytest.raises(KeyUnavailable, match="does not open with this password"):
        sign_in_app(path, clock, session_id, "chen", KNOWN)
    with raw(path) as conn:
        conn.execute("UPDATE users SET password_hash = ? WHERE username = 'chen'", [real])
        assert conn.execute("SELECT count(*) FROM signatures").fetchone()[0] == 0
        (refused,) = conn.execute(
            "SELECT count(*) FROM audit WHERE action = 'signing_key_refused' AND actor = 'chen'"
        ).fetchone()
        assert refused == 1
    # Had the insider written the signature themselves, with a key of their own, verify
    # names it (test above); the app's own path made none.
    assert not any("signature #" in p for p in problems(path))


def test_a_clinician_raised_with_sql_cannot_sign_in_the_app(clinic) -> None:
    """The role raised with SQL (past H2's trigger, put back as it was): the app's sign path
    takes the role from the audited history, which still says clinician."""
    path, session_id, clock = clinic
    with raw(path) as conn:
        without_trigger(
            conn,
            "users_role_change",
            ("UPDATE users SET role = 'supervisor' WHERE username = 'rivera'", []),
        )
    with pytest.raises(AccessRefused, match="not given through the administrator's account"):
        sign_in_app(path, clock, session_id, "rivera", RIVERA)
    with raw(path) as conn:
        without_trigger(
            conn,
            "users_role_change",
            ("UPDATE users SET role = 'clinician' WHERE username = 'rivera'", []),
        )
        assert conn.execute("SELECT count(*) FROM signatures").fetchone()[0] == 0


def test_a_clinician_raised_in_users_and_in_the_role_history_is_named(clinic) -> None:
    """The deeper attack: the role raised in ``users`` and a forged ``account_roles`` row, a
    signature made in the app, then both put back (the forged history row deleted). verify
    names the signature: its role is not the one the audited history gave."""
    path, session_id, clock = clinic
    with raw(path) as conn:
        without_trigger(
            conn,
            "users_role_change",
            ("UPDATE users SET role = 'supervisor' WHERE username = 'rivera'", []),
        )
        conn.execute(
            "INSERT INTO account_roles (username, role, observed_at, recorded_at, recorded_by) "
            "VALUES ('rivera', 'supervisor', ?, ?, 'admin')",
            ["2026-03-02T09:00:00.000Z", "2026-03-02T09:00:00.000Z"],
        )
    sign_in_app(path, clock, session_id, "rivera", RIVERA)  # the app is fooled into signing
    with raw(path) as conn:
        without_trigger(
            conn,
            "users_role_change",
            ("UPDATE users SET role = 'clinician' WHERE username = 'rivera'", []),
        )
        without_trigger(
            conn,
            "account_roles_no_delete",
            ("DELETE FROM account_roles WHERE username = 'rivera' AND role = 'supervisor'", []),
        )
    found = problems(path)
    assert any("signed as supervisor, but rivera was a clinician then" in p for p in found), found


def test_a_key_planted_with_sql_is_named_against_the_anchor_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole forgery done well: a key of the insider's own planted in ``signing_keys`` for
    chen, a signature and seal that verify with it over the true content hash. The clinic's
    anchor log, kept since the accounts were made, never recorded that key."""
    from kapmonitor.store import anchors

    folder = tmp_path / "usb-stick"
    monkeypatch.setattr(anchors, "log_folder", lambda: folder)
    clock = FakeClock(T0)
    path = tmp_path / "clinic.sqlite"
    store = open_store(path, clock)
    for _ in record_demo(store, clock, T0, 0.0, random.Random(2)):
        pass
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    accounts.create_user(admin, "chen", "Dr M. Chen", "supervisor", CHEN)
    session_id = store.list_sessions()[0]["id"]
    db = store.db
    mine = Ed25519PrivateKey.generate()
    public = signatures.public_hex(mine)
    fingerprint = signatures.fingerprint(public)
    with db.atomic():  # the insider's SQL (no audit entries are sealed for these rows)
        db.execute(
            "INSERT INTO signing_keys (username, role, public_key, fingerprint, wrapped_key, "
            "reason, observed_at, recorded_at, recorded_by) VALUES ('chen', 'supervisor', ?, ?, "
            "'{}', 'created', ?, ?, 'admin')",
            [public, fingerprint, SIGNED_AT, SIGNED_AT],
        )
        db.execute(
            "INSERT INTO signatures (session_id, observed_at, recorded_at, recorded_by, "
            "printed_name, role, meaning) VALUES (?, ?, ?, 'chen', 'Dr M. Chen', 'supervisor', "
            "'reviewed and approved')",
            [session_id, SIGNED_AT, SIGNED_AT],
        )
        (signature_id,) = db.execute("SELECT max(id) FROM signatures").fetchone()
        key = signatures.current_key(db, "chen")
        signatures.seal_signature(
            db,
            session_id,
            {
                "id": signature_id,
                "recorded_by": "chen",
                "printed_name": "Dr M. Chen",
                "role": "supervisor",
                "meaning": "reviewed and approved",
                "recorded_at": SIGNED_AT,
            },
            mine,
            key,
        )
        db.execute("DELETE FROM temp.kapmonitor_pending_audit")
    log = folder / anchors.LOG_NAME
    found = signatures.check_signatures(db, [log])
    assert found == [
        f"signature #{signature_id} of session {session_id}: signed with a key "
        f"({signatures.printable(fingerprint)}) that the anchor log never recorded, though it "
        "was recording keys by then (a key planted outside the app)"
    ]
    assert signatures.check_signatures(db) == []  # without the log, the signature itself holds
    store.close()
    everything = verify_database(path).problems
    assert any("signing_keys row" in p and "outside the app" in p for p in everything)


def test_a_swapped_hash_with_a_planted_key_signs_but_verify_names_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The insider goes further: besides the known hash, a key row wrapped by the known password
    is planted for chen. The app then signs (it cannot tell), but the key row was never written
    by the app (no audit entry) and the clinic's anchor log never recorded it."""
    from kapmonitor.store import anchors

    folder = tmp_path / "usb-stick"
    monkeypatch.setattr(anchors, "log_folder", lambda: folder)
    clock = FakeClock(T0)
    path = tmp_path / "clinic.sqlite"
    store = open_store(path, clock)
    for _ in record_demo(store, clock, T0, 0.0, random.Random(2)):
        pass
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    accounts.create_user(admin, "chen", "Dr M. Chen", "supervisor", CHEN)
    session_id = store.list_sessions()[0]["id"]
    store.close()
    mine = Ed25519PrivateKey.generate()
    public = signatures.public_hex(mine)
    wrapped = signatures.wrap(mine, KNOWN, signatures.KdfCost(2**10, 8, 1))
    with raw(path) as conn:
        (real,) = conn.execute("SELECT password_hash FROM users WHERE username = 'chen'").fetchone()
        conn.execute(
            "UPDATE users SET password_hash = ? WHERE username = 'chen'", [hash_secret(KNOWN)]
        )
        conn.execute(
            "INSERT INTO signing_keys (username, role, public_key, fingerprint, wrapped_key, "
            "reason, observed_at, recorded_at, recorded_by) VALUES ('chen', 'supervisor', ?, ?, "
            "?, 'password_changed', ?, ?, 'chen')",
            [public, signatures.fingerprint(public), wrapped, SIGNED_AT, SIGNED_AT],
        )
    clock.advance(hours=2)
    sign_in_app(path, clock, session_id, "chen", KNOWN)  # the app is fooled
    with raw(path) as conn:
        conn.execute("UPDATE users SET password_hash = ? WHERE username = 'chen'", [real])
    found = verify_database(path).problems
    assert any("signing_keys row" in p and "outside the app" in p for p in found), found
    store = open_store(path, clock)
    with_log = signatures.check_signatures(store.db, [folder / anchors.LOG_NAME])
    store.close()
    assert any("anchor log never recorded" in p for p in with_log), with_log


def test_a_device_reading_changed_after_signing_is_named(tmp_path: Path) -> None:
    """Device readings (pending or marked artefact) are part of what a sign-off signs: one
    rewritten under a signature, with its trigger put back, makes the signature fail."""
    from datetime import timedelta

    from kapmonitor.devices.reading import DeviceReading
    from kapmonitor.store import device_store

    clock = FakeClock(T0)
    path = tmp_path / "clinic.sqlite"
    store = open_store(path, clock)
    reading = DeviceReading(
        device_id="MINDRAY^BED7",
        source="mllp",
        message_id="M1",
        received_at=clock.now(),
        observed_at=clock.now() - timedelta(seconds=1),
        vital="spo2",
        value=84.0,
        unit="%",
        code="MDC:150456",
    )
    added = False
    for kind, _row in record_demo(store, clock, T0, 0.0, random.Random(2)):
        if kind == "vitals" and not added:  # a pending reading while the session runs
            session_id = store.list_sessions()[0]["id"]
            device_store.add_device_readings(store, session_id, [reading])
            added = True
    assert added
    session_id = store.list_sessions()[0]["id"]
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    accounts.create_user(admin, "chen", "Dr M. Chen", "supervisor", CHEN)
    store.close()
    clock.advance(hours=2)
    sign_in_app(path, clock, session_id, "chen", CHEN)
    assert not problems(path)
    with raw(path) as conn:
        (reading_id,) = conn.execute(
            "SELECT id FROM device_readings WHERE session_id = ?", [session_id]
        ).fetchone()
        triggers = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name = 'device_readings' AND sql LIKE '%UPDATE%'"
            )
        ]
        assert triggers
        saved = [
            conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", [t]).fetchone()[0]
            for t in triggers
        ]
        for name in triggers:
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("UPDATE device_readings SET value = 97 WHERE id = ?", [reading_id])
        for sql in saved:
            conn.execute(sql)
    found = problems(path)
    assert any(
        p.startswith("signature #1") and "content no longer matches what was signed" in p
        for p in found
    ), found
