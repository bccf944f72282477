"""The one entry point: the window, the smoke test, the demo session, listings, exports,
import, verification and scenario runs.

Every failure a user can cause (a locked or damaged file, a bad path) ends in one plain
sentence on stderr and a non-zero exit code, never a traceback; the sentence starts with the
option (``--db``, ``--out``, ``BACKUP``...) whose value is at fault. Arguments are checked before
anything is opened or written, so a refused command leaves no half-made file or session. Exports
and imports print only a one-line summary on stdout (counts and the path written), never
clinical data. Commands that would lose data refuse: ``restore`` while another process has the
database open, ``demo`` on the clinic's default database.

An encrypted database is unlocked first, with an account's password from ``KAPMONITOR_USER`` /
``KAPMONITOR_PASSWORD`` or asked at the terminal; ``init``, ``rekey`` and ``recover`` manage its
key (:mod:`kapmonitor.cli_keys`, docs/encryption.md).
"""

from __future__ import annotations

import argparse
import getpass
import math
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kapmonitor import (
    APP_NAME,
    __version__,
    central_commands,
    cli_keys,
    device_commands,
    network_commands,
)
from kapmonitor.domain.refusals import ValidationError
from kapmonitor.paths import DB_ENV_VAR, resolve_db_path
from kapmonitor.store.errors import StoreError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_STORE = 2
EXIT_NO_DISPLAY = 3
# The longest wait between demo entries: an hour each already stretches the demo over two days.
MAX_PACE_SECONDS = 3600.0


class OptionError(StoreError):
    """A failure caused by one option's value: the message starts with that option's name."""

    def __init__(self, option: str, error: StoreError | str, kind: str | None = None) -> None:
        text = str(error)
        super().__init__(f"{option}: {text}", kind or getattr(error, "kind", None) or "error")
        self.option = option


def _pace(text: str) -> float:
    """``--pace``: a finite number of seconds, 0 up to :data:`MAX_PACE_SECONDS`."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or not 0 <= value <= MAX_PACE_SECONDS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give seconds from 0 to {MAX_PACE_SECONDS:g} (0 records as fast as possible)"
        )
    return value


def _keep(text: str) -> int:
    """``--keep``: how many backups to keep, at least one (the one just taken)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: keep at least 1 backup")
    return value


def _bench_args(args: argparse.Namespace) -> list[str]:
    """The bench's own options, repeated for each version ``--before`` compares."""
    found = ["--quick"] if args.quick else []
    for name in ("frozen", "bare"):
        if getattr(args, name) is not None:
            found += [f"--{name}", str(getattr(args, name))]
    return found


def _executable(text: str) -> Path:
    """``bench --frozen/--bare``: an existing executable file, checked before minutes of work."""
    path = Path(text).expanduser()
    if not path.is_file() or not os.access(path, os.X_OK):
        raise argparse.ArgumentTypeError(f"{text} is not an executable file")
    return path


