"""Every export format, registered once: the command line and the review window list and run them
from here only.

Why: the formats used to be listed in the CLI and in four places of the review window, each writer
took different arguments, and the export's audit entry was written in two places. Datasette's
``register_output_renderer`` is the model: a format is a name, a title, a file suffix and a writer.

**The one writer signature**::

    writer(db: Database, session_ids: Sequence[str], target: ExportTarget, progress: Progress)
        -> None

- ``db`` is a read connection (the archive worker's read-only one in the window);
- ``target`` (:class:`~kapmonitor.reports.session_export.ExportTarget`) hands out the files to
  stream into by name (``target.open(name)``, ``target.open_text(name, encoding)``, or
  ``target.path(name)`` for a writer that needs a path); per-session formats name each file
  ``<session id><suffix>``. Nothing reaches the destination until the export is audited and
  committed, so a failure or a cancel leaves no half-written file;
- ``progress(done, total)`` is called after each session; it may raise
  :class:`~kapmonitor.reports.session_export.ExportCancelled` to stop.

Writers stream: they read session by session through cursors and write as they read, so memory does
not grow with the number of sessions.

**Adding a format** is one :func:`register_export` call (here for a built-in format, or from a
plugin module) plus its writer: the CLI's ``--format`` choices and the review window's Export menu
come from :func:`export_formats`.

**Auditing**: :func:`run_export` (the CLI) and :func:`finish_export` (the review window, once its
worker has written the files) both end in :func:`kapmonitor.store.session_transfer.record_export`,
the one place an export's audit entry is written, one entry per exported session, before the files
are moved into place: protected health information never leaves without an audit entry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kapmonitor.paths import is_session_id
from kapmonitor.store.errors import StoreError

if TYPE_CHECKING:
    from sqlite_utils import Database

    from kapmonitor.reports.session_export import ExportCancelled, ExportTarget, Progress, Source

# The registry is read when the command line builds its parser, on every start including the
# window's: the writers' modules (sqlite-utils, the store, the exporters) load on first use.
_LAZY = {
    "ExportCancelled": "kapmonitor.reports.session_export",
    "ExportTarget": "kapmonitor.reports.session_export",
    "Progress": "kapmonitor.reports.session_export",
}


def __getattr__(name: str) -> Any:
    """The export types re-exported from :mod:`kapmonitor.reports.session_export`, on demand."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


Writer = Callable[["Database", Sequence[str], "ExportTarget", "Progress"], None]


@dataclass(frozen=True)
class ExportFormat:
    """One registered export format."""

    name: str  # the CLI's --format value and the audit entry's "format"
    title: str  # what menus, the progress dialog and messages call it: "JSON document"
    suffix: str  # each session's file ends with it (".json"); "" for a folder of tables (CSV)
    writer: Writer
    file_filter: str = ""  # the save dialog's filter, e.g. "JSON files (*.json)"
    shortcut: str = ""  # the review window's key for exporting the selected session
    short: str = ""  # the toolbar's text, e.g. "JSON…"

    @property
    def writes_folder(self) -> bool:
        """A format with no per-session suffix always writes a folder (CSV: one file per table)."""
        return not self.suffix

    def file_name(self, session_id: str) -> str:
        """``<session id><suffix>``, for a valid session id only (never a path)."""
        check_session_ids([session_id])
        return f"{session_id}{self.suffix}"


_FORMATS: dict[str, ExportFormat] = {}


def register_export(
    name: str,
    title: str,
    suffix: str,
    writer: Writer,
    *,
    file_filter: str = "",
    shortcut: str = "",
    short: str = "",
) -> ExportFormat:
    """Add (or replace) the format ``name``; it is offered everywhere exports are."""
    entry = ExportFormat(name, title, suffix, writer, file_filter, shortcut, short or f"{name}…")
    _FORMATS[name] = entry
    return entry


def unregister_export(name: str) -> None:
    """Remove a format (a plugin unloading, or a test's throwaway format)."""
    _FORMATS.pop(name, None)


def export_formats() -> tuple[ExportFormat, ...]:
    """Every registered format, in registration order."""
    return tuple(_FORMATS.values())


def export_format(name: str) -> ExportFormat:
    try:
        return _FORMATS[name]
    except KeyError:
        known = ", ".join(_FORMATS)
        raise StoreError(f"There is no export format {name!r} (known: {known}).") from None


# --- running an export ------------------------------------------------------------------------


def check_session_ids(session_ids: Sequence[str]) -> None:
    """Refuse, before anything is written, a session id that could not safely name a file.

    Export file names are made from session ids, which come from the database; an id such as
    ``../../x`` (written with SQL, or imported by a version that did not check) would be a path
    out of ``--out``. Only ids the app could have made (32 hex digits) are used."""
    bad = [sid for sid in session_ids if not is_session_id(sid)]
    if bad:
        shown = repr(str(bad[0])[:40])
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise StoreError(
            f"the session id {shown}{more} is not a KAP Monitor session id (32 hexadecimal "
            "characters), so it cannot name an export file; run `kapmonitor verify` on the "
            "database. Nothing was written.",
            "invalid_id",
        )


