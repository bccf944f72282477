"""The live values (clocks, newest readings) repaint themselves alone, and are never cut off.

A plain label makes its window lay itself out again at each new text; the bedside's clocks and
big numbers change every second and at every save, so they hold their size while a text fits.
These tests count the layout requests a new text causes, and prove a wider text, a larger type
and a restyle still show every character.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import VitalSigns
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.widgets.steady_label import SteadyLabel
from tests.ui.window_driver import shown_window


class _LayoutRequests(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.LayoutRequest:
            self.count += 1
        return False


def _shown(qtbot: QtBot, label: QLabel) -> tuple[QWidget, _LayoutRequests]:
    window = QWidget()
    qtbot.addWidget(window)
    column = QVBoxLayout(window)
    column.addWidget(QLabel("Session"))
    column.addWidget(label)
    window.show()
    qtbot.waitExposed(window)
    qtbot.wait(5)  # the first layout, and the one holding the label's size, are done
    requests = _LayoutRequests()
    window.installEventFilter(requests)
    return window, requests


def _shows_all_of(label: QLabel) -> bool:
    needed = label.fontMetrics().horizontalAdvance(label.text())
    return label.contentsRect().width() >= needed


def test_a_new_text_as_wide_as_the_last_lays_nothing_out_again(qtbot: QtBot) -> None:
    label = SteadyLabel("1:10:01")
    _window, requests = _shown(qtbot, label)
    for text in ("1:10:02", "1:10:03", "1:11:11", "1:10:00"):
        label.setText(text)
        qtbot.wait(1)
    assert requests.count == 0
    assert label.text() == "1:10:00" and _shows_all_of(label)


def test_a_plain_label_would_have_laid_the_window_out_each_time(qtbot: QtBot) -> None:
    """The contrast that makes the test above mean something."""
    label = QLabel("1:10:01")
    _window, requests = _shown(qtbot, label)
    for text in ("1:10:02", "1:10:03"):
        label.setText(text)
        qtbot.wait(1)
    assert requests.count >= 2


def test_a_wider_text_is_shown_whole_and_then_held(qtbot: QtBot) -> None:
    label = SteadyLabel("98")
    _window, requests = _shown(qtbot, label)
    label.setText("186/104")
    qtbot.wait(1)
    assert requests.count >= 1  # laid out once, around the wider text
    assert _shows_all_of(label)
    held = label.held_size()
    assert held is not None and held.width() >= label.sizeHint().width()
    before = requests.count
    label.setText("99")  # narrower: fits the held size
    label.setText("120/80")
    qtbot.wait(1)
    assert requests.count == before
    assert _shows_all_of(label)


def test_larger_type_or_a_restyle_measures_again(qtbot: QtBot) -> None:
    label = SteadyLabel("1:10:01")
    _window, _requests = _shown(qtbot, label)
    small = label.held_size()
    assert small is not None
    label.setStyleSheet("font-size: 30pt; font-weight: bold;")
    qtbot.wait(1)
    large = label.held_size()
    assert large is not None and large.width() > small.width()
    assert _shows_all_of(label)
    label.setStyleSheet("font-size: 8pt;")
    qtbot.wait(1)
    smaller = label.held_size()
    assert smaller is not None and smaller.width() < large.width()  # it may shrink again
    assert _shows_all_of(label)


def test_the_bedside_clocks_and_numbers_show_every_character_as_time_passes(
    qtbot: QtBot,
    store: SessionStore,
    clock: FakeClock,
    session_id: str,
    save: Callable[[VitalSigns], int],
    tmp_path: Path,
) -> None:
    """Over a long session the header's clocks gain digits and the time limit turns into a
    warning in bold; the newest blood pressure goes from two-digit to three-digit numbers."""
    window = shown_window(qtbot, store, clock, tmp_path)
    window.open_session(session_id)
    header, panel = window.header, window.last_values
    for minutes, sbp, dbp in ((5, 99, 60), (47, 120, 80), (140, 186, 104), (30, 101, 99)):
        clock.advance(minutes=minutes)
        save(VitalSigns(clock.now(), sbp=sbp, dbp=dbp, hr=72))
        window.open_session(session_id)
        window.tick()
        qtbot.wait(1)
        for label in (header.elapsed, header.since_dose, header.limit, *panel.values.values()):
            assert isinstance(label, SteadyLabel)
            assert _shows_all_of(label), label.text()
        assert panel.values["bp"].text() == f"{sbp}/{dbp}"
    assert header.limit.objectName() == "Warn"  # past three hours: restyled, still whole
