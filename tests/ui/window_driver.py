"""Drive the real session window as a therapist does: a key opens a dialog, keys fill it.

Shared by the whole-session tests. A dialog that an action leaves open is closed and reported,
so a broken flow fails with its reason instead of hanging the suite.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.settings import Settings
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.bedside.session_window import SessionWindow

Action = Callable[[QWidget], None]


def shown_window(
    qtbot: QtBot, store: SessionStore, clock: FakeClock, settings_dir: Path
) -> SessionWindow:
    """The real session window, shown, active and registered for clean-up."""
    window = SessionWindow(store, clock, Settings(settings_dir))
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitExposed(window)
    return window


def drive(
    qtbot: QtBot,
    window: SessionWindow,
    key: Qt.Key,
    actions: Action | list[Action],
    modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier,
) -> None:
    """Press ``key`` in the window and run each action on the dialogs it opens, in turn.

    Each dialog must be closed by its action (saved or cancelled); if an action fails or leaves
    its dialog open, the dialog is closed so the test fails with the reason instead of hanging.
    """
    steps = list(actions) if isinstance(actions, list) else [actions]
    problems: list[str] = []
    handled: list[QWidget] = []
    busy = False

    def poll() -> None:
        nonlocal busy
        dialog = QApplication.activeModalWidget()
        if busy or dialog is None or any(d is dialog for d in handled):
            return
        if not steps:
            # A dialog nobody expected (a refusal, a confirmation) would wait for a person
            # forever and hang the suite: close it and fail with its name and text instead.
            handled.append(dialog)
            text = getattr(dialog, "text", lambda: "")()
            banner = getattr(dialog, "errors_text", lambda: "")()
            problems.append(f"unexpected {type(dialog).__name__}: {text or banner}".strip())
            dialog.close()
            return
        busy = True
        handled.append(dialog)
        action = steps.pop(0)
        try:
            action(dialog)
        except BaseException as exc:
            problems.append(f"{type(dialog).__name__}: {type(exc).__name__}: {exc}")
        if dialog.isVisible():
            banner = getattr(dialog, "errors_text", lambda: "")()
            problems.append(f"{type(dialog).__name__} left open: {banner}")
            steps.clear()
            dialog.close()
        busy = False

    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=2000)
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(poll)
    timer.start()
    try:
        qtbot.keyClick(window, key, modifier)
        qtbot.wait(1)  # let the check run even if the key opened nothing
    finally:
        timer.stop()
    assert not problems, problems
    assert not steps, f"{len(steps)} expected dialog(s) never opened"


def type_into(qtbot: QtBot, widget: QWidget, text: str) -> None:
    widget.setFocus()
    qtbot.keyClicks(widget, text)


def enter_vitals(qtbot: QtBot, window: SessionWindow, keys: list[str]) -> None:
    """Type the fields in the form's order (BP, HR, SpO2, RR, EtCO2, temperature: the
    registry's), Tab between, Enter; "" leaves a field empty."""

    def fill(dialog: QWidget) -> None:
        assert dialog.focusWidget() is dialog.bp  # BP first: no click needed
        for index, text in enumerate(keys):
            if index:
                qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_Tab)
            qtbot.keyClicks(dialog.focusWidget(), text)
        qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_V, fill)
