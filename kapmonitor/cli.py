"""The one entry point: the window, the smoke test, the demo session and listings.

Every failure a user can cause (a locked or damaged file, a bad path) ends in one plain
sentence on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from kapmonitor import APP_NAME, __version__
from kapmonitor.domain.validation import ValidationError
from kapmonitor.paths import DB_ENV_VAR, resolve_db_path
from kapmonitor.store.database import StoreError

EXIT_OK = 0
EXIT_STORE = 2
EXIT_USAGE = 64


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.smoke_test:
            from kapmonitor.smoke import run_smoke_test

            return run_smoke_test()
        db_path = resolve_db_path(getattr(args, "db", None))
        if args.command == "demo":
            from kapmonitor.demo import run_demo

            return run_demo(db_path, pace=args.pace, seed=args.seed)
        if args.command == "sessions":
            return _list_sessions(db_path)
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


if __name__ == "__main__":
    sys.exit(main())
