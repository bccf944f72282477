"""Migration 0016 rebuilds the audit trail without the unique index on ``hash`` and changes no
entry: a file written at schema 15 upgrades with every entry (id, fields, prev_hash, hash) as it
was, still verifies, still refuses an UPDATE or DELETE of an entry, and chains new entries on."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlite_utils import Database

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import VitalSigns
from kapmonitor.store import audit, verify
from kapmonitor.store.schema import SCHEMA_VERSION
from tests.factories import T0, open_store, session_start
from tests.store.old_schema import file_before, insert_session

SID = "b" * 32
STAMP = "2026-03-02T09:00:00.000Z"


def _schema_15_file(path: Path, clock: FakeClock) -> list[tuple]:
    conn, db = file_before(path, "0016_audit_hash_index")
    assert db.execute("PRAGMA user_version").fetchone()[0] == 15
    audit.install(db)
    with db.atomic():
        insert_session(db, SID, STAMP)
        for hr in (70, 72, 74):
            db.execute(
                "INSERT INTO vitals (session_id, observed_at, recorded_at, recorded_by, sbp, "
                "dbp, hr, spo2) VALUES (?, ?, ?, 'Dr A', 120, 80, ?, 98)",
                [SID, STAMP, STAMP, hr],
            )
        audit.seal(db, "Dr A", "insert", clock.now(), SID)
    assert "UNIQUE" in _audit_sql(db)
    entries = db.execute("SELECT * FROM audit ORDER BY id").fetchall()
    conn.close()
    return entries


def _audit_sql(db: Database) -> str:
    return db.execute("SELECT sql FROM sqlite_master WHERE name = 'audit'").fetchone()[0]


def test_the_upgrade_keeps_every_audit_entry_and_the_chain_verifies(tmp_path: Path) -> None:
    path = tmp_path / "v15.sqlite"
    clock = FakeClock(T0)
    before = _schema_15_file(path, clock)
    assert len(before) >= 5

    store = open_store(path, clock)  # runs 0016
    db = store.db
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 16
    kept = db.execute("SELECT * FROM audit WHERE id <= ? ORDER BY id", [before[-1][0]])
    assert kept.fetchall() == before
    assert "UNIQUE" not in _audit_sql(db)
    indexes = {r[0] for r in db.execute("SELECT name FROM pragma_index_list('audit')")}
    assert indexes == {"audit_row", "audit_session", "audit_actor_action"}
    assert not verify.verify(db).problems
    assert not db.execute("PRAGMA foreign_key_check").fetchall()

    store.add(SID, VitalSigns(clock.now(), hr=80), "Dr B")  # chains on the copied entries
    assert not verify.verify(db).problems
    assert db.execute("SELECT count(*) FROM audit").fetchone()[0] > len(before)


def test_the_rebuilt_trail_is_still_append_only(tmp_path: Path) -> None:
    path = tmp_path / "v15.sqlite"
    clock = FakeClock(T0)
    _schema_15_file(path, clock)
    store = open_store(path, clock)
    with pytest.raises(Exception, match="append-only"):
        store.db.execute("UPDATE audit SET actor = 'someone else' WHERE id = 1")
    with pytest.raises(Exception, match="append-only"):
        store.db.execute("DELETE FROM audit WHERE id = 1")
    triggers = {
        r[0]
        for r in store.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit'"
        )
    }
    assert triggers == {"audit_no_update", "audit_no_delete"}


def test_a_copied_entry_still_breaks_the_chain_without_the_index(tmp_path: Path) -> None:
    """What the unique index refused (an entry with a hash already in the trail), the chain's
    check catches: the copy's prev_hash is not the hash of the entry before it."""
    clock = FakeClock(T0)
    store = open_store(tmp_path / "fresh.sqlite", clock)
    session_id = store.start_session(session_start(clock), "Dr A")
    store.add(session_id, VitalSigns(clock.now(), hr=81), "Dr A")
    first = store.db.execute("SELECT * FROM audit ORDER BY id LIMIT 1").fetchone()
    columns = [r[1] for r in store.db.execute("PRAGMA table_info(audit)")][1:]
    store.db.execute(
        f"INSERT INTO audit ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        list(first[1:]),
    )
    problems = verify.verify(store.db).problems
    assert problems, "a copied audit entry must be reported"
