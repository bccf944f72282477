"""The one entry point: the window, the smoke test, the demo session, listings, exports,
import and verification.

Every failure a user can cause (a locked or damaged file, a bad path) ends in one plain
sentence on stderr and a non-zero exit code, never a traceback. Exports and imports print only
a one-line summary on stdout (counts and the path written), never clinical data.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kapmonitor import APP_NAME, __version__
from kapmonitor.domain.validation import ValidationError
from kapmonitor.paths import DB_ENV_VAR, resolve_db_path
from kapmonitor.store.database import StoreError

if TYPE_CHECKING:
    from sqlite_utils import Database

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_STORE = 2
EXIT_USAGE = 64
FORMATS = ("pdf", "csv", "json", "fhir")


def _db_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        metavar="PATH",
        help=f"database file (default: ${DB_ENV_VAR}, else the per-user data folder)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kapmonitor", description=f"{APP_NAME}: bedside log for KAP sessions."
    )
    parser.add_argument("--version", action="version", version=f"{APP_NAME} {__version__}")
    _db_argument(parser)
    parser.add_argument(
        "--smoke-test",
        action="store_true",
        help="build the main window offscreen on a temporary database, print SMOKE OK, exit",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="record a realistic simulated session")
    _db_argument(demo)
    demo.add_argument(
        "--pace",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="real seconds to wait between entries (default 0: as fast as possible)",
    )
    demo.add_argument("--seed", type=int, default=None, help="random seed for the readings")

    sessions = sub.add_parser("sessions", help="list the sessions in a database")
    _db_argument(sessions)
    _export_parser(sub)

    importer = sub.add_parser(
        "import",
        help="import sessions from a JSON export, a folder of them, or another database file",
    )
    _db_argument(importer)
    importer.add_argument("file", metavar="FILE", help="JSON export, folder, or .sqlite file")

    verify = sub.add_parser("verify", help="check the audit trail against every row")
    _db_argument(verify)

    backup = sub.add_parser("backup", help="take a checked online backup of the database")
    _db_argument(backup)
    backup.add_argument(
        "--out", metavar="FOLDER", help="backup folder (default: beside the database)"
    )
    backup.add_argument("--keep", type=int, default=20, help="backups to keep (default 20)")

    restore = sub.add_parser(
        "restore", help="put a checked backup in place of the database (the old file is kept)"
    )
    _db_argument(restore)
    restore.add_argument(
        "backup", metavar="BACKUP", nargs="?", help="backup file (default: the newest good one)"
    )

    bench = sub.add_parser("bench", help="measure the figures in docs/performance.md")
    bench.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    bench.add_argument(
        "--frozen", metavar="EXE", help="frozen kapmonitor executable to time start-up of"
    )
    bench.add_argument(
        "--bare", metavar="EXE", help="frozen bare PySide6 window: the start-up floor"
    )
    parser.add_argument("--startup-probe", action="store_true", help=argparse.SUPPRESS)
    return parser


def _export_parser(sub: Any) -> None:
    export = sub.add_parser("export", help="export sessions as PDF, CSV, JSON or FHIR R4")
    _db_argument(export)
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--session", metavar="ID", help="the session to export")
    which.add_argument("--all", action="store_true", help="every session in the database")
    export.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    export.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="file to write (a folder for csv, and for --all)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.smoke_test:
            from kapmonitor.smoke import run_smoke_test

            return run_smoke_test()
        if args.startup_probe:
            from kapmonitor.smoke import run_startup_probe

            return run_startup_probe()
        if args.command == "bench":
            from kapmonitor.bench import run_bench

            frozen = Path(args.frozen) if args.frozen else None
            bare = Path(args.bare) if args.bare else None
            return run_bench(quick=args.quick, frozen=frozen, bare=bare)
        db_path = resolve_db_path(getattr(args, "db", None))
        if args.command == "demo":
            from kapmonitor.demo import run_demo

            return run_demo(db_path, pace=args.pace, seed=args.seed)
        if args.command == "sessions":
            return _list_sessions(db_path)
        if args.command == "export":
            return _export(db_path, args.format, args.session, Path(args.out))
        if args.command == "import":
            return _import(db_path, Path(args.file))
        if args.command == "verify":
            return _verify(db_path)
        if args.command == "backup":
            return _backup(db_path, Path(args.out) if args.out else None, args.keep)
        if args.command == "restore":
            return _restore(db_path, Path(args.backup) if args.backup else None)
        from kapmonitor.ui.app import run_gui

        return run_gui(db_path)
    except (StoreError, ValidationError) as exc:
        print(f"kapmonitor: {exc}", file=sys.stderr)
        return EXIT_STORE
    except KeyboardInterrupt:
        return 130


def _list_sessions(db_path: Path) -> int:
    from kapmonitor.domain.clock import from_iso
    from kapmonitor.store.session_store import SessionStore

    if not db_path.exists():
        raise StoreError(f"There is no database at {db_path}.", "missing")
    store = SessionStore.open(db_path)
    try:
        rows = store.list_sessions()
    finally:
        store.close()
    if not rows:
        print("No sessions.")
        return EXIT_OK
    print(
        f"{'session':<34}{'patient':<14}{'started (local)':<18}{'status':<9}"
        f"{'doses':>5}  clinicians"
    )
    for row in rows:
        started = from_iso(row["started_at"]).astimezone().strftime("%Y-%m-%d %H:%M")
        status = "ended" if row["ended_at"] else "open"
        print(
            f"{row['id']:<34}{row['patient_code']:<14}{started:<18}{status:<9}"
            f"{row['doses']:>5}  {row['clinicians']}"
        )
    return EXIT_OK


# --- export, import, verify ---------------------------------------------------------------------


def _require_db(db_path: Path) -> None:
    if not db_path.exists():
        raise StoreError(f"There is no database at {db_path}.", "missing")


def _actor() -> str:
    """Who ran the command, for the audit trail: the operating-system account."""
    try:
        return f"{getpass.getuser()} (command line)"
    except (KeyError, OSError):
        return "command line"


def _audit_event(db: Database, action: str, detail: dict[str, Any], session_id: str | None) -> None:
    """Record an export or import in the audit trail, when this version has one."""
    from kapmonitor.store import audit

    if hasattr(audit, "event"):
        with db.atomic():
            audit.event(
                db, _actor(), action, at=datetime.now(UTC), detail=detail, session_id=session_id
            )


def _sessions(n: int) -> str:
    return f"{n} session" if n == 1 else f"{n} sessions"


def _export(db_path: Path, fmt: str, session: str | None, out: Path) -> int:
    from kapmonitor.reports.session_export import session_ids
    from kapmonitor.store.database import connect

    _require_db(db_path)
    db = connect(db_path)
    try:
        ids = [session] if session else session_ids(db)
        if not ids:
            raise StoreError(f"There are no sessions in {db_path} to export.", "missing")
        if session and not db.execute("SELECT 1 FROM sessions WHERE id = ?", [session]).fetchone():
            raise StoreError(f"There is no session {session} in {db_path}.", "missing")
        target = _write_export(db, db_path, fmt, ids, out, folder=session is None)
        for sid in ids:
            _audit_event(db, "export", {"format": fmt, "file": str(target)}, sid)
    finally:
        db.close()
    print(f"exported {_sessions(len(ids))} to {target}")
    return EXIT_OK


def _write_export(
    db: Database, db_path: Path, fmt: str, ids: list[str], out: Path, folder: bool
) -> Path:
    """Write the files; returns the file or folder written. ``folder`` is ``--all``."""
    from kapmonitor.reports import csv_export, fhir_export, session_export

    if fmt == "csv":
        csv_export.write_csv(db, ids, out)
        return out
    if fmt == "pdf":
        return _write_pdf(db_path, ids, out, folder)
    if folder:
        if fmt == "json":
            session_export.write_json_all(db, out)
        else:
            fhir_export.write_fhir_all(db, out, ids)
        return out
    if out.is_dir():  # --session with an existing folder: the usual file name inside it
        name = session_export.json_file_name if fmt == "json" else fhir_export.fhir_file_name
        out = out / name(ids[0])
    writer = session_export.write_json if fmt == "json" else fhir_export.write_fhir
    writer(db, ids[0], out)
    return out


def _write_pdf(db_path: Path, ids: list[str], out: Path, folder: bool) -> Path:
    """The PDF report reads the file itself (by path); one PDF per session."""
    try:
        from kapmonitor.reports.pdf_report import write_session_pdf
    except ImportError as exc:
        raise StoreError(f"PDF export is not available in this version ({exc}).") from exc
    targets = [out / f"{sid}.pdf" for sid in ids] if folder or out.is_dir() else [out]
    try:
        if folder:
            out.mkdir(parents=True, exist_ok=True)
        for sid, target in zip(ids, targets, strict=True):
            write_session_pdf(db_path, sid, target)
    except OSError as exc:
        raise StoreError(f"Cannot write {out} ({exc.strerror or exc}).", "unwritable") from exc
    return out if folder else targets[0]


def _import(db_path: Path, source: Path) -> int:
    from kapmonitor.reports.session_import import import_documents, read_documents
    from kapmonitor.store.database import connect

    documents = read_documents(source)
    if not db_path.exists():
        _check_before_creating(documents)
    db = connect(db_path)
    try:
        report = import_documents(db, documents, _actor())
        counts = {status: report.count(status) for status in ("imported", "present", "refused")}
        _audit_event(db, "import", {"source": source.name, **counts}, None)
    finally:
        db.close()
    for outcome in report.outcomes:
        if outcome.status == "refused":
            print(f"kapmonitor: {outcome.reason}", file=sys.stderr)
    print(f"{report.summary()} from {source}")
    return EXIT_OK if report.ok else EXIT_STORE


def _check_before_creating(documents: list[Any]) -> None:
    """Check the documents against a scratch database first, so a refused file never leaves
    a new, empty database file behind."""
    import tempfile

    from kapmonitor.reports.session_import import check_document
    from kapmonitor.store.database import connect

    with tempfile.TemporaryDirectory() as tmp:
        scratch = connect(Path(tmp) / "scratch.sqlite")
        try:
            for document in documents:
                check_document(scratch, document)
        finally:
            scratch.close()


def _verify(db_path: Path) -> int:
    _require_db(db_path)
    try:
        from kapmonitor.store.verify import verify_database
    except ImportError as exc:
        raise StoreError(f"verify is not available in this version ({exc}).") from exc
    result = verify_database(db_path)
    for line in result.lines:
        print(line)
    return EXIT_OK if result.ok else EXIT_FAILED


def _backup(db_path: Path, folder: Path | None, keep: int) -> int:
    from kapmonitor.store.backup import take_backup

    taken = take_backup(db_path, folder, keep)
    print(f"backed up to {taken.path} (checked: integrity and audit chain)")
    return EXIT_OK


def _restore(db_path: Path, chosen: Path | None) -> int:
    from kapmonitor.store.backup import newest_good_backup, restore

    if chosen is None:
        good = newest_good_backup(db_path)
        if good is None:
            raise StoreError(f"No good backup of {db_path} was found.", "backup")
        chosen = good.path
    kept = restore(chosen, db_path)
    where = f"; the file it replaced is kept as {kept}" if kept else ""
    print(f"restored {chosen} to {db_path}{where}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
