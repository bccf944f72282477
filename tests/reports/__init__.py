"""Builders shared by the export and import tests: a realistic session with corrections."""

from __future__ import annotations

import json
import random
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

from kapmonitor.demo import record_demo
from kapmonitor.domain.clock import FakeClock, from_iso
from kapmonitor.domain.records import Intervention, VitalSigns
from kapmonitor.reports.export_registry import write_export
from kapmonitor.reports.session_export import anchor_text
from kapmonitor.store.session_store import SessionStore
from tests.factories import T0, open_store

TRICKY_NOTE = 'Re-measured, "left arm"\nafter rest; SpO₂ 97 %, 37.0 °C, 5 µg'


def record_session(store: SessionStore, clock: FakeClock, seed: int = 7, day: int = 0) -> str:
    """The demo session, then a corrected vitals set (tricky note) and a withdrawn note."""
    dose_at = T0 + timedelta(days=day, minutes=20)
    session_id = ""
    for kind, row_id in record_demo(store, clock, dose_at, 0, random.Random(seed)):
        if kind == "session":
            session_id = str(row_id)
    log = store.load(session_id)
    first = log.current("vitals")[0]
    clock.advance(minutes=2)
    fixed = VitalSigns(
        observed_at=from_iso(first["observed_at"]),
        hr=first["hr"],
        sbp=first["sbp"] + 2,
        dbp=first["dbp"],
        spo2=first["spo2"],
        rr=first["rr"],
        note=TRICKY_NOTE,
    )
    store.correct(session_id, first["id"], fixed, "Typo: transposed digits", "Dr. A. Rivera")
    note = next(r for r in log.current("interventions") if r["category"] == "note")
    withdrawn = Intervention("note", from_iso(note["observed_at"]), detail=note["detail"])
    store.correct(session_id, note["id"], withdrawn, "Wrong patient", "N. Okafor, RN", void=True)
    return session_id


def export(source: Any, fmt: str, ids: list[str], out: Path, folder: bool = False) -> list[Path]:
    """Run a registered format's writer and commit its files, without an audit entry: the tests
    of the writers themselves (the CLI and the window audit through the registry)."""
    return write_export(fmt, source, ids, out, folder=folder).commit()


def without_anchor(data: bytes) -> bytes:
    """A JSON export's bytes without its ``audit_anchor`` lines (the exporting database's chain
    head, which differs between databases by design): what must match byte for byte after an
    import into another file. Fails if the file carries no anchor."""
    text = data.decode("utf-8")
    block = anchor_text(json.loads(text)["audit_anchor"])
    assert block in text
    return text.replace(block, "", 1).encode("utf-8")


def new_store(path: Path) -> tuple[SessionStore, FakeClock]:
    clock = FakeClock(T0)
    return open_store(path, clock), clock


def file_state(path: Path) -> dict[str, Any]:
    """Everything in a database file, the audit trail included: to show nothing was written."""
    raw = sqlite3.connect(path)
    try:
        names = [
            r[0]
            for r in raw.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {n: raw.execute(f"SELECT * FROM [{n}] ORDER BY rowid").fetchall() for n in names}
    finally:
        raw.close()
