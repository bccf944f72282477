"""The shape every entry dialog shares, so each form is only its own fields.

A form opens with the time set to now, saves on Enter and cancels on Escape. It closes only after
the store has committed; a refusal (a field out of range, a locked or full disk) keeps everything
typed in place and says why, next to the field concerned.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QDateTime, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from kapmonitor.domain.clock import from_iso
from kapmonitor.domain.records import Entry
from kapmonitor.domain.reference import Choice, Reference
from kapmonitor.domain.validation import FieldError, ValidationError, parse_int, parse_number
from kapmonitor.store.database import StoreError
from kapmonitor.ui.field_errors import clear_refused, mark_refused, refusal_text, show_banner

SaveFn = Callable[[Entry], int]


class NoteEdit(QPlainTextEdit):
    """Multi-line text where Enter still saves the form (Shift+Enter starts a new line)."""

    def __init__(self, parent: QWidget | None = None, lines: int = 3) -> None:
        super().__init__(parent)
        self.setTabChangesFocus(True)
        self.setFixedHeight(self.fontMetrics().lineSpacing() * lines + 14)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
            event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        ):
            dialog = self.window()
            if isinstance(dialog, EntryForm):
                dialog.try_save()
                return
        super().keyPressEvent(event)

    def text(self) -> str:
        return self.toPlainText()

    def setText(self, text: str) -> None:
        self.setPlainText(text)


def to_qdatetime(when: datetime) -> QDateTime:
    return QDateTime.fromMSecsSinceEpoch(int(when.timestamp() * 1000))


def from_qdatetime(value: QDateTime) -> datetime:
    return datetime.fromtimestamp(value.toMSecsSinceEpoch() / 1000, UTC)


def fill_combo(combo: QComboBox, choices: tuple[Choice, ...], blank: str | None = None) -> None:
    """Items show labels and carry codes; an optional blank first item means "not assessed"."""
    combo.clear()
    if blank is not None:
        combo.addItem(blank, None)
    for choice in choices:
        combo.addItem(choice.label, choice.code)
        if choice.description:
            combo.setItemData(combo.count() - 1, choice.description, Qt.ItemDataRole.ToolTipRole)


def select_code(combo: QComboBox, code: Any) -> None:
    for index in range(combo.count()):
        if combo.itemData(index) is not None and str(combo.itemData(index)) == str(code):
            combo.setCurrentIndex(index)
            return
    if code is None:
        combo.setCurrentIndex(0)


class EntryForm(QDialog):
    """Base dialog: subclasses add fields in ``build`` and turn them into a record in ``entry``."""

    title = "Entry"
    time_label = "Observed at"

    def __init__(
        self,
        ref: Reference,
        save: SaveFn,
        now: datetime,
        *,
        recorder: str = "",
        parent: QWidget | None = None,
        correcting: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(parent)
        self.ref = ref
        self._save = save
        self.now = now
        self.correcting = correcting
        self.saved_id: int | None = None
        self.field_widgets: dict[str, QWidget] = {}
        self.setWindowTitle(f"Correct {self.title.lower()}" if correcting else self.title)
        self.setModal(True)

        outer = QVBoxLayout(self)
        self.banner = QLabel(self)
        self.banner.setObjectName("ErrorBanner")
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.hide()
        outer.addWidget(self.banner)

        self.form = QFormLayout()
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        outer.addLayout(self.form)

        self.build()
        # Created after the fields so Tab reaches the time last, in reading order.
        self.time_edit = QDateTimeEdit(to_qdatetime(now), self)
        self.time_edit.setDisplayFormat("yyyy-MM-dd  HH:mm:ss")
        self.time_edit.setCalendarPopup(False)
        self.time_edit.setToolTip("When it happened (local time). Defaults to now.")
        self.form.addRow(self.time_label, self.time_edit)
        self.field_widgets.setdefault("observed_at", self.time_edit)

        self.reason_edit: QLineEdit | None = None
        self.void_box: QCheckBox | None = None
        if correcting is not None:
            self.reason_edit = QLineEdit(self)
            self.reason_edit.setPlaceholderText("Required: why is this being corrected?")
            self.void_box = QCheckBox("Entered in error: withdraw the original entirely", self)
            self.form.addRow("Reason for correction", self.reason_edit)
            self.form.addRow("", self.void_box)
            self.field_widgets["reason"] = self.reason_edit
            self.time_edit.setDateTime(to_qdatetime(from_iso(correcting["observed_at"])))
            self.fill(correcting)

        self.buttons = QDialogButtonBox(self)
        self.save_button = self.buttons.addButton(
            "Save correction" if correcting else "Save", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.save_button.setDefault(True)
        self.save_button.setToolTip("Save (Enter)")
        cancel = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setToolTip("Cancel (Esc)")
        self.buttons.accepted.connect(self.try_save)
        self.buttons.rejected.connect(self.reject)
        if recorder:
            who = QLabel(f"Recording as <b>{recorder}</b>", self)
            who.setObjectName("RecorderNote")
            outer.addWidget(who)
        outer.addWidget(self.buttons)
        first = next(iter(self.field_widgets.values()))
        (first.focusProxy() or first).setFocus()  # type straight away: no click needed

    # --- for subclasses -----------------------------------------------------------------

    def build(self) -> None:
        """Add this form's fields to ``self.form`` in reading order."""
        raise NotImplementedError

    def entry(self) -> Entry:
        """Build the record from the fields; raise ValidationError for unparseable input."""
        raise NotImplementedError

    def fill(self, row: dict[str, Any]) -> None:
        """Put a stored row's values into the fields (used when correcting it)."""

    def observed_at(self) -> datetime:
        return from_qdatetime(self.time_edit.dateTime())

    def add_field(self, key: str, label: str, widget: QWidget, tip: str = "") -> QWidget:
        if tip:
            widget.setToolTip(tip)
        self.form.addRow(label, widget)
        self.field_widgets[key] = widget
        return widget

    # --- parsing helpers that collect errors -------------------------------------------

    def read_number(self, errors: list[FieldError], key: str, label: str) -> float | None:
        widget = self.field_widgets[key]
        assert isinstance(widget, QLineEdit)
        try:
            return parse_number(widget.text(), label)
        except ValueError as exc:
            errors.append(FieldError(key, str(exc)))
            return None

    def read_int(self, errors: list[FieldError], key: str, label: str) -> int | None:
        widget = self.field_widgets[key]
        assert isinstance(widget, QLineEdit)
        try:
            return parse_int(widget.text(), label)
        except ValueError as exc:
            errors.append(FieldError(key, str(exc)))
            return None

    # --- saving -------------------------------------------------------------------------

    def reason(self) -> str:
        return self.reason_edit.text() if self.reason_edit else ""

    def is_void(self) -> bool:
        return bool(self.void_box and self.void_box.isChecked())

    def try_save(self) -> None:
        self.clear_errors()
        try:
            record = self.entry()
            row_id = self._save(record)
        except ValidationError as exc:
            self.show_errors(exc)
            return
        except StoreError as exc:
            self.show_banner(f"Not saved. {exc}")
            return
        self.saved_id = row_id
        self.accept()

    def clear_errors(self) -> None:
        clear_refused(self.field_widgets, self.banner)

    def show_errors(self, exc: ValidationError) -> None:
        first = mark_refused(self.field_widgets, exc.errors)
        self.show_banner(refusal_text("Not saved:\n", exc.errors))
        if first is not None:
            first.setFocus()

    def show_banner(self, text: str) -> None:
        show_banner(self, self.banner, text)
        self.adjustSize()

    def errors_text(self) -> str:
        return self.banner.text() if self.banner.isVisible() else ""
