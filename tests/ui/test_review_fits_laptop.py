"""The supervisor's windows on the clinic laptop's 1280 × 720 screen.

The review window opened at 1366 × 860, the dashboard at 1280 × 820 and a patient's series at
1100 × 860: their last rows and buttons sat below a 720 px screen. Each is opened here as a
supervisor opens it, in day and night, normal and large type, and must lie on the screen with a
minimum size that fits it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QRect
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.settings import LARGE_TYPE, NIGHT_MODE, Settings
from kapmonitor.ui.review.review_window import ReviewWindow
from tests.store.test_archive import Known, build_known_archive
from tests.ui.test_review_window import account, open_session, settle

SCREEN = QRect(0, 0, 1280, 720)


@pytest.fixture
def known(tmp_path: Path) -> Iterator[Known]:
    built = build_known_archive(tmp_path / "archive.sqlite")
    yield built
    built.store.close()


def fits(window: QWidget, what: str) -> None:
    for _ in range(3):
        QApplication.processEvents()
    frame = window.frameGeometry()
    assert SCREEN.contains(frame), f"{what} at {frame.getRect()}"
    minimum = window.minimumSizeHint()
    assert minimum.width() <= SCREEN.width() and minimum.height() <= SCREEN.height(), (
        f"{what} needs {minimum.toTuple()}"
    )


# Day and normal type last: the window applies its look to the whole application, so the
# suite goes on in the look it had. Resetting the style sheet here, with these windows still
# alive, re-polished them half-deleted and crashed Qt.
@pytest.mark.parametrize(
    ("night", "large"), [(True, True), (False, True), (True, False), (False, False)]
)
def test_review_dashboard_and_series_fit_the_laptop(
    qtbot: QtBot, known: Known, tmp_path: Path, night: bool, large: bool
) -> None:
    settings = Settings(tmp_path)
    settings.set(NIGHT_MODE, night)
    settings.set(LARGE_TYPE, large)
    window = ReviewWindow(known.store, account(known, "chen"), known.clock, settings)
    qtbot.addWidget(window)
    window.move(0, 0)
    window.show()
    qtbot.waitExposed(window)
    settle(qtbot, window)
    applied = QApplication.instance().property("kapmonitorTheme")
    assert applied == f"{'night' if night else 'day'}/{'large' if large else 'normal'}"
    fits(window, "review window")
    open_session(qtbot, window, known.a)
    fits(window, "review window with a session open")

    board = window.open_dashboard()
    qtbot.addWidget(board)
    board.move(0, 0)
    fits(board, "dashboard")
    series = window.open_patient_series()
    assert series is not None
    qtbot.addWidget(series)
    series.move(0, 0)
    fits(series, "patient series")
