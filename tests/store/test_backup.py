"""Online backups: consistent while writing, checked, rotated, restorable without losing the
replaced file."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import VitalSigns
from kapmonitor.store import backup
from kapmonitor.store.database import StoreError
from kapmonitor.store.session_store import SessionStore
from tests.factories import T0, open_store, session_start


@pytest.fixture
def live(tmp_path: Path):
    clock = FakeClock(T0)
    store = open_store(tmp_path / "clinic.sqlite", clock)
    session_id = store.start_session(session_start(clock), "Dr A")
    for minute in range(5):
        clock.advance(minutes=1)
        store.add(session_id, VitalSigns(clock.now(), hr=70 + minute, sbp=120, dbp=80), "Dr A")
    yield store, session_id, clock
    store.close()


def test_a_backup_taken_while_the_app_writes_is_sound(live) -> None:
    store, session_id, clock = live
    store.db.execute("BEGIN")  # the app is mid-transaction: the copy sees only committed rows
    store.db.execute(
        "INSERT INTO audit (at, actor, action, detail, prev_hash, hash) VALUES "
        "('2026-01-01T00:00:00.000Z', 'x', 'x', '{}', ?, ?)",
        ["0" * 64, "1" * 64],
    )
    taken = backup.take_backup(store.path)
    store.db.execute("ROLLBACK")
    assert taken.path.parent == store.path.parent / "clinic-backups"
    assert backup.check_backup(taken.path) == ""
    copy = SessionStore.open(taken.path, clock)
    assert len(copy.load(session_id).current("vitals")) == 5
    copy.close()


def test_rotation_keeps_the_newest(live, monkeypatch: pytest.MonkeyPatch) -> None:
    store, _session_id, _clock = live
    folder = store.path.parent / "b"
    made = []
    for second in range(4):
        made.append(backup.take_backup(store.path, folder, keep=2))
        os.utime(made[-1].path)
        if second < 3:
            time.sleep(1.01)  # names carry the second
    names = [b.path.name for b in backup.list_backups(folder)]
    assert names == [made[3].path.name, made[2].path.name]


def test_a_damaged_backup_is_skipped_and_restore_keeps_the_replaced_file(live) -> None:
    store, session_id, clock = live
    folder = store.path.parent / "b"
    good = backup.take_backup(store.path, folder)
    time.sleep(1.01)
    bad = backup.take_backup(store.path, folder)
    bad.path.write_bytes(b"garbage" * 1000)
    assert backup.newest_good_backup(store.path, folder) == good
    assert "not a database" in backup.check_backup(bad.path) or backup.check_backup(bad.path)
    with pytest.raises(StoreError, match="cannot be restored"):
        backup.restore(bad.path, store.path)
    store.close()
    store.path.write_bytes(b"\0" * 4096)  # the live file is damaged
    kept = backup.restore(good.path, store.path)
    assert kept is not None and kept.read_bytes() == b"\0" * 4096
    reopened = SessionStore.open(store.path, clock)
    assert len(reopened.load(session_id).current("vitals")) == 5
    reopened.close()


def test_a_missing_database_or_unwritable_folder_is_a_plain_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no database"):
        backup.take_backup(tmp_path / "none.sqlite")
    db = tmp_path / "x.sqlite"
    open_store(db).close()
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    with pytest.raises(StoreError):
        backup.take_backup(db, blocker / "sub")
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_backup_folder_that_cannot_be_written_is_named_as_the_folder(tmp_path: Path) -> None:
    """Not as "the database file": the command line blames --out, and the window says where."""
    db = tmp_path / "x.sqlite"
    open_store(db).close()
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    for folder, why in ((blocker, "is a file"), (blocker / "sub", "part of its path is a file")):
        with pytest.raises(StoreError, match=why) as caught:
            backup.take_backup(db, folder)
        assert caught.value.kind == "backup_folder" and str(folder) in str(caught.value)
    damaged = tmp_path / "damaged.sqlite"
    damaged.write_bytes(b"not sqlite" * 500)
    with pytest.raises(StoreError) as caught:
        backup.take_backup(damaged, tmp_path / "b")
    assert caught.value.kind == "corrupt" and not (tmp_path / "b").exists()


HOLD_OPEN = """
import sys, time
from pathlib import Path
from kapmonitor.store.session_store import SessionStore
store = SessionStore.open(Path(sys.argv[1]))
store.list_sessions()
print("open", flush=True)
time.sleep(120)
"""


def test_restore_refuses_while_another_process_has_the_file_open(live) -> None:
    """That process would go on writing into the renamed file: its entries would be lost."""
    import signal
    import subprocess
    import sys

    store, session_id, clock = live
    copy = backup.take_backup(store.path)
    store.close()
    other = subprocess.Popen(
        [sys.executable, "-c", HOLD_OPEN, str(store.path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "open"
        (holder,) = backup.holders(store.path)
        assert holder.pid == other.pid and holder.name.startswith("python")
        before = store.path.read_bytes()
        with pytest.raises(StoreError, match=f"process {other.pid}") as caught:
            backup.restore(copy.path, store.path)
        assert caught.value.kind == "in_use"
        assert store.path.read_bytes() == before
        assert not list(store.path.parent.glob("*.replaced-*"))
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait()
    assert backup.holders(store.path) == []
    kept = backup.restore(copy.path, store.path)
    assert kept is not None and kept.exists()
    reopened = SessionStore.open(store.path, clock)
    assert len(reopened.load(session_id).current("vitals")) == 5
    reopened.close()
