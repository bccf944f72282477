"""The session's timeline: every entry in clinical order, corrections beside what they correct.

Nothing is hidden: a superseded entry stays, marked in words (not only by style), and its
correction shows the reason. Appending a saved entry inserts one row (no reset), so the view
stays put while the therapist works.
"""

from __future__ import annotations

import bisect
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, overload

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSize, Qt
from PySide6.QtGui import QFont, QResizeEvent
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from kapmonitor.domain.clock import format_duration, from_iso
from kapmonitor.domain.reference import Reference
from kapmonitor.domain.session_rows import StoredRow
from kapmonitor.domain.timeline import HIDDEN_TABLES, TimelineItem, timeline_item

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


#: Reads stored rows of one table by id (the store's ``rows_by_id``): how a page is filled.
FetchRows = Callable[[str, Sequence[int]], Sequence[Mapping[str, Any]]]
PAGE_ROWS = 64  # rows read around a missing one: a screenful and a scroll either way
CACHED_ITEMS = 512  # timeline lines kept built; the rest are read again when shown


class _Keys(Sequence[tuple[float, float]]):
    """The paged model's sort keys, as a sequence ``bisect`` can search."""

    def __init__(self, model: PagedTimelineModel) -> None:
        self.model = model

    def __len__(self) -> int:
        return len(self.model._ids)

    @overload
    def __getitem__(self, position: int) -> tuple[float, float]: ...
    @overload
    def __getitem__(self, position: slice) -> Sequence[tuple[float, float]]: ...
    def __getitem__(self, position: int | slice) -> Any:
        if isinstance(position, slice):
            return [self[i] for i in range(*position.indices(len(self)))]
        return (self.model._observed[position], self.model._recorded[position])


class _Items(Sequence[TimelineItem]):
    """``model.items`` of the paged model: each line built (or read) when asked for."""

    def __init__(self, model: PagedTimelineModel) -> None:
        self.model = model

    def __len__(self) -> int:
        return len(self.model._ids)

    @overload
    def __getitem__(self, position: int) -> TimelineItem: ...
    @overload
    def __getitem__(self, position: slice) -> Sequence[TimelineItem]: ...
    def __getitem__(self, position: int | slice) -> Any:
        if isinstance(position, slice):
            return [self[i] for i in range(*position.indices(len(self)))]
        if position < 0:
            position += len(self)
        if not 0 <= position < len(self):
            raise IndexError(position)
        return self.model.item_at(position)

    def __iter__(self) -> Iterator[TimelineItem]:
        return (self[i] for i in range(len(self)))

    def __reversed__(self) -> Iterator[TimelineItem]:
        return (self[i] for i in range(len(self) - 1, -1, -1))

    def index(self, value: Any, start: int = 0, stop: int | None = None) -> int:
        found = self.model.position_of(value.table, value.row_id)
        if found is None:
            raise ValueError(f"{value!r} is not in the timeline")
        return found


