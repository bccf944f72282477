"""A database that cannot be used gives a plain message naming the file, never a traceback."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import VitalSigns
from kapmonitor.store.database import StoreError
from kapmonitor.store.schema import SCHEMA_VERSION
from kapmonitor.store.verify import verify_database
from tests.factories import T0, open_store, session_start


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_text("these are my notes, not a database")
    with pytest.raises(StoreError) as info:
        open_store(path)
    assert info.value.kind == "corrupt" and str(path) in str(info.value)
    assert path.read_text().startswith("these are my notes")  # untouched


def test_truncated_database(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    open_store(path).close()
    data = path.read_bytes()
    path.write_bytes(data[:200])
    with pytest.raises(StoreError) as info:
        open_store(path)
    assert info.value.kind in ("corrupt",)


def test_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    open_store(path).close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="newer KAP Monitor") as info:
        open_store(path)
    assert info.value.kind == "newer"
    assert path.read_bytes() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(StoreError) as info:
            open_store(folder / "x.sqlite")
        assert info.value.kind in ("readonly", "unopenable")
    finally:
        folder.chmod(stat.S_IRWXU)


@pytest.fixture
def small_mount(tmp_path: Path):
    """A real tmpfs mount, so read-only and full-disk faults are the kernel's, not simulated."""
    point = tmp_path / "mnt"
    point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(point)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield point
    subprocess.run(["umount", "-l", str(point)], capture_output=True)


def test_read_only_medium(small_mount: Path) -> None:
    path = small_mount / "ro.sqlite"
    open_store(path).close()
    subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
    with pytest.raises(StoreError) as info:
        open_store(path)
    assert info.value.kind == "readonly", info.value
    assert "read-only" in str(info.value) and str(path) in str(info.value)


def test_disk_full_while_saving_loses_nothing_acknowledged(small_mount: Path) -> None:
    """Fill the (real, 4 MB) disk while vitals are saved: every id returned is stored, the
    refused entry leaves no trace, and after space is freed the same entry saves."""
    clock = FakeClock(T0)
    path = small_mount / "full.sqlite"
    store = open_store(path, clock)
    session_id = store.start_session(session_start(clock), "Dr A")
    filler = small_mount / "filler"
    free = shutil.disk_usage(small_mount).free
    filler.write_bytes(b"\0" * max(free - 96 * 1024, 0))
    saved: list[int] = []
    refused: StoreError | None = None
    for minute in range(1, 5000):
        clock.advance(seconds=30)
        entry = VitalSigns(clock.now(), hr=60 + minute % 40, sbp=120, dbp=80, note="x" * 200)
        try:
            saved.append(store.add(session_id, entry, "Dr A").primary_id)
        except StoreError as exc:
            refused = exc
            break
    assert refused is not None, "the disk never filled"
    assert refused.kind == "full" and "full" in str(refused)
    assert saved, "nothing was saved before the disk filled"
    filler.unlink()
    stored = [r["id"] for r in store.load(session_id).rows["vitals"]]
    assert stored == saved  # every acknowledged entry, and nothing half-written
    saved.append(store.add(session_id, entry, "Dr A").primary_id)  # the same entry, retried
    store.close()
    reopened = open_store(path, clock)
    assert [r["id"] for r in reopened.load(session_id).rows["vitals"]] == saved
    assert reopened.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    reopened.close()
    assert verify_database(path).ok


def test_locked_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite"
    open_store(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3,sys,time\n"
            f"c=sqlite3.connect({str(path)!r}, isolation_level=None)\n"
            "c.execute('PRAGMA locking_mode=EXCLUSIVE'); c.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        import kapmonitor.store.database as database

        original = database.BUSY_TIMEOUT_MS
        database.BUSY_TIMEOUT_MS = 200
        try:
            with pytest.raises(StoreError) as info:
                open_store(path)
        finally:
            database.BUSY_TIMEOUT_MS = original
        assert info.value.kind == "locked"
        assert "in use by another program" in str(info.value)
    finally:
        holder.kill()
        holder.wait()


def test_folder_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a folder"):
        open_store(tmp_path)
