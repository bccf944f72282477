"""Reports read through the store: no SQL of their own under kapmonitor/reports/.

Why: a report that runs its own queries knows the schema a second time and can drift from the
store's rules (what is current, what a correction replaced). The PDF and the report sections read
``SessionStore.load`` and the store's query functions only; this keeps it so.
"""

from __future__ import annotations

import re
from pathlib import Path

import kapmonitor.reports

REPORTS = Path(kapmonitor.reports.__file__).parent
# Every report module is checked (the exports and the import read through
# kapmonitor.store.session_reader and write through kapmonitor.store.session_transfer): never add
# a name here.
NOT_YET_MOVED: set[str] = set()
SQL = re.compile(
    r"\.execute\(|\.executemany\(|\.query\(|\bdb\[|\bsqlite3\b|\bsqlite_master\b|"
    r"\b(SELECT|INSERT|UPDATE|DELETE|PRAGMA)\s",
)


def sql_lines(path: Path) -> list[str]:
    return [
        f"{path.name}:{number}: {line.strip()}"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if SQL.search(line)
    ]


def test_no_sql_in_the_reports() -> None:
    modules = sorted(p for p in REPORTS.glob("*.py") if p.name not in NOT_YET_MOVED)
    assert {
        "pdf_report.py",
        "report_sections.py",
        "session_export.py",
        "session_import.py",
        "csv_export.py",
        "fhir_export.py",
        "export_registry.py",
    } <= {p.name for p in modules}
    found = [line for path in modules for line in sql_lines(path)]
    assert found == [], "reports read through the store:\n" + "\n".join(found)


def test_the_check_finds_sql(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        'rows = store.db.execute("SELECT name FROM sqlite_master")\nn = db["vitals"].count\n',
        encoding="utf-8",
    )
    assert len(sql_lines(sample)) == 2