class PagedTimelineModel(TimelineModel):
    """The bedside timeline without every line in memory: a three-hour record at one reading
    per second is 21,600 lines, and holding each as a built item (plus its row) was most of
    what the window grew by in the third hour.

    Per line it keeps only its place: two times, the table and the row id, in flat arrays
    (about 25 bytes). A line is built when Qt asks for it, from rows read by id a page at a
    time (:data:`FetchRows`), and the last :data:`CACHED_ITEMS` built lines are kept. A saved
    entry is appended with the item built from the row its save returned, so showing it reads
    nothing. Corrections are rare and kept in full (:attr:`superseded`)."""

    def __init__(self, fetch: FetchRows, ref: Reference, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fetch = fetch
        self.ref = ref
        self._tables: list[str] = []
        self._table_codes: dict[str, int] = {}
        self._codes = array("b")
        self._ids = array("q")
        self._observed = array("d")
        self._recorded = array("d")
        self._cache: OrderedDict[tuple[str, int], TimelineItem] = OrderedDict()
        self.items = _Items(self)  # type: ignore[assignment]  # a read-only lazy sequence

    # --- filling --------------------------------------------------------------------------

    def reset(self, items: list[TimelineItem], origin: datetime | None) -> None:
        self.beginResetModel()
        ordered = sorted(items, key=_key)
        self._codes, self._ids = array("b"), array("q")
        self._observed, self._recorded = array("d"), array("d")
        self._cache.clear()
        for item in ordered:
            self._codes.append(self._code(item.table))
            self._ids.append(item.row_id)
            self._observed.append(item.observed_at.timestamp())
            self._recorded.append(item.recorded_at.timestamp())
        for item in ordered[-CACHED_ITEMS:]:
            self._remember(item)
        self.origin = origin
        self.superseded = {
            (i.table, i.supersedes_id): i.row_id for i in ordered if i.supersedes_id is not None
        }
        self.endResetModel()

    def reset_rows(self, rows: Mapping[str, Sequence[StoredRow]], origin: datetime | None) -> None:
        """:meth:`reset` from a session's stored rows, building only the lines kept.

        The same lines as ``reset(timeline(rows, ref), origin)``, in the same order, but only
        each row's place is worked out for every row: building all 21,600 lines of a
        three-hour 1 Hz record (each with its summary) to keep 512 took about a third of
        opening the session in the window."""
        places: list[tuple[float, float, int, str, StoredRow]] = []
        for table, table_rows in rows.items():
            if table in HIDDEN_TABLES:
                continue
            for row in table_rows:
                observed = from_iso(row.observed_at).timestamp()
                recorded = from_iso(row.recorded_at).timestamp()
                places.append((observed, recorded, len(places), table, row))
        places.sort(key=lambda place: place[:3])  # as timeline(): stable on equal times
        self.beginResetModel()
        self._codes, self._ids = array("b"), array("q")
        self._observed, self._recorded = array("d"), array("d")
        self._cache.clear()
        self.superseded = {}
        for observed, recorded, _seq, table, row in places:
            self._codes.append(self._code(table))
            self._ids.append(row.id)
            self._observed.append(observed)
            self._recorded.append(recorded)
            if row.supersedes_id is not None:
                self.superseded[(table, row.supersedes_id)] = row.id
        for _observed, _recorded, _seq, table, row in places[-CACHED_ITEMS:]:
            self._remember(timeline_item(table, row, self.ref))
        self.origin = origin
        self.endResetModel()

    def append(self, item: TimelineItem) -> int:
        key = (item.observed_at.timestamp(), item.recorded_at.timestamp())
        position = bisect.bisect_right(_Keys(self), key)
        self.beginInsertRows(QModelIndex(), position, position)
        self._codes.insert(position, self._code(item.table))
        self._ids.insert(position, item.row_id)
        self._observed.insert(position, key[0])
        self._recorded.insert(position, key[1])
        if item.supersedes_id is not None:
            self.superseded[(item.table, item.supersedes_id)] = item.row_id
        self._remember(item)
        self.endInsertRows()
        return position

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._ids)

    def set_origin(self, origin: datetime | None) -> None:
        self.origin = origin
        if len(self._ids):
            self.dataChanged.emit(self.index(0, 1), self.index(len(self._ids) - 1, 1))

    # --- lines on demand ------------------------------------------------------------------

    def item_at(self, position: int) -> TimelineItem:
        key = (self._tables[self._codes[position]], self._ids[position])
        found = self._cache.get(key)
        if found is None:
            self._read_page(position)
            found = self._cache[key]
        else:
            self._cache.move_to_end(key)
        return found

    def position_of(self, table: str, row_id: int) -> int | None:
        code = self._table_codes.get(table)
        for position in range(len(self._ids) - 1, -1, -1):  # what is sought is usually recent
            if self._ids[position] == row_id and self._codes[position] == code:
                return position
        return None

    def _read_page(self, position: int) -> None:
        start = max(0, position - PAGE_ROWS // 2)
        wanted: dict[str, list[int]] = {}
        for at in range(start, min(len(self._ids), start + PAGE_ROWS)):
            key = (self._tables[self._codes[at]], self._ids[at])
            if key not in self._cache or at == position:
                wanted.setdefault(key[0], []).append(key[1])
        for table, ids in wanted.items():
            for row in self.fetch(table, ids):
                self._remember(timeline_item(table, row, self.ref))

    def _remember(self, item: TimelineItem) -> None:
        self._cache[(item.table, item.row_id)] = item
        self._cache.move_to_end((item.table, item.row_id))
        while len(self._cache) > CACHED_ITEMS:
            self._cache.popitem(last=False)

    def _code(self, table: str) -> int:
        code = self._table_codes.get(table)
        if code is None:
            code = self._table_codes[table] = len(self._tables)
            self._tables.append(table)
        return code

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or role not in _ROLES:
            return None  # no line is read for a role nobody shows
        return super().data(index, role)


_ROLES = frozenset(
    {Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.FontRole}
)


STATUS_WIDTH = 160
NARROW_WIDTH = 900
MIN_VISIBLE_ROWS = 2


class TimelineView(QTableView):
    def __init__(
        self,
        parent: QWidget | None = None,
        compact: bool = False,
        model: TimelineModel | None = None,
    ) -> None:
        """``compact``: the bedside's timeline, which drops columns when squeezed; ``model``:
        a paged model (the bedside's) instead of one holding every line."""
        super().__init__(parent)
        self.compact = compact
        self.timeline = model if model is not None else TimelineModel(self)
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
        # Fit the columns to the rows on screen, not to the first thousand: a paged model
        # would read them all from the store at every layout.
        header.setResizeContentsPrecision(0)
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
