"""Creating, unlocking, migrating and rekeying the encrypted database: the flows the window and
the command line share.

- First run: a random database key, the administrator's account and key slot, and a recovery
  slot whose key is returned once to be shown (never stored in clear).
- Unlock: an account's password unwraps the key from its slot (:class:`KeySlots`).
- A plain database from before encryption is encrypted after its administrator signs in
  (their password checked against the plain file's own users table): ``sqlcipher_export`` into
  a new file, checked (every table's row count, integrity, ``verify``), then swapped in; the
  plain file is kept beside it until the encrypted one has opened and verified in its place, then
  removed. Plain backups in the default backup folder are encrypted the same way.
- Rekey: a new key (``PRAGMA rekey``) for the database and its backups; slots are re-made only
  for the accounts whose passwords are given, the rest are revoked.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlite_utils import Database

from kapmonitor.domain.clock import Clock
from kapmonitor.domain.usernames import normalize_username
from kapmonitor.store import audit, encryption, key_slots
from kapmonitor.store.accounts import Accounts, check_secret
from kapmonitor.store.backup import default_folder, in_use_refusal, list_backups
from kapmonitor.store.database import StoreError, connect, connect_readonly, explain
from kapmonitor.store.db_file import state
from kapmonitor.store.file_modes import create_private
from kapmonitor.store.key_slots import (
    DatabaseKeys,
    KeySlots,
    Slot,
    new_keys,
    slots_path,
)
from kapmonitor.store.verify import verify_database

PLAIN_KEPT = ".plain-before-encryption"  # the plain file, kept until the encrypted one is checked
ENCRYPTING = ".encrypting"  # the encrypted copy being made
REKEY_PENDING = ".rekey"  # the new key file, written before PRAGMA rekey


@dataclass(frozen=True)
class Opened:
    """An unlocked database: its keys, and the recovery key when this call made a new key."""

    keys: DatabaseKeys
    username: str
    recovery_key: str | None = None
    migrated: bool = False


def _discard(path: Path) -> None:
    for extra in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            Path(f"{path}{extra}").unlink()


# --- first run ------------------------------------------------------------------------------------


def begin_new(db_path: Path) -> DatabaseKeys:
    """The key for a database about to be created; refused when a key file is already there
    (the clinic's database has gone missing: making a new one would overwrite its key file)."""
    if slots_path(db_path).exists():
        raise StoreError(
            f"There is no database at {db_path}, but its key file {slots_path(db_path).name} is "
            "there: the clinic's database may have been moved or lost. Put it back (or restore a "
            "backup); to start afresh, move the key file away first. Nothing was changed.",
            "keys",
        )
    return new_keys()


def abandon_new(db_path: Path) -> None:
    """First run cancelled: the new file (schema only, no account) and its key go; nothing
    else could ever open it."""
    encryption.forget(db_path)
    _discard(Path(db_path))


def seal_first_administrator(
    db_path: Path, keys: DatabaseKeys, username: str, password: str
) -> str:
    """After the administrator account exists: its key slot and the recovery slot. Returns the
    recovery key, to be shown once."""
    slots = KeySlots.load(db_path)
    if not slots.has(username):  # the accounts code adds it when the account is created
        slots.add(keys, username, password)
    return slots.set_recovery(keys)


def create(db_path: Path, clock: Clock, username: str, display_name: str, password: str) -> Opened:
    """First run from the command line: a new encrypted database with its administrator.

    A refused account (a taken or malformed name, a weak password) leaves no file behind.
    """
    path = Path(db_path)
    if state(path) != "new":
        raise StoreError(f"There is already a database at {path}; nothing was changed.", "exists")
    keys = begin_new(path)
    db = connect(path, keys)
    try:
        user = Accounts(db, clock).create_first_administrator(username, display_name, password)
    except BaseException:
        db.close()
        encryption.forget(path)
        _discard(path)
        raise
    db.close()
    recovery = seal_first_administrator(path, keys, user.username, password)
    return Opened(keys, user.username, recovery)


# --- unlocking -----------------------------------------------------------------------------------


def unlock(db_path: Path, username: str, password: str, clock: Clock) -> Opened:
    """Unlock with an account's password; a plain database is encrypted first (administrator)."""
    path = Path(db_path)
    current = state(path)
    if current == "new":
        raise StoreError(f"There is no database at {path} yet.", "missing")
    if current == "plain":
        return migrate(path, username, password, clock)
    keys = _unlock_slots(path, username, password)
    finish_pending(path, keys)
    encryption.remember(path, keys)
    return Opened(keys, normalize_username(username))


def record_unlock(db: Database, username: str, at: datetime, failed_before: int) -> None:
    """Audit who unlocked the database, and how many wrong passwords were typed first (they
    happened while the file was locked, so nothing could record them then)."""
    with db.atomic():
        audit.event(db, username, "database_unlocked", at, {"failed_before": int(failed_before)})


def unlock_with_recovery(db_path: Path, recovery_key: str) -> DatabaseKeys:
    keys = KeySlots.load(db_path).unlock_with_recovery(recovery_key)
    encryption.remember(db_path, keys)
    return keys


def reset_with_recovery(
    db_path: Path, recovery_key: str, username: str, new_password: str, clock: Clock
) -> Opened:
    """The administrator forgot their password: the recovery key unlocks, and a new password
    is set (audited as the administrator's own change) with a new key slot."""
    keys = unlock_with_recovery(db_path, recovery_key)
    db = connect(db_path, keys)
    try:
        accounts = Accounts(db, clock)
        user = accounts.find(username)
        if user is None or user.role != "administrator":
            raise StoreError(
                f"{username} is not an active administrator of this database; the recovery key "
                "resets an administrator's password only.",
                "wrong_password",
            )
        accounts.set_secret(user, user.username, new_password)
    finally:
        db.close()
    KeySlots.load(db_path).rewrap(keys, user.username, new_password)
    return Opened(keys, user.username)


# --- plain -> encrypted --------------------------------------------------------------------------


def _plain_administrator(path: Path, username: str, password: str) -> str:
    """The stored user name of the administrator whose password this is, read from the plain
    file's own users table; a plain StoreError otherwise."""
    db = connect_readonly(path)
    try:
        rows = db.execute(
            "SELECT username, role, password_hash FROM users WHERE active = 1"
        ).fetchall()
    except sqlite3.Error as exc:
        raise explain(exc, path) from exc
    finally:
        db.close()
    wanted = normalize_username(username)
    for stored, role, digest in rows:
        if normalize_username(stored) == wanted and check_secret(password, digest):
            if role != "administrator":
                raise StoreError(
                    f"{path} is not encrypted yet: the administrator must sign in once to "
                    "encrypt it before anyone else can use it. Nothing was changed.",
                    "needs_administrator",
                )
            return str(stored)
    raise StoreError("Wrong user name or password.", "wrong_password")


def table_counts(db_path: Path) -> dict[str, int]:
    """Rows in every table: the migration's copy must hold exactly as many."""
    db = connect_readonly(db_path)
    try:
        names = [
            r[0]
            for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            ).fetchall()
        ]
        return {n: db.execute(f"SELECT count(*) FROM [{n}]").fetchone()[0] for n in names}
    finally:
        db.close()


