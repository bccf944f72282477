"""Choose the NEWS2 SpO₂ scale for this patient, with the reason (View → NEWS2 SpO₂ scale…).

Scale 2 is for a patient with hypercapnic respiratory failure whose prescribed saturation target
is 88–92 % (RCP NEWS2, 2017, chart 2); using it for anyone else hides real desaturation, so the
choice is a clinician's, with a reason, kept in the record and the audit trail. The rule itself
(which scale a reading uses) lives in :mod:`kapmonitor.domain.news2`; this is only the form.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtWidgets import QComboBox, QLabel, QWidget

from kapmonitor.domain.news2 import SCALE_NAMES, ScaleChoice
from kapmonitor.domain.reference import Reference
from kapmonitor.ui.forms.form_base import EntryForm, NoteEdit, SaveFn

HINT = (
    "Scale 2 only for hypercapnic respiratory failure with a prescribed target of 88–92 % "
    "(RCP NEWS2, 2017). It applies from the next vital signs."
)


class News2ScaleForm(EntryForm):
    title = "NEWS2 SpO₂ scale"
    time_label = "From"

    def __init__(
        self,
        ref: Reference,
        save: SaveFn,
        now: datetime,
        *,
        current: int = 1,
        recorder: str = "",
        parent: QWidget | None = None,
        correcting: dict[str, Any] | None = None,
    ) -> None:
        self.current = current
        super().__init__(ref, save, now, recorder=recorder, parent=parent, correcting=correcting)
        self.reason_text.setFocus()

    def build(self) -> None:
        hint = QLabel(HINT, self)
        hint.setWordWrap(True)
        hint.setObjectName("Muted")
        self.form.addRow(hint)
        self.scale = QComboBox(self)
        for scale, name in SCALE_NAMES.items():
            self.scale.addItem(name, scale)
        # Opening the form is nearly always to switch: offer the other scale.
        self.scale.setCurrentIndex(self.scale.findData(2 if self.current == 1 else 1))
        self.add_field("scale", "SpO₂ scale", self.scale, "Which SpO₂ scale NEWS2 uses")
        self.reason_text = NoteEdit(self, lines=2)
        self.reason_text.setPlaceholderText(
            "Required, e.g. COPD with hypercapnic respiratory failure; target 88–92 % prescribed"
        )
        self.add_field("reason", "Reason", self.reason_text, "Why this scale (required)")

    def entry(self) -> ScaleChoice:
        return ScaleChoice(
            scale=int(self.scale.currentData()),
            reason=self.reason_text.text(),
            observed_at=self.observed_at(),
        )

    def fill(self, row: dict[str, Any]) -> None:
        self.scale.setCurrentIndex(self.scale.findData(row.get("scale")))
        self.reason_text.setText(row.get("reason") or "")
