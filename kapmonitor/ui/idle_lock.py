"""The idle lock: after some minutes without input the window is covered, not the monitoring.

HIPAA asks for automatic logoff (164.312(a)(2)(iii)); a bedside monitor cannot simply log off,
because the room still needs the session clock, the next check and any alarm. So the lock is an
overlay over the session page that hides the record (names, chart, timeline) and entry, shows
those three things in large type, and opens again for any attending clinician's password.

Idle time is measured on the machine's monotonic clock (it is about the keyboard, not clinical
time); the session clock shown is still computed from stored times.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

ACTIVITY_EVENTS = (
    QEvent.Type.KeyPress,
    QEvent.Type.MouseButtonPress,
    QEvent.Type.MouseMove,
    QEvent.Type.Wheel,
    QEvent.Type.TouchBegin,
)
CHECK_EVERY_MS = 5000


class IdleWatcher(QObject):
    """Emits ``idle`` once the user has not touched the app for ``minutes`` (0 = never)."""

    idle = Signal()

    def __init__(self, minutes: Callable[[], int], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.minutes = minutes
        self.last_activity = time.monotonic()
        self.timer = QTimer(self)
        self.timer.setInterval(CHECK_EVERY_MS)
        self.timer.timeout.connect(self.check)
        self.timer.start()
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in ACTIVITY_EVENTS:
            self.last_activity = time.monotonic()
        return False

    def idle_seconds(self) -> float:
        return time.monotonic() - self.last_activity

    def check(self) -> None:
        limit = self.minutes()
        if limit > 0 and self.idle_seconds() >= limit * 60:
            self.last_activity = time.monotonic()
            self.idle.emit()


class LockOverlay(QFrame):
    """Covers its parent; shows the clock, the next check and alarms; unlocks with a password."""

    unlock_requested = Signal(str, str)  # username, password

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("LockOverlay")
        self.setAutoFillBackground(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(40, 30, 40, 30)
        layout.addStretch(1)
        self.title = QLabel("LOCKED", self)
        self.title.setStyleSheet("font-size: 26pt; font-weight: bold;")
        self.clock = QLabel("", self)
        self.clock.setObjectName("LockClock")
        self.clock.setStyleSheet("font-size: 30pt; font-weight: bold;")
        self.next_check = QLabel("", self)
        self.next_check.setObjectName("LockNextCheck")
        self.next_check.setWordWrap(True)
        self.next_check.setStyleSheet("font-size: 22pt; font-weight: bold;")
        self.alarms = QLabel("", self)
        self.alarms.setObjectName("LockAlarms")
        self.alarms.setWordWrap(True)
        self.alarms.setStyleSheet("font-size: 18pt; font-weight: bold;")
        for label in (self.title, self.clock, self.next_check, self.alarms):
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(label)
        layout.addSpacing(24)
        row = QHBoxLayout()
        row.addStretch(1)
        self.username = QComboBox(self)
        self.username.setEditable(True)
        self.username.setMinimumWidth(220)
        self.secret = QLineEdit(self)
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.secret.setPlaceholderText("password or PIN")
        self.secret.returnPressed.connect(self._unlock)
        self.unlock_button = QPushButton("Unlock", self)
        self.unlock_button.clicked.connect(self._unlock)
        for widget in (self.username, self.secret, self.unlock_button):
            row.addWidget(widget)
        row.addStretch(1)
        layout.addLayout(row)
        self.error = QLabel("", self)
        self.error.setObjectName("ErrorBanner")
        self.error.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.error.hide()
        layout.addWidget(self.error, 0, Qt.AlignmentFlag.AlignCenter)
        layout.addStretch(2)
        parent.installEventFilter(self)
        self.hide()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.parent() and event.type() == QEvent.Type.Resize:
            self.setGeometry(self.parentWidget().rect())
        return False

    def lock(self, usernames: list[str], why: str) -> None:
        self.title.setText(f"LOCKED — {why}")
        self.username.clear()
        self.username.addItems(usernames)
        self.secret.clear()
        self.error.hide()
        self.setGeometry(self.parentWidget().rect())
        self.show()
        self.raise_()
        self.secret.setFocus()

    def show_status(self, clock: str, next_check: str, alarms: list[str]) -> None:
        self.clock.setText(clock)
        self.next_check.setText(next_check)
        self.alarms.setText("\n".join(alarms) if alarms else "No active alarm")

    def refuse(self, message: str) -> None:
        self.secret.clear()
        self.error.setText(message)
        self.error.show()
        self.secret.setFocus()

    def _unlock(self) -> None:
        self.unlock_requested.emit(self.username.currentText().strip(), self.secret.text())
