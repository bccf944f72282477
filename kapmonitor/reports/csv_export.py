"""Tidy CSV tables a spreadsheet user can open: one file per table, one row per record.

Each file starts with ``session_id`` and ``patient_code`` so files of many sessions can be
filtered and joined, then ``ref`` (the row's number within its session, as in the JSON export)
and ``status`` (current, superseded or voided), then the stored columns. ``vitals.csv`` also
carries the NEWS2 score and the alarms each set raised, so the common question "what was the
score and what alarmed" needs no join. Times are the stored ISO 8601 UTC text. Files are UTF-8
with a byte-order mark so Excel shows µ, ° and ₂ correctly; quoting is the csv module's, so a
comma, a quote or a line break in a note survives.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kapmonitor.reports.session_export import (
    Document,
    Row,
    Source,
    as_database,
    build_session_document,
    current_rows,
    describe_tables,
    session_columns,
    write_folder,
)

ENCODING = "utf-8-sig"
LEAD_COLUMNS = ("session_id", "patient_code", "ref", "status")
VITALS_EXTRA = ("news2_total", "news2_band", "alarm_count", "alarms")


def row_status(row: Row, rows: Sequence[Row]) -> str:
    """``superseded`` when a later row corrects it, ``voided`` for a withdrawal, else current."""
    if row.get("voided"):
        return "voided"
    if any(r.get("supersedes_id") == row["ref"] for r in rows):
        return "superseded"
    return "current"


def _vitals_extra(document: Document) -> dict[int, dict[str, Any]]:
    """NEWS2 and alarms for each vitals ref, from the current score and alarm rows."""
    tables = document["tables"]
    extra: dict[int, dict[str, Any]] = {}
    for score in current_rows(tables.get("vital_scores", [])):
        extra.setdefault(score["vitals_id"], {}).update(
            news2_total=score["news2_total"], news2_band=score["news2_band"]
        )
    for alarm in current_rows(tables.get("alarms", [])):
        if alarm.get("source_table") != "vitals":
            continue
        found = extra.setdefault(alarm["source_id"], {})
        found["alarm_count"] = found.get("alarm_count", 0) + 1
        label = f"{alarm['priority']} {alarm['parameter']}"
        found["alarms"] = f"{found['alarms']}; {label}" if found.get("alarms") else label
    return extra


def _session_rows(document: Document) -> list[list[Any]]:
    session = document["session"]
    clinicians = [
        r["name"]
        for r in sorted(
            document["tables"].get("session_clinicians", []), key=lambda r: r.get("position", 0)
        )
    ]
    ends = current_rows(document["tables"].get("session_ends", []))
    return [
        [
            *(session.get(k) for k in session),
            "; ".join(clinicians),
            ends[-1]["observed_at"] if ends else None,
        ]
    ]


def _table_rows(document: Document, name: str, columns: Sequence[str]) -> list[list[Any]]:
    session = document["session"]
    rows: list[Row] = document["tables"].get(name, [])
    extra = _vitals_extra(document) if name == "vitals" else {}
    out: list[list[Any]] = []
    for row in rows:
        lead = [session["id"], session["patient_code"], row["ref"], row_status(row, rows)]
        values = [row.get(c) for c in columns]
        if name == "vitals":
            values += [extra.get(row["ref"], {}).get(k) for k in VITALS_EXTRA]
        out.append(lead + values)
    return out


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV with the csv module's quoting; empty cells for missing values."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return buffer.getvalue()


def csv_tables(source: Source, session_ids: Sequence[str]) -> dict[str, str]:
    """File name → CSV text for the given sessions: ``sessions.csv`` and one per table."""
    db = as_database(source)
    documents = [build_session_document(db, sid) for sid in session_ids]
    session_header = [c.name for c in session_columns(db)]
    files = {
        "sessions.csv": csv_text(
            ["session_id" if c == "id" else c for c in session_header] + ["clinicians", "ended_at"],
            (row for doc in documents for row in _session_rows(_ordered(doc, session_header))),
        )
    }
    for name, info in describe_tables(db).items():
        columns = [c.name for c in info.columns]
        header = [*LEAD_COLUMNS, *columns, *(VITALS_EXTRA if name == "vitals" else ())]
        rows = (row for doc in documents for row in _table_rows(doc, name, columns))
        files[f"{name}.csv"] = csv_text(header, rows)
    return files


def _ordered(document: Document, columns: Sequence[str]) -> Document:
    """The document with its session columns in the database's column order."""
    session = document["session"]
    return {**document, "session": {c: session.get(c) for c in columns}}


def write_csv(source: Source, session_ids: Sequence[str], folder: Path) -> list[Path]:
    """Write the CSV files for ``session_ids`` into ``folder``: all of them, or none."""
    files: Mapping[str, str] = csv_tables(source, session_ids)
    return write_folder(Path(folder), {n: t.encode(ENCODING) for n, t in files.items()})
