"""Discharge readiness, scored live by the real domain functions against a shipped protocol."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.discharge import CHECKLIST, Readiness, ScoreResult
from kapmonitor.domain.protocol import Protocol
from kapmonitor.store.database import StoreError
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.forms.discharge_dialog import DischargeDialog, DischargeFacts
from tests.factories import protocol, session_start
from tests.ui.window_driver import drive, shown_window

Shown = Callable[[Any], Any]
Enter = Callable[[QWidget], None]

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
GOOD = DischargeFacts(
    first_dose=NOW - timedelta(minutes=130),
    sbp_now=125,
    sbp_baseline=122,
    hr_now=80,
    hr_baseline=78,
    moaas=5,
    spo2=97,
    on_oxygen=False,
    recent_vitals=True,
)


class Saved:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[ScoreResult, dict[str, bool], Readiness, str | None]] = []
        self.error = error

    def __call__(
        self, score: ScoreResult, checklist: dict[str, bool], ready: Readiness, why: str | None
    ) -> int:
        if self.error is not None:
            raise self.error
        self.calls.append((score, checklist, ready, why))
        return 12


def aldrete_protocol() -> Protocol:
    shipped = protocol("clinic-ketamine")
    assert shipped.discharge_score == "aldrete"
    assert shipped.discharge_pass == 9
    assert shipped.min_monitoring_minutes == 120
    return shipped


def make(
    shown: Shown, facts: DischargeFacts = GOOD, **kwargs: Any
) -> tuple[DischargeDialog, Saved]:
    save = kwargs.pop("save", Saved())
    chosen = kwargs.pop("protocol", None) or aldrete_protocol()
    dialog = shown(DischargeDialog(chosen, facts, save, NOW, "Dr A"))
    return dialog, save


def assess_all(qtbot: QtBot, dialog: DischargeDialog, points: str = "2") -> None:
    """Judge every clinician item by typing its points, and tick the whole checklist."""
    for widget in dialog.inputs.values():
        qtbot.keyClicks(widget, points)
    first = dialog.checks[CHECKLIST[0][0]]
    qtbot.keyClick(first, Qt.Key.Key_Space)
    for box in dialog.checks.values():
        box.setChecked(True)


def test_passing_case_is_ready_and_records_with_enter(
    qtbot: QtBot, shown: Shown, enter: Enter
) -> None:
    dialog, save = make(shown)
    assert dialog.focusWidget() is dialog.inputs["activity"]
    assert not dialog.is_ready()
    assess_all(qtbot, dialog)
    assert dialog.total_text() == "10/10 (pass mark 9)"
    assert dialog.verdict_label.text() == "✔ passes"
    assert dialog.ready_label.text() == "✔ READY FOR DISCHARGE"
    assert dialog.reasons() == []
    assert dialog.is_ready()
    assert not dialog.override_button.isEnabled()
    enter(dialog.inputs["activity"])
    assert len(save.calls) == 1
    score, checklist, readiness, override = save.calls[0]
    assert score.name == "aldrete"
    assert score.total == 10
    assert score.passed
    assert checklist == {code: True for code, _ in CHECKLIST}
    assert readiness.ready
    assert override is None
    assert dialog.saved_id == 12
    assert dialog.result_ready()


def test_computed_items_show_their_basis_read_only(qtbot: QtBot, shown: Shown) -> None:
    dialog, _ = make(shown)
    assert set(dialog.inputs) == {"activity", "respiration"}
    assert set(dialog.point_labels) == {"circulation", "consciousness", "spo2"}
    assert dialog.point_labels["circulation"].text() == "2"
    assert "SBP 125" in dialog.basis_labels["circulation"].text()
    assert "122" in dialog.basis_labels["circulation"].text()
    assert "MOAA/S 5" in dialog.basis_labels["consciousness"].text()


def test_not_ready_below_the_minimum_time_but_the_assessment_is_recorded(
    qtbot: QtBot, shown: Shown, enter: Enter
) -> None:
    facts = replace(GOOD, first_dose=NOW - timedelta(minutes=60))
    dialog, save = make(shown, facts)
    assess_all(qtbot, dialog)
    assert dialog.total_text() == "10/10 (pass mark 9)"
    assert dialog.ready_label.text() == "✘ NOT READY FOR DISCHARGE"
    assert dialog.reasons() == ["Monitored 60 min of the required 120 min since the first dose"]
    assert dialog.override_button.isEnabled()
    assert "Monitored 1 h 00 min" in dialog.time_line.text()
    enter(dialog.inputs["activity"])
    _, _, readiness, override = save.calls[0]
    assert not readiness.ready
    assert override is None
    assert not dialog.result_ready()


def test_a_low_score_is_not_ready(qtbot: QtBot, shown: Shown) -> None:
    facts = replace(GOOD, sbp_now=190, moaas=4)  # SBP +56 % → 0; MOAA/S 4 → 1
    dialog, _ = make(shown, facts)
    assess_all(qtbot, dialog)
    assert dialog.point_labels["circulation"].text() == "0"
    assert dialog.total_text() == "7/10 (pass mark 9)"
    assert dialog.verdict_label.text() == "✘ below the pass mark"
    assert not dialog.is_ready()
    assert dialog.reasons() == ["Modified Aldrete score 7/10 is below the pass mark 9"]


def test_unassessed_items_block_recording_and_say_what_is_missing(
    qtbot: QtBot, shown: Shown, enter: Enter
) -> None:
    dialog, save = make(shown)
    assert dialog.total_text() == "—/10 (pass mark 9)"
    assert dialog.reasons()[0] == "Score incomplete: assess Activity, Respiration"
    qtbot.keyClicks(dialog.inputs["activity"], "1")
    assert dialog.reasons()[0] == "Score incomplete: assess Respiration"
    enter(dialog.inputs["activity"])
    assert save.calls == []
    assert dialog.isVisible()
    assert "Assess Respiration before recording" in dialog.errors_text()


def test_discharge_anyway_needs_a_reason(qtbot: QtBot, shown: Shown, enter: Enter) -> None:
    facts = replace(GOOD, recent_vitals=False)
    dialog, save = make(shown, facts)
    assess_all(qtbot, dialog)
    assert dialog.reasons() == ["No vitals before discharge: take a vitals set"]
    assert dialog.override_row.isHidden()
    qtbot.mouseClick(dialog.override_button, Qt.MouseButton.LeftButton)
    assert dialog.override_row.isVisible()
    assert dialog.focusWidget() is dialog.override_edit
    enter(dialog.override_edit)  # no reason yet
    assert save.calls == []
    assert "Give the reason for discharging although not ready" in dialog.errors_text()
    assert dialog.override_edit.property("invalid") is True
    qtbot.keyClicks(dialog.override_edit, "Vitals taken on the ward, reviewed by Dr B")
    enter(dialog.override_edit)
    assert len(save.calls) == 1
    _, _, readiness, override = save.calls[0]
    assert not readiness.ready
    assert override == "Vitals taken on the ward, reviewed by Dr B"
    assert dialog.result_ready()


def test_override_row_goes_away_once_ready(qtbot: QtBot, shown: Shown) -> None:
    dialog, _ = make(shown)
    dialog.discharge_anyway()
    assert dialog.override_row.isVisible()
    assess_all(qtbot, dialog)
    assert dialog.is_ready()
    assert dialog.override_row.isHidden()
    assert dialog.record_button.isDefault()


def test_padss_asks_ambulation_nausea_and_pain(qtbot: QtBot, shown: Shown, enter: Enter) -> None:
    padss = replace(aldrete_protocol(), discharge_score="padss", discharge_pass=7)
    dialog, save = make(shown, protocol=padss)
    assert list(dialog.inputs) == ["ambulation", "nausea_vomiting", "pain"]
    assert dialog.point_labels["surgical_bleeding"].text() == "n/a"
    assert dialog.total_text() == "—/8 (pass mark 7)"
    qtbot.keyClicks(dialog.inputs["ambulation"], "2")
    qtbot.keyClicks(dialog.inputs["nausea_vomiting"], "1")
    dialog.inputs["pain"].setValue(5)  # VAS 4–6 → 1
    for box in dialog.checks.values():
        box.setChecked(True)
    assert dialog.total_text() == "6/8 (pass mark 7)"  # vital signs 2 + 2 + 1 + 1
    assert not dialog.is_ready()
    enter(dialog.inputs["ambulation"])
    assert save.calls[0][0].name == "padss"
    assert save.calls[0][0].maximum == 8


def test_a_pass_mark_the_score_cannot_reach_is_reported(
    qtbot: QtBot, shown: Shown, enter: Enter
) -> None:
    impossible = replace(aldrete_protocol(), discharge_score="padss", discharge_pass=9)
    dialog, save = make(shown, protocol=impossible)
    assert "cannot be used" in dialog.errors_text()
    assert not dialog.is_ready()
    enter(dialog.inputs["ambulation"])
    assert save.calls == []


def test_a_store_refusal_keeps_everything(qtbot: QtBot, shown: Shown, enter: Enter) -> None:
    dialog, _ = make(shown, save=Saved(StoreError("The disk holding x is full")))
    assess_all(qtbot, dialog)
    enter(dialog.inputs["activity"])
    assert dialog.isVisible()
    assert dialog.errors_text() == "Not saved. The disk holding x is full"
    assert dialog.saved_id is None
    assert dialog.is_ready()


def test_tab_order_is_reading_order(
    qtbot: QtBot, shown: Shown, tab_chain: Callable[[list[QWidget]], list[QWidget]]
) -> None:
    dialog, _ = make(shown)
    order = [*dialog.inputs.values(), *dialog.checks.values(), dialog.record_button]
    assert tab_chain(order) == order


def checkbox_places(dialog: DischargeDialog) -> dict[str, QRect]:
    """Where each checklist box sits in the dialog, as the pointer would find it."""
    QApplication.processEvents()  # let the layouts apply what just changed
    return {
        code: QRect(box.mapTo(dialog, QPoint(0, 0)), box.size())
        for code, box in dialog.checks.items()
    }


def test_checkboxes_stay_put_while_reasons_come_and_go(qtbot: QtBot, shown: Shown) -> None:
    """Ticking a box removes a reason, choosing points changes the score line: no box moves."""
    facts = replace(GOOD, first_dose=NOW - timedelta(minutes=30), recent_vitals=False)
    dialog, _ = make(shown, facts)
    # Taller than its content, as after a refusal banner came and went or a resize by hand:
    # the spare room must not be shared out anew each time the reasons change.
    dialog.resize(dialog.width(), dialog.height() + 120)
    before = checkbox_places(dialog)
    many = dialog.reasons()
    assert len(many) >= 7  # time, score, five checklist items, vitals: more than fit in lines
    for code, box in dialog.checks.items():
        shown_reasons = len(dialog.reasons())
        qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))
        assert box.isChecked(), code
        assert len(dialog.reasons()) == shown_reasons - 1
        assert checkbox_places(dialog) == before, f"boxes moved after ticking {code}"
    for widget in dialog.inputs.values():
        qtbot.keyClicks(widget, "2")
        assert checkbox_places(dialog) == before, "boxes moved after a score item changed"
    box = dialog.checks[CHECKLIST[0][0]]
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))
    assert not box.isChecked()
    assert checkbox_places(dialog) == before
    assert len(dialog.reasons()) < len(many)


def test_every_reason_can_be_read_in_its_fixed_box(qtbot: QtBot, shown: Shown) -> None:
    """More reasons than lines: the list scrolls inside its box instead of growing it."""
    facts = replace(GOOD, first_dose=None, recent_vitals=False)
    dialog, _ = make(shown, facts)
    area = dialog.reasons_area
    height = area.height()
    assert dialog.reasons_label.height() > area.viewport().height()
    assert area.verticalScrollBar().maximum() > 0
    for box in dialog.checks.values():
        box.setChecked(True)
    assert area.height() == height


def test_reopening_shows_the_assessment_just_recorded(
    qtbot: QtBot, tmp_path: Path, clock: FakeClock
) -> None:
    """Record an assessment in the bedside window, open the check again: it is all there."""
    store = SessionStore.open(tmp_path / "t.sqlite", clock)
    try:
        session_id = store.start_session(session_start(clock), "Dr A", protocol=aldrete_protocol())
        window = shown_window(qtbot, store, clock, tmp_path)
        window.open_session(session_id, fresh=True)
        ticked = [CHECKLIST[0][0], CHECKLIST[2][0]]

        def record(dialog: QWidget) -> None:
            assert isinstance(dialog, DischargeDialog)
            assert dialog.previous_line.isHidden()  # nothing recorded yet
            qtbot.keyClicks(dialog.inputs["activity"], "1")
            qtbot.keyClicks(dialog.inputs["respiration"], "2")
            for code in ticked:
                qtbot.mouseClick(dialog.checks[code], Qt.MouseButton.LeftButton, pos=QPoint(8, 8))
            qtbot.keyClick(dialog.inputs["activity"], Qt.Key.Key_Return)

        drive(qtbot, window, Qt.Key.Key_X, record)
        (stored,) = store.load(session_id).current("discharge_assessments")
        shown_again: dict[str, Any] = {}

        def look(dialog: QWidget) -> None:
            assert isinstance(dialog, DischargeDialog)
            shown_again["activity"] = dialog.inputs["activity"].currentData()
            shown_again["respiration"] = dialog.inputs["respiration"].currentData()
            shown_again["ticked"] = [c for c, box in dialog.checks.items() if box.isChecked()]
            shown_again["total"] = dialog.total_text()
            shown_again["note"] = dialog.previous_line.text()
            shown_again["note_shown"] = dialog.previous_line.isVisible()
            qtbot.keyClick(dialog.inputs["activity"], Qt.Key.Key_Escape)

        drive(qtbot, window, Qt.Key.Key_X, look)
        assert shown_again["activity"] == 1
        assert shown_again["respiration"] == 2
        assert shown_again["ticked"] == ticked
        assert shown_again["total"].startswith(f"{stored['total']}/")
        assert shown_again["note_shown"] and "not ready" in shown_again["note"]
        assert "Dr A" in shown_again["note"]
        window.close()
    finally:
        store.close()


def test_an_assessment_on_another_score_is_not_carried_over(shown: Shown) -> None:
    padss = replace(aldrete_protocol(), discharge_score="padss", discharge_pass=9)
    previous = {
        "score_name": "aldrete",
        "items": '[{"code": "activity", "points": 2}]',
        "checklist": '{"oriented": true}',
    }
    dialog = shown(DischargeDialog(padss, GOOD, Saved(), NOW, "Dr A", previous=previous))
    assert not any(box.isChecked() for box in dialog.checks.values())
    assert dialog.previous_line.isHidden()
