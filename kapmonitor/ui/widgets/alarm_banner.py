"""Every unacknowledged alarm, most urgent first, until someone acknowledges it.

Alarms are visual first (the patient is masked and listening to music), so the banner is the
alarm: each line carries a symbol and the priority word in capitals as well as a colour, the
message, and the local time it was raised. A critical line is the largest and heaviest thing on
the screen. Acknowledging is one button per line, or the K key for the top line (bound by the
window, which asks :meth:`AlarmBanner.first_alarm_id`).
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from kapmonitor.domain.clock import from_iso
from kapmonitor.ui.widgets.theme import BASE_POINT_SIZE, LARGE_FACTOR, Theme, current_theme

# priority -> (rank, symbol, word). Higher rank shows first.
PRIORITY_STYLE: dict[str, tuple[int, str, str]] = {
    "critical": (3, "▲", "CRITICAL"),
    "warning": (2, "●", "WARNING"),
    "advisory": (1, "○", "ADVISORY"),
}
ACK_SHORTCUT = "K"
SOUND_OFF_NOTE = "critical-alarm sound is off"
MESSAGE_MIN_WIDTH = 160
BANNER_LARGE_FACTOR = 1.15
# Alarm lines in view at once (normal type, large type); more scroll, and the header counts them.
VISIBLE_ROWS = 2
VISIBLE_ROWS_LARGE = 1


def priority_tag(priority: str) -> str:
    """Symbol and word, e.g. ``"▲ CRITICAL"``; an unknown priority still reads as a word."""
    _, symbol, word = PRIORITY_STYLE.get(priority, (0, "○", priority.upper()))
    return f"{symbol} {word}"


def local_hhmm(iso_utc: str) -> str:
    """A stored UTC time as the clinician's local ``HH:MM``."""
    return from_iso(iso_utc).astimezone().strftime("%H:%M")


