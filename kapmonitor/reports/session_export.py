"""The complete session as one JSON document: the export other laptops and programs can read.

Row ids are local to one database file, so a document numbers each table's rows 1..n in id order
(``ref``) and rewrites every reference between rows to the referenced row's ``ref``. The tables are
discovered from the database itself (every table with a ``session_id`` column), and so are the
references (``PRAGMA foreign_key_list``, plus ``x_id``/``x_table`` pairs that may point to
several tables), so a table added by a later migration is exported without touching this file.

The text is deterministic (sorted keys, fixed indentation, no export time inside), so exporting,
importing into another file and exporting again gives the same bytes. See ``docs/json-format.md``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlite_utils import Database

from kapmonitor import __version__
from kapmonitor.store.database import SQLITE_HEADER, StoreError, explain
from kapmonitor.store.schema import SCHEMA_VERSION

FORMAT = "kapmonitor-session"
FORMAT_VERSION = 1
# Tables with a session_id column that are not part of a session's clinical record.
EXCLUDED_TABLES = frozenset({"audit", "users"})
# Triggers refuse clinical rows for a signed session and addenda for an unsigned one, so these
# tables are written last, in this order, on import.
LAST_TABLES = ("signatures", "addenda")
SCHEMA_FILE = (
    Path(__file__).resolve().parents[2] / "resources" / "schemas" / ("session-export.schema.json")
)
UTC_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"

Row = dict[str, Any]
Document = dict[str, Any]


class HasDatabase(Protocol):
    """Anything holding an open sqlite-utils database, such as a ``SessionStore``."""

    db: Database


Source = Database | HasDatabase


@dataclass(frozen=True)
class Column:
    """One stored column, as the export and the import need to know it."""

    name: str
    type: str  # the declared STRICT type: INTEGER, REAL, TEXT, BLOB or ANY
    notnull: bool
    has_default: bool
    json_text: bool  # a CHECK (json_valid(...)) column: JSON kept as text
    utc_time: bool  # a CHECK (... GLOB 'YYYY-MM-DDTHH:MM:SS.mmmZ') column

    @property
    def required(self) -> bool:
        """A value must be given: the database has no default for a missing one."""
        return self.notnull and not self.has_default


@dataclass(frozen=True)
class Link:
    """A column holding another row's id: of ``target``, or of the table named in ``via``."""

    column: str
    target: str | None = None
    via: str | None = None

    def target_of(self, row: Mapping[str, Any]) -> str | None:
        return self.target if self.target is not None else row.get(self.via or "")


@dataclass(frozen=True)
class TableInfo:
    """A session-linked table: its columns (without ``id`` and ``session_id``) and links."""

    name: str
    columns: tuple[Column, ...]
    links: tuple[Link, ...]
    position: int  # creation order, the tie-break when ordering tables

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def link(self, name: str) -> Link | None:
        return next((lk for lk in self.links if lk.column == name), None)


# --- discovering the tables -----------------------------------------------------------------


def as_database(source: Source) -> Database:
    """Accept a ``SessionStore`` (or anything with ``.db``) as well as a bare database."""
    return source if isinstance(source, Database) else source.db


def schema_version(db: Database) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _table_sql(db: Database) -> list[tuple[str, str]]:
    return [
        (name, sql or "")
        for name, sql in db.execute(
            "SELECT name, sql FROM main.sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY rowid"
        ).fetchall()
    ]


def _columns(db: Database, table: str, sql: str) -> list[Column]:
    json_cols = set(re.findall(r"json_valid\(\s*\[?(\w+)\]?\s*\)", sql))
    utc_cols = set(re.findall(r"(\w+)\s+GLOB\s+'\[0-9\]\[0-9\]\[0-9\]\[0-9\]-", sql))
    return [
        Column(
            name=name,
            type=(decl or "ANY").upper(),
            notnull=bool(notnull) or bool(pk),
            has_default=default is not None,
            json_text=name in json_cols,
            utc_time=name in utc_cols,
        )
        for _cid, name, decl, notnull, default, pk in db.execute(
            f"PRAGMA table_info([{table}])"
        ).fetchall()
    ]


def _links(db: Database, table: str, columns: Iterable[str], linked: set[str]) -> list[Link]:
    """Foreign keys to other session tables, then ``x_id`` columns named by an ``x_table``."""
    names = set(columns)
    links: list[Link] = []
    for fk in db.execute(f"PRAGMA foreign_key_list([{table}])").fetchall():
        target, column, to = fk[2], fk[3], fk[4]
        if target in linked and to in (None, "id"):
            links.append(Link(column, target=target))
    fixed = {lk.column for lk in links}
    for name in sorted(names - fixed):
        if name.endswith("_id") and f"{name[:-3]}_table" in names and name != "session_id":
            links.append(Link(name, via=f"{name[:-3]}_table"))
    return links


