"""The Spravato REMS Patient Monitoring Form as the session log fills it (esketamine).

The form is submitted outside this app, so the dialog is read-only: it shows each field in the
form's order and, for any field the log cannot fill, says so in words with a symbol and why
(colour only repeats it), with a count at the top so nothing is missed. "Copy as text" puts the
same content on the clipboard for pasting into the REMS portal or a note.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont, QGuiApplication, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from kapmonitor.domain.rems import RemsField, count_text, missing_text, value_text
from kapmonitor.ui.forms.form_base import (
    FittingDialog,
    fit_to_screen,
    from_qdatetime,
    keep_on_screen,
    max_dialog_height,
    to_qdatetime,
)
from kapmonitor.ui.widgets.theme import DAY, NIGHT

FORM_TITLE = "Spravato REMS Patient Monitoring Form"


def rems_plain_text(fields: list[RemsField], patient_code: str) -> str:
    """The form as plain text, one ``Field: value`` line each, gaps marked in capitals."""
    lines = [f"{FORM_TITLE} — patient {patient_code}", count_text(fields).lstrip("⚠✔ "), ""]
    for field in fields:
        if field.filled:
            flag = f" [CHECK: {field.flag.lstrip('⚠ ')}]" if field.flag else ""
            lines.append(f"{field.label}: {field.value}{flag}")
        else:
            why = f" — {field.why_missing}" if field.why_missing else ""
            lines.append(f"{field.label}: [NOT IN THE LOG{why}]")
    return "\n".join(lines) + "\n"


class RemsDialog(QDialog):
    """Read-only view of the REMS fields with a copy-to-clipboard button."""

    def __init__(
        self, fields: list[RemsField], patient_code: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.fields = list(fields)
        self.patient_code = patient_code
        self.setWindowTitle(f"REMS summary — {patient_code}")
        self.setModal(True)
        # A tall list scrolls in its table; the dialog itself stays within the screen.
        self.setMaximumHeight(max_dialog_height(self))
        self.resize(900, min(640, max_dialog_height(self)))
        night = self.palette().window().color().lightness() < 128
        theme = NIGHT if night else DAY

        layout = QVBoxLayout(self)
        title = QLabel(f"{FORM_TITLE} — patient {patient_code}", self)
        title.setObjectName("ClockValue")
        title.setWordWrap(True)
        layout.addWidget(title)
        missing = sum(1 for f in self.fields if not f.filled or f.flag)
        self.count_label = QLabel(count_text(self.fields), self)
        self.count_label.setObjectName("Warn" if missing else "Muted")
        layout.addWidget(self.count_label)

        self.table = QTableWidget(len(self.fields), 2, self)
        self.table.setHorizontalHeaderLabels(["Field", "Value"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(True)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.setColumnWidth(0, 300)
        bold = QFont(self.font())
        bold.setBold(True)
        for row, field in enumerate(self.fields):
            label = QTableWidgetItem(field.label)
            value = QTableWidgetItem(value_text(field))
            if not field.filled or field.flag:
                value.setFont(bold)
                value.setForeground(QBrush(QColor(theme.warn)))
                label.setFont(bold)
            for item in (label, value):
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
                item.setToolTip(item.text())
            self.table.setItem(row, 0, label)
            self.table.setItem(row, 1, value)
        # Wrapped rows are sized for the columns' real widths, which are known only once shown.
        header.sectionResized.connect(lambda *_: self.table.resizeRowsToContents())
        layout.addWidget(self.table, 1)

        self.copied_label = QLabel("", self)
        self.copied_label.setObjectName("Muted")
        layout.addWidget(self.copied_label)
        self.buttons = QDialogButtonBox(self)
        self.copy_button = QPushButton("&Copy as text", self)
        self.copy_button.setToolTip("Put the form on the clipboard as plain text (Alt+C)")
        self.copy_button.setAutoDefault(False)
        self.copy_button.clicked.connect(self.copy_to_clipboard)
        self.buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        close = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        close.setToolTip("Close (Esc)")
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.table.setFocus()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.table.resizeRowsToContents()
        keep_on_screen(self)

    def plain_text(self) -> str:
        return rems_plain_text(self.fields, self.patient_code)

    def missing_count(self) -> int:
        return sum(1 for f in self.fields if not f.filled)

    def count_text(self) -> str:
        return self.count_label.text()

    def value_text(self, row: int) -> str:
        item = self.table.item(row, 1)
        return item.text() if item is not None else ""

    def copy_to_clipboard(self) -> None:
        QGuiApplication.clipboard().setText(self.plain_text())
        self.copied_label.setText("Copied to the clipboard.")


# save(submitted_by, submitted_at, reference, note) -> row id; raises the store's refusal.
SubmitFn = Callable[[str, datetime, str, str], int]


class RemsSubmissionDialog(FittingDialog):
    """Records that the REMS form was submitted: by whom, when, and the portal's reference.

    The record is append-only and audited, so the dialog says so before saving; a refusal
    (already submitted, a time in the future, a non-REMS session) keeps what was typed.
    """

    refusal_heading = "Not recorded"

    def __init__(
        self,
        save: SubmitFn,
        session_text: str,
        status_text: str,
        submitter: str,
        now: datetime,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._save = save
        self.saved_id: int | None = None
        self.setWindowTitle("Mark REMS form submitted")
        self.setModal(True)
        form = QFormLayout(self.body)
        about = QLabel(f"{session_text}\n{status_text}", self)
        about.setWordWrap(True)
        form.addRow(about)
        self.submitted_by = QLineEdit(submitter, self)
        self.submitted_by.setToolTip("Who submitted the form to the REMS")
        form.addRow("Submitted by", self.submitted_by)
        self.submitted_at = QDateTimeEdit(to_qdatetime(now), self)
        self.submitted_at.setDisplayFormat("yyyy-MM-dd  HH:mm")
        self.submitted_at.setToolTip("When it was submitted (local time)")
        form.addRow("Submitted on", self.submitted_at)
        self.reference = QLineEdit(self)
        self.reference.setPlaceholderText("the REMS portal's confirmation, if any")
        form.addRow("Reference", self.reference)
        self.note = QLineEdit(self)
        self.note.setPlaceholderText("optional")
        form.addRow("Note", self.note)
        self.field_widgets = {
            "submitted_by": self.submitted_by,
            "submitted_at": self.submitted_at,
        }
        hint = QLabel("Recorded permanently with your name (append-only, audited).", self)
        hint.setObjectName("Muted")
        hint.setWordWrap(True)
        self.foot.addWidget(hint)
        self.buttons = QDialogButtonBox(self)
        self.save_button = self.buttons.addButton(
            "Mark submitted", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.save_button.setDefault(True)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.try_save)
        self.buttons.rejected.connect(self.reject)
        self.foot.addWidget(self.buttons)
        self.submitted_by.setFocus()
        fit_to_screen(self)

    def try_save(self) -> None:
        def save() -> None:
            self.saved_id = self._save(
                self.submitted_by.text(),
                from_qdatetime(self.submitted_at.dateTime()),
                self.reference.text(),
                self.note.text(),
            )

        if self.attempt(save):
            self.accept()


__all__ = [
    "RemsDialog",
    "RemsSubmissionDialog",
    "count_text",
    "missing_text",
    "rems_plain_text",
    "value_text",
]
