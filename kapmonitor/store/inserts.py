"""One insert that hands back what it stored, so a write can say what it wrote."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from kapmonitor.domain.session_rows import StoredRow, typed_row


def insert_returning(db: Database, table: str, row: dict[str, Any]) -> StoredRow:
    """``INSERT … RETURNING *``: the stored row (its id and column defaults) from the insert
    itself, not from a second read after the commit (SQLite 3.35 or newer)."""
    cursor = db.execute(
        f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))}) RETURNING *",
        list(row.values()),
    )
    found = cursor.fetchone()
    columns = [d[0] for d in cursor.description]
    return typed_row(table, dict(zip(columns, found, strict=True)))
