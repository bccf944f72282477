"""The two-person dose check and the BP decision, driven in the real bedside window.

700 mg IM racemic ketamine for 70 kg (10 mg/kg) is refused until the second attending clinician
(not the recorder) confirms it in the dose form; then it is committed and the audit entry names
both clinicians and the reason. Esketamine at 150/92 asks for a decision before dosing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QInputDialog, QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain import dose_guards
from kapmonitor.domain.clock import FakeClock
from kapmonitor.store import audit
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.bedside.session_window import SessionWindow
from kapmonitor.ui.forms.dose_form import SecondClinicianDialog
from tests.factories import T0
from tests.ui.window_driver import drive, enter_vitals, shown_window, type_into


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    opened = SessionStore.open(tmp_path / "guards.sqlite", clock)
    yield opened
    opened.close()


@pytest.fixture
def window(qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path) -> SessionWindow:
    return shown_window(qtbot, store, clock, tmp_path)


def start_session(qtbot: QtBot, window: SessionWindow, protocol: str, chosen: str) -> None:
    def fill(dialog: QWidget) -> None:
        type_into(qtbot, dialog.patient_code, "KAP-0500")
        type_into(qtbot, dialog.age, "44")
        type_into(qtbot, dialog.sex, "Female")
        type_into(qtbot, dialog.weight, "70")
        type_into(qtbot, dialog.indication, "Treatment")
        type_into(qtbot, dialog.clinicians[0], "Dr Lee")
        type_into(qtbot, dialog.clinicians[1], "Nurse Kim")
        type_into(qtbot, dialog.protocol, protocol)
        assert dialog.selected_protocol() == chosen
        for box in dialog.checklist.boxes.values():
            box.setChecked(True)
        if chosen == "esketamine-rems" and hasattr(dialog, "rems_first"):
            fill_rems(qtbot, dialog)
        qtbot.keyClick(dialog.weight, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_N, fill, Qt.KeyboardModifier.ControlModifier)


def fill_rems(qtbot: QtBot, dialog: QWidget) -> None:
    """The REMS form's details and the contraindication screen (all "No")."""
    dialog.rems_first.setCurrentIndex(dialog.rems_first.findData(False))
    type_into(qtbot, dialog.rems_phone, "555 0100")
    type_into(qtbot, dialog.rems_email, "lee@clinic.example")
    type_into(qtbot, dialog.rems_setting, "Clinic")
    type_into(qtbot, dialog.rems_address, "1 Main St")
    for box in dialog.rems_screen.values():
        box.setCurrentIndex(box.findData(False))


def when_modal(qtbot: QtBot, name: str, action: Callable[[QWidget], None]) -> list[str]:
    """Run ``action`` on the next modal dialog called ``name`` (opened from inside a form, so
    the window driver, busy with the form, cannot reach it). Returns the list it reports to."""
    seen: list[str] = []
    timer = QTimer()
    timer.setInterval(5)

    def poll() -> None:
        dialog = QApplication.activeModalWidget()
        if dialog is None or dialog.objectName() != name:
            return
        timer.stop()
        seen.append(name)
        action(dialog)

    timer.timeout.connect(poll)
    timer.start()
    _TIMERS.append(timer)  # alive until the test module ends
    return seen


_TIMERS: list[QTimer] = []


def give(qtbot: QtBot, drug: str, route: str, mg: str) -> Callable[[QWidget], None]:
    def dose(dialog: QWidget) -> None:
        type_into(qtbot, dialog.drug, drug)
        type_into(qtbot, dialog.route, route)
        type_into(qtbot, dialog.dose, mg)
        qtbot.keyClick(dialog.dose, Qt.Key.Key_Return)
        if dialog.isVisible():  # refused: the banner says why; close as a clinician would
            dialog.refusal = dialog.errors_text()
            dialog.reject()

    return dose


