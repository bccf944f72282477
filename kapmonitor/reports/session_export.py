"""The complete session as one JSON document: the export other laptops and programs can read.

Row ids are local to one database file, so a document numbers each table's rows 1..n in id order
(``ref``) and rewrites every reference between rows to the referenced row's ``ref``. The tables
and the references between them are discovered from the database itself by the store
(:mod:`kapmonitor.store.session_tables`), so a table or column added by a later migration (EtCO₂,
say) is exported without touching this file. Rows are read through
:mod:`kapmonitor.store.session_reader`, one at a time from cursors.

The text is deterministic (sorted keys, fixed indentation, no export time inside), so exporting,
importing into another file and exporting again gives the same bytes, apart from the one
``audit_anchor`` member a written export file carries: the exporting database's audit chain head
(:func:`kapmonitor.store.anchors.embedded`), which differs between databases by design. See
``docs/json-format.md``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

from sqlite_utils import Database

from kapmonitor import __version__
from kapmonitor.store import anchors
from kapmonitor.store import session_reader as reader
from kapmonitor.store.database import SQLITE_HEADER, StoreError
from kapmonitor.store.file_modes import open_private, private_file, private_folder, private_tree
from kapmonitor.store.schema import SCHEMA_VERSION
from kapmonitor.store.session_tables import (
    Column,
    Link,
    TableInfo,
    describe_tables,
    schema_version,
    session_columns,
)

FORMAT = "kapmonitor-session"
FORMAT_VERSION = 1
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


# --- the tables (described by the store, which its importer needs too) ---------------------------


def as_database(source: Source) -> Database:
    """Accept a ``SessionStore`` (or anything with ``.db``) as well as a bare database."""
    return source if isinstance(source, Database) else source.db


# --- building the document -------------------------------------------------------------------


def session_ids(source: Source) -> list[str]:
    """Every session in the file, oldest first (the order ``--all`` writes them in)."""
    return reader.session_ids(as_database(source))


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


def build_session_document(
    source: Source, session_id: str, tables: Mapping[str, TableInfo] | None = None
) -> Document:
    """The whole session, corrections included, with row references as per-table refs.

    The document is in memory: for comparing and importing one session. Files are written by
    :func:`stream_session_document`, which gives the same bytes row by row."""
    db = as_database(source)
    session = reader.session_row(db, session_id)
    tables = describe_tables(db) if tables is None else tables
    raw = {name: list(reader.table_rows(db, name, session_id)) for name in tables}
    version = schema_version(db)
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


# --- reading a session row by row ------------------------------------------------------------


class SessionRows:
    """One session read table by table through cursors, rows numbered and linked by ``ref``.

    Why not a document: ``export --all`` over thousands of sessions used to build every file in
    memory. Only the id → ref maps of this one session are held (small integers); each table's
    rows are fetched from a cursor as they are written, so memory depends on neither the number
    of sessions nor, beyond those maps, the length of a session.
    """

    def __init__(self, db: Database, session_id: str, tables: Mapping[str, TableInfo]) -> None:
        self.db = db
        self.session_id = session_id
        self.tables = tables
        self.session = {
            k: _plain(v, "the session row") for k, v in reader.session_row(db, session_id).items()
        }
        self.refs: dict[str, dict[int, int]] = {
            name: {row_id: i for i, row_id in enumerate(reader.row_ids(db, name, session_id), 1)}
            for name in tables
        }

    def rows(self, name: str) -> Iterator[Row]:
        """The table's rows as exported (``ref``, links as refs), in id order, one at a time."""
        info = self.tables[name]
        for ref, row in enumerate(reader.table_rows(self.db, name, self.session_id), 1):
            yield _export_row(info, row, ref, self.refs)

    def superseded(self, name: str) -> set[Any]:
        """What this table's corrected rows are known by in the export: their refs when
        ``supersedes_id`` is a declared link (as it is in every clinical table), else the raw
        values the exported rows carry."""
        info = self.tables[name]
        if info.column("supersedes_id") is None:
            return set()
        found = reader.superseded_ids(self.db, name, self.session_id)
        if info.link("supersedes_id") is None:
            return found
        refs = self.refs[name]
        return {refs[row_id] for row_id in found if row_id in refs}


