"""Bring sessions exported elsewhere (JSON, or another laptop's database file) into this file.

A session is known by its id (a UUID, the same on every laptop), so importing is idempotent: a
session already here with the same content is skipped, one that differs is refused with a reason,
and a new one is inserted in one transaction by the store
(:func:`kapmonitor.store.session_transfer.insert_session`; this module only reads). Every document
is checked against this database's own schema before anything is written, so a refusal of the
file writes nothing at all; a session the database refuses while inserting is rolled back whole.
Clinical tables are append-only, so the import only ever INSERTs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from kapmonitor.domain.clock import Clock, SystemClock, to_iso
from kapmonitor.reports import import_limits as limits
from kapmonitor.reports.session_export import (
    FORMAT,
    FORMAT_VERSION,
    Document,
    Row,
    build_session_document,
    is_sqlite_file,
    open_read_only,
    session_ids,
)
from kapmonitor.store.database import StoreError
from kapmonitor.store.schema import SCHEMA_VERSION
from kapmonitor.store.session_reader import session_exists
from kapmonitor.store.session_tables import Column, TableInfo, describe_tables, session_columns
from kapmonitor.store.session_transfer import SessionRefused, insert_order, insert_session
from kapmonitor.store.signatures import SIGNATURE_TABLES, signed_elsewhere

# ``audit_anchor`` is the exporting database's chain head (docs/audit.md): accepted and not
# stored (it anchors that database, not this one; ``verify --anchors`` reads it from the file).
TOP_LEVEL = frozenset(
    {
        "format",
        "format_version",
        "schema_version",
        "app_version",
        "audit_anchor",
        "session",
        "tables",
    }
)
INT_RANGE = (-(2**63), 2**63 - 1)
IMPORTED, PRESENT, REFUSED = "imported", "present", "refused"


@dataclass(frozen=True)
class Outcome:
    """What happened to one session of the file."""

    session_id: str
    status: str  # IMPORTED, PRESENT or REFUSED
    reason: str = ""


@dataclass
class ImportReport:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def ok(self) -> bool:
        return self.count(REFUSED) == 0

    def summary(self) -> str:
        """One line for the command line; names no patient."""
        parts = [f"imported {_sessions(self.count(IMPORTED))}"]
        if self.count(PRESENT):
            parts.append(f"{self.count(PRESENT)} already present")
        if self.count(REFUSED):
            parts.append(f"{self.count(REFUSED)} refused")
        return ", ".join(parts)


def _sessions(n: int) -> str:
    return f"{n} session" if n == 1 else f"{n} sessions"


def _invalid(message: str) -> StoreError:
    return StoreError(
        f"not a valid KAP Monitor export: {message}; nothing was imported.", "invalid"
    )


def _name(value: object) -> str:
    """A key from the file, shortened so a hostile file cannot flood the message."""
    text = str(value)
    return repr(text if len(text) <= 40 else text[:40] + "…")


# --- reading the file ------------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _parse_json(path: Path) -> Any:
    limits.check_file_size(path)  # before reading a byte of a flood
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StoreError(f"Cannot read {path}: {exc.strerror or exc}.", "unreadable") from exc
    try:
        return json.loads(
            data.decode("utf-8-sig"),
            parse_constant=_refuse_constant,
            parse_float=limits.finite_float,  # 1e400 would be infinity
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise StoreError(
            f"not a KAP Monitor export: {path} is not JSON text; nothing was imported.",
            "not_export",
        ) from exc


def _documents_in(value: Any, path: Path) -> list[Any]:
    if isinstance(value, list):
        if not value:
            raise StoreError(f"{path} holds no sessions; nothing was imported.", "not_export")
        return value
    return [value]


def _from_database(path: Path) -> list[Document]:
    db = open_read_only(path)
    try:
        return [build_session_document(db, sid) for sid in session_ids(db)]
    finally:
        db.close()


def read_documents(path: Path) -> list[Any]:
    """The session documents in ``path``: a JSON export (one document, or a list of them), a
    folder of ``.json`` exports (what ``export --all --format json`` writes), or a KAP Monitor
    database file, read without changing it."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"Cannot read {path}: there is no such file or folder.", "unreadable")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".json" and p.is_file())
        if not files:
            raise StoreError(f"{path} holds no .json export files; nothing was imported.")
        return [doc for f in files for doc in _documents_in(_parse_json(f), f)]
    if is_sqlite_file(path):
        return list(_from_database(path))
    return _documents_in(_parse_json(path), path)


