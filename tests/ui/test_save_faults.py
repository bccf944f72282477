"""When the database refuses a save, the form keeps the entry and says why; nothing is lost.

Uses a real second process holding an exclusive lock on the file, the way a second copy of the
app or a backup tool would.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.settings import Settings
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.bedside.session_window import SessionWindow
from kapmonitor.ui.forms.vitals_form import VitalsForm
from tests.factories import T0, session_start

pytestmark = pytest.mark.qt_log_ignore(r"^This plugin does not support")

LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SessionStore]:
    opened = SessionStore.open(tmp_path / "faults.sqlite", FakeClock(T0))
    opened.db.execute("PRAGMA busy_timeout = 150")  # fail fast in the test
    yield opened
    opened.close()


def test_locked_database_keeps_the_entry_until_it_can_be_saved(
    qtbot: QtBot, store: SessionStore, tmp_path: Path
) -> None:
    clock = store.clock
    assert isinstance(clock, FakeClock)
    session_id = store.start_session(session_start(clock), "Dr A")
    clock.advance(minutes=3)

    def save(entry):  # the same call the window makes
        return store.add(session_id, entry, "Dr A").primary_id

    form = VitalsForm(store.ref, save, clock.now(), recorder="Dr A")
    qtbot.addWidget(form)
    form.show()
    qtbot.keyClicks(form.bp, "122/78")
    qtbot.keyClicks(form.hr, "71")

    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(store.path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        qtbot.keyClick(form.hr, Qt.Key.Key_Return)
        assert form.isVisible() and form.saved_id is None
        assert "in use by another program" in form.errors_text()
        assert (form.bp.text(), form.hr.text()) == ("122/78", "71")  # nothing typed is lost
    finally:
        assert locker.stdin is not None
        locker.stdin.write("\n")
        locker.stdin.flush()
        locker.wait(timeout=10)

    qtbot.keyClick(form.hr, Qt.Key.Key_Return)  # retry once the lock is gone
    assert form.saved_id is not None and not form.isVisible()
    (row,) = store.load(session_id).current("vitals")
    assert (row["sbp"], row["dbp"], row["hr"]) == (122, 78, 71)


def test_gui_refuses_a_damaged_file_with_a_plain_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kapmonitor.ui import app as app_module

    shown: list[str] = []
    monkeypatch.setattr(
        QMessageBox, "critical", staticmethod(lambda _parent, _title, text: shown.append(text))
    )
    bad = tmp_path / "damaged.sqlite"
    bad.write_bytes(b"\x00garbage" * 100)
    assert app_module.run_gui(bad) == 2
    assert shown and str(bad) in shown[0] and "not a KAP Monitor database" in shown[0]
    assert bad.read_bytes() == b"\x00garbage" * 100


def test_night_mode_and_large_type_are_remembered(
    qtbot: QtBot, store: SessionStore, tmp_path: Path
) -> None:
    from kapmonitor.settings import LARGE_TYPE, NIGHT_MODE

    window = SessionWindow(store, store.clock, Settings(tmp_path))
    qtbot.addWidget(window)
    window.show()
    window.night_action.trigger()
    window.large_action.trigger()
    assert window.chart.night and window.chart.large_type
    again = Settings(tmp_path)
    assert again.get(NIGHT_MODE) is True and again.get(LARGE_TYPE) is True
    second = SessionWindow(store, store.clock, again)
    qtbot.addWidget(second)
    assert second.night_action.isChecked() and second.chart.night


def test_a_full_disk_keeps_the_entry_until_space_is_freed(qtbot: QtBot, tmp_path: Path) -> None:
    point = tmp_path / "mnt"
    point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(point)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        clock = FakeClock(T0)
        store = SessionStore.open(point / "full.sqlite", clock)
        session_id = store.start_session(session_start(clock), "Dr A")
        filler = point / "filler"
        # Unbuffered: a buffered file would raise "no space" again when closed.
        with filler.open("wb", buffering=0) as out:  # fill the disk to the last byte
            try:
                while True:
                    out.write(b"\0" * 65536)
                    out.flush()
            except OSError:
                pass
        clock.advance(minutes=3)
        form = VitalsForm(
            store.ref,
            lambda e: store.add(session_id, e, "Dr A").primary_id,
            clock.now(),
            recorder="Dr A",
        )
        qtbot.addWidget(form)
        form.show()
        qtbot.keyClicks(form.bp, "131/84")
        qtbot.keyClicks(form.hr, "77")
        qtbot.keyClick(form.hr, Qt.Key.Key_Return)
        assert form.isVisible() and form.saved_id is None
        assert "full" in form.errors_text()
        assert (form.bp.text(), form.hr.text()) == ("131/84", "77")
        filler.unlink()
        qtbot.keyClick(form.hr, Qt.Key.Key_Return)
        assert form.saved_id is not None and not form.isVisible()
        (row,) = store.load(session_id).current("vitals")
        assert (row["sbp"], row["hr"]) == (131, 77)
        store.close()
    finally:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)
