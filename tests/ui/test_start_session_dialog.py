"""The start-session dialog: it creates the session, so every refusal must leave nothing behind."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock, to_iso
from kapmonitor.domain.records import SessionStart
from kapmonitor.domain.reference import Reference
from kapmonitor.store.database import StoreError
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.forms.start_session_dialog import StartSessionDialog

Shown = Callable[[Any], Any]
Enter = Callable[[QWidget], None]


@pytest.fixture
def dialog(
    shown: Shown, ref: Reference, store: SessionStore, clock: FakeClock
) -> StartSessionDialog:
    return shown(StartSessionDialog(ref, store.start_session, clock.now()))


def tick(qtbot: QtBot, boxes: dict[str, Any], *, skip: str = "") -> None:
    for code, box in boxes.items():
        if code != skip:
            qtbot.keyClick(box, Qt.Key.Key_Space)


def fill_valid(qtbot: QtBot, dialog: StartSessionDialog, *, clinicians: int = 2) -> None:
    qtbot.keyClicks(dialog.patient_code, "KAP-0042")
    qtbot.keyClicks(dialog.birth_year, "1980")
    qtbot.keyClicks(dialog.sex, "F")
    qtbot.keyClicks(dialog.weight, "74,5")
    qtbot.keyClicks(dialog.indication, "Treat")
    for edit, name in zip(dialog.clinicians, ("Dr A", "Dr B")[:clinicians], strict=False):
        qtbot.keyClicks(edit, name)
    tick(qtbot, dialog.checklist.boxes)


def test_session_typed_and_started(
    qtbot: QtBot, enter: Enter, dialog: StartSessionDialog, store: SessionStore, clock: FakeClock
) -> None:
    assert dialog.windowTitle() == "Start session"
    assert dialog.focusWidget() is dialog.patient_code
    assert dialog.sex.currentData() is None and dialog.indication.currentData() is None
    fill_valid(qtbot, dialog)
    qtbot.keyClicks(dialog.clinicians[2], "Nurse C")
    qtbot.keyClick(dialog.concomitant.boxes["benzodiazepines"], Qt.Key.Key_Space)
    enter(dialog.weight)

    assert dialog.result() == QDialog.DialogCode.Accepted, dialog.errors_text()
    assert dialog.session_id is not None
    log = store.load(dialog.session_id)
    session = log.session
    assert session["patient_code"] == "KAP-0042"
    assert (session["birth_year"], session["age_years"]) == (1980, clock.now().year - 1980)
    assert (session["sex"], session["weight_kg"], session["indication"]) == ("female", 74.5, "trd")
    assert session["indication_other"] is None
    assert all(json.loads(session["eligibility"]).values())
    meds = json.loads(session["concomitant_medicines"])
    assert meds["benzodiazepines"] is True
    assert sum(meds.values()) == 1
    assert session["observed_at"] == to_iso(clock.now())
    assert session["recorded_by"] == "Dr A"  # the first named clinician starts the session
    assert log.clinicians == ["Dr A", "Dr B", "Nurse C"]


def test_age_instead_of_birth_year_and_other_indication(
    qtbot: QtBot, enter: Enter, dialog: StartSessionDialog, store: SessionStore
) -> None:
    fill_valid(qtbot, dialog)
    dialog.birth_year.clear()
    qtbot.keyClicks(dialog.age, "45")
    dialog.indication.setCurrentIndex(dialog.indication.findData("other"))
    assert dialog.indication_other.isEnabled()
    qtbot.keyClicks(dialog.indication_other, "OCD")
    enter(dialog.indication_other)

    assert dialog.session_id is not None
    session = store.load(dialog.session_id).session
    assert (session["birth_year"], session["age_years"]) == (None, 45)
    assert (session["indication"], session["indication_other"]) == ("other", "OCD")


def test_one_clinician_is_refused_and_nothing_is_stored(
    qtbot: QtBot, enter: Enter, dialog: StartSessionDialog, store: SessionStore
) -> None:
    fill_valid(qtbot, dialog, clinicians=1)
    enter(dialog.clinicians[1])

    assert dialog.isVisible()
    assert dialog.session_id is None
    assert "At least 2 different attending clinicians are required" in dialog.errors_text()
    assert dialog.field_widgets["clinicians"].property("invalid") is True
    assert dialog.focusWidget() is dialog.clinicians[0]
    assert dialog.clinicians[0].text() == "Dr A"
    assert dialog.patient_code.text() == "KAP-0042"
    assert store.list_sessions() == []

    qtbot.keyClicks(dialog.clinicians[1], "Dr B")
    enter(dialog.clinicians[1])
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.field_widgets["clinicians"].property("invalid") is False
    assert len(store.list_sessions()) == 1


def test_unticked_consent_is_refused(
    qtbot: QtBot, enter: Enter, dialog: StartSessionDialog, store: SessionStore
) -> None:
    fill_valid(qtbot, dialog)
    qtbot.keyClick(dialog.checklist.boxes["consent_signed"], Qt.Key.Key_Space)  # untick
    enter(dialog.weight)

    assert dialog.isVisible()
    assert "Eligibility and consent not confirmed: Informed consent signed" in dialog.errors_text()
    assert dialog.field_widgets["checklist"].property("invalid") is True
    assert dialog.checklist.boxes["diagnosis_confirmed"].isChecked()
    assert store.list_sessions() == []


def test_unreadable_numbers_and_other_problems_are_shown_at_once(
    qtbot: QtBot, enter: Enter, dialog: StartSessionDialog, store: SessionStore
) -> None:
    qtbot.keyClicks(dialog.patient_code, "Jane Doe")
    qtbot.keyClicks(dialog.weight, "heavy")
    enter(dialog.weight)

    text = dialog.errors_text()
    assert "Weight: “heavy” is not a number" in text
    assert "Patient code" in text and "never a name" in text
    assert "Give the birth year or the age" in text
    assert "Choose the sex" in text and "Choose the indication" in text
    assert "At least 2 different attending clinicians" in text
    assert "Eligibility and consent not confirmed" in text
    for key in ("patient_code", "weight_kg", "age", "sex", "indication", "clinicians"):
        assert dialog.field_widgets[key].property("invalid") is True, key
    assert dialog.errors_text().index("Patient code") < dialog.errors_text().index("Weight")
    assert dialog.focusWidget() is dialog.patient_code  # the first problem in reading order
    assert dialog.weight.text() == "heavy"
    assert store.list_sessions() == []


@pytest.mark.parametrize(
    ("birth_year", "age", "message"),
    [
        ("1980", "30", "Birth year 1980 and age 30 disagree"),
        ("1850", "", "Birth year 1850 is not possible"),
        ("", "7", "Age 7 years is not possible"),
        ("19.5", "", "Birth year: whole numbers only"),
    ],
)
def test_impossible_ages_are_refused(
    qtbot: QtBot,
    enter: Enter,
    dialog: StartSessionDialog,
    store: SessionStore,
    birth_year: str,
    age: str,
    message: str,
) -> None:
    fill_valid(qtbot, dialog)
    dialog.birth_year.clear()
    qtbot.keyClicks(dialog.birth_year, birth_year)
    qtbot.keyClicks(dialog.age, age)
    enter(dialog.age)
    assert message in dialog.errors_text()
    assert dialog.field_widgets["age"].property("invalid") is True
    assert (dialog.birth_year.text(), dialog.age.text()) == (birth_year, age)
    assert store.list_sessions() == []


def test_store_failure_keeps_the_dialog_open(
    qtbot: QtBot, shown: Shown, enter: Enter, ref: Reference, clock: FakeClock
) -> None:
    calls: list[tuple[SessionStart, str]] = []

    def start(record: SessionStart, recorded_by: str) -> str:
        calls.append((record, recorded_by))
        raise StoreError("the database file x.sqlite is in use by another program", "locked")

    dialog = shown(StartSessionDialog(ref, start, clock.now()))
    fill_valid(qtbot, dialog)
    enter(dialog.weight)
    assert dialog.isVisible()
    assert dialog.errors_text().startswith("Session not started. the database file")
    assert dialog.session_id is None
    ((record, recorded_by),) = calls
    assert recorded_by == "Dr A"
    assert record.clinicians == ("Dr A", "Dr B")
    assert record.checklist == {c.code: True for c in ref.choices("eligibility_checklist")}
    assert record.concomitant == {c.code: False for c in ref.choices("concomitant_medicines")}


def test_escape_cancels_without_starting(
    qtbot: QtBot, dialog: StartSessionDialog, store: SessionStore
) -> None:
    fill_valid(qtbot, dialog)
    qtbot.keyClick(dialog.patient_code, Qt.Key.Key_Escape)
    assert dialog.result() == QDialog.DialogCode.Rejected
    assert dialog.session_id is None
    assert store.list_sessions() == []


def test_tab_order_follows_reading_order(
    dialog: StartSessionDialog, tab_chain: Callable[[list[QWidget]], list[QWidget]]
) -> None:
    expected: list[QWidget] = [
        dialog.patient_code,
        dialog.birth_year,
        dialog.age,
        dialog.sex,
        dialog.weight,
        dialog.indication,
        dialog.indication_other,
        *dialog.clinicians,
        *dialog.checklist.boxes.values(),
        *dialog.concomitant.boxes.values(),
        dialog.started_at,
        dialog.save_button,
    ]
    assert tab_chain(expected) == expected


def test_without_protocols_no_stray_protocol_box(dialog: StartSessionDialog) -> None:
    """With no protocol to choose, the protocol list is not shown over the dialog's corner."""
    assert not dialog.protocols
    assert dialog.protocol.isHidden()


def test_a_long_protocol_name_does_not_widen_the_dialog(
    shown: Callable[[Any], Any], ref: Reference, store: SessionStore, clock: FakeClock
) -> None:
    short = shown(
        StartSessionDialog(ref, store.start_session, clock.now(), protocols=[("a", "Ketamine")])
    )
    long_name = "Clinic ketamine IM/IV, adults, with extended aftercare and REMS checks " * 2
    long = shown(
        StartSessionDialog(ref, store.start_session, clock.now(), protocols=[("a", long_name)])
    )
    assert long.width() == short.width()
    assert long.protocol.itemData(0, Qt.ItemDataRole.ToolTipRole) == long_name
