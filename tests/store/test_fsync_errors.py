"""A commit the disk reports as failed (EIO at fsync) is checked before "not saved" is said.

How the failure is injected: SQLite's fsync is C code that Python cannot patch, and a failing
block device needs more than a test can set up, so the store's connection is wrapped so that its
``COMMIT`` raises ``disk I/O error`` (``SQLITE_IOERR_FSYNC``, what SQLite reports when fsync fails)
either after the commit reached the file or instead of it (a commit that truly failed). The check
itself reads the real file on a fresh connection. SQLite's own behaviour on a real EIO at fsync
is tested in test_fsync_eio.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import Intervention, VitalSigns
from kapmonitor.store import commit_check
from kapmonitor.store.database import StoreError
from kapmonitor.store.session_store import SessionStore
from tests.factories import T0, open_store, session_start

SQLITE_IOERR_FSYNC = 1034


def _io_error() -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError("disk I/O error")
    exc.sqlite_errorcode = SQLITE_IOERR_FSYNC  # type: ignore[attr-defined]
    return exc


class FailingCommit:
    """The store's connection, whose next COMMIT reports a disk I/O error.

    ``landed``: the commit reached the file before the error (True) or did not (False)."""

    def __init__(self, conn: sqlite3.Connection, landed: bool) -> None:
        self._conn = conn
        self.landed = landed
        self.armed = True

    def execute(self, sql: str, *args: Any) -> Any:
        if self.armed and sql.strip().rstrip(";").upper() == "COMMIT":
            self.armed = False
            if self.landed:
                self._conn.execute(sql, *args)
            raise _io_error()
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@pytest.fixture
def recording(tmp_path: Path) -> tuple[SessionStore, str, Path]:
    path = tmp_path / "c.sqlite"
    clock = FakeClock(T0)
    store = open_store(path, clock)
    session_id = store.start_session(session_start(clock), "Dr A")
    return store, session_id, path


def _vitals(store: SessionStore) -> VitalSigns:
    return VitalSigns(observed_at=store.clock.now(), hr=88, sbp=131, dbp=84, spo2=96, rr=15)


def _count(path: Path, table: str, session_id: str) -> int:
    raw = sqlite3.connect(path)
    try:
        return raw.execute(
            f"SELECT count(*) FROM [{table}] WHERE session_id = ?", [session_id]
        ).fetchone()[0]
    finally:
        raw.close()


def _fail_next_commit(store: SessionStore, landed: bool) -> FailingCommit:
    wrapper = FailingCommit(store.db.conn, landed)
    store.db.conn = wrapper  # type: ignore[assignment]
    return wrapper


def _restore(store: SessionStore, wrapper: FailingCommit) -> None:
    store.db.conn = wrapper._conn


def test_a_commit_that_landed_despite_the_error_is_reported_saved(recording) -> None:
    store, session_id, path = recording
    wrapper = _fail_next_commit(store, landed=True)
    changes = store.add(session_id, _vitals(store), "Dr A")  # no "not saved"
    _restore(store, wrapper)
    assert not wrapper.armed, "the injected failure never happened"
    assert changes.primary is not None and changes.primary[0] == "vitals"
    assert store.last_commit_error and "disk I/O" in store.last_commit_error
    store.close()
    assert _count(path, "vitals", session_id) == 1  # reopened: there, once


def test_a_commit_that_did_not_land_is_reported_not_saved_and_a_retry_saves_once(
    recording,
) -> None:
    store, session_id, path = recording
    entry = _vitals(store)
    wrapper = _fail_next_commit(store, landed=False)
    with pytest.raises(StoreError) as info:
        store.add(session_id, entry, "Dr A")
    _restore(store, wrapper)
    assert info.value.kind == "full" and "full or failing" in str(info.value)
    assert _count(path, "vitals", session_id) == 0  # truly not saved
    store.add(session_id, entry, "Dr A")  # the clinician saves again
    store.close()
    assert _count(path, "vitals", session_id) == 1


def test_a_retry_of_an_entry_that_appeared_later_makes_no_duplicate(
    recording, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit landed, but the check could not see it at the time (the disk failing): the
    clinician is told "not saved" and saves again; the retry finds the first attempt stored and
    returns it instead of writing a second copy."""
    store, session_id, path = recording
    entry = _vitals(store)
    real_stored = commit_check.stored
    calls: list[int] = []

    def blind_at_first(where: Any, rows: Any) -> bool:
        calls.append(1)  # both checks of the failing save see nothing
        return False if len(calls) <= 2 else real_stored(where, rows)

    monkeypatch.setattr(commit_check, "stored", blind_at_first)
    wrapper = _fail_next_commit(store, landed=True)
    with pytest.raises(StoreError):
        store.add(session_id, entry, "Dr A")
    _restore(store, wrapper)
    first = store.add(session_id, entry, "Dr A")  # the retry
    store.close()
    assert len(calls) == 3
    assert _count(path, "vitals", session_id) == 1, "the retry made a duplicate"
    assert first.primary is not None and first.primary[1]["hr"] == 88


def test_a_different_entry_after_the_error_is_saved_normally(recording, monkeypatch) -> None:
    store, session_id, path = recording
    monkeypatch.setattr(commit_check, "stored", lambda *_a: False)
    wrapper = _fail_next_commit(store, landed=True)
    with pytest.raises(StoreError):
        store.add(session_id, _vitals(store), "Dr A")
    _restore(store, wrapper)
    note = Intervention("note", store.clock.now(), detail="patient calm")
    store.add(session_id, note, "Dr A")  # not the same entry: written
    store.close()
    assert _count(path, "interventions", session_id) == 1


def test_a_correction_that_landed_is_reported_saved(recording) -> None:
    store, session_id, path = recording
    original = store.add(session_id, _vitals(store), "Dr A").primary
    assert original is not None
    fixed = VitalSigns(observed_at=store.clock.now(), hr=86, sbp=131, dbp=84, spo2=96, rr=15)
    wrapper = _fail_next_commit(store, landed=True)
    store.correct(session_id, original[1]["id"], fixed, "typo", "Dr A")
    _restore(store, wrapper)
    store.close()
    assert _count(path, "vitals", session_id) == 2  # the original and its one correction


def test_other_errors_are_not_second_guessed() -> None:
    assert commit_check.uncertain(_io_error())
    assert not commit_check.uncertain(sqlite3.OperationalError("database is locked"))
    assert not commit_check.uncertain(sqlite3.IntegrityError("CHECK constraint failed"))


def test_a_session_start_that_landed_is_reported_started(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    clock = FakeClock(T0)
    store = open_store(path, clock)
    wrapper = _fail_next_commit(store, landed=True)
    session_id = store.start_session(session_start(clock), "Dr A")  # no "not saved"
    _restore(store, wrapper)
    assert not wrapper.armed
    store.close()
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("SELECT id FROM sessions").fetchall() == [(session_id,)]
    finally:
        raw.close()
