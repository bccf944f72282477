"""``kapmonitor verify``: walk the audit chain and cross-check it against every row.

Three kinds of damage are named, each with its table and row:
- an audit row altered, removed or inserted (its hash, or the link to the one before, fails);
- a row whose content no longer matches the hash recorded when the app wrote it (altered);
- an audited row that is gone (removed), or a row with no audit entry (inserted outside the app).

It opens the file read-only, so verifying never changes what it verifies.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from kapmonitor.store import audit
from kapmonitor.store.database import StoreError, connect_readonly, explain

# Rows derived by the app are audited like any other; nothing is exempt but the bookkeeping.


@dataclass
class VerifyReport:
    entries: int = 0
    rows_checked: int = 0
    tables: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def lines(self) -> list[str]:
        if self.ok:
            return [
                f"OK: audit chain intact ({self.entries} entries); {self.rows_checked} rows in "
                f"{self.tables} tables match their audit entries."
            ]
        return [
            f"FAILED: {len(self.problems)} problem(s) found "
            f"({self.entries} audit entries, {self.rows_checked} rows checked):",
            *(f"  {p}" for p in self.problems),
        ]


def verify_database(path: Path) -> VerifyReport:
    """Verify the file at ``path``; a missing or unreadable file is a plain StoreError."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"There is no database at {path}.", "missing")
    try:
        db = connect_readonly(path)  # keyed (and its keys attached) when encrypted
        conn = db.conn
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.Error as exc:
        raise explain(exc, path) from exc
    try:
        if "audit" not in tables:
            raise StoreError(
                f"{path} has no audit trail (it was written by a KAP Monitor before 0.2 and "
                "never opened by a newer one); open it once with KAP Monitor to start one.",
                "unaudited",
            )
        return verify(db)
    except sqlite3.Error as exc:
        raise explain(exc, path) from exc
    finally:
        conn.close()


def verify(db: Database) -> VerifyReport:
    report = VerifyReport()
    latest = _walk_chain(db, report)
    _cross_check(db, latest, report)
    return report


def _walk_chain(db: Database, report: VerifyReport) -> dict[tuple[str, int], tuple[int, str]]:
    """Check each link; return the latest recorded hash of each (table, row)."""
    latest: dict[tuple[str, int], tuple[int, str]] = {}
    previous = audit.GENESIS
    expected_id = None
    for entry in audit.entries(db):
        report.entries += 1
        number = entry["id"]
        if expected_id is not None and number != expected_id:
            report.problems.append(
                f"audit entries #{expected_id}–#{number - 1}: removed from the trail"
            )
        expected_id = number + 1
        fields = {name: entry[name] for name in audit.CHAINED_FIELDS}
        if entry["prev_hash"] != previous:
            report.problems.append(
                f"audit entry #{number}: does not follow the entry before it "
                "(an entry was removed, inserted or reordered)"
            )
        if audit.entry_hash(entry["prev_hash"], fields) != entry["hash"]:
            report.problems.append(f"audit entry #{number}: altered (its hash does not match)")
        previous = entry["hash"]
        if entry["table_name"] is not None and entry["row_id"] is not None:
            latest[(entry["table_name"], entry["row_id"])] = (number, entry["row_hash"])
    return latest


def _cross_check(
    db: Database, latest: dict[tuple[str, int], tuple[int, str]], report: VerifyReport
) -> None:
    tables = audit.audited_tables(db)
    report.tables = len(tables)
    seen: set[tuple[str, int]] = set()
    for table in tables:
        cursor = db.execute(f"SELECT rowid AS __rowid__, * FROM [{table}] ORDER BY rowid")
        names = [d[0] for d in cursor.description]
        for found in cursor:
            content: dict[str, Any] = dict(zip(names, found, strict=True))
            rowid = content.pop("__rowid__")
            report.rows_checked += 1
            key = (table, rowid)
            seen.add(key)
            recorded = latest.get(key)
            label = _label(table, rowid, content)
            if recorded is None:
                report.problems.append(f"{label}: inserted outside the app (no audit entry)")
            elif audit.row_hash(audit.hashed_content(table, content)) != recorded[1]:
                report.problems.append(
                    f"{label}: altered after it was recorded (audit entry #{recorded[0]})"
                )
    for (table, rowid), (number, _digest) in sorted(latest.items()):
        if (table, rowid) not in seen:
            report.problems.append(
                f"{table} row {rowid}: removed (recorded by audit entry #{number})"
            )


def _label(table: str, rowid: int, content: dict[str, Any]) -> str:
    if table == "sessions":
        return f"sessions row {rowid} (session {content.get('id')})"
    return f"{table} row {rowid}"
