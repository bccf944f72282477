"""The status bar's device indicator: one short line per device, in words and colour.

Issue 13 item 4. Each line says the device and its state in words ("MX450-0001: probe off 12 s"),
so it reads without colour; the colour and the symbol say how urgent: a quiet dot when connected,
a warning triangle (the theme's warning colour) for no data / probe off / disconnected, and a
filled, boxed ALARM line (the theme's error colours, bold) once the protocol's no-data alarm
time has passed. Why not the alarm banner: the banner shows stored alarm rows and acknowledging
one writes the record, while "no data" is the absence of a measurement, not a clinical finding;
so the indicator carries its own alarm state, as loud as the banner's critical line.

The lines are the whole state (the feed recomputes them on every clock tick); a line whose text
and level did not change is not touched, so the status bar does not flicker at 1 Hz.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from kapmonitor.ui.widgets.theme import status_chip_style

__all__ = ["LEVEL_SYMBOLS", "DeviceStatusBar"]

LEVEL_SYMBOLS = {"ok": "●", "warning": "▲", "alarm": "■"}
MAX_LINE_CHARS = 46  # a long device id is elided, so two lines fit beside the status message


class DeviceStatusBar(QWidget):
    """The device lines, for a window's status bar (``addPermanentWidget``)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("DeviceStatus")
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(10)
        self._labels: list[QLabel] = []
        self._shown: list[tuple[str, str]] = []
        self._theme_key: tuple[bool, bool] | None = None
        self.apply_theme(False, False)
        self.hide()

    def apply_theme(self, night: bool, large: bool) -> None:
        """Colours from the day or night theme; type a little larger in large type."""
        if self._theme_key == (night, large):
            return
        self._theme_key = (night, large)
        looks = {"ok": "ok", "warning": "warning", "alarm": "alarm"}
        self.setStyleSheet(status_chip_style("DeviceLine", "level", looks, night, large))

    def set_lines(self, lines: Sequence[tuple[str, str]]) -> None:
        """Show ``(text, level)`` lines, level one of ok / warning / alarm; none: hidden."""
        wanted = [(text, level) for text, level in lines]
        if wanted == self._shown:
            return
        self._shown = wanted
        while len(self._labels) < len(wanted):
            label = QLabel(self)
            label.setObjectName("DeviceLine")
            self._layout.addWidget(label)
            self._labels.append(label)
        for label, (text, level) in zip(self._labels, wanted, strict=False):
            shown = text if len(text) <= MAX_LINE_CHARS else text[: MAX_LINE_CHARS - 1] + "…"
            label.setText(f"{LEVEL_SYMBOLS.get(level, '●')} {shown}")
            label.setToolTip(text)
            label.setAccessibleName(f"{level}: {text}")
            if label.property("level") != level:
                label.setProperty("level", level)
                label.style().unpolish(label)
                label.style().polish(label)
            label.show()
        for label in self._labels[len(wanted) :]:
            label.hide()
        self.setVisible(bool(wanted))

    def lines(self) -> list[tuple[str, str]]:
        """What is shown: each line's full text and level (for tests and the screen reader)."""
        return list(self._shown)