def _db_argument(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """``--db`` on the top level and on every command; a command's own ``--db`` leaves the
    top-level value alone when not given, so ``kapmonitor --db X sessions`` reads X, not the
    clinic's default database."""
    parser.add_argument(
        "--db",
        metavar="PATH",
        default=None if top else argparse.SUPPRESS,
        help=f"database file (default: ${DB_ENV_VAR}, else the per-user data folder)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kapmonitor", description=f"{APP_NAME}: bedside log for KAP sessions."
    )
    parser.add_argument("--version", action="version", version=f"{APP_NAME} {__version__}")
    _db_argument(parser, top=True)
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
        type=_pace,
        default=0.0,
        metavar="SECONDS",
        help="real seconds to wait between entries, 0 to 3600 (default 0: as fast as possible)",
    )
    demo.add_argument("--seed", type=int, default=None, help="random seed for the readings")
    demo.set_defaults(command_parser=demo)

    sessions = sub.add_parser("sessions", help="list the sessions in a database")
    _db_argument(sessions)
    central_commands.add_archive_options(sessions)  # --server: the central archive
    _export_parser(sub)

    importer = sub.add_parser(
        "import",
        help="import sessions from a JSON export, a folder of them, or another database file",
    )
    _db_argument(importer)
    importer.add_argument("file", metavar="FILE", help="JSON export, folder, or .sqlite file")

    accounts = sub.add_parser("accounts", help="the account sheet: every signing key")
    _db_argument(accounts)
    accounts.add_argument(
        "--sheet",
        action="store_true",
        required=True,
        help="print every account with the fingerprints of its signing keys, to keep on paper",
    )

    verify = sub.add_parser("verify", help="check the audit trail against every row")
    _db_argument(verify)
    verify.add_argument(
        "--anchors",
        nargs="+",
        default=[],
        metavar="PATH",
        help="anchor logs, backups, PDF reports or exports (or #N:MAC from a printout) to hold "
        "the file's audit chain against: names a cut tail, a rollback and a rewritten history",
    )
    verify.add_argument(
        "--server",
        metavar="URL",
        help="also hold it against the chain heads the central archive recorded at each sync",
    )

    backup = sub.add_parser("backup", help="take a checked online backup of the database")
    _db_argument(backup)
    backup.add_argument(
        "--out", metavar="FOLDER", help="backup folder (default: beside the database)"
    )
    backup.add_argument(
        "--keep", type=_keep, default=20, metavar="N", help="backups to keep (default 20)"
    )

    restore = sub.add_parser(
        "restore", help="put a checked backup in place of the database (the old file is kept)"
    )
    _db_argument(restore)
    restore.add_argument(
        "backup", metavar="BACKUP", nargs="?", help="backup file (default: the newest good one)"
    )

    _scenario_parser(sub)
    device_commands.add_simulate_parser(sub)
    device_commands.add_simulate_oximeter_parser(sub)
    device_commands.add_capture_parser(sub, _db_argument)
    cli_keys.add_commands(sub, _db_argument)
    network_commands.add_commands(sub, _db_argument)

    bench = sub.add_parser("bench", help="measure the figures in docs/performance.md")
    bench.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    bench.add_argument(
        "--frozen",
        type=_executable,
        metavar="EXE",
        help="frozen kapmonitor executable to time start-up of",
    )
    bench.add_argument(
        "--bare",
        type=_executable,
        metavar="EXE",
        help="frozen bare PySide6 window: the start-up floor",
    )
    bench.add_argument(
        "--before",
        type=Path,
        metavar="TREE",
        help="an earlier checkout (git worktree) to benchmark first, printed side by side; its "
        "own frozen build is TREE/dist/kapmonitor/kapmonitor",
    )
    parser.add_argument(  # the bench's start-up figures (kapmonitor.smoke.run_startup_probe)
        "--startup-probe",
        nargs="?",
        const="first",
        choices=("first", "bedside"),
        help=argparse.SUPPRESS,
    )
    return parser


def _export_parser(sub: Any) -> None:
    from kapmonitor.reports.export_registry import export_formats

    formats = export_formats()
    export = sub.add_parser(
        "export", help="export sessions as " + ", ".join(f.name.upper() for f in formats)
    )
    _db_argument(export)
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--session", metavar="ID", help="the session to export")
    which.add_argument("--all", action="store_true", help="every session in the database")
    export.add_argument(
        "--format", required=True, choices=[f.name for f in formats], help="what to write"
    )
    export.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="file to write (a folder for csv, and for --all)",
    )
    export.add_argument(
        "--progress",
        action="store_true",
        help="show a progress bar on stderr (shown anyway when stderr is a terminal)",
    )
    central_commands.add_archive_options(export, export=True)  # --server: the central archive


