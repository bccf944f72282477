"""A whole session driven through the real window by keys and clicks, as a therapist would.

Each step asserts on what was committed to the database and what the chart now holds, not on
pixels.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock, format_duration
from kapmonitor.domain.records import Dose, VitalSigns
from kapmonitor.settings import Settings
from kapmonitor.store import backup
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.bedside.session_window import SessionWindow
from kapmonitor.ui.forms.discharge_dialog import DischargeDialog
from tests.factories import T0, session_start
from tests.ui.window_driver import drive, enter_vitals, shown_window, type_into

pytestmark = pytest.mark.qt_log_ignore(
    r"^This plugin does not support (propagateSizeHints\(\)|raise\(\)|grabbing the keyboard)$"
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    opened = SessionStore.open(tmp_path / "bedside.sqlite", clock)
    yield opened
    opened.close()


@pytest.fixture
def window(qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path) -> SessionWindow:
    return shown_window(qtbot, store, clock, tmp_path)


def start_session(qtbot: QtBot, window: SessionWindow) -> None:
    def fill(dialog: QWidget) -> None:
        type_into(qtbot, dialog.patient_code, "KAP-0100")
        type_into(qtbot, dialog.age, "45")
        type_into(qtbot, dialog.sex, "Female")
        type_into(qtbot, dialog.weight, "72")
        type_into(qtbot, dialog.indication, "Treatment")
        type_into(qtbot, dialog.clinicians[0], "Dr Lee")
        type_into(qtbot, dialog.clinicians[1], "Nurse Kim")
        for box in [*dialog.checklist.boxes.values(), dialog.concomitant.boxes["benzodiazepines"]]:
            box.setFocus()
            qtbot.keyClick(box, Qt.Key.Key_Space)
        qtbot.keyClick(dialog.weight, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_N, fill, Qt.KeyboardModifier.ControlModifier)


def test_whole_session_by_keyboard(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    start_session(qtbot, window)
    assert window.log is not None, "session did not start"
    session_id = window.log.id
    session = store.load(session_id).session
    assert session["patient_code"] == "KAP-0100" and session["weight_kg"] == 72
    assert '"benzodiazepines": true' in session["concomitant_medicines"]
    assert store.load(session_id).clinicians == ["Dr Lee", "Nurse Kim"]
    assert window.header.recorder.currentText() == "Dr Lee"
    assert window.header.patient.text() == "KAP-0100"
    stored_protocol = store.load(session_id).protocol
    assert stored_protocol is not None and stored_protocol.id == "clinic-ketamine"
    assert "baseline" in window.schedule_panel.text().lower()

    # Baseline vitals before the dose: x is negative until the dose sets time zero.
    clock.advance(minutes=2)
    enter_vitals(qtbot, window, ["118/76", "70", "98", "14", "", "36.6"])
    vitals = store.load(session_id).current("vitals")
    assert [(v["sbp"], v["dbp"], v["hr"], v["spo2"], v["rr"], v["temp_c"]) for v in vitals] == [
        (118, 76, 70, 98, 14, 36.6)
    ]
    assert vitals[0]["recorded_by"] == "Dr Lee"
    assert window.last_values.values["bp"].text() == "118/76"
    assert window.chart.point_count("sbp") == 1

    # The second clinician takes over recording with Ctrl+2 and gives the dose.
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=2000)
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert window.recorder == "Nurse Kim"
    clock.advance(minutes=3)

    def dose(dialog: QWidget) -> None:
        type_into(qtbot, dialog.drug, "Racemic")
        type_into(qtbot, dialog.route, "IM")
        type_into(qtbot, dialog.dose, "54")
        assert "0.75 mg/kg" in dialog.totals.text()
        type_into(qtbot, dialog.lot, "LOT-77")
        qtbot.keyClick(dialog.lot, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_D, dose)
    log = store.load(session_id)
    (dose_row,) = log.current("doses")
    assert (dose_row["dose_mg"], dose_row["dose_mg_per_kg"], dose_row["lot_number"]) == (
        54.0,
        0.75,
        "LOT-77",
    )
    assert dose_row["recorded_by"] == "Nurse Kim"
    assert log.phase() == "dosing"
    assert window.header.phase.text() == "Dosing"
    x, _y = window.chart.series_xy("sbp")
    assert x[0] == pytest.approx(-3.0)  # the baseline now sits three minutes before the dose
    assert ("dose", "54 mg IM") in [(kind, label) for _x, kind, label in window.chart.markers()]

    # Vitals every five minutes, with the rise near 40 minutes.
    for minutes, bp in ((5, "126/80"), (20, "138/86"), (40, "150/95")):
        clock.set(T0 + timedelta(minutes=5 + minutes))
        enter_vitals(qtbot, window, [bp, "84", "97", "13"])
    x, y = window.chart.curve_data("sbp")
    assert list(x) == pytest.approx([-3.0, 5.0, 20.0, 40.0]) and list(y) == [118, 126, 138, 150]
    assert window.last_values.values["bp"].text() == "150/95"

    # An impossible value is refused with the reason; the form keeps it; Escape writes nothing.
    def refused(dialog: QWidget) -> None:
        qtbot.keyClicks(dialog.bp, "80/90")
        qtbot.keyClick(dialog.bp, Qt.Key.Key_Return)
        assert dialog.isVisible()
        assert "below systolic" in dialog.errors_text()
        assert dialog.bp.text() == "80/90"
        qtbot.keyClick(dialog.bp, Qt.Key.Key_Escape)

    drive(qtbot, window, Qt.Key.Key_V, refused)
    assert len(store.load(session_id).current("vitals")) == 4

    # Sedation and dissociation.
    clock.advance(minutes=1)

    def observe(dialog: QWidget) -> None:
        type_into(qtbot, dialog.scale_combos["moaas"], "3")
        assert "loudly" in dialog.descriptions["moaas"].text()
        type_into(qtbot, dialog.scale_combos["dissociation"], "Moderate")
        qtbot.mouseClick(dialog.feature_boxes["derealisation"], Qt.MouseButton.LeftButton)
        qtbot.keyClick(dialog.scale_combos["dissociation"], Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_O, observe)
    (obs,) = store.load(session_id).current("observations")
    assert (obs["moaas"], obs["dissociation"], obs["features"]) == (3, 2, '["derealisation"]')
    assert window.chart.point_count("moaas") == 1
    assert window.last_values.values["dissociation"].text() == "Moderate"

    # Nausea, treated, then resolved by a follow-up entry.
    clock.advance(minutes=5)

    def adverse(dialog: QWidget) -> None:
        type_into(qtbot, dialog.term.lineEdit(), "Nausea")
        type_into(qtbot, dialog.grade, "2")
        type_into(qtbot, dialog.action, "Antiemetic")
        qtbot.keyClick(dialog.code, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_A, adverse)
    (ae,) = store.load(session_id).current("adverse_events")
    assert (ae["term"], ae["grade"], ae["action"]) == ("nausea", 2, "antiemetic")
    assert any(kind == "adverse" for _x, kind, _l in window.chart.markers())

    clock.advance(minutes=20)
    drive(
        qtbot,
        window,
        Qt.Key.Key_R,
        lambda dialog: qtbot.keyClick(dialog.outcome, Qt.Key.Key_Return),
    )
    (outcome,) = store.load(session_id).current("adverse_event_outcomes")
    assert (outcome["adverse_event_id"], outcome["outcome"]) == (ae["id"], "resolved")

    # A note.
    def note(dialog: QWidget) -> None:
        type_into(qtbot, dialog.detail, "Calm, listening to music")
        qtbot.keyClick(dialog.detail, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_N, note)
    notes = store.load(session_id).current("interventions")
    assert notes[-1]["category"] == "note" and notes[-1]["detail"] == "Calm, listening to music"

    # Correct the first reading (HR misread): select it in the timeline, press C.
    first = vitals[0]["id"]
    row = next(
        i
        for i, item in enumerate(window.timeline.timeline.items)
        if item.table == "vitals" and item.row_id == first
    )
    window.timeline.selectRow(row)

    def correct(dialog: QWidget) -> None:
        assert dialog.bp.text() == "118/76"  # pre-filled with the stored values
        dialog.hr.clear()
        type_into(qtbot, dialog.hr, "74")
        type_into(qtbot, dialog.reason_edit, "HR misread from the monitor")
        qtbot.keyClick(dialog.reason_edit, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_C, correct)
    log = store.load(session_id)
    assert log.rows["vitals"][0].hr == 70  # the original is kept
    current = log.current("vitals")
    assert len(current) == 4 and current[0].hr == 74
    assert current[0]["correction_reason"] == "HR misread from the monitor"
    statuses = [window.timeline.timeline.status(i) for i in window.timeline.timeline.items]
    assert any("superseded by" in s for s in statuses)
    assert any("corrects #" in s for s in statuses)
    assert window.chart.point_count("hr") == 4

    # Next phase, confirmed.
    def confirm(dialog: QWidget) -> None:
        assert isinstance(dialog, QMessageBox)
        dialog.button(QMessageBox.StandardButton.Yes).click()

    drive(qtbot, window, Qt.Key.Key_P, confirm)
    assert store.load(session_id).phase() == "monitoring"

    # Before discharge: a last set of vitals and a sedation check, then the discharge assessment
    # the protocol asks for opens ahead of the end form.
    clock.advance(minutes=58)
    enter_vitals(qtbot, window, ["124/80", "76", "98", "14"])
    clock.advance(minutes=1)

    def awake(dialog: QWidget) -> None:
        # Sedation and dissociation both back to baseline: the discharge gate asks for both.
        type_into(qtbot, dialog.scale_combos["moaas"], "5")
        type_into(qtbot, dialog.scale_combos["dissociation"], "0")
        qtbot.keyClick(dialog.scale_combos["moaas"], Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_O, awake)
    clock.advance(minutes=1)

    def discharge(dialog: QWidget) -> None:
        assert isinstance(dialog, DischargeDialog)
        for combo in dialog.inputs.values():
            qtbot.keyClicks(combo, "2")
        for box in dialog.checks.values():
            box.setChecked(True)
        assert dialog.is_ready(), dialog.reasons()
        qtbot.keyClick(dialog.inputs["activity"], Qt.Key.Key_Return)

    def end(dialog: QWidget) -> None:
        type_into(qtbot, dialog.disposition, "Home with escort")
        type_into(qtbot, dialog.escort, "Partner")
        type_into(qtbot, dialog.summary, "Uneventful; nausea resolved")
        qtbot.keyClick(dialog.summary, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_E, [discharge, end])
    log = store.load(session_id)
    assert log.phase() == "ended"
    (assessment,) = log.current("discharge_assessments")
    assert (assessment["score_name"], assessment["total"], assessment["ready"]) == (
        "aldrete",
        10,
        1,
    )
    (end_row,) = log.current("session_ends")
    assert (end_row["disposition"], end_row["escort"]) == ("home_with_escort", "Partner")
    assert not window.actions_by_name["vitals"].isEnabled()
    assert window.header.limit.text() == "session ended"
    assert store.unfinished_sessions() == []
    # The ended session is in a checked backup beside the database.
    assert window.backups.wait()
    (copy,) = backup.list_backups(backup.default_folder(store.path))
    assert backup.check_backup(copy.path) == ""
    qtbot.waitUntil(lambda: "Backed up to" in window.statusBar().currentMessage(), timeout=5000)


def test_resume_keeps_the_clock(
    qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path
) -> None:
    session_id = store.start_session(session_start(clock), "Dr A")
    clock.advance(minutes=10)
    store.add(session_id, VitalSigns(clock.now(), hr=70, sbp=120, dbp=80), "Dr A")
    clock.advance(minutes=5)
    store.add(session_id, Dose("ketamine", "im", 50, clock.now()), "Dr A")
    clock.advance(minutes=42, seconds=7)  # the laptop restarts; time went on

    window = SessionWindow(store, clock, Settings(tmp_path))
    qtbot.addWidget(window)
    window.show()

    def resume(dialog: QWidget) -> None:
        assert isinstance(dialog, QMessageBox) and "KAP-0042" in dialog.text()
        next(b for b in dialog.buttons() if b.text() == "Resume").click()

    QTimer.singleShot(0, lambda: resume(QApplication.activeModalWidget()))
    assert window.offer_resume() is True
    assert window.log is not None and window.log.id == session_id
    assert window.header.elapsed.text() == format_duration((15 * 60) + (42 * 60) + 7)
    assert window.header.since_dose.text() == "0:42:07"
    assert window.chart.point_count("sbp") == 1
    assert [kind for _x, kind, _l in window.chart.markers()] == ["dose"]
    clock.advance(minutes=1)
    window.tick()
    assert window.header.since_dose.text() == "0:43:07"


def test_not_now_leaves_session_listed(
    qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path
) -> None:
    store.start_session(session_start(clock), "Dr A")
    window = SessionWindow(store, clock, Settings(tmp_path))
    qtbot.addWidget(window)
    window.show()
    QTimer.singleShot(
        0,
        lambda: next(
            b for b in QApplication.activeModalWidget().buttons() if b.text() == "Not now"
        ).click(),
    )
    assert window.offer_resume() is False
    assert window.log is None
    window.show_welcome()
    assert window.unfinished.count() == 1 and "KAP-0042" in window.unfinished.item(0).text()


def test_shortcuts_are_listed_in_tooltips(window: SessionWindow) -> None:
    for name, key in (("vitals", "V"), ("dose", "D"), ("observation", "O"), ("adverse", "A")):
        assert f"({key})" in window.actions_by_name[name].toolTip()
    assert not window.actions_by_name["vitals"].isEnabled()  # no session yet


def test_a_clock_that_jumps_back_is_said_and_changes_nothing_stored(
    qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path
) -> None:
    session_id = store.start_session(session_start(clock), "Dr A")
    clock.advance(minutes=30)
    store.add(session_id, VitalSigns(clock.now(), hr=70, sbp=120, dbp=80), "Dr A")
    window = SessionWindow(store, clock, Settings(tmp_path))
    qtbot.addWidget(window)
    window.show()
    window.open_session(session_id, fresh=True)
    assert not window.clock_warning.isVisible()
    before = store.load(session_id).rows["vitals"]
    clock.set(T0 + timedelta(minutes=10))  # the laptop clock goes back 20 minutes
    window.tick()
    assert window.clock_warning.isVisible()
    assert "earlier than the last saved entry" in window.clock_warning.text()
    assert store.load(session_id).rows["vitals"] == before
    # The schedule never goes negative: it works from the stored times.
    assert "-" not in window.schedule_panel.text() and "−" not in window.schedule_panel.text()
    clock.set(T0 + timedelta(minutes=31))  # the clock is put right
    window.tick()
    assert not window.clock_warning.isVisible()