def encrypt_copy(plain: Path, target: Path, keys: DatabaseKeys) -> None:
    """Write an encrypted copy of the plain file ``plain`` into ``target`` and check it: every
    table's row count, ``PRAGMA integrity_check``, and the same ``verify`` outcome."""
    _discard(target)
    create_private(target)
    before = table_counts(plain)
    conn = encryption.plain_cipher_connection(plain)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.execute(
            f"ATTACH DATABASE ? AS encrypted KEY \"x'{keys.master.hex()}'\"", (str(target),)
        )
        conn.execute("SELECT sqlcipher_export('encrypted')")
        conn.execute(f"PRAGMA encrypted.user_version = {int(version)}")
        conn.commit()
        conn.execute("DETACH DATABASE encrypted")
    except encryption.DATABASE_ERRORS as exc:
        raise explain(encryption.translated(exc), plain) from exc
    finally:
        conn.close()
    encryption.remember(target, keys)
    try:
        check = encryption.open_encrypted(target, keys)
        try:
            check.execute("PRAGMA journal_mode = WAL")
            integrity = check.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            check.close()
        after = table_counts(target)
        problems = [] if integrity == "ok" else [f"integrity check: {integrity}"]
        problems += [
            f"{name}: {count} rows in the plain file, {after.get(name)} in the encrypted copy"
            for name, count in before.items()
            if after.get(name) != count
        ]
        if not problems and _audited(plain):
            plain_ok, copy_ok = verify_database(plain), verify_database(target)
            if (plain_ok.ok, plain_ok.entries) != (copy_ok.ok, copy_ok.entries):
                problems.append("verify gives a different result on the encrypted copy")
    finally:
        encryption.forget(target)
    if problems:
        _discard(target)
        raise StoreError(
            f"Encrypting {plain} failed its check ({'; '.join(problems[:3])}); the plain file "
            "is unchanged.",
            "migration",
        )


