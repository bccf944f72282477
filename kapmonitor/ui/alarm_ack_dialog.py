"""Acknowledging an alarm means saying what was done about it.

An acknowledgement is part of the record (who, when, what response), so the response is chosen,
never assumed. For a critical blood-pressure alarm the dialog also asks the questions of the label's
hypertensive-crisis warning (Spravato prescribing information §5.6): any symptom of crisis or
encephalopathy means emergency referral, and the dialog says so in words, not only in colour. As
with the entry forms, the dialog closes only after the store has committed; a refusal keeps what was
typed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from kapmonitor.domain import suicidality
from kapmonitor.domain.reference import default_reference
from kapmonitor.domain.validation import FieldError, ValidationError
from kapmonitor.store.database import StoreError
from kapmonitor.ui.alarm_banner import local_hhmm, priority_tag
from kapmonitor.ui.field_errors import clear_refused, mark_refused, refusal_text, show_banner
from kapmonitor.ui.form_base import FittingDialog, fit_to_screen

# (response, detail, symptoms) -> row id; a suicidality alarm also passes risk_assessment=...
AckSaveFn = Callable[..., int]


def _pairs(catalogue: str) -> tuple[tuple[str, str], ...]:
    """(code, label) from the shipped catalogue: one list, shared with the store's validation."""
    return tuple((c.code, c.label) for c in default_reference().choices(catalogue))


RESPONSES = _pairs("alarm_responses")
EMERGENCY_SYMPTOMS = _pairs("hypertension_symptoms")
EMERGENCY_PARAMETERS = ("sbp", "dbp")
CHECKLIST_TEXT = (
    "Ask and look for symptoms of hypertensive crisis (chest pain, short of breath) or of "
    "encephalopathy (sudden severe headache, visual change, seizure, reduced consciousness). "
    "Any of them: emergency referral (Spravato prescribing information §5.6)."
)
EMERGENCY_TEXT = "⚠ EMERGENCY REFERRAL indicated (hypertensive crisis/encephalopathy symptoms)"

# Field names a ValidationError may use, mapped to this dialog's widgets.
_FIELD_ALIASES = {
    "response": "response",
    "response_code": "response",
    "detail": "detail",
    "detail_text": "detail",
    "symptoms": "symptoms",
    "symptom_codes": "symptoms",
    "risk_assessment": "risk_assessment",
}


