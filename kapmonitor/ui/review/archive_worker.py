"""Archive queries and exports off the GUI thread, each on a connection of its own.

Like Anki's background operations: the window asks for a job by kind ("list", "dashboard",
"export"…), gets a request number back at once, and the result arrives later as a Qt signal
carrying that number. A newer request of the same kind makes older ones stale: their results are
dropped, so a fast typist filtering the list never sees an old answer replace a new one.

A job receives its own read-only connection (:func:`kapmonitor.store.archive.open_read_only`),
opened and closed on the pool thread; the window's connection is never touched from here.
Failures come back as one plain sentence, never a traceback.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from sqlite_utils import Database

from kapmonitor.domain.validation import ValidationError
from kapmonitor.store.archive import open_read_only
from kapmonitor.store.database import StoreError, explain

Job = Callable[[Database | None], Any]


def plain_message(exc: BaseException, path: Path) -> str:
    """What a person should read about a failed job."""
    if isinstance(exc, ValidationError):
        return "; ".join(e.message for e in exc.errors)
    if isinstance(exc, StoreError):
        return str(exc)
    if isinstance(exc, (sqlite3.Error, OSError)):
        return str(explain(exc, path))
    return f"Something unexpected went wrong ({type(exc).__name__}: {exc}). Nothing was changed."


class _Relay(QObject):
    """Carries results from pool threads to the GUI thread (queued, as it lives there)."""

    done = Signal(int, str, bool, object)  # request, kind, ok, result or message


class _Task(QRunnable):
    def __init__(self, relay: _Relay, path: Path, number: int, kind: str, job: Job, db: bool):
        super().__init__()
        self.relay = relay  # a Python reference keeps the relay alive while the task runs
        self.path = path
        self.number = number
        self.kind = kind
        self.job = job
        self.needs_db = db

    def run(self) -> None:
        database: Database | None = None
        try:
            if self.needs_db:
                database = open_read_only(self.path)
            result = self.job(database)
        except BaseException as exc:  # every failure becomes a sentence
            self.relay.done.emit(self.number, self.kind, False, plain_message(exc, self.path))
            return
        finally:
            if database is not None:
                database.close()
        self.relay.done.emit(self.number, self.kind, True, result)


class ArchiveWorker(QObject):
    """Runs jobs on a small thread pool; results come back as :attr:`finished` / :attr:`failed`.

    ``finished(request, kind, result)`` and ``failed(request, kind, message)`` are emitted on
    the GUI thread, only for the latest request of each kind (unless the job was submitted
    with ``keep_all=True``, as exports are: each one is reported).
    """

    finished = Signal(int, str, object)
    failed = Signal(int, str, str)
    idle = Signal()

    def __init__(self, db_path: Path | str, parent: QObject | None = None, threads: int = 2):
        super().__init__(parent)
        self.db_path = Path(db_path)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._relay = _Relay()
        self._relay.done.connect(self._deliver)
        self._next = 0
        self._latest: dict[str, int] = {}
        self._keep: set[int] = set()
        self._pending: set[int] = set()
        self._closed = False

    @property
    def pending(self) -> int:
        """Jobs submitted whose result has not been delivered (or dropped) yet."""
        return len(self._pending)

    def submit(self, kind: str, job: Job, *, keep_all: bool = False, needs_db: bool = True) -> int:
        """Run ``job(db)`` on a pool thread; ``db`` is a fresh read-only connection (None when
        ``needs_db`` is False, e.g. for a writer that opens the file itself)."""
        if self._closed:
            raise RuntimeError("the archive worker has been shut down")
        self._next += 1
        number = self._next
        self._latest[kind] = number
        if keep_all:
            self._keep.add(number)
        self._pending.add(number)
        self.pool.start(_Task(self._relay, self.db_path, number, kind, job, needs_db))
        return number

    def latest(self, kind: str) -> int:
        return self._latest.get(kind, 0)

    def _deliver(self, number: int, kind: str, ok: bool, payload: object) -> None:
        self._pending.discard(number)
        keep = number in self._keep
        self._keep.discard(number)
        if not self._closed and (keep or self._latest.get(kind) == number):
            if ok:
                self.finished.emit(number, kind, payload)
            else:
                self.failed.emit(number, kind, str(payload))
        if not self._pending:
            self.idle.emit()

    def wait(self, msecs: int = -1) -> bool:
        """Block until the running jobs end (their results are delivered by the event loop)."""
        return bool(self.pool.waitForDone(msecs))

    def shutdown(self) -> None:
        """Stop taking jobs and wait for the running ones, so none outlives its window."""
        self._closed = True
        self.pool.clear()
        self.pool.waitForDone()


__all__ = ["ArchiveWorker", "plain_message"]


class WorkerResults:
    """One view's request on the worker: a newer request supersedes an older one, whose result
    is dropped; a failure is said in the view's banner. Mixed into the dashboard and the
    patient series (the classes set ``job_kind`` and ``failure_text`` and define ``_accept``).
    """

    job_kind = ""
    failure_text = "could not be read"
    request = 0
    shown_request = 0
    banner: Any

    def _accept(self, result: object) -> None:  # pragma: no cover - defined by each view
        raise NotImplementedError

    def _done(self, number: int, kind: str, result: object) -> None:
        if kind != self.job_kind or number != self.request:
            return
        self.banner.hide()
        self.shown_request = number
        self._accept(result)

    def _failed(self, number: int, kind: str, message: str) -> None:
        if kind != self.job_kind or number != self.request:
            return
        self.shown_request = number
        self.banner.setText(f"{self.failure_text}: {message}")
        self.banner.show()
        self._on_failure()

    def _on_failure(self) -> None:
        """Anything else the view clears when its request failed."""

    def release_worker(self, worker: ArchiveWorker, own: bool) -> None:
        """On close: stop listening, and stop the worker if this view made it."""
        try:
            worker.finished.disconnect(self._done)
            worker.failed.disconnect(self._failed)
        except (RuntimeError, TypeError):
            pass
        if own:
            worker.shutdown()