def _audited(path: Path) -> bool:
    return "audit" in table_counts(path)


def migrate(db_path: Path, username: str, password: str, clock: Clock) -> Opened:
    """Encrypt the plain database at ``db_path`` once its administrator has signed in.

    Order, so that a crash at any point loses nothing: the copy is made and checked; the key
    file (administrator and recovery slots) is written; the plain file is renamed aside and the
    copy put in its place; the encrypted file is opened (schema brought up to date), verified and
    only then is the plain file removed (:func:`finish_pending` repeats that last step after a
    crash). Plain backups in the default backup folder are then encrypted in place.
    """
    path = Path(db_path)
    refusal = in_use_refusal(path)
    if refusal:
        raise StoreError(refusal, "in_use")
    plain = connect(path)  # plain: brings the schema up to date, checkpoints the WAL on close
    plain.close()
    stored = _plain_administrator(path, username, password)
    keys = new_keys()
    copy = path.with_name(path.name + ENCRYPTING)
    encrypt_copy(path, copy, keys)
    slots = KeySlots(slots_path(path))
    slots.replace_all(keys, {}, None)
    recovery = seal_first_administrator(path, keys, stored, password)
    kept = path.with_name(path.name + PLAIN_KEPT)
    try:
        for extra in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{path}{extra}").unlink()
        os.replace(path, kept)
        os.replace(copy, path)
    except OSError as exc:
        raise explain(exc, path) from exc
    finish_pending(path, keys)
    _start_keyed_chain(path, keys, clock)
    encrypt_backups(path, keys)
    encryption.remember(path, keys)
    return Opened(keys, normalize_username(stored), recovery, migrated=True)


def _start_keyed_chain(path: Path, keys: DatabaseKeys, clock: Clock) -> None:
    """Append the new key's marker now, with its one-time digest of every earlier entry: left
    to the first write after the migration, that digest (a pass over the whole trail) ran inside
    the first bedside save."""
    db = connect(path, keys)
    try:
        with db.atomic():
            audit.ensure_keyed(db, clock.now())
    finally:
        db.close()


def finish_pending(db_path: Path, keys: DatabaseKeys) -> None:
    """Remove the plain file kept by a migration once the encrypted one opens and verifies in
    its place; if it does not, put the plain file back and say so."""
    path = Path(db_path)
    kept = path.with_name(path.name + PLAIN_KEPT)
    if not kept.exists():
        return
    try:
        connect(path, keys).close()  # the schema brought up to date, the audit installed
        good = verify_database(path).ok
        if not good and _audited(kept):
            good = not verify_database(kept).ok  # the plain file failed the same way: not ours
    except StoreError:
        good = False
    if not good:
        os.replace(path, path.with_name(path.name + ".encrypted-failed"))
        os.replace(kept, path)
        raise StoreError(
            f"The encrypted copy of {path} did not verify in its place; the plain file is back "
            "and nothing was lost. Tell clinic IT.",
            "migration",
        )
    kept.unlink()


def encrypt_backups(db_path: Path, keys: DatabaseKeys) -> int:
    """Encrypt every plain backup in the default backup folder in place (same name, checked
    copy swapped in), and copy the key file there; returns how many were encrypted."""
    folder = default_folder(db_path)
    done = 0
    for backup in list_backups(folder, Path(db_path).stem):
        if not encryption.is_plain(backup.path):
            continue
        copy = backup.path.with_name(backup.path.name + ENCRYPTING)
        encrypt_copy(backup.path, copy, keys)
        os.replace(copy, backup.path)
        for extra in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{backup.path}{extra}").unlink()
        done += 1
    if folder.is_dir():
        encryption.copy_key_file(Path(db_path), folder)
    return done


