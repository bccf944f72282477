"""The device group commit's fast path (issue 13's throughput): a batch is written straight
through, with the first dose and baseline read once and one audit seal per device; a message
that fails for itself sends the batch back through one savepoint per message. None of that may
change what is stored: these tests write the same messages one by one and as one batch and
compare every row and audit entry, and check the keyed chain and the tamper detection after a
batched capture."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kapmonitor.devices.reading import DeviceReading, ReadingFlag
from kapmonitor.domain.changes import Changes
from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import Dose, VitalSigns
from kapmonitor.store import audit, device_store, key_slots
from kapmonitor.store.session_store import SessionStore
from kapmonitor.store.verify import verify_database
from tests.factories import T0, open_store, protocol, session_start

MONITOR = "MINDRAY^BED7"
OXIMETER = "NONIN^7500"
# Blood pressure confirmed automatically too, so a batch's own vitals rows can move the
# pre-dose baseline that later messages of the same batch are judged against.
AUTO_BP = dataclasses.replace(
    protocol("clinic-ketamine"), auto_confirm=("spo2", "hr", "sbp", "dbp")
)
TABLES = ("device_readings", "vitals", "vital_scores", "alarms", "device_reading_reviews")
UNITS = {"spo2": "%", "hr": "/min", "sbp": "mm[Hg]", "dbp": "mm[Hg]"}


def message(
    number: int,
    at: datetime,
    received: datetime,
    device: str = MONITOR,
    source: str = "mllp",
    **values: float | None,
) -> list[DeviceReading]:
    return [
        DeviceReading(
            device_id=device,
            source=source,
            message_id=f"M{number}",
            received_at=received,
            observed_at=at,
            vital=vital,
            value=value,
            unit=UNITS[vital],
            flags=frozenset() if value is not None else frozenset({ReadingFlag.PROBE_OFF}),
        )
        for vital, value in values.items()
    ]


def session(path: Path) -> tuple[SessionStore, str, FakeClock, datetime]:
    """A session with a typed baseline (SBP 120) and a dose; the clock 20 minutes on."""
    clock = FakeClock(T0)
    store = open_store(path, clock)
    sid = store.start_session(session_start(clock), "Dr A", protocol=AUTO_BP)
    clock.advance(minutes=2)
    store.add(sid, VitalSigns(clock.now(), hr=72, sbp=120, dbp=78, spo2=98, rr=14), "Dr A")
    clock.advance(minutes=5)
    dose_at = clock.now()
    store.add(sid, Dose("ketamine", "im", 50, dose_at), "Dr A")
    clock.advance(minutes=20)
    return store, sid, clock, dose_at


def feed(clock: FakeClock, dose_at: datetime) -> list[list[DeviceReading]]:
    """Messages of every kind a batch meets, in arrival order."""
    now = clock.now()
    after = [dose_at + timedelta(minutes=5, seconds=s) for s in range(8)]
    return [
        message(1, after[0], now, spo2=97, hr=80),  # confirmed: reads the baseline (SBP 120)
        message(2, dose_at - timedelta(minutes=1), now, sbp=160, dbp=90),  # pre-dose: moves it
        message(3, after[1], now, sbp=125, dbp=80),  # 22 % below 160 (not below 120): an alarm
        message(4, after[2], now, source="bogus", spo2=96, hr=81),  # refused by the schema
        message(5, after[3], now, spo2=84, hr=95),  # a desaturation: confirmed, alarm
        message(6, after[4], now, spo2=83, hr=96),  # the same alarm, folded
        message(7, after[5], now, device=OXIMETER, source="serial", spo2=None),  # probe off
        message(1, after[0], now, spo2=97, hr=80),  # a resend: nothing new
        message(8, now + timedelta(hours=1), now, spo2=95, hr=77),  # future: stays pending
        [],
    ]


def table_rows(store: SessionStore) -> dict[str, list[dict[str, Any]]]:
    """Every row the device path writes, less the session id (each store has its own)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for table in TABLES:
        cursor = store.db.execute(f"SELECT * FROM {table} ORDER BY id")
        names = [d[0] for d in cursor.description]
        out[table] = [
            {k: v for k, v in zip(names, row, strict=True) if k != "session_id"}
            for row in cursor.fetchall()
        ]
    return out


def audit_entries(store: SessionStore) -> list[tuple[Any, ...]]:
    return store.db.execute(
        "SELECT actor, action, table_name, row_id FROM audit ORDER BY id"
    ).fetchall()


def outcome(result: Changes | Exception) -> object:
    if isinstance(result, Exception):
        return type(result).__name__
    return sorted((table, row.id) for table, row in result.rows)


def one_by_one(store: SessionStore, sid: str, messages: list[list[DeviceReading]]) -> list[object]:
    results: list[object] = []
    for readings in messages:
        try:
            results.append(outcome(device_store.add_device_readings(store, sid, readings)))
        except Exception as exc:  # the refused message, said as add_device_messages says it
            cause = exc.__cause__ if isinstance(exc.__cause__, sqlite3.Error) else exc
            results.append(type(cause).__name__)
    return results


