"""Vital signs entry: blood pressure as one field (``120/80``), the rest one number each."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QCheckBox, QLineEdit

from kapmonitor.domain.records import VitalSigns
from kapmonitor.domain.validation import FieldError, ValidationError, parse_bp
from kapmonitor.ui.forms.form_base import EntryForm, NoteEdit
from kapmonitor.ui.widgets.recall_edit import RecallLineEdit


class VitalsForm(EntryForm):
    title = "Vital signs"

    def build(self) -> None:
        self.bp = RecallLineEdit(self, "systolic/diastolic, e.g. 120/80")
        self.hr = RecallLineEdit(self, "/min")
        self.spo2 = RecallLineEdit(self, "%")
        self.rr = RecallLineEdit(self, "/min")
        self.temp = RecallLineEdit(self, "°C, optional")
        self.add_field("bp", "Blood pressure (mmHg)", self.bp, "Type 120/80; ↑ reuses the last")
        self.add_field("hr", "Heart rate (/min)", self.hr)
        self.add_field("spo2", "SpO₂ (%)", self.spo2)
        self.add_field("rr", "Respiratory rate (/min)", self.rr)
        self.add_field("temp_c", "Temperature (°C)", self.temp)
        self.oxygen = QCheckBox("Patient is on supplemental oxygen", self)
        self.add_field("on_oxygen", "", self.oxygen)
        self.note = QLineEdit(self)
        self.note.setPlaceholderText("optional")
        self.add_field("note", "Note", self.note)

    def set_last(self, last: dict[str, Any]) -> None:
        """Offer the last stored values as one-key recalls (Up arrow)."""
        if "sbp" in last and "dbp" in last:
            self.bp.set_recall(f"{last['sbp']}/{last['dbp']}")
        for key, edit in (
            ("hr", self.hr),
            ("spo2", self.spo2),
            ("rr", self.rr),
            ("temp_c", self.temp),
        ):
            if key in last and last[key] is not None:
                edit.set_recall(
                    f"{last[key]:g}" if isinstance(last[key], float) else str(last[key])
                )

    def entry(self) -> VitalSigns:
        errors: list[FieldError] = []
        bp = None
        try:
            bp = parse_bp(self.bp.text())
        except ValueError as exc:
            errors.append(FieldError("bp", str(exc)))
        hr = self.read_int(errors, "hr", "Heart rate")
        spo2 = self.read_int(errors, "spo2", "SpO₂")
        rr = self.read_int(errors, "rr", "Respiratory rate")
        temp = self.read_number(errors, "temp_c", "Temperature")
        if errors:
            raise ValidationError(errors)
        return VitalSigns(
            observed_at=self.observed_at(),
            sbp=bp[0] if bp else None,
            dbp=bp[1] if bp else None,
            hr=hr,
            spo2=spo2,
            rr=rr,
            temp_c=round(temp, 1) if temp is not None else None,
            on_oxygen=self.oxygen.isChecked(),
            note=self.note.text(),
        )

    def fill(self, row: dict[str, Any]) -> None:
        if row.get("sbp") is not None:
            self.bp.setText(f"{row['sbp']}/{row['dbp']}")
        for key, edit in (("hr", self.hr), ("spo2", self.spo2), ("rr", self.rr)):
            if row.get(key) is not None:
                edit.setText(str(row[key]))
        if row.get("temp_c") is not None:
            self.temp.setText(f"{row['temp_c']:.1f}")
        self.oxygen.setChecked(bool(row.get("on_oxygen")))
        self.note.setText(row.get("note") or "")


__all__ = ["NoteEdit", "VitalsForm"]
