"""Encryption at rest: what is on disk, who can unlock it, and how a plain file is encrypted.

Each test works on real files: it records through the store, then reads the raw bytes of the
database, its WAL and its backup, or tries the attack (a wrong password, a revoked account, an
old key) the defence is meant to stop.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from kapmonitor.demo import record_demo
from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import Observation, VitalSigns
from kapmonitor.domain.validation import ValidationError
from kapmonitor.store import encrypted_store, encryption, key_slots
from kapmonitor.store.accounts import Accounts
from kapmonitor.store.backup import default_folder, list_backups, take_backup
from kapmonitor.store.database import StoreError, connect, connect_readonly
from kapmonitor.store.key_slots import KdfCost, KeySlots, slots_path
from kapmonitor.store.session_store import SessionStore
from tests.factories import T0, open_store, session_start

PATIENT = "ZQX-7731"
NOTE = "patient described a purple tunnel of marmalade"
ADMIN, ADMIN_PASSWORD = "Admin", "violet orchard lantern 42"
CLINICIAN, CLINICIAN_PASSWORD = "nurse.b", "a long enough clinician passphrase"


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Slots derive with a small scrypt cost here (the default takes ~0.5 s per derivation);
    the unlocked-key registry starts and ends empty."""
    monkeypatch.setattr(key_slots, "PASSWORD_COST", KdfCost(n=2**10))
    monkeypatch.setattr(key_slots, "RECOVERY_COST", KdfCost(n=2**10))
    encryption.forget_all()
    yield
    encryption.forget_all()


def first_run(path: Path, clock: FakeClock) -> encrypted_store.Opened:
    return encrypted_store.create(path, clock, ADMIN, "Dr Admin", ADMIN_PASSWORD)


def record_session(store: SessionStore, clock: FakeClock) -> str:
    sid = store.start_session(session_start(clock, patient_code=PATIENT), "Dr A")
    clock.advance(minutes=2)
    store.add(sid, VitalSigns(clock.now(), hr=72, sbp=120, dbp=80, spo2=98), "Dr A")
    clock.advance(minutes=1)
    store.add(sid, Observation(clock.now(), moaas=4, note=NOTE), "Dr A")
    return sid


def raw_files(path: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in sorted(path.parent.rglob("*"))
        if p.is_file() and not p.name.endswith(".keys")
    }


def test_the_database_wal_and_backup_hold_no_patient_code_or_note_text(tmp_path: Path) -> None:
    path = tmp_path / "clinic.sqlite"
    clock = FakeClock(T0)
    opened = first_run(path, clock)
    store = SessionStore.open(path, clock, keys=opened.keys)
    record_session(store, clock)
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    wal = Path(f"{path}-wal")
    assert wal.exists() and wal.stat().st_size > 0  # the entries are (still) in the WAL
    backup = take_backup(path)
    files = raw_files(path)
    assert {path.name, wal.name, backup.path.name} <= set(files)
    for name, content in files.items():
        assert PATIENT.encode() not in content, name
        assert NOTE.encode() not in content, name
        assert b"marmalade" not in content.lower(), name
        assert not content.startswith(b"SQLite format 3"), name
    # and yet everything reads back through the store and from the backup
    assert store.list_sessions()[0]["patient_code"] == PATIENT
    store.close()
    restored = SessionStore.open(backup.path, clock, keys=opened.keys)
    assert restored.list_sessions()[0]["patient_code"] == PATIENT
    restored.close()


def test_triggers_and_wal_keep_working_on_an_encrypted_file(tmp_path: Path) -> None:
    path = tmp_path / "clinic.sqlite"
    clock = FakeClock(T0)
    opened = first_run(path, clock)
    store = SessionStore.open(path, clock, keys=opened.keys)
    record_session(store, clock)
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store.db.execute("PRAGMA temp_store").fetchone()[0] == 2  # MEMORY: no temp files
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("UPDATE vitals SET hr = 40")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("DELETE FROM observations")
    store.close()


