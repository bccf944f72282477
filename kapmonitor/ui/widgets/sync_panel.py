"""The status bar's Sync panel (issue 14 item 6): entries waiting, the last success, the error.

One short line, because it shares the status bar with the device indicator and the messages at
1280 px, in large type too: "Sync ✓ last 14:02 (just now)", "Sync: 42 waiting · last 14:02
(5 min ago)", "⚠ Sync unreachable · 42 waiting · last 14:02 (1 h 5 m ago)". The
failure in whole words ("The clinic server cannot be reached (connection refused at
clinic-pc:5432); 42 entries wait on this laptop …") is the tooltip and the accessible
description, the window says it once in the status bar when it first appears, and a click on
the panel shows it in a box.

It reads without colour (words and a symbol); colour says how urgent, from the day or night
theme: the theme's ok colour, muted while rows wait normally, the warning colour boxed on error.
"""

from __future__ import annotations

from datetime import UTC, datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QLabel, QWidget

from kapmonitor.domain.clock import from_iso
from kapmonitor.ui.widgets.theme import status_chip_style

__all__ = ["SyncPanel", "age_text"]


def age_text(iso: str, now: datetime) -> str:
    """ "14:02 (5 min ago)" in local time; "never" for no success yet."""
    if not iso:
        return "never"
    try:
        when = from_iso(iso)
    except (TypeError, ValueError):
        return "unknown"
    minutes = int(max((now - when).total_seconds(), 0) // 60)
    if minutes < 1:
        ago = "just now"
    elif minutes < 60:
        ago = f"{minutes} min ago"
    elif minutes < 48 * 60:
        ago = f"{minutes // 60} h {minutes % 60} m ago"
    else:
        ago = f"{minutes // (24 * 60)} days ago"
    return f"{when.astimezone():%H:%M} ({ago})"


class SyncPanel(QLabel):
    """Shows a :class:`~kapmonitor.network.background.SyncReport` (duck-typed: the widget layer
    does not import the network package)."""

    #: a click (the whole story in a box: the short line cannot hold the sentence)
    clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SyncPanel")
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.state = "off"  # off / starting / ok / pending / error
        self.pending = 0
        self.last_success = ""
        self.error = ""
        self.short_error = ""
        self._theme_key: tuple[bool, bool] | None = None
        self.apply_theme(False, False)
        self.hide()

    def apply_theme(self, night: bool, large: bool) -> None:
        if self._theme_key == (night, large):
            return
        self._theme_key = (night, large)
        looks = {"ok": "ok", "starting": "plain", "pending": "plain", "error": "warning"}
        self.setStyleSheet(status_chip_style("SyncPanel", "state", looks, night, large))

    def show_off(self) -> None:
        """No server configured: nothing to say, the space goes to the others."""
        self._set("off")
        self.hide()

    def show_starting(self) -> None:
        self._set("starting")
        self.setText("Sync: starting…")
        self.setToolTip("The first sync with the clinic server is under way.")
        self.show()

    def show_report(self, report: object, now: datetime | None = None) -> None:
        """Take a pass's report and redraw."""
        self.pending = int(getattr(report, "pending", 0))
        self.last_success = str(getattr(report, "last_success", ""))
        self.error = str(getattr(report, "error", ""))
        self.short_error = str(getattr(report, "short_error", ""))
        self._set(str(getattr(report, "state", "ok")))
        self.update_age(now)
        self.show()

    def update_age(self, now: datetime | None = None) -> None:
        """Redraw the line (the age moves on every clock tick); unchanged text is not reset."""
        if self.state in ("off", "starting"):
            return
        now = now or datetime.now(UTC)
        last = f"last {age_text(self.last_success, now)}"
        waiting = "? waiting" if self.pending < 0 else f"{self.pending} waiting"
        if self.state == "error":
            text = f"⚠ Sync {self.short_error or 'failed'} · {waiting} · {last}"
            tip = self.error
        elif self.state == "pending":
            text = f"Sync: {waiting} · {last}"
            tip = f"{self.pending} entries wait on this laptop; they go with the next sync."
        else:
            text = f"Sync ✓ {last}"
            tip = "Every entry on this laptop is on the clinic server."
        if text != self.text():
            self.setText(text)
        if tip != self.toolTip():
            self.setToolTip(tip)
            self.setAccessibleDescription(tip)
            self.setAccessibleName(text)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
        super().mousePressEvent(event)

    def _set(self, state: str) -> None:
        if self.state != state:
            self.state = state
        if self.property("state") != state:
            self.setProperty("state", state)
            self.style().unpolish(self)
            self.style().polish(self)