def export_target(fmt: ExportFormat, session_ids: Sequence[str], out: Path, folder: bool) -> Path:
    """Where the files land: ``out`` itself for one session's file; a folder for ``--all``
    (``folder``), for a format that writes a folder, or when ``out`` is an existing folder
    (then the one session's file is named ``<session id><suffix>`` inside it)."""
    out = Path(out)
    if not folder and not fmt.writes_folder and len(session_ids) == 1 and out.is_dir():
        return out / fmt.file_name(session_ids[0])
    return out


def write_export(
    fmt: ExportFormat | str,
    db: Source,
    session_ids: Sequence[str],
    out: Path,
    *,
    folder: bool = False,
    progress: Progress | None = None,
) -> ExportTarget:
    """Run the format's writer into a staged target and return it, not yet committed: the caller
    audits (:func:`finish_export`) and then commits. A failure or cancel leaves nothing."""
    from kapmonitor.reports.session_export import ExportTarget, as_database, no_progress
    from kapmonitor.store.session_transfer import read_snapshot

    fmt = export_format(fmt) if isinstance(fmt, str) else fmt
    if not session_ids:
        raise StoreError("There are no sessions to export.", "empty")
    check_session_ids(session_ids)
    destination = export_target(fmt, session_ids, out, folder)
    single = not folder and not fmt.writes_folder and len(session_ids) == 1
    target = ExportTarget(destination, single=single)
    reader = as_database(db)
    try:
        with read_snapshot(reader):  # every session as of one moment, while recording goes on
            fmt.writer(reader, list(session_ids), target, progress or no_progress)
    except BaseException:
        target.discard()
        raise
    return target


def finish_export(
    audit_db: Database,
    target: ExportTarget,
    fmt: ExportFormat | str,
    session_ids: Sequence[str],
    actor: str,
    at: datetime,
    *,
    audited: bool = True,
) -> list[Path]:
    """Audit the export, then move its files into place. If the audit entry cannot be written,
    the files are removed: nothing leaves without its entry.

    ``audited=False`` only for a database on read-only media, which cannot take an entry (the
    command line says so on stderr; docs/exports.md)."""
    from kapmonitor.store import anchors
    from kapmonitor.store.session_transfer import record_export

    name = fmt if isinstance(fmt, str) else fmt.name
    try:
        if audited:
            record_export(audit_db, actor, at, name, target.destination, session_ids)
    except BaseException:
        target.discard()
        raise
    published = target.commit()
    anchors.note(audit_db, "export", target.destination)  # the chain head beside it, and logged
    return published


def run_export(
    db: Database,
    fmt: ExportFormat | str,
    session_ids: Sequence[str],
    out: Path,
    actor: str,
    at: datetime,
    *,
    folder: bool = False,
    progress: Progress | None = None,
    audit_db: Database | None = None,
    audited: bool = True,
) -> Path:
    """Write, audit and commit in one call (the command line); returns the file or folder."""
    target = write_export(fmt, db, session_ids, out, folder=folder, progress=progress)
    finish_export(audit_db or db, target, fmt, session_ids, actor, at, audited=audited)
    return target.destination


# --- the built-in formats --------------------------------------------------------------------
# Each writer module is imported when the format is first used, so opening the review room (and
# listing the formats) does not load the PDF renderer or the FHIR builder.


def _pdf_writer(
    db: Database, session_ids: Sequence[str], target: ExportTarget, progress: Progress
) -> None:
    """One PDF report per session; the report reads the database file itself (by path)."""
    from kapmonitor.reports.pdf_report import write_session_pdf
    from kapmonitor.store.session_reader import database_file

    db_path = Path(database_file(db))
    for done, session_id in enumerate(session_ids, 1):
        write_session_pdf(db_path, session_id, target.path(f"{session_id}.pdf"))
        progress(done, len(session_ids))


def _json_writer(
    db: Database, session_ids: Sequence[str], target: ExportTarget, progress: Progress
) -> None:
    from kapmonitor.reports.session_export import write_json_sessions

    write_json_sessions(db, session_ids, target, progress)


def _csv_writer(
    db: Database, session_ids: Sequence[str], target: ExportTarget, progress: Progress
) -> None:
    from kapmonitor.reports.csv_export import write_csv_sessions

    write_csv_sessions(db, session_ids, target, progress)


def _fhir_writer(
    db: Database, session_ids: Sequence[str], target: ExportTarget, progress: Progress
) -> None:
    from kapmonitor.reports.fhir_export import write_fhir_sessions

    write_fhir_sessions(db, session_ids, target, progress)


register_export(
    "pdf",
    "PDF report",
    ".pdf",
    _pdf_writer,
    file_filter="PDF files (*.pdf)",
    shortcut="Ctrl+P",
    short="PDF…",
)
register_export(
    "csv", "CSV tables (a folder)", "", _csv_writer, shortcut="Ctrl+Shift+C", short="CSV…"
)
register_export(
    "json",
    "JSON document",
    ".json",
    _json_writer,
    file_filter="JSON files (*.json)",
    shortcut="Ctrl+Shift+J",
    short="JSON…",
)
register_export(
    "fhir",
    "FHIR R4 bundle",
    ".fhir.json",
    _fhir_writer,
    file_filter="FHIR JSON (*.json)",
    shortcut="Ctrl+Shift+F",
    short="FHIR…",
)

__all__ = [
    "ExportCancelled",
    "ExportFormat",
    "ExportTarget",
    "Progress",
    "Writer",
    "check_session_ids",
    "export_format",
    "export_formats",
    "finish_export",
    "register_export",
    "run_export",
    "unregister_export",
    "write_export",
]