def test_a_wrong_password_or_unknown_account_is_refused_in_plain_words(tmp_path: Path) -> None:
    path = tmp_path / "clinic.sqlite"
    first_run(path, FakeClock(T0))
    slots = KeySlots.load(path)
    for name, password in ((ADMIN, "not the password"), ("nobody", ADMIN_PASSWORD)):
        with pytest.raises(StoreError, match="Wrong user name or password") as refused:
            slots.unlock(name, password)
        assert refused.value.kind == "wrong_password"
    # the name compares as sign-in does: case and width do not matter
    assert slots.unlock("ＡＤＭＩＮ", ADMIN_PASSWORD).encrypted


def test_without_its_key_the_file_does_not_open_and_a_wrong_key_is_explained(
    tmp_path: Path,
) -> None:
    path = tmp_path / "clinic.sqlite"
    opened = first_run(path, FakeClock(T0))
    encryption.forget_all()
    with pytest.raises(StoreError, match="encrypted: sign in") as locked:
        connect(path)
    assert locked.value.kind == "encrypted"
    with pytest.raises(StoreError, match="wrong password or not this clinic's database") as wrong:
        connect(path, key_slots.new_keys())
    assert wrong.value.kind == "wrong_key"
    sqlite = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError):  # the sqlite3 tool sees no database at all
        sqlite.execute("SELECT * FROM sessions").fetchall()
    sqlite.close()
    connect(path, opened.keys).close()


def test_slots_are_added_rewrapped_and_removed(tmp_path: Path) -> None:
    path = tmp_path / "clinic.sqlite"
    opened = first_run(path, FakeClock(T0))
    slots = KeySlots.load(path)
    slots.add(opened.keys, CLINICIAN, CLINICIAN_PASSWORD)
    assert KeySlots.load(path).unlock("Nurse.B", CLINICIAN_PASSWORD) == opened.keys
    slots.rewrap(opened.keys, CLINICIAN, "the new passphrase for nurse b")
    with pytest.raises(StoreError, match="Wrong user name or password"):
        KeySlots.load(path).unlock(CLINICIAN, CLINICIAN_PASSWORD)
    assert KeySlots.load(path).unlock(CLINICIAN, "the new passphrase for nurse b") == opened.keys
    slots.remove(CLINICIAN)
    with pytest.raises(StoreError, match="Wrong user name or password"):
        KeySlots.load(path).unlock(CLINICIAN, "the new passphrase for nurse b")
    assert KeySlots.load(path).unlock(ADMIN, ADMIN_PASSWORD) == opened.keys  # others untouched
    with pytest.raises(StoreError, match="another database key"):
        slots.add(key_slots.new_keys(), CLINICIAN, CLINICIAN_PASSWORD)


def test_a_slot_copied_under_another_name_does_not_open(tmp_path: Path) -> None:
    path = tmp_path / "clinic.sqlite"
    opened = first_run(path, FakeClock(T0))
    KeySlots.load(path).add(opened.keys, CLINICIAN, CLINICIAN_PASSWORD)
    data = json.loads(slots_path(path).read_text())
    data["slots"]["admin"] = data["slots"][CLINICIAN]  # the clinician's slot as the admin's
    slots_path(path).write_text(json.dumps(data))
    with pytest.raises(StoreError, match="Wrong user name or password"):
        KeySlots.load(path).unlock(ADMIN, CLINICIAN_PASSWORD)


def test_the_key_file_is_private_records_its_cost_and_holds_no_key(tmp_path: Path) -> None:
    path = tmp_path / "clinic.sqlite"
    old = os.umask(0o022)
    try:
        opened = first_run(path, FakeClock(T0))
    finally:
        os.umask(old)
    keys_file = slots_path(path)
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    text = keys_file.read_text()
    assert opened.keys.master.hex() not in text
    assert opened.recovery_key is not None
    assert opened.recovery_key.replace("-", "") not in text.upper()
    slot = json.loads(text)["slots"]["admin"]
    assert (slot["kdf"], slot["n"], slot["r"], slot["p"]) == ("scrypt", 2**10, 8, 1)
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".partial")]


