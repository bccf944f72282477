"""The clinic network's commands: ``server init|add-laptop|add-reviewer``, ``sync [status]``,
``live`` and ``review --server`` (the live view's and the clinic archive's windows).

Why a module of its own, and why light: the command line builds its whole parser at every start
(the window's included); only argparse is imported here at module level, and psycopg only when a
network command runs. A password is never printed unless asked (``--show-password``, to stdout
only) or written to a 0600 file (``--password-out``); messages name the server without it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

COMMANDS = ("server", "sync", "live", "review")
SERVER_ENV = "KAPMONITOR_SERVER"  # kapmonitor.network.connection.SERVER_ENV
SERVER_HELP = (
    f"the central archive, postgresql://ROLE@HOST:PORT/DB?sslmode=verify-full (default: "
    f"${SERVER_ENV}, else the one this laptop last synced with); the password comes from "
    "~/.pgpass or PGPASSWORD, never the command line"
)


def add_commands(sub: Any, db_argument: Callable[[argparse.ArgumentParser], None]) -> None:
    server = sub.add_parser(
        "server", help="set up the central PostgreSQL archive (docs/network.md)"
    )
    actions = server.add_subparsers(dest="server_command", metavar="ACTION", required=True)
    init = actions.add_parser("init", help="create or upgrade the archive's schema and roles")
    init.add_argument("--server", metavar="URL", help="an administrator's connection URL")
    add = actions.add_parser("add-laptop", help="create one laptop's database role")
    add.add_argument("name", metavar="NAME", help="the laptop's name, e.g. room-2")
    add.add_argument("--server", metavar="URL", help="an administrator's connection URL")
    add.add_argument(
        "--password-out", type=Path, metavar="FILE", help="write the role's password here (0600)"
    )
    add.add_argument(
        "--show-password", action="store_true", help="print the role's password on stdout"
    )
    rev = actions.add_parser(
        "add-reviewer", help="register a supervisor who reviews and signs at the centre"
    )
    rev.add_argument("name", metavar="NAME", help="the reviewer's short name, e.g. dr-chen")
    rev.add_argument("--printed-name", required=True, help='as signatures print it, "Dr M. Chen"')
    rev.add_argument(
        "--role", default="supervisor", choices=("supervisor", "administrator"), help="role title"
    )
    rev.add_argument("--server", metavar="URL", help="an administrator's connection URL")
    rev.add_argument(
        "--password-out",
        type=Path,
        metavar="FILE",
        help="write the password here (0600)",
    )
    rev.add_argument(
        "--show-password", action="store_true", help="print the reviewer's password on stdout"
    )
    sync = sub.add_parser("sync", help="send this laptop's new rows to the central archive")
    db_argument(sync)
    sync.add_argument("action", nargs="?", choices=("status",), help="status: what is pending")
    sync.add_argument("--server", metavar="URL", help=SERVER_HELP)
    live = sub.add_parser(
        "live", help="the live view: every laptop's sessions in progress (docs/network.md)"
    )
    live.add_argument(
        "--server",
        metavar="URL",
        help="a reviewer role's address, postgresql://ROLE@HOST:PORT/DB?sslmode=verify-full "
        "(default: $KAPMONITOR_LIVE_SERVER, else $KAPMONITOR_SERVER); password from ~/.pgpass",
    )
    review = sub.add_parser(
        "review", help="the clinic archive's review window: every laptop's sessions, sign-off"
    )
    review.add_argument(
        "--server",
        nargs="?",
        const="",
        default=None,
        required=True,
        metavar="URL",
        help="a reviewer role's address, postgresql://ROLE@HOST:PORT/DB?sslmode=verify-full "
        f"(no value: ${SERVER_ENV}); the password from ~/.pgpass or PGPASSWORD",
    )


def run(args: argparse.Namespace, db_path: Path, option: str) -> int:
    """Run a network command; plain errors leave as StoreError (the caller prints them)."""
    if args.command == "server":
        return _server(args)
    if args.command == "live":
        return _live(args)
    if args.command == "review":
        return _review(args)
    from kapmonitor.store.errors import StoreError

    if not db_path.exists():
        raise StoreError(f"{option}: there is no database at {db_path}.", "missing")
    if args.action == "status":
        from kapmonitor.network.status import sync_status

        for line in sync_status(db_path).lines():
            print(line)
        return 0
    from kapmonitor.network.sync import sync_once

    result = sync_once(db_path, _server_url(args, db_path))
    print(
        f"Synced as laptop {result.laptop_id}: {result.sent_total} row(s) sent in "
        f"{result.batches} batch(es), {result.stored} new on the server; chain head "
        f"#{result.head_entry} recorded."
    )
    return 0


def _server_url(args: argparse.Namespace, db_path: Path | None = None) -> str:
    from kapmonitor.store.errors import StoreError

    url = getattr(args, "server", None) or os.environ.get(SERVER_ENV)
    if not url and db_path is not None:
        from kapmonitor.network import state

        url = state.load(db_path).server
    if not url:
        raise StoreError(
            f"no server given: use --server postgresql://… or set {SERVER_ENV}.", "no-server"
        )
    return str(url)


def _live(args: argparse.Namespace) -> int:
    """The live view in a window of its own: the server role is the sign-in (no laptop file)."""
    from kapmonitor.settings import Settings
    from kapmonitor.store.errors import StoreError
    from kapmonitor.ui.app import application
    from kapmonitor.ui.review.live_view import LiveViewWindow, live_server_url

    url = live_server_url(args.server)
    if not url:
        raise StoreError(
            "no server given: use --server postgresql://REVIEWER@HOST/DB or set "
            "KAPMONITOR_LIVE_SERVER.",
            "no-server",
        )
    app = application()
    window = LiveViewWindow(url, Settings())
    window.show()
    return int(app.exec())


def _review(args: argparse.Namespace) -> int:
    """The clinic archive's review window (docs/network.md, "Review at the centre"): the
    reviewer's server role is the sign-in, no laptop file is opened."""
    from kapmonitor.settings import Settings
    from kapmonitor.store.errors import StoreError
    from kapmonitor.ui.app import application
    from kapmonitor.ui.review.central_review_window import CentralReviewWindow, server_url

    url = server_url(args.server)
    if not url:
        raise StoreError(
            f"no server given: use --server postgresql://REVIEWER@HOST/DB or set {SERVER_ENV}.",
            "no-server",
        )
    app = application()
    window = CentralReviewWindow(url, Settings())
    window.show()
    return int(app.exec())


