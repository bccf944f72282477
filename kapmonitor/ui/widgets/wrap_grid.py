"""A grid of checkboxes whose number of columns follows the width it is given.

A fixed two-column grid asks for the width of its two widest labels side by side: with large
type that is wider than a dialog can be on a 1280 px screen, so the labels overlapped and were
cut. This layout takes as many columns as fit (up to a preferred number), each as wide as the
widest item, and as many rows as those columns need (height-for-width), so every label is whole
at any width the dialog can take, and the dialog never grows sideways because of it.
"""

from __future__ import annotations

from PySide6.QtCore import QMargins, QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QLayout, QLayoutItem, QStyle, QWidget


class WrapGridLayout(QLayout):
    """Items in reading order, in equal-width columns: as many as fit, at most ``columns``."""

    def __init__(self, parent: QWidget | None = None, columns: int = 2) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self.preferred_columns = max(1, columns)
        self.setContentsMargins(0, 0, 0, 0)

    # --- QLayout's item protocol ----------------------------------------------------------

    def addItem(self, item: QLayoutItem) -> None:
        self._items.append(item)
        self.invalidate()

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:
        if 0 <= index < len(self._items):
            self.invalidate()
            return self._items.pop(index)
        return None

    # --- spacing ----------------------------------------------------------------------------

    def _gap(self, orientation: Qt.Orientation) -> int:
        """The layout's own spacing, or the style's between two controls."""
        if self.spacing() >= 0:
            return self.spacing()
        parent = self.parentWidget()
        if parent is None:
            return 6
        metric = (
            QStyle.PixelMetric.PM_LayoutHorizontalSpacing
            if orientation == Qt.Orientation.Horizontal
            else QStyle.PixelMetric.PM_LayoutVerticalSpacing
        )
        return max(0, parent.style().pixelMetric(metric, None, parent))

    # --- geometry -------------------------------------------------------------------------

    def _visible(self) -> list[QLayoutItem]:
        return [item for item in self._items if not item.isEmpty()]

    def cell_width(self) -> int:
        """Every column is as wide as the widest item wants, so no label is cut."""
        return max((item.sizeHint().width() for item in self._visible()), default=0)

    def _row_height(self) -> int:
        return max((item.sizeHint().height() for item in self._visible()), default=0)

    def columns_for(self, width: int) -> int:
        """How many columns fit ``width`` (outer, with margins): at least one."""
        visible = len(self._visible())
        if visible == 0:
            return 1
        margins: QMargins = self.contentsMargins()
        inner = width - margins.left() - margins.right()
        gap = self._gap(Qt.Orientation.Horizontal)
        fitting = (inner + gap) // max(1, self.cell_width() + gap)
        return max(1, min(self.preferred_columns, visible, fitting))

    def _rows(self, columns: int) -> int:
        return -(-len(self._visible()) // columns)

    def _height(self, columns: int) -> int:
        rows = self._rows(columns)
        margins: QMargins = self.contentsMargins()
        gaps = self._gap(Qt.Orientation.Vertical) * max(0, rows - 1)
        return rows * self._row_height() + gaps + margins.top() + margins.bottom()

    def _width(self, columns: int) -> int:
        margins: QMargins = self.contentsMargins()
        gaps = self._gap(Qt.Orientation.Horizontal) * max(0, columns - 1)
        return columns * self.cell_width() + gaps + margins.left() + margins.right()

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._height(self.columns_for(width))

    def sizeHint(self) -> QSize:
        columns = max(1, min(self.preferred_columns, len(self._visible())))
        return QSize(self._width(columns), self._height(columns))

    def minimumSize(self) -> QSize:
        """One column: the widest item, everything else goes below."""
        return QSize(self._width(1), self._height(1))

    def expandingDirections(self) -> Qt.Orientation:
        return Qt.Orientation(0)

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        margins: QMargins = self.contentsMargins()
        inner = rect.marginsRemoved(margins)
        columns = self.columns_for(rect.width())
        h_gap = self._gap(Qt.Orientation.Horizontal)
        v_gap = self._gap(Qt.Orientation.Vertical)
        # Spare width is shared out so the columns fill the row, as a grid layout does.
        cell = max(1, (inner.width() - h_gap * (columns - 1)) // columns)
        row_height = self._row_height()
        for index, item in enumerate(self._visible()):
            row, column = divmod(index, columns)
            x = inner.x() + column * (cell + h_gap)
            origin = QPoint(x, inner.y() + row * (row_height + v_gap))
            item.setGeometry(QRect(origin, QSize(cell, row_height)))

    def column_count(self) -> int:
        """Columns at the current width (what a test or a screenshot check reads)."""
        return self.columns_for(self.geometry().width())
