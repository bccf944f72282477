"""A label for a value that changes every second or every save: a clock, the newest reading.

A plain ``QLabel`` asks its window to lay itself out again at every new text, even when the
text is as wide as the one before: each clock tick and each save re-measured the header, the
panels and the splitters (about 0.6 ms of a bedside save, measured). Qt skips that request for
a widget whose size is fixed, so this label holds its size once shown and gives it up only
when a text no longer fits, or the type changes (large type, night mode, a restyle): then the
window is laid out once more, around the wider text. A held size never cuts a text off, and a
number that grows by a digit does not shift its neighbours back and forth.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSize
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QLabel, QWidget

_ANY_SIZE = 16_777_215  # QWIDGETSIZE_MAX: no maximum


class SteadyLabel(QLabel):
    """A one-line label whose size is held while its texts fit (see the module's note)."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self._widest = text  # the widest text shown since the size was last measured
        self._held: QSize | None = None
        self._refitting = False

    def setText(self, text: str) -> None:
        if text == self.text():
            return
        if self._held is not None and self._fits(text):
            super().setText(text)  # the size is fixed: Qt repaints the label alone
            return
        self._release()
        if self._advance(text) >= self._advance(self._widest):
            self._widest = text
        super().setText(text)
        self._hold()

    def held_size(self) -> QSize | None:
        """The size held now, or ``None`` while the label is free (not shown yet, restyling)."""
        return self._held

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._held is None:
            self._hold()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if self._refitting:
            return
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            # New type: measure again from the text shown, so a label can also shrink.
            self._release()
            self._widest = self.text()
            self._hold()

    def _fits(self, text: str) -> bool:
        return self._advance(text) <= self._advance(self._widest)

    def _advance(self, text: str) -> int:
        return self.fontMetrics().horizontalAdvance(text)

    def _release(self) -> None:
        if self._held is None:
            return
        self._held = None
        self._refitting = True
        try:
            self.setMinimumSize(0, 0)
            self.setMaximumSize(_ANY_SIZE, _ANY_SIZE)
        finally:
            self._refitting = False

    def _hold(self) -> None:
        """Fix the size at what the widest text needs (only once the label is shown, when its
        style sheet's type is known)."""
        if not self.isVisible():
            return
        shown = self.text()
        self._refitting = True
        try:
            if self._widest != shown:  # measured with the widest text, then shown again
                super().setText(self._widest)
            size = self.sizeHint()
            if self._widest != shown:
                super().setText(shown)
            self.setFixedSize(size)
        finally:
            self._refitting = False
        self._held = size
