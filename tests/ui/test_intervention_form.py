"""The intervention-or-note dialog."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock, to_iso
from kapmonitor.domain.records import Entry, Intervention
from kapmonitor.domain.reference import Reference
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.forms.intervention_form import InterventionForm

Shown = Callable[[Any], Any]
Enter = Callable[[QWidget], None]
Save = Callable[[Entry], int]


def test_preselected_note_typed_and_saved(
    qtbot: QtBot,
    shown: Shown,
    ref: Reference,
    save: Save,
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
) -> None:
    form = shown(InterventionForm(ref, save, clock.now(), category="note"))
    assert form.windowTitle() == "Intervention or note"
    assert form.category.currentData() == "note"
    assert form.focusWidget() is form.detail  # the kind is chosen: straight to the text
    assert not form.medication.isEnabled()

    qtbot.keyClicks(form.detail, "Patient asked for the music to be quieter")
    qtbot.keyClick(form.detail, Qt.Key.Key_Return)

    assert form.result() == QDialog.DialogCode.Accepted
    (row,) = store.load(session_id).current("interventions")
    assert row["category"] == "note"
    assert row["detail"] == "Patient asked for the music to be quieter"
    assert row["medication"] is None
    assert row["observed_at"] == to_iso(clock.now())


def test_medication_typed_and_saved(
    qtbot: QtBot,
    shown: Shown,
    enter: Enter,
    ref: Reference,
    save: Save,
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
) -> None:
    form = shown(InterventionForm(ref, save, clock.now()))
    assert form.focusWidget() is form.category
    assert form.category.currentData() is None
    qtbot.keyClicks(form.category, "Med")
    assert form.category.currentData() == "medication"
    assert form.medication.isEnabled()
    qtbot.keyClicks(form.medication, "ondansetron 4 mg IV")
    enter(form.medication)

    (row,) = store.load(session_id).current("interventions")
    assert (row["category"], row["medication"], row["detail"]) == (
        "medication",
        "ondansetron 4 mg IV",
        None,
    )


def test_medication_without_its_name_is_refused(
    qtbot: QtBot,
    shown: Shown,
    enter: Enter,
    ref: Reference,
    save: Save,
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
) -> None:
    form = shown(InterventionForm(ref, save, clock.now(), category="medication"))
    assert form.focusWidget() is form.medication
    qtbot.keyClicks(form.detail, "for nausea")
    enter(form.medication)

    assert form.isVisible()
    assert "Name the medication given" in form.errors_text()
    assert form.medication.property("invalid") is True
    assert form.detail.text() == "for nausea"
    assert store.load(session_id).current("interventions") == []


def test_no_kind_and_empty_note_are_refused(
    qtbot: QtBot, shown: Shown, enter: Enter, ref: Reference, save: Save, clock: FakeClock
) -> None:
    form = shown(InterventionForm(ref, save, clock.now()))
    enter(form.category)
    assert "Choose what kind of intervention or note this is" in form.errors_text()
    assert form.category.property("invalid") is True

    qtbot.keyClicks(form.category, "Note")
    enter(form.category)
    assert "Write the note" in form.errors_text()
    assert form.detail.property("invalid") is True
    assert form.category.property("invalid") is False  # the fixed field is cleared


def test_escape_cancels_without_writing(
    qtbot: QtBot,
    shown: Shown,
    ref: Reference,
    save: Save,
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
) -> None:
    form = shown(InterventionForm(ref, save, clock.now(), category="note"))
    qtbot.keyClicks(form.detail, "draft")
    qtbot.keyClick(form.detail, Qt.Key.Key_Escape)
    assert form.result() == QDialog.DialogCode.Rejected
    assert store.load(session_id).current("interventions") == []


def test_correction_prefills_every_field(
    qtbot: QtBot,
    shown: Shown,
    enter: Enter,
    ref: Reference,
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
    recorder: str,
) -> None:
    original_id = store.add(
        session_id,
        Intervention("medication", clock.now(), detail="for BP", medication="labetalol 10 mg"),
        recorder,
    ).primary_id
    original = store.row("interventions", original_id)
    form: InterventionForm

    def correct(entry: Entry) -> int:
        return store.correct(session_id, original_id, entry, form.reason(), recorder).primary_id

    form = shown(InterventionForm(ref, correct, clock.now(), correcting=original))
    assert form.windowTitle() == "Correct intervention or note"
    assert form.category.currentData() == "medication"
    assert form.medication.text() == "labetalol 10 mg" and form.medication.isEnabled()
    assert form.detail.text() == "for BP"

    form.medication.selectAll()
    qtbot.keyClicks(form.medication, "labetalol 20 mg")
    qtbot.keyClicks(form.reason_edit, "dose mistyped")
    enter(form.reason_edit)
    (row,) = store.load(session_id).current("interventions")
    assert row["medication"] == "labetalol 20 mg" and row["supersedes_id"] == original_id


def test_tab_order_follows_reading_order(
    shown: Shown,
    tab_chain: Callable[[list[QWidget]], list[QWidget]],
    ref: Reference,
    save: Save,
    clock: FakeClock,
) -> None:
    form = shown(InterventionForm(ref, save, clock.now()))
    form.category.setCurrentIndex(form.category.findData("medication"))
    expected: list[QWidget] = [
        form.category,
        form.medication,
        form.detail,
        form.time_edit,
        form.save_button,
    ]
    assert tab_chain(expected) == expected
