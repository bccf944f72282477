"""Two follow-ups of the keyed chain: the new key's marker is written by the migration to
encryption (not by the first bedside save), and checking a backup leaves nothing beside it."""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from kapmonitor.demo import record_demo
from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import VitalSigns
from kapmonitor.store import audit, backup, encrypted_store, encryption, key_slots
from kapmonitor.store.accounts import Accounts
from kapmonitor.store.key_slots import KdfCost
from kapmonitor.store.session_store import SessionStore
from tests.factories import T0, open_store, session_start

ADMIN, ADMIN_PASSWORD = "Admin", "violet orchard lantern 42"


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(key_slots, "PASSWORD_COST", KdfCost(n=2**10))
    monkeypatch.setattr(key_slots, "RECOVERY_COST", KdfCost(n=2**10))
    encryption.forget_all()
    yield
    encryption.forget_all()


def plain_clinic(path: Path) -> FakeClock:
    clock = FakeClock(T0)
    store = open_store(path, clock)
    Accounts(store.db, clock).create_first_administrator(ADMIN, "Dr Admin", ADMIN_PASSWORD)
    for _ in record_demo(store, clock, T0, 0.0, random.Random(3)):
        pass
    store.close()
    return clock


def markers(path: Path, keys: key_slots.DatabaseKeys) -> list[tuple[int, dict]]:
    conn = encryption.open_encrypted(path, keys)
    try:
        rows = conn.execute(
            "SELECT id, detail FROM audit WHERE action = ? ORDER BY id", [audit.KEY_MARKER]
        ).fetchall()
    finally:
        conn.close()
    return [(int(i), json.loads(d)) for i, d in rows]


def test_the_migration_writes_the_new_keys_marker_so_the_first_save_does_not(
    tmp_path: Path,
) -> None:
    path = tmp_path / "clinic.sqlite"
    clock = plain_clinic(path)
    opened = encrypted_store.unlock(path, ADMIN, ADMIN_PASSWORD, clock)
    assert opened.migrated
    found = markers(path, opened.keys)
    newest_id, newest = found[-1]
    assert newest["encrypted"] is True and newest["before"] == newest_id - 1
    store = SessionStore.open(path, clock)
    try:
        sid = store.start_session(session_start(clock), "Dr A")
        store.add(sid, VitalSigns(clock.now(), hr=72, sbp=120, dbp=80, spo2=98), "Dr A")
    finally:
        store.close()
    assert markers(path, opened.keys) == found  # the first saves chained under it, no new one


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_taking_and_checking_a_backup_leaves_only_the_copy_and_its_anchor(tmp_path: Path) -> None:
    path = tmp_path / "clinic.sqlite"
    plain_clinic(path)
    taken = backup.take_backup(path, tmp_path / "backups")
    assert files_in(tmp_path / "backups") == [taken.path.name, f"{taken.path.name}.anchor"]
    before = hashlib.sha256(taken.path.read_bytes()).hexdigest()
    assert backup.check_backup(taken.path) == ""
    assert backup.newest_good_backup(path, tmp_path / "backups") == taken
    assert files_in(tmp_path / "backups") == [taken.path.name, f"{taken.path.name}.anchor"]
    assert hashlib.sha256(taken.path.read_bytes()).hexdigest() == before  # never changed


def test_checking_an_older_wal_mode_backup_leaves_nothing_beside_it(tmp_path: Path) -> None:
    """Backups taken before this version kept the source's WAL mode: a read-only open of one
    made a -wal and -shm it could not remove."""
    path = tmp_path / "clinic.sqlite"
    plain_clinic(path)
    old = tmp_path / "backups" / "clinic-20260101-120000.sqlite"
    old.parent.mkdir()
    source, target = sqlite3.connect(path), sqlite3.connect(old)
    source.backup(target)
    source.close()
    assert target.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    target.close()
    before = hashlib.sha256(old.read_bytes()).hexdigest()
    assert backup.check_backup(old) == ""
    assert files_in(old.parent) == [old.name]
    assert hashlib.sha256(old.read_bytes()).hexdigest() == before


def test_a_wal_that_was_there_before_the_check_is_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "clinic.sqlite"
    plain_clinic(path)
    taken = backup.take_backup(path, tmp_path / "backups")
    wal = Path(f"{taken.path}-wal")
    wal.write_bytes(b"")  # someone else's (empty) WAL: not the check's to remove
    backup.check_backup(taken.path)
    assert wal.exists()


def test_an_encrypted_backup_is_checked_without_leaving_anything(tmp_path: Path) -> None:
    path = tmp_path / "clinic.sqlite"
    clock = plain_clinic(path)
    encrypted_store.unlock(path, ADMIN, ADMIN_PASSWORD, clock)
    taken = backup.take_backup(path, tmp_path / "backups")
    assert not encryption.is_plain(taken.path)
    assert backup.check_backup(taken.path) == ""
    left = [n for n in files_in(tmp_path / "backups") if n.startswith(taken.path.name)]
    assert left == [taken.path.name, f"{taken.path.name}.anchor"]
