"""The command line's side of encryption: unlocking before a command opens the database, and the
``init``, ``rekey`` and ``recover`` commands.

An encrypted database is unlocked with an account's password, taken from the environment
variables ``KAPMONITOR_USER`` and ``KAPMONITOR_PASSWORD`` (for scripts) or asked at the terminal
(the password with ``getpass``: never echoed, never on the command line, where other users of
the laptop could read it in the process list). The unlocked key stays in this process only.

A recovery key is shown once: written to the file named by ``--recovery-out`` (mode 0600), else
to the terminal itself (``/dev/tty``), else to stderr; never to stdout, which scripts keep.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kapmonitor.store.errors import StoreError

USER_ENV = "KAPMONITOR_USER"
PASSWORD_ENV = "KAPMONITOR_PASSWORD"
RECOVERY_ENV = "KAPMONITOR_RECOVERY_KEY"
# Commands that open the database (and so must unlock an encrypted one first).
OPENING = (
    "demo",
    "sessions",
    "export",
    "import",
    "accounts",
    "verify",
    "backup",
    "restore",
    "capture",
    "sync",
)
KEY_COMMANDS = ("init", "rekey", "recover")


def add_commands(sub: Any, db_argument: Callable[[argparse.ArgumentParser], None]) -> None:
    """``init``, ``rekey`` and ``recover`` on the command parser."""
    init = sub.add_parser(
        "init", help="create a new encrypted database and its administrator (first run)"
    )
    db_argument(init)
    init.add_argument("--admin", required=True, metavar="NAME", help="administrator user name")
    init.add_argument(
        "--display-name", required=True, metavar="TEXT", help="printed name, e.g. 'Dr J Smith'"
    )
    _recovery_out(init)
    rekey = sub.add_parser(
        "rekey",
        help="give the database a new key; only the accounts named keep their key slot",
    )
    db_argument(rekey)
    rekey.add_argument(
        "--keep",
        action="append",
        default=[],
        metavar="NAME",
        help="another account whose slot is re-made (its password is asked); every account "
        "not kept is revoked until the administrator resets its password",
    )
    _recovery_out(rekey)
    recover = sub.add_parser(
        "recover", help="reset the administrator's forgotten password with the recovery key"
    )
    db_argument(recover)
    recover.add_argument("--admin", required=True, metavar="NAME", help="administrator user name")


def _recovery_out(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--recovery-out",
        type=Path,
        metavar="FILE",
        help="write the new recovery key to FILE (mode 0600) instead of the terminal",
    )


# --- credentials -----------------------------------------------------------------------------


def _ask(prompt: str) -> str:
    """A line from the person at the terminal (the prompt on stderr: stdout is for results)."""
    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = sys.stdin.readline()
    if not line:
        raise KeyboardInterrupt
    return line.rstrip("\n")


def interactive() -> bool:
    return sys.stdin.isatty()


def credentials(db_path: Path, option: str) -> tuple[str, str]:
    """An account's user name and password: the environment, else asked at the terminal."""
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    if user and password is not None:
        return user, password
    if not interactive():
        raise StoreError(
            f"{option}: {db_path} is encrypted: set {USER_ENV} and {PASSWORD_ENV} to an "
            "account's user name and password, or run the command at a terminal to be asked.",
            "encrypted",
        )
    user = user or _ask("KAP Monitor user name: ")
    return user, getpass.getpass(f"Password for {user}: ")


def new_password(prompt: str) -> str:
    """A new password: ``KAPMONITOR_PASSWORD``, else typed twice at the terminal."""
    given = os.environ.get(PASSWORD_ENV)
    if given is not None:
        return given
    if not interactive():
        raise StoreError(
            f"{PASSWORD_ENV}: not set, and there is no terminal to ask for the password.",
            "missing",
        )
    first = getpass.getpass(f"{prompt}: ")
    if getpass.getpass(f"{prompt} again: ") != first:
        raise StoreError("The two passwords differ; nothing was changed.", "refused")
    return first


def show_recovery_key(key: str, out: Path | None) -> str:
    """Hand the recovery key over once; returns where it went (for the summary line)."""
    text = (
        "\nRecovery key (shown once; write it down and keep it away from the laptop):\n\n"
        f"    {key}\n\n"
    )
    if out is not None:
        from kapmonitor.store.key_slots import write_private

        write_private(Path(out).expanduser(), f"{key}\n".encode())
        return f"the recovery key is in {out}"
    try:
        with open("/dev/tty", "w", encoding="utf-8") as tty:
            tty.write(text)
        return "the recovery key was shown on the terminal"
    except OSError:
        sys.stderr.write(text)
        return "the recovery key was written to stderr (no terminal)"


# --- unlocking before a command ------------------------------------------------------------------