def test_a_batch_stores_exactly_what_one_message_at_a_time_stores(tmp_path: Path) -> None:
    single, sid1, clock1, dose1 = session(tmp_path / "single.sqlite")
    batched, sid2, clock2, dose2 = session(tmp_path / "batched.sqlite")
    try:
        expected = one_by_one(single, sid1, feed(clock1, dose1))
        got = [
            outcome(r) for r in device_store.add_device_messages(batched, sid2, feed(clock2, dose2))
        ]
        assert got == expected
        assert expected[3] == "IntegrityError"  # the refused message did not sink the others
        assert table_rows(batched) == table_rows(single)
        # the batch's own pre-dose reading moved the baseline for the messages after it
        alarms = table_rows(batched)["alarms"]
        assert any(a["rule_id"].startswith("sbp_fall") for a in alarms)
        assert sum(a["parameter"] == "spo2" for a in alarms) == 1  # folded, not raised twice
        # same entries, same order; a batch seals per device, as the messages were written
        assert audit_entries(batched) == audit_entries(single)
    finally:
        single.close()
        batched.close()
    assert verify_database(tmp_path / "single.sqlite").problems == []
    assert verify_database(tmp_path / "batched.sqlite").problems == []


def test_a_batch_with_no_failure_takes_the_straight_path_and_matches_the_savepoint_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The savepoint path (taken when a message fails) and the straight one write alike."""
    straight, sid1, clock1, dose1 = session(tmp_path / "straight.sqlite")
    careful, sid2, clock2, dose2 = session(tmp_path / "careful.sqlite")
    good = [m for i, m in enumerate(feed(clock1, dose1)) if i != 3]
    good2 = [m for i, m in enumerate(feed(clock2, dose2)) if i != 3]
    passes: list[bool] = []
    real = device_store._write_batch

    def spy(*args: Any, savepoints: bool) -> Any:
        passes.append(savepoints)
        return real(*args, savepoints=savepoints)

    monkeypatch.setattr(device_store, "_write_batch", spy)
    try:
        device_store.add_device_messages(straight, sid1, good)
        assert passes == [False]
        got = device_store._write_batch(
            careful, sid2, good2, careful.protocol_for(sid2), savepoints=True
        )
        assert all(isinstance(r, Changes) for r in got)
        assert table_rows(careful) == table_rows(straight)
        assert audit_entries(careful) == audit_entries(straight)
        passes.clear()
        device_store.add_device_messages(straight, sid1, feed(clock1, dose1)[3:5])
        assert passes == [False, True]  # the refused message sent it round again
    finally:
        straight.close()
        careful.close()
    assert verify_database(tmp_path / "straight.sqlite").problems == []


def test_a_failed_straight_pass_leaves_nothing_behind(tmp_path: Path) -> None:
    """The straight pass is rolled back whole before the savepoint pass: nothing it wrote
    (rows, audit notes) survives twice."""
    store, sid, clock, dose_at = session(tmp_path / "s.sqlite")
    try:
        messages = feed(clock, dose_at)
        results = device_store.add_device_messages(store, sid, messages)
        assert isinstance(results[3], sqlite3.IntegrityError)
        keys = store.db.execute(
            "SELECT device_id, message_id, vital FROM device_readings"
        ).fetchall()
        assert len(keys) == len(set(keys)) == 13  # 7 messages stored, M1 once
        assert store.db.execute(f"SELECT count(*) FROM {audit.PENDING}").fetchone()[0] == 0
    finally:
        store.close()
    assert verify_database(tmp_path / "s.sqlite").problems == []


def test_a_row_tampered_after_a_batched_capture_is_named_by_verify(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store, sid, clock, dose_at = session(path)
    try:
        device_store.add_device_messages(store, sid, feed(clock, dose_at))
        target = store.db.execute(
            "SELECT id FROM vitals WHERE device_reading_id IS NOT NULL ORDER BY id LIMIT 1"
        ).fetchone()[0]
    finally:
        store.close()
    assert verify_database(path).problems == []
    # an insider with the key edits a confirmed value, the append-only trigger dropped and put
    # back as it was (the schema check has its own tests for a trigger left out)
    store = SessionStore.open(path)
    db = store.db
    trigger = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'vitals' "
        "AND sql LIKE '%BEFORE UPDATE%'"
    ).fetchone()
    with db.atomic():
        db.execute(f"DROP TRIGGER {trigger[0]}")
        db.execute("UPDATE vitals SET spo2 = 99 WHERE id = ?", [target])
        db.execute(trigger[1])
    store.close()
    problems = verify_database(path).problems
    assert problems
    assert any("vitals" in p and str(target) in p for p in problems)


def test_the_seal_writes_the_entries_one_append_per_row_would(tmp_path: Path) -> None:
    """The one-pass seal against the chain rule itself: each entry's MAC over the previous
    entry's and the row's content as it is now, in the order the rows were written."""
    store, sid, clock, dose_at = session(tmp_path / "s.sqlite")
    try:
        device_store.add_device_messages(store, sid, feed(clock, dose_at))
        db = store.db
        key = audit.audit_key(key_slots.keys_of(db))
        entries = list(audit.entries(db))
        device = [e for e in entries if e["action"] == device_store.ACTION_READINGS]
        assert device
        by_id = {e["id"]: e for e in entries}
        for entry in device:
            previous = by_id[entry["id"] - 1]
            assert entry["prev_hash"] == previous["hash"]
            fields = {name: entry[name] for name in audit.CHAINED_FIELDS}
            assert entry["hash"] == audit.entry_mac(key, previous["hash"], fields)
            content = audit.row_content(db, entry["table_name"], entry["row_id"])
            assert content is not None and entry["row_hash"] == audit.row_hash(content)
        # every row the batch wrote has its entry, in the order the rows were written
        written = [
            (table, row)
            for table in TABLES
            for (row,) in db.execute(
                f"SELECT id FROM {table} WHERE recorded_by <> 'Dr A' ORDER BY id"
            ).fetchall()
        ]
        sealed = [(e["table_name"], e["row_id"]) for e in device]
        assert sorted(sealed) == sorted(written)
        for table in TABLES:
            ids = [row for t, row in sealed if t == table]
            assert ids == sorted(ids)
    finally:
        store.close()


# --- a batch after the dose: written a table at a time ------------------------------------------


def feed_after_dose(clock: FakeClock, dose_at: datetime) -> list[list[DeviceReading]]:
    """The feed less its pre-dose message: the batch that is written table by table."""
    return [m for i, m in enumerate(feed(clock, dose_at)) if i != 1]


def spy_together(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many messages each table-by-table write was given."""
    calls: list[int] = []
    real = device_store._write_together

    def spy(store: SessionStore, sid: str, messages: Any, *rest: Any) -> Any:
        calls.append(len(messages))
        return real(store, sid, messages, *rest)

    monkeypatch.setattr(device_store, "_write_together", spy)
    return calls