def _scenario_parser(sub: Any) -> None:
    scenario = sub.add_parser(
        "scenario", help="replay scripted sessions to test the protocol's rules (no database)"
    )
    actions = scenario.add_subparsers(dest="scenario_command", metavar="ACTION", required=True)
    run = actions.add_parser(
        "run",
        help="run scenario files on a fake clock in a throw-away database (docs/scenarios.md)",
    )
    run.add_argument(
        "files", nargs="+", metavar="FILE", help="scenario .json files, or folders of them"
    )
    run.add_argument("--json", action="store_true", help="one JSON object per step and line")
    run.add_argument(
        "--protocols",
        metavar="FOLDER",
        help="also load the protocol files in FOLDER (overriding by id): try a draft protocol",
    )


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["_device-writer"]:  # capture's writer process: not a user's command
        from kapmonitor.capture_writer import run_writer_child

        return run_writer_child()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo" and not (args.db or os.environ.get(DB_ENV_VAR)):
        # The demo writes a made-up patient that can never be deleted (rows are append-only):
        # never into the clinic's default database unless that file is named.
        args.command_parser.error(
            "--db is required: the demo records a simulated patient, which can never be "
            "removed from a database; name a trial file (e.g. --db /tmp/trial.sqlite) or set "
            f"{DB_ENV_VAR}"
        )
    try:
        if args.smoke_test:
            from kapmonitor.smoke import run_smoke_test

            return run_smoke_test()
        if args.startup_probe:
            from kapmonitor.smoke import run_startup_probe

            return run_startup_probe(resolve_db_path(args.db), args.startup_probe)
        if args.command == "scenario":
            from kapmonitor.scenario.command import run_command

            protocols = Path(args.protocols).expanduser() if args.protocols else None
            return run_command([Path(f) for f in args.files], args.json, protocols)
        if args.command == "simulate-monitor":
            from kapmonitor.devices.simulator import run_simulate

            return run_simulate(args)
        if args.command == "simulate-oximeter":
            from kapmonitor.devices.serial_simulator import run_simulate_oximeter

            return run_simulate_oximeter(args)
        if args.command == "bench":
            if args.before is not None:
                from kapmonitor.bench_compare import run_compare

                return run_compare(args.before, _bench_args(args))
            from kapmonitor.bench import run_bench

            return run_bench(quick=args.quick, frozen=args.frozen, bare=args.bare)
        if args.command in ("sessions", "export") and central_commands.wants_server(args):
            if args.command == "sessions":
                return central_commands.list_sessions(args)
            show = args.progress or sys.stderr.isatty()
            progress = TerminalProgress() if show else _no_progress
            return central_commands.export(args, Path(args.out), _actor(), progress)
        db_path = resolve_db_path(getattr(args, "db", None))
        db_option = _db_option(args)
        if args.command in cli_keys.KEY_COMMANDS:
            _check_db_target(db_path, db_option)
            return cli_keys.run(args, db_path, db_option)
        if args.command in (*cli_keys.OPENING, "accounts") and not _path_problem(db_path):
            cli_keys.unlock_for(args.command, db_path, db_option)
        if args.command in network_commands.COMMANDS:
            return network_commands.run(args, db_path, db_option)
        if args.command == "demo":
            from kapmonitor.demo import run_demo

            _check_db_target(db_path, db_option)
            try:
                return run_demo(db_path, pace=args.pace, seed=args.seed)
            except StoreError as exc:
                raise _on_db(db_option, exc) from exc
        if args.command == "capture":
            from kapmonitor.capture import run_capture

            _require_db(db_path, db_option)  # never a new empty file for a device feed
            return run_capture(args, db_path)
        if args.command == "sessions":
            return _list_sessions(db_path, db_option)
        if args.command == "export":
            show = args.progress or sys.stderr.isatty()
            return _export(db_path, db_option, args.format, args.session, Path(args.out), show)
        if args.command == "import":
            return _import(db_path, db_option, Path(args.file))
        if args.command == "accounts":
            return _account_sheet(db_path, db_option)
        if args.command == "verify":
            return _verify(db_path, db_option, args.anchors, args.server)
        if args.command == "backup":
            out = Path(args.out).expanduser() if args.out else None
            return _backup(db_path, db_option, out, args.keep)
        if args.command == "restore":
            chosen = Path(args.backup).expanduser() if args.backup else None
            return _restore(db_path, db_option, chosen)
        if not display_available():
            print(f"kapmonitor: {NO_DISPLAY}", file=sys.stderr)
            return EXIT_NO_DISPLAY
        from kapmonitor.ui.app import run_gui

        return run_gui(db_path)
    except (StoreError, ValidationError) as exc:
        print(f"kapmonitor: {exc}", file=sys.stderr)
        return EXIT_STORE
    except KeyboardInterrupt:
        return 130


