"""Opening the one SQLite file safely, and saying plainly why when it cannot be opened.

WAL with ``synchronous=FULL`` means a committed entry survives a power cut; foreign keys are on
for every connection. Every low-level failure is turned into a :class:`StoreError` whose message
names the file and what to do, so no traceback ever reaches a clinician.

With :class:`~kapmonitor.store.key_slots.DatabaseKeys` the file is SQLCipher-encrypted (opened or
created so: see :mod:`kapmonitor.store.encryption`); without, a plain file opens as before (unit
tests, the benchmark's floor), unless an account already unlocked that file in this process.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlite_utils import Database

from kapmonitor.store import audit, encryption, read_only_media, schema_check
from kapmonitor.store.errors import StoreError
from kapmonitor.store.file_modes import prepare_database_file
from kapmonitor.store.key_slots import DatabaseKeys, attach
from kapmonitor.store.schema import MIGRATION_SET, SCHEMA_VERSION, migrations

SQLITE_HEADER = encryption.SQLITE_HEADER
BUSY_TIMEOUT_MS = 5000

P = ParamSpec("P")
R = TypeVar("R")


def explain(exc: BaseException, path: Path | str) -> StoreError:
    """Translate an sqlite3 or OS error into what a clinician should know and do."""
    text = str(exc).lower()
    where = f"the database file {path}"
    if isinstance(exc, StoreError):
        return exc
    if "locked" in text or "busy" in text:
        return StoreError(
            f"{where} is in use by another program (perhaps KAP Monitor is open twice). "
            "Close the other copy and try again; nothing was saved.",
            "locked",
        )
    if "readonly" in text or "read-only" in text or isinstance(exc, PermissionError):
        return StoreError(
            f"{where} cannot be written (it or its folder is read-only). "
            "Ask clinic IT to restore write access, or start KAP Monitor with --db on a "
            "writable file; nothing was saved.",
            "readonly",
        )
    if "disk is full" in text or "no space" in text or "disk i/o" in text:
        return StoreError(
            f"The disk holding {where} is full or failing. Free some space, then save again; "
            "the entry is still in the form.",
            "full",
        )
    if "not a database" in text or "malformed" in text or "file is encrypted" in text:
        return StoreError(
            f"{where} is damaged or is not a KAP Monitor database. Do not delete it: keep it "
            "for clinic IT, restore a backup, or start with --db on another file.",
            "corrupt",
        )
    if "unable to open" in text or isinstance(exc, (FileNotFoundError, IsADirectoryError)):
        return StoreError(
            f"{where} cannot be opened (its folder is missing or not accessible). "
            "Check the path given with --db or KAPMONITOR_DB.",
            "unopenable",
        )
    if "signed and locked" in text:
        return StoreError(
            "This session is signed and locked: nothing can be added or corrected. Record an "
            "addendum instead; nothing was saved.",
            "signed",
        )
    if "append-only" in text or "supersede" in text or "constraint" in text or "sign" in text:
        return StoreError(f"The database refused the change: {exc}", "refused")
    return StoreError(f"{where}: {exc}")


def plain_errors(path_attr: str = "path") -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate store methods so sqlite3/OS errors leave as :class:`StoreError`."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except (sqlite3.Error, OSError) as exc:
                path = getattr(args[0], path_attr, "?") if args else "?"
                raise explain(exc, path) from exc

        return wrapper

    return decorate


def _check_header(path: Path, keys: list[DatabaseKeys]) -> None:
    if not path.exists():
        return
    if path.is_dir():
        raise StoreError(f"{path} is a folder, not a database file.", "unopenable")
    head = encryption.file_header(path)
    if keys and head == SQLITE_HEADER:
        raise StoreError(
            f"{path} is not encrypted yet: KAP Monitor encrypts it when its administrator next "
            "signs in. Nothing was changed.",
            "plain",
        )
    if not keys and head and head != SQLITE_HEADER:
        kind = "encrypted" if encryption.slots_path(path).exists() else "corrupt"
        raise StoreError(encryption.needs_unlock_message(path), kind)


def _check_writable(path: Path) -> None:
    """WAL needs to write the file and create ``-wal``/``-shm`` beside it: check both up front."""
    folder = path.parent
    if (path.exists() and not os.access(path, os.W_OK)) or (
        folder.exists() and not os.access(folder, os.W_OK)
    ):
        raise StoreError(
            f"the database file {path} cannot be written (it or its folder is read-only). "
            "Ask clinic IT to restore write access, or start KAP Monitor with --db on a "
            "writable file; nothing was changed.",
            "readonly",
        )


def connect(path: Path, keys: DatabaseKeys | None = None) -> Database:
    """Open (creating if needed) and migrate the database at ``path``.

    With encryption ``keys`` the file is opened (or created) encrypted, the keys are attached to
    the connection (:func:`~kapmonitor.store.key_slots.keys_of`) and remembered for this
    process's other readers; a wrong key is a plain :class:`StoreError`.
    """
    path = Path(path)
    candidates = encryption.choose_keys(path, keys)
    guessed = path if keys is None and encryption.unlocked_keys(path) is None else None
    keys = None
    try:
        _check_header(path, candidates)
        _check_writable(path)
        prepare_database_file(path)  # folder 0700 if made here, file 0600 before any write
        conn: Any
        if candidates:
            conn = encryption.open_with_any(
                path, candidates, timeout=BUSY_TIMEOUT_MS / 1000, guessed_for=guessed
            )
            keys = conn.keys
        else:
            conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000)
    except (sqlite3.Error, OSError) as exc:
        raise explain(exc, path) from exc
    try:
        db = Database(conn, execute_plugins=False)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{path} was written by a newer KAP Monitor (schema {version}; this version "
                f"knows {SCHEMA_VERSION}). Install the newer version to open it; the file is "
                "unchanged.",
                "newer",
            )
        db.enable_wal()
        db.execute("PRAGMA synchronous = FULL")
        db.execute("PRAGMA foreign_keys = ON")
        _check_migrations(db, path)
        if keys is not None:
            attach(db, keys, path)
            encryption.remember(path, keys)
        migrations.apply(db)
        audit.install(db)
        schema_check.refuse_if_changed(db, path)  # a planted trigger: never write
        return db
    except BaseException as exc:
        conn.close()
        if isinstance(exc, (sqlite3.Error, OSError)):
            raise explain(exc, path) from exc
        raise


def connect_readonly(path: Path | str, keys: DatabaseKeys | None = None) -> Database:
    """A read-only connection to the database at ``path``: the one way a reader opens its own.

    Exports, the archive worker and imports from another laptop's file read through this. The
    ``mode=ro`` URI and ``query_only`` mean it can never migrate or write, so it runs beside the
    window's own connection (WAL lets readers and the writer proceed together); the busy timeout
    means an export started while a session is being recorded waits for the writer's commit
    instead of failing with "database is locked". An encrypted file opens with ``keys`` or
    with the keys this process unlocked it with.
    """
    target = Path(path)
    if not target.exists():
        raise StoreError(f"There is no database at {target}.", "missing")
    candidates = encryption.choose_keys(target, keys)
    guessed = target if keys is None and encryption.unlocked_keys(target) is None else None
    keys = None
    source = target
    try:
        _check_header(target, candidates)
        if read_only_media.needs_copy(target):  # a WAL to replay where no -shm can be made
            target = read_only_media.private_copy(target)
        conn: Any
        if candidates:
            conn = encryption.open_with_any(
                target,
                candidates,
                readonly=True,
                timeout=BUSY_TIMEOUT_MS / 1000,
                guessed_for=guessed,
            )
            keys = conn.keys
        else:  # immutable on read-only media (read_only_media.py), else mode=ro
            uri = read_only_media.readonly_uri(target)
            conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    except (sqlite3.Error, OSError) as exc:
        raise explain(exc, target) from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA query_only = ON")
    except sqlite3.Error as exc:
        conn.close()
        raise explain(exc, target) from exc
    db = Database(conn, execute_plugins=False)
    if target != source:
        read_only_media.remove_with(db, target)
    if keys is not None:
        attach(db, keys, source)
    return db


def _check_migrations(db: Database, path: Path) -> None:
    known = {m.name for m in migrations._migrations}
    unknown = [m.name for m in migrations.applied(db) if m.name not in known]
    if unknown:
        raise StoreError(
            f"{path} has schema changes this version does not know ({', '.join(unknown)}). "
            "Install the newer KAP Monitor to open it; the file is unchanged.",
            "newer",
        )


__all__ = [
    "MIGRATION_SET",
    "StoreError",
    "connect",
    "connect_readonly",
    "explain",
    "plain_errors",
]
