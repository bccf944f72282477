"""The whole bedside session on the clinic laptop's screen: 1280 × 720 logical pixels.

Tried from outside, the window's minimum was 1431 × 959 and grew with content; the big numbers
were cut ("128/8") and the timeline and status bar were off the screen. This test drives a whole
session through the real window on a 1280 × 720 screen (tests/clinic_screen.json): every phase
from preparation to "Recovery / aftercare" and the end, a refusal in each entry dialog, an alarm
and its acknowledgement, the discharge check with its reasons, a correction picked without a
selected row, large type on and off, night mode and a three-hour record. After each step it
asserts that every window and dialog lies within the screen, that the window never grew, and
that the big numbers with their ages, the next check and the timeline are visible and unclipped
(each label as wide as its text).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QObject, QPoint, QRect, QSize, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QDialog,
    QLabel,
    QMessageBox,
    QWidget,
)
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import Observation, VitalSigns
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.bedside.session_window import SessionWindow
from tests.factories import T0
from tests.ui.window_driver import drive, enter_vitals, shown_window, type_into

SCREEN = QRect(0, 0, 1280, 720)
# A maximised window on that screen under a title bar and a taskbar: the room the test gives.
WINDOW = QSize(1280, 660)
LONG_CODE = "KAP-2026-NORTHCLINIC-ROOM3-00042"  # 32 characters, the longest a code may be


class ScreenWatch(QObject):
    """Notes every window or dialog that shows or resizes itself past the screen's edge."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.dialogs: set[str] = set()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            event.type() in (QEvent.Type.Show, QEvent.Type.Resize)
            and isinstance(watched, QWidget)
            and watched.isWindow()
            and watched.windowType() in (Qt.WindowType.Window, Qt.WindowType.Dialog)
            and watched.isVisible()
        ):
            frame = watched.frameGeometry()
            if isinstance(watched, QDialog):
                self.dialogs.add(type(watched).__name__)
            if not SCREEN.contains(frame):
                self.problems.append(
                    f"{type(watched).__name__} '{watched.windowTitle()}' at {frame.getRect()}"
                )
        return False


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    opened = SessionStore.open(tmp_path / "laptop.sqlite", clock)
    yield opened
    opened.close()


@pytest.fixture
def watch() -> Iterator[ScreenWatch]:
    app = QApplication.instance()
    assert app is not None
    spy = ScreenWatch()
    app.installEventFilter(spy)
    yield spy
    app.removeEventFilter(spy)


@pytest.fixture
def window(
    qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path, watch: ScreenWatch
) -> SessionWindow:
    screen = QGuiApplication.primaryScreen().geometry()
    assert screen == SCREEN, f"the tests' screen is {screen.getRect()}, not the clinic laptop's"
    shown = shown_window(qtbot, store, clock, tmp_path)
    shown.move(0, 0)
    shown.resize(WINDOW)
    qtbot.wait(1)
    return shown


# --- what "fits" means ------------------------------------------------------------------------


def unclipped(label: QLabel, what: str) -> None:
    """Shown, as wide and tall as its text needs, and not cut by any parent."""
    assert label.isVisible(), f"{what} is hidden"
    metrics = label.fontMetrics()
    for line in label.text().splitlines() or [""]:
        need = metrics.horizontalAdvance(line)
        assert label.contentsRect().width() >= need, (
            f"{what} '{line}' needs {need} px, has {label.contentsRect().width()}"
        )
    assert label.height() >= metrics.height(), f"{what} is {label.height()} px high"
    seen = label.visibleRegion().boundingRect()
    assert seen == label.rect(), f"{what} is cut to {seen.getRect()} of {label.rect().getRect()}"


def inside(widget: QWidget, window: QWidget, what: str) -> None:
    assert widget.isVisible(), f"{what} is hidden"
    rect = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
    assert window.rect().contains(rect), f"{what} at {rect.getRect()} is outside the window"
    assert widget.visibleRegion().boundingRect() == widget.rect(), f"{what} is cut"


def settle() -> None:
    """Let posted layout requests and the zero-timers they start run, as a frame would."""
    for _ in range(3):
        QApplication.processEvents()


