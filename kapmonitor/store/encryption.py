"""Opening an SQLCipher-encrypted file so the rest of the store cannot tell it from SQLite.

An encrypted database is opened with ``sqlcipher3`` and keyed with the raw 32-byte database key
(``PRAGMA key = "x'…'"``) before anything else is read; every page, the WAL included, is then
AES-256 encrypted with an HMAC per page. Temporary tables and sorts stay in memory
(``temp_store = MEMORY``), so no plaintext spills into a temporary file.

``sqlcipher3`` raises its own exception classes, not :mod:`sqlite3`'s, and the store (and
sqlite-utils inside it) catches ``sqlite3.Error``. :class:`CipherConnection` wraps the connection
and its cursors so every error leaves as the matching :mod:`sqlite3` class with the same message:
a locked or damaged encrypted file is explained exactly as a plain one is.

Once an account has unlocked a database, this process remembers its key by path
(:func:`remember`), so the store's other readers (exports, the archive worker, verify, backups)
open the same file without asking for a password again. The key lives only in this process's
memory; nothing is written.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlcipher3
from sqlcipher3 import dbapi2 as cipher

from kapmonitor.store import read_only_media
from kapmonitor.store.db_file import (  # noqa: F401  (re-exported: the store's callers)
    SQLITE_HEADER,
    file_header,
    is_plain,
    looks_encrypted,
)
from kapmonitor.store.errors import StoreError
from kapmonitor.store.key_slots import DatabaseKeys, slots_path, write_private

# SQLCipher decrypts (and checks the HMAC of) every page it reads into its page cache, where
# plain SQLite copies from the OS cache: a larger cache keeps a long session's pages decrypted
# between saves (a 3-hour record is ~2 MB; SQLite's default cache is 2 MB per connection).
CACHE_KIB = 16 * 1024
WRONG_KEY = (
    "{path} could not be unlocked: wrong password or not this clinic's database (its key file "
    "belongs to another database). Nothing was changed."
)

_ERROR_NAMES = (
    "NotSupportedError",
    "ProgrammingError",
    "InternalError",
    "IntegrityError",
    "OperationalError",
    "DataError",
    "DatabaseError",
    "InterfaceError",
    "Error",
    "Warning",
)
_ERRORS: dict[type[BaseException], type[BaseException]] = {
    getattr(cipher, name): getattr(sqlite3, name) for name in _ERROR_NAMES
}
DATABASE_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, cipher.Error)


def translated(exc: BaseException) -> BaseException:
    """The :mod:`sqlite3` twin of an ``sqlcipher3`` error (same message and error code)."""
    for kind in type(exc).__mro__:
        twin = _ERRORS.get(kind)
        if twin is not None:
            new = twin(*exc.args)
            for attribute in ("sqlite_errorcode", "sqlite_errorname"):
                if hasattr(exc, attribute):
                    setattr(new, attribute, getattr(exc, attribute))
            return new
    return exc


class CipherCursor:
    """An ``sqlcipher3`` cursor whose errors are :mod:`sqlite3`'s."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Any) -> None:
        object.__setattr__(self, "_raw", raw)

    def execute(self, sql: str, parameters: Any = ()) -> CipherCursor:
        try:
            self._raw.execute(sql, parameters)
        except cipher.Error as exc:
            raise translated(exc) from exc
        return self

    def executemany(self, sql: str, seq: Any) -> CipherCursor:
        try:
            self._raw.executemany(sql, seq)
        except cipher.Error as exc:
            raise translated(exc) from exc
        return self

    def executescript(self, script: str) -> CipherCursor:
        try:
            self._raw.executescript(script)
        except cipher.Error as exc:
            raise translated(exc) from exc
        return self

    def fetchone(self) -> Any:
        try:
            return self._raw.fetchone()
        except cipher.Error as exc:
            raise translated(exc) from exc

    def fetchmany(self, size: int | None = None) -> list[Any]:
        try:
            return self._raw.fetchmany() if size is None else self._raw.fetchmany(size)
        except cipher.Error as exc:
            raise translated(exc) from exc

    def fetchall(self) -> list[Any]:
        try:
            return self._raw.fetchall()
        except cipher.Error as exc:
            raise translated(exc) from exc

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            return next(self._raw)
        except cipher.Error as exc:
            raise translated(exc) from exc

    def __getattr__(self, name: str) -> Any:  # description, lastrowid, rowcount, close, …
        return getattr(self._raw, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._raw, name, value)