def _indent(text: str, spaces: int) -> str:
    return text.replace("\n", "\n" + " " * spaces)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False)


def anchor_text(anchor: Mapping[str, Any]) -> str:
    """The exact lines the ``audit_anchor`` member takes in a written document."""
    return f'  "{anchors.JSON_MEMBER}": {_indent(_dumps(anchor), 2)},\n'


def stream_session_document(
    db: Database,
    session_id: str,
    out: IO[str],
    tables: Mapping[str, TableInfo] | None = None,
    anchor: Mapping[str, Any] | None = None,
) -> None:
    """Write the session's document to ``out`` row by row: exactly the bytes of
    ``document_text(build_session_document(db, session_id))`` (a test holds them equal), without
    the document ever being in memory. ``anchor`` (the chain head, written by the export) adds
    the ``audit_anchor`` member in its sorted place; the rest is unchanged."""
    tables = describe_tables(db) if tables is None else tables
    rows = SessionRows(db, session_id, tables)
    out.write("{\n")
    out.write(f'  "app_version": {_dumps(__version__)},\n')
    if anchor is not None:
        out.write(anchor_text(anchor))
    out.write(f'  "format": {_dumps(FORMAT)},\n')
    out.write(f'  "format_version": {FORMAT_VERSION},\n')
    out.write(f'  "schema_version": {schema_version(db)},\n')
    out.write(f'  "session": {_indent(_dumps(rows.session), 2)},\n')
    names = sorted(tables)
    if not names:
        out.write('  "tables": {}\n}\n')
        return
    out.write('  "tables": {\n')
    for position, name in enumerate(names):
        out.write(f"    {_dumps(name)}: [")
        first = True
        for row in rows.rows(name):
            out.write("\n      " if first else ",\n      ")
            out.write(_indent(_dumps(row), 6))
            first = False
        out.write("]" if first else "\n    ]")
        out.write(",\n" if position < len(names) - 1 else "\n")
    out.write("  }\n}\n")


# --- where an export's files go: all of them or none -----------------------------------------


class ExportCancelled(Exception):
    """Raised by a progress callback to stop an export; nothing is left written."""


#: ``progress(done, total)``: sessions written so far and in all. It may raise
#: :class:`ExportCancelled` to stop the export (the review window's Cancel button does).
Progress = Callable[[int, int], None]


def no_progress(_done: int, _total: int) -> None:
    """The progress callback of an export nobody watches."""


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


