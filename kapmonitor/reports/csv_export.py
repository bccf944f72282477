"""Tidy CSV tables a spreadsheet user can open: one file per table, one row per record.

Each file starts with ``session_id`` and ``patient_code`` so files of many sessions can be
filtered and joined, then ``ref`` (the row's number within its session, as in the JSON export)
and ``status`` (current, superseded or voided), then the stored columns. ``vitals.csv`` also
carries the NEWS2 score and the alarms each set raised, so the common question "what was the
score and what alarmed" needs no join. Times are the stored ISO 8601 UTC text. Files are UTF-8
with a byte-order mark so Excel shows µ, ° and ₂ correctly; quoting is the csv module's, so a
comma, a quote or a line break in a note survives.

**Formula injection** (OWASP's CSV-injection rule): a text cell that begins with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return would be read by a spreadsheet as a formula (a note
typed as ``=HYPERLINK("http://…", "click")`` becomes a live link; ``=cmd|…`` may run a program).
Such a cell is written with a single quote in front (``'=HYPERLINK(…)``), and every text cell is
written in double quotes (``QUOTE_NONNUMERIC``), so the spreadsheet shows the text and runs
nothing. The quote is part of the cell: a program reading the CSV sees it, which is the price of
the rule (the JSON export carries the text unchanged). Numbers the app itself writes from a
stored number (an ``int`` or ``float`` read from the database, such as a negative temperature
change or a correction's difference) are written as numbers, unquoted and unprefixed: they are
not text anyone typed, their digits cannot form a formula, and prefixing them would turn every
negative figure into text a spreadsheet cannot add up. A number-like *text* (a note reading
``-5``) is text and is prefixed. Not covered: a cell starting with a lookalike character (a
full-width ``＝``) that some spreadsheet might also treat as a formula; and a spreadsheet's own
"detect special numbers" heuristics on text.

**The audit chain head** (docs/audit.md) is the export's own small table, ``audit_chain_head.csv``
(``database,entry,mac,written_at``: one header line and one row), not a ``#`` comment line or a
trailer in a data table: a spreadsheet shows such a line as a row of data (it would be filtered,
sorted and counted with the rest), and ``csv.DictReader`` or pandas without ``comment="#"`` would
take a leading one for the header. A table copied out of the folder alone does not carry it.

The files are written session by session and row by row (rows come from cursors and go straight
to the open files), so exporting ten thousand sessions takes no more memory than exporting one.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Mapping, Sequence
from typing import IO, Any

from sqlite_utils import Database

from kapmonitor.reports.session_export import (
    ExportTarget,
    Progress,
    Row,
    SessionRows,
    current_rows,
    describe_tables,
    session_columns,
)
from kapmonitor.store import anchors
from kapmonitor.store.session_tables import TableInfo

ENCODING = "utf-8-sig"
#: A text cell starting with one of these would be read as a formula by a spreadsheet (OWASP).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: Text cells are quoted (numbers are not): OWASP's "wrap every cell in double quotes".
QUOTING = csv.QUOTE_NONNUMERIC
LEAD_COLUMNS = ("session_id", "patient_code", "ref", "status")
VITALS_EXTRA = ("news2_total", "news2_band", "alarm_count", "alarms")


def row_status(row: Row, superseded: set[Any]) -> str:
    """``superseded`` when a later row corrects it, ``voided`` for a withdrawal, else current."""
    if row.get("voided"):
        return "voided"
    if row["ref"] in superseded:
        return "superseded"
    return "current"


def _vitals_extra(reader: SessionRows) -> dict[int, dict[str, Any]]:
    """NEWS2 and alarms for each vitals ref of one session, from its current scores and alarms."""
    extra: dict[int, dict[str, Any]] = {}
    if "vital_scores" in reader.tables:
        for score in current_rows(list(reader.rows("vital_scores"))):
            extra.setdefault(score["vitals_id"], {}).update(
                news2_total=score["news2_total"], news2_band=score["news2_band"]
            )
    if "alarms" in reader.tables:
        for alarm in current_rows(list(reader.rows("alarms"))):
            if alarm.get("source_table") != "vitals":
                continue
            found = extra.setdefault(alarm["source_id"], {})
            found["alarm_count"] = found.get("alarm_count", 0) + 1
            label = f"{alarm['priority']} {alarm['parameter']}"
            found["alarms"] = f"{found['alarms']}; {label}" if found.get("alarms") else label
    return extra


def _session_row(reader: SessionRows) -> list[Any]:
    session = reader.session
    clinicians: list[Row] = []
    ends: list[Row] = []
    if "session_clinicians" in reader.tables:
        clinicians = sorted(reader.rows("session_clinicians"), key=lambda r: r.get("position", 0))
    if "session_ends" in reader.tables:
        ends = current_rows(list(reader.rows("session_ends")))
    return [
        *session.values(),
        "; ".join(r["name"] for r in clinicians),
        ends[-1]["observed_at"] if ends else None,
    ]


def neutralise(value: Any) -> Any:
    """A cell a spreadsheet cannot run: text starting like a formula gets a leading ``'``;
    numbers the app wrote (``int``/``float``, not text) and other text pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _cells(values: Sequence[Any]) -> list[Any]:
    return ["" if v is None else neutralise(v) for v in values]


