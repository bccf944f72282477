"""Migration 0014 (device readings) upgrades a file written at schema 13 without breaking its
audit trail: alarms rebuilt with the same ids and content, vitals rows hashing as before with the
new NULL columns, and the upgraded file then takes device readings and their alarms."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from kapmonitor.devices.reading import DeviceReading
from kapmonitor.domain.clock import FakeClock
from kapmonitor.store import audit, device_store, verify
from kapmonitor.store.schema import SCHEMA_VERSION
from tests.factories import T0, open_store
from tests.store.old_schema import file_before, insert_session

SID = "a" * 32
STAMP = "2026-03-02T09:00:00.000Z"


def test_a_schema_13_file_upgrades_and_still_verifies(tmp_path: Path) -> None:
    path = tmp_path / "v13.sqlite"
    clock = FakeClock(T0)
    conn, db = file_before(path, "0014_device_readings")
    assert db.execute("PRAGMA user_version").fetchone()[0] == 13
    audit.install(db)
    with db.atomic():
        insert_session(db, SID, STAMP)
        db.execute(
            "INSERT INTO vitals (session_id, observed_at, recorded_at, recorded_by, sbp, dbp, hr, "
            "spo2) VALUES (?, ?, ?, 'Dr A', 200, 100, 70, 98)",
            [SID, STAMP, STAMP],
        )
        db.execute(
            "INSERT INTO alarms (session_id, observed_at, recorded_at, recorded_by, "
            "source_table, source_id, rule_id, parameter, value, priority, limit_text, "
            "message, rule_source) VALUES (?, ?, ?, 'Dr A', 'vitals', 1, 'sbp_high', 'sbp', "
            "200, 'critical', '≥ 180', 'SBP 200', 'test')",
            [SID, STAMP, STAMP],
        )
        db.execute(
            "INSERT INTO alarm_acknowledgements (session_id, observed_at, recorded_at, "
            "recorded_by, alarm_id, response) VALUES (?, ?, ?, 'Dr A', 1, 'rechecked')",
            [SID, STAMP, STAMP],
        )
        audit.seal(db, "Dr A", "insert", clock.now(), SID)
    conn.close()

    clock.advance(minutes=5)
    store = open_store(path, clock)  # runs 0014
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 14
    assert not verify.verify(store.db).problems
    vitals = store.db.execute("SELECT id, device_reading_id, source FROM vitals").fetchall()
    assert vitals == [(1, None, None)]
    assert store.db.execute("SELECT id, source_table FROM alarms").fetchall() == [(1, "vitals")]
    assert not store.db.execute("PRAGMA foreign_key_check").fetchall()
    # The upgraded file takes an alarm from a pending device reading (no protocol here: none).
    low = DeviceReading(
        device_id="BED7",
        source="serial",
        message_id="L1",
        received_at=clock.now(),
        observed_at=clock.now() - timedelta(seconds=1),
        vital="spo2",
        value=80.0,
        unit="%",
    )
    changes = device_store.add_device_readings(store, SID, [low])
    assert len(changes.device_readings) == 1
    store.db.execute("SAVEPOINT widened")
    store.db.execute(
        "INSERT INTO alarms (session_id, observed_at, recorded_at, recorded_by, source_table, "
        "source_id, rule_id, parameter, value, priority, limit_text, message, rule_source) "
        "VALUES (?, ?, ?, 'x', 'device_readings', ?, 'r', 'spo2', 80, 'critical', 'l', 'm', 's')",
        [SID, STAMP, STAMP, changes.device_readings[0].id],
    )  # the widened CHECK takes the new source; rolled back (a raw row is not the app's)
    store.db.execute("ROLLBACK TO widened")
    store.db.execute("RELEASE widened")
    store.close()
    assert not verify.verify_database(path).problems
