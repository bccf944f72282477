"""A simulated three-hour esketamine session under the REMS protocol, on a fake clock.

The real window is driven by keys; the clock is moved minute by minute and the window's own
tick shows the schedule. Assertions are on what the panel says, what the store holds (alarms,
acknowledgements, discharge assessments) and what the chart marks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock, to_iso
from kapmonitor.paths import resources_dir, user_config_dir
from kapmonitor.settings import ALARM_SOUND, TREATMENT_SETTING, WARNING_SOUND, Settings
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.bedside import protocol_support
from kapmonitor.ui.bedside.session_window import SessionWindow
from tests.factories import T0
from tests.ui.window_driver import drive, enter_vitals, shown_window, type_into

DOSE_AT = T0 + timedelta(minutes=10)  # session starts at T0; the dose goes in ten minutes later


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    opened = SessionStore.open(tmp_path / "protocol.sqlite", clock)
    yield opened
    opened.close()


@pytest.fixture
def window(qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path) -> SessionWindow:
    return shown_window(qtbot, store, clock, tmp_path)


def at_dose_minute(window: SessionWindow, clock: FakeClock, minutes: float) -> tuple[str, str]:
    """Move the fake clock to ``minutes`` after the dose, tick, and read the schedule panel."""
    clock.set(DOSE_AT + timedelta(minutes=minutes))
    window.tick()
    return window.schedule_panel.state(), window.schedule_panel.text()


def start_esketamine_session(qtbot: QtBot, window: SessionWindow) -> None:
    def fill(dialog: QWidget) -> None:
        type_into(qtbot, dialog.patient_code, "KAP-0300")
        type_into(qtbot, dialog.age, "52")
        type_into(qtbot, dialog.sex, "Male")
        type_into(qtbot, dialog.weight, "80")
        type_into(qtbot, dialog.indication, "Treatment")
        type_into(qtbot, dialog.clinicians[0], "Dr Lee")
        type_into(qtbot, dialog.clinicians[1], "Nurse Kim")
        type_into(qtbot, dialog.protocol, "Esketamine")
        assert dialog.selected_protocol() == "esketamine-rems"
        # The REMS form's details and the label's contraindication screen, asked at the start.
        type_into(qtbot, dialog.rems_first, "No")
        type_into(qtbot, dialog.rems_phone, "+1 555 0100")
        type_into(qtbot, dialog.rems_email, "dr.lee@clinic.example")
        type_into(qtbot, dialog.rems_setting, "Outpatient clinic")
        type_into(qtbot, dialog.rems_address, "1 Harbour St")
        for box in dialog.rems_screen.values():
            type_into(qtbot, box, "No")
        for box in dialog.checklist.boxes.values():
            box.setFocus()
            qtbot.keyClick(box, Qt.Key.Key_Space)
        qtbot.keyClick(dialog.weight, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_N, fill, Qt.KeyboardModifier.ControlModifier)


def give_esketamine(qtbot: QtBot, window: SessionWindow) -> None:
    def dose(dialog: QWidget) -> None:
        type_into(qtbot, dialog.drug, "Esketamine")
        type_into(qtbot, dialog.route, "Intranasal")
        type_into(qtbot, dialog.dose, "56")
        type_into(qtbot, dialog.lot, "ESK-2211")
        qtbot.keyClick(dialog.lot, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_D, dose)


def assess_discharge(qtbot: QtBot, dialog: QWidget) -> None:
    """The clinician judges activity and breathing (2 each) and confirms the checklist."""
    for combo in dialog.inputs.values():
        qtbot.keyClicks(combo, "2")
    for box in dialog.checks.values():
        box.setChecked(True)


def awake(qtbot: QtBot, dialog: QWidget) -> None:
    """Fully awake and no dissociation: both back to baseline, as the discharge gate asks."""
    type_into(qtbot, dialog.scale_combos["moaas"], "5")
    type_into(qtbot, dialog.scale_combos["dissociation"], "0")
    qtbot.keyClick(dialog.scale_combos["moaas"], Qt.Key.Key_Return)


def test_three_hour_esketamine_session(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    start_esketamine_session(qtbot, window)
    assert window.log is not None
    session_id = window.log.id
    assert store.load(session_id).protocol.id == "esketamine-rems"

    # Baseline: due at once, overdue after the five-minute grace; dosing blocked until taken.
    assert at_dose_minute(window, clock, -10 + 4)[0] == "due"
    state, text = at_dose_minute(window, clock, -10 + 5)
    assert state == "overdue" and "Baseline" in text
    assert window.schedule_panel.blocked_shown()

    def refuse_dose(dialog: QWidget) -> None:
        assert isinstance(dialog, QMessageBox) and "baseline" in dialog.text().lower()
        dialog.button(QMessageBox.StandardButton.Cancel).click()

    drive(qtbot, window, Qt.Key.Key_D, refuse_dose)
    assert store.load(session_id).current("doses") == []

    at_dose_minute(window, clock, -4)
    enter_vitals(qtbot, window, ["124/78", "72", "98", "14"])
    assert not window.schedule_panel.blocked_shown()
    assert window.schedule_panel.state() == "none"  # nothing due until the dose
    at_dose_minute(window, clock, 0)
    give_esketamine(qtbot, window)
    assert store.load(session_id).first_dose_at() == DOSE_AT

    # Every 10 min for the first 90 min: due at +10, overdue from +15.
    assert at_dose_minute(window, clock, 9)[0] == "upcoming"
    assert window.schedule_panel.text().endswith("in 1:00")
    assert at_dose_minute(window, clock, 10)[0] == "due"
    assert at_dose_minute(window, clock, 14.9)[0] == "due"
    state, text = at_dose_minute(window, clock, 15)
    assert state == "overdue" and "OVERDUE by 5:00" in text
    at_dose_minute(window, clock, 17)
    enter_vitals(qtbot, window, ["132/82", "80", "97", "14"])
    assert at_dose_minute(window, clock, 26)[0] == "upcoming"
    assert at_dose_minute(window, clock, 27)[0] == "due"
    at_dose_minute(window, clock, 30)
    enter_vitals(qtbot, window, ["140/86", "82", "97", "13"])

    # The REMS ~40-minute BP check is named when it comes due.
    state, text = at_dose_minute(window, clock, 39)
    assert state == "upcoming" and "REMS BP check" in text
    state, text = at_dose_minute(window, clock, 40)
    assert state == "due" and "REMS BP check" in text

    # SBP 185 at the peak: one critical alarm at save time, naming the +40 rise it also is.
    enter_vitals(qtbot, window, ["185/100", "92", "97", "14"])
    log = store.load(session_id)
    (alarm,) = log.current("alarms")
    assert (alarm["rule_id"], alarm["priority"], alarm["value"]) == (
        "sbp_high_critical",
        "critical",
        185,
    )
    assert "also ≥ baseline + 40 mmHg" in alarm["message"]
    assert window.alarm_banner.lines()[0].startswith("▲ CRITICAL — Systolic BP 185")
    assert [label for _x, kind, label in window.chart.markers() if kind == "alarm"] == [
        "CRITICAL: SBP 185"
    ]
    assert log.news2_for(log.current("vitals")[-1]["id"]) is not None

    # Still there ten minutes and another reading later: only an acknowledgement clears it.
    at_dose_minute(window, clock, 50)
    enter_vitals(qtbot, window, ["150/90", "84", "97", "14"])
    assert len(window.alarm_banner.lines()) == 1
    assert [a["id"] for a in store.load(session_id).active_alarms()] == [alarm["id"]]

    clock.advance(minutes=1)

    def acknowledge(dialog: QWidget) -> None:
        assert dialog.checklist is not None  # the hypertension emergency checklist
        type_into(qtbot, dialog.response, "Re-m")  # "Re-measured"
        assert dialog.response_code() == "rechecked"
        qtbot.keyClick(dialog.response, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_K, acknowledge)
    log = store.load(session_id)
    (ack,) = log.current("alarm_acknowledgements")
    assert (ack["alarm_id"], ack["response"]) == (alarm["id"], "rechecked")
    assert ack["recorded_by"] == "Dr Lee"
    assert ack["observed_at"] == to_iso(DOSE_AT + timedelta(minutes=51))
    assert log.active_alarms() == []
    assert window.alarm_banner.lines() == []

    for minute in (60, 70, 80, 90):
        at_dose_minute(window, clock, minute)
        enter_vitals(qtbot, window, ["134/82", "78", "98", "14"])
    drive(qtbot, window, Qt.Key.Key_O, lambda dialog: awake(qtbot, dialog))  # fully awake again

    # At 90 minutes the discharge check refuses: the REMS asks for two hours.
    def not_yet(dialog: QWidget) -> None:
        assess_discharge(qtbot, dialog)
        assert not dialog.is_ready()
        assert dialog.reasons() == ["Monitored 90 min of the required 120 min since the first dose"]
        qtbot.keyClick(dialog.inputs["activity"], Qt.Key.Key_Return)  # recorded, not ready

    drive(qtbot, window, Qt.Key.Key_X, not_yet)
    (refused,) = store.load(session_id).current("discharge_assessments")
    assert (refused["total"], refused["ready"]) == (10, 0)

    # Ending now: the assessment opens again (still not ready); home is refused by the store.
    def cancel(dialog: QWidget) -> None:
        assert not dialog.is_ready()
        qtbot.keyClick(dialog.inputs["activity"], Qt.Key.Key_Escape)

    def try_home(dialog: QWidget) -> None:
        type_into(qtbot, dialog.disposition, "Home with escort")
        type_into(qtbot, dialog.escort, "Wife")
        qtbot.keyClick(dialog.escort, Qt.Key.Key_Return)
        assert dialog.isVisible() and "No discharge assessment found the patient ready" in (
            dialog.errors_text()
        )
        qtbot.keyClick(dialog.escort, Qt.Key.Key_Escape)

    drive(qtbot, window, Qt.Key.Key_E, [cancel, try_home])
    assert store.load(session_id).phase() != "ended"

    # After 90 min the cadence is every 15 min.
    assert at_dose_minute(window, clock, 104)[0] == "upcoming"
    assert at_dose_minute(window, clock, 105)[0] == "due"
    assert at_dose_minute(window, clock, 110)[0] == "overdue"
    enter_vitals(qtbot, window, ["128/80", "76", "98", "14"])
    at_dose_minute(window, clock, 118)

    drive(qtbot, window, Qt.Key.Key_O, lambda dialog: awake(qtbot, dialog))
    assert at_dose_minute(window, clock, 120)[0] == "upcoming"  # next at 110 + 15
    at_dose_minute(window, clock, 121)
    enter_vitals(qtbot, window, ["126/80", "74", "98", "14"])

    # After 120 minutes with a passing score the patient may go.
    def ready(dialog: QWidget) -> None:
        assess_discharge(qtbot, dialog)
        assert dialog.total_text() == "10/10 (pass mark 9)"
        assert dialog.is_ready(), dialog.reasons()
        qtbot.keyClick(dialog.inputs["activity"], Qt.Key.Key_Return)

    at_dose_minute(window, clock, 122)
    drive(qtbot, window, Qt.Key.Key_X, ready)
    log = store.load(session_id)
    assert log.discharge_cleared()
    assert log.first_ready_at() == DOSE_AT + timedelta(minutes=122)

    # The patient rests with music for the rest of the three hours; checks go on.
    for minute in (136, 151, 166):
        at_dose_minute(window, clock, minute)
        enter_vitals(qtbot, window, ["124/78", "72", "98", "14"])
    at_dose_minute(window, clock, 168)
    drive(qtbot, window, Qt.Key.Key_O, lambda dialog: awake(qtbot, dialog))
    at_dose_minute(window, clock, 170)  # 3 h after the session started

    def go_home(dialog: QWidget) -> None:
        type_into(qtbot, dialog.disposition, "Home with escort")
        type_into(qtbot, dialog.escort, "Wife")
        type_into(qtbot, dialog.summary, "BP peak 185/100 at 40 min, settled without treatment")
        qtbot.keyClick(dialog.summary, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_E, go_home)  # already cleared: only the end form opens
    log = store.load(session_id)
    assert log.phase() == "ended"
    assert log.ended_at() - T0 == timedelta(hours=3)
    assert window.schedule_panel.state() == "none"

    # The REMS summary now fills the monitoring fields from the log: fit at 90 min apart from
    # the 2-hour minimum (reported separately), the setting from the session's own start.
    def rems(dialog: QWidget) -> None:
        text = dialog.plain_text()
        assert "Minutes until ready to leave (without the 2-hour rule): 90 min" in text
        assert "Observed for the minimum time after administration: Yes — 170 min" in text
        assert "Total minutes from first administration to end of monitoring: 170 min" in text
        assert "ESK-2211" in text
        assert "Setting: Outpatient clinic" in text
        assert "Setting address: 1 Harbour St" in text
        assert "First treatment (patient newly enrolled): No" in text
        assert "Monitoring clinician's e-mail: dr.lee@clinic.example" in text
        dialog.close()

    assert window.actions_by_name["rems"].isEnabled()  # the form is filled after the end
    drive(qtbot, window, Qt.Key.Key_S, rems)  # the session has its setting: nothing asked
    assert window.settings.get(TREATMENT_SETTING) == ""


DIGITS = {n: getattr(Qt.Key, f"Key_{n}") for n in range(10)}


def hand_over(qtbot: QtBot, choice: str, digits: list[int]) -> list[Callable[[QWidget], None]]:
    """The two dialogs Q opens: the clinician's chooser, then the patient's questionnaire."""

    def choose(dialog: QWidget) -> None:
        combo = dialog.findChild(QComboBox)
        items = [combo.itemText(i) for i in range(combo.count())]
        index = next(i for i, text in enumerate(items) if choice in text)
        assert "(due now)" in items[index]
        combo.setCurrentIndex(index)
        dialog.accept()

    def answer(dialog: QWidget) -> None:
        def press(
            key: Qt.Key, modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier
        ) -> None:
            qtbot.keyClick(dialog.focusWidget() or dialog, key, modifier)

        press(Qt.Key.Key_Return)  # the clinician's Start; the patient takes the laptop
        for digit in digits:
            press(DIGITS[digit])
        press(Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)  # handed back
        press(Qt.Key.Key_Return)  # the clinician saves

    return [choose, answer]


def test_phq9_before_the_dose_in_patient_mode(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    start_esketamine_session(qtbot, window)
    session_id = window.log.id
    clock.advance(minutes=3)
    drive(qtbot, window, Qt.Key.Key_Q, hand_over(qtbot, "PHQ-9", [1, 2, 0, 3, 1, 0, 2, 1, 0]))
    (response,) = store.load(session_id).current("questionnaire_responses")
    assert (response["questionnaire_id"], response["timing"]) == ("phq9", "pre")
    assert (response["total"], response["band"]) == (10, "moderate depression")
    assert response["recorded_by"] == "Dr Lee"
    shown = [item.summary for item in window.timeline.timeline.items]
    assert any(text.startswith("PHQ9 (pre-session)") and "10" in text for text in shown), shown


def test_a_broken_clinic_protocol_is_named_and_the_shipped_one_used(
    qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path
) -> None:
    folder = user_config_dir() / "protocols"
    folder.mkdir(parents=True, exist_ok=True)
    broken = folder / "esketamine-rems.toml"
    shipped = (resources_dir() / "protocols" / "esketamine-rems.toml").read_text()
    broken.write_text(shipped.replace("every_minutes = 10", "every_minutes = -10"))
    try:
        window = SessionWindow(store, clock, Settings(tmp_path))
        qtbot.addWidget(window)
        window.show()
        warning = window.protocol_problems
        assert warning.isVisible()
        assert "esketamine-rems.toml" in warning.text() and "every_minutes" in warning.text()
        kept = window.protocol_support.catalogue.protocols["esketamine-rems"]
        assert kept.intervals[0].every_minutes == 10  # the shipped version stays in use
    finally:
        broken.unlink()


def test_news2_is_shown_with_its_caveat(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    start_esketamine_session(qtbot, window)
    assert not window.last_values.news2_note.isVisible()
    clock.advance(minutes=1)
    enter_vitals(qtbot, window, ["124/78", "72", "95", "22", "", "38.4"])
    # RR 22 → 2, SpO₂ 95 → 1, temperature 38.4 → 1: a partial total of 4 and no band, since
    # consciousness was not assessed.
    assert window.last_values.values["news2"].text() == "4 incomplete"
    note = window.last_values.news2_note
    assert note.isVisible() and "alarms" in note.text()
    assert note.text().endswith("Incomplete set: no band.")
    assert "Dissociation during KAP" in note.toolTip()
    assert note.toolTip().endswith("Not measured: consciousness.")


def test_the_sound_calls_once_per_new_alarm_or_overdue_check(
    qtbot: QtBot, window: SessionWindow, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Critical alarms call by default; warnings and routine overdue checks only when chosen."""
    beeps: list[int] = []
    monkeypatch.setattr(protocol_support.QApplication, "beep", lambda: beeps.append(1))
    start_esketamine_session(qtbot, window)
    window.tick()
    clock.advance(minutes=6)  # the baseline turns overdue: silent while the option is off
    window.tick()
    assert window.schedule_panel.state() == "overdue" and beeps == []
    window.warning_sound_action.trigger()  # View → Sound for warnings and overdue checks too
    assert window.settings.get(WARNING_SOUND) and window.settings.get(ALARM_SOUND)
    enter_vitals(qtbot, window, ["124/78", "72", "98", "14"])
    clock.set(DOSE_AT)
    give_esketamine(qtbot, window)
    at_dose_minute(window, clock, 15)
    at_dose_minute(window, clock, 16)
    assert beeps == [1]  # once when it turned overdue, not every second after
    enter_vitals(qtbot, window, ["126/80", "74", "89", "14"])  # SpO₂ 89: critical
    assert beeps == [1, 1]
