"""Ending a session: where the patient went, with whom, and a short summary.

Ending closes the session to new entries, so the form first shows what the clinician should know
before signing off: how long the session ran and any adverse effect still open.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QLabel, QLineEdit, QVBoxLayout, QWidget

from kapmonitor.domain.records import SessionEnd
from kapmonitor.domain.reference import Reference
from kapmonitor.ui.forms.form_base import EntryForm, NoteEdit, SaveFn, fill_combo, select_code

CHOOSE = "choose…"


def open_events_warning(count: int) -> str:
    """``1 adverse effect is not marked resolved``; empty when none is open."""
    if count <= 0:
        return ""
    if count == 1:
        return "1 adverse effect is not marked resolved"
    return f"{count} adverse effects are not marked resolved"


class EndSessionForm(EntryForm):
    title = "End session"
    time_label = "Ended at"

    def __init__(
        self,
        ref: Reference,
        save: SaveFn,
        now: datetime,
        *,
        elapsed_text: str = "",
        open_adverse_events: int = 0,
        recorder: str = "",
        parent: QWidget | None = None,
        correcting: dict[str, Any] | None = None,
    ) -> None:
        self.elapsed_text = elapsed_text
        self.open_adverse_events = open_adverse_events
        super().__init__(ref, save, now, recorder=recorder, parent=parent, correcting=correcting)

    def build(self) -> None:
        self._build_context()
        self.disposition = QComboBox(self)
        fill_combo(self.disposition, self.ref.choices("dispositions"), CHOOSE)
        self.disposition_other = QLineEdit(self)
        self.disposition_other.setPlaceholderText("for 'Other': where the patient went")
        self.disposition_other.setToolTip("Required when the disposition is 'Other'")
        row = QWidget(self)
        row.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        layout = QVBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.disposition)
        layout.addWidget(self.disposition_other, 1)
        row.setFocusProxy(self.disposition)
        self.add_field(
            "disposition", "Disposition", row, "Where the patient went; for 'Other', say where"
        )
        self.escort = QLineEdit(self)
        self.escort.setPlaceholderText("name or relation")
        self.add_field(
            "escort",
            "Escort",
            self.escort,
            "The responsible adult taking the patient home (required for home with escort)",
        )
        self.summary = NoteEdit(self, lines=4)
        self.summary.setPlaceholderText("Required. Shift+Enter for a new line; Enter saves")
        self.add_field("summary", "Summary", self.summary, "A short summary of the session")
        self.disposition.currentIndexChanged.connect(self._disposition_changed)
        self._disposition_changed()

    def _build_context(self) -> None:
        if self.elapsed_text:
            elapsed = QLabel(self.elapsed_text, self)
            elapsed.setObjectName("Muted")
            self.form.addRow("", elapsed)
        self.warning: QLabel | None = None
        text = open_events_warning(self.open_adverse_events)
        if text:
            self.warning = QLabel(f"⚠ {text}", self)
            self.warning.setObjectName("Warn")
            self.warning.setToolTip("Record the outcome first if it is known")
            self.warning.setWordWrap(True)
            self.form.addRow("", self.warning)

    def _disposition_changed(self) -> None:
        self.disposition_other.setEnabled(self.disposition.currentData() == "other")

    def entry(self) -> SessionEnd:
        disposition = self.disposition.currentData() or ""
        return SessionEnd(
            disposition=disposition,
            observed_at=self.observed_at(),
            escort=self.escort.text(),
            summary=self.summary.text(),
            disposition_other=self.disposition_other.text() if disposition == "other" else "",
        )

    def fill(self, row: dict[str, Any]) -> None:
        select_code(self.disposition, row.get("disposition"))
        self.disposition_other.setText(row.get("disposition_other") or "")
        self.escort.setText(row.get("escort") or "")
        self.summary.setText(row.get("summary") or "")