# --- checking a document against this database -------------------------------------------------


def _check_value(where: str, column: Column, value: Any) -> None:
    if value is None:
        if column.notnull:
            raise _invalid(f"{where}: {column.name} must have a value")
        return
    kind = column.type
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _invalid(f"{where}: {column.name} must be a number or text")
    if kind in ("INTEGER", "INT") and not isinstance(value, int):
        raise _invalid(f"{where}: {column.name} must be a whole number")
    if kind == "REAL" and not isinstance(value, (int, float)):
        raise _invalid(f"{where}: {column.name} must be a number")
    if kind == "TEXT" and not isinstance(value, str):
        raise _invalid(f"{where}: {column.name} must be text")
    if kind == "BLOB":
        raise _invalid(f"{where}: {column.name} holds binary data, which JSON cannot carry")
    if isinstance(value, int) and not INT_RANGE[0] <= value <= INT_RANGE[1]:
        raise _invalid(f"{where}: {column.name} is too large")
    if isinstance(value, str):
        _check_text(where, column, value)
    limits.check_cell(where, column, value)


def _check_text(where: str, column: Column, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _invalid(f"{where}: {column.name} is not valid text") from exc
    if column.json_text:
        try:
            json.loads(value, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:
            raise _invalid(f"{where}: {column.name} must hold JSON text") from exc


def _check_columns(
    where: str,
    row: Any,
    columns: Sequence[Column],
    extra: Iterable[str],
    now: datetime | None = None,
) -> None:
    if not isinstance(row, dict):
        raise _invalid(f"{where} is not an object")
    known = {c.name for c in columns} | set(extra)
    unknown = [k for k in row if k not in known]
    if unknown:
        raise _invalid(f"{where} has a field this version does not know ({_name(unknown[0])})")
    for column in columns:
        if column.name not in row:
            if column.required:
                raise _invalid(f"{where} lacks {column.name}")
            continue
        _check_value(where, column, row[column.name])
    limits.check_stamps(where, row, now or datetime.now(UTC))


def _check_session(session: Any, columns: Sequence[Column], now: datetime) -> str:
    if isinstance(session, dict) and "id" in session:
        limits.check_session_id(session["id"])  # before any message could quote it
    _check_columns("the session", session, columns, (), now)
    return limits.check_session_id(session["id"])


def _check_link(where: str, info: TableInfo, row: Row, tables: Mapping[str, Any]) -> None:
    for link in info.links:
        value = row.get(link.column)
        if value is None:
            continue
        target = link.target_of(row)
        if not isinstance(target, str) or target not in tables:
            raise _invalid(f"{where}: {link.column} points to a table that is not in the file")
        rows = tables[target]
        limit = row["ref"] - 1 if target == info.name else len(rows)
        if not 1 <= value <= limit:
            raise _invalid(f"{where}: {link.column} points to a row that is not in the file")


def _check_rows(name: str, rows: Any, info: TableInfo, now: datetime) -> None:
    if not isinstance(rows, list):
        raise _invalid(f"table {name} is not a list of rows")
    for position, row in enumerate(rows, 1):
        where = f"{name} row {position}"
        _check_columns(where, row, info.columns, ("ref",), now)
        if type(row.get("ref")) is not int or row["ref"] != position:
            raise _invalid(f"{where}: ref must be {position} (rows are numbered 1..n)")


def check_document(db: Database, document: Any, now: datetime | None = None) -> str:
    """Refuse plainly anything this database could not take whole; returns the session id.

    ``now`` is the importing computer's time, for refusing stamps from the future
    (:mod:`kapmonitor.reports.import_limits` holds the limits)."""
    now = now or datetime.now(UTC)
    if not isinstance(document, dict):
        raise StoreError(
            "not a KAP Monitor export: the file holds no session document; nothing was imported.",
            "not_export",
        )
    if document.get("format") != FORMAT:
        raise StoreError(
            f'not a KAP Monitor export: it lacks "format": "{FORMAT}"; nothing was imported.',
            "not_export",
        )
    _check_versions(document)
    unknown = [k for k in document if k not in TOP_LEVEL]
    if unknown:
        raise _invalid(f"unexpected field {_name(unknown[0])}")
    if not isinstance(document.get("app_version"), str):
        raise _invalid("app_version must be text")
    if not isinstance(document.get("audit_anchor", {}), dict):
        raise _invalid("audit_anchor must be an object")
    session_id = _check_session(document.get("session"), session_columns(db), now)
    tables = document.get("tables")
    if not isinstance(tables, dict):
        raise _invalid("it has no tables object")
    known = describe_tables(db)
    for name, rows in tables.items():
        if name not in known:
            raise _invalid(f"it has a table this version does not know ({_name(name)})")
        _check_rows(name, rows, known[name], now)
    for name, rows in tables.items():
        for row in rows:
            _check_link(f"{name} row {row['ref']}", known[name], row, tables)
    insert_order(known, tables)  # refuses a circle of references now, before any write
    return session_id


def _check_versions(document: Mapping[str, Any]) -> None:
    for key, newest in (("format_version", FORMAT_VERSION), ("schema_version", SCHEMA_VERSION)):
        value = document.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _invalid(f"{key} must be a whole number from 1")
        if value > newest:
            raise StoreError(
                f"written by a newer KAP Monitor ({key} {value}; this version reads up to "
                f"{newest}). Install the newer version to import it; nothing was imported.",
                "newer",
            )


# --- comparing with a session already here ---------------------------------------------------


def differences(incoming: Mapping[str, Any], here: Mapping[str, Any]) -> list[str]:
    """How the two documents' content differs, in words (no clinical values)."""
    found: list[str] = []
    if incoming["session"] != here["session"]:
        found.append("the session details differ")
    theirs, ours = incoming.get("tables", {}), here.get("tables", {})
    for name in sorted(set(theirs) | set(ours)):
        a, b = theirs.get(name, []), ours.get(name, [])
        changed = sum(1 for x, y in zip(a, b, strict=False) if x != y)
        if changed:
            found.append(f"{changed} {name} row{'s' if changed != 1 else ''} differ")
        if len(a) > len(b):
            found.append(f"the file has {len(a) - len(b)} more {name} rows")
        elif len(b) > len(a):
            found.append(f"this database has {len(b) - len(a)} more {name} rows")
    return found


# --- writing ---------------------------------------------------------------------------------


def import_documents(
    db: Database,
    documents: Sequence[Any],
    actor: str,
    clock: Clock | None = None,
) -> ImportReport:
    """Check every document first (any refusal: nothing written), then import each session in
    its own transaction: skipped when already here unchanged, refused when it differs."""
    clock = clock or SystemClock()
    checked = [(check_document(db, doc, clock.now()), doc) for doc in documents]
    known = describe_tables(db)
    report = ImportReport()
    for session_id, document in checked:
        report.outcomes.append(_import_one(db, session_id, document, known, actor, clock))
    return report


def _import_one(
    db: Database,
    session_id: str,
    document: Document,
    known: Mapping[str, TableInfo],
    actor: str,
    clock: Clock,
) -> Outcome:
    if session_exists(db, session_id):
        diff = differences(_rows_only(document), _rows_only(build_session_document(db, session_id)))
        if not diff:
            return Outcome(session_id, PRESENT, f"session {session_id} is already present")
        reason = f"session {session_id} differs from the one already here: {'; '.join(diff)}"
        return Outcome(session_id, REFUSED, reason)
    # A signature in the file is never stored as one made here: it becomes "signed elsewhere,
    # by …", checked against the signer's key when this database knows it, and the session is
    # not locked by it (kapmonitor.store.signatures.signed_elsewhere).
    tables = signed_elsewhere(db, session_id, document["tables"], actor, to_iso(clock.now()))
    document = {**document, "tables": tables}
    try:
        insert_session(db, document, known, actor, clock.now())
    except SessionRefused as exc:
        # A constraint or trigger said no (e.g. a signature by an account unknown here); a
        # locked, full or damaged file raises a plain StoreError instead and stops the import.
        reason = f"session {session_id} was refused by the database ({_short(exc)})"
        return Outcome(session_id, REFUSED, reason + "; nothing of it was written")
    return Outcome(session_id, IMPORTED)


def _rows_only(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document without its signatures: a session signed elsewhere and imported before
    holds them as "signed elsewhere" here, so only the rows are compared."""
    tables = {k: v for k, v in document.get("tables", {}).items() if k not in SIGNATURE_TABLES}
    return {**document, "tables": tables}


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:200] + "…"


def import_path(db: Database, source: Path, actor: str, clock: Clock | None = None) -> ImportReport:
    """Import a JSON export, a folder of them, or another KAP Monitor database file."""
    return import_documents(db, read_documents(Path(source)), actor, clock)
