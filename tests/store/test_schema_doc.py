"""docs/schema.md and the real schema must agree, column for column and type for type."""

from __future__ import annotations

import re
from pathlib import Path

from tests.factories import open_store

DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.md"
ROW = re.compile(r"^\|\s*`(\w+)`\s*\|\s*(\w+)\s*\|")


def documented() -> dict[str, dict[str, str]]:
    tables: dict[str, dict[str, str]] = {}
    common: dict[str, str] = {}
    current: dict[str, str] | None = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## Columns every entry table has"):
            current = common
        elif line.startswith("### `"):
            name = line.split("`")[1]
            current = tables.setdefault(name, {})
            if "(entry table)" in line:
                current.update(common)
        elif line.startswith("## "):
            current = None
        elif current is not None and (match := ROW.match(line)):
            current[match.group(1)] = match.group(2)
    return tables


def test_schema_doc_matches_database(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.sqlite")
    actual = {
        table: {row[1]: row[2] for row in store.db.execute(f"PRAGMA table_info({table})")}
        for table in store.db.table_names()
        if not table.startswith("_")
    }
    store.close()
    assert documented() == actual
