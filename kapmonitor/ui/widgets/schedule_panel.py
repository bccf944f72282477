"""The next protocol check in large type: what is due, and how soon or how late.

A therapist sitting with a masked patient glances at this from two metres, so the line is big and
says its state in words ("DUE NOW", "⚠ OVERDUE by 3:10"); colour only repeats what the words say.
The time shown is derived from the check's stored due time and the ``now`` passed in, never from a
counter of its own, so a laptop that slept shows the truth when it wakes.
"""

from __future__ import annotations

import math
from datetime import datetime

from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

from kapmonitor.domain.schedule import ScheduleState
from kapmonitor.ui.widgets.theme import BASE_POINT_SIZE, LARGE_FACTOR, Theme, current_theme

BLOCKED_TEXT = "Dosing blocked until a baseline set is recorded"
NONE_TEXT = "No check due"
STATES = ("upcoming", "due", "overdue", "none")
MAIN_POINT_SIZE = 26  # about 9 mm cap height on a laptop panel: readable from two metres
MAIN_LARGE_FACTOR = 1.15


def format_countdown(seconds: float) -> str:
    """``m:ss`` below an hour, ``h:mm:ss`` above; always unsigned (the words give the sign)."""
    total = int(abs(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def schedule_stylesheet(theme: Theme, large: bool = False) -> str:
    """Colours per state; the widget's own sheet so it wins over the application's."""
    scale = LARGE_FACTOR if large else 1.0
    # Already the largest line on screen: large type grows it less than the rest, so it stays
    # on one or two lines beside the big numbers at 1280 px.
    main = round(MAIN_POINT_SIZE * (MAIN_LARGE_FACTOR if large else 1.0))
    small = round(BASE_POINT_SIZE * 1.15 * scale)
    return f"""
    QFrame#SchedulePanel {{
        background: {theme.panel}; border: 1px solid {theme.border}; border-radius: 6px;
    }}
    QFrame#SchedulePanel[state="due"] {{ border: 3px solid {theme.warn}; }}
    QFrame#SchedulePanel[state="overdue"] {{
        background: {theme.error_bg}; border: 4px solid {theme.error_text};
    }}
    QLabel#ScheduleMain {{
        font-size: {main}pt; font-weight: bold; color: {theme.text}; background: transparent;
        border: none;
    }}
    QLabel#ScheduleMain[state="due"] {{ color: {theme.warn}; }}
    QLabel#ScheduleMain[state="overdue"] {{ color: {theme.error_text}; }}
    QLabel#ScheduleMain[state="none"] {{ color: {theme.muted}; font-weight: normal; }}
    QLabel#ScheduleDetail {{
        font-size: {small}pt; color: {theme.muted}; background: transparent; border: none;
    }}
    QLabel#ScheduleBlocked {{
        font-size: {small}pt; color: {theme.warn}; font-weight: bold; background: transparent;
        border: none;
    }}
    """


class FitLabel(QLabel):
    """A word-wrapped label that reserves the height its text needs at its current width.

    A layout squeezed for height would otherwise clip the wrapped second line of the very text
    that must be read from across the room.
    """

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:  # large type: the same text wraps anew
            self._fit()

    def setText(self, text: str) -> None:
        if text == self.text():
            return  # nothing to wrap again (this runs at every save and clock tick)
        super().setText(text)
        self._fit()

    def _fit(self) -> None:
        # Only once a layout has placed it: before that its width is a meaningless default.
        if not self.testAttribute(Qt.WidgetAttribute.WA_Resized) or self.width() <= 0:
            return
        # The text's own wrapped height at the width it has: QLabel.heightForWidth answered a
        # line too many for the large font, leaving a blank line the big numbers needed.
        width = self.contentsRect().width()
        flags = int(Qt.TextFlag.TextWordWrap)
        box = self.fontMetrics().boundingRect(0, 0, width, 10_000, flags, self.text())
        margins = self.contentsMargins()
        needed = box.height() + margins.top() + margins.bottom()
        if needed != self.minimumHeight():
            self.setMinimumHeight(needed)
            # A constraint changed during the layout's own pass is lost; re-ask afterwards.
            QTimer.singleShot(0, self, self.updateGeometry)


def fit_window_height(window: QWidget) -> None:
    """Grow a window to the height its wrapped labels need at its current width.

    Qt sizes a top-level window from its layout's minimum, which ignores height-for-width, so a
    dialog with wrapped text can open too short and squeeze those lines over each other.
    """
    layout = window.layout()
    if layout is None or not layout.hasHeightForWidth():
        return
    needed = layout.totalHeightForWidth(window.width())
    if needed > window.height():
        window.resize(window.width(), needed)


class SchedulePanel(QFrame):
    """Shows a :class:`ScheduleState` as one big sentence plus a small detail line.

    The dynamic property ``state`` ("upcoming", "due", "overdue", "none") is set on the panel and
    its main line so a stylesheet can colour them; :meth:`apply_theme` installs such a sheet.
    """

    def __init__(self, parent: QWidget | None = None, *, night: bool = False) -> None:
        super().__init__(parent)
        self.setObjectName("SchedulePanel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 4, 12, 4)
        layout.setSpacing(0)
        self.main = FitLabel(NONE_TEXT, self)
        self.main.setObjectName("ScheduleMain")
        self.main.setWordWrap(True)
        self.main.setAccessibleName("Next check")
        self.detail = QLabel("", self)
        self.detail.setObjectName("ScheduleDetail")
        self.detail.hide()
        self.blocked = QLabel(f"⚠ {BLOCKED_TEXT}", self)
        self.blocked.setObjectName("ScheduleBlocked")
        self.blocked.setWordWrap(True)
        self.blocked.hide()
        layout.addWidget(self.main)
        layout.addWidget(self.detail)
        layout.addWidget(self.blocked)
        self._state = ""
        self._set_state("none")
        self.apply_theme(night)

    # --- public API ----------------------------------------------------------------------

    def apply_theme(self, night: bool, large: bool = False) -> None:
        """Install the state colours of the day or night theme (and large type if asked)."""
        self.setStyleSheet(schedule_stylesheet(current_theme(night), large))

    def show_state(self, state: ScheduleState | None, now: datetime) -> None:
        """Show the next check as of ``now``; the times come from the check's ``due_at``."""
        check = state.next_check if state is not None else None
        if state is None or check is None or state.status == "none":
            self.main.setText(NONE_TEXT)
            self.detail.hide()
            self._set_state("none")
        else:
            seconds = (check.due_at - now).total_seconds()
            local_due = check.due_at.astimezone().strftime("%H:%M")
            if state.status == "upcoming":
                left = format_countdown(math.ceil(max(seconds, 0)))
                self.main.setText(f"Next check: {check.label} in {left}")
                self.detail.setText(f"Due at {local_due}")
            elif state.status == "due":
                self.main.setText(f"DUE NOW: {check.label}")
                self.detail.setText(f"Due since {local_due}")
            else:
                late = format_countdown(max(-seconds, 0))
                self.main.setText(f"⚠ OVERDUE by {late}: {check.label}")
                self.detail.setText(f"Was due at {local_due}")
            self.detail.show()
            self._set_state(state.status)
        self.blocked.setVisible(bool(state is not None and state.dosing_blocked))
        self.main.setToolTip(self.main.text())

    def text(self) -> str:
        """The main line, as shown."""
        return self.main.text()

    def state(self) -> str:
        """ "upcoming", "due", "overdue" or "none"."""
        return self._state

    def blocked_shown(self) -> bool:
        """True while the "dosing blocked" line is part of the panel."""
        return not self.blocked.isHidden()

    # --- internals -----------------------------------------------------------------------

    def _set_state(self, state: str) -> None:
        # Re-polished only when the state changes: show_state runs at every save and clock
        # tick, and a re-polish re-lays out and repaints the whole panel.
        if state == self._state:
            return
        self._state = state
        for widget in (self, self.main):
            widget.setProperty("state", state)
            widget.style().unpolish(widget)
            widget.style().polish(widget)
        self.update()


__all__ = [
    "BLOCKED_TEXT",
    "NONE_TEXT",
    "FitLabel",
    "SchedulePanel",
    "fit_window_height",
    "format_countdown",
]