NO_DISPLAY = (
    "the KAP Monitor window needs a desktop session, and there is none here (neither DISPLAY "
    "nor WAYLAND_DISPLAY is set). Start it from the desktop of the clinic laptop. Without a "
    "desktop, run it under a virtual screen (xvfb-run -a kapmonitor), or use the commands that "
    "need no screen (kapmonitor --help lists them)."
)


def display_available() -> bool:
    """Whether Qt can open a window here; asked before Qt, whose own failure is an abort that
    blames a library. Only X11/Wayland systems need the variables; an explicit
    ``QT_QPA_PLATFORM`` (offscreen, vnc, ...) is taken as the user's choice."""
    if sys.platform in ("win32", "darwin") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _db_option(args: argparse.Namespace) -> str:
    """How the database was chosen, for error messages: the option the user should fix."""
    if getattr(args, "db", None):
        return "--db"
    if os.environ.get(DB_ENV_VAR):
        return DB_ENV_VAR
    return "--db (default database)"


def _path_problem(path: Path) -> str:
    """'' when ``path`` could be a file; otherwise why not (a folder, or a file in its path)."""
    if path.is_dir():
        return f"{path} is a folder, not a database file"
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"{path} is not a usable path: {parent} is a file, not a folder"
            break
    return ""


def _check_db_target(db_path: Path, option: str) -> None:
    """A database path that can be opened or created; checked before anything is written."""
    problem = _path_problem(db_path)
    if problem:
        raise OptionError(option, problem + ".", "unopenable")


def _require_db(db_path: Path, option: str) -> None:
    """An existing database file (the command reads it, so it must not be created)."""
    _check_db_target(db_path, option)
    if not db_path.exists():
        raise OptionError(option, f"There is no database at {db_path}.", "missing")


def _on_db(option: str, exc: StoreError) -> StoreError:
    """Blame the database option, unless the message already names an option."""
    return exc if isinstance(exc, OptionError) else OptionError(option, exc)


def _list_sessions(db_path: Path, db_option: str) -> int:
    from kapmonitor.domain.clock import from_iso

    _require_db(db_path, db_option)
    try:
        store = _reading_store(db_path)
        try:
            rows = store.list_sessions()
            rems = _rems_statuses(store, rows)
        finally:
            store.close()
    except StoreError as exc:
        raise _on_db(db_option, exc) from exc
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
        if row["id"] in rems:
            print(f"{'':<34}{rems[row['id']]}")
    return EXIT_OK


def _rems_statuses(store: Any, rows: list[dict[str, Any]]) -> dict[str, str]:
    """The REMS form's due date and submission for each esketamine REMS session, e.g.
    "REMS due 2026-12-04 / submitted by Dr A on 2026-12-01" (overdue said in capitals)."""
    from kapmonitor.store import rems_store

    today = datetime.now(UTC).astimezone().date()
    return {
        row["id"]: rems_store.status(store.db, row["id"], today).text()
        for row in rows
        if rems_store.is_rems_session(store.db, row["id"])
    }


# --- export, import, verify ---------------------------------------------------------------------


