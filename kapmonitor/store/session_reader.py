"""The queries the exports and the import read sessions with, row by row.

Why in the store: the reports only read, and read through the store (a report running its own SQL
knows the schema a second time). These functions hand rows out from cursors one at a time, so an
export of ten thousand sessions never holds more than the row being written, and they turn every
SQLite failure into a plain :class:`~kapmonitor.store.database.StoreError`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from kapmonitor.store.database import StoreError, connect_readonly, explain
from kapmonitor.store.schema import SCHEMA_VERSION
from kapmonitor.store.session_tables import schema_version, session_columns

Row = dict[str, Any]


def database_file(db: Database) -> str:
    """The file behind a connection, for messages and for readers that open it by path."""
    found = db.execute("PRAGMA database_list").fetchone()
    return str(found[2]) if found and found[2] else "the database"


def _explained(exc: sqlite3.Error, db: Database) -> StoreError:
    return explain(exc, database_file(db))


def session_ids(db: Database) -> list[str]:
    """Every session in the file, oldest first (the order ``--all`` writes them in)."""
    try:
        return [r[0] for r in db.execute("SELECT id FROM sessions ORDER BY observed_at, id")]
    except sqlite3.Error as exc:
        raise _explained(exc, db) from exc


def session_exists(db: Database, session_id: str) -> bool:
    try:
        found = db.execute("SELECT 1 FROM sessions WHERE id = ?", [session_id]).fetchone()
    except sqlite3.Error as exc:
        raise _explained(exc, db) from exc
    return found is not None


def session_row(db: Database, session_id: str) -> Row:
    """The ``sessions`` row, columns in the table's order; a plain error when there is none."""
    try:
        cursor = db.execute("SELECT * FROM sessions WHERE id = ?", [session_id])
        names = [d[0] for d in cursor.description]
        found = cursor.fetchone()
    except sqlite3.Error as exc:
        raise _explained(exc, db) from exc
    if found is None:
        raise StoreError(f"There is no session {session_id} in this database.", "missing")
    return dict(zip(names, found, strict=True))


def table_rows(db: Database, table: str, session_id: str) -> Iterator[Row]:
    """One session's rows of ``table`` in id order, fetched one at a time from a cursor.

    ``table`` must be a name from :func:`~kapmonitor.store.session_tables.describe_tables`."""
    try:
        cursor = db.execute(
            f"SELECT * FROM [{table}] WHERE session_id = ? ORDER BY id", [session_id]
        )
        names = [d[0] for d in cursor.description]
        for found in cursor:
            yield dict(zip(names, found, strict=True))
    except sqlite3.Error as exc:
        raise _explained(exc, db) from exc


def row_ids(db: Database, table: str, session_id: str) -> list[int]:
    """The ids of one session's rows of ``table``, in id order (what export refs number)."""
    try:
        return [
            r[0]
            for r in db.execute(
                f"SELECT id FROM [{table}] WHERE session_id = ? ORDER BY id", [session_id]
            )
        ]
    except sqlite3.Error as exc:
        raise _explained(exc, db) from exc


def superseded_ids(db: Database, table: str, session_id: str) -> set[Any]:
    """The ``supersedes_id`` values of one session's rows of ``table``: the rows corrected."""
    try:
        return {
            r[0]
            for r in db.execute(
                f"SELECT supersedes_id FROM [{table}] WHERE session_id = ? "
                "AND supersedes_id IS NOT NULL",
                [session_id],
            )
        }
    except sqlite3.Error as exc:
        raise _explained(exc, db) from exc


def open_other_database(path: Path) -> Database:
    """Another laptop's KAP Monitor file, opened to read only: no migration, no change to it,
    refused plainly when it is not a KAP Monitor file or a newer version wrote it."""
    path = Path(path)
    db = connect_readonly(path)
    try:
        version = schema_version(db)
        session_columns(db)
    except sqlite3.Error as exc:
        db.close()
        raise explain(exc, path) from exc
    except StoreError as exc:
        db.close()
        raise StoreError(f"{path}: {exc}", "not_export") from exc
    if version > SCHEMA_VERSION:
        db.close()
        raise StoreError(
            f"{path} was written by a newer KAP Monitor (schema {version}; this version knows "
            f"{SCHEMA_VERSION}). Install the newer version to read it.",
            "newer",
        )
    return db


__all__ = [
    "database_file",
    "open_other_database",
    "row_ids",
    "session_exists",
    "session_ids",
    "session_row",
    "superseded_ids",
    "table_rows",
]
