"""Dose entry: what was given, by which route, and what it adds up to per kilogram.

The mg/kg and the session's running total are shown while typing, because a slip of one digit is
easiest to catch as an implausible mg/kg before it is saved. A later dose defaults to the drug,
route and lot of the one before and is pre-marked as a booster; the first dose of a session must
have its drug and route chosen explicitly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QWidget,
)

from kapmonitor.domain.dose_guards import BpFinding, DoseClearance, DoseReview
from kapmonitor.domain.records import Dose
from kapmonitor.domain.reference import Reference
from kapmonitor.domain.validation import FieldError, ValidationError, parse_number
from kapmonitor.ui.forms.form_base import EntryForm, FittingDialog, SaveFn, fill_combo, select_code

# What the form asks of the protocol (Qt-free, the same rules the store enforces), how a
# deferral is recorded, and how the second clinician's password is checked (None: no accounts).
ReviewFn = Callable[[Dose], DoseReview]
DeferFn = Callable[[BpFinding, str], None]
SignInFn = Callable[[str, str], str]  # (user name, password) -> display name, or raises

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
        review: ReviewFn | None = None,
        defer: DeferFn | None = None,
        second_clinicians: list[str] | None = None,
        sign_in: SignInFn | None = None,
    ) -> None:
        self.weight_kg = float(weight_kg)
        self.review = review
        self.defer = defer
        self.second_clinicians = [c for c in (second_clinicians or []) if c != recorder]
        self.sign_in = sign_in
        self.recorder_name = recorder
        self.deferred = False
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

    # --- the protocol's questions before saving ---------------------------------------------

    def try_save(self) -> None:
        """Save, first asking what the protocol requires for this dose: a decision about the
        BP before it, an override at the hard limit, the second clinician's confirmation of a
        dose outside the guards. The store checks the same rules again."""
        if self.correcting is not None or self.review is None:
            super().try_save()
            return
        records: list[Dose] = []

        def read() -> None:
            record = self.entry()
            # An impossible value (0 mg, no route) is refused as such before any clinical
            # question is asked about it; the store checks it again.
            record.validate(self.ref, max(self.now, record.observed_at))
            records.append(record)

        if not self.attempt(read):
            return
        clearance = self.ask_clearance(self.review(records[0]))
        if clearance is None:
            return

        def save() -> None:
            self.saved_id = self._save(dataclasses.replace(records[0], clearance=clearance))

        if self.attempt(save):
            self.accept()

    def _refused(self, text: str) -> None:
        """A clinical question left unanswered: the finding itself is why nothing was saved."""
        lines = [line for line in text.splitlines() if line.strip()]
        self.show_refusal(ValidationError([FieldError("dose_mg", line) for line in lines]))

    def ask_clearance(self, review: DoseReview) -> DoseClearance | None:
        """The clinicians' answers, or None when the dose is not given now (cancelled,
        deferred or refused: the banner says which)."""
        bp_reason = ""
        if review.needs_bp_override():
            assert review.bp is not None
            bp_reason = self._ask_bp_override(review.bp)
            if not bp_reason:
                self._refused(review.bp.message)
                return None
        elif review.needs_bp_decision():
            assert review.bp is not None
            bp_reason = self._ask_bp_decision(review.bp)
            if not bp_reason:
                return None
        if not review.needs_second_clinician():
            return DoseClearance(bp_reason=bp_reason)
        dialog = SecondClinicianDialog(
            review.guard_problems, self.recorder_name, self.second_clinicians, self.sign_in, self
        )
        if not dialog.exec() or dialog.confirmed_by is None:
            self._refused(
                "\n".join(review.guard_problems)
                + "\nRefused unless the second attending clinician confirms it."
            )
            return None
        return DoseClearance(
            bp_reason=bp_reason,
            confirmed_by=dialog.confirmed_by,
            confirm_reason=dialog.reason.text().strip(),
            signed_in=dialog.signed_in,
        )

    def _ask_reason(self, name: str, title: str, question: str) -> str:
        dialog = QInputDialog(self)
        dialog.setObjectName(name)
        dialog.setWindowTitle(title)
        dialog.setLabelText(question)
        dialog.setInputMode(QInputDialog.InputMode.TextInput)
        if not dialog.exec():
            return ""
        return dialog.textValue().strip()

    def _ask_bp_override(self, finding: BpFinding) -> str:
        box = QMessageBox(self)
        box.setObjectName("BpHardLimit")
        box.setWindowTitle("Blood pressure at the hard limit")
        box.setText(finding.message)
        override = box.addButton("Override with a reason…", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        if box.clickedButton() is not override:
            return ""
        return self._ask_reason(
            "BpOverrideReason", "Override", "Why give this dose at this blood pressure?"
        )

    def _ask_bp_decision(self, finding: BpFinding) -> str:
        """Proceed (returns the reason) or defer (recorded; returns "")."""
        box = QMessageBox(self)
        box.setObjectName("BpDecision")
        box.setWindowTitle("Blood pressure before dosing")
        box.setText(finding.message)
        proceed = box.addButton("Proceed with a reason…", QMessageBox.ButtonRole.AcceptRole)
        defer = box.addButton("Defer the dose…", QMessageBox.ButtonRole.RejectRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        if box.clickedButton() is proceed:
            reason = self._ask_reason(
                "BpProceedReason", "Proceed", "Why proceed with this dose at this blood pressure?"
            )
            if not reason:
                self._refused(finding.message)
            return reason
        if box.clickedButton() is defer and self.defer is not None:
            reason = self._ask_reason("BpDeferReason", "Defer", "Why defer, and what next?")
            if not reason:
                self._refused(finding.message)
                return ""
            defer = self.defer
            if not self.attempt(lambda: defer(finding, reason), "Deferral not recorded"):
                return ""
            self.deferred = True
            self.reject()
        return ""


class SecondClinicianDialog(FittingDialog):
    """The two-person check: the second attending clinician (not the recorder) confirms a dose
    outside the protocol's guards, by signing in where accounts exist, else by name and an
    explicit confirmation; a reason is required either way."""

    refusal_heading = "Not confirmed"

    def __init__(
        self,
        problems: tuple[str, ...],
        recorder: str,
        clinicians: list[str],
        sign_in: SignInFn | None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("SecondClinicianCheck")
        self.setWindowTitle("Two-person check: second clinician")
        self.setModal(True)
        self.sign_in = sign_in
        self.recorder = recorder
        self.confirmed_by: str | None = None
        self.signed_in = False
        form = QFormLayout(self.body)
        what = QLabel(
            "This dose is outside the protocol:\n• "
            + "\n• ".join(problems)
            + f"\n\n{recorder or 'The recorder'} cannot confirm it alone: the second "
            "attending clinician confirms it here.",
            self,
        )
        what.setWordWrap(True)
        form.addRow(what)
        self.name = QComboBox(self)
        self.name.setEditable(True)
        self.name.addItems(clinicians)
        form.addRow("Second clinician" if sign_in is None else "User name", self.name)
        self.password = QLineEdit(self)
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.confirm = QCheckBox("I am the second attending clinician and confirm this dose", self)
        # Only one way to confirm is shown: a password with accounts, a tick without.
        if sign_in is not None:
            form.addRow("Password", self.password)
            self.confirm.hide()
        else:
            form.addRow("", self.confirm)
            self.password.hide()
        self.reason = QLineEdit(self)
        self.reason.setPlaceholderText("Required: why this dose")
        form.addRow("Reason", self.reason)
        buttons = QDialogButtonBox(self)
        self.confirm_button = buttons.addButton("Confirm", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.try_confirm)
        buttons.rejected.connect(self.reject)
        self.foot.addWidget(buttons)
        self.field_widgets = {
            "name": self.name,
            "password": self.password,
            "confirm": self.confirm,
            "reason": self.reason,
        }
        self.name.setFocus()

    def try_confirm(self) -> None:
        self.clear_errors()
        name = self.name.currentText().strip()
        if not self.reason.text().strip():
            self._say("reason", "A reason is required")
            return
        if not name:
            self._say("name", "Name the second clinician")
            return
        if self.sign_in is not None:
            sign_in, secret = self.sign_in, self.password.text()
            self.password.clear()  # typed once per attempt, never kept
            signed: list[str] = []
            if not self.attempt(lambda: signed.append(sign_in(name, secret))):
                return
            name = signed[0]
        elif not self.confirm.isChecked():
            self._say("confirm", "The second clinician ticks the confirmation")
            return
        if name.casefold() == self.recorder.strip().casefold():
            self._say("name", f"{name} is recording this dose: a second clinician confirms it")
            return
        self.confirmed_by = name
        self.signed_in = self.sign_in is not None
        self.accept()

    def _say(self, field: str, text: str) -> None:
        self.show_refusal(ValidationError(FieldError(field, text)))
