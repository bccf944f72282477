"""Migration 0017 adds the partial index that finds the REMS sessions by their stored protocol
copy: a file written at schema 16 gains it on its next open, with its sessions as they were,
the structure check content, and the review list finding its REMS session through it."""

from __future__ import annotations

import json
from pathlib import Path

from kapmonitor.domain.clock import FakeClock
from kapmonitor.store import archive, schema_check
from kapmonitor.store.schema import SCHEMA_VERSION
from tests.factories import T0, open_store, protocol
from tests.store.old_schema import file_before, insert_session

STAMP = "2026-03-02T09:00:00.000Z"


def _schema_16_file(path: Path) -> None:
    conn, db = file_before(path, "0017_rems_protocol_index")
    assert db.execute("PRAGMA user_version").fetchone()[0] == 16
    with db.atomic():
        for sid, chosen in (("r" * 32, "esketamine-rems"), ("k" * 32, "clinic-ketamine")):
            insert_session(db, sid, STAMP)
            copy = protocol(chosen)
            db.execute(
                "INSERT INTO session_protocols (session_id, observed_at, recorded_at, "
                "recorded_by, protocol_id, protocol_name, protocol_version, protocol_json, "
                "origin) VALUES (?, ?, ?, 'Dr A', ?, ?, 1, ?, 'shipped')",
                [sid, STAMP, STAMP, copy.id, copy.name, json.dumps(copy.to_dict(), sort_keys=True)],
            )
    conn.close()


def test_a_schema_16_file_gains_the_index_and_lists_its_rems_session(tmp_path: Path) -> None:
    path = tmp_path / "v16.sqlite"
    _schema_16_file(path)
    store = open_store(path, FakeClock(T0))  # runs 0017
    try:
        db = store.db
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 17
        indexed = db.execute(
            "SELECT session_id FROM session_protocols INDEXED BY "
            "session_protocols_rems WHERE instr(protocol_json, "
            "'\"rems\": true') > 0"
        ).fetchall()
        assert indexed == [("r" * 32,)]
        assert schema_check.differences(db) == []
        rems = [r.session_id for r in archive.list_sessions(db) if r.rems]
        assert rems == ["r" * 32]
    finally:
        store.close()