# --- rekey ---------------------------------------------------------------------------------------


@dataclass
class Rekeyed:
    keys: DatabaseKeys
    recovery_key: str
    kept: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    backups: int = 0
    backups_left: list[Path] = field(default_factory=list)


def rekey(db_path: Path, keys: DatabaseKeys, passwords: Mapping[str, str]) -> Rekeyed:
    """A new database key. Slots are re-made for the accounts in ``passwords`` (each password
    checked against the account's current slot) and revoked for everyone else; a new recovery
    key replaces the old. Backups in the default folder are rekeyed too (older ones that the
    old key does not open are listed, not touched)."""
    path = Path(db_path)
    refusal = in_use_refusal(path)
    if refusal:
        raise StoreError(refusal, "in_use")
    old = KeySlots.load(path)
    for username, password in passwords.items():
        if old.unlock(username, password) != keys:
            raise StoreError(f"{username}'s password does not unlock this database.", "keys")
    # A new SQLCipher key; the derivation root stays, so the audit chain keeps verifying.
    fresh = DatabaseKeys(new_keys().master, True, keys.root or keys.master)
    slots = {
        normalize_username(u): Slot.seal(
            fresh.payload(), p.encode(), normalize_username(u), key_slots.PASSWORD_COST
        )
        for u, p in passwords.items()
    }
    pending = KeySlots(Path(f"{slots_path(path)}{REKEY_PENDING}"))
    pending.replace_all(fresh, slots, None)
    recovery = pending.set_recovery(fresh)
    conn = encryption.open_encrypted(path, keys)
    try:
        conn.execute(encryption.key_pragma(fresh).replace("PRAGMA key", "PRAGMA rekey", 1))
    except sqlite3.Error as exc:
        raise explain(exc, path) from exc
    finally:
        conn.close()
    os.replace(pending.path, slots_path(path))
    encryption.forget(path)
    encryption.remember(path, fresh)
    result = Rekeyed(fresh, recovery, sorted(slots), sorted(set(old.names()) - set(slots)))
    folder = default_folder(path)
    for backup in list_backups(folder, path.stem):
        try:
            backup_conn = encryption.open_encrypted(backup.path, keys)
        except StoreError:
            result.backups_left.append(backup.path)
            continue
        try:
            backup_conn.execute(
                encryption.key_pragma(fresh).replace("PRAGMA key", "PRAGMA rekey", 1)
            )
            result.backups += 1
        finally:
            backup_conn.close()
    if folder.is_dir():
        encryption.copy_key_file(path, folder)
    return result


def _opens(path: Path, keys: DatabaseKeys) -> bool:
    try:
        encryption.open_encrypted(path, keys, readonly=True).close()
    except StoreError:
        return False
    return True


def _unlock_slots(path: Path, username: str, password: str) -> DatabaseKeys:
    """Unwrap the key from the account's slot. After a rekey interrupted between ``PRAGMA
    rekey`` and replacing the key file, the pending key file is tried too, and whichever key
    opens the database decides which key file stays."""
    pending = Path(f"{slots_path(path)}{REKEY_PENDING}")
    try:
        keys = KeySlots.load(path).unlock(username, password)
    except StoreError:
        if not pending.exists():
            raise
        keys = None
    if not pending.exists() or (keys is not None and _opens(path, keys)):
        if pending.exists():  # unlinking a missing file on read-only media is EROFS, not ENOENT
            pending.unlink()
        if keys is None:
            raise StoreError("Wrong user name or password.", "wrong_password")
        return keys
    fresh = KeySlots(pending)
    fresh.reload()
    new = fresh.unlock(username, password)
    if not _opens(path, new):
        raise StoreError(encryption.WRONG_KEY.format(path=path), "wrong_key")
    os.replace(pending, slots_path(path))
    return new


__all__ = [
    "Opened",
    "Rekeyed",
    "create",
    "migrate",
    "rekey",
    "state",
    "unlock",
    "unlock_with_recovery",
]
