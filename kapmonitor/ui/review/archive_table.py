"""The archive's table: the sessions of one laptop's file, or of the clinic's archive, one row each.

Shared by the local review window and the clinic archive's window (which adds the laptop), so
neither window imports the other.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QDate,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QBrush, QColor, QFocusEvent, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDateEdit,
    QHeaderView,
    QTableView,
    QWidget,
)

from kapmonitor.store.archive import (
    ArchiveRow,
)
from kapmonitor.ui.review.session_review_view import local
from kapmonitor.ui.widgets.theme import current_theme

Index = QModelIndex | QPersistentModelIndex
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
SESSION_ROLE = Qt.ItemDataRole.UserRole
ANY_DATE = QDate(2000, 1, 1)  # the minimum of the date fields, shown as "any"
STATUS_MARKS = {"open": "○ Open", "ended": "● Ended — not signed", "signed": "✔ Signed"}


class ArchiveTableModel(QAbstractTableModel):
    """The listed sessions; sorting uses raw values (times, numbers), not the shown text."""

    COLUMNS = (
        "Patient",
        "Started",
        "Status",
        "Protocol",
        "Clinicians",
        "Dose",
        "Vitals",
        "Adverse effects",
        "Alarms",
        "Signed by",
        "REMS form",
    )
    REMS_COLUMN = 10

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[ArchiveRow] = []
        self.today = date.today()  # the window sets its clock's day: overdue is judged on it
        self.night = False

    def set_rows(self, rows: list[ArchiveRow]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        column = index.column()
        if column == self.REMS_COLUMN:
            return self._rems_data(row, role)
        if role == Qt.ItemDataRole.DisplayRole:
            return self.text(row, column)
        if role == SORT_ROLE:
            return self.sort_key(row, column)
        if role == SESSION_ROLE:
            return row.session_id
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tooltip(row, column)
        return None

    def rems_text(self, row: ArchiveRow) -> str:
        """E.g. "REMS due 2026-12-04 / submitted by Dr A on 2026-12-01"; "—" if not REMS."""
        status = row.rems_status(self.today)
        return "—" if status is None else status.text()

    def _rems_data(self, row: ArchiveRow, role: int) -> Any:
        status = row.rems_status(self.today)
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            text = self.rems_text(row)
            if role == Qt.ItemDataRole.ToolTipRole and status is not None:
                text += f" (due date: {status.source})"
            return text
        if role == SORT_ROLE:  # overdue first, then unsubmitted by due date, then submitted
            if status is None:
                return "3"
            rank = 0 if status.overdue else 2 if status.submitted_by else 1
            return f"{rank} {status.due.isoformat()}"
        if role == SESSION_ROLE:
            return row.session_id
        if role == Qt.ItemDataRole.ForegroundRole and status is not None and status.overdue:
            return QBrush(QColor(current_theme(self.night).warn))
        if role == Qt.ItemDataRole.FontRole and status is not None and status.overdue:
            bold = QFont()
            bold.setBold(True)
            return bold
        return None

    @staticmethod
    def text(row: ArchiveRow, column: int) -> str:
        if column == 0:
            return row.patient_code
        if column == 1:
            return local(row.started_at, with_date=True)
        if column == 2:
            return STATUS_MARKS[row.status]
        if column == 3:
            return row.protocol_name or "—"
        if column == 4:
            return ", ".join(row.clinicians)
        if column == 5:
            per_kg = row.dose_mg_per_kg
            return f"{row.dose_mg:g} mg ({per_kg:.2f} mg/kg)" if per_kg else "none"
        if column == 6:
            return str(row.vitals)
        if column == 7:
            return str(row.adverse_events) if row.adverse_events else "—"
        if column == 8:
            if not row.alarms:
                return "—"
            unanswered = row.unacknowledged_alarms
            return f"{row.alarms} (⚠ {unanswered} unanswered)" if unanswered else str(row.alarms)
        return row.signed_by

    @staticmethod
    def sort_key(row: ArchiveRow, column: int) -> Any:
        keys: list[Any] = [
            row.patient_code.casefold(),
            row.started_at.timestamp(),
            ["open", "ended", "signed"].index(row.status),
            row.protocol_name,
            ", ".join(row.clinicians).casefold(),
            row.dose_mg,
            row.vitals,
            row.adverse_events,
            row.alarms * 1000 + row.unacknowledged_alarms,
            row.signed_by.casefold(),
        ]
        return keys[column]

    @staticmethod
    def tooltip(row: ArchiveRow, column: int) -> str:
        if column == 9 and row.signed_at is not None:
            return (
                f"{row.signed_by}, {row.signed_role}, {local(row.signed_at, True)} — {row.meaning}"
            )
        if column == 2 and row.ended_at is not None:
            return f"Ended {local(row.ended_at, True)}"
        return ArchiveTableModel.text(row, column)


class ArchiveTable(QTableView):
    """The session list: sortable, whole rows, Enter or double-click opens."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = ArchiveTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.source)
        self.proxy.setSortRole(SORT_ROLE)
        self.setModel(self.proxy)
        self.setSortingEnabled(True)
        self.sortByColumn(1, Qt.SortOrder.DescendingOrder)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.verticalHeader().hide()
        self.setWordWrap(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(3, 240)  # protocol names are long: elided, full text as tooltip
        header.setStretchLastSection(True)
        self.setToolTip("Sessions; ↑/↓ to choose, Enter to open, click a heading to sort")

    def focusInEvent(self, event: QFocusEvent) -> None:
        """Arriving by keyboard selects the current row, so ↓ never skips the first session."""
        super().focusInEvent(event)
        if event.reason() == Qt.FocusReason.MouseFocusReason or self.proxy.rowCount() == 0:
            return
        if not self.selectionModel().selectedRows():
            current = self.currentIndex()
            self.selectRow(current.row() if current.isValid() else 0)

    def session_at(self, proxy_row: int) -> str | None:
        index = self.proxy.index(proxy_row, 0)
        return index.data(SESSION_ROLE) if index.isValid() else None

    def current_session(self) -> str | None:
        rows = self.selectionModel().selectedRows()
        return self.session_at(rows[0].row()) if rows else None

    def select_session(self, session_id: str) -> bool:
        for proxy_row in range(self.proxy.rowCount()):
            if self.session_at(proxy_row) == session_id:
                self.selectRow(proxy_row)
                self.scrollTo(self.proxy.index(proxy_row, 0))
                return True
        return False

    def shown_texts(self, column: int = 0) -> list[str]:
        return [str(self.proxy.index(r, column).data()) for r in range(self.proxy.rowCount())]


def _date_field(parent: QWidget, tip: str) -> QDateEdit:
    field = QDateEdit(parent)
    field.setCalendarPopup(True)
    field.setDisplayFormat("yyyy-MM-dd")
    field.setMinimumDate(ANY_DATE)
    field.setSpecialValueText("any")
    field.setDate(ANY_DATE)
    field.setToolTip(f"{tip} (local date; the lowest value means any)")
    return field
