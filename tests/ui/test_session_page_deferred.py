"""The welcome page works before the session page's chart and timeline exist; they are built
when the first session is opened or resumed, with what is stored and in the chosen palette.

The chart is built late for start-up time (pyqtgraph is the largest import); these tests
prove nothing the welcome page offers waits for it, and nothing a session shows is lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import VitalSigns
from kapmonitor.settings import NIGHT_MODE, Settings
from kapmonitor.store.session_store import SessionStore
from tests.factories import T0, session_start
from tests.ui.window_driver import shown_window

pytestmark = pytest.mark.qt_log_ignore(
    r"^This plugin does not support (propagateSizeHints\(\)|raise\(\)|grabbing the keyboard)$"
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    opened = SessionStore.open(tmp_path / "deferred.sqlite", clock)
    yield opened
    opened.close()


def test_welcome_page_before_the_session_page_is_built(
    qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path
) -> None:
    session_id = store.start_session(session_start(clock), "Dr A")
    clock.advance(minutes=5)
    window = shown_window(qtbot, store, clock, tmp_path)

    assert not window.session_page_built()
    assert window.pages.currentIndex() == 0
    assert window.start_button.isVisible()
    assert window.unfinished.count() == 1 and window.unfinished.isVisible()
    assert window.unfinished.item(0).data(Qt.ItemDataRole.UserRole) == session_id
    assert "KAP-0042" in window.unfinished.item(0).text()
    # The clock ticking and a change of view settings on the welcome page do not build it.
    window.tick()
    window.night_action.trigger()
    assert Settings(tmp_path).get(NIGHT_MODE) is True
    assert not window.session_page_built()
    # Entry shortcuts wait for a session; the welcome page's own actions are enabled.
    assert window.actions_by_name["new"].isEnabled()
    assert not window.actions_by_name["vitals"].isEnabled()


def test_session_page_built_on_first_resume_with_what_is_stored(
    qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path
) -> None:
    session_id = store.start_session(session_start(clock), "Dr A")
    clock.advance(minutes=2)
    store.add(
        session_id,
        VitalSigns(observed_at=clock.now() - timedelta(minutes=1), sbp=120, dbp=80, hr=72, spo2=98),
        "Dr A",
    )
    Settings(tmp_path).set(NIGHT_MODE, True)
    window = shown_window(qtbot, store, clock, tmp_path)
    assert not window.session_page_built()

    window.unfinished.setCurrentRow(0)
    window.unfinished.setFocus()
    qtbot.keyClick(window.unfinished, Qt.Key.Key_Return)

    assert window.session_page_built()
    assert window.log is not None and window.log.id == session_id
    assert window.pages.currentIndex() == 1
    assert window.chart.isVisible() and window.timeline.isVisible()
    assert window.chart.point_count("sbp") == 1
    assert [item.table for item in window.timeline.timeline.items].count("vitals") == 1
    assert window.chart._night is True  # built in the palette chosen before it existed
    # Built once: back to the welcome page and into the session again keeps the same chart.
    chart = window.chart
    window.show_welcome()
    window.open_session(session_id)
    assert window.chart is chart