def test_a_batch_after_the_dose_is_written_table_by_table_and_stores_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every row as message by message writes it (same ids, same values), each message's change
    the same rows, and every row sealed with the same actor; only the trail's order differs (a
    table at a time). Two devices interleaved: one seal per run of one device's messages."""
    single, sid1, clock1, dose1 = session(tmp_path / "single.sqlite")
    batched, sid2, clock2, dose2 = session(tmp_path / "batched.sqlite")
    good = [m for i, m in enumerate(feed_after_dose(clock1, dose1)) if i != 2]  # no refusal
    good2 = [m for i, m in enumerate(feed_after_dose(clock2, dose2)) if i != 2]
    calls = spy_together(monkeypatch)
    try:
        expected = one_by_one(single, sid1, good)
        got = [outcome(r) for r in device_store.add_device_messages(batched, sid2, good2)]
        assert calls == [len(good2)]
        assert got == expected
        assert table_rows(batched) == table_rows(single)
        alarms = table_rows(batched)["alarms"]
        assert sum(a["parameter"] == "spo2" for a in alarms) == 1  # folded in message order
        assert sorted(audit_entries(batched)) == sorted(audit_entries(single))
    finally:
        single.close()
        batched.close()
    assert verify_database(tmp_path / "single.sqlite").problems == []
    assert verify_database(tmp_path / "batched.sqlite").problems == []


def test_a_refused_message_sends_a_table_by_table_batch_round_message_by_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    single, sid1, clock1, dose1 = session(tmp_path / "single.sqlite")
    batched, sid2, clock2, dose2 = session(tmp_path / "batched.sqlite")
    calls = spy_together(monkeypatch)
    try:
        expected = one_by_one(single, sid1, feed_after_dose(clock1, dose1))
        results = device_store.add_device_messages(batched, sid2, feed_after_dose(clock2, dose2))
        assert calls == [len(results)]  # tried together first, then one savepoint each
        assert [outcome(r) for r in results] == expected
        assert expected[2] == "IntegrityError"
        assert table_rows(batched) == table_rows(single)
        assert audit_entries(batched) == audit_entries(single)
        assert batched.db.execute(f"SELECT count(*) FROM {audit.PENDING}").fetchone()[0] == 0
    finally:
        single.close()
        batched.close()
    assert verify_database(tmp_path / "batched.sqlite").problems == []


def test_a_batch_holding_a_reading_before_the_dose_is_written_message_by_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its vitals row may join the baseline later messages are judged against."""
    store, sid, clock, dose_at = session(tmp_path / "s.sqlite")
    calls = spy_together(monkeypatch)
    try:
        device_store.add_device_messages(store, sid, feed(clock, dose_at)[:3])
        assert calls == []
    finally:
        store.close()
