"""The bedside and the review room never import each other; the application joins them.

Ctrl+R in the bedside window asks for the review room after a sign-in; ``ui/app.py`` opens it.
Proved through the real window: the key, the sign-in dialog, the review window on screen for the
signed-in user, and the bedside untouched behind it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.store.accounts import Accounts
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.app import connect_review
from kapmonitor.ui.review.review_window import ReviewWindow
from tests.factories import T0
from tests.ui.window_driver import drive, shown_window, type_into


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    opened = SessionStore.open(tmp_path / "rooms.sqlite", clock)
    accounts = Accounts(opened.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    accounts.create_user(admin, "chen", "Dr Chen", "supervisor", "copper-meadow-91")
    yield opened
    opened.close()


def test_ctrl_r_signs_in_and_the_app_opens_the_review_room(
    qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path
) -> None:
    window = shown_window(qtbot, store, clock, tmp_path)
    opened = connect_review(window)

    def supervisor(dialog: QWidget) -> None:
        type_into(qtbot, dialog.username.lineEdit(), "chen")
        type_into(qtbot, dialog.secret, "copper-meadow-91")
        qtbot.keyClick(dialog.secret, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_R, supervisor, Qt.KeyboardModifier.ControlModifier)
    assert len(opened) == 1
    review = opened[0]
    qtbot.addWidget(review)
    assert isinstance(review, ReviewWindow) and review.isVisible()
    assert review.user.username == "chen"
    assert window.isVisible()


def test_a_cancelled_sign_in_opens_nothing(
    qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path
) -> None:
    window = shown_window(qtbot, store, clock, tmp_path)
    opened = connect_review(window)
    drive(qtbot, window, Qt.Key.Key_R, lambda d: d.reject(), Qt.KeyboardModifier.ControlModifier)
    assert opened == []
