"""The bedside window's entry buttons: every action visible, wrapping instead of overflowing.

Two QToolBars either hid actions behind "»" or, in large type, set the window's minimum width
beyond a 1280 px screen. Here each action is a flat button in a flow layout: the buttons wrap onto
another row when the window is narrow, and the window never grows to make room. The buttons keep
the normal type size in large type (they are read from the keyboard's distance, not from across
the room), so large type spends the screen on the numbers instead.
"""

from __future__ import annotations

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFrame, QToolButton, QWidget

from kapmonitor.ui.widgets.flow_layout import FlowLayout, flow_policy


class ActionBar(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ActionBar")
        self.flow = FlowLayout(self, spacing=4)
        self.flow.setContentsMargins(2, 2, 2, 2)
        flow_policy(self)
        self.buttons: dict[str, QToolButton] = {}
        self._separator_added = False

    def add(self, action: QAction, course: bool = False) -> QToolButton:
        """One button per action; the first of the session's course actions starts a group."""
        button = QToolButton(self)
        button.setDefaultAction(action)
        button.setObjectName("CourseButton" if course else "EntryButton")
        if course and not self._separator_added:
            gap = QFrame(self)
            gap.setObjectName("ActionGap")
            gap.setFixedSize(10, 1)
            self.flow.addWidget(gap)
            self._separator_added = True
        self.flow.addWidget(button)
        self.buttons[action.text()] = button
        return button
