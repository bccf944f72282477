"""The esketamine REMS questions and contraindication screen in the start dialog, driven by keys:
a "yes" refuses the session with its reason and nothing is stored; every item must be answered;
all "no" starts it with the REMS details stored; the dialog fits the clinic laptop's screen."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import QApplication, QComboBox, QDialog, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.reference import Reference
from kapmonitor.store import rems_store
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.forms import form_base
from kapmonitor.ui.forms.start_session_dialog import StartSessionDialog
from tests.factories import protocol
from tests.ui.test_start_session_dialog import fill_valid

Shown = Callable[[Any], Any]
Enter = Callable[[QWidget], None]
SCREEN = QRect(0, 0, 1280, 720)
PROTOCOLS = [
    ("clinic-ketamine", "Clinic ketamine (IM/IV)"),
    ("esketamine-rems", "Esketamine (Spravato) REMS"),
]


@pytest.fixture(autouse=True)
def clinic_laptop(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = QApplication.primaryScreen()
    if screen is None or screen.availableGeometry() != SCREEN:
        monkeypatch.setattr(form_base, "screen_room", lambda _widget: QRect(SCREEN))


@pytest.fixture
def dialog(shown: Shown, ref: Reference, store: SessionStore, clock: FakeClock) -> Any:
    def start(record: Any, who: str) -> str:
        chosen = dialog.selected_protocol()
        return store.start_session(record, who, protocol=protocol(chosen))

    dialog = StartSessionDialog(
        ref,
        start,
        clock.now(),
        protocols=PROTOCOLS,
        default_protocol="esketamine-rems",
        rems_protocols=["esketamine-rems"],
    )
    return shown(dialog)


def choose(qtbot: QtBot, box: QComboBox, text: str) -> None:
    """Pick the item starting with ``text`` the way a keyboard user does: arrow keys."""
    target = next(i for i in range(box.count()) if box.itemText(i).startswith(text))
    box.setFocus()
    while box.currentIndex() != target:
        key = Qt.Key.Key_Down if box.currentIndex() < target else Qt.Key.Key_Up
        qtbot.keyClick(box, key)
    assert box.currentText().startswith(text), box.currentText()


def fill_rems(qtbot: QtBot, dialog: StartSessionDialog, yes: str = "", skip: str = "") -> None:
    choose(qtbot, dialog.rems_first, "Yes")
    qtbot.keyClicks(dialog.rems_phone, "+1 555 0100")
    qtbot.keyClicks(dialog.rems_email, "dr.a@clinic.example")
    qtbot.keyClicks(dialog.rems_setting, "Clinic room 2")
    qtbot.keyClicks(dialog.rems_address, "1 Main St, Springfield")
    for code, box in dialog.rems_screen.items():
        if code != skip:
            choose(qtbot, box, "Yes" if code == yes else "No")


def sessions(store: SessionStore) -> int:
    return store.db.execute("SELECT count(*) FROM sessions").fetchone()[0]


def fits(dialog: QDialog) -> None:
    QApplication.processEvents()
    frame = dialog.frameGeometry()
    assert frame.height() <= SCREEN.height() and frame.width() <= SCREEN.width(), frame
    assert dialog.save_button.isVisible()


def test_the_rems_questions_appear_only_for_the_esketamine_protocol(
    qtbot: QtBot, dialog: StartSessionDialog
) -> None:
    assert dialog.rems_box.isVisible()
    assert len(dialog.rems_screen) == 4
    assert all(box.currentData() is None for box in dialog.rems_screen.values())
    choose(qtbot, dialog.protocol, "Clinic")
    assert not dialog.rems_box.isVisible()
    assert dialog.rems_record() is None
    fits(dialog)


def test_a_contraindication_refuses_the_esketamine_session(
    qtbot: QtBot, enter: Enter, dialog: StartSessionDialog, store: SessionStore
) -> None:
    fill_valid(qtbot, dialog)
    fill_rems(qtbot, dialog, yes="aneurysmal_vascular_disease")
    enter(dialog.weight)
    assert dialog.isVisible() and dialog.session_id is None
    text = dialog.errors_text()
    assert "Esketamine is contraindicated: Aneurysmal vascular disease" in text
    assert "cannot start" in text
    assert sessions(store) == 0
    fits(dialog)
    # Corrected (the answer was a slip): the same dialog starts the session.
    choose(qtbot, dialog.rems_screen["aneurysmal_vascular_disease"], "No")
    enter(dialog.weight)
    assert dialog.result() == QDialog.DialogCode.Accepted, dialog.errors_text()
    assert sessions(store) == 1


def test_an_unanswered_screen_item_refuses(
    qtbot: QtBot, enter: Enter, dialog: StartSessionDialog, store: SessionStore
) -> None:
    fill_valid(qtbot, dialog)
    fill_rems(qtbot, dialog, skip="hypersensitivity")
    enter(dialog.weight)
    assert "answer every item" in dialog.errors_text()
    assert "Hypersensitivity to esketamine" in dialog.errors_text()
    assert sessions(store) == 0


def test_missing_form_details_are_named(
    qtbot: QtBot, enter: Enter, dialog: StartSessionDialog, store: SessionStore
) -> None:
    fill_valid(qtbot, dialog)
    for box in dialog.rems_screen.values():
        choose(qtbot, box, "No")
    enter(dialog.weight)
    text = dialog.errors_text()
    for words in ("first treatment", "phone", "e-mail", "setting's name", "address"):
        assert words in text
    assert sessions(store) == 0
    fits(dialog)


def test_all_answered_no_starts_and_stores_the_rems_details(
    qtbot: QtBot, enter: Enter, dialog: StartSessionDialog, store: SessionStore
) -> None:
    fill_valid(qtbot, dialog)
    fill_rems(qtbot, dialog)
    enter(dialog.weight)
    assert dialog.result() == QDialog.DialogCode.Accepted, dialog.errors_text()
    assert dialog.session_id is not None
    details = rems_store.start_details(store.db, dialog.session_id)
    assert details is not None
    assert (details["first_treatment"], details["clinician_email"]) == (1, "dr.a@clinic.example")
    assert details["setting_address"] == "1 Main St, Springfield"
    assert set(details["contraindications"].values()) == {False}


def test_the_clinic_ketamine_session_needs_no_rems_answers(
    qtbot: QtBot, enter: Enter, dialog: StartSessionDialog, store: SessionStore
) -> None:
    choose(qtbot, dialog.protocol, "Clinic")
    fill_valid(qtbot, dialog)
    enter(dialog.weight)
    assert dialog.result() == QDialog.DialogCode.Accepted, dialog.errors_text()
    assert rems_store.start_details(store.db, dialog.session_id) is None


def test_refused_in_large_type_still_fits(
    qtbot: QtBot, enter: Enter, dialog: StartSessionDialog
) -> None:
    font = dialog.font()
    font.setPointSizeF(font.pointSizeF() * 1.5)
    dialog.setFont(font)
    fill_valid(qtbot, dialog)
    enter(dialog.weight)
    assert "answer every item" in dialog.errors_text()
    fits(dialog)