def _account_sheet(db_path: Path, db_option: str) -> int:
    """``kapmonitor accounts --sheet``: names, roles and key fingerprints (no password, no
    key, nothing clinical), for the administrator to print and keep off the laptop."""
    from kapmonitor.domain.clock import SystemClock
    from kapmonitor.store.accounts import Accounts
    from kapmonitor.store.session_store import SessionStore

    _require_db(db_path, db_option)
    try:
        store = SessionStore.open(db_path)
        try:
            print(Accounts(store.db, SystemClock()).sheet(), end="")
        finally:
            store.close()
    except StoreError as exc:
        raise _on_db(db_option, exc) from exc
    return EXIT_OK


def _actor() -> str:
    """Who ran the command, for the audit trail: the operating-system account."""
    try:
        return f"{getpass.getuser()} (command line)"
    except (KeyError, OSError):
        return "command line"


def _no_progress(done: int, total: int) -> None:
    """No progress bar (stderr is not a terminal and --progress was not given)."""


def _sessions(n: int) -> str:
    return f"{n} session" if n == 1 else f"{n} sessions"


class TerminalProgress:
    """A one-line progress bar on stderr for ``export``: counts only, nothing clinical."""

    WIDTH = 30

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        percent = 100 * done // max(total, 1)
        if percent == self.shown and done != total:
            return  # redraw only when the figure changes: 10,000 sessions, 100 redraws
        self.shown = percent
        filled = self.WIDTH * done // max(total, 1)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.stream.write(f"\rexporting [{bar}] {done}/{total} sessions {percent:3d}%")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _export(
    db_path: Path,
    db_option: str,
    fmt: str,
    session: str | None,
    out: Path,
    show_progress: bool = False,
) -> int:
    from kapmonitor.reports.export_registry import run_export
    from kapmonitor.reports.session_export import no_progress, session_ids
    from kapmonitor.store.database import connect, connect_readonly
    from kapmonitor.store.read_only_media import on_read_only_media

    _require_db(db_path, db_option)
    read_only = on_read_only_media(db_path)  # exported, but no audit entry can be written
    try:
        db = connect_readonly(db_path) if read_only else connect(db_path)
    except StoreError as exc:
        raise _on_db(db_option, exc) from exc
    try:
        ids = [session] if session else session_ids(db)
        if not ids:
            raise OptionError(db_option, f"There are no sessions in {db_path} to export.")
        if session and not db.execute("SELECT 1 FROM sessions WHERE id = ?", [session]).fetchone():
            raise OptionError("--session", f"There is no session {session} in {db_path}.")
        progress = TerminalProgress() if show_progress else no_progress
        try:
            target = run_export(
                db,
                fmt,
                ids,
                out,
                _actor(),
                datetime.now(UTC),
                folder=session is None,
                progress=progress,
                audited=not read_only,
            )
        except StoreError as exc:
            raise (OptionError("--out", exc) if exc.kind == "unwritable" else exc) from exc
        except OSError as exc:
            raise OptionError(
                "--out", f"Cannot write {out} ({exc.strerror or exc}); nothing was written."
            ) from exc
    finally:
        db.close()
    if read_only:
        print(f"kapmonitor: note: {READ_ONLY_EXPORT.format(db=db_path)}", file=sys.stderr)
    print(f"exported {_sessions(len(ids))} to {target}")
    return EXIT_OK


READ_ONLY_EXPORT = (
    "{db} is on read-only media, so this export could not be recorded in its audit trail; "
    "record it by hand if the clinic's policy asks for it."
)


def _reading_store(db_path: Path) -> Any:
    """A store to read from: opened read-only when the database is on read-only media (it
    cannot be migrated or written there, but it can be listed), as usual otherwise."""
    from kapmonitor.store.database import connect_readonly
    from kapmonitor.store.read_only_media import on_read_only_media
    from kapmonitor.store.session_store import SessionStore

    if on_read_only_media(db_path):
        return SessionStore(connect_readonly(db_path), db_path)
    return SessionStore.open(db_path)