class CipherConnection:
    """An ``sqlcipher3`` connection that sqlite-utils and the store use as an sqlite3 one.

    ``keys`` are the keys it was opened with: a backup copy is keyed with the same ones.
    """

    def __init__(self, raw: Any, keys: DatabaseKeys) -> None:
        object.__setattr__(self, "raw", raw)
        object.__setattr__(self, "keys", keys)

    def _call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self.raw, method)(*args)
        except cipher.Error as exc:
            raise translated(exc) from exc

    def execute(self, sql: str, parameters: Any = ()) -> CipherCursor:
        return CipherCursor(self._call("execute", sql, parameters))

    def executemany(self, sql: str, seq: Any) -> CipherCursor:
        return CipherCursor(self._call("executemany", sql, seq))

    def executescript(self, script: str) -> CipherCursor:
        return CipherCursor(self._call("executescript", script))

    def cursor(self) -> CipherCursor:
        return CipherCursor(self._call("cursor"))

    def commit(self) -> None:
        self._call("commit")

    def rollback(self) -> None:
        self._call("rollback")

    def close(self) -> None:
        self._call("close")

    def backup(self, target: Any, **options: Any) -> None:
        """SQLite's online backup into ``target``, which must be keyed with the same key."""
        raw_target = target.raw if isinstance(target, CipherConnection) else target
        try:
            self.raw.backup(raw_target, **options)
        except cipher.Error as exc:
            raise translated(exc) from exc

    def __enter__(self) -> CipherConnection:
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        try:
            return bool(self.raw.__exit__(kind, exc, tb))
        except cipher.Error as error:
            raise translated(error) from error

    def __getattr__(self, name: str) -> Any:  # in_transaction, total_changes, create_function…
        return getattr(self.raw, name)

    def __setattr__(self, name: str, value: Any) -> None:  # isolation_level, row_factory
        setattr(self.raw, name, value)


# --- opening -------------------------------------------------------------------------------------


def key_pragma(keys: DatabaseKeys) -> str:
    """``PRAGMA key`` with the raw key: no key derivation inside SQLCipher (ours is the slot's)."""
    return f"PRAGMA key = \"x'{keys.master.hex()}'\""


def open_encrypted(
    path: Path, keys: DatabaseKeys, *, readonly: bool = False, timeout: float = 5.0
) -> CipherConnection:
    """Open (or create, unless ``readonly``) the encrypted file at ``path`` with ``keys``.

    The key is checked at once by reading the schema: a wrong key is a plain :class:`StoreError`
    (kind ``"wrong_key"``) before any caller touches the file.
    """
    target = read_only_media.readonly_uri(path) if readonly else str(path)  # immutable on ro media
    raw = sqlcipher3.connect(target, uri=readonly, timeout=timeout)
    try:
        raw.execute("PRAGMA cipher_log_level = NONE")  # a wrong key is ours to explain
        raw.execute(key_pragma(keys))
        raw.execute("PRAGMA temp_store = MEMORY")
        raw.execute(f"PRAGMA cache_size = -{CACHE_KIB}")  # pages stay decrypted in memory
        raw.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except cipher.DatabaseError as exc:
        raw.close()
        if "not a database" in str(exc).lower():
            raise StoreError(WRONG_KEY.format(path=path), "wrong_key") from exc
        raise translated(exc) from exc
    return CipherConnection(raw, keys)


