"""A number field that remembers the last stored value: Up arrow brings it back.

At the bedside most readings change little between checks; one key beats retyping.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QLineEdit, QWidget


class RecallLineEdit(QLineEdit):
    def __init__(self, parent: QWidget | None = None, placeholder: str = "") -> None:
        super().__init__(parent)
        self._recall = ""
        self._placeholder = placeholder
        self.setPlaceholderText(placeholder)

    def set_recall(self, value: str) -> None:
        self._recall = value
        if value:
            self.setPlaceholderText(f"last {value} (↑ to reuse)")
        else:
            self.setPlaceholderText(self._placeholder)

    def recall(self) -> str:
        return self._recall

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Up and self._recall:
            self.setText(self._recall)
            self.selectAll()
            return
        super().keyPressEvent(event)
