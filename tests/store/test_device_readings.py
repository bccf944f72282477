"""Device readings in the store (issue 13): pending with their device, stored once, confirmed
into vitals (attributed, audited), artefacts kept, automatic confirmation and alarms on pending
values per protocol, append-only in the database."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from kapmonitor.devices.reading import DeviceReading, ReadingFlag
from kapmonitor.domain.clock import FakeClock, to_iso
from kapmonitor.domain.protocol import Protocol, ProtocolError, parse_protocol
from kapmonitor.domain.validation import ValidationError
from kapmonitor.paths import resources_dir
from kapmonitor.store import device_store
from kapmonitor.store.database import StoreError
from kapmonitor.store.session_model import SessionModel
from kapmonitor.store.session_store import SessionStore
from kapmonitor.store.verify import verify_database
from tests.factories import T0, open_store, protocol, session_start

KETAMINE = protocol("clinic-ketamine")
MONITOR = "MINDRAY^BED7"


def no_auto(p: Protocol) -> Protocol:
    return dataclasses.replace(p, auto_confirm=())


def reading(
    clock: FakeClock, vital: str, value: float | None, message: str = "M1", **kw: object
) -> DeviceReading:
    values: dict[str, object] = {
        "device_id": MONITOR,
        "source": "mllp",
        "message_id": message,
        "received_at": clock.now(),
        "observed_at": clock.now() - timedelta(seconds=1),
        "vital": vital,
        "value": value,
        "unit": "%" if vital == "spo2" else "/min",
        "code": "MDC:150456" if vital == "spo2" else "MDC:147842",
        **kw,
    }
    return DeviceReading(**values)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def started(tmp_path: Path, clock: FakeClock, proto: Protocol | None) -> tuple[SessionStore, str]:
    store = open_store(tmp_path / "s.sqlite", clock)
    sid = store.start_session(session_start(clock), "Dr A", protocol=proto)
    clock.advance(minutes=1)
    return store, sid


def test_pending_reading_is_stored_with_its_device(tmp_path: Path, clock: FakeClock) -> None:
    store, sid = started(tmp_path, clock, no_auto(KETAMINE))
    bp = [
        reading(clock, "sbp", 128, unit="mm[Hg]", code="MDC:150021"),
        reading(clock, "dbp", 82, unit="mm[Hg]", code="MDC:150022"),
    ]
    changes = device_store.add_device_readings(store, sid, bp)
    rows = changes.of("device_readings")
    assert [(r["vital"], r["value"]) for r in rows] == [("sbp", 128.0), ("dbp", 82.0)]
    row = rows[0]
    assert row["device_id"] == MONITOR and row["source"] == "mllp" and row["message_id"] == "M1"
    assert row.recorded_by == f"device:{MONITOR}"
    assert row["device_time"] == 1 and row["unit_received"] == "mm[Hg]"
    assert row.observed_at < row["received_at"]
    # Pending: no vitals row, no review, nothing charted as part of the record.
    assert store.db.execute("SELECT count(*) FROM vitals").fetchone()[0] == 0
    assert store.db.execute("SELECT count(*) FROM device_reading_reviews").fetchone()[0] == 0
    stored = store.db.execute("SELECT vital, value FROM device_readings ORDER BY id").fetchall()
    assert stored == [("sbp", 128.0), ("dbp", 82.0)]
    store.close()
    assert verify_database(tmp_path / "s.sqlite").problems == []


def test_probe_off_reading_keeps_its_flag_and_no_value(tmp_path: Path, clock: FakeClock) -> None:
    store, sid = started(tmp_path, clock, KETAMINE)
    off = reading(clock, "spo2", None, flags=frozenset({ReadingFlag.PROBE_OFF}), observed_at=None)
    row = device_store.add_device_readings(store, sid, [off]).of("device_readings")[0]
    assert row["value"] is None and json.loads(row["flags"]) == ["probe_off"]
    assert row["device_time"] == 0 and row.observed_at == row["received_at"]
    with pytest.raises(ValidationError, match="no value"):
        device_store.confirm_device_readings(store, sid, [row.id], "Dr A")
    store.close()


def test_a_resend_is_stored_once_even_after_reopening(tmp_path: Path, clock: FakeClock) -> None:
    store, sid = started(tmp_path, clock, no_auto(KETAMINE))
    message = [reading(clock, "spo2", 97), reading(clock, "hr", 72)]
    assert len(device_store.add_device_readings(store, sid, message).rows) == 2
    store.close()
    store = open_store(tmp_path / "s.sqlite", clock)  # a restart: no memory of ids but the file
    again = device_store.add_device_readings(store, sid, message)
    assert again.rows == () and not again
    assert store.db.execute("SELECT count(*) FROM device_readings").fetchone()[0] == 2
    # The same message id from another device is another reading.
    other = [dataclasses.replace(m, device_id="PHILIPS^MX40") for m in message]
    assert len(device_store.add_device_readings(store, sid, other).rows) == 2
    store.close()
    assert verify_database(tmp_path / "s.sqlite").problems == []


def test_confirming_writes_the_vital_attributed_and_audited(
    tmp_path: Path, clock: FakeClock
) -> None:
    store, sid = started(tmp_path, clock, no_auto(KETAMINE))
    bp = [
        reading(clock, "sbp", 128, message="NIBP1"),
        reading(clock, "dbp", 82, message="NIBP1"),
    ]
    ids = [r.id for r in device_store.add_device_readings(store, sid, bp).of("device_readings")]
    clock.advance(seconds=20)
    changes = device_store.confirm_device_readings(store, sid, ids, "Nurse B")
    (vitals,) = changes.of("vitals")
    assert (vitals["sbp"], vitals["dbp"]) == (128, 82)
    assert vitals["device_reading_id"] == ids[0] and vitals["source"] == "mllp"
    assert vitals.recorded_by == "Nurse B"
    assert bp[0].observed_at is not None
    assert vitals.observed_at == to_iso(bp[0].observed_at)  # the device's time, not the click's
    assert changes.scores, "a confirmed set gets its NEWS2 like a typed one"
    reviews = changes.of("device_reading_reviews")
    assert [(r["device_reading_id"], r["decision"], r["vitals_id"]) for r in reviews] == [
        (ids[0], "confirmed", vitals.id),
        (ids[1], "confirmed", vitals.id),
    ]
    assert all(r.recorded_by == "Nurse B" and r["automatic"] == 0 for r in reviews)
    # The session log sees the confirmed value as a vital like any other.
    assert store.load(sid).last_vitals()["sbp"][0] == 128
    audited = store.db.execute(
        "SELECT actor FROM audit WHERE action = ? ORDER BY id", [device_store.ACTION_CONFIRMED]
    ).fetchall()
    assert audited and all(a[0] == "Nurse B" for a in audited)
    covered = store.db.execute(
        "SELECT count(*) FROM audit WHERE table_name IN ('vitals', 'device_reading_reviews') "
        "AND action = ?",
        [device_store.ACTION_CONFIRMED],
    ).fetchone()[0]
    assert covered == 3
    with pytest.raises(ValidationError, match="already confirmed"):
        device_store.confirm_device_readings(store, sid, ids[:1], "Nurse B")
    store.close()
    assert verify_database(tmp_path / "s.sqlite").problems == []


def test_half_a_blood_pressure_or_another_sessions_reading_is_refused(
    tmp_path: Path, clock: FakeClock
) -> None:
    store, sid = started(tmp_path, clock, no_auto(KETAMINE))
    other = store.start_session(session_start(clock, patient_code="KAP-002"), "Dr A")
    bp = [reading(clock, "sbp", 128), reading(clock, "dbp", 82)]
    ids = [r.id for r in device_store.add_device_readings(store, sid, bp).of("device_readings")]
    with pytest.raises(ValidationError, match="both systolic and diastolic"):
        device_store.confirm_device_readings(store, sid, ids[:1], "Nurse B")
    with pytest.raises(ValidationError, match="not in this session"):
        device_store.confirm_device_readings(store, other, ids, "Nurse B")
    with pytest.raises(ValidationError, match="not in this session"):
        device_store.mark_device_artefact(store, sid, [999], "Nurse B", "motion")
    assert store.db.execute("SELECT count(*) FROM vitals").fetchone()[0] == 0
    store.close()


def test_an_artefact_is_kept_with_its_reason_never_deleted(
    tmp_path: Path, clock: FakeClock
) -> None:
    store, sid = started(tmp_path, clock, no_auto(KETAMINE))
    added = device_store.add_device_readings(store, sid, [reading(clock, "hr", 190)])
    ids = [r.id for r in added.pending_readings]
    with pytest.raises(ValidationError, match="why"):
        device_store.mark_device_artefact(store, sid, ids, "Nurse B", "  ")
    changes = device_store.mark_device_artefact(store, sid, ids, "Nurse B", "shivering")
    (review,) = changes.of("device_reading_reviews")
    assert (review["decision"], review["reason"], review["vitals_id"]) == (
        "artefact",
        "shivering",
        None,
    )
    assert store.db.execute("SELECT value FROM device_readings").fetchall() == [(190.0,)]
    assert store.db.execute("SELECT count(*) FROM vitals").fetchone()[0] == 0
    with pytest.raises(ValidationError, match="already artefact"):
        device_store.confirm_device_readings(store, sid, ids, "Nurse B")
    store.close()
    assert verify_database(tmp_path / "s.sqlite").problems == []


def test_auto_confirm_follows_the_protocol_both_ways(tmp_path: Path, clock: FakeClock) -> None:
    assert set(KETAMINE.auto_confirm) == {"spo2", "hr"}
    store, sid = started(tmp_path, clock, KETAMINE)
    trend = [reading(clock, "spo2", 97, "T1"), reading(clock, "hr", 72, "T1")]
    changes = device_store.add_device_readings(store, sid, trend)
    (vitals,) = changes.of("vitals")
    assert (vitals["spo2"], vitals["hr"]) == (97, 72)
    # Confirmed by the protocol, as a clinician's confirmation is attributed to the clinician.
    assert vitals.recorded_by == "protocol:clinic-ketamine"
    reviews = changes.of("device_reading_reviews")
    assert [r["automatic"] for r in reviews] == [1, 1]
    assert all(r.recorded_by == "protocol:clinic-ketamine" for r in reviews)
    # BP is never confirmed automatically; nor is a flagged trend value.
    clock.advance(seconds=1)
    bp = [reading(clock, "sbp", 130, "B1"), reading(clock, "dbp", 80, "B1")]
    flagged = reading(clock, "spo2", 88, "T2", flags=frozenset({ReadingFlag.ARTEFACT}))
    later = device_store.add_device_readings(store, sid, bp)
    assert later.of("vitals") == () and later.of("device_reading_reviews") == ()
    assert device_store.add_device_readings(store, sid, [flagged]).of("vitals") == ()
    store.close()
    # A protocol without [devices] confirms nothing by itself.
    (tmp_path / "b").mkdir()
    store2, sid2 = started(tmp_path / "b", clock, no_auto(KETAMINE))
    assert device_store.add_device_readings(store2, sid2, trend).of("vitals") == ()
    store2.close()


def test_a_pending_desaturation_raises_the_alarm_and_says_so(
    tmp_path: Path, clock: FakeClock
) -> None:
    store, sid = started(tmp_path, clock, no_auto(KETAMINE))
    changes = device_store.add_device_readings(store, sid, [reading(clock, "spo2", 84, "D1")])
    (alarm,) = changes.alarms_raised
    assert alarm.priority == "critical" and alarm.parameter == "spo2"
    assert alarm.source_table == "device_readings"
    assert alarm.source_id == changes.of("device_readings")[0].id
    assert "device, unconfirmed" in alarm.message
    # Confirming it writes the vital but does not raise the same alarm again.
    confirmed = device_store.confirm_device_readings(store, sid, [alarm.source_id], "Nurse B")
    assert confirmed.of("vitals") and confirmed.alarms_raised == ()
    # A normal pending value, or one the device marked artefact, raises nothing.
    fine = device_store.add_device_readings(store, sid, [reading(clock, "spo2", 97, "D2")])
    assert fine.alarms_raised == ()
    noisy = reading(clock, "spo2", 70, "D3", flags=frozenset({ReadingFlag.ARTEFACT}))
    assert device_store.add_device_readings(store, sid, [noisy]).alarms_raised == ()
    store.close()
    assert verify_database(tmp_path / "s.sqlite").problems == []


def test_an_auto_confirmed_desaturation_alarms_once_from_the_vital(
    tmp_path: Path, clock: FakeClock
) -> None:
    store, sid = started(tmp_path, clock, KETAMINE)
    changes = device_store.add_device_readings(store, sid, [reading(clock, "spo2", 84, "D1")])
    (alarm,) = changes.alarms_raised
    assert alarm.source_table == "vitals" and "unconfirmed" not in alarm.message
    store.close()


def test_without_a_protocol_nothing_alarms_or_confirms(tmp_path: Path, clock: FakeClock) -> None:
    store, sid = started(tmp_path, clock, None)
    changes = device_store.add_device_readings(store, sid, [reading(clock, "spo2", 70)])
    assert changes.alarms_raised == () and changes.of("vitals") == ()
    store.close()


def test_device_tables_are_append_only_in_the_database(tmp_path: Path, clock: FakeClock) -> None:
    store, sid = started(tmp_path, clock, no_auto(KETAMINE))
    added = device_store.add_device_readings(store, sid, [reading(clock, "hr", 70)])
    ids = [r.id for r in added.pending_readings]
    device_store.mark_device_artefact(store, sid, ids, "Nurse B", "motion")
    store.close()
    conn = sqlite3.connect(tmp_path / "s.sqlite")
    for statement in (
        "UPDATE device_readings SET value = 60",
        "DELETE FROM device_readings",
        "UPDATE device_reading_reviews SET decision = 'confirmed'",
        "DELETE FROM device_reading_reviews",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(statement)
    conn.close()


def test_a_signed_or_missing_session_takes_no_device_reading(
    tmp_path: Path, clock: FakeClock
) -> None:
    store, _sid = started(tmp_path, clock, KETAMINE)
    with pytest.raises(StoreError):
        device_store.add_device_readings(store, "f" * 32, [reading(clock, "hr", 70)])
    store.close()


def test_an_ended_session_takes_no_device_reading(tmp_path: Path, clock: FakeClock) -> None:
    """A monitor still connected after the session's end is refused in words (the listener
    answers AE), and the reading it sent before the end stays."""
    from kapmonitor.domain.records import SessionEnd

    store, sid = started(tmp_path, clock, None)
    device_store.add_device_readings(store, sid, [reading(clock, "hr", 70, "M1")])
    clock.advance(minutes=1)
    store.add(sid, SessionEnd("stayed_for_observation", clock.now(), summary="ok"), "Dr A")
    clock.advance(minutes=1)
    with pytest.raises(StoreError, match="has ended") as refused:
        device_store.add_device_readings(store, sid, [reading(clock, "hr", 71, "M2")])
    assert refused.value.kind == "ended"
    assert [r[0] for r in store.db.execute("SELECT message_id FROM device_readings")] == ["M1"]
    store.close()


def test_devices_section_of_a_protocol_is_checked() -> None:
    text = (resources_dir() / "protocols" / "clinic-ketamine.toml").read_text(encoding="utf-8")
    assert parse_protocol(text, "x.toml").auto_confirm == ("spo2", "hr")
    bad = text.replace('auto_confirm = ["spo2", "hr"]', 'auto_confirm = ["spo2", "pulse"]')
    with pytest.raises(ProtocolError, match="'pulse' is not a vital sign"):
        parse_protocol(bad, "x.toml")
    start = text.index("[devices]")
    without = text[:start]
    assert parse_protocol(without, "x.toml").auto_confirm == ()
    stored = parse_protocol(text, "x.toml")
    assert Protocol.from_dict(stored.to_dict()).auto_confirm == ("spo2", "hr")


def test_the_session_model_answers_pending_apart_from_confirmed(
    tmp_path: Path, clock: FakeClock
) -> None:
    store, sid = started(tmp_path, clock, KETAMINE)
    model = SessionModel.load(store, sid)
    model.apply(device_store.add_device_readings(store, sid, [reading(clock, "spo2", 97, "T1")]))
    clock.advance(seconds=5)
    bp = device_store.add_device_readings(
        store, sid, [reading(clock, "sbp", 150, "B1"), reading(clock, "dbp", 90, "B1")]
    )
    model.apply(bp)
    assert model.latest_values()["spo2"][0] == 97  # auto-confirmed: part of the record
    assert "spo2" not in model.pending_values()
    assert model.pending_values()["sbp"][0] == 150 and "sbp" not in model.latest_values()
    # A fresh model (reopening the session) answers the same from SQLite.
    assert SessionModel.load(store, sid).pending_values() == model.pending_values()
    clock.advance(seconds=30)
    ids = [r.id for r in bp.pending_readings]
    model.apply(device_store.confirm_device_readings(store, sid, ids, "Nurse B"))
    assert model.pending_values() == {} and model.latest_values()["sbp"][0] == 150
    assert SessionModel.load(store, sid).pending_values() == {}
    store.close()