def test_the_default_cost_is_recorded_and_an_old_cheap_slot_is_raised_on_unlock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "clinic.sqlite"
    opened = first_run(path, FakeClock(T0))  # slots at n = 2**10
    monkeypatch.setattr(key_slots, "PASSWORD_COST", KdfCost(n=2**11))
    assert KeySlots.load(path).unlock(ADMIN, ADMIN_PASSWORD) == opened.keys
    assert json.loads(slots_path(path).read_text())["slots"]["admin"]["n"] == 2**11


def test_the_shipped_cost_is_at_least_scrypt_n_2_17() -> None:
    """The shipped cost (measured >= 250 ms per derivation here; docs/encryption.md)."""
    assert key_slots.SHIPPED_PASSWORD_COST.n >= 2**17
    assert key_slots.SHIPPED_PASSWORD_COST.r >= 8


def test_the_recovery_key_unlocks_and_resets_the_administrators_password(tmp_path: Path) -> None:
    path = tmp_path / "clinic.sqlite"
    clock = FakeClock(T0)
    opened = first_run(path, clock)
    recovery = opened.recovery_key
    assert recovery is not None and len(recovery.split("-")) == 8
    typed = recovery.lower().replace("-", " ")  # as written down and typed back
    assert KeySlots.load(path).unlock_with_recovery(typed) == opened.keys
    with pytest.raises(StoreError, match="recovery key does not unlock"):
        KeySlots.load(path).unlock_with_recovery("AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG-HHHH")
    encrypted_store.reset_with_recovery(
        path, typed, "admin", "plum quartz ferry 2031 window", clock
    )
    encryption.forget_all()
    assert encrypted_store.unlock(path, ADMIN, "plum quartz ferry 2031 window", clock).keys == (
        opened.keys
    )
    with pytest.raises(StoreError, match="Wrong user name or password"):
        encrypted_store.unlock(path, ADMIN, ADMIN_PASSWORD, clock)
    db = connect(path, opened.keys)
    user = Accounts(db, clock).sign_in(ADMIN, "plum quartz ferry 2031 window")
    assert user.role == "administrator"
    db.close()


def test_first_run_refused_leaves_no_file_and_a_lone_key_file_is_not_overwritten(
    tmp_path: Path,
) -> None:
    path = tmp_path / "clinic.sqlite"
    with pytest.raises(ValidationError, match="at least 12 characters"):
        encrypted_store.create(path, FakeClock(T0), ADMIN, "Dr Admin", "123")
    assert not path.exists() and not slots_path(path).exists()
    first_run(path, FakeClock(T0))
    before = slots_path(path).read_bytes()
    path.rename(tmp_path / "moved.sqlite")
    with pytest.raises(StoreError, match="key file"):
        first_run(path, FakeClock(T0))
    assert slots_path(path).read_bytes() == before