def csv_writer(fh: IO[str]) -> Any:
    """The one ``csv.writer`` the export uses (text quoted, numbers bare)."""
    return csv.writer(fh, quoting=QUOTING)


def table_header(name: str, info: TableInfo) -> list[str]:
    """The header of ``<table>.csv``: the lead columns, the stored ones, NEWS2 and alarms."""
    extra = VITALS_EXTRA if name == "vitals" else ()
    return [*LEAD_COLUMNS, *(c.name for c in info.columns), *extra]


def write_table(writer: Any, reader: SessionRows, name: str, info: TableInfo) -> None:
    """One session's rows of ``name`` to a ``csv.writer``, one at a time from the cursor."""
    session = reader.session
    columns = [c.name for c in info.columns]
    superseded = reader.superseded(name)
    extra = _vitals_extra(reader) if name == "vitals" else {}
    for row in reader.rows(name):
        values = [session["id"], session["patient_code"], row["ref"], row_status(row, superseded)]
        values += [row.get(c) for c in columns]
        if name == "vitals":
            values += [extra.get(row["ref"], {}).get(k) for k in VITALS_EXTRA]
        writer.writerow(_cells(values))


def write_csv_sessions(
    db: Database, session_ids: Sequence[str], target: ExportTarget, progress: Progress
) -> None:
    """The CSV writer: ``sessions.csv`` and one file per table, every session's rows in each,
    written session by session into files that stay open until the last session is done."""
    tables: Mapping[str, TableInfo] = describe_tables(db)
    session_header = [c.name for c in session_columns(db)]
    with contextlib.ExitStack() as stack:
        files: dict[str, Any] = {}

        def open_csv(file_name: str, header: Sequence[str]) -> Any:
            fh: IO[str] = stack.enter_context(target.open_text(file_name, ENCODING))
            writer = csv_writer(fh)
            writer.writerow(_cells(header))
            return writer

        files["sessions"] = open_csv(
            "sessions.csv",
            ["session_id" if c == "id" else c for c in session_header] + ["clinicians", "ended_at"],
        )
        for name, info in tables.items():
            files[name] = open_csv(f"{name}.csv", table_header(name, info))
        for done, session_id in enumerate(session_ids, 1):
            reader = SessionRows(db, session_id, tables)
            files["sessions"].writerow(_cells(_session_row(reader)))
            for name, info in tables.items():
                write_table(files[name], reader, name, info)
            progress(done, len(session_ids))
    anchor = anchors.embedded(db)  # the head as of this export's snapshot
    if anchor is not None:
        with target.open_text(anchors.CSV_TABLE, ENCODING) as fh:
            fh.write(anchors.csv_table(anchor))
