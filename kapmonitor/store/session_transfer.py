"""Sessions coming into this file and leaving it: the importer's writes and the transfer audit.

Why in the store: the reports only read. An import is checked by
:mod:`kapmonitor.reports.session_import` (every validation of the file happens there, before
anything is written); this module then INSERTs the checked session in one transaction and seals
its rows into the audit trail inside that transaction, so rows and audit entries commit or roll
back together. Clinical tables are append-only, so the import only ever INSERTs.

:func:`record_export` is the one place an export's audit entry is written, whichever format and
whoever asked (the command line, the review window): protected health information never leaves
the file without an entry naming who took it, in what format and where to.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from kapmonitor.store import audit
from kapmonitor.store.database import StoreError, explain
from kapmonitor.store.session_reader import database_file
from kapmonitor.store.session_tables import LAST_TABLES, TableInfo

Row = dict[str, Any]


class SessionRefused(StoreError):
    """The database refused one imported session (a constraint or trigger said no); nothing of
    it was written. The message is SQLite's own reason."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "refused")


def insert_order(known: Mapping[str, TableInfo], tables: Mapping[str, list[Row]]) -> list[str]:
    """Tables so that every referenced row is inserted before the rows naming it.

    Dependencies come from the links (for an ``x_id``/``x_table`` pair, from the tables the rows
    actually name); ties keep creation order; signatures and addenda go last.
    """
    names = [n for n in sorted(tables, key=lambda n: known[n].position) if n not in LAST_TABLES]
    needs: dict[str, set[str]] = {n: set() for n in names}
    for name in names:
        for link in known[name].links:
            for row in tables[name]:
                target = link.target_of(row)
                if row.get(link.column) is not None and target != name and target in needs:
                    needs[name].add(target)
    order: list[str] = []
    while needs:
        ready = [n for n in names if n in needs and not needs[n] - set(order)]
        if not ready:
            raise StoreError(
                "not a valid KAP Monitor export: its tables refer to each other in a circle; "
                "nothing was imported.",
                "invalid",
            )
        order.append(ready[0])
        del needs[ready[0]]
    return order + [n for n in LAST_TABLES if n in tables]


@contextlib.contextmanager
def immediate(db: Database) -> Iterator[Database]:
    """A write transaction that takes the write lock first (``BEGIN IMMEDIATE``).

    Why: a deferred ``BEGIN`` reads first (the audit chain's head) and asks for the write lock
    only at its INSERT; if the bedside window committed in between, SQLite answers "database is
    locked" at once, without waiting for the busy timeout (its snapshot is stale, so waiting could
    not help). Taking the lock first makes the busy timeout apply: an export or import during
    recording waits its turn. Nested inside a transaction, it is a savepoint. SQLite errors leave
    as :class:`StoreError` in plain words."""
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise explain(exc, database_file(db)) from exc
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.rollback()
        raise
    try:
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        if db.conn.in_transaction:
            db.conn.rollback()
        raise explain(exc, database_file(db)) from exc


@contextlib.contextmanager
def read_snapshot(db: Database) -> Iterator[Database]:
    """Read many tables as of one moment: one read transaction (WAL lets the writer go on).

    Why: an export reads a session table by table; a vitals set saved between reading the
    vitals and reading their NEWS2 scores made the export refuse ("points to a row outside this
    session"). Inside an open transaction it adds nothing."""
    if db.conn.in_transaction:
        yield db
        return
    try:
        db.execute("BEGIN")
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot starts here
    except sqlite3.Error as exc:
        if db.conn.in_transaction:
            db.conn.rollback()
        raise explain(exc, database_file(db)) from exc
    try:
        yield db
    finally:
        if db.conn.in_transaction:
            db.conn.rollback()  # it only read


def _insert(db: Database, table: str, values: Mapping[str, Any]) -> int:
    columns = ", ".join(f"[{c}]" for c in values)
    marks = ", ".join("?" * len(values))
    cursor = db.execute(
        f"INSERT INTO [{table}] ({columns}) VALUES ({marks})", list(values.values())
    )
    return int(cursor.lastrowid or 0)


def _local_row(
    info: TableInfo, row: Row, session_id: str, new_ids: Mapping[str, Mapping[int, int]]
) -> Row:
    """An exported row as this file stores it: refs turned back into this file's row ids."""
    values: Row = {"session_id": session_id}
    for column in info.columns:
        if column.name in row:
            values[column.name] = row[column.name]
    for link in info.links:
        if row.get(link.column) is not None:
            values[link.column] = new_ids[str(link.target_of(row))][row[link.column]]
    return values


def insert_session(
    db: Database,
    document: Mapping[str, Any],
    known: Mapping[str, TableInfo],
    actor: str,
    at: datetime,
) -> None:
    """Write one checked session document in one transaction, its rows sealed into the audit
    trail inside it. Raises what SQLite raises (a trigger or constraint saying no rolls the
    whole session back as :class:`SessionRefused`); any other SQLite failure is a plain
    :class:`StoreError`."""
    session = document["session"]
    tables: Mapping[str, list[Row]] = document.get("tables", {})
    try:
        with immediate(db):
            _insert(db, "sessions", session)
            new_ids: dict[str, dict[int, int]] = {}
            for name in insert_order(known, tables):
                ids = new_ids.setdefault(name, {})
                for row in tables[name]:
                    ids[row["ref"]] = _insert(
                        db, name, _local_row(known[name], row, session["id"], new_ids)
                    )
            audit.seal(db, actor, "import", at, session["id"])
    except (sqlite3.IntegrityError, OverflowError, ValueError) as exc:
        raise SessionRefused(str(exc)) from exc
    except sqlite3.Error as exc:  # locked, full, damaged: the whole import stops, plainly
        raise explain(exc, database_file(db)) from exc


def record_export(
    db: Database,
    actor: str,
    at: datetime,
    fmt: str,
    target: Path | str,
    session_ids: Sequence[str],
) -> None:
    """The audit entries of one export: one per exported session (so each session's trail shows
    it left), all in one transaction. The only place an export is audited. It waits for a
    session being recorded to commit (:func:`immediate`)."""
    try:
        with immediate(db):
            for session_id in session_ids:
                detail = {"format": fmt, "file": str(target)}
                audit.event(db, actor, "export", at, detail, session_id)
    except sqlite3.Error as exc:
        raise explain(exc, database_file(db)) from exc


def record_import(db: Database, actor: str, at: datetime, detail: Mapping[str, Any]) -> None:
    """The audit entry of one import run (each imported session's rows are sealed as well)."""
    try:
        with immediate(db):
            audit.event(db, actor, "import", at, dict(detail), None)
    except sqlite3.Error as exc:
        raise explain(exc, database_file(db)) from exc


__all__ = [
    "SessionRefused",
    "immediate",
    "insert_order",
    "insert_session",
    "read_snapshot",
    "record_export",
    "record_import",
]
