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

from kapmonitor.domain import checklists, suicidality
from kapmonitor.domain.clock import from_iso
from kapmonitor.domain.protocol import Protocol
from kapmonitor.domain.reference import default_reference
from kapmonitor.domain.validation import FieldError, ValidationError
from kapmonitor.store.errors import StoreError
from kapmonitor.ui.forms.form_base import FittingDialog, fit_to_screen
from kapmonitor.ui.widgets.alarm_banner import local_hhmm, priority_tag

# (response, detail, symptoms) -> row id; a suicidality alarm also passes risk_assessment=...
AckSaveFn = Callable[..., int]
# (checklist id, step code) -> the stored step row (observed_at, recorded_by); raises to refuse.
TickFn = Callable[[str, str], dict[str, Any]]


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

    field_aliases = _FIELD_ALIASES

    def __init__(
        self,
        alarm: dict[str, Any],
        save: AckSaveFn,
        recorder: str,
        parent: QWidget | None = None,
        *,
        tick: TickFn | None = None,
        ticked: list[dict[str, Any]] | None = None,
        protocol: Protocol | None = None,
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
        # Airway / escalation checklists (respiratory or serious adverse event): each tick is
        # saved at once, with its time and who, so the record shows when each step was done.
        self._tick = tick
        self.step_boxes: dict[tuple[str, str], QCheckBox] = {}
        self.step_texts: dict[tuple[str, str], str] = {}
        self.step_stamps: dict[tuple[str, str], QLabel] = {}
        self.step_checklists: list[QGroupBox] = []
        for found in checklists.for_alarm(alarm):
            self._build_checklist(outer, found, ticked or [], protocol)
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

    def _build_checklist(
        self,
        outer: QVBoxLayout,
        found: checklists.Checklist,
        ticked: list[dict[str, Any]],
        protocol: Protocol | None,
    ) -> None:
        """One checklist as a box of steps; a step already recorded shows its time and who."""
        box = QGroupBox(found.title, self)
        box.setObjectName("AlarmChecklist")
        layout = QVBoxLayout(box)
        layout.setSpacing(2)
        if found.intro:
            intro = QLabel(found.intro, box)
            intro.setWordWrap(True)
            layout.addWidget(intro)
        raised = self.alarm.get("observed_at")
        due = checklists.report_due(from_iso(raised), protocol) if raised else None
        # The due date in the clinician's local time, with the weekday: "Mon 09 Mar 2026".
        due_text = due.astimezone().strftime("%a %d %b %Y") if due is not None else ""
        done = checklists.done_steps(ticked, int(self.alarm.get("id", 0)), found.id)
        for step in found.steps:
            # A short name on the box, the rest wrapped under it: long steps (the report, with
            # where to and by when) must not widen the dialog beyond the laptop's screen.
            text = checklists.step_text(step, protocol, due, due_text)
            name, _, rest = text.partition(": ")
            check = QCheckBox(name, box)
            check.setObjectName(f"step_{found.id}_{step.code}")
            check.setToolTip(f"{text}\nTick when done: saved at once with the time and your name")
            layout.addWidget(check)
            if rest:
                detail = QLabel(rest, box)
                detail.setObjectName("StepDetail")
                detail.setWordWrap(True)
                detail.setContentsMargins(24, 0, 0, 4)
                layout.addWidget(detail)
            stamp = QLabel(box)
            stamp.setObjectName("StepDone")
            stamp.setContentsMargins(24, 0, 0, 4)
            stamp.hide()
            layout.addWidget(stamp)
            self.step_stamps[(found.id, step.code)] = stamp
            self.step_texts[(found.id, step.code)] = text
            self.step_boxes[(found.id, step.code)] = check
            row = done.get(step.code)
            if row is not None:
                self._show_done((found.id, step.code), row)
            else:
                # A bound method, not a lambda holding ``self``: a closure over the dialog,
                # kept by its own check box's connection, tied the dialog into a cycle that
                # only the garbage collector frees, at any moment inside an event's dispatch.
                check.toggled.connect(self._step_toggled)
        source = QLabel(f"Source: {found.source}", box)
        source.setObjectName("Muted")
        source.setWordWrap(True)
        layout.addWidget(source)
        outer.addWidget(box)
        self.step_checklists.append(box)

    def _show_done(self, key: tuple[str, str], row: dict[str, Any]) -> None:
        """A recorded step stays ticked and says when and by whom (it cannot be unticked); the
        stamp goes on its own line so that the dialog keeps its width."""
        check = self.step_boxes[key]
        check.blockSignals(True)
        check.setChecked(True)
        check.blockSignals(False)
        check.setEnabled(False)
        stamp = self.step_stamps[key]
        stamp.setText(f"✓ done {local_hhmm(row['observed_at'])} · {row['recorded_by']}")
        stamp.show()
        if self.isVisible():
            self.fit()

    def _step_toggled(self, on: bool) -> None:
        """A step's box was ticked: record that step (which box is the signal's sender)."""
        sender = self.sender()
        for key, box in self.step_boxes.items():
            if box is sender:
                if on:
                    self._tick_step(*key)
                return

    def _tick_step(self, checklist_id: str, step: str) -> None:
        check = self.step_boxes[(checklist_id, step)]
        rows: list[dict[str, Any]] = []

        def tick() -> None:
            if self._tick is None:
                raise StoreError("Checklist steps cannot be recorded here.")
            rows.append(self._tick(checklist_id, step))

        if not self.attempt(tick, "Step not recorded"):
            check.blockSignals(True)
            check.setChecked(False)
            check.blockSignals(False)
            return
        self._show_done((checklist_id, step), rows[0])

    def steps_done(self) -> list[tuple[str, str]]:
        """(checklist, step) of every step recorded, in the order shown."""
        return [key for key, box in self.step_boxes.items() if not box.isEnabled()]

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

        def save() -> None:
            if errors:
                raise ValidationError(errors)
            assert code is not None
            if assessment is not None:
                self.saved_id = self._save(
                    code, detail, self.symptom_codes(), risk_assessment=assessment
                )
            else:
                self.saved_id = self._save(code, detail, self.symptom_codes())

        if self.attempt(save):
            self.accept()

    # --- internals -----------------------------------------------------------------------

    def _update_emergency(self) -> None:
        self.emergency.setVisible(self.emergency_indicated())
        if self.isVisible():  # before the first show, polish has not sized the fonts yet
            self.fit()


__all__ = [
    "EMERGENCY_SYMPTOMS",
    "EMERGENCY_TEXT",
    "RESPONSES",
    "AlarmAckDialog",
]