class AlarmAckDialog(FittingDialog):
    """Record the response to one alarm; ``saved_id`` is the acknowledgement's row id."""

    def __init__(
        self,
        alarm: dict[str, Any],
        save: AckSaveFn,
        recorder: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.alarm = alarm
        self._save = save
        self.recorder = recorder
        self.saved_id: int | None = None
        priority = str(alarm.get("priority", ""))
        self.setWindowTitle(f"Acknowledge alarm — {priority_tag(priority)}")
        self.setModal(True)
        self.setMinimumWidth(560)

        # The alarm, the response and the checklist scroll if the screen is short; the
        # emergency line, the recorder and the buttons below them never do.
        outer = QVBoxLayout(self.body)
        outer.setContentsMargins(0, 0, 0, 0)

        raised = alarm.get("observed_at")
        when = f" — raised {local_hhmm(raised)}" if raised else ""
        self.tag = QLabel(f"{priority_tag(priority)}{when}", self)
        # Critical wears the error band; the words say the priority whatever the colour.
        names = {"critical": "ErrorBanner", "warning": "Warn"}
        self.tag.setObjectName(names.get(priority, "Muted"))
        outer.addWidget(self.tag)
        self.message = QLabel(str(alarm.get("message", "")), self)
        self.message.setObjectName("AlarmAckMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setStyleSheet("font-size: 18pt; font-weight: bold;")
        outer.addWidget(self.message)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.response = QComboBox(self)
        self.response.addItem("— choose what was done —", None)
        for code, label in RESPONSES:
            self.response.addItem(label, code)
        self.response.setToolTip("What was done about this alarm (type to jump, e.g. R)")
        form.addRow("Response taken", self.response)
        self.detail = QLineEdit(self)
        self.detail.setPlaceholderText("optional; required for “Other”")
        self.detail.setToolTip("Details of the response (required when the response is Other)")
        form.addRow("Detail", self.detail)
        outer.addLayout(form)
        self.field_widgets: dict[str, QWidget] = {
            "response": self.response,
            "detail": self.detail,
        }

        self.symptom_boxes: dict[str, QCheckBox] = {}
        self.checklist: QGroupBox | None = None
        self.emergency = QLabel(EMERGENCY_TEXT, self)
        self.emergency.setObjectName("ErrorBanner")
        self.emergency.setWordWrap(True)
        self.emergency.setStyleSheet("font-size: 15pt;")
        self.emergency.hide()
        if self.needs_emergency_checklist(alarm):
            self.checklist = QGroupBox("Emergency checklist", self)
            box_layout = QVBoxLayout(self.checklist)
            intro = QLabel(CHECKLIST_TEXT, self.checklist)
            intro.setWordWrap(True)
            box_layout.addWidget(intro)
            for code, label in EMERGENCY_SYMPTOMS:
                box = QCheckBox(label, self.checklist)
                box.setToolTip(f"Tick if present: {label.lower()} (Space toggles)")
                box.toggled.connect(self._update_emergency)
                box_layout.addWidget(box)
                self.symptom_boxes[code] = box
            outer.addWidget(self.checklist)
            self.field_widgets["symptoms"] = self.checklist
        self.risk_box: QGroupBox | None = None
        self.risk_method: QComboBox | None = None
        self.risk_outcome: QComboBox | None = None
        self.risk_actions: dict[str, QCheckBox] = {}
        self.risk_note: QLineEdit | None = None
        if suicidality.is_safety_alarm(alarm):
            self._build_risk_assessment(outer)
        outer.addStretch(1)
        self.foot.addWidget(self.emergency)

        who = QLabel(f"Acknowledging as <b>{recorder}</b>", self)
        who.setObjectName("RecorderNote")
        self.foot.addWidget(who)
        self.buttons = QDialogButtonBox(self)
        self.save_button = self.buttons.addButton(
            "Acknowledge", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.save_button.setDefault(True)
        self.save_button.setToolTip("Save the acknowledgement (Enter)")
        cancel = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setToolTip("Close without acknowledging (Esc)")
        self.buttons.accepted.connect(self.try_save)
        self.buttons.rejected.connect(self.reject)
        self.foot.addWidget(self.buttons)
        self.response.setFocus()
        fit_to_screen(self)

    def _build_risk_assessment(self, outer: QVBoxLayout) -> None:
        """PHQ-9 item 9: the acknowledgement is the documented risk assessment (method, outcome,
        actions), from the editable catalogue; the store refuses it without them."""
        catalogue = suicidality.catalogue()
        box = QGroupBox("Suicide risk assessment (required)", self)
        box.setObjectName("RiskAssessment")
        layout = QVBoxLayout(box)
        form = QFormLayout()
        self.risk_method = QComboBox(box)
        self.risk_method.addItem("— how was the risk assessed? —", None)
        for choice in catalogue.methods:
            self.risk_method.addItem(choice.label, choice.code)
        self.risk_method.setToolTip("How the risk was assessed (type to jump, e.g. C)")
        form.addRow("Assessed with", self.risk_method)
        self.risk_outcome = QComboBox(box)
        self.risk_outcome.addItem("— outcome —", None)
        for choice in catalogue.outcomes:
            self.risk_outcome.addItem(choice.label, choice.code)
        self.risk_outcome.setToolTip("The assessment's outcome (type L, M or H)")
        form.addRow("Outcome", self.risk_outcome)
        layout.addLayout(form)
        caption = QLabel("Action taken (tick each):", box)
        layout.addWidget(caption)
        grid = QGridLayout()
        grid.setHorizontalSpacing(14)
        grid.setVerticalSpacing(2)
        for index, choice in enumerate(catalogue.actions):
            check = QCheckBox(choice.label, box)
            check.setToolTip(f"Tick if done: {choice.label.lower()} (Space toggles)")
            grid.addWidget(check, index // 2, index % 2)
            self.risk_actions[choice.code] = check
        layout.addLayout(grid)
        self.risk_note = QLineEdit(box)
        self.risk_note.setPlaceholderText("optional note (e.g. who was called, plan agreed)")
        layout.addWidget(self.risk_note)
        source = QLabel("Guidance: PHQ-9 item 9 follow-up; C-SSRS screener (Columbia).", box)
        source.setObjectName("Muted")
        source.setToolTip(catalogue.source)
        source.setWordWrap(True)
        layout.addWidget(source)
        outer.addWidget(box)
        self.risk_box = box
        self.field_widgets["risk_assessment"] = box

    def risk_assessment(self) -> dict[str, Any] | None:
        """The documented assessment as entered (None for other alarms)."""
        if self.risk_box is None:
            return None
        assert self.risk_method is not None and self.risk_outcome is not None
        assert self.risk_note is not None
        return {
            "method": self.risk_method.currentData(),
            "outcome": self.risk_outcome.currentData(),
            "actions": [code for code, box in self.risk_actions.items() if box.isChecked()],
            "note": self.risk_note.text().strip(),
        }

    # --- public API ----------------------------------------------------------------------

    @staticmethod
    def needs_emergency_checklist(alarm: dict[str, Any]) -> bool:
        """Only a critical blood-pressure alarm asks for the crisis symptoms."""
        return (
            alarm.get("priority") == "critical" and alarm.get("parameter") in EMERGENCY_PARAMETERS
        )

    def response_code(self) -> str | None:
        data = self.response.currentData()
        return str(data) if data is not None else None

    def symptom_codes(self) -> list[str]:
        return [code for code, box in self.symptom_boxes.items() if box.isChecked()]

    def emergency_indicated(self) -> bool:
        return bool(self.symptom_codes())

    def try_save(self) -> None:
        """Check the fields, call ``save``; close only once it has committed."""
        self._clear_errors()
        code = self.response_code()
        detail = self.detail.text().strip()
        errors: list[FieldError] = []
        if code is None:
            errors.append(FieldError("response", "Response taken: choose what was done"))
        elif code == "other" and not detail:
            errors.append(FieldError("detail", "Detail: say what was done (response is Other)"))
        assessment = self.risk_assessment()
        if self.risk_box is not None:
            errors += [
                FieldError("risk_assessment", problem)
                for problem in suicidality.assessment_problems(assessment)
            ]
        try:
            if errors:
                raise ValidationError(errors)
            assert code is not None
            if assessment is not None:
                row_id = self._save(code, detail, self.symptom_codes(), risk_assessment=assessment)
            else:
                row_id = self._save(code, detail, self.symptom_codes())
        except ValidationError as exc:
            self._show_errors(exc)
            return
        except StoreError as exc:
            self._show_banner(f"Not saved. {exc}")
            return
        self.saved_id = row_id
        self.accept()

    def errors_text(self) -> str:
        return self.banner.text() if not self.banner.isHidden() else ""

    # --- internals -----------------------------------------------------------------------

    def _update_emergency(self) -> None:
        self.emergency.setVisible(self.emergency_indicated())
        if self.isVisible():  # before the first show, polish has not sized the fonts yet
            self.fit()

    def _clear_errors(self) -> None:
        clear_refused(self.field_widgets, self.banner)

    def _show_errors(self, exc: ValidationError) -> None:
        first = mark_refused(self.field_widgets, exc.errors, _FIELD_ALIASES)
        self._show_banner(refusal_text("Not saved:\n", exc.errors))
        if first is not None:
            first.setFocus()
            self.scroll.show_widget(first)

    def _show_banner(self, text: str) -> None:
        show_banner(self, self.banner, text)
        self.fit()


__all__ = [
    "EMERGENCY_SYMPTOMS",
    "EMERGENCY_TEXT",
    "RESPONSES",
    "AlarmAckDialog",
]