@pytest.fixture
def plain_clinic(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    """A plain database from before encryption: an administrator, a clinician, a demo session,
    and one plain backup."""
    path = tmp_path / "clinic.sqlite"
    clock = FakeClock(T0)
    store = open_store(path, clock)
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator(ADMIN, "Dr Admin", ADMIN_PASSWORD)
    accounts.create_user(admin, CLINICIAN, "Nurse B", "clinician", CLINICIAN_PASSWORD)
    for _ in record_demo(store, clock, T0, 0.0, random.Random(3)):
        pass
    record_session(store, clock)
    store.close()
    take_backup(path)
    return path, encrypted_store.table_counts(path)


def test_a_plain_database_is_encrypted_when_its_administrator_signs_in(
    plain_clinic: tuple[Path, dict[str, int]],
) -> None:
    path, before = plain_clinic
    clock = FakeClock(T0)
    assert encryption.is_plain(path)
    opened = encrypted_store.unlock(path, "ADMIN", ADMIN_PASSWORD, clock)
    assert opened.migrated and opened.recovery_key
    assert not encryption.is_plain(path)
    assert PATIENT.encode() not in path.read_bytes() and NOTE.encode() not in path.read_bytes()
    assert not path.with_name(path.name + encrypted_store.PLAIN_KEPT).exists()
    assert not path.with_name(path.name + encrypted_store.ENCRYPTING).exists()
    after = encrypted_store.table_counts(path)
    assert {k: v for k, v in after.items() if k != "audit"} == {
        k: v for k, v in before.items() if k != "audit"
    }
    assert after["audit"] >= before["audit"]
    from kapmonitor.store.verify import verify_database

    assert verify_database(path).ok
    # the plain backup was encrypted in place, and still restores and verifies
    backups = list_backups(default_folder(path), path.stem)
    assert backups and not any(encryption.is_plain(b.path) for b in backups)
    assert all(PATIENT.encode() not in b.path.read_bytes() for b in backups)
    assert verify_database(backups[0].path).ok
    assert (default_folder(path) / slots_path(path).name).exists()
    encryption.forget_all()
    assert encrypted_store.unlock(path, ADMIN, ADMIN_PASSWORD, clock).keys == opened.keys


def test_only_the_administrator_migrates_and_a_wrong_password_changes_nothing(
    plain_clinic: tuple[Path, dict[str, int]],
) -> None:
    path, _ = plain_clinic
    content = path.read_bytes()
    clock = FakeClock(T0)
    with pytest.raises(StoreError, match="administrator must sign in once") as refused:
        encrypted_store.unlock(path, CLINICIAN, CLINICIAN_PASSWORD, clock)
    assert refused.value.kind == "needs_administrator"
    with pytest.raises(StoreError, match="Wrong user name or password"):
        encrypted_store.unlock(path, ADMIN, "guess", clock)
    assert encryption.is_plain(path) and path.read_bytes() == content
    assert not slots_path(path).exists()


def test_a_migration_interrupted_after_the_swap_finishes_at_the_next_unlock(
    plain_clinic: tuple[Path, dict[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = plain_clinic
    clock = FakeClock(T0)

    def crash(*_args: object) -> None:
        raise KeyboardInterrupt  # the laptop dies right after the encrypted file is in place

    monkeypatch.setattr(encrypted_store, "finish_pending", crash)
    with pytest.raises(KeyboardInterrupt):
        encrypted_store.unlock(path, ADMIN, ADMIN_PASSWORD, clock)
    kept = path.with_name(path.name + encrypted_store.PLAIN_KEPT)
    assert kept.exists() and encryption.is_plain(kept) and not encryption.is_plain(path)
    monkeypatch.undo()
    monkeypatch.setattr(key_slots, "PASSWORD_COST", KdfCost(n=2**10))
    encryption.forget_all()
    encrypted_store.unlock(path, ADMIN, ADMIN_PASSWORD, clock)
    assert not kept.exists()


def test_rekey_keeps_named_accounts_revokes_the_rest_and_retires_the_old_key(
    tmp_path: Path,
) -> None:
    path = tmp_path / "clinic.sqlite"
    clock = FakeClock(T0)
    opened = first_run(path, clock)
    KeySlots.load(path).add(opened.keys, CLINICIAN, CLINICIAN_PASSWORD)
    store = SessionStore.open(path, clock, keys=opened.keys)
    record_session(store, clock)
    store.close()
    backup = take_backup(path)
    done = encrypted_store.rekey(path, opened.keys, {ADMIN: ADMIN_PASSWORD})
    assert done.kept == ["admin"] and done.revoked == [CLINICIAN] and done.backups == 1
    assert done.keys != opened.keys and done.recovery_key != opened.recovery_key
    encryption.forget_all()
    with pytest.raises(StoreError, match="wrong password or not this clinic's database"):
        connect(path, opened.keys)
    with pytest.raises(StoreError, match="Wrong user name or password"):
        KeySlots.load(path).unlock(CLINICIAN, CLINICIAN_PASSWORD)
    assert opened.recovery_key is not None
    with pytest.raises(StoreError, match="recovery key does not unlock"):
        KeySlots.load(path).unlock_with_recovery(opened.recovery_key)
    keys = encrypted_store.unlock(path, ADMIN, ADMIN_PASSWORD, clock).keys
    assert keys == done.keys
    assert KeySlots.load(path).unlock_with_recovery(done.recovery_key) == done.keys
    reopened = SessionStore.open(path, clock, keys=keys)
    assert reopened.list_sessions()[0]["patient_code"] == PATIENT
    reopened.close()
    from_backup = SessionStore.open(backup.path, clock, keys=done.keys)
    assert from_backup.list_sessions()[0]["patient_code"] == PATIENT
    from_backup.close()
    # the audit chain sealed before the rekey still verifies, in the file and in its backup
    from kapmonitor.store.verify import verify_database

    assert verify_database(path).ok and verify_database(backup.path).ok


def test_a_rekey_interrupted_before_the_key_file_was_replaced_is_finished_at_unlock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "clinic.sqlite"
    clock = FakeClock(T0)
    opened = first_run(path, clock)
    real_replace = os.replace

    def crash_on_key_file(src: object, dst: object) -> None:
        if str(dst) == str(slots_path(path)):
            raise KeyboardInterrupt
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(encrypted_store.os, "replace", crash_on_key_file)
    with pytest.raises(KeyboardInterrupt):
        encrypted_store.rekey(path, opened.keys, {ADMIN: ADMIN_PASSWORD})
    monkeypatch.setattr(encrypted_store.os, "replace", real_replace)
    encryption.forget_all()
    keys = encrypted_store.unlock(path, ADMIN, ADMIN_PASSWORD, clock).keys
    assert keys != opened.keys
    connect(path, keys).close()
    assert not Path(f"{slots_path(path)}{encrypted_store.REKEY_PENDING}").exists()


def test_a_damaged_file_is_called_damaged_even_while_another_database_is_unlocked(
    tmp_path: Path,
) -> None:
    """The unlocked key is tried on copies and backups; on anything else the refusal is the one
    any non-SQLite file gets, not "wrong password" (nobody typed one)."""
    path = tmp_path / "clinic.sqlite"
    opened = first_run(path, FakeClock(T0))
    connect(path, opened.keys).close()  # unlocked in this process
    garbage = tmp_path / "other.sqlite"
    garbage.write_bytes(b"\x00garbage" * 600)
    for opening in (connect, connect_readonly):
        with pytest.raises(StoreError, match="not a KAP Monitor database") as refused:
            opening(garbage)
        assert refused.value.kind == "corrupt"
    assert garbage.read_bytes() == b"\x00garbage" * 600
    copy = tmp_path / "copy.sqlite"
    copy.write_bytes(path.read_bytes())  # a copy of the unlocked file opens with its key
    connect_readonly(copy).close()


def test_after_the_migration_a_clinician_gets_a_slot_at_their_next_sign_in(
    plain_clinic: tuple[Path, dict[str, int]],
) -> None:
    path, _ = plain_clinic
    clock = FakeClock(T0)
    opened = encrypted_store.unlock(path, ADMIN, ADMIN_PASSWORD, clock)
    assert KeySlots.load(path).names() == ["admin"]  # only the administrator, at first
    with pytest.raises(StoreError, match="Wrong user name or password"):
        KeySlots.load(path).unlock(CLINICIAN, CLINICIAN_PASSWORD)
    store = SessionStore.open(path, clock, keys=opened.keys)
    Accounts(store.db, clock).sign_in(CLINICIAN, CLINICIAN_PASSWORD)  # in the unlocked window
    store.close()
    assert KeySlots.load(path).unlock(CLINICIAN, CLINICIAN_PASSWORD) == opened.keys
