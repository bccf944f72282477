"""The strip that is always visible: who, who is recording, phase, and the clocks.

Every duration is computed from stored times and the injected clock at each tick, so a restart
(or a laptop that slept) shows the same clock as before.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFrame, QGridLayout, QLabel, QWidget

from kapmonitor.domain.clock import format_duration


def _pair(layout: QGridLayout, column: int, caption: str, name: str = "ClockValue") -> QLabel:
    label = QLabel(caption)
    label.setObjectName("BigLabel")
    value = QLabel("—")
    value.setObjectName(name)
    layout.addWidget(label, 0, column)
    layout.addWidget(value, 1, column)
    return value


class SessionHeader(QFrame):
    recorder_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Panel")
        grid = QGridLayout(self)
        grid.setHorizontalSpacing(28)
        self.patient = _pair(grid, 0, "Patient", "PatientCode")
        self.phase = _pair(grid, 1, "Phase")
        self.elapsed = _pair(grid, 2, "Session")
        self.since_dose = _pair(grid, 3, "Since dose")
        self.limit = _pair(grid, 4, "Time limit")
        self.dose = _pair(grid, 5, "Cumulative dose")
        caption = QLabel("Recording as (Ctrl+1…4)")
        caption.setObjectName("BigLabel")
        self.recorder = QComboBox(self)
        self.recorder.setObjectName("RecorderCombo")
        self.recorder.setToolTip(
            "Every entry is stored under this name. Switch with Ctrl+1…Ctrl+4."
        )
        self.recorder.currentTextChanged.connect(self.recorder_changed)
        grid.addWidget(caption, 0, 6)
        grid.addWidget(self.recorder, 1, 6)
        grid.setColumnStretch(7, 1)

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
        if ended is not None:
            self.limit.setText("session ended")
        elif remaining >= 0:
            self.limit.setText(
                f"{limit_text} left of {limit_minutes // 60}:{limit_minutes % 60:02d}"
            )
            self.limit.setObjectName("ClockValue")
        else:
            self.limit.setText(f"⚠ {limit_text} OVER")
            self.limit.setObjectName("Warn")
        self.limit.style().unpolish(self.limit)
        self.limit.style().polish(self.limit)
