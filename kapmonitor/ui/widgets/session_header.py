"""The strip that is always visible: who, who is recording, phase, and the clocks.

Every duration is computed from stored times and the injected clock at each tick, so a restart
(or a laptop that slept) shows the same clock as before.

The strip wraps (a flow layout) rather than widening the window: at 1280 px in large type with
the longest phase name it takes a second row instead of pushing the window off the screen. The
time limit and the cumulative dose ride under the clocks they belong to, in smaller type, so the
usual case is one row.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFrame, QLabel, QVBoxLayout, QWidget

from kapmonitor.domain.clock import format_duration
from kapmonitor.ui.widgets.flow_layout import FlowLayout, flow_policy
from kapmonitor.ui.widgets.steady_label import SteadyLabel

LONG_CODE = 14  # characters: a longer patient code is set in smaller type, never cut


def _pair(
    flow: FlowLayout, parent: QWidget, caption: str, name: str = "ClockValue", sub: bool = False
) -> tuple[QLabel, QLabel | None]:
    """A caption above a value (and optionally a small line under it), as one flow item."""
    box = QWidget(parent)
    column = QVBoxLayout(box)
    column.setContentsMargins(0, 0, 12, 0)
    column.setSpacing(0)
    label = QLabel(caption, box)
    label.setObjectName("BigLabel")
    value = SteadyLabel("—", box)  # the clocks change every second
    value.setObjectName(name)
    column.addWidget(label)
    column.addWidget(value)
    subline = None
    if sub:
        subline = SteadyLabel("", box)
        subline.setObjectName("HeaderSub")
        column.addWidget(subline)
    column.addStretch(1)
    flow.addWidget(box)
    return value, subline


class SessionHeader(QFrame):
    recorder_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Panel")
        flow = FlowLayout(self, spacing=10)
        flow.setContentsMargins(8, 4, 8, 4)
        flow_policy(self)
        self.patient, _ = _pair(flow, self, "Patient", "PatientCode")
        self.phase, _ = _pair(flow, self, "Phase")
        self.elapsed, limit = _pair(flow, self, "Session", sub=True)
        self.since_dose, dose = _pair(flow, self, "Since dose", sub=True)
        assert limit is not None and dose is not None
        self.limit, self.dose = limit, dose
        box = QWidget(self)
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        caption = QLabel("Recording as (Ctrl+1…4)", box)
        caption.setObjectName("BigLabel")
        self.recorder = QComboBox(box)
        self.recorder.setObjectName("RecorderCombo")
        self.recorder.setToolTip(
            "Every entry is stored under this name. Switch with Ctrl+1…Ctrl+4."
        )
        self.recorder.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.recorder.currentTextChanged.connect(self.recorder_changed)
        column.addWidget(caption)
        column.addWidget(self.recorder)
        column.addStretch(1)
        flow.addWidget(box)
        self.flow = flow

    def set_patient(self, code: str) -> None:
        """A long pseudonymous code (up to 32 characters) is set smaller rather than cut."""
        self.patient.setText(code)
        self.patient.setObjectName("PatientCodeLong" if len(code) > LONG_CODE else "PatientCode")
        self.patient.style().unpolish(self.patient)
        self.patient.style().polish(self.patient)

    def set_clinicians(self, names: list[str]) -> None:
        self.recorder.blockSignals(True)
        self.recorder.clear()
        self.recorder.addItems(names)
        self.recorder.blockSignals(False)
        if names:
            self.recorder.setCurrentIndex(0)
            self.recorder_changed.emit(names[0])

    def update_times(
        self,
        now: datetime,
        started: datetime,
        first_dose: datetime | None,
        ended: datetime | None,
        limit_minutes: int,
    ) -> None:
        until = ended or now
        self.elapsed.setText(format_duration((until - started).total_seconds()))
        if first_dose is None:
            self.since_dose.setText("no dose yet")
        else:
            self.since_dose.setText(format_duration((until - first_dose).total_seconds()))
        remaining = limit_minutes * 60 - (until - started).total_seconds()
        limit_text = format_duration(abs(remaining))
        style = self.limit.objectName()
        if ended is not None:
            self.limit.setText("session ended")
        elif remaining >= 0:
            self.limit.setText(
                f"{limit_text} left of {limit_minutes // 60}:{limit_minutes % 60:02d}"
            )
            style = "HeaderSub"
        else:
            self.limit.setText(f"⚠ {limit_text} over the time limit")
            style = "Warn"
        # Restyled only when its style changes: this runs at every save and every clock tick,
        # and re-polishing a label re-lays out and repaints the whole strip each time.
        if style != self.limit.objectName():
            self.limit.setObjectName(style)
            self.limit.style().unpolish(self.limit)
            self.limit.style().polish(self.limit)
