"""The idle lock: after some minutes without input the window is covered, not the monitoring.

HIPAA asks for automatic logoff (164.312(a)(2)(iii)); a bedside monitor cannot simply log off,
because the room still needs the session clock, the next check, any alarm and the latest vital
signs. So the lock is an overlay over the session page that hides the record (names, chart,
timeline) and entry, shows those things in large type (kept current while locked), and opens
again for any attending clinician's password (or the PIN of one who signed in during this
run of the session: see ``session_access``). It is laid out to fit a 1280 × 720 screen with
large type: one line each for the clock and the next check, the big numbers in one row, at most
``MAX_ALARM_LINES`` alarm lines.

Idle time is measured on the machine's monotonic clock (it is about the keyboard, not clinical
time); the session clock shown is still computed from stored times.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from kapmonitor.ui.widgets.theme import LARGE_FACTOR

ACTIVITY_EVENTS = (
    QEvent.Type.KeyPress,
    QEvent.Type.MouseButtonPress,
    QEvent.Type.MouseMove,
    QEvent.Type.Wheel,
    QEvent.Type.TouchBegin,
)
CHECK_EVERY_MS = 5000
MAX_ALARM_LINES = 3  # more are summarised ("… and 2 more"): the lock must fit the screen
BASE_SIZES_PT = {  # lock-screen type at normal size; large type multiplies them
    "LockTitle": 15,
    "LockClock": 22,
    "LockNextCheck": 20,
    "LockAlarms": 14,
}


@dataclass(frozen=True)
class LockNumber:
    """One big number as the session page shows it: caption, value, age and its look.

    ``look`` carries the dynamic properties of the session page's value label (for example a
    highlight of a critical value), so the lock screen shows the value the same way.
    """

    caption: str
    value: str
    age: str
    look: dict[str, object] = field(default_factory=dict)


class IdleWatcher(QObject):
    """Emits ``idle`` once the user has not touched the app for ``minutes`` (0 = never).

    ``monotonic`` is the machine's monotonic clock; a test passes a fake one to move time.
    """

    idle = Signal()

    def __init__(
        self,
        minutes: Callable[[], int],
        parent: QObject | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(parent)
        self.minutes = minutes
        self.monotonic = monotonic
        self.last_activity = monotonic()
        self.timer = QTimer(self)
        self.timer.setInterval(CHECK_EVERY_MS)
        self.timer.timeout.connect(self.check)
        self.timer.start()
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # Every event of the application passes here, also while a window is being torn
        # down; once this watcher's own Python state is gone it stops watching instead of
        # raising inside Qt's dispatch of someone else's event.
        monotonic = self.__dict__.get("monotonic")
        if monotonic is None:
            self.stop()
            return False
        if event.type() in ACTIVITY_EVENTS:
            self.last_activity = monotonic()
        return False

    def stop(self) -> None:
        """Stop watching the application (the window it locks is going)."""
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        for timer in self.findChildren(QTimer):
            timer.stop()

    def idle_seconds(self) -> float:
        return self.monotonic() - self.last_activity

    def check(self) -> None:
        if "minutes" not in self.__dict__:  # torn down (see eventFilter)
            self.stop()
            return
        if not self.timer.isActive():  # stopped with its window: a tick queued before is void
            return
        limit = self.minutes()
        if limit > 0 and self.idle_seconds() >= limit * 60:
            self.last_activity = self.monotonic()
            self.idle.emit()


class LockOverlay(QFrame):
    """Covers its parent; shows the clock, the next check, alarms and the big numbers;
    unlocks with a password."""

    unlock_requested = Signal(str, str)  # username, password

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("LockOverlay")
        self.setAutoFillBackground(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self._large: bool | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 10, 24, 10)
        layout.setSpacing(6)
        layout.addStretch(1)
        self.title = QLabel("LOCKED", self)
        self.clock = QLabel("", self)
        self.next_check = QLabel("", self)
        self.next_check.setWordWrap(True)
        self.alarms = QLabel("", self)
        self.alarms.setWordWrap(True)
        for label, name in (
            (self.title, "LockTitle"),
            (self.clock, "LockClock"),
            (self.next_check, "LockNextCheck"),
        ):
            label.setObjectName(name)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(label)
        self.numbers_box = QFrame(self)
        self.numbers_box.setObjectName("Panel")
        self.numbers_grid = QGridLayout(self.numbers_box)
        self.numbers_grid.setContentsMargins(12, 4, 12, 4)
        self.numbers_grid.setHorizontalSpacing(28)
        self.numbers_grid.setVerticalSpacing(0)
        self.number_captions: list[QLabel] = []
        self.number_values: list[QLabel] = []
        self.number_ages: list[QLabel] = []
        layout.addWidget(self.numbers_box, 0, Qt.AlignmentFlag.AlignHCenter)
        self.alarms.setObjectName("LockAlarms")
        self.alarms.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.alarms)
        layout.addSpacing(8)
        row = QHBoxLayout()
        row.addStretch(1)
        self.username = QComboBox(self)
        self.username.setEditable(True)
        self.username.setMinimumWidth(220)
        self.secret = QLineEdit(self)
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.secret.setPlaceholderText("password, or your PIN")
        self.secret.setToolTip(
            "Your password; or your PIN if you set one and signed in with your password during "
            "this session on this laptop"
        )
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
        layout.addStretch(1)
        self.set_large_type(False)
        parent.installEventFilter(self)
        self.hide()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.parent() and event.type() == QEvent.Type.Resize:
            self.setGeometry(self.parentWidget().rect())
        return False

    def set_large_type(self, large: bool) -> None:
        """Scale the lock screen's own type with the large-type setting (F9)."""
        if large == self._large:
            return
        self._large = large
        scale = LARGE_FACTOR if large else 1.0
        for label in (self.title, self.clock, self.next_check, self.alarms):
            size = round(BASE_SIZES_PT[label.objectName()] * scale)
            label.setStyleSheet(f"font-size: {size}pt; font-weight: bold;")

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

    def show_status(
        self,
        clock: str,
        next_check: str,
        alarms: list[str],
        numbers: Sequence[LockNumber] = (),
        check_state: str = "",
    ) -> None:
        """Refresh what the room needs; called at every clock tick while locked."""
        self.clock.setText(clock)
        self.next_check.setText(next_check)
        if self.next_check.property("state") != check_state:
            self.next_check.setProperty("state", check_state)
            self.next_check.style().unpolish(self.next_check)
            self.next_check.style().polish(self.next_check)
        if not alarms:
            self.alarms.setText("No active alarm")
        elif len(alarms) <= MAX_ALARM_LINES:
            self.alarms.setText("\n".join(alarms))
        else:
            shown = alarms[: MAX_ALARM_LINES - 1]
            rest = len(alarms) - len(shown)
            self.alarms.setText("\n".join([*shown, f"… and {rest} more active alarms"]))
        self._show_numbers(numbers)

    def numbers(self) -> list[tuple[str, str, str]]:
        """(caption, value, age) of each big number as shown: for tests and screen readers."""
        return [
            (c.text(), v.text(), a.text())
            for c, v, a in zip(
                self.number_captions, self.number_values, self.number_ages, strict=True
            )
        ]

    def refuse(self, message: str) -> None:
        self.secret.clear()
        self.error.setText(message)
        self.error.show()
        self.secret.setFocus()

    def _show_numbers(self, numbers: Sequence[LockNumber]) -> None:
        while len(self.number_values) < len(numbers):
            column = len(self.number_values)
            box = self.numbers_box
            caption, value, age = QLabel(box), QLabel(box), QLabel(box)
            caption.setObjectName("BigLabel")
            value.setObjectName("BigValue")
            age.setObjectName("Muted")
            for row, label in enumerate((caption, value, age)):
                label.setAlignment(Qt.AlignmentFlag.AlignCenter)
                self.numbers_grid.addWidget(label, row, column)
            self.number_captions.append(caption)
            self.number_values.append(value)
            self.number_ages.append(age)
        for index, number in enumerate(numbers):
            value, caption = self.number_values[index], self.number_captions[index]
            caption.setText(number.caption)
            value.setText(number.value)
            value.setAccessibleName(number.caption)
            self.number_ages[index].setText(number.age or " ")
            for label in (caption, value):  # the theme styles both by their ``level``
                changed = False
                for name, wanted in number.look.items():
                    if label.property(name) != wanted:
                        label.setProperty(name, wanted)
                        changed = True
                if changed:
                    label.style().unpolish(label)
                    label.style().polish(label)
        self.numbers_box.setVisible(bool(numbers))

    def _unlock(self) -> None:
        self.unlock_requested.emit(self.username.currentText().strip(), self.secret.text())