def describe_tables(db: Database) -> dict[str, TableInfo]:
    """Every table holding rows of a session (it has ``session_id``), in creation order.

    ``sessions`` itself, the audit trail and the user accounts are not among them.
    """
    found: dict[str, tuple[int, list[Column]]] = {}
    for position, (name, sql) in enumerate(_table_sql(db)):
        if name in EXCLUDED_TABLES or name == "sessions":
            continue
        columns = _columns(db, name, sql)
        names = {c.name for c in columns}
        if "session_id" in names and "id" in names:
            found[name] = (position, columns)
    linked = set(found)
    tables: dict[str, TableInfo] = {}
    for name, (position, columns) in found.items():
        kept = tuple(c for c in columns if c.name not in ("id", "session_id"))
        links = tuple(_links(db, name, (c.name for c in kept), linked))
        tables[name] = TableInfo(name, kept, links, position)
    return tables


def session_columns(db: Database) -> tuple[Column, ...]:
    sql = dict(_table_sql(db)).get("sessions")
    if sql is None:
        raise StoreError("This file has no sessions table: it is not a KAP Monitor database.")
    return tuple(_columns(db, "sessions", sql))


# --- building the document -------------------------------------------------------------------


def session_ids(source: Source) -> list[str]:
    """Every session in the file, oldest first (the order ``--all`` writes them in)."""
    db = as_database(source)
    return [r[0] for r in db.execute("SELECT id FROM sessions ORDER BY observed_at, id")]


def _query(db: Database, sql: str, params: list[Any]) -> list[Row]:
    cursor = db.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, found, strict=True)) for found in cursor.fetchall()]


def _session_row(db: Database, session_id: str) -> Row:
    rows = _query(db, "SELECT * FROM sessions WHERE id = ?", [session_id])
    if not rows:
        raise StoreError(f"There is no session {session_id} in this database.", "missing")
    return rows[0]


def _plain(value: Any, where: str) -> Any:
    if isinstance(value, bytes):
        raise StoreError(f"{where} holds binary data, which a JSON export cannot carry.")
    return value


def _export_row(info: TableInfo, row: Row, ref: int, refs: Mapping[str, Mapping[int, int]]) -> Row:
    out: Row = {"ref": ref}
    for column in info.columns:
        out[column.name] = _plain(row[column.name], f"{info.name} row {ref}")
    for link in info.links:
        value = row[link.column]
        if value is None:
            continue
        target = link.target_of(row)
        if target not in refs or value not in refs[target]:
            raise StoreError(
                f"{info.name} row {ref}: {link.column} points to a row outside this session; "
                "the file needs checking with `kapmonitor verify`."
            )
        out[link.column] = refs[target][value]
    return out


def build_session_document(source: Source, session_id: str) -> Document:
    """The whole session, corrections included, with row references as per-table refs."""
    db = as_database(source)
    try:
        session = _session_row(db, session_id)
        tables = describe_tables(db)
        raw = {
            name: _query(
                db, f"SELECT * FROM [{name}] WHERE session_id = ? ORDER BY id", [session_id]
            )
            for name in tables
        }
        version = schema_version(db)
    except sqlite3.Error as exc:
        raise explain(exc, getattr(source, "path", "?")) from exc
    refs = {name: {row["id"]: i for i, row in enumerate(rows, 1)} for name, rows in raw.items()}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "schema_version": version,
        "app_version": __version__,
        "session": {k: _plain(v, "the session row") for k, v in session.items()},
        "tables": {
            name: [_export_row(tables[name], row, i, refs) for i, row in enumerate(rows, 1)]
            for name, rows in raw.items()
        },
    }


def document_text(document: Mapping[str, Any]) -> str:
    """The one text form of a document: the same data always gives the same bytes."""
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def current_rows(rows: list[Row]) -> list[Row]:
    """Rows of one exported table as they stand now: superseded and voided rows left out.

    Works on exported rows (``ref``, and ``supersedes_id`` as a ref), ordered by clinical time.
    """
    superseded = {r.get("supersedes_id") for r in rows if r.get("supersedes_id") is not None}
    live = [r for r in rows if r["ref"] not in superseded and not r.get("voided")]
    return sorted(live, key=lambda r: (r.get("observed_at") or "", r["ref"]))


# --- writing files without leaving half a file -------------------------------------------------


