"""The discharge gate and PHQ-9 item 9, driven through the real bedside window by keys.

Proved both ways on the clinic's racemic-ketamine protocol: discharge refused with every blocker
listed (and each input's value and age shown), then allowed once fixed; item 9 = 3 raises a
critical alarm whose acknowledgement is refused without the risk assessment and accepted with
it; dosing held until then; Escape on the answers asks before discarding them, and a discard is
in the audit trail without the answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QComboBox, QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain import suicidality
from kapmonitor.domain.clock import FakeClock
from kapmonitor.store import audit
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.bedside.session_window import SessionWindow
from kapmonitor.ui.forms.alarm_ack_dialog import AlarmAckDialog
from kapmonitor.ui.forms.discharge_dialog import DischargeDialog
from kapmonitor.ui.forms.questionnaire_window import DISCARD_QUESTION, QuestionnaireWindow
from tests.factories import T0
from tests.ui.window_driver import drive, enter_vitals, shown_window, type_into

DIGITS = {n: getattr(Qt.Key, f"Key_{n}") for n in range(10)}
Action = Callable[[QWidget], None]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    opened = SessionStore.open(tmp_path / "gate.sqlite", clock)
    yield opened
    opened.close()


@pytest.fixture
def window(qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path) -> SessionWindow:
    return shown_window(qtbot, store, clock, tmp_path)


def start(qtbot: QtBot, window: SessionWindow) -> None:
    def fill(dialog: QWidget) -> None:
        type_into(qtbot, dialog.patient_code, "KAP-0510")
        type_into(qtbot, dialog.age, "47")
        type_into(qtbot, dialog.sex, "Female")
        type_into(qtbot, dialog.weight, "70")
        type_into(qtbot, dialog.indication, "Treatment")
        type_into(qtbot, dialog.clinicians[0], "Dr Lee")
        type_into(qtbot, dialog.clinicians[1], "Nurse Kim")
        assert dialog.selected_protocol() == "clinic-ketamine"
        for box in dialog.checklist.boxes.values():
            box.setFocus()
            qtbot.keyClick(box, Qt.Key.Key_Space)
        qtbot.keyClick(dialog.weight, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_N, fill, Qt.KeyboardModifier.ControlModifier)


def dose_form(qtbot: QtBot) -> Action:
    def dose(dialog: QWidget) -> None:
        type_into(qtbot, dialog.drug, "Racemic")
        type_into(qtbot, dialog.route, "IM")
        type_into(qtbot, dialog.dose, "35")
        type_into(qtbot, dialog.lot, "LOT-9")
        qtbot.keyClick(dialog.lot, Qt.Key.Key_Return)

    return dose


def observe(qtbot: QtBot, window: SessionWindow, moaas: str, dissociation: str) -> None:
    def fill(dialog: QWidget) -> None:
        type_into(qtbot, dialog.scale_combos["moaas"], moaas)
        type_into(qtbot, dialog.scale_combos["dissociation"], dissociation)
        qtbot.keyClick(dialog.scale_combos["moaas"], Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_O, fill)


def phq9(qtbot: QtBot, digits: list[int], finish: Action) -> list[Action]:
    """Q: the chooser, then the patient's questionnaire answered by keys; ``finish`` acts on
    the clinician's results page."""

    def choose(dialog: QWidget) -> None:
        combo = dialog.findChild(QComboBox)
        index = next(i for i in range(combo.count()) if "PHQ-9" in combo.itemText(i))
        combo.setCurrentIndex(index)
        dialog.accept()

    def answer(dialog: QWidget) -> None:
        assert isinstance(dialog, QuestionnaireWindow)

        def press(key: Qt.Key, mod: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
            qtbot.keyClick(dialog.focusWidget() or dialog, key, mod)

        press(Qt.Key.Key_Return)
        for digit in digits:
            press(DIGITS[digit])
        press(Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)  # handed back
        finish(dialog)

    return [choose, answer]


def save_results(qtbot: QtBot) -> Action:
    return lambda dialog: qtbot.keyClick(dialog.focusWidget() or dialog, Qt.Key.Key_Return)


def dosed_session(qtbot: QtBot, window: SessionWindow, clock: FakeClock) -> None:
    start(qtbot, window)
    clock.advance(minutes=2)
    enter_vitals(qtbot, window, ["124/78", "72", "98", "14"])
    observe(qtbot, window, "5", "0")
    clock.advance(minutes=3)
    drive(qtbot, window, Qt.Key.Key_D, dose_form(qtbot))


def test_item9_alarm_needs_risk_assessment_and_holds_dosing(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    dosed_session(qtbot, window, clock)
    sid = window.log.id
    clock.advance(minutes=30)
    drive(
        qtbot, window, Qt.Key.Key_Q, phq9(qtbot, [1, 1, 1, 1, 1, 1, 1, 1, 3], save_results(qtbot))
    )
    log = store.load(sid)
    (alarm,) = [a for a in log.current("alarms") if suicidality.is_safety_alarm(a)]
    assert (alarm["priority"], alarm["value"]) == ("critical", 3)
    (response,) = log.current("questionnaire_responses")
    assert alarm["source_id"] == response["id"]  # written with the questionnaire
    assert window.alarm_banner.lines()[0].startswith("▲ CRITICAL")

    # Dosing (a booster) is held, with the reason.
    def held(dialog: QWidget) -> None:
        assert isinstance(dialog, QMessageBox)
        assert "Dosing is held: PHQ-9 item 9 was answered 3" in dialog.text()
        dialog.button(QMessageBox.StandardButton.Ok).click()

    drive(qtbot, window, Qt.Key.Key_D, held)
    assert len(store.load(sid).current("doses")) == 1

    # The acknowledgement shows the assessment's fields and refuses without them.
    def refused(dialog: QWidget) -> None:
        assert isinstance(dialog, AlarmAckDialog) and dialog.risk_box is not None
        type_into(qtbot, dialog.response, "Phys")
        qtbot.keyClick(dialog.response, Qt.Key.Key_Return)
        assert dialog.isVisible()
        text = dialog.errors_text()
        assert "how the risk was assessed" in text and "outcome" in text and "action" in text
        qtbot.keyClick(dialog.response, Qt.Key.Key_Escape)

    drive(qtbot, window, Qt.Key.Key_K, refused)
    assert store.load(sid).current("alarm_acknowledgements") == []

    def assessed(dialog: QWidget) -> None:
        type_into(qtbot, dialog.response, "Phys")
        type_into(qtbot, dialog.risk_method, "C-SSRS")
        type_into(qtbot, dialog.risk_outcome, "Low")
        box = dialog.risk_actions["safety_plan"]
        box.setFocus()
        qtbot.keyClick(box, Qt.Key.Key_Space)
        type_into(qtbot, dialog.risk_note, "Passive thoughts, no plan; plan agreed with partner")
        qtbot.keyClick(dialog.risk_note, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_K, assessed)
    (ack,) = store.load(sid).current("alarm_acknowledgements")
    assert json.loads(ack["risk_assessment"]) == {
        "method": "cssrs_screener",
        "outcome": "low",
        "actions": ["safety_plan"],
        "note": "Passive thoughts, no plan; plan agreed with partner",
    }
    assert window.alarm_banner.lines() == []

    # Dosing is allowed again.
    drive(qtbot, window, Qt.Key.Key_D, dose_form(qtbot))
    assert len(store.load(sid).current("doses")) == 2


def test_escape_on_the_answers_asks_and_a_discard_is_audited(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    start(qtbot, window)
    sid = window.log.id
    clock.advance(minutes=2)
    asked: list[str] = []

    def escape_twice(dialog: QWidget) -> None:
        """Escape on the results page asks; Escape on the question keeps the answers; the
        second time the clinician chooses Discard."""
        replies = ["keep", "discard"]

        def answer_question() -> None:
            box = QApplication.activeModalWidget()
            if not isinstance(box, QMessageBox) or not replies:
                return
            asked.append(box.text())
            if replies.pop(0) == "keep":
                qtbot.keyClick(box, Qt.Key.Key_Escape)
            else:
                next(b for b in box.buttons() if b.text() == "Discard").click()

        timer = QTimer()
        timer.setInterval(5)
        timer.timeout.connect(answer_question)
        timer.start()
        try:
            qtbot.keyClick(dialog.focusWidget() or dialog, Qt.Key.Key_Escape)
            assert dialog.isVisible() and len(dialog.answers) == 9  # kept
            qtbot.keyClick(dialog.focusWidget() or dialog, Qt.Key.Key_Escape)
        finally:
            timer.stop()
        assert not dialog.isVisible() and dialog.discarded

    drive(qtbot, window, Qt.Key.Key_Q, phq9(qtbot, [0, 1, 0, 2, 0, 1, 0, 0, 0], escape_twice))
    assert asked == [DISCARD_QUESTION, DISCARD_QUESTION]
    assert store.load(sid).current("questionnaire_responses") == []
    (entry,) = [e for e in audit.entries(store.db) if e["action"] == "questionnaire_discarded"]
    detail = json.loads(entry["detail"])
    assert detail == {"questionnaire_id": "phq9", "timing": "pre", "answered": 9}
    assert entry["actor"] == "Dr Lee" and entry["session_id"] == sid


def test_discharge_refused_with_blockers_then_allowed(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    dosed_session(qtbot, window, clock)
    sid = window.log.id
    clock.advance(minutes=20)
    observe(qtbot, window, "4", "2")
    clock.advance(minutes=100)  # 2 h after the dose; the last observation is 100 min old
    enter_vitals(qtbot, window, ["", "74"])  # an HR-only reading

    seen: dict[str, object] = {}

    def refused(dialog: QWidget) -> None:
        assert isinstance(dialog, DischargeDialog)
        for combo in dialog.inputs.values():
            qtbot.keyClicks(combo, "2")
        for box in dialog.checks.values():
            box.setChecked(True)
        assert not dialog.is_ready()
        reasons = dialog.reasons()
        seen["reasons"] = reasons
        screen = dialog.screen().availableGeometry()
        assert screen.contains(dialog.frameGeometry()), (dialog.frameGeometry(), screen)
        seen["inputs"] = dialog.input_texts()
        qtbot.keyClick(dialog.inputs["activity"], Qt.Key.Key_Return)  # recorded, not ready

    drive(qtbot, window, Qt.Key.Key_X, refused)
    text = "\n".join(seen["reasons"])  # type: ignore[arg-type]
    assert "MOAA/S 4 is 100 min old (freshness window 15 min)" in text
    assert "Dissociation 2 is 100 min old" in text
    assert "SBP 124 was measured before the last dose" in text
    assert "No complete vitals set (BP, HR, SpO₂ and RR in one reading)" in text
    inputs = seen["inputs"]
    assert inputs["moaas"] == "✘ MOAA/S 4 · 100 min ago"  # type: ignore[index]
    assert inputs["hr"] == "✔ HR 74 /min · now"  # type: ignore[index]
    assert inputs["sbp"].endswith("(before the last dose)")  # type: ignore[index]
    (first,) = store.load(sid).current("discharge_assessments")
    assert first["ready"] == 0

    # Ending "home" goes through the same gate: the check opens again, then the store refuses.
    def cancel(dialog: QWidget) -> None:
        assert isinstance(dialog, DischargeDialog) and not dialog.is_ready()
        qtbot.keyClick(dialog.inputs["activity"], Qt.Key.Key_Escape)

    def try_home(dialog: QWidget) -> None:
        type_into(qtbot, dialog.disposition, "Home with escort")
        type_into(qtbot, dialog.escort, "Partner")
        qtbot.keyClick(dialog.escort, Qt.Key.Key_Return)
        assert dialog.isVisible() and "No complete vitals set" in dialog.errors_text()
        qtbot.keyClick(dialog.escort, Qt.Key.Key_Escape)

    drive(qtbot, window, Qt.Key.Key_E, [cancel, try_home])
    assert store.load(sid).phase() != "ended"

    # Fixed: a full set and a fresh observation back to baseline.
    clock.advance(minutes=2)
    enter_vitals(qtbot, window, ["126/80", "74", "98", "14"])
    observe(qtbot, window, "5", "0")

    def ready(dialog: QWidget) -> None:
        assert dialog.is_ready(), dialog.reasons()
        assert dialog.input_texts()["vitals_set"].startswith("✔ Complete vitals set BP 126/80")
        qtbot.keyClick(dialog.inputs["activity"], Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_X, ready)
    assert store.load(sid).current("discharge_assessments")[-1]["ready"] == 1

    def go_home(dialog: QWidget) -> None:
        type_into(qtbot, dialog.disposition, "Home with escort")
        type_into(qtbot, dialog.escort, "Partner")
        type_into(qtbot, dialog.summary, "Settled; discharged with escort")
        qtbot.keyClick(dialog.summary, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_E, go_home)  # gate clear: only the end form opens
    assert store.load(sid).phase() == "ended"


def test_discharge_override_needs_a_reason_and_is_recorded(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    dosed_session(qtbot, window, clock)
    sid = window.log.id
    clock.advance(minutes=125)

    def override(dialog: QWidget) -> None:
        for combo in dialog.inputs.values():
            qtbot.keyClicks(combo, "2")
        for box in dialog.checks.values():
            box.setChecked(True)
        assert not dialog.is_ready()
        qtbot.mouseClick(dialog.override_button, Qt.MouseButton.LeftButton)
        qtbot.mouseClick(dialog.override_button, Qt.MouseButton.LeftButton)  # no reason yet
        assert "Give the reason" in dialog.errors_text()
        type_into(qtbot, dialog.override_edit, "Reviewed by Dr Lee; transfer to ward")
        qtbot.keyClick(dialog.override_edit, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_X, override)
    log = store.load(sid)
    (overridden,) = log.current("overrides")
    assert (overridden["kind"], overridden["reason"]) == (
        "discharge_before_criteria",
        "Reviewed by Dr Lee; transfer to ward",
    )
    assert log.current("discharge_assessments")[-1]["override_reason"]
    assert any(
        e["table_name"] == "overrides" and e["row_id"] == overridden["id"]
        for e in audit.entries(store.db)
    )
