"""A damaged database at start-up: a plain message, and the newest good backup offered."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import VitalSigns
from kapmonitor.store import backup
from kapmonitor.store.database import StoreError
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.app import recover_from_backup
from tests.factories import T0, open_store, session_start


def damaged_with_backups(tmp_path: Path) -> tuple[Path, str, backup.Backup]:
    clock = FakeClock(T0)
    path = tmp_path / "clinic.sqlite"
    store = open_store(path, clock)
    session_id = store.start_session(session_start(clock), "Dr A")
    store.add(session_id, VitalSigns(clock.now(), hr=70, sbp=120, dbp=80), "Dr A")
    good = backup.take_backup(path)
    time.sleep(1.01)
    bad = backup.take_backup(path)
    store.close()
    bad.path.write_bytes(b"broken" * 500)
    path.write_bytes(b"\0" * 8192)
    return path, session_id, good


def click_when_shown(button_text: str, seen: list[str]) -> None:
    def click() -> None:
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox)
        seen.append(f"{box.text()}\n{box.informativeText()}")
        next(b for b in box.buttons() if b.text() == button_text).click()

    QTimer.singleShot(0, click)


def test_the_newest_good_backup_is_offered_and_restored(qtbot: QtBot, tmp_path: Path) -> None:
    path, session_id, good = damaged_with_backups(tmp_path)
    with pytest.raises(StoreError) as caught:
        SessionStore.open(path)
    seen: list[str] = []
    click_when_shown("Restore the backup", seen)
    store = recover_from_backup(path, caught.value, FakeClock(T0))
    assert store is not None
    assert "damaged" in seen[0] and good.path.name in seen[0]
    assert len(store.load(session_id).current("vitals")) == 1
    store.close()
    kept = [p for p in tmp_path.iterdir() if ".replaced-" in p.name and p.suffix != ".sqlite-wal"]
    assert kept and kept[0].read_bytes() == b"\0" * 8192  # the damaged file is kept


def test_quit_changes_nothing(qtbot: QtBot, tmp_path: Path) -> None:
    path, _session_id, _good = damaged_with_backups(tmp_path)
    with pytest.raises(StoreError) as caught:
        SessionStore.open(path)
    seen: list[str] = []
    click_when_shown("Quit", seen)
    assert recover_from_backup(path, caught.value, FakeClock(T0)) is None
    assert path.read_bytes() == b"\0" * 8192
