"""Discharge readiness: the protocol's score, the checklist and the minimum time, live.

The patient may leave only when several independent things hold at once (modified Aldrete 1995; ASA
2018 sedation discharge criteria), so the dialog lists every unmet condition as the clinician works
through it, rather than a single verdict at the end. Items the log already knows (BP change, MOAA/S,
SpO₂) are shown with their basis and cannot be edited here; only the items a clinician judges at the
bedside are asked. Recording an assessment is always allowed (an assessment that fails is still a
record); discharging although not ready needs a reason, which is stored with it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialogButtonBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from kapmonitor.domain import discharge_check
from kapmonitor.domain.clock import from_iso
from kapmonitor.domain.discharge import CHECKLIST, Readiness, ScoreResult
from kapmonitor.domain.discharge_check import (
    CLINICIAN_ITEMS,
    PAIN_CODE,
    DischargeFacts,
)
from kapmonitor.domain.discharge_gate import InputValue
from kapmonitor.domain.protocol import Protocol
from kapmonitor.domain.validation import FieldError, ValidationError
from kapmonitor.ui.forms.form_base import FittingDialog, fit_to_screen
from kapmonitor.ui.widgets.theme import DAY, NIGHT, Theme

DischargeSaveFn = Callable[[ScoreResult, dict[str, bool], Readiness, str | None], int]

SCORE_TITLES = {"aldrete": "Modified Aldrete", "padss": "PADSS"}

NOT_ASSESSED = "— assess —"
# The unmet conditions are listed beside the checklist in a box of this many lines that scrolls
# beyond: a fixed size, so ticking a box (which removes a reason) never moves the other boxes.
REASON_LINES = 6


def _palette_theme(widget: QWidget) -> Theme:
    """Day or night, read from the palette the application theme installed."""
    return NIGHT if widget.palette().window().color().lightness() < 128 else DAY


def _minutes_text(minutes: float) -> str:
    whole = int(minutes)
    hours, mins = divmod(whole, 60)
    return f"{hours} h {mins:02d} min" if hours else f"{mins} min"


def _decoded(value: Any, default: Any) -> Any:
    """A stored JSON column as Python (rows from the store carry JSON text)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return default
    return default if value is None else value


def _input_text(item: InputValue) -> str:
    """One input as the clinician reads it: mark, value, age (e.g. "✔ SBP 120 mmHg · 3 min ago")."""
    mark = "✔" if item.usable else "✘"
    if item.age_minutes is None:
        return f"{mark} {item.label}: {item.text}"
    age = "now" if item.age_minutes < 1 else f"{int(item.age_minutes)} min ago"
    late = (
        " (before the last dose)" if item.problem and "before the last dose" in item.problem else ""
    )
    return f"{mark} {item.label} {item.text} · {age}{late}"


def _local_hhmm(iso: str) -> str:
    return from_iso(iso).astimezone().strftime("%H:%M")