def assert_fits(window: SessionWindow, watch: ScreenWatch, step: str) -> None:
    settle()
    assert not watch.problems, f"{step}: {watch.problems}"
    assert window.size() == WINDOW, f"{step}: the window grew to {window.size().toTuple()}"
    minimum = window.minimumSizeHint()
    assert minimum.width() <= WINDOW.width() and minimum.height() <= WINDOW.height(), (
        f"{step}: the window needs {minimum.toTuple()}"
    )
    assert SCREEN.contains(window.frameGeometry()), step
    if window.log is None:
        return
    panel = window.last_values
    for key, value in panel.values.items():
        unclipped(value, f"{step}: big number {key}")
        unclipped(panel.captions[key], f"{step}: caption {key}")
        if panel.ages[key].text():
            unclipped(panel.ages[key], f"{step}: age of {key}")
    for label in (window.header.patient, window.header.phase, window.header.elapsed):
        unclipped(label, f"{step}: header {label.text()}")
    inside(window.header.recorder, window, f"{step}: recording-as")
    inside(window.schedule_panel.main, window, f"{step}: next check")
    for button in window.action_bar.buttons.values():
        inside(button, window, f"{step}: button {button.text()}")
    for button in window.alarm_banner.buttons[:1]:
        inside(button, window, f"{step}: the top alarm's Acknowledge")
    timeline = window.timeline
    inside(timeline, window, f"{step}: timeline")
    rows = timeline.model().rowCount()
    if rows:
        height = timeline.verticalHeader().defaultSectionSize()
        assert timeline.viewport().height() >= min(rows, 2) * height, f"{step}: timeline rows"
    inside(window.statusBar(), window, f"{step}: status bar")


def dialog_fits(dialog: QWidget, step: str) -> None:
    """On the screen, with every button of its button row shown and uncut."""
    settle()
    assert SCREEN.contains(dialog.frameGeometry()), (
        f"{step}: {type(dialog).__name__} at {dialog.frameGeometry().getRect()}"
    )
    buttons = [
        b
        for b in dialog.findChildren(QAbstractButton)
        if b.isVisible() and b.metaObject().className() == "QPushButton"
    ]
    assert buttons, f"{step}: no button shown"
    for button in buttons:
        inside(button, dialog, f"{step}: button {button.text()}")


# --- the session ------------------------------------------------------------------------------


def start_with_a_refusal(qtbot: QtBot, window: SessionWindow) -> None:
    def fill(dialog: QWidget) -> None:
        qtbot.keyClick(dialog.patient_code, Qt.Key.Key_Return)  # everything missing
        assert dialog.isVisible() and dialog.errors_text()
        dialog_fits(dialog, "start session refused")
        type_into(qtbot, dialog.patient_code, LONG_CODE)
        type_into(qtbot, dialog.age, "45")
        type_into(qtbot, dialog.sex, "Female")
        type_into(qtbot, dialog.weight, "70")
        type_into(qtbot, dialog.indication, "Treatment")
        type_into(qtbot, dialog.clinicians[0], "Dr Alexandra Montgomery-Lee")
        type_into(qtbot, dialog.clinicians[1], "Nurse Kim")
        for box in dialog.checklist.boxes.values():
            box.setChecked(True)
        qtbot.keyClick(dialog.weight, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_N, fill, Qt.KeyboardModifier.ControlModifier)


def vitals_with_a_refusal(qtbot: QtBot, window: SessionWindow) -> None:
    def fill(dialog: QWidget) -> None:
        for field, text in (
            (dialog.bp, "80/90"),
            (dialog.hr, "400"),
            (dialog.spo2, "130"),
            (dialog.rr, "99"),
            (dialog.etco2, "101"),
            (dialog.temp, "50"),
        ):
            type_into(qtbot, field, text)
        qtbot.keyClick(dialog.bp, Qt.Key.Key_Return)
        assert dialog.isVisible() and dialog.errors_text()
        dialog_fits(dialog, "vitals refused")
        for field, text in (
            (dialog.bp, "118/76"),
            (dialog.hr, "70"),
            (dialog.spo2, "98"),
            (dialog.rr, "14"),
            (dialog.etco2, "38"),
            (dialog.temp, "36.6"),
        ):
            field.clear()
            type_into(qtbot, field, text)
        qtbot.keyClick(dialog.bp, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_V, fill)


def dose_with_a_refusal(qtbot: QtBot, window: SessionWindow) -> None:
    def fill(dialog: QWidget) -> None:
        type_into(qtbot, dialog.drug, "Racemic")
        type_into(qtbot, dialog.route, "IM")
        type_into(qtbot, dialog.dose, "0")
        qtbot.keyClick(dialog.dose, Qt.Key.Key_Return)
        assert dialog.isVisible() and dialog.errors_text()
        dialog_fits(dialog, "dose refused")
        dialog.dose.clear()
        type_into(qtbot, dialog.dose, "52.5")
        type_into(qtbot, dialog.lot, "LOT-77")
        qtbot.keyClick(dialog.lot, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_D, fill)


