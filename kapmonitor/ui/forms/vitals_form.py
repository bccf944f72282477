"""Vital signs entry: blood pressure as one field (``120/80``), every other vital sign of the
registry (kapmonitor.domain.vitals) one number each, in the registry's order."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QCheckBox, QLineEdit

from kapmonitor.domain.discharge_gate import COMPLETE_SET
from kapmonitor.domain.records import VitalSigns
from kapmonitor.domain.validation import FieldError, ValidationError, parse_bp
from kapmonitor.domain.vitals import VITAL_SIGNS
from kapmonitor.ui.forms.form_base import EntryForm, NoteEdit
from kapmonitor.ui.widgets.recall_edit import RecallLineEdit

# The form's fields in registry order (also the keyboard order): systolic and diastolic share
# the one "bp" entry, every other vital sign has its own.
_SINGLE = tuple(v for v in VITAL_SIGNS if v.field == v.key)
_ATTRIBUTE = {"temp_c": "temp"}  # the attribute tests and callers know the field by


class VitalsForm(EntryForm):
    """Every vital sign of the registry, each optional; what is typed is refused with the reason
    (not a number, outside the plausible range) under its field, and nothing typed is lost."""

    title = "Vital signs"

    def build(self) -> None:
        self.bp = RecallLineEdit(self, "systolic/diastolic, e.g. 120/80")
        self.add_field("bp", "Blood pressure (mmHg)", self.bp, "Type 120/80; ↑ reuses the last")
        self.edits: dict[str, RecallLineEdit] = {}
        for sign in _SINGLE:
            # Outside the complete set a discharge needs (BP, HR, SpO₂, RR) a vital is measured
            # only where the clinic does (a thermometer, a capnograph): the hint says optional.
            hint = sign.unit if sign.key in COMPLETE_SET else f"{sign.unit}, optional"
            edit = RecallLineEdit(self, hint)
            edit.setToolTip(f"{sign.label} ({sign.unit}); ↑ reuses the last")
            setattr(self, _ATTRIBUTE.get(sign.key, sign.key), edit)
            self.edits[sign.key] = edit
            self.add_field(sign.key, f"{sign.alarm_name} ({sign.unit})", edit)
        self.oxygen = QCheckBox("Patient is on supplemental oxygen", self)
        self.add_field("on_oxygen", "", self.oxygen)
        self.note = QLineEdit(self)
        self.note.setPlaceholderText("optional")
        self.add_field("note", "Note", self.note)

    def set_last(self, last: dict[str, Any]) -> None:
        """Offer the last stored values as one-key recalls (Up arrow)."""
        if "sbp" in last and "dbp" in last:
            self.bp.set_recall(f"{last['sbp']}/{last['dbp']}")
        for sign in _SINGLE:
            if last.get(sign.key) is not None:
                value = last[sign.key]
                self.edits[sign.key].set_recall(
                    f"{value:g}" if isinstance(value, float) else str(value)
                )

    def entry(self) -> VitalSigns:
        errors: list[FieldError] = []
        bp = None
        try:
            bp = parse_bp(self.bp.text())
        except ValueError as exc:
            errors.append(FieldError("bp", str(exc)))
        values: dict[str, int | float | None] = {}
        for sign in _SINGLE:
            if sign.is_integer:
                values[sign.key] = self.read_int(errors, sign.key, sign.alarm_name)
            else:
                number = self.read_number(errors, sign.key, sign.alarm_name)
                values[sign.key] = None if number is None else round(number, sign.decimals)
        if errors:
            raise ValidationError(errors)
        return VitalSigns(
            observed_at=self.observed_at(),
            sbp=bp[0] if bp else None,
            dbp=bp[1] if bp else None,
            on_oxygen=self.oxygen.isChecked(),
            note=self.note.text(),
            **values,  # type: ignore[arg-type]
        )

    def fill(self, row: dict[str, Any]) -> None:
        if row.get("sbp") is not None:
            self.bp.setText(f"{row['sbp']}/{row['dbp']}")
        for sign in _SINGLE:
            if row.get(sign.key) is not None:
                self.edits[sign.key].setText(sign.format(row[sign.key]))
        self.oxygen.setChecked(bool(row.get("on_oxygen")))
        self.note.setText(row.get("note") or "")


__all__ = ["NoteEdit", "VitalsForm"]
