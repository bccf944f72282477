"""Acknowledging an alarm: a chosen response, details for "Other", and the crisis checklist."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.validation import FieldError, ValidationError
from kapmonitor.store.database import StoreError
from kapmonitor.ui.forms.alarm_ack_dialog import (
    EMERGENCY_SYMPTOMS,
    EMERGENCY_TEXT,
    RESPONSES,
    AlarmAckDialog,
)

Shown = Callable[[Any], Any]
Enter = Callable[[QWidget], None]


def alarm(priority: str = "critical", parameter: str = "sbp") -> dict[str, Any]:
    return {
        "id": 7,
        "priority": priority,
        "message": "Systolic BP 185 mmHg ≥ 180 (critical)",
        "parameter": parameter,
        "observed_at": "2026-01-15T09:40:00.000Z",
    }


class Recorder:
    """A save function that remembers what it was given, or refuses as told."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, str, list[str]]] = []
        self.error = error

    def __call__(self, code: str, detail: str, symptoms: list[str]) -> int:
        if self.error is not None:
            raise self.error
        self.calls.append((code, detail, symptoms))
        return 41


def choose(dialog: AlarmAckDialog, code: str) -> None:
    dialog.response.setCurrentIndex(dialog.response.findData(code))


def test_response_codes_and_labels() -> None:
    assert [code for code, _ in RESPONSES] == [
        "rechecked",
        "reassured",
        "repositioned",
        "oxygen",
        "antihypertensive",
        "physician_informed",
        "session_stopped",
        "emergency_transfer",
        "no_action_needed",
        "other",
    ]
    assert dict(RESPONSES)["no_action_needed"] == "Reviewed: no action needed"


def test_keyboard_acknowledge_with_enter(qtbot: QtBot, shown: Shown, enter: Enter) -> None:
    save = Recorder()
    dialog = shown(AlarmAckDialog(alarm("warning", "hr"), save, "Dr A"))
    assert dialog.focusWidget() is dialog.response
    assert "Systolic BP 185" in dialog.message.text()
    assert "● WARNING" in dialog.tag.text()
    qtbot.keyClick(dialog.response, Qt.Key.Key_Down)  # first real choice: Re-measured
    enter(dialog.response)
    assert save.calls == [("rechecked", "", [])]
    assert dialog.saved_id == 41
    assert dialog.result() == AlarmAckDialog.DialogCode.Accepted


def test_a_response_must_be_chosen(qtbot: QtBot, shown: Shown, enter: Enter) -> None:
    save = Recorder()
    dialog = shown(AlarmAckDialog(alarm(), save, "Dr A"))
    enter(dialog.response)
    assert save.calls == []
    assert dialog.isVisible()
    assert "Response taken: choose what was done" in dialog.errors_text()
    assert dialog.response.property("invalid") is True


def test_other_needs_a_detail(qtbot: QtBot, shown: Shown, enter: Enter) -> None:
    save = Recorder()
    dialog = shown(AlarmAckDialog(alarm("advisory", "rr"), save, "Dr A"))
    choose(dialog, "other")
    enter(dialog.detail)
    assert save.calls == []
    assert "Detail" in dialog.errors_text()
    qtbot.keyClicks(dialog.detail, "Asked patient to breathe deeply")
    enter(dialog.detail)
    assert save.calls == [("other", "Asked patient to breathe deeply", [])]
    assert dialog.errors_text() == ""


@pytest.mark.parametrize(
    ("priority", "parameter", "expected"),
    [
        ("critical", "sbp", True),
        ("critical", "dbp", True),
        ("warning", "sbp", False),
        ("critical", "spo2", False),
        ("critical", "hr", False),
    ],
)
def test_emergency_checklist_only_for_critical_blood_pressure(
    qtbot: QtBot, shown: Shown, priority: str, parameter: str, expected: bool
) -> None:
    dialog = shown(AlarmAckDialog(alarm(priority, parameter), Recorder(), "Dr A"))
    assert (dialog.checklist is not None) is expected
    assert bool(dialog.symptom_boxes) is expected


def test_any_symptom_ticked_calls_for_emergency_referral(
    qtbot: QtBot, shown: Shown, enter: Enter
) -> None:
    save = Recorder()
    dialog = shown(AlarmAckDialog(alarm("critical", "dbp"), save, "Dr A"))
    assert list(dialog.symptom_boxes) == [code for code, _ in EMERGENCY_SYMPTOMS]
    assert dialog.emergency.isHidden()
    dialog.symptom_boxes["severe_headache"].setChecked(True)
    dialog.symptom_boxes["visual_change"].setChecked(True)
    assert dialog.emergency.isVisible()
    assert dialog.emergency.text() == EMERGENCY_TEXT
    assert dialog.emergency.text().startswith("⚠ EMERGENCY REFERRAL")
    dialog.symptom_boxes["visual_change"].setChecked(False)
    assert dialog.emergency.isVisible()
    choose(dialog, "emergency_transfer")
    enter(dialog.response)
    assert save.calls == [("emergency_transfer", "", ["severe_headache"])]


def test_unticking_every_symptom_hides_the_referral_line(qtbot: QtBot, shown: Shown) -> None:
    dialog = shown(AlarmAckDialog(alarm(), Recorder(), "Dr A"))
    dialog.symptom_boxes["seizure"].setChecked(True)
    dialog.symptom_boxes["seizure"].setChecked(False)
    assert dialog.emergency.isHidden()


def test_store_refusal_keeps_the_dialog_open(qtbot: QtBot, shown: Shown, enter: Enter) -> None:
    save = Recorder(StoreError("the database file x is in use by another program"))
    dialog = shown(AlarmAckDialog(alarm(), save, "Dr A"))
    choose(dialog, "reassured")
    enter(dialog.response)
    assert dialog.isVisible()
    assert dialog.saved_id is None
    assert dialog.errors_text().startswith("Not saved. the database file x is in use")
    save.error = None
    enter(dialog.response)
    assert dialog.saved_id == 41


def test_validation_refusal_from_the_store_is_shown(
    qtbot: QtBot, shown: Shown, enter: Enter
) -> None:
    refusal = ValidationError(FieldError("detail_text", "Detail: too long"))
    dialog = shown(AlarmAckDialog(alarm(), Recorder(refusal), "Dr A"))
    choose(dialog, "reassured")
    enter(dialog.response)
    assert "Detail: too long" in dialog.errors_text()
    assert dialog.detail.property("invalid") is True


def test_who_is_acknowledging_and_escape_cancels(qtbot: QtBot, shown: Shown) -> None:
    save = Recorder()
    dialog = shown(AlarmAckDialog(alarm(), save, "Nurse B"))
    notes = [w.text() for w in dialog.findChildren(type(dialog.message))]
    assert "Acknowledging as <b>Nurse B</b>" in notes
    assert dialog.save_button.text() == "Acknowledge"
    assert dialog.save_button.isDefault()
    qtbot.keyClick(dialog.response, Qt.Key.Key_Escape)
    assert dialog.result() == AlarmAckDialog.DialogCode.Rejected
    assert save.calls == []


def test_tab_order_is_reading_order(
    qtbot: QtBot, shown: Shown, tab_chain: Callable[[list[QWidget]], list[QWidget]]
) -> None:
    dialog = shown(AlarmAckDialog(alarm(), Recorder(), "Dr A"))
    order = [dialog.response, dialog.detail, *dialog.symptom_boxes.values(), dialog.save_button]
    assert tab_chain(order) == order
