"""Dose entry: what was given, by which route, and what it adds up to per kilogram.

The mg/kg and the session's running total are shown while typing, because a slip of one digit is
easiest to catch as an implausible mg/kg before it is saved. A later dose defaults to the drug,
route and lot of the one before and is pre-marked as a booster; the first dose of a session must
have its drug and route chosen explicitly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QLineEdit, QWidget

from kapmonitor.domain.records import Dose
from kapmonitor.domain.reference import Reference
from kapmonitor.domain.validation import FieldError, ValidationError, parse_number
from kapmonitor.ui.form_base import EntryForm, SaveFn, fill_combo, select_code

CHOOSE = "choose…"


def _row_widget(parent: QWidget, *widgets: QWidget) -> QWidget:
    """Several widgets on one form row, highlighted and focused as one field."""
    row = QWidget(parent)
    row.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget, 1 if isinstance(widget, QLineEdit) else 0)
    row.setFocusProxy(widgets[0])
    return row


def _fmt(value: float) -> str:
    return f"{value:g}"


class DoseForm(EntryForm):
    title = "Dose"

    def __init__(
        self,
        ref: Reference,
        save: SaveFn,
        now: datetime,
        *,
        weight_kg: float,
        previous_doses: list[dict[str, Any]] | None = None,
        recorder: str = "",
        parent: QWidget | None = None,
        correcting: dict[str, Any] | None = None,
    ) -> None:
        self.weight_kg = float(weight_kg)
        corrected_id = correcting.get("id") if correcting else None
        # When correcting, the row being replaced must not count twice in the running total.
        self.previous_doses = [
            d for d in (previous_doses or []) if corrected_id is None or d.get("id") != corrected_id
        ]
        super().__init__(ref, save, now, recorder=recorder, parent=parent, correcting=correcting)
        self.update_totals()

    # --- building -------------------------------------------------------------------------

    def build(self) -> None:
        last = self.previous_doses[-1] if self.previous_doses else None
        self.drug = QComboBox(self)
        fill_combo(self.drug, self.ref.choices("drugs"), None if last else CHOOSE)
        self.drug_other = QLineEdit(self)
        self.drug_other.setPlaceholderText("name the drug")
        self.drug_other.setToolTip("Required when the drug is 'Other'")
        self.add_field(
            "drug",
            "Drug",
            _row_widget(self, self.drug, self.drug_other),
            "The drug given; for 'Other', name it in the box beside",
        )
        self.route = QComboBox(self)
        fill_combo(self.route, self.ref.choices("routes"), None if last else CHOOSE)
        self.add_field("route", "Route", self.route, "How it was given")
        self.dose = QLineEdit(self)
        self.dose.setPlaceholderText("mg")
        self.add_field("dose_mg", "Dose (mg)", self.dose, "This dose in milligrams, e.g. 70")
        self.totals = QLabel(self)
        self.totals.setObjectName("DoseTotals")
        self.totals.setToolTip("Per kilogram of the session's weight, and the session total")
        self.form.addRow("", self.totals)
        self.lot = QLineEdit(self)
        self.lot.setPlaceholderText("from the vial or device (REMS form)")
        self.add_field("lot_number", "Lot number", self.lot, "Lot or batch number, as printed")
        self.booster = QCheckBox("Booster (an additional dose this session)", self)
        self.add_field(
            "booster", "", self.booster, "Ticked when this is not the session's first dose"
        )
        self.note = QLineEdit(self)
        self.note.setPlaceholderText("optional")
        self.add_field("note", "Note", self.note, "Anything else about this dose")

        self.drug.currentIndexChanged.connect(self._drug_changed)
        self.dose.textChanged.connect(self.update_totals)
        if last is not None:
            self._copy_previous(last)
        self._drug_changed()

    def _copy_previous(self, last: dict[str, Any]) -> None:
        select_code(self.drug, last.get("drug"))
        self.drug_other.setText(last.get("drug_other") or "")
        select_code(self.route, last.get("route"))
        self.lot.setText(last.get("lot_number") or "")
        self.booster.setChecked(True)

    def _drug_changed(self) -> None:
        self.drug_other.setEnabled(self.drug.currentData() == "other")

    # --- the live mg/kg and running total ---------------------------------------------------

    def previous_total_mg(self) -> float:
        return sum(float(d["dose_mg"]) for d in self.previous_doses)

    def _per_kg(self, mg: float) -> str:
        return f"{mg / self.weight_kg:.2f} mg/kg" if self.weight_kg > 0 else "— mg/kg"

    def _so_far(self, earlier: float) -> str:
        if not earlier:
            return "No other dose recorded this session"
        return f"Cumulative so far: {_fmt(round(earlier, 3))} mg ({self._per_kg(earlier)})"

    def totals_text(self) -> str:
        weight = f"{_fmt(self.weight_kg)} kg"
        earlier = self.previous_total_mg()
        try:
            mg = parse_number(self.dose.text(), "Dose")
        except ValueError:
            return f"“{self.dose.text().strip()}” is not a number\n{self._so_far(earlier)}"
        if mg is None:
            return f"Type the dose to see mg/kg for {weight}\n{self._so_far(earlier)}"
        total = earlier + mg
        return (
            f"{self._per_kg(mg)} for {weight}\n"
            f"Cumulative: {_fmt(round(total, 3))} mg ({self._per_kg(total)})"
        )

    def update_totals(self) -> None:
        self.totals.setText(self.totals_text())

    # --- record ---------------------------------------------------------------------------

    def entry(self) -> Dose:
        errors: list[FieldError] = []
        dose_mg = self.read_number(errors, "dose_mg", "Dose")
        if dose_mg is None and not errors:
            errors.append(FieldError("dose_mg", "Dose: type the dose in mg"))
        if errors or dose_mg is None:
            raise ValidationError(errors)
        drug = self.drug.currentData() or ""
        return Dose(
            drug=drug,
            route=self.route.currentData() or "",
            dose_mg=dose_mg,
            observed_at=self.observed_at(),
            lot_number=self.lot.text(),
            booster=self.booster.isChecked(),
            drug_other=self.drug_other.text() if drug == "other" else "",
            weight_kg=self.weight_kg,
            note=self.note.text(),
        )

    def fill(self, row: dict[str, Any]) -> None:
        select_code(self.drug, row.get("drug"))
        self.drug_other.setText(row.get("drug_other") or "")
        select_code(self.route, row.get("route"))
        if row.get("dose_mg") is not None:
            self.dose.setText(_fmt(float(row["dose_mg"])))
        self.lot.setText(row.get("lot_number") or "")
        self.booster.setChecked(bool(row.get("is_booster")))
        self.note.setText(row.get("note") or "")