def observation_with_every_feature(qtbot: QtBot, window: SessionWindow) -> None:
    def fill(dialog: QWidget) -> None:
        type_into(qtbot, dialog.scale_combos["moaas"], "3")
        type_into(qtbot, dialog.scale_combos["dissociation"], "Moderate")
        for box in dialog.feature_boxes.values():
            box.setChecked(True)
            inside(box, dialog, "observation feature box")
        dialog_fits(dialog, "observation")
        qtbot.keyClick(dialog.scale_combos["dissociation"], Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_O, fill)


def adverse_effect_with_a_refusal(qtbot: QtBot, window: SessionWindow) -> None:
    def fill(dialog: QWidget) -> None:
        qtbot.keyClick(dialog.code, Qt.Key.Key_Return)  # nothing chosen
        assert dialog.isVisible() and dialog.errors_text()
        dialog_fits(dialog, "adverse effect refused")
        type_into(qtbot, dialog.term.lineEdit(), "Nausea")
        type_into(qtbot, dialog.grade, "2")
        type_into(qtbot, dialog.action, "Antiemetic")
        qtbot.keyClick(dialog.code, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_A, fill)


def three_hour_record(window: SessionWindow, store: SessionStore, clock: FakeClock) -> None:
    """Readings every five minutes and observations every fifteen, saved as a form saves them
    (committed, then shown through the window's after-save path)."""
    assert window.log is not None
    rng = random.Random(9)
    for step in range(1, 34):
        clock.advance(minutes=5)
        vitals = VitalSigns(
            clock.now(),
            hr=rng.randint(68, 92),
            sbp=rng.randint(118, 148),
            dbp=rng.randint(72, 92),
            spo2=rng.randint(95, 99),
            rr=rng.randint(12, 16),
            etco2=36 + step % 5,
        )
        window.show_changes(store.add(window.log.id, vitals, window.recorder))
        if step % 3 == 0:
            observation = Observation(clock.now(), moaas=4 + step % 2, dissociation=step % 3)
            window.show_changes(store.add(window.log.id, observation, window.recorder))


def press(qtbot: QtBot, window: SessionWindow, key: Qt.Key) -> None:
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=2000)
    qtbot.keyClick(window, key)
    qtbot.wait(1)


def confirm(dialog: QWidget) -> None:
    assert isinstance(dialog, QMessageBox)
    dialog_fits(dialog, "confirmation")
    dialog.button(QMessageBox.StandardButton.Yes).click()