def _why(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "its folder does not exist"
    if isinstance(exc, IsADirectoryError):
        return "a folder of that name is in the way"
    if isinstance(exc, NotADirectoryError):
        return "part of the path is a file, not a folder"
    return (exc.strerror or str(exc)).lower()


def write_atomically(path: Path, data: bytes) -> None:
    """Write beside the target, then rename over it: a failure leaves no partial file."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise StoreError(
            f"Cannot write {path} ({_why(exc)}); nothing was written.", "unwritable"
        ) from exc


def write_folder(folder: Path, files: Mapping[str, bytes]) -> list[Path]:
    """Write several files into ``folder`` (created if needed), all of them or none.

    Every file is written into a temporary folder inside ``folder`` first; only when all are
    complete are they renamed into place.
    """
    folder = Path(folder)
    created = not folder.exists()
    staging: Path | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".kapmonitor-export-", dir=folder))
        for name, data in files.items():
            (staging / name).write_bytes(data)
        for name in files:
            os.replace(staging / name, folder / name)
    except OSError as exc:
        if created:
            shutil.rmtree(folder, ignore_errors=True)
        raise StoreError(
            f"Cannot write into {folder} ({_why(exc)}); nothing was written.", "unwritable"
        ) from exc
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return [folder / name for name in files]


def write_json(source: Source, session_id: str, out: Path) -> Path:
    """Export one session to the JSON file ``out``."""
    text = document_text(build_session_document(source, session_id))
    write_atomically(Path(out), text.encode("utf-8"))
    return Path(out)


def json_file_name(session_id: str) -> str:
    return f"{session_id}.json"


def write_json_all(source: Source, folder: Path) -> list[Path]:
    """Export every session into ``folder``, one ``<session id>.json`` file each."""
    files = {
        json_file_name(sid): document_text(build_session_document(source, sid)).encode("utf-8")
        for sid in session_ids(source)
    }
    return write_folder(Path(folder), files)


# --- reading another laptop's file without changing it ---------------------------------------


def is_sqlite_file(path: Path) -> bool:
    try:
        with Path(path).open("rb") as fh:
            return fh.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def open_read_only(path: Path) -> Database:
    """Open a KAP Monitor database for reading only: no migration, no change to the file."""
    path = Path(path)
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except (sqlite3.Error, OSError) as exc:
        raise explain(exc, path) from exc
    db = Database(conn, execute_plugins=False)
    try:
        version = schema_version(db)
        session_columns(db)
    except sqlite3.Error as exc:
        conn.close()
        raise explain(exc, path) from exc
    except StoreError as exc:
        conn.close()
        raise StoreError(f"{path}: {exc}", "not_export") from exc
    if version > SCHEMA_VERSION:
        conn.close()
        raise StoreError(
            f"{path} was written by a newer KAP Monitor (schema {version}; this version knows "
            f"{SCHEMA_VERSION}). Install the newer version to read it.",
            "newer",
        )
    return db


# --- the JSON Schema, generated from the database so it stays in step -----------------------


def _column_schema(column: Column, link: Link | None) -> dict[str, Any]:
    if link is not None:
        target = link.target or f"the table named in {link.via}"
        schema: dict[str, Any] = {
            "type": "integer",
            "minimum": 1,
            "description": f"ref of a row of {target}",
        }
    else:
        kind = {"INTEGER": "integer", "INT": "integer", "REAL": "number", "TEXT": "string"}
        schema = {"type": kind.get(column.type, ["string", "number"])}
        if column.json_text:
            schema["contentMediaType"] = "application/json"
            schema["description"] = "JSON kept as the text that was stored"
        if column.utc_time:
            schema["pattern"] = UTC_PATTERN
    if not column.notnull:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        schema["type"] = [*kinds, "null"]
    return schema


def _object_schema(columns: Iterable[Column], links: Iterable[Link], ref: bool) -> dict[str, Any]:
    by_name = {lk.column: lk for lk in links}
    properties: dict[str, Any] = {}
    required: list[str] = []
    if ref:
        properties["ref"] = {"type": "integer", "minimum": 1, "description": "1..n in id order"}
        required.append("ref")
    for column in columns:
        properties[column.name] = _column_schema(column, by_name.get(column.name))
        if column.required:
            required.append(column.name)
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def json_schema(db: Database) -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) for documents exported from a database of this schema."""
    tables = describe_tables(db)
    session = _object_schema(session_columns(db), (), ref=False)
    session["properties"]["id"] = {"type": "string", "minLength": 32, "maxLength": 32}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:kapmonitor:session-export:1",
        "title": "KAP Monitor session export",
        "description": "One session, every row of it, as written by `kapmonitor export "
        "--format json`. See docs/json-format.md.",
        "type": "object",
        "required": [
            "format",
            "format_version",
            "schema_version",
            "app_version",
            "session",
            "tables",
        ],
        "additionalProperties": False,
        "properties": {
            "format": {"const": FORMAT},
            "format_version": {"const": FORMAT_VERSION},
            "schema_version": {"type": "integer", "minimum": 1, "maximum": SCHEMA_VERSION},
            "app_version": {"type": "string"},
            "session": {"$ref": "#/$defs/session"},
            "tables": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    name: {"type": "array", "items": {"$ref": f"#/$defs/{name}"}} for name in tables
                },
            },
        },
        "$defs": {
            "session": session,
            **{
                name: _object_schema(info.columns, info.links, ref=True)
                for name, info in tables.items()
            },
        },
    }


def write_json_schema(path: Path = SCHEMA_FILE) -> Path:
    """Regenerate ``resources/schemas/session-export.schema.json`` from a fresh database."""
    from kapmonitor.store.database import connect

    with tempfile.TemporaryDirectory() as tmp:
        db = connect(Path(tmp) / "schema.sqlite")
        try:
            text = json.dumps(json_schema(db), indent=2, ensure_ascii=False) + "\n"
        finally:
            db.close()
    write_atomically(path, text.encode("utf-8"))
    return path