def test_700_mg_im_needs_the_second_clinician(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    start_session(qtbot, window, "Clinic", "clinic-ketamine")
    clock.advance(minutes=5)
    enter_vitals(qtbot, window, ["124/78", "72", "98", "14"])
    clock.advance(minutes=5)
    session_id = window.log.id

    # Refused: the second clinician does not confirm (Cancel).
    def cancel(dialog: QWidget) -> None:
        assert isinstance(dialog, SecondClinicianDialog)
        dialog.reject()

    seen = when_modal(qtbot, "SecondClinicianCheck", cancel)
    refusals: list[str] = []

    def dose_refused(dialog: QWidget) -> None:
        give(qtbot, "Racemic", "IM", "700")(dialog)
        refusals.append(getattr(dialog, "refusal", ""))

    drive(qtbot, window, Qt.Key.Key_D, dose_refused)
    assert seen == ["SecondClinicianCheck"], refusals
    assert "10.00 mg/kg" in refusals[0] and "second attending clinician" in refusals[0]
    assert store.load(session_id).current("doses") == []

    # The recorder cannot confirm their own dose.
    def self_confirm_then_second(dialog: QWidget) -> None:
        dialog.name.setEditText("Dr Lee")
        dialog.confirm.setChecked(True)
        type_into(qtbot, dialog.reason, "Prescriber's order, checked")
        qtbot.mouseClick(dialog.confirm_button, Qt.MouseButton.LeftButton)
        assert dialog.isVisible() and "Dr Lee is recording" in dialog.banner.text()
        dialog.name.setEditText("Nurse Kim")
        qtbot.mouseClick(dialog.confirm_button, Qt.MouseButton.LeftButton)

    seen = when_modal(qtbot, "SecondClinicianCheck", self_confirm_then_second)
    drive(qtbot, window, Qt.Key.Key_D, give(qtbot, "Racemic", "IM", "700"))
    assert seen == ["SecondClinicianCheck"]
    [dose] = store.load(session_id).current("doses")
    assert (dose["dose_mg"], dose["route"], dose["recorded_by"]) == (700.0, "im", "Dr Lee")
    [entry] = [e for e in audit.entries(store.db) if e["action"] == dose_guards.GUARD_CONFIRMED]
    detail = json.loads(entry["detail"])
    assert entry["actor"] == "Dr Lee" and detail["confirmed_by"] == "Nurse Kim"
    assert detail["recorded_by"] == "Dr Lee" and detail["reason"] == "Prescriber's order, checked"
    assert detail["signed_in"] is False


def test_esketamine_above_140_90_asks_for_a_decision(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    start_session(qtbot, window, "Esketamine", "esketamine-rems")
    clock.advance(minutes=5)
    enter_vitals(qtbot, window, ["150/92", "72", "98", "14"])
    clock.advance(minutes=5)
    session_id = window.log.id

    asked: list = []

    def defer(box: QWidget) -> None:
        assert isinstance(box, QMessageBox) and "above 140/90" in box.text()
        asked.extend(when_modal(qtbot, "BpDeferReason", answer("Rest 15 min, then re-measure")))
        next(b for b in box.buttons() if b.text().startswith("Defer")).click()

    seen = when_modal(qtbot, "BpDecision", defer)
    drive(qtbot, window, Qt.Key.Key_D, give(qtbot, "Esketamine", "Intranasal", "56"))
    assert seen == ["BpDecision"]
    assert store.load(session_id).current("doses") == []
    [entry] = [e for e in audit.entries(store.db) if e["action"] == dose_guards.BP_DEFER]
    assert "Rest 15 min" in entry["detail"]

    def proceed(box: QWidget) -> None:
        asked.append(when_modal(qtbot, "BpProceedReason", answer("Stable 150/92 for months")))
        next(b for b in box.buttons() if b.text().startswith("Proceed")).click()

    seen = when_modal(qtbot, "BpDecision", proceed)
    drive(qtbot, window, Qt.Key.Key_D, give(qtbot, "Esketamine", "Intranasal", "56"))
    assert seen == ["BpDecision"]
    assert len(store.load(session_id).current("doses")) == 1
    assert asked[-1] == ["BpProceedReason"]
    [entry] = [e for e in audit.entries(store.db) if e["action"] == dose_guards.BP_PROCEED]
    assert "Stable 150/92" in entry["detail"]


def answer(text: str) -> Callable[[QWidget], None]:
    def fill(dialog: QWidget) -> None:
        assert isinstance(dialog, QInputDialog)
        dialog.setTextValue(text)
        dialog.accept()

    return fill


def test_with_accounts_the_second_clinician_types_their_own_password(
    qtbot: QtBot, store: SessionStore, clock: FakeClock
) -> None:
    """Where accounts exist the check is a sign-in: a wrong password is refused (and audited
    by the accounts store), the recorder's own account is refused, the second clinician's
    password confirms under their display name."""
    from kapmonitor.store.accounts import Accounts

    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    accounts.create_user(admin, "lee", "Dr Lee", "clinician", "linden-river-32")
    accounts.create_user(admin, "kim", "Nurse Kim", "clinician", "kestrel-dawn-54")

    def sign_in(username: str, secret: str) -> str:
        return accounts.sign_in(username, secret, "confirm a dose").display_name

    dialog = SecondClinicianDialog(("700 mg is 10.00 mg/kg",), "Dr Lee", ["kim"], sign_in)
    qtbot.addWidget(dialog)
    dialog.show()
    type_into(qtbot, dialog.reason, "Prescriber's order")
    dialog.name.setEditText("kim")
    type_into(qtbot, dialog.password, "wrong-password")
    qtbot.mouseClick(dialog.confirm_button, Qt.MouseButton.LeftButton)
    assert dialog.confirmed_by is None and "Wrong user name or password" in dialog.banner.text()
    dialog.name.setEditText("lee")
    type_into(qtbot, dialog.password, "linden-river-32")
    qtbot.mouseClick(dialog.confirm_button, Qt.MouseButton.LeftButton)
    assert dialog.confirmed_by is None and "Dr Lee is recording" in dialog.banner.text()
    dialog.name.setEditText("kim")
    type_into(qtbot, dialog.password, "kestrel-dawn-54")
    qtbot.mouseClick(dialog.confirm_button, Qt.MouseButton.LeftButton)
    assert (dialog.confirmed_by, dialog.signed_in) == ("Nurse Kim", True)