def test_a_whole_session_fits_the_clinic_laptop(
    qtbot: QtBot,
    window: SessionWindow,
    store: SessionStore,
    clock: FakeClock,
    watch: ScreenWatch,
) -> None:
    assert_fits(window, watch, "start page")
    start_with_a_refusal(qtbot, window)
    assert window.log is not None and window.log.session["patient_code"] == LONG_CODE
    assert_fits(window, watch, "session started with the longest code")

    clock.advance(minutes=2)
    vitals_with_a_refusal(qtbot, window)
    clock.advance(minutes=3)
    dose_with_a_refusal(qtbot, window)
    assert "52.5 mg" in window.header.dose.text()
    assert ("dose", "52.5 mg IM") in [(k, label) for _x, k, label in window.chart.markers()]
    assert_fits(window, watch, "dosed")

    clock.advance(minutes=4)
    observation_with_every_feature(qtbot, window)
    clock.advance(minutes=1)
    adverse_effect_with_a_refusal(qtbot, window)
    three_hour_record(window, store, clock)
    assert window.chart.point_count("sbp") == 34  # the baseline and 33 readings
    assert_fits(window, watch, "three-hour record")

    # A critical reading: the alarm banner joins the next check; both fit with the numbers.
    clock.advance(minutes=1)
    enter_vitals(qtbot, window, ["212/118", "135", "86", "7"])
    assert window.alarm_banner.isVisible() and window.alarm_banner.buttons
    assert_fits(window, watch, "alarms waiting")

    # Large type makes the numbers larger within the same window; night mode changes nothing
    # of the layout; turning large type off leaves the window as it was.
    normal_size = window.last_values.values["bp"].font().pointSizeF()
    press(qtbot, window, Qt.Key.Key_F9)
    assert window.last_values.values["bp"].font().pointSizeF() > normal_size
    assert_fits(window, watch, "large type, alarms waiting")
    press(qtbot, window, Qt.Key.Key_F8)
    assert_fits(window, watch, "large type at night, alarms waiting")

    def acknowledge(dialog: QWidget) -> None:
        dialog_fits(dialog, "acknowledge")
        type_into(qtbot, dialog.response, "Re-m")
        qtbot.keyClick(dialog.response, Qt.Key.Key_Return)

    while window.alarm_banner.buttons:
        before = len(window.alarm_banner.buttons)
        drive(qtbot, window, Qt.Key.Key_K, acknowledge)
        assert len(window.alarm_banner.buttons) < before
    assert_fits(window, watch, "alarms acknowledged, large type at night")

    # The longest phase name in large type.
    drive(qtbot, window, Qt.Key.Key_P, confirm)
    drive(qtbot, window, Qt.Key.Key_P, confirm)
    assert window.header.phase.text() == "Recovery / aftercare"
    assert_fits(window, watch, "recovery, large type at night")
    press(qtbot, window, Qt.Key.Key_F9)
    assert window.last_values.values["bp"].font().pointSizeF() == normal_size
    assert_fits(window, watch, "recovery, normal type at night")
    press(qtbot, window, Qt.Key.Key_F8)
    assert_fits(window, watch, "recovery, day")

    # The discharge check with its reasons (nothing assessed yet), then closed.
    def discharge_refused(dialog: QWidget) -> None:
        assert dialog.reasons()
        dialog_fits(dialog, "discharge check with reasons")
        dialog.reject()

    drive(qtbot, window, Qt.Key.Key_X, discharge_refused)

    # "Correct entry" with no row selected asks which entry; the correction does not lock.
    window.timeline.clearSelection()

    def pick(dialog: QWidget) -> None:
        dialog_fits(dialog, "which entry to correct")
        assert "Vitals" in dialog.textValue() or "vitals" in dialog.textValue()
        dialog.accept()

    def correct(dialog: QWidget) -> None:
        dialog_fits(dialog, "correction")
        dialog.hr.clear()
        type_into(qtbot, dialog.hr, "130")
        type_into(qtbot, dialog.reason_edit, "Heart rate misread from the monitor")
        qtbot.keyClick(dialog.reason_edit, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_C, [pick, correct])
    corrected = store.load(window.log.id).current("vitals")[-1]
    assert (corrected["hr"], corrected["correction_reason"]) == (
        130,
        "Heart rate misread from the monitor",
    )
    assert not window.access.locked()
    assert_fits(window, watch, "after a correction")
    # The corrected reading is a new reading: its alarms wait for acknowledgement again.
    while window.alarm_banner.buttons:
        before = len(window.alarm_banner.buttons)
        drive(qtbot, window, Qt.Key.Key_K, acknowledge)
        assert len(window.alarm_banner.buttons) < before

    # A note, the nausea resolved, then the end: the discharge check first, then the end form.
    clock.advance(minutes=2)
    enter_vitals(qtbot, window, ["124/78", "76", "98", "14"])
    clock.advance(minutes=1)

    def awake(dialog: QWidget) -> None:
        type_into(qtbot, dialog.scale_combos["moaas"], "5")
        qtbot.keyClick(dialog.scale_combos["moaas"], Qt.Key.Key_Return)

    def note(dialog: QWidget) -> None:
        dialog_fits(dialog, "note")
        type_into(qtbot, dialog.detail, "Calm, listening to music; eye mask off at the end")
        qtbot.keyClick(dialog.detail, Qt.Key.Key_Return)

    def resolved(dialog: QWidget) -> None:
        dialog_fits(dialog, "adverse effect outcome")
        qtbot.keyClick(dialog.outcome, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_O, awake)
    drive(qtbot, window, Qt.Key.Key_N, note)
    drive(qtbot, window, Qt.Key.Key_R, resolved)

    def discharge(dialog: QWidget) -> None:
        for combo in dialog.inputs.values():
            qtbot.keyClicks(combo, "2")
        for box in dialog.checks.values():
            box.setChecked(True)
        dialog_fits(dialog, "discharge check, ready")
        assert dialog.is_ready(), dialog.reasons()
        qtbot.keyClick(dialog.inputs["activity"], Qt.Key.Key_Return)

    def end(dialog: QWidget) -> None:
        dialog_fits(dialog, "end of session")
        type_into(qtbot, dialog.disposition, "Home with escort")
        type_into(qtbot, dialog.escort, "Partner")
        type_into(qtbot, dialog.summary, "BP rose to 212/118, settled; nausea resolved")
        qtbot.keyClick(dialog.summary, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_E, [discharge, end])
    assert store.load(window.log.id).phase() == "ended"
    assert window.header.phase.text() == "Ended"
    assert_fits(window, watch, "ended")
    assert window.backups.wait()

    assert {
        "StartSessionDialog",
        "VitalsForm",
        "DoseForm",
        "ObservationForm",
        "AdverseEventForm",
        "AlarmAckDialog",
        "DischargeDialog",
        "InterventionForm",
        "AdverseEventOutcomeForm",
        "EndSessionForm",
    } <= watch.dialogs, watch.dialogs
    assert not watch.problems, watch.problems
