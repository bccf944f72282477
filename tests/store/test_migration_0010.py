"""Migration 0010 adds end-tidal CO₂ to ``vitals`` without breaking the record: a version-9 file
keeps its readings, still verifies (a NULL in the new column is not hashed), stays append-only,
and takes EtCO₂ readings, alarmed by the protocol, afterwards. Every registry vital has a store
column and a plausibility entry."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import Dose, VitalSigns
from kapmonitor.domain.reference import default_reference
from kapmonitor.domain.vitals import VITAL_SIGNS
from kapmonitor.store import audit, verify
from kapmonitor.store.schema import SCHEMA_VERSION, migrations
from tests.factories import T0, open_store, protocol, session_start
from tests.store.old_schema import file_before, insert_session

STAMP = "2026-03-02T09:00:00.000Z"
SID = "a" * 32


def _version_9_file(path: Path) -> None:
    """A file as KAP Monitor wrote it at schema 9: a session with one vitals row, sealed."""
    conn, db = file_before(path, "0010_etco2")
    assert db.execute("PRAGMA user_version").fetchone()[0] == 9
    assert "etco2" not in {c.name for c in db["vitals"].columns}
    audit.install(db)
    with db.atomic():
        insert_session(db, SID, STAMP)
        db.execute(
            "INSERT INTO vitals (session_id, observed_at, recorded_at, recorded_by, hr, sbp, "
            "dbp, spo2, rr, temp_c) VALUES (?, ?, ?, 'Dr A', 72, 124, 78, 98, 14, 36.6)",
            [SID, STAMP, STAMP],
        )
        audit.seal(db, "Dr A", "insert", FakeClock(T0).now())
    conn.close()


def test_a_version_9_file_upgrades_keeps_its_readings_and_verifies(tmp_path: Path) -> None:
    path = tmp_path / "v9.sqlite"
    _version_9_file(path)
    store = open_store(path, FakeClock(T0))
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 10
    rows = list(store.db.query("SELECT id, hr, sbp, etco2 FROM vitals"))
    assert rows == [{"id": 1, "hr": 72, "sbp": 124, "etco2": None}]
    report = verify.verify(store.db)
    assert report.ok, report.problems
    assert report.rows_checked >= 2
    store.close()


def test_the_new_column_is_append_only_and_a_filled_in_value_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "v9.sqlite"
    _version_9_file(path)
    store = open_store(path, FakeClock(T0))
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute("UPDATE vitals SET etco2 = 40 WHERE id = 1")
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        store.db.execute(
            "INSERT INTO vitals (session_id, observed_at, recorded_at, recorded_by, etco2) "
            "VALUES (?, ?, ?, 'Dr A', 151)",
            [SID, STAMP, STAMP],
        )
    store.close()
    # Someone with the sqlite3 shell drops the trigger and fills in an old reading: the NULL
    # left out of the hash must not hide that.
    # (They put the trigger back, or the schema check names it and the app refuses the file.)
    conn = sqlite3.connect(path)
    (sql,) = conn.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'vitals_no_update'"
    ).fetchone()
    conn.execute("DROP TRIGGER vitals_no_update")
    conn.execute("UPDATE vitals SET etco2 = 40 WHERE id = 1")
    conn.execute(sql)
    conn.commit()
    (entry,) = conn.execute(
        "SELECT id FROM audit WHERE table_name = 'vitals' AND row_id = 1"
    ).fetchone()
    conn.close()
    store = open_store(path, FakeClock(T0))
    assert verify.verify(store.db).problems == [
        f"vitals row 1: altered after it was recorded (audit entry #{entry})"
    ]
    store.close()


def test_after_the_upgrade_etco2_is_stored_alarmed_and_verified(tmp_path: Path) -> None:
    path = tmp_path / "v9.sqlite"
    _version_9_file(path)
    clock = FakeClock(T0)
    store = open_store(path, clock)
    sid = store.start_session(session_start(clock), "Dr A", protocol=protocol("clinic-ketamine"))
    store.add(
        sid, VitalSigns(clock.now(), sbp=120, dbp=78, hr=70, spo2=98, rr=14, etco2=38), "Dr A"
    )
    clock.advance(minutes=5)
    store.add(sid, Dose("ketamine", "im", 35, clock.now()), "Dr A")
    clock.advance(minutes=10)
    store.add(sid, VitalSigns(clock.now(), rr=9, etco2=64), "Dr A")
    session = store.load(sid)
    assert [r["etco2"] for r in session.current("vitals")] == [38, 64]
    assert session.last_vitals()["etco2"][0] == 64
    [alarm] = [a for a in session.current("alarms") if a["parameter"] == "etco2"]
    assert (alarm["rule_id"], alarm["priority"]) == ("etco2_high_critical", "critical")
    assert alarm["message"].startswith("Hypoventilation: EtCO₂ 64 mmHg ≥ 61 mmHg (critical)")
    report = verify.verify(store.db)
    assert report.ok, report.problems
    store.close()


def test_every_registry_vital_has_a_store_column_and_a_plausibility_entry(tmp_path: Path) -> None:
    store = open_store(tmp_path / "new.sqlite")
    columns = {c.name: c.type for c in store.db["vitals"].columns}
    store.close()
    limits = default_reference().limits
    for sign in VITAL_SIGNS:
        assert columns[sign.key] == ("INTEGER" if sign.is_integer else "REAL"), sign.key
        limit = limits[sign.key]
        assert limit.unit == sign.unit, sign.key
        assert limit.source.strip(), sign.key
        assert limit.minimum < limit.maximum, sign.key


def test_only_vitals_added_after_the_first_schema_leave_a_null_unhashed(tmp_path: Path) -> None:
    """The frozen first-schema list in the audit module is what 0001 really created, so a
    NULL in an original column (a temperature not taken) stays part of the hash."""
    conn = sqlite3.connect(tmp_path / "v1.sqlite")
    db = Database(conn)
    migrations.apply(db, stop_before="0002_protocol_engine")
    first = {c.name for c in db["vitals"].columns} & {v.key for v in VITAL_SIGNS}
    conn.close()
    assert first == set(audit._VITALS_V1)
    # 0014 added the confirmed device reading's link and source, NULL on every typed row.
    assert audit.HASHED_ONLY_WHEN_SET["vitals"] == ("etco2", "device_reading_id", "source")
    row = {"id": 1, "temp_c": None, "etco2": None, "note": None}
    assert audit.hashed_content("vitals", row) == {"id": 1, "temp_c": None, "note": None}
    assert audit.hashed_content("vitals", {**row, "etco2": 38})["etco2"] == 38
