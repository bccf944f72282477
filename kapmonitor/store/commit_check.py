"""After the disk reports an error while an entry commits: was it stored? Say so truthfully.

Why: when ``fsync`` fails (EIO) during a commit, SQLite reports "disk I/O error", and the app
said the entry was not saved. But SQLite has already written the transaction's frames, with a
valid commit marker, into the WAL; only the WAL index was not updated. Nothing shows it while the
app runs, yet when the app is killed and the file opened again, WAL recovery brings the entry
back, and the clinician who saved it again has made a duplicate (clinical rows are append-only,
so the duplicate stays). A commit error is therefore not taken at its word:

1. the rows the transaction wrote (their ids came back with ``RETURNING``) are looked for on a
   **fresh read-only connection** to the file, by id *and* by the stamp that makes them unique
   (session, ``recorded_at`` to the millisecond, ``recorded_by``). Found: the entry **was saved**,
   and the save returns normally (the error is kept on the store as ``last_commit_error``);
2. not found: the orphaned commit is **voided** (:func:`void_unfinished_commit`: one harmless
   transaction overwrites its first WAL frame, so recovery can never bring it back), and then
   "not saved" is true, after a restart as well. If even that cannot be written, the message
   says plainly that whether the entry was stored cannot be told, and to look before saving
   again;
3. the failed entry is remembered (per store, in memory) until the next save to that session: if
   that save is **the same entry** and the first attempt's rows are in the file after all, the
   first attempt is returned and nothing is written again.

Tested with a real EIO from ``fsync`` (tests/store/test_fsync_eio.py, a preloaded shim on
Linux) and with an injected commit error (tests/store/test_fsync_errors.py). Not covered: a disk
that also loses pages it had accepted (then the entry is lost, which "not saved" says), and
platforms other than Linux were not tried. Only the entry's own transaction is checked (a session
start too: found, the new session's id is returned).
"""

from __future__ import annotations

import contextlib
import sqlite3
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kapmonitor.domain.changes import Changes
from kapmonitor.domain.session_rows import StoredRow
from kapmonitor.store.errors import StoreError

#: The SQLite result codes after which a commit may have reached the file anyway.
_UNCERTAIN = (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL)
_STAMP = ("session_id", "recorded_at", "recorded_by")


@dataclass
class _Pending:
    session_id: str
    entry: Any
    changes: Changes


_PENDING: weakref.WeakKeyDictionary[Any, _Pending] = weakref.WeakKeyDictionary()
UNCERTAIN = (
    "The disk holding the database file {path} is failing, and KAP Monitor cannot tell whether "
    "this entry was stored. The entry is still in the form: before saving it again, restart KAP "
    "Monitor (on a working disk) and look for it in the timeline."
)


def uncertain(exc: BaseException) -> bool:
    """An error after which the commit may have landed: disk I/O failing, or the disk full."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _UNCERTAIN
    text = str(exc).lower()
    return "disk i/o" in text or "disk is full" in text


def stored(path: Path | str, rows: Sequence[tuple[str, Mapping[str, Any]]]) -> bool:
    """Whether every row is in the file, read on a connection of its own (not the one whose
    commit failed, which may hold its own view). False when the file cannot be read."""
    from kapmonitor.store.database import connect_readonly

    if not rows:
        return False
    try:
        db = connect_readonly(path)
    except StoreError:
        return False
    try:
        for table, row in rows:
            columns = ["id", *(c for c in _STAMP if c in row)]
            found = db.execute(
                f"SELECT {', '.join(f'[{c}]' for c in columns)} FROM [{table}] WHERE id = ?",
                [row["id"]],
            ).fetchone()
            if found is None or list(found) != [row[c] for c in columns]:
                return False
        return True
    except sqlite3.Error:
        return False
    finally:
        db.close()


@contextlib.contextmanager
def checked_commit(
    store: Any,
    session_id: str,
    entry: Any,
    action: str,
    written: Sequence[tuple[str, StoredRow]] | Sequence[tuple[str, Mapping[str, Any]]],
) -> Iterator[None]:
    """Around a store's write transaction: a commit error that may not be true is checked.

    If the rows turn out to be stored, the error is swallowed (the block counts as saved);
    otherwise it propagates, and the entry is remembered so that retrying it cannot duplicate."""
    store.last_commit_error = None
    try:
        yield
    except sqlite3.OperationalError as exc:
        if not uncertain(exc) or not written:
            raise
        if stored(store.path, written):
            store.last_commit_error = str(exc)
            return  # it was saved: say so
        voided = void_unfinished_commit(store.db)
        if stored(store.path, written):  # it landed after all: never report it missing
            store.last_commit_error = str(exc)
            return
        done = Changes(session_id, action, tuple(written))  # type: ignore[arg-type]
        _PENDING[store] = _Pending(session_id, entry, done)
        if not voided:
            raise StoreError(UNCERTAIN.format(path=store.path), "full") from exc
        raise
    _PENDING.pop(store, None)


def void_unfinished_commit(db: Any) -> bool:
    """Make sure a commit whose fsync failed can never come back on its own.

    When fsync fails, SQLite has already written the transaction's frames, commit marker and
    checksums into the WAL, but not into the WAL index: this process and every fresh connection
    see nothing, yet a cold open after the app is killed runs WAL recovery, finds a valid commit
    and brings the entry back ("not saved", yet there after reopening; measured with a real
    failing fsync, tests/store/test_fsync_errors.py). Writing one small transaction now puts its
    frame where the orphan's first frame is (or restarts the WAL with new salts); WAL checksums
    are cumulative, so recovery stops there and the orphan is gone for good. The transaction
    rewrites ``user_version`` with its own value: it changes nothing, even if it is recovered.
    Returns False when even that could not be written (the caller then cannot promise)."""
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        db.execute("BEGIN IMMEDIATE")
        db.execute(f"PRAGMA user_version = {int(version)}")
        db.execute("COMMIT")
        return True
    except sqlite3.Error:
        with contextlib.suppress(sqlite3.Error):
            if db.conn.in_transaction:
                db.conn.rollback()
        return False


def earlier_save(store: Any, session_id: str, entry: Any) -> Changes | None:
    """The earlier attempt at this very entry, if it was reported not saved but is stored now.

    Any other save to the session forgets the earlier attempt."""
    pending = _PENDING.pop(store, None)
    if pending is None or pending.session_id != session_id or pending.entry != entry:
        return None
    return pending.changes if stored(store.path, pending.changes.rows) else None


__all__ = ["checked_commit", "earlier_save", "stored", "uncertain", "void_unfinished_commit"]
