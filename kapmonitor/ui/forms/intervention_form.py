"""Interventions and free notes: what the team did, and anything worth writing down.

A medication given beside the session drug (an antiemetic, an antihypertensive) is named in its
own field so it can be found later; everything else is a category and a line of text.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtWidgets import QComboBox, QLineEdit, QWidget

from kapmonitor.domain.records import Intervention
from kapmonitor.domain.reference import Reference
from kapmonitor.ui.forms.form_base import EntryForm, NoteEdit, SaveFn, fill_combo, select_code

CHOOSE = "choose…"


class InterventionForm(EntryForm):
    title = "Intervention or note"

    def __init__(
        self,
        ref: Reference,
        save: SaveFn,
        now: datetime,
        *,
        category: str | None = None,
        recorder: str = "",
        parent: QWidget | None = None,
        correcting: dict[str, Any] | None = None,
    ) -> None:
        self.initial_category = category
        super().__init__(ref, save, now, recorder=recorder, parent=parent, correcting=correcting)
        self._first_field(category, correcting).setFocus()

    def build(self) -> None:
        self.category = QComboBox(self)
        preset = self.initial_category
        fill_combo(
            self.category, self.ref.choices("intervention_kinds"), None if preset else CHOOSE
        )
        if preset:
            select_code(self.category, preset)
        self.add_field("category", "Kind", self.category, "What kind of intervention or note")
        self.medication = QLineEdit(self)
        self.medication.setPlaceholderText("drug and dose, e.g. ondansetron 4 mg IV")
        hint = self.medication.fontMetrics().horizontalAdvance(self.medication.placeholderText())
        self.medication.setMinimumWidth(hint + 24)
        self.add_field(
            "medication", "Medication", self.medication, "Required when a medication was given"
        )
        self.detail = NoteEdit(self, lines=3)
        self.detail.setPlaceholderText("Shift+Enter for a new line; Enter saves")
        self.add_field("detail", "Detail", self.detail, "What was done or observed")
        self.category.currentIndexChanged.connect(self._category_changed)
        self._category_changed()

    def _first_field(self, category: str | None, correcting: dict[str, Any] | None) -> QWidget:
        """A preselected kind (e.g. "Note") means the text is what is left to type."""
        if not category or correcting:
            return self.category
        return self.medication if category == "medication" else self.detail

    def _category_changed(self) -> None:
        self.medication.setEnabled(self.category.currentData() == "medication")

    def entry(self) -> Intervention:
        category = self.category.currentData() or ""
        return Intervention(
            category=category,
            observed_at=self.observed_at(),
            detail=self.detail.text(),
            medication=self.medication.text() if category == "medication" else "",
        )

    def fill(self, row: dict[str, Any]) -> None:
        select_code(self.category, row.get("category"))
        self.medication.setText(row.get("medication") or "")
        self.detail.setText(row.get("detail") or "")