def open_with_any(
    path: Path,
    candidates: list[DatabaseKeys],
    *,
    readonly: bool = False,
    timeout: float = 5.0,
    guessed_for: Path | None = None,
) -> CipherConnection:
    """:func:`open_encrypted` with the first of ``candidates`` that unlocks ``path``.

    ``guessed_for`` (the file as the user named it) says the candidates were only this process's
    unlocked keys tried on a file that is not SQLite (a backup or copy, hopefully): when none
    opens it, the refusal is the one for any such file, not "wrong password" (nobody typed one).
    """
    refused: StoreError | None = None
    for keys in candidates:
        try:
            return open_encrypted(path, keys, readonly=readonly, timeout=timeout)
        except StoreError as exc:
            if exc.kind != "wrong_key":
                raise
            refused = exc
    if guessed_for is not None or refused is None:
        where = guessed_for or path
        kind = "encrypted" if slots_path(where).exists() else "corrupt"
        raise StoreError(needs_unlock_message(where), kind) from refused
    raise refused


def copy_target(source: Any, path: Path) -> Any:
    """A connection to ``path`` for a backup of ``source``: keyed like it, or plain like it."""
    if isinstance(source, CipherConnection):
        return open_encrypted(path, source.keys)
    return sqlite3.connect(str(path))


def plain_cipher_connection(path: Path) -> Any:
    """An unkeyed ``sqlcipher3`` connection to a plain file: the side an export starts from."""
    raw = sqlcipher3.connect(str(path))
    raw.execute("PRAGMA cipher_log_level = NONE")
    return raw


# --- the keys this process has unlocked ----------------------------------------------------------

_unlocked: dict[str, DatabaseKeys] = {}
_guard = threading.Lock()


def _where(path: Path | str) -> str:
    return str(Path(path).resolve())


def remember(path: Path | str, keys: DatabaseKeys) -> None:
    """After an unlock: this process's other readers of ``path`` open it with ``keys``."""
    if keys.encrypted:
        with _guard:
            _unlocked[_where(path)] = keys


def forget(path: Path | str) -> None:
    with _guard:
        _unlocked.pop(_where(path), None)


def unlocked_keys(path: Path | str) -> DatabaseKeys | None:
    """The keys an account unlocked ``path`` with in this process, if any."""
    with _guard:
        return _unlocked.get(_where(path))


def forget_all() -> None:
    """Forget every unlocked key (tests; a process that locks itself)."""
    with _guard:
        _unlocked.clear()


def choose_keys(path: Path, given: DatabaseKeys | None) -> list[DatabaseKeys]:
    """The keys to try on ``path``: those given (none for ``PLAIN_KEYS``); else the ones this
    process unlocked ``path`` with; else, for a file that looks encrypted (a backup of the
    unlocked database, a copy of it), every key unlocked here. Empty: open it plain."""
    if given is not None:
        return [given] if given.encrypted else []
    exact = unlocked_keys(path)
    if exact is not None:
        return [exact]
    if looks_encrypted(path):
        with _guard:
            return list(dict.fromkeys(_unlocked.values()))
    return []


def needs_unlock_message(path: Path) -> str:
    """What to say when an encrypted file is opened without its key."""
    if slots_path(path).exists():
        return (
            f"{path} is encrypted: sign in with an account's password to open it (on the command "
            "line, at the prompt or with KAPMONITOR_USER and KAPMONITOR_PASSWORD)."
        )
    return (
        f"{path} is not a KAP Monitor database, or it is encrypted and its key file "
        f"{slots_path(path).name} is missing. Do not delete it: keep it for clinic IT, restore "
        "a backup, or start with --db on another file."
    )


def copy_key_file(db_path: Path, folder: Path) -> None:
    """Keep a copy of ``db_path``'s key file in the backup ``folder`` (nothing for a plain
    database): the backups are useless without it, and it holds only wrapped keys."""
    source = slots_path(db_path)
    try:
        content = source.read_bytes()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"Cannot read the key file {source} ({exc.strerror}).", "keys") from exc
    write_private(Path(folder) / source.name, content)