def unlock_for(command: str, db_path: Path, option: str) -> None:
    """Unlock ``db_path`` before ``command`` opens it (the key is remembered in this process).

    - encrypted: an account's password (environment or terminal); refused in plain words;
    - plain (from before encryption): encrypted first when the environment names its
      administrator; otherwise opened plain as before;
    - none yet: ``demo`` and ``import`` create a plain trial file unless credentials are set
      (then ``kapmonitor init`` must create it), and a key file with no database is refused.
    """
    from kapmonitor.domain.clock import SystemClock
    from kapmonitor.store import encrypted_store
    from kapmonitor.store.key_slots import KeySlots, slots_path

    if command not in OPENING:
        return
    state = encrypted_store.state(db_path)
    if state == "new":
        if slots_path(db_path).exists():
            if command == "restore":  # the database is gone; its backups need its key
                user, password = credentials(db_path, option)
                from kapmonitor.store import encryption

                encryption.remember(db_path, KeySlots.load(db_path).unlock(user, password))
                return
            try:
                encrypted_store.begin_new(db_path)
            except StoreError as exc:
                raise StoreError(f"{option}: {exc}", exc.kind) from exc
        if os.environ.get(USER_ENV) and command in ("demo", "import"):
            raise StoreError(
                f"{option}: there is no database at {db_path} yet: create it encrypted first "
                "with `kapmonitor init --admin NAME --display-name TEXT`.",
                "missing",
            )
        return
    if state == "encrypted" and not slots_path(db_path).exists():
        return  # not SQLite and no key file: damaged or not ours, as opening it will say
    if state == "plain":
        user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
        if not (user and password is not None):
            if sys.stderr.isatty():
                print(
                    f"kapmonitor: note: {db_path} is not encrypted; it is encrypted when its "
                    "administrator signs in (in the window, or here with "
                    f"{USER_ENV}/{PASSWORD_ENV}).",
                    file=sys.stderr,
                )
            return
    else:
        user, password = credentials(db_path, option)
    opened = encrypted_store.unlock(db_path, user, password, SystemClock())
    if opened.recovery_key:
        where = show_recovery_key(opened.recovery_key, None)
        print(f"kapmonitor: {db_path} is now encrypted; {where}.", file=sys.stderr)


# --- init, rekey, recover ------------------------------------------------------------------------


def run(args: argparse.Namespace, db_path: Path, option: str) -> int:
    from kapmonitor.domain.clock import SystemClock
    from kapmonitor.store import encrypted_store

    if args.command == "init":
        if encrypted_store.state(db_path) != "new":
            raise StoreError(
                f"{option}: there is already a database at {db_path}; nothing was changed.",
                "exists",
            )
        password = new_password(f"Password for {args.admin}")
        opened = encrypted_store.create(
            db_path, SystemClock(), args.admin, args.display_name, password
        )
        assert opened.recovery_key is not None
        where = show_recovery_key(opened.recovery_key, args.recovery_out)
        print(
            f"created the encrypted database {db_path} (administrator {opened.username}); {where}"
        )
        return 0
    if args.command == "rekey":
        return _rekey(args, db_path, option)
    return _recover(args, db_path, option)


def _rekey(args: argparse.Namespace, db_path: Path, option: str) -> int:
    from kapmonitor.domain.clock import SystemClock
    from kapmonitor.store import encrypted_store
    from kapmonitor.store.accounts import Accounts
    from kapmonitor.store.database import connect

    if encrypted_store.state(db_path) != "encrypted":
        raise StoreError(f"{option}: {db_path} is not an encrypted database.", "plain")
    user, password = credentials(db_path, option)
    clock = SystemClock()
    opened = encrypted_store.unlock(db_path, user, password, clock)
    db = connect(db_path, opened.keys)
    try:
        account = Accounts(db, clock).find(user)
    finally:
        db.close()
    if account is None or account.role != "administrator":
        raise StoreError(
            "Only an administrator can rekey the database; nothing changed.", "refused"
        )
    passwords = {account.username: password}
    for name in args.keep:
        if not interactive():
            raise StoreError("--keep: each kept account's password is asked at a terminal.")
        passwords[name] = getpass.getpass(f"Password for {name}: ")
    from kapmonitor.ui.app import instance_lock  # the window must not have the file open

    lock, refusal = instance_lock(db_path)
    if lock is None:
        raise StoreError(f"{option}: {refusal}", "in_use")
    try:
        done = encrypted_store.rekey(db_path, opened.keys, passwords)
    finally:
        lock.unlock()
    where = show_recovery_key(done.recovery_key, args.recovery_out)
    revoked = ", ".join(done.revoked) or "none"
    print(
        f"rekeyed {db_path}: slots kept for {', '.join(done.kept)}; revoked: {revoked} "
        f"(the administrator resets their passwords); {done.backups} backups rekeyed; {where}"
    )
    for left in done.backups_left:
        print(f"kapmonitor: {left} was not rekeyed (the old key does not open it)", file=sys.stderr)
    return 0


def _recover(args: argparse.Namespace, db_path: Path, option: str) -> int:
    from kapmonitor.domain.clock import SystemClock
    from kapmonitor.store import encrypted_store

    if encrypted_store.state(db_path) != "encrypted":
        raise StoreError(f"{option}: {db_path} is not an encrypted database.", "plain")
    key = os.environ.get(RECOVERY_ENV)
    if key is None:
        if not interactive():
            raise StoreError(f"{RECOVERY_ENV}: not set, and there is no terminal to ask.")
        key = getpass.getpass("Recovery key: ")
    password = new_password(f"New password for {args.admin}")
    opened = encrypted_store.reset_with_recovery(db_path, key, args.admin, password, SystemClock())
    print(f"the password of {opened.username} was reset; sign in with the new one")
    return 0