class DischargeDialog(FittingDialog):
    """Assess and record discharge readiness; see :meth:`result_ready` after it closes.

    ``previous`` is the latest assessment stored in this session (a row of
    ``discharge_assessments``): its judged items and ticked boxes are shown again, so a
    clinician reopening the check after recording it continues from there rather than
    starting over.
    """

    def __init__(
        self,
        protocol: Protocol,
        facts: DischargeFacts,
        save: DischargeSaveFn,
        now: datetime,
        recorder: str,
        parent: QWidget | None = None,
        *,
        previous: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(parent)
        self.protocol = protocol
        self.facts = facts
        self._save = save
        self.now = now
        self.recorder = recorder
        self.saved_id: int | None = None
        self._result_ready = False
        self.score_name = protocol.discharge_score
        self.score: ScoreResult | None = None
        self.readiness_state: Readiness | None = None
        self._score_problem = ""
        self.setWindowTitle("Discharge readiness")
        self.setModal(True)
        self.setMinimumWidth(860)
        theme = _palette_theme(self)

        # The score and checklist scroll if the screen is short; the reason for an override,
        # the recorder and the buttons never do.
        outer = QVBoxLayout(self.body)
        outer.setContentsMargins(0, 0, 0, 0)

        title = SCORE_TITLES.get(self.score_name, self.score_name)
        self.time_line = QLabel(self._time_text(), self)
        self.time_line.setObjectName("Muted")
        self.time_line.setWordWrap(True)
        outer.addWidget(self.time_line)
        self.previous_line = QLabel("", self)
        self.previous_line.setObjectName("Muted")
        self.previous_line.setWordWrap(True)
        self.previous_line.hide()
        outer.addWidget(self.previous_line)

        # --- the score ---
        # The score's name and pass mark head its box (a separate big heading cost the lines
        # that large type needs on a 720 px screen).
        self.score_box = QGroupBox(f"{title} score — pass mark {protocol.discharge_pass}", self)
        self.grid = QGridLayout(self.score_box)
        self.grid.setHorizontalSpacing(14)
        self.grid.setColumnStretch(2, 1)
        self.grid.setColumnMinimumWidth(2, 340)  # the basis is the reason; never squeeze it
        for column, caption in enumerate(("Item", "Points", "Basis")):
            header = QLabel(caption, self.score_box)
            header.setObjectName("Muted")
            self.grid.addWidget(header, 0, column)
        self.inputs: dict[str, QWidget] = {}
        self.point_labels: dict[str, QLabel] = {}
        self.basis_labels: dict[str, QLabel] = {}
        self._build_score_rows()
        row = self.grid.rowCount()
        self.grid.addWidget(QLabel("<b>Total</b>", self.score_box), row, 0)
        self.total_label = QLabel("", self.score_box)
        self.total_label.setObjectName("ClockValue")
        self.verdict_label = QLabel("", self.score_box)
        self.verdict_label.setObjectName("DischargeVerdictLine")
        self.verdict_label.setStyleSheet(
            f"""
            QLabel#DischargeVerdictLine {{ font-weight: bold; color: {theme.warn}; }}
            QLabel#DischargeVerdictLine[passed="true"] {{ color: {theme.ok}; }}
            """
        )
        self.verdict_label.setWordWrap(True)
        self.grid.addWidget(self.total_label, row, 1)
        self.grid.addWidget(self.verdict_label, row, 2)
        outer.addWidget(self.score_box)

        # --- the checklist ---
        self.checklist_box = QGroupBox("Checklist (confirm each)", self)
        checklist_layout = QVBoxLayout(self.checklist_box)
        self.checks: dict[str, QCheckBox] = {}
        for code, label in CHECKLIST:
            box = QCheckBox(label, self.checklist_box)
            box.setToolTip("Space ticks or unticks")
            box.toggled.connect(self.refresh)
            checklist_layout.addWidget(box)
            self.checks[code] = box
        checklist_layout.addStretch(1)

        # --- each measured input with its value and age (the gate's view of the record) ---
        self.inputs_box = QGroupBox(self._inputs_title(), self)
        inputs_layout = QGridLayout(self.inputs_box)  # two columns: three lines, not six
        inputs_layout.setVerticalSpacing(2)
        inputs_layout.setHorizontalSpacing(14)
        self.input_lines: dict[str, QLabel] = {}
        for item in facts.gate.inputs if facts.gate is not None else ():
            line = QLabel(_input_text(item), self.inputs_box)
            line.setObjectName("Muted" if item.usable else "Warn")
            line.setWordWrap(True)
            line.setToolTip(item.problem or "Used: within the freshness window, after the dose")
            index = len(self.input_lines)
            inputs_layout.addWidget(line, index // 2, index % 2)
            self.input_lines[item.code] = line
        if not self.input_lines:
            vitals = "✔ recorded" if facts.recent_vitals else "✘ none recent: take a set first"
            line = QLabel(f"Vitals before discharge: {vitals}", self.inputs_box)
            line.setObjectName("Muted" if facts.recent_vitals else "Warn")
            line.setWordWrap(True)
            inputs_layout.addWidget(line, 0, 0, 1, 2)
            self.input_lines["vitals_set"] = line
        inputs_layout.setColumnStretch(0, 1)
        inputs_layout.setColumnStretch(1, 1)

        # --- the verdict, beside the checklist in a box that keeps its size ---
        self.verdict_box = QGroupBox("Readiness", self)
        verdict_layout = QVBoxLayout(self.verdict_box)
        self.ready_label = QLabel("", self.verdict_box)
        self.ready_label.setObjectName("DischargeVerdict")
        self.ready_label.setStyleSheet(
            f"""
            QLabel#DischargeVerdict {{ font-size: 18pt; font-weight: bold; padding: 4px; }}
            QLabel#DischargeVerdict[ready="true"] {{ color: {theme.ok}; }}
            QLabel#DischargeVerdict[ready="false"] {{ color: {theme.warn}; }}
            """
        )
        verdict_layout.addWidget(self.ready_label)
        self.reasons_label = QLabel("", self.verdict_box)
        self.reasons_label.setObjectName("DischargeReasons")
        self.reasons_label.setWordWrap(True)
        self.reasons_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.reasons_area = QScrollArea(self.verdict_box)
        self.reasons_area.setWidgetResizable(True)
        self.reasons_area.setFrameShape(QScrollArea.Shape.NoFrame)
        self.reasons_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.reasons_area.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.reasons_area.setWidget(self.reasons_label)
        self.reasons_area.viewport().setAutoFillBackground(False)
        self.reasons_label.setAutoFillBackground(False)  # the group's panel shows through
        # The longest reason would ask for a line of its own as wide as the screen; the lines
        # wrap to the room beside the checklist instead.
        self.reasons_area.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        verdict_layout.addWidget(self.reasons_area, 1)
        row = QHBoxLayout()
        row.addWidget(self.checklist_box, 1)
        row.addWidget(self.verdict_box, 1)
        outer.addLayout(row)
        # Each measured input with its value and age, under the checklist and the verdict.
        outer.addWidget(self.inputs_box)
        outer.addStretch(1)

        # --- override (appears on "Discharge anyway…") ---
        self.override_row = QWidget(self)
        override_layout = QHBoxLayout(self.override_row)
        override_layout.setContentsMargins(0, 0, 0, 0)
        override_caption = QLabel("Reason for discharging although not ready:", self.override_row)
        override_caption.setObjectName("Warn")
        self.override_edit = QLineEdit(self.override_row)
        self.override_edit.setPlaceholderText("required, e.g. escort waiting, reviewed by Dr X")
        self.override_edit.setToolTip("Required: why the patient leaves although not ready")
        self.field_widgets["override_reason"] = self.override_edit
        override_layout.addWidget(override_caption)
        override_layout.addWidget(self.override_edit, 1)
        self.override_row.hide()
        self.foot.addWidget(self.override_row)

        who = QLabel(f"Recording as <b>{recorder}</b>", self)
        who.setObjectName("RecorderNote")
        self.foot.addWidget(who)
        self.buttons = QDialogButtonBox(self)
        self.record_button = self.buttons.addButton(
            "Record assessment", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.record_button.setDefault(True)
        self.record_button.setToolTip("Save this assessment to the session (Enter)")
        self.override_button = QPushButton("&Discharge anyway…", self)
        self.override_button.setAutoDefault(False)
        self.override_button.setToolTip(
            "Discharge although a condition is unmet; asks for the reason (Alt+D)"
        )
        self.buttons.addButton(self.override_button, QDialogButtonBox.ButtonRole.ActionRole)
        cancel = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setToolTip("Close without recording (Esc)")
        self.buttons.accepted.connect(self.record_assessment)
        self.buttons.rejected.connect(self.reject)
        self.override_button.clicked.connect(self.discharge_anyway)
        self.foot.addWidget(self.buttons)

        if previous is not None:
            self._prefill(previous)
        self.refresh()
        self._reserve_reasons_room()
        first = next(iter(self.inputs.values()), None) or next(iter(self.checks.values()))
        first.setFocus()
        fit_to_screen(self)

    # --- building ------------------------------------------------------------------------

    def _inputs_title(self) -> str:
        gate = self.facts.gate
        if gate is None:
            return "Measured inputs"
        return f"Measured inputs (used if ≤ {gate.window_minutes:g} min old, after the last dose)"

    def input_texts(self) -> dict[str, str]:
        """Each input line as shown (value and age), by code: sbp, hr, spo2, moaas, …"""
        return {code: line.text() for code, line in self.input_lines.items()}

    def _reserve_reasons_room(self) -> None:
        """Give the reasons a fixed height of REASON_LINES lines (they scroll beyond).

        Reasons come and go as boxes are ticked; a list that changed size with them moved
        every checkbox under the pointer.
        """
        self.ensurePolished()
        lines = self.reasons_label.fontMetrics().lineSpacing() * REASON_LINES
        self.reasons_area.setFixedHeight(lines + 4)

    def _prefill(self, previous: Mapping[str, Any]) -> None:
        """Show the last recorded assessment's judged items and ticked boxes again."""
        if previous.get("score_name") not in (None, self.score_name):
            return  # another score (the protocol changed): its items do not apply
        for item in _decoded(previous.get("items"), []):
            code, points = item.get("code"), item.get("points")
            widget = self.inputs.get(str(code))
            if points is None or widget is None:
                continue
            if isinstance(widget, QComboBox):
                index = widget.findData(int(points))
                if index >= 0:
                    widget.setCurrentIndex(index)
            elif isinstance(widget, QSpinBox):
                widget.setValue(int(points))
        for code, ticked in _decoded(previous.get("checklist"), {}).items():
            if code in self.checks:
                self.checks[code].setChecked(bool(ticked))
        when = previous.get("observed_at")
        by = previous.get("recorded_by") or ""
        said = "ready" if previous.get("ready") else "not ready"
        at = f" at {_local_hhmm(str(when))}" if when else ""
        self.previous_line.setText(
            f"Answers from the assessment recorded{at}{f' by {by}' if by else ''} ({said}): "
            "change whatever is different now."
        )
        self.previous_line.show()

    def _build_score_rows(self) -> None:
        clinician = CLINICIAN_ITEMS.get(self.score_name, {})
        preview = self._compute_score(default_zero=True)
        codes = [item.code for item in preview.items] if preview else list(clinician)
        labels = {item.code: item.label for item in preview.items} if preview else {}
        for code in codes:
            row = self.grid.rowCount()
            label_text = clinician[code][0] if code in clinician else labels.get(code, code)
            caption = QLabel(label_text, self.score_box)
            self.grid.addWidget(caption, row, 0)
            basis = QLabel("", self.score_box)
            basis.setObjectName("Muted")
            basis.setWordWrap(True)
            self.basis_labels[code] = basis
            if code in clinician:
                combo = QComboBox(self.score_box)
                combo.addItem(NOT_ASSESSED, None)
                for points, meaning in clinician[code][1]:
                    combo.addItem(f"{points} — {meaning}", points)
                combo.setToolTip(f"{label_text}: type 2, 1 or 0 to choose")
                combo.currentIndexChanged.connect(self.refresh)
                combo.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
                caption.setBuddy(combo)
                self.inputs[code] = combo
                self.grid.addWidget(combo, row, 1)
            elif code == PAIN_CODE:
                spin = QSpinBox(self.score_box)
                spin.setRange(-1, 10)
                spin.setValue(-1)
                spin.setSpecialValueText(NOT_ASSESSED)
                spin.setSuffix(" / 10")
                spin.setToolTip("Pain now, visual analogue scale 0–10 (type the number)")
                spin.valueChanged.connect(self.refresh)
                caption.setText("Pain (VAS 0–10)")
                caption.setBuddy(spin)
                self.inputs[code] = spin
                self.grid.addWidget(spin, row, 1)
            else:
                points = QLabel("", self.score_box)
                points.setObjectName("DischargePoints")
                points.setStyleSheet("font-weight: bold;")
                self.point_labels[code] = points
                self.grid.addWidget(points, row, 1)
            self.grid.addWidget(basis, row, 2)

    # --- computing -----------------------------------------------------------------------

    def unassessed(self) -> list[str]:
        """Labels of the clinician items not yet judged."""
        clinician = CLINICIAN_ITEMS.get(self.score_name, {})
        return [
            clinician[code][0] if code in clinician else "Pain"
            for code, widget in self.inputs.items()
            if not self._widget_judged(widget)
        ]

    def judged(self) -> dict[str, int | None]:
        """The clinician's answers so far: points per judged item, None while unassessed."""
        answers: dict[str, int | None] = {}
        for code, widget in self.inputs.items():
            if isinstance(widget, QComboBox):
                data = widget.currentData()
                answers[code] = None if data is None else int(data)
            elif isinstance(widget, QSpinBox):
                answers[code] = widget.value() if widget.value() >= 0 else None
        return answers

    def _compute_score(self, default_zero: bool) -> ScoreResult | None:
        """The score from the facts and the judged items (unjudged ones as 0 if asked)."""
        try:
            return discharge_check.compute_score(
                self.protocol, self.facts, self.judged(), default_zero
            )
        except LookupError:
            return None
        except ValueError as exc:  # e.g. a protocol pass mark above the score's maximum
            self._score_problem = f"The protocol's discharge score cannot be used: {exc}"
            return None

    def checklist(self) -> dict[str, bool]:
        return {code: box.isChecked() for code, box in self.checks.items()}

    def refresh(self) -> None:
        """Recompute the score and readiness from the current answers and show them.

        The verdict and its reasons come from :func:`discharge_check.assess`, the same code
        the scenario runner calls, so both say the same thing in the same words."""
        check = discharge_check.assess(
            self.protocol, self.facts, self.judged(), self.checklist(), self.now
        )
        self._score_problem = check.problem
        preview = check.preview
        missing = list(check.unassessed)
        self.score = check.score
        if preview is not None:
            for item in preview.items:
                if item.code in self.point_labels:
                    shown = "n/a" if item.points is None else str(item.points)
                    self.point_labels[item.code].setText(shown)
                    self.basis_labels[item.code].setText(item.basis)
                elif item.code in self.basis_labels:
                    judged = self._widget_judged(self.inputs[item.code])
                    self.basis_labels[item.code].setText(item.basis if judged else "")
            maximum = preview.maximum
        else:
            maximum = 0
        pass_mark = self.protocol.discharge_pass
        passed = "true" if self.score is not None and self.score.passed else "false"
        if self.verdict_label.property("passed") != passed:
            self.verdict_label.setProperty("passed", passed)
            self.verdict_label.style().unpolish(self.verdict_label)
            self.verdict_label.style().polish(self.verdict_label)
        if self.score is not None:
            self.total_label.setText(f"{self.score.total}/{maximum} (pass mark {pass_mark})")
            self.verdict_label.setText("✔ passes" if self.score.passed else "✘ below the pass mark")
        else:
            self.total_label.setText(f"—/{maximum or '—'} (pass mark {pass_mark})")
            self.verdict_label.setText(
                f"incomplete: assess {', '.join(missing)}" if missing else ""
            )
        self.readiness_state = check.readiness
        ready = check.ready
        self.ready_label.setText("✔ READY FOR DISCHARGE" if ready else "✘ NOT READY FOR DISCHARGE")
        self.ready_label.setProperty("ready", "true" if ready else "false")
        self.ready_label.style().unpolish(self.ready_label)
        self.ready_label.style().polish(self.ready_label)
        self.reasons_label.setText("\n".join(f"• {r}" for r in check.reasons))
        self.override_button.setEnabled(not ready)
        if ready and not self.override_row.isHidden():
            self.override_row.hide()
            self.record_button.setDefault(True)
        if self._score_problem:
            self.show_banner(self._score_problem)

    def _time_text(self) -> str:
        minimum = self.protocol.min_monitoring_minutes
        if self.facts.first_dose is None:
            return f"No dose recorded (minimum monitoring {minimum} min from the first dose)"
        minutes = max((self.now - self.facts.first_dose).total_seconds() / 60, 0)
        return f"Monitored {_minutes_text(minutes)} since the first dose (minimum {minimum} min)"

    # --- public API ----------------------------------------------------------------------

    def total_text(self) -> str:
        """The total as shown, e.g. ``"8/10 (pass mark 9)"``."""
        return self.total_label.text()

    def reasons(self) -> list[str]:
        """Every unmet condition as shown."""
        text = self.reasons_label.text()
        return [line.removeprefix("• ") for line in text.splitlines()] if text else []

    def is_ready(self) -> bool:
        """Ready now, going by the answers so far (before saving)."""
        state = self.readiness_state
        return bool(state and state.ready and not self._score_problem)

    def result_ready(self) -> bool:
        """After saving: may the patient leave now (ready, or overridden with a reason)?"""
        return self._result_ready

    def record_assessment(self) -> None:
        """Save the assessment as it stands, ready or not."""
        if not self.override_row.isHidden():
            self.discharge_anyway()  # Enter in the reason field means "save the override"
            return
        self._try_save(None)

    def discharge_anyway(self) -> None:
        """First press shows the reason field; the next saves with the reason given."""
        if self.is_ready():
            return
        if self.override_row.isHidden():
            self.override_row.show()
            self.override_button.setText("Save &discharge with this reason")
            self.override_button.setDefault(True)
            self.override_edit.setFocus()
            self.fit()
            return
        reason = self.override_edit.text().strip()
        if not reason:
            self.clear_errors()
            self.show_refusal(
                ValidationError(
                    FieldError(
                        "override_reason", "Give the reason for discharging although not ready"
                    )
                )
            )
            return
        self._try_save(reason)

    # --- saving --------------------------------------------------------------------------

    def _try_save(self, override: str | None) -> None:
        def save() -> None:
            self.refresh()
            if self._score_problem:
                raise ValidationError(FieldError("score", self._score_problem))
            missing = self.unassessed()
            if missing or self.score is None:
                raise ValidationError(
                    FieldError("score", f"Assess {', '.join(missing)} before recording")
                )
            state = self.readiness_state
            assert state is not None
            self.saved_id = self._save(self.score, self.checklist(), state, override)
            self._result_ready = state.ready or bool(override)

        if self.attempt(save):
            self.accept()

    def show_errors(self, exc: ValidationError, heading: str | None = None) -> None:
        """The score's refusal names no one field: the first item still to judge gets the focus."""
        super().show_errors(exc, heading)
        if exc.for_field("score"):
            first = next((w for w in self.inputs.values() if not self._widget_judged(w)), None)
            if first is not None:
                first.setFocus()

    @staticmethod
    def _widget_judged(widget: QWidget) -> bool:
        if isinstance(widget, QComboBox):
            return widget.currentData() is not None
        if isinstance(widget, QSpinBox):
            return widget.value() >= 0
        return True


__all__ = ["CLINICIAN_ITEMS", "DischargeDialog", "DischargeFacts", "DischargeSaveFn"]
