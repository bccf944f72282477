"""The archive's filter bar: dates, patient, clinician, protocol, status and the check boxes.

The local review (one laptop's file) and the clinic archive's window (every laptop, plus a laptop
chooser) filter alike, so they build the same controls here and only add their own: one place
says what "Ended (signed or not)" means and how a typed filter waits for the typing to stop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from kapmonitor.store.archive import STATUS_LABELS
from kapmonitor.ui.review.archive_table import _date_field

# The status chooser's entries: the archive filter's codes, in the words the list uses.
STATUS_CHOICES: tuple[tuple[str, str], ...] = (
    ("open", STATUS_LABELS["open"]),
    ("ended", "Ended (signed or not)"),
    ("signed", STATUS_LABELS["signed"]),
    ("unsigned", "Not signed"),
)


class ArchiveFilterControls:
    """Mixed into a review window: makes its filter widgets as attributes, lays them out and
    wires them to the window's ``refresh`` (at once) and ``_debounce`` (typed text, dates)."""

    # The window's own: a timer that waits for typing to stop, a re-read of the list with the
    # filters, and a reset of every filter.
    _debounce: QTimer
    refresh: Callable[[], object]
    clear_filters: Callable[[], None]

    def _make_filter_widgets(self, parent: QWidget, protocol_chars: int) -> None:
        self.date_from = _date_field(parent, "Sessions started on or after this day")
        self.date_to = _date_field(parent, "Sessions started on or before this day")
        self.patient_filter = QLineEdit(parent)
        self.patient_filter.setPlaceholderText("any part of the code")
        self.patient_filter.setClearButtonEnabled(True)
        self.clinician_filter = QLineEdit(parent)
        self.clinician_filter.setPlaceholderText("any part of a name")
        self.clinician_filter.setClearButtonEnabled(True)
        self.protocol_filter = QComboBox(parent)
        self.protocol_filter.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.protocol_filter.setMinimumContentsLength(protocol_chars)  # long names: drop-down
        self.protocol_filter.addItem("Any protocol", "")
        self.status_filter = QComboBox(parent)
        self.status_filter.addItem("Any status", "")
        for code, label in STATUS_CHOICES:
            self.status_filter.addItem(label, code)
        self.ae_filter = QCheckBox("Has adverse effects", parent)
        self.alarm_filter = QCheckBox("Has alarms", parent)
        self.clear_filters_button = QPushButton("Clear filters", parent)
        self.clear_filters_button.clicked.connect(self.clear_filters)

    def _filter_pairs(self) -> list[tuple[str, QWidget]]:
        """(label, widget) of the shared filters, in the order the bar shows them."""
        return [
            ("From", self.date_from),
            ("To", self.date_to),
            ("Patient", self.patient_filter),
            ("Clinician", self.clinician_filter),
            ("Protocol", self.protocol_filter),
            ("Status", self.status_filter),
        ]

    def _lay_out_filters(
        self, grid: QGridLayout, parent: QWidget, pairs: Sequence[tuple[str, QWidget]]
    ) -> None:
        """Labels (with their Alt key) over their fields; the two text filters take the spare
        width."""
        for column, (text, widget) in enumerate(pairs):
            label = QLabel(f"&{text}", parent)
            label.setBuddy(widget)
            grid.addWidget(label, 0, column)
            grid.addWidget(widget, 1, column)
        for column, (_text, widget) in enumerate(pairs):
            if widget in (self.patient_filter, self.clinician_filter):
                grid.setColumnStretch(column, 2)

    def _connect_filters(
        self, combos: Sequence[QComboBox] = (), boxes: Sequence[QCheckBox] = ()
    ) -> None:
        """Typed text and dates wait for a pause; choices and boxes refresh at once."""
        for edit in (self.patient_filter, self.clinician_filter):
            edit.textChanged.connect(lambda _t: self._debounce.start())
            edit.returnPressed.connect(self.refresh)
        for date_field in (self.date_from, self.date_to):
            date_field.dateChanged.connect(lambda _d: self._debounce.start())
        for combo in (*combos, self.protocol_filter, self.status_filter):
            combo.currentIndexChanged.connect(lambda _i: self.refresh())
        for box in (*boxes, self.ae_filter, self.alarm_filter):
            box.toggled.connect(lambda _on: self.refresh())
