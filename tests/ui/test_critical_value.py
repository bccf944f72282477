"""After a critical value: it stays highlighted, an early re-check is due, and the sound is on.

The real bedside window is driven by keys on a fake clock under the clinic's racemic ketamine
protocol; assertions are on what the big numbers and the next-check panel show, on the beeps
(``QApplication.beep`` replaced by a counter) and on the audit trail in the database.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QInputDialog, QLineEdit, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.settings import ALARM_SOUND, WARNING_SOUND, Settings
from kapmonitor.store.session_store import SessionStore
from kapmonitor.store.verify import verify
from kapmonitor.ui.bedside import protocol_support
from kapmonitor.ui.bedside.session_window import SessionWindow
from kapmonitor.ui.widgets.last_values_panel import CAPTIONS
from kapmonitor.ui.widgets.theme import current_theme
from tests.factories import T0
from tests.ui.window_driver import drive, enter_vitals, shown_window, type_into

DOSE_AT = T0 + timedelta(minutes=10)
DAY = current_theme(False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    opened = SessionStore.open(tmp_path / "critical.sqlite", clock)
    yield opened
    opened.close()


@pytest.fixture
def window(qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path) -> SessionWindow:
    return shown_window(qtbot, store, clock, tmp_path)


@pytest.fixture
def beeps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    heard: list[int] = []
    monkeypatch.setattr(protocol_support.QApplication, "beep", lambda: heard.append(1))
    return heard


def start_racemic_session(qtbot: QtBot, window: SessionWindow) -> None:
    """The clinic default protocol (racemic ketamine) is preselected."""

    def fill(dialog: QWidget) -> None:
        type_into(qtbot, dialog.patient_code, "KAP-0400")
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
    assert window.log is not None, "session did not start"


def baseline_and_dose(
    qtbot: QtBot, window: SessionWindow, clock: FakeClock, baseline_minute: float = 2
) -> None:
    clock.set(T0 + timedelta(minutes=baseline_minute))
    enter_vitals(qtbot, window, ["124/78", "72", "98", "14"])
    clock.set(DOSE_AT)

    def dose(dialog: QWidget) -> None:
        type_into(qtbot, dialog.drug, "Racemic")
        type_into(qtbot, dialog.route, "IM")
        type_into(qtbot, dialog.dose, "35")
        type_into(qtbot, dialog.lot, "LOT-9")
        qtbot.keyClick(dialog.lot, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_D, dose)


def at_dose_minute(window: SessionWindow, clock: FakeClock, minutes: float) -> tuple[str, str]:
    clock.set(DOSE_AT + timedelta(minutes=minutes))
    window.tick()
    return window.schedule_panel.state(), window.schedule_panel.text()


def acknowledge_top_alarm(qtbot: QtBot, window: SessionWindow) -> None:
    def ack(dialog: QWidget) -> None:
        type_into(qtbot, dialog.response, "Re-m")  # "Re-measured"
        assert dialog.response_code() == "rechecked"
        qtbot.keyClick(dialog.response, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_K, ack)


def big(window: SessionWindow, key: str) -> tuple[str, str, str]:
    """What the big-numbers cell shows: its level, its caption, and the level its number is
    styled with."""
    panel = window.last_values
    return panel.level(key), panel.captions[key].text(), panel.values[key].property("level")


def number_colour(window: SessionWindow, key: str) -> str:
    """The colour the number is drawn in, as the style sheet resolved it."""
    label = window.last_values.values[key]
    return label.palette().color(label.foregroundRole()).name()


def with_dialogs(
    qtbot: QtBot, trigger: Callable[[], None], actions: list[Callable[[QWidget], None]]
) -> None:
    """Run ``trigger`` (a menu action) and answer each modal dialog it opens, in turn; a
    dialog left open is closed and reported, so a broken flow fails instead of hanging."""
    steps = list(actions)
    problems: list[str] = []
    seen: list[QWidget] = []

    def poll() -> None:
        dialog = QApplication.activeModalWidget()
        if not steps or dialog is None or any(d is dialog for d in seen):
            return
        seen.append(dialog)
        try:
            steps.pop(0)(dialog)
        except BaseException as exc:
            problems.append(f"{type(dialog).__name__}: {type(exc).__name__}: {exc}")
        if dialog.isVisible():
            problems.append(f"{type(dialog).__name__} left open")
            dialog.close()

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(poll)
    timer.start()
    try:
        trigger()
        qtbot.wait(1)
    finally:
        timer.stop()
    assert not problems, problems
    assert not steps, f"{len(steps)} expected dialog(s) never opened"


def give_reason(qtbot: QtBot, reason: str) -> Callable[[QWidget], None]:
    def answer(dialog: QWidget) -> None:
        assert isinstance(dialog, QInputDialog) and dialog.objectName() == "SoundOffReason"
        assert "audit trail" in dialog.labelText()
        edit = dialog.findChild(QLineEdit)
        qtbot.keyClicks(edit, reason)
        qtbot.keyClick(edit, Qt.Key.Key_Return)

    return answer


def cancel(dialog: QWidget) -> None:
    assert dialog.objectName() == "SoundOffReason"
    dialog.reject()


def sound_entries(store: SessionStore) -> list[dict]:
    return [
        dict(row)
        for row in store.db.query(
            "SELECT actor, action, session_id, detail FROM audit "
            "WHERE action LIKE 'alarm_sound_%' ORDER BY id"
        )
    ]


# --- The value stays highlighted; the re-check comes early ------------------------------------


def test_critical_bp_stays_highlighted_and_is_rechecked_at_five_minutes(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    start_racemic_session(qtbot, window)
    baseline_and_dose(qtbot, window, clock)
    assert big(window, "bp") == ("normal", CAPTIONS["bp"], None)

    # SBP 185 at 50 min: a critical alarm, and the big number is marked in words as well.
    at_dose_minute(window, clock, 50)
    enter_vitals(qtbot, window, ["185/100", "92", "97", "14"])
    assert window.alarm_banner.lines()[0].startswith("▲ CRITICAL — Systolic BP 185")
    assert big(window, "bp") == ("critical", f"{CAPTIONS['bp']}  ▲ critical", "critical")
    assert window.last_values.values["bp"].text() == "185/100"
    assert number_colour(window, "bp") == DAY.error_text != number_colour(window, "hr")
    assert big(window, "hr") == ("normal", CAPTIONS["hr"], None)  # HR 92 raised nothing
    state, text = window.schedule_panel.state(), window.schedule_panel.text()
    assert state == "upcoming"
    assert text == "Next check: Re-check BP (critical) in 5:00"  # not the cadence's 10:00

    # Acknowledged a minute later: the banner clears, the highlight and the re-check stay.
    clock.advance(minutes=1)
    acknowledge_top_alarm(qtbot, window)
    assert window.alarm_banner.lines() == []
    assert store.load(window.log.id).active_alarms() == []
    assert big(window, "bp") == ("critical", f"{CAPTIONS['bp']}  ▲ critical", "critical")
    assert at_dose_minute(window, clock, 54) == (
        "upcoming",
        "Next check: Re-check BP (critical) in 1:00",
    )

    # It comes due and goes overdue like any other check.
    state, text = at_dose_minute(window, clock, 55)
    assert (state, text) == ("due", "DUE NOW: Re-check BP (critical)")
    state, text = at_dose_minute(window, clock, 60)
    assert (state, text) == ("overdue", "⚠ OVERDUE by 5:00: Re-check BP (critical)")
    assert big(window, "bp")[0] == "critical"

    # A normal BP clears the highlight and the schedule is back on the 10-minute cadence.
    # HR 118 is a warning: it gets the milder highlight, and no early re-check.
    at_dose_minute(window, clock, 61)
    enter_vitals(qtbot, window, ["132/82", "118", "97", "14"])
    assert big(window, "bp") == ("normal", CAPTIONS["bp"], "normal")
    assert big(window, "hr") == ("warning", f"{CAPTIONS['hr']}  ● warning", "warning")
    assert number_colour(window, "hr") == DAY.warn
    assert number_colour(window, "bp") not in (DAY.error_text, DAY.warn)
    assert window.schedule_panel.state() == "upcoming"
    assert window.schedule_panel.text() == "Next check: Vitals (every 10 min) in 10:00"

    # The warning stays highlighted through its acknowledgement, until a normal HR follows.
    clock.advance(minutes=1)
    acknowledge_top_alarm(qtbot, window)
    assert big(window, "hr")[0] == "warning"
    at_dose_minute(window, clock, 71)
    enter_vitals(qtbot, window, ["130/80", "84", "97", "14"])
    assert big(window, "hr") == ("normal", CAPTIONS["hr"], "normal")


def test_a_reopened_session_shows_the_standing_highlight_and_recheck(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    """The levels come from the stored readings, not from what the window happened to see."""
    start_racemic_session(qtbot, window)
    baseline_and_dose(qtbot, window, clock)
    at_dose_minute(window, clock, 50)
    enter_vitals(qtbot, window, ["128/80", "76", "88", "14"])  # SpO₂ 88: critical
    session_id = window.log.id
    window.show_welcome()
    assert window.log is None
    window.open_session(session_id)
    assert big(window, "spo2") == ("critical", f"{CAPTIONS['spo2']}  ▲ critical", "critical")
    assert big(window, "bp")[0] == "normal"
    state, text = at_dose_minute(window, clock, 52)
    assert (state, text) == ("upcoming", "Next check: Re-check SpO₂ (critical) in 3:00")


# --- The critical-alarm sound ----------------------------------------------------------------


def test_the_critical_sound_is_on_by_default_and_warnings_are_optional(
    qtbot: QtBot, window: SessionWindow, clock: FakeClock, beeps: list[int]
) -> None:
    assert window.settings.get(ALARM_SOUND) and window.sound_action.isChecked()
    assert not window.settings.get(WARNING_SOUND)
    assert not window.warning_sound_action.isChecked()
    start_racemic_session(qtbot, window)
    clock.set(T0 + timedelta(minutes=5))  # the baseline turns overdue: routine, silent
    window.tick()
    assert window.schedule_panel.state() == "overdue" and beeps == []
    baseline_and_dose(qtbot, window, clock, baseline_minute=6)
    at_dose_minute(window, clock, 10)
    enter_vitals(qtbot, window, ["130/80", "115", "97", "14"])  # HR 115: a warning
    assert beeps == []
    at_dose_minute(window, clock, 20)
    enter_vitals(qtbot, window, ["185/100", "92", "97", "14"])  # SBP 185: critical
    assert beeps == [1]
    at_dose_minute(window, clock, 25)
    at_dose_minute(window, clock, 30)  # the critical re-check turns overdue: it calls once
    at_dose_minute(window, clock, 31)
    assert beeps == [1, 1]

    # The optional sound for warnings and routine overdue checks, when chosen.
    window.warning_sound_action.trigger()
    assert window.settings.get(WARNING_SOUND)
    enter_vitals(qtbot, window, ["130/80", "115", "97", "14"])  # the re-check; HR still high
    assert beeps == [1, 1, 1]


def test_turning_the_critical_sound_off_needs_a_reason_that_is_audited(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock, beeps: list[int]
) -> None:
    start_racemic_session(qtbot, window)
    session_id = window.log.id
    baseline_and_dose(qtbot, window, clock)

    # Cancel keeps it on, and nothing is recorded.
    with_dialogs(qtbot, window.sound_action.trigger, [cancel])
    assert window.sound_action.isChecked() and window.settings.get(ALARM_SOUND)
    assert sound_entries(store) == []
    # An empty reason is no reason.
    with_dialogs(qtbot, window.sound_action.trigger, [give_reason(qtbot, "   ")])
    assert window.sound_action.isChecked() and window.settings.get(ALARM_SOUND)
    assert "needs a reason" in window.statusBar().currentMessage()
    assert sound_entries(store) == []

    # With a reason it goes off, attributed to the clinician recording, in this session.
    reason = "Patient startled by beeps; watching the screen continuously"
    with_dialogs(qtbot, window.sound_action.trigger, [give_reason(qtbot, reason)])
    assert not window.sound_action.isChecked() and not window.settings.get(ALARM_SOUND)
    (off,) = sound_entries(store)
    assert (off["actor"], off["action"], off["session_id"]) == (
        "Dr Lee",
        "alarm_sound_off",
        session_id,
    )
    assert json.loads(off["detail"])["reason"] == reason
    assert not Settings(window.settings.path.parent).get(ALARM_SOUND)  # remembered on disk

    at_dose_minute(window, clock, 20)
    enter_vitals(qtbot, window, ["185/100", "92", "97", "14"])
    assert beeps == []  # off, as recorded
    assert window.alarm_banner.lines()  # the alarm itself is as visible as ever
    assert window.alarm_banner.header.text().endswith("critical-alarm sound is off")

    # Back on: no question asked, but recorded too.
    window.sound_action.trigger()
    assert window.sound_action.isChecked() and window.settings.get(ALARM_SOUND)
    assert not window.alarm_banner.header.text().endswith("sound is off")
    on = sound_entries(store)[-1]
    assert (on["actor"], on["action"], on["session_id"]) == ("Dr Lee", "alarm_sound_on", session_id)
    at_dose_minute(window, clock, 24)
    enter_vitals(qtbot, window, ["182/98", "90", "97", "14"])
    assert beeps == [1]
    assert verify(store.db).ok  # the entries are part of the intact chain


def test_with_no_session_open_the_sound_change_is_still_audited(
    qtbot: QtBot, window: SessionWindow, store: SessionStore
) -> None:
    assert window.log is None
    with_dialogs(qtbot, window.sound_action.trigger, [give_reason(qtbot, "Demonstration room")])
    assert not window.settings.get(ALARM_SOUND)
    (off,) = sound_entries(store)
    assert off["action"] == "alarm_sound_off" and off["session_id"] is None
    assert off["actor"] == protocol_support.NO_SESSION_ACTOR
    assert json.loads(off["detail"])["reason"] == "Demonstration room"


def test_the_offscreen_beep_itself_does_not_crash(
    qtbot: QtBot, window: SessionWindow, clock: FakeClock
) -> None:
    """The real ``QApplication.beep`` on the test platform: a critical reading saves and shows."""
    start_racemic_session(qtbot, window)
    baseline_and_dose(qtbot, window, clock)
    at_dose_minute(window, clock, 20)
    enter_vitals(qtbot, window, ["185/100", "92", "97", "14"])
    assert window.alarm_banner.lines()[0].startswith("▲ CRITICAL")