def _import(db_path: Path, db_option: str, source: Path) -> int:
    from kapmonitor.reports.session_import import import_documents, read_documents
    from kapmonitor.store.database import connect
    from kapmonitor.store.session_transfer import record_import

    _check_db_target(db_path, db_option)
    try:
        documents = read_documents(source)
    except StoreError as exc:
        raise OptionError("FILE", exc) from exc
    if not db_path.exists():
        try:
            _check_before_creating(documents)
        except StoreError as exc:
            raise OptionError("FILE", exc) from exc
    try:
        db = connect(db_path)
    except StoreError as exc:
        raise _on_db(db_option, exc) from exc
    try:
        report = import_documents(db, documents, _actor())
        counts = {status: report.count(status) for status in ("imported", "present", "refused")}
        record_import(db, _actor(), datetime.now(UTC), {"source": source.name, **counts})
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


def _verify(
    db_path: Path, db_option: str, anchors: Sequence[str] = (), server: str | None = None
) -> int:
    from kapmonitor.reports.session_export import is_sqlite_file
    from kapmonitor.store import encryption

    _require_db(db_path, db_option)
    if not is_sqlite_file(db_path) and not encryption.unlocked_keys(db_path):
        raise OptionError(
            db_option,
            f"{db_path} is not a KAP Monitor database (it is not an SQLite file).",
            "corrupt",
        )
    from kapmonitor.store.verify import verify_database

    try:
        result = verify_database(db_path, anchors=anchors)
    except StoreError as exc:
        raise _on_db(db_option, exc) from exc
    if server:  # the central archive as a witness (docs/network.md)
        from kapmonitor.network.verify_server import check_against_server

        problems, notes = check_against_server(db_path, server)
        result.problems.extend(problems)
        result.notes.extend(notes)
    for line in result.lines:
        print(line)
    return EXIT_OK if result.ok else EXIT_FAILED


def _backup(db_path: Path, db_option: str, folder: Path | None, keep: int) -> int:
    from kapmonitor.store.backup import default_folder, take_backup

    _require_db(db_path, db_option)
    out_option = "--out" if folder else f"--out (default {default_folder(db_path)})"
    try:
        taken = take_backup(db_path, folder, keep)
    except StoreError as exc:
        raise (
            OptionError(out_option, exc) if exc.kind == "backup_folder" else _on_db(db_option, exc)
        ) from exc
    print(f"backed up to {taken.path} (checked: integrity and audit chain)")
    return EXIT_OK


def _restore(db_path: Path, db_option: str, chosen: Path | None) -> int:
    """Put a backup in place, holding the window's own lock meanwhile: a window open on the
    file (or one started during the restore) would go on writing into the replaced file."""
    from kapmonitor.store.backup import newest_good_backup, restore

    _check_db_target(db_path, db_option)
    if chosen is None:
        good = newest_good_backup(db_path)
        if good is None:
            raise OptionError(
                "BACKUP", f"No good backup of {db_path} was found; name one.", "backup"
            )
        chosen = good.path
    elif not chosen.is_file():
        what = "is a folder, not a backup file" if chosen.is_dir() else "does not exist"
        raise OptionError("BACKUP", f"{chosen} {what}; nothing was changed.", "backup")
    from kapmonitor.ui.app import instance_lock, lock_holder

    lock, refusal = instance_lock(db_path)
    if lock is None:
        pid, host = lock_holder(db_path)
        if pid:
            refusal = (
                f"the KAP Monitor window (process {pid} on {host}) has {db_path} open; close "
                "it first, then restore again. Nothing was changed."
            )
        raise OptionError(db_option, refusal, "in_use")
    try:
        kept = restore(chosen, db_path)
    except StoreError as exc:
        if exc.kind == "backup":
            raise OptionError("BACKUP", exc) from exc
        raise _on_db(db_option, exc) from exc
    finally:
        lock.unlock()
    where = f"; the file it replaced is kept as {kept}" if kept else ""
    print(f"restored {chosen} to {db_path}{where}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
