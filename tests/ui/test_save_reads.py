"""A save through the real bedside window writes and then shows, without reading the store back.

The window used to re-read the row it had just saved, then the NEWS2 score and alarms derived
with it (three more queries), and after a first dose the whole session for the phase change the
store adds. Now each write returns what it wrote (``Changes``) and the window shows that. The
proof watches every statement on the window's own SQLite connection (sqlite3's trace callback)
while a clinician saves by keyboard: after the COMMIT, not one statement runs. What is on screen
is then checked against the database, so nothing shown is invented either.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.bedside.session_window import SessionWindow
from tests.factories import T0, protocol, session_start
from tests.ui.window_driver import drive, enter_vitals, shown_window, type_into

pytestmark = pytest.mark.qt_log_ignore(r"^This plugin does not support")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    opened = SessionStore.open(tmp_path / "reads.sqlite", clock)
    yield opened
    opened.close()


@pytest.fixture
def window(qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path) -> SessionWindow:
    shown = shown_window(qtbot, store, clock, tmp_path)
    session_id = store.start_session(
        session_start(clock), "Dr A", protocol=protocol("clinic-ketamine")
    )
    shown.open_session(session_id, fresh=True)
    return shown


class Statements:
    """Every statement the window's connection runs while watched."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.seen: list[str] = []

    def __enter__(self) -> Statements:
        self.connection.set_trace_callback(self.seen.append)
        return self

    def __exit__(self, *exc: object) -> None:
        self.connection.set_trace_callback(None)

    def after_commit(self) -> list[str]:
        """The statements after the last COMMIT (there must be a write and its commit)."""
        assert any(s.lstrip().upper().startswith("INSERT") for s in self.seen), self.seen
        commits = [i for i, s in enumerate(self.seen) if s.strip().upper().startswith("COMMIT")]
        assert commits, f"no commit among {self.seen}"
        return self.seen[commits[-1] + 1 :]


def test_saving_vitals_reads_nothing_after_the_commit(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    assert window.log is not None
    clock.advance(minutes=2)
    with Statements(store.db.conn) as watched:
        enter_vitals(qtbot, window, ["118/76", "70", "98", "14", "", "36.6"])
    assert watched.after_commit() == []
    [stored] = store.load(window.log.id).current("vitals")
    assert window.last_values.values["bp"].text() == "118/76"
    assert window.chart.point_count("sbp") == 1
    assert window.timeline.timeline.items[-1].row_id == stored["id"]
    score = store.load(window.log.id).current("vital_scores")[-1]
    assert "news2" in window.last_values.times and score["vitals_id"] == stored["id"]


def test_the_first_dose_shows_its_phase_change_without_reloading_the_session(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    assert window.log is not None
    clock.advance(minutes=2)
    enter_vitals(qtbot, window, ["118/76", "70", "98", "14", "", "36.6"])  # the baseline
    clock.advance(minutes=3)

    def dose(dialog: QWidget) -> None:
        type_into(qtbot, dialog.drug, "Racemic")
        type_into(qtbot, dialog.route, "IM")
        type_into(qtbot, dialog.dose, "54")
        type_into(qtbot, dialog.lot, "LOT-77")
        qtbot.keyClick(dialog.lot, Qt.Key.Key_Return)

    with Statements(store.db.conn) as watched:
        drive(qtbot, window, Qt.Key.Key_D, dose)
    assert watched.after_commit() == []
    log = store.load(window.log.id)
    assert log.phase() == "dosing" and window.log.phase() == "dosing"
    assert window.header.phase.text() == "Dosing"
    shown = [(i.table, i.row_id) for i in window.timeline.timeline.items]
    assert ("phase_changes", log.current("phase_changes")[-1]["id"]) in shown
    assert ("doses", log.current("doses")[0]["id"]) in shown


def test_an_alarm_raised_by_a_reading_is_shown_from_the_change(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    """SpO2 84 % raises the protocol's critical alarm: banner and marker, and no re-read."""
    assert window.log is not None
    clock.advance(minutes=2)
    with Statements(store.db.conn) as watched:
        enter_vitals(qtbot, window, ["118/76", "70", "84", "14"])
    assert watched.after_commit() == []
    stored = store.load(window.log.id).active_alarms()
    assert stored, "the reading should have raised an alarm"
    assert [a["id"] for a in window.log.active_alarms()] == [a["id"] for a in stored]
    assert window.alarm_banner.first_alarm_id() == stored[0]["id"]
    assert "alarm" in [kind for _x, kind, _label in window.chart.markers()]


def test_the_watch_sees_a_read_after_the_commit(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    """The proof above can fail: the re-read the window used to do is caught."""
    assert window.log is not None
    clock.advance(minutes=2)
    with Statements(store.db.conn) as watched:
        enter_vitals(qtbot, window, ["118/76", "70", "98", "14"])
        store.row("vitals", window.timeline.timeline.items[-1].row_id)
    assert [s for s in watched.after_commit() if "FROM vitals" in s]
