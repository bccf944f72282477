"""After the disk reports an error while an entry commits: was it stored? Say so truthfully.

Why: when ``fsync`` fails (EIO) during a commit, SQLite reports "disk I/O error", and the app
said the entry was not saved. But the transaction's pages may already be in the WAL: after the
file is reopened the entry is there, and the clinician who saved it again has made a duplicate
(clinical rows are append-only, so the duplicate stays). A commit error is therefore not taken
at its word:

1. the rows the transaction wrote (their ids came back with ``RETURNING``) are looked for on a
   **fresh read-only connection** to the file, by id *and* by the stamp that makes them unique
   (session, ``recorded_at`` to the millisecond, ``recorded_by``). Found: the entry **was saved**,
   and the save returns normally, as if no error had been raised (the error is kept on the store
   as ``last_commit_error`` for a warning). Not found: "not saved", as before;
2. the failed entry is remembered (per store, in memory) until the next save to that session: if
   that save is **the same entry** (equal field by field, the retry a clinician makes) and the
   first attempt's rows have appeared since, the first attempt is returned and nothing is written
   again. So a retry cannot make a duplicate while the app runs.

What this does not cover: an entry whose pages reached the WAL but became visible only when the
file was reopened after the app was killed (SQLite's WAL recovery) is reported "not saved" and is
not remembered across the restart; the timeline shows it after the restart, and a clinician who
re-enters it then makes a second entry (which a correction can void). Only the entry's own
transaction is checked (a session start too: found, the new session's id is returned).
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

#: The SQLite result codes after which a commit may have reached the file anyway.
_UNCERTAIN = (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL)
_STAMP = ("session_id", "recorded_at", "recorded_by")


@dataclass
class _Pending:
    session_id: str
    entry: Any
    changes: Changes


_PENDING: weakref.WeakKeyDictionary[Any, _Pending] = weakref.WeakKeyDictionary()


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
    from kapmonitor.store.database import StoreError, connect_readonly

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
        done = Changes(session_id, action, tuple(written))  # type: ignore[arg-type]
        _PENDING[store] = _Pending(session_id, entry, done)
        raise
    _PENDING.pop(store, None)


def earlier_save(store: Any, session_id: str, entry: Any) -> Changes | None:
    """The earlier attempt at this very entry, if it was reported not saved but is stored now.

    Any other save to the session forgets the earlier attempt."""
    pending = _PENDING.pop(store, None)
    if pending is None or pending.session_id != session_id or pending.entry != entry:
        return None
    return pending.changes if stored(store.path, pending.changes.rows) else None


__all__ = ["checked_commit", "earlier_save", "stored", "uncertain"]