def _server(args: argparse.Namespace) -> int:
    from kapmonitor.network import admin

    url = _server_url(args)
    if args.server_command == "init":
        applied = admin.init_server(url)
        done = f"version(s) {', '.join(map(str, applied))} applied" if applied else "up to date"
        print(f"Central archive schema {done}.")
        return 0
    from kapmonitor.store.errors import StoreError

    if not (args.show_password or args.password_out):
        raise StoreError(
            "say where the new role's password goes: --password-out FILE (written 0600) or "
            "--show-password (printed on stdout); nothing was created.",
            "no-password-target",
        )
    if args.server_command == "add-reviewer":
        return _add_reviewer(args, url)
    added = admin.add_laptop(url, args.name)
    if args.password_out:
        from kapmonitor.store.key_slots import write_private

        write_private(args.password_out, (added.password + "\n").encode())
    print(f"Laptop {added.laptop_id} added: role {added.role}.")
    print(f"On that laptop: kapmonitor sync --server '{added.url}'")
    print("with the password in ~/.pgpass (mode 0600) as HOST:PORT:DATABASE:ROLE:PASSWORD.")
    if args.show_password:
        print(f"Password: {added.password}")
    else:
        print(f"Password written to {args.password_out} (readable by you only).")
    sys.stdout.flush()
    return 0


def _add_reviewer(args: argparse.Namespace, url: str) -> int:
    """``server add-reviewer``: the role, the key pair made here, the password handed over once
    (to a 0600 file or stdout, never a log); the key's fingerprint printed for the record."""
    from kapmonitor.network import admin
    from kapmonitor.store.signatures import printable

    added = admin.add_reviewer(url, args.name, args.printed_name, args.role)
    if args.password_out:
        from kapmonitor.store.key_slots import write_private

        write_private(args.password_out, (added.password + "\n").encode())
    print(f"Reviewer {added.printed_name} ({added.role_title}) added: role {added.role}.")
    print(
        f"Signing key fingerprint: {printable(added.fingerprint)} (keep it with the account sheet)."
    )
    print(f"At the centre: --server '{added.url}'")
    print("with the password in ~/.pgpass (mode 0600); the same password opens the signing key.")
    if args.show_password:
        print(f"Password: {added.password}")
    else:
        print(f"Password written to {args.password_out} (readable by you only).")
    sys.stdout.flush()
    return 0
