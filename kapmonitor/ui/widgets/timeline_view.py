"""The session's timeline: every entry in clinical order, corrections beside what they correct.

Nothing is hidden: a superseded entry stays, marked in words (not only by style), and its
correction shows the reason. Appending a saved entry inserts one row (no reset), so the view
stays put while the therapist works.
"""

from __future__ import annotations

import bisect
from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSize, Qt
from PySide6.QtGui import QFont, QResizeEvent
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from kapmonitor.domain.clock import format_duration
from kapmonitor.domain.timeline import TimelineItem

COLUMNS = ("Time", "Since dose", "Entry", "Details", "By", "Status")
Index = QModelIndex | QPersistentModelIndex


class TimelineModel(QAbstractTableModel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.items: list[TimelineItem] = []
        self._keys: list[tuple[datetime, datetime]] = []
        self.superseded: dict[tuple[str, int], int] = {}
        self.origin: datetime | None = None
        self.status_in_details = False  # narrow view: the status column is hidden

    # --- filling --------------------------------------------------------------------------

    def reset(self, items: list[TimelineItem], origin: datetime | None) -> None:
        self.beginResetModel()
        self.items = sorted(items, key=_key)
        self._keys = [_key(i) for i in self.items]  # kept beside items: append is O(log n)
        self.origin = origin
        self.superseded = {
            (i.table, i.supersedes_id): i.row_id for i in self.items if i.supersedes_id is not None
        }
        self.endResetModel()

    def append(self, item: TimelineItem) -> int:
        key = _key(item)
        position = bisect.bisect_right(self._keys, key)
        self.beginInsertRows(QModelIndex(), position, position)
        self.items.insert(position, item)
        self._keys.insert(position, key)
        self.endInsertRows()
        return position

    def set_origin(self, origin: datetime | None) -> None:
        self.origin = origin
        if self.items:
            self.dataChanged.emit(self.index(0, 1), self.index(len(self.items) - 1, 1))

    # --- Qt model -------------------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.items)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        item = self.items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(item, index.column())
        if role == Qt.ItemDataRole.ToolTipRole:
            # The whole entry, whatever the column's width cut off at the bedside layout.
            recorded = item.recorded_at.astimezone().strftime("%H:%M:%S")
            status = self.status(item)
            return "\n".join(
                line
                for line in (
                    f"#{item.row_id} {item.kind}: {self._text(item, 3)}",
                    status,
                    f"Recorded {recorded} by {item.recorded_by} (entry #{item.row_id})",
                )
                if line
            )
        if role == Qt.ItemDataRole.FontRole and self.is_superseded(item):
            font = QFont()
            font.setStrikeOut(True)
            font.setItalic(True)
            return font
        return None

    def is_superseded(self, item: TimelineItem) -> bool:
        return (item.table, item.row_id) in self.superseded

    def status(self, item: TimelineItem) -> str:
        bits = []
        if self.is_superseded(item):
            bits.append(f"superseded by #{self.superseded[(item.table, item.row_id)]}")
        if item.supersedes_id is not None:
            verb = "withdraws" if item.voided else "corrects"
            bits.append(f"{verb} #{item.supersedes_id}: {item.correction_reason}")
        if item.late:
            minutes = round((item.recorded_at - item.observed_at).total_seconds() / 60)
            bits.append(f"late entry (+{minutes} min)")
        return "; ".join(bits)

    def _text(self, item: TimelineItem, column: int) -> str:
        if column == 0:
            return item.observed_at.astimezone().strftime("%H:%M:%S")
        if column == 1:
            if self.origin is None:
                return ""
            return format_duration((item.observed_at - self.origin).total_seconds())
        if column == 2:
            return f"#{item.row_id} {item.kind}"
        if column == 3:
            text = "[withdrawn] " + item.summary if item.voided else item.summary
            status = self.status(item) if self.status_in_details else ""
            return f"{text} [{status}]" if status else text
        if column == 4:
            return item.recorded_by
        return self.status(item)


def _key(item: TimelineItem) -> tuple[datetime, datetime]:
    return (item.observed_at, item.recorded_at)


STATUS_WIDTH = 160
NARROW_WIDTH = 900
MIN_VISIBLE_ROWS = 2


class TimelineView(QTableView):
    def __init__(self, parent: QWidget | None = None, compact: bool = False) -> None:
        """``compact``: the bedside's timeline, which drops columns when squeezed."""
        super().__init__(parent)
        self.compact = compact
        self.timeline = TimelineModel(self)
        self.setModel(self.timeline)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.verticalHeader().hide()
        self.setWordWrap(False)
        header = self.horizontalHeader()
        for column in (0, 1, 2, 4):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(5, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(5, STATUS_WIDTH)
        # The details column takes what is left; no sideways scrolling at the bedside.
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setToolTip("Select an entry and press C to correct it")

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Narrow (large type, the chart beside): the details column keeps the room.

        "Since dose" repeats the chart's axis and the status repeats in the details' tooltip
        and the struck-out font, so those two columns go first.
        """
        super().resizeEvent(event)
        if not self.compact:
            return
        narrow = event.size().width() < NARROW_WIDTH
        self.timeline.status_in_details = narrow
        for column in (1, 5):
            self.setColumnHidden(column, narrow)

    def minimumSizeHint(self) -> QSize:
        """The column headings and the latest rows: what the timeline keeps when squeezed."""
        rows = self.verticalHeader().defaultSectionSize() * MIN_VISIBLE_ROWS
        height = self.horizontalHeader().sizeHint().height() + rows + 2 * self.frameWidth()
        return QSize(super().minimumSizeHint().width(), height)

    def selected_item(self) -> TimelineItem | None:
        rows = self.selectionModel().selectedRows()
        if not rows:
            return None
        return self.timeline.items[rows[0].row()]

    def show_item(self, position: int) -> None:
        self.scrollTo(self.timeline.index(position, 0))
