"""Device readings and their reviews travel in the exports (issue 13): the JSON export carries
them (valid against the schema) and imports back byte for byte; CSV and FHIR still write, and
FHIR never makes a pending device reading a final observation."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from kapmonitor.devices.reading import DeviceReading, ReadingFlag
from kapmonitor.domain.clock import FakeClock
from kapmonitor.reports.session_export import build_session_document, document_text
from kapmonitor.reports.session_import import IMPORTED, import_path
from kapmonitor.store import device_store
from kapmonitor.store.session_store import SessionStore
from kapmonitor.store.verify import verify_database
from tests.factories import protocol, session_start
from tests.reports import export, new_store, without_anchor


def _reading(clock: FakeClock, message: str, vital: str, value: float | None, **kw: object):
    values: dict[str, object] = {
        "device_id": "MINDRAY^BED7",
        "source": "mllp",
        "message_id": message,
        "received_at": clock.now(),
        "observed_at": clock.now() - timedelta(seconds=1),
        "vital": vital,
        "value": value,
        "unit": "mm[Hg]",
        **kw,
    }
    return DeviceReading(**values)  # type: ignore[arg-type]


def recorded(tmp_path: Path) -> tuple[SessionStore, str]:
    store, clock = new_store(tmp_path / "laptop.sqlite")
    sid = store.start_session(session_start(clock), "Dr A", protocol=protocol("clinic-ketamine"))
    clock.advance(minutes=1)
    add = device_store.add_device_readings
    add(store, sid, [_reading(clock, "T1", "spo2", 97, unit="%"), _reading(clock, "T1", "hr", 70)])
    clock.advance(seconds=5)
    # A preliminary value is never confirmed automatically: the desaturation stays pending.
    flags = frozenset({ReadingFlag.PRELIMINARY})
    add(store, sid, [_reading(clock, "T2", "spo2", 84, unit="%", flags=flags)])
    clock.advance(seconds=5)
    bp = add(store, sid, [_reading(clock, "B1", "sbp", 131), _reading(clock, "B1", "dbp", 79)])
    clock.advance(seconds=30)
    device_store.confirm_device_readings(store, sid, [r.id for r in bp.device_readings], "Dr A")
    clock.advance(seconds=5)
    off = _reading(clock, "T3", "spo2", None, flags=frozenset({ReadingFlag.PROBE_OFF}))
    add(store, sid, [off])
    clock.advance(seconds=5)
    odd = add(store, sid, [_reading(clock, "B2", "sbp", 250), _reading(clock, "B2", "dbp", 40)])
    device_store.mark_device_artefact(
        store, sid, [r.id for r in odd.device_readings], "Dr A", "cuff moved"
    )
    return store, sid


def test_json_export_carries_device_readings_and_imports_back(tmp_path: Path) -> None:
    store, sid = recorded(tmp_path)
    out = export(store, "json", [sid], tmp_path / "session.json")[0]
    store.close()
    document = json.loads(out.read_text("utf-8"))
    tables = document["tables"]
    assert len(tables["device_readings"]) == 8
    assert {r["decision"] for r in tables["device_reading_reviews"]} == {"confirmed", "artefact"}
    device_alarms = [a for a in tables["alarms"] if a["source_table"] == "device_readings"]
    assert device_alarms and all("device, unconfirmed" in a["message"] for a in device_alarms)
    linked = [v for v in tables["vitals"] if v.get("device_reading_id") is not None]
    assert len(linked) == 2  # the auto-confirmed trend and the confirmed BP
    office = SessionStore.open(tmp_path / "office.sqlite")
    report = import_path(office.db, out, "tester")
    assert [(o.session_id, o.status) for o in report.outcomes] == [(sid, IMPORTED)]
    again = document_text(build_session_document(office, sid))
    office.close()
    assert again.encode("utf-8") == without_anchor(out.read_bytes())
    assert verify_database(tmp_path / "office.sqlite").problems == []


def test_csv_and_fhir_still_write_and_fhir_leaves_pending_readings_out(tmp_path: Path) -> None:
    store, sid = recorded(tmp_path)
    csv_files = export(store, "csv", [sid], tmp_path / "csv", folder=True)
    fhir = export(store, "fhir", [sid], tmp_path / "bundle.json")[0]
    store.close()
    assert csv_files
    bundle = json.loads(fhir.read_text("utf-8"))
    observations = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
    ]
    assert observations, "confirmed vitals are observations as before"
    # The pending desaturation (84, never confirmed) is no final observation.
    values = [
        c.get("valueQuantity", {}).get("value")
        for o in observations
        for c in [o, *o.get("component", [])]
    ]
    assert 84 not in values and 250 not in values


def test_the_pdf_report_still_writes_with_device_readings_and_their_alarms(tmp_path: Path) -> None:
    from kapmonitor.reports.pdf_report import write_session_pdf

    store, sid = recorded(tmp_path)
    store.close()
    out = tmp_path / "report.pdf"
    write_session_pdf(tmp_path / "laptop.sqlite", sid, out)
    assert out.read_bytes().startswith(b"%PDF")
