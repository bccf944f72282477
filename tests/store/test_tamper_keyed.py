"""The keyed chain under a secret key, and the honest migration from the unkeyed chain.

An encrypted database's audit key is derived from its secret database key: an insider with the
file and SQLite but no clinician's password cannot recompute a MAC. The entries an older version
chained with the public SHA-256 stay as they were and are pinned by the key marker that starts
the keyed chain (migration 0011), so rewriting them afterwards is named too.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import VitalSigns
from kapmonitor.store import audit, key_slots
from kapmonitor.store.schema import migrations
from kapmonitor.store.verify import PLAIN_KEY_NOTE, verify_database
from tests.factories import T0, open_store, session_start

SECRET = key_slots.DatabaseKeys(os.urandom(32), encrypted=True)
PLAIN_MAC_KEY = audit.audit_key(key_slots.PLAIN_KEYS)


@pytest.fixture
def keyed(tmp_path: Path) -> Path:
    """A file whose entries since its first session are sealed under a secret key (as an
    encrypted database's are: the key is attached when an account unlocks it)."""
    path = tmp_path / "keyed.sqlite"
    clock = FakeClock(T0)
    store = open_store(path, clock)
    key_slots.attach(store.db, SECRET)
    session_id = store.start_session(session_start(clock), "Dr A")
    for minute in range(4):
        clock.advance(minutes=1)
        store.add(session_id, VitalSigns(clock.now(), hr=70 + minute, sbp=120, dbp=80), "Dr A")
    store.close()
    return path


def _markers(path: Path) -> list[int]:
    conn = sqlite3.connect(path)
    found = [r[0] for r in conn.execute("SELECT id FROM audit WHERE action = 'audit_key'")]
    conn.close()
    return found


def test_the_keyed_chain_verifies_with_its_key_and_not_without(keyed: Path) -> None:
    plain_marker, secret_marker = _markers(keyed)
    report = verify_database(keyed, keys=SECRET)
    assert report.ok, report.lines
    assert PLAIN_KEY_NOTE not in report.lines  # the newest stretch is under a secret key
    assert (
        f"Note: audit entry #{plain_marker}: sealed while the file was plain (under its public "
        f"key); anyone could have recomputed them until entry #{secret_marker} pinned them."
    ) in report.lines
    last = report.entries
    assert verify_database(keyed).problems == [
        f"audit entries #{secret_marker}–#{last}: sealed with a key this check was not "
        "given; unlock the database to verify them (or they were forged under a made-up key)"
    ]


def test_an_edit_recomputed_without_the_secret_key_is_named(keyed: Path) -> None:
    """The insider recomputes the row hash and every MAC after it with the key they can
    compute (the public one of a plain file): each no longer matches."""
    conn = sqlite3.connect(keyed)
    conn.row_factory = sqlite3.Row
    conn.execute("DROP TRIGGER vitals_no_update")
    conn.execute("DROP TRIGGER audit_no_update")
    vital = conn.execute("SELECT id FROM vitals ORDER BY id LIMIT 1").fetchone()[0]
    conn.execute("UPDATE vitals SET sbp = 90, dbp = 60 WHERE id = ?", [vital])
    row = dict(conn.execute("SELECT * FROM vitals WHERE id = ?", [vital]).fetchone())
    (entry,) = conn.execute(
        "SELECT id FROM audit WHERE table_name = 'vitals' AND row_id = ?", [vital]
    ).fetchone()
    conn.execute(
        "UPDATE audit SET row_hash = ? WHERE id = ?",
        [audit.row_hash(audit.hashed_content("vitals", row)), entry],
    )
    previous = conn.execute("SELECT hash FROM audit WHERE id = ?", [entry - 1]).fetchone()[0]
    for found in conn.execute("SELECT * FROM audit WHERE id >= ? ORDER BY id", [entry]).fetchall():
        fields = {name: found[name] for name in audit.CHAINED_FIELDS}
        digest = audit.entry_mac(PLAIN_MAC_KEY, previous, fields)
        conn.execute(
            "UPDATE audit SET prev_hash = ?, hash = ? WHERE id = ?", [previous, digest, found["id"]]
        )
        previous = digest
    conn.commit()
    last = conn.execute("SELECT max(id) FROM audit").fetchone()[0]
    conn.close()
    problems = verify_database(keyed, keys=SECRET).problems
    assert f"audit entries #{entry}–#{last}: altered (their hashes do not match)" in problems


def test_a_continuation_forged_under_the_public_key_is_named(keyed: Path) -> None:
    """Appending a key marker that switches an encrypted file's chain to the public key, then
    entries under it, is the one way to add well-chained entries without the secret key."""
    conn = sqlite3.connect(keyed)
    conn.row_factory = sqlite3.Row
    last = conn.execute("SELECT * FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    fields = {
        "at": last["at"],
        "actor": audit.SYSTEM,
        "action": audit.KEY_MARKER,
        "session_id": None,
        "table_name": None,
        "row_id": None,
        "row_hash": None,
        "detail": audit.canonical({"key_id": audit.PLAIN_KEY_ID, "before": 0, "digest": ""}),
    }
    digest = audit.entry_mac(PLAIN_MAC_KEY, last["hash"], fields)
    conn.execute(
        "INSERT INTO audit (at, actor, action, session_id, table_name, row_id, row_hash, detail, "
        "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [*fields.values(), last["hash"], digest],
    )
    conn.commit()
    conn.close()
    marker = last["id"] + 1
    problems = verify_database(keyed, keys=SECRET).problems
    assert (
        f"audit entry #{marker}: switches an encrypted database's chain to the public key of a "
        "plain file (a forged continuation)"
    ) in problems


# --- from the unkeyed chain of earlier versions -----------------------------------------------


def _file_from_before_the_keyed_chain(path: Path) -> None:
    """A file as version 0.x left it: migrated up to 0010, its entries chained with the public
    SHA-256 (three events, as an older app wrote them)."""
    conn = sqlite3.connect(path)
    db = Database(conn)
    migrations.apply(db, stop_before="0011_keyed_audit")
    previous = audit.GENESIS
    for n in range(3):
        fields = {
            "at": f"2026-01-0{n + 1}T09:00:00.000Z",
            "actor": "admin",
            "action": "sign_in",
            "session_id": None,
            "table_name": None,
            "row_id": None,
            "row_hash": None,
            "detail": "{}",
        }
        digest = audit.entry_hash(previous, fields)
        conn.execute(
            "INSERT INTO audit (at, actor, action, session_id, table_name, row_id, row_hash, "
            "detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [*fields.values(), previous, digest],
        )
        previous = digest
    conn.commit()
    conn.close()


def test_an_older_file_says_its_whole_trail_is_unkeyed(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _file_from_before_the_keyed_chain(path)
    report = verify_database(path)
    assert report.ok, report.lines
    assert report.lines[1] == (
        "Note: this file is from before the keyed audit chain: its 3 entries are chained with an "
        "unkeyed hash that anyone can recompute."
    )


def test_opening_starts_the_keyed_chain_and_pins_the_unkeyed_entries(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _file_from_before_the_keyed_chain(path)
    open_store(path).close()  # migration 0011: the key marker, entry #4
    assert _markers(path) == [4]
    report = verify_database(path)
    assert report.ok, report.lines
    assert (
        "Note: audit entries #1–#3: from before the keyed chain (an unkeyed hash anyone could "
        "recompute); entry #4 pinned them when the keyed chain started."
    ) in report.lines
    # Rewriting an unkeyed entry afterwards, even with its chain recomputed, is named.
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    (trigger,) = conn.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'audit_no_update'"
    ).fetchone()
    conn.execute("DROP TRIGGER audit_no_update")
    previous = conn.execute("SELECT hash FROM audit WHERE id = 1").fetchone()[0]
    for found in conn.execute("SELECT * FROM audit WHERE id IN (2, 3) ORDER BY id").fetchall():
        fields = {name: found[name] for name in audit.CHAINED_FIELDS}
        fields["actor"] = "someone else" if found["id"] == 2 else fields["actor"]
        digest = audit.entry_hash(previous, fields)
        conn.execute(
            "UPDATE audit SET actor = ?, prev_hash = ?, hash = ? WHERE id = ?",
            [fields["actor"], previous, digest, found["id"]],
        )
        previous = digest
    conn.execute("UPDATE audit SET prev_hash = ? WHERE id = 4", [previous])
    conn.execute(trigger)  # put back: no trace in the schema
    conn.commit()
    conn.close()
    problems = verify_database(path).problems
    assert problems[0] == (
        "audit entry #4 (where the keyed chain starts or its key changes) does not match the 3 "
        "entries before it: entries before #4 were altered, removed or inserted"
    )
    assert "audit entry #4: altered (its hash does not match)" in problems


def test_an_unkeyed_trail_in_a_file_whose_schema_has_the_keyed_chain_is_a_rewrite(
    tmp_path: Path,
) -> None:
    """Rebuilding the whole trail with the public SHA-256 (key marker dropped) is named."""
    path = tmp_path / "new.sqlite"
    store = open_store(path)
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER audit_no_delete")
    conn.execute("DELETE FROM audit")
    fields = {
        "at": "2026-01-01T09:00:00.000Z",
        "actor": "admin",
        "action": "sign_in",
        "session_id": None,
        "table_name": None,
        "row_id": None,
        "row_hash": None,
        "detail": "{}",
    }
    conn.execute(
        "INSERT INTO audit (at, actor, action, session_id, table_name, row_id, row_hash, detail, "
        "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [*fields.values(), audit.GENESIS, audit.entry_hash(audit.GENESIS, fields)],
    )
    (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'audit_no_update'").fetchone()
    conn.execute(sql.replace("audit_no_update BEFORE UPDATE", "audit_no_delete BEFORE DELETE", 1))
    conn.commit()
    conn.close()
    problems = verify_database(path).problems
    assert (
        "the audit trail has no keyed entries although this file's schema includes the keyed "
        "chain (migration 0011): the chain was recomputed without its key"
    ) in problems
