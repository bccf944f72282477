"""The store reads a session back as typed rows: every stored column of a session table is a
named field of its row type (none left to string keys), and load() and row() answer typed."""

from __future__ import annotations

from pathlib import Path

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import Dose, VitalSigns
from kapmonitor.domain.session_rows import (
    ROW_TYPES,
    DoseRow,
    OtherRow,
    SessionProtocolRow,
    VitalsRow,
)
from kapmonitor.store.schema import ENTRY_TABLES, REVIEW_TABLES
from tests.factories import T0, open_store, protocol, session_start

# Written once per session beside the REMS form; read only by the REMS form's own query.
UNTYPED = {"rems_session_details"}
CORRECTION_COLUMNS = {"supersedes_id", "correction_reason", "voided"}


def test_every_stored_column_of_a_session_table_is_a_field_of_its_row(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.sqlite", FakeClock(T0))
    try:
        for table in (*ENTRY_TABLES, *REVIEW_TABLES):
            if table in UNTYPED:
                continue
            stored = {r[1] for r in store.db.execute(f"PRAGMA table_info({table})")}
            assert table in ROW_TYPES, f"{table} has no typed row"
            declared = set(ROW_TYPES[table]._columns())
            assert stored <= declared, f"{table}: {stored - declared} would be a string key"
            # Review rows are never corrected: the correction columns take their defaults.
            assert declared - stored <= CORRECTION_COLUMNS, table
    finally:
        store.close()


def test_load_and_row_answer_typed_rows(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    store = open_store(tmp_path / "s.sqlite", clock)
    try:
        sid = store.start_session(
            session_start(clock), "Dr A", protocol=protocol("clinic-ketamine")
        )
        clock.advance(minutes=2)
        vitals_id = store.add(
            sid, VitalSigns(clock.now(), sbp=122, dbp=78, hr=72, spo2=98, rr=14), "Dr A"
        )
        clock.advance(minutes=1)
        store.add(sid, Dose("ketamine", "im", 50.0, clock.now()), "Dr A")
        log = store.load(sid)
        (reading,) = log.current("vitals")
        assert isinstance(reading, VitalsRow) and (reading.sbp, reading.hr) == (122, 72)
        (dose,) = log.current("doses")
        assert isinstance(dose, DoseRow) and dose.dose_mg == 50.0
        (copy,) = log.current("session_protocols")
        assert isinstance(copy, SessionProtocolRow) and copy.protocol_id == "clinic-ketamine"
        assert not any(isinstance(r, OtherRow) for table, rows in log.rows.items() for r in rows), (
            "every clinical row read back has its own type"
        )
        again = store.row("vitals", vitals_id.primary_id)
        assert again == reading and isinstance(again, VitalsRow)
    finally:
        store.close()
