"""Outcome of an adverse effect: recorded later, against the effect it closes.

An adverse effect's onset and its outcome are separate entries (the record is append-only), so
this form offers only the effects still open; with none open there is nothing to record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtWidgets import QComboBox, QWidget

from kapmonitor.domain.records import AdverseEventOutcome
from kapmonitor.domain.reference import Reference
from kapmonitor.domain.validation import FieldError, ValidationError
from kapmonitor.ui.forms.form_base import EntryForm, NoteEdit, SaveFn, fill_combo, select_code

NO_OPEN_EVENTS = "No adverse effect is waiting for an outcome: every recorded one is resolved."


class AdverseEventOutcomeForm(EntryForm):
    title = "Adverse effect outcome"
    time_label = "Outcome at"

    def __init__(
        self,
        ref: Reference,
        save: SaveFn,
        now: datetime,
        *,
        open_events: list[tuple[int, str]],
        preselect: int | None = None,
        recorder: str = "",
        parent: QWidget | None = None,
        correcting: dict[str, Any] | None = None,
    ) -> None:
        self.open_events = list(open_events)
        self.preselect = preselect
        super().__init__(ref, save, now, recorder=recorder, parent=parent, correcting=correcting)
        if self.event.count() == 0:
            self.show_banner(NO_OPEN_EVENTS)
            self.save_button.setEnabled(False)

    def build(self) -> None:
        self.event = QComboBox(self)
        for event_id, description in self.open_events:
            self.event.addItem(description, event_id)
        if self.preselect is not None:
            select_code(self.event, self.preselect)
        self.add_field(
            "adverse_event_id",
            "Adverse effect",
            self.event,
            "The adverse effect this outcome is for",
        )
        self.outcome = QComboBox(self)
        fill_combo(self.outcome, self.ref.choices("ae_outcomes"))
        select_code(self.outcome, "resolved")
        self.add_field(
            "outcome", "Outcome", self.outcome, "How the adverse effect ended, or stands"
        )
        self.note = NoteEdit(self, lines=2)
        self.note.setPlaceholderText("optional (Shift+Enter for a new line)")
        self.add_field("note", "Note", self.note, "Anything else about the outcome; Enter saves")

    def entry(self) -> AdverseEventOutcome:
        event_id = self.event.currentData()
        if event_id is None:
            raise ValidationError(FieldError("adverse_event_id", NO_OPEN_EVENTS))
        return AdverseEventOutcome(
            adverse_event_id=int(event_id),
            outcome=self.outcome.currentData() or "",
            observed_at=self.observed_at(),
            note=self.note.text(),
        )

    def fill(self, row: dict[str, Any]) -> None:
        event_id = row.get("adverse_event_id")
        if event_id is not None and self.event.findData(event_id) < 0:
            # Correcting an outcome whose effect is now closed: it must still be choosable.
            self.event.addItem(f"Adverse effect #{event_id}", event_id)
        select_code(self.event, event_id)
        select_code(self.outcome, row.get("outcome"))
        self.note.setText(row.get("note") or "")