def sort_alarms(alarms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Unacknowledged only, highest priority first, then the longest-waiting first."""
    waiting = [a for a in alarms if not a.get("acknowledged_at") and not a.get("acknowledged")]
    waiting.sort(key=lambda a: (a.get("observed_at") or "", a["id"]))
    waiting.sort(key=lambda a: PRIORITY_STYLE.get(a.get("priority", ""), (0,))[0], reverse=True)
    return waiting


def banner_stylesheet(theme: Theme, large: bool = False) -> str:
    scale = LARGE_FACTOR if large else 1.0
    # The lines grow less than the rest in large type: a long message at 20 pt took four lines
    # and pushed the Acknowledge button out of a 720 px screen's reach.
    lines = BANNER_LARGE_FACTOR if large else 1.0
    critical = round(15 * lines)
    warning = round(13 * lines)
    advisory = round(BASE_POINT_SIZE * 1.1 * scale)
    small = round(BASE_POINT_SIZE * scale)
    return f"""
    QFrame#AlarmBanner {{ background: transparent; border: none; }}
    QLabel#AlarmHeader {{ color: {theme.muted}; font-size: {small}pt; }}
    QFrame#AlarmRow {{
        background: {theme.panel}; border: 1px solid {theme.border}; border-radius: 4px;
    }}
    QFrame#AlarmRow QLabel {{ background: transparent; border: none; }}
    QFrame#AlarmRow[priority="critical"] {{
        background: {theme.error_bg}; border: 2px solid {theme.error_text};
        border-left: 12px solid {theme.error_text};
    }}
    QFrame#AlarmRow[priority="critical"] QLabel {{
        color: {theme.error_text}; font-size: {critical}pt; font-weight: bold;
    }}
    QFrame#AlarmRow[priority="warning"] {{ border-left: 8px solid {theme.warn}; }}
    QFrame#AlarmRow[priority="warning"] QLabel {{ font-size: {warning}pt; }}
    QFrame#AlarmRow[priority="warning"] QLabel#AlarmTag {{
        color: {theme.warn}; font-weight: bold;
    }}
    QFrame#AlarmRow[priority="advisory"] {{ border-left: 4px solid {theme.muted}; }}
    QFrame#AlarmRow[priority="advisory"] QLabel {{ font-size: {advisory}pt; }}
    QFrame#AlarmRow[priority="advisory"] QLabel#AlarmTag {{ color: {theme.muted}; }}
    QFrame#AlarmRow QLabel#AlarmTime {{ font-size: {small}pt; font-weight: normal; }}
    """


def _row_height(row: QWidget, width: int) -> int:
    layout = row.layout()
    if layout is not None and layout.hasHeightForWidth():
        return max(layout.totalHeightForWidth(width), row.minimumSizeHint().height())
    return row.sizeHint().height()


class AlarmBanner(QFrame):
    """A stack of alarm lines; hidden while nothing waits for acknowledgement."""

    acknowledge_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None, *, night: bool = False) -> None:
        super().__init__(parent)
        self.setObjectName("AlarmBanner")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(4)
        self.header = QLabel("", self)
        self.header.setObjectName("AlarmHeader")
        self.header.setWordWrap(True)
        self._layout.addWidget(self.header)
        # The rows scroll inside a box about two lines high: five waiting alarms must not push
        # the big numbers off a 720 px screen. The most urgent is always on top and in view.
        self._rows_box = QWidget(self)
        self._rows_box.setObjectName("AlarmRows")
        self._rows_layout = QVBoxLayout(self._rows_box)
        self._rows_layout.setContentsMargins(0, 0, 0, 0)
        self._rows_layout.setSpacing(4)
        self.scroll = QScrollArea(self)
        self.scroll.setObjectName("AlarmScroll")
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(self._rows_box)
        self._layout.addWidget(self.scroll)
        self._rows: list[QFrame] = []
        self._visible_rows = VISIBLE_ROWS
        self._alarms: list[dict[str, Any]] = []
        self._shown_key: tuple[Any, ...] | None = None
        self._sound_off = False
        self.buttons: list[QPushButton] = []
        self.apply_theme(night)
        self.hide()

    # --- public API ----------------------------------------------------------------------

    def apply_theme(self, night: bool, large: bool = False) -> None:
        self.setStyleSheet(banner_stylesheet(current_theme(night), large))
        self._visible_rows = VISIBLE_ROWS_LARGE if large else VISIBLE_ROWS
        self._fit_rows()

    def set_alarms(self, alarms: list[dict[str, Any]]) -> None:
        """Show these stored alarm rows (acknowledged ones, if passed, are left out).

        Calling it again with the same alarms changes nothing, so a window can call it on every
        clock tick without stealing keyboard focus from an Acknowledge button.
        """
        ordered = sort_alarms(alarms)
        key = tuple(
            (a["id"], a.get("priority"), a.get("message"), a.get("observed_at")) for a in ordered
        )
        if key == self._shown_key:
            return
        self._shown_key = key
        self._alarms = ordered
        if len(ordered) == len(self._rows) and all(
            row.property("alarm_id") == int(a["id"])
            and row.property("priority") == str(a.get("priority", ""))
            for row, a in zip(self._rows, ordered, strict=True)
        ):
            # The same alarms in the same order, only their words changed (a device alarm
            # that later readings continue shows the newest value, once a second during a
            # desaturation): the rows are filled again in place. Rebuilding every row widget
            # cost about 5 ms a message, and took the keyboard focus off an Acknowledge button
            # each time.
            for index, (row, alarm) in enumerate(zip(self._rows, ordered, strict=True)):
                self._fill_row(row, alarm, top=index == 0)
            self._fit_rows()
            return
        for row in self._rows:
            self._rows_layout.removeWidget(row)
            row.hide()
            row.deleteLater()
        self._rows = []
        self.buttons = []
        for index, alarm in enumerate(ordered):
            row = self._make_row(alarm, top=index == 0)
            self._rows_layout.addWidget(row)
            self._rows.append(row)
        self._fit_rows()
        count = len(ordered)
        self._show_header()
        self.setVisible(count > 0)

    def set_sound_off(self, off: bool) -> None:
        """Say on the banner that the critical-alarm sound was turned off on this laptop, so a
        colleague arriving at the bedside does not wait for a beep that will not come."""
        if off != self._sound_off:
            self._sound_off = off
            self._show_header()

    def _show_header(self) -> None:
        count = len(self._alarms)
        text = (
            f"{count} alarm{'s' if count != 1 else ''} waiting for acknowledgement "
            f"— {ACK_SHORTCUT} acknowledges the top one"
        )
        self.header.setText(f"{text} — {SOUND_OFF_NOTE}" if self._sound_off else text)

    def first_alarm_id(self) -> int | None:
        """The alarm the K shortcut acknowledges: the most urgent, longest waiting."""
        return int(self._alarms[0]["id"]) if self._alarms else None

    def alarm_ids(self) -> list[int]:
        """Ids in the order shown."""
        return [int(a["id"]) for a in self._alarms]

    def lines(self) -> list[str]:
        """Each line's text as read aloud: tag, message, time raised."""
        return [
            f"{priority_tag(a.get('priority', ''))} — {a.get('message', '')} — "
            f"raised {local_hhmm(a['observed_at'])}"
            for a in self._alarms
        ]

    # --- internals -----------------------------------------------------------------------

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_rows()

    def _fit_rows(self) -> None:
        """Tall enough for the first rows (all of them when few), scrolling for the rest.

        Each row's height is asked at the width it will have, since a long message wraps.
        """
        shown = self._rows[: self._visible_rows]
        spacing = self._rows_layout.spacing()
        bar = self.scroll.verticalScrollBar().sizeHint().width()
        width = max(self.scroll.viewport().width(), self.width() - bar, 200)
        height = sum(_row_height(r, width) for r in shown) + spacing * max(0, len(shown) - 1)
        if height != self.scroll.height():
            self.scroll.setFixedHeight(max(height, 0))
        self.scroll.setVerticalScrollBarPolicy(
            Qt.ScrollBarPolicy.ScrollBarAsNeeded
            if len(self._rows) > self._visible_rows
            else Qt.ScrollBarPolicy.ScrollBarAlwaysOff
        )

    def _make_row(self, alarm: dict[str, Any], top: bool) -> QFrame:
        priority = str(alarm.get("priority", ""))
        row = QFrame(self)
        row.setObjectName("AlarmRow")
        row.setProperty("priority", priority)
        alarm_id = int(alarm["id"])
        row.setProperty("alarm_id", alarm_id)
        layout = QHBoxLayout(row)
        layout.setContentsMargins(8, 3, 6, 3)
        layout.setSpacing(8)
        tag = QLabel(priority_tag(priority), row)
        tag.setObjectName("AlarmTag")
        message = QLabel(row)
        message.setObjectName("AlarmMessage")
        message.setTextFormat(Qt.TextFormat.RichText)
        message.setWordWrap(True)
        message.setMinimumWidth(MESSAGE_MIN_WIDTH)
        message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        when = QLabel(row)
        when.setObjectName("AlarmTime")
        button = QPushButton("Acknowledge", row)
        button.setObjectName("AlarmAck")
        button.setAutoDefault(False)
        button.clicked.connect(lambda _=False, i=alarm_id: self.acknowledge_requested.emit(i))
        # The time sits over the button: side by side they took the width the message needs.
        side = QVBoxLayout()
        side.setSpacing(0)
        side.addWidget(when, 0, Qt.AlignmentFlag.AlignRight)
        side.addWidget(button)
        layout.addWidget(tag)
        layout.addWidget(message, 1)
        layout.addLayout(side)
        self.buttons.append(button)
        self._fill_row(row, alarm, top)
        return row

    def _fill_row(self, row: QFrame, alarm: dict[str, Any], top: bool) -> None:
        """The words of one alarm's row: its message, when it was raised, the button's names."""
        priority = str(alarm.get("priority", ""))
        # The first limit crossed is the message; the other limits the same reading crossed
        # ("; also …") follow in smaller type, so one reading stays one or two lines.
        text = str(alarm.get("message", ""))
        main, _, also = text.partition("; also ")
        message = row.findChild(QLabel, "AlarmMessage")
        message.setText(
            html.escape(main)
            + (
                f" <span style='font-size:small; font-weight:normal'>also {html.escape(also)}"
                "</span>"
                if also
                else ""
            )
        )
        message.setToolTip(text)
        row.findChild(QLabel, "AlarmTime").setText(f"raised {local_hhmm(alarm['observed_at'])}")
        button = row.findChild(QPushButton, "AlarmAck")
        button.setToolTip(
            f"Acknowledge this alarm ({ACK_SHORTCUT})" if top else "Acknowledge this alarm"
        )
        button.setAccessibleName(f"Acknowledge {priority_tag(priority)} {text}")


__all__ = ["PRIORITY_STYLE", "AlarmBanner", "local_hhmm", "priority_tag", "sort_alarms"]