class ExportTarget:
    """The file or folder an export writes, staged beside it until :meth:`commit`.

    Writers ask it for a file by name (:meth:`open`, :meth:`open_text`, or :meth:`path` for a
    writer that needs a path) and stream into it; nothing appears at the destination until
    :meth:`commit` renames the staged files into place, after the audit entry is written. A
    failure or a cancel calls :meth:`discard`: no half file, no half folder.

    ``single`` targets hold one file (the destination itself, whatever name the writer asks
    for); folder targets hold any number, created inside ``destination``.
    """

    def __init__(self, destination: Path, single: bool) -> None:
        self.destination = Path(destination)
        self.single = single
        self.names: list[str] = []
        self._staging: Path | None = None
        self._created = False

    def _fail(self, exc: OSError) -> StoreError:
        where = f"{self.destination}" if self.single else f"into {self.destination}"
        return StoreError(f"Cannot write {where} ({_why(exc)}); nothing was written.", "unwritable")

    def _stage(self) -> Path:
        if self._staging is None:
            try:
                if self.single:
                    fd, tmp = tempfile.mkstemp(
                        prefix=f".{self.destination.name}.",
                        suffix=".part",
                        dir=self.destination.parent,
                    )
                    os.close(fd)
                    self._staging = Path(tmp)
                else:
                    self._created = not self.destination.exists()
                    private_folder(self.destination)  # 0700 when made here; a named one kept
                    self._staging = Path(
                        tempfile.mkdtemp(prefix=".kapmonitor-export-", dir=self.destination)
                    )
            except OSError as exc:
                self.discard()
                raise self._fail(exc) from exc
        return self._staging

    def path(self, name: str) -> Path:
        """Where to write the file ``name`` now (a staged path, renamed on commit)."""
        if self.single and self.names:
            raise ValueError("a single-file export writes one file")
        if Path(name).name != name or name in ("", ".", ".."):  # a name, never a path
            raise StoreError(f"{name[:40]!r} cannot name an export file; nothing was written.")
        staging = self._stage()
        if name not in self.names:
            self.names.append(name)
        return staging if self.single else staging / name

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        """A binary file to stream into, flushed to disk when the block ends."""
        try:
            with open_private(self.path(name), "wb") as fh:  # 0600 before any byte
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise self._fail(exc) from exc

    @contextlib.contextmanager
    def open_text(self, name: str, encoding: str = "utf-8") -> Iterator[IO[str]]:
        """A text file (``newline=""``: the writer's line ends are kept) to stream into."""
        with self.open(name) as raw:
            text = io.TextIOWrapper(raw, encoding=encoding, newline="", write_through=False)
            try:
                yield text
                text.flush()
            finally:
                text.detach()

    def final_paths(self) -> list[Path]:
        if self.single:
            return [self.destination]
        return [self.destination / name for name in self.names]

    def commit(self) -> list[Path]:
        """Move every staged file into place; returns the files written."""
        try:
            if self.single:
                if self._staging is None:
                    raise StoreError("The export wrote nothing.", "empty")
                private_file(self._staging)  # a writer that made its own file (the PDF)
                os.replace(self._staging, self.destination)
            else:
                staging = self._stage()
                private_tree(staging)  # files a writer made itself (the PDF): 0600 too
                for name in self.names:
                    os.replace(staging / name, self.destination / name)
                shutil.rmtree(staging, ignore_errors=True)
            self._staging = None
        except OSError as exc:
            self.discard()
            raise self._fail(exc) from exc
        return self.final_paths()

    def discard(self) -> None:
        """Remove everything staged (and the folder, if this export created it)."""
        if self._staging is not None:
            if self.single:
                with contextlib.suppress(OSError):
                    self._staging.unlink()
            else:
                shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
        if self._created:
            shutil.rmtree(self.destination, ignore_errors=True)
            self._created = False


def write_atomically(path: Path, data: bytes) -> None:
    """Write beside the target, then rename over it: a failure leaves no partial file."""
    target = ExportTarget(Path(path), single=True)
    try:
        with target.open(Path(path).name) as fh:
            fh.write(data)
        target.commit()
    except BaseException:
        target.discard()
        raise


def write_json_sessions(
    db: Database, session_ids: Sequence[str], target: ExportTarget, progress: Progress
) -> None:
    """The JSON writer: one ``<session id>.json`` document per session, streamed row by row,
    each carrying the chain head as of the export's snapshot (``audit_anchor``)."""
    tables = describe_tables(db)
    anchor = anchors.embedded(db)
    for done, session_id in enumerate(session_ids, 1):
        with target.open_text(f"{session_id}.json") as out:
            stream_session_document(db, session_id, out, tables, anchor)
        progress(done, len(session_ids))


# --- reading another laptop's file without changing it ---------------------------------------


def is_sqlite_file(path: Path) -> bool:
    try:
        with Path(path).open("rb") as fh:
            return fh.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def open_read_only(path: Path) -> Database:
    """Open another KAP Monitor file for reading only: no migration, no change to the file."""
    return reader.open_other_database(path)


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
            anchors.JSON_MEMBER: {
                "description": "The exporting database's audit chain head when the file was "
                "written (docs/audit.md): its identity, the newest entry's number and MAC, and "
                "when that entry was written. `kapmonitor verify --anchors` reads it; an import "
                "ignores it.",
                "type": "object",
                "required": ["database", "entry", "mac", "written_at"],
                "additionalProperties": False,
                "properties": {
                    "database": {"type": "string", "pattern": "^[0-9a-f]{0,16}$"},
                    "entry": {"type": "integer", "minimum": 1},
                    "mac": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "written_at": {"type": "string"},
                },
            },
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
