"""The adverse-effect dialog and the outcome dialog that closes an adverse effect."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock, to_iso
from kapmonitor.domain.records import AdverseEvent, AdverseEventOutcome, Entry
from kapmonitor.domain.reference import Reference
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.forms.adverse_event_form import AdverseEventForm
from kapmonitor.ui.forms.ae_outcome_form import NO_OPEN_EVENTS, AdverseEventOutcomeForm

Shown = Callable[[Any], Any]
Enter = Callable[[QWidget], None]
Save = Callable[[Entry], int]


def type_term(qtbot: QtBot, form: AdverseEventForm, text: str) -> None:
    qtbot.keyClicks(form.term.lineEdit(), text)


# --- adverse effect -------------------------------------------------------------------------


def test_adverse_effect_typed_and_saved(
    qtbot: QtBot,
    shown: Shown,
    enter: Enter,
    ref: Reference,
    save: Save,
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
) -> None:
    form = shown(AdverseEventForm(ref, save, clock.now()))
    assert form.windowTitle() == "Adverse effect"
    assert form.focusWidget() is form.term  # typing goes to its line edit
    assert form.term.currentText() == ""
    assert form.relatedness.currentData() == "unknown"
    assert form.action.currentData() == "none"
    assert not form.criterion.isEnabled()

    type_term(qtbot, form, "nausea")  # any case; the completer offers it while typing
    assert form.term_code() == "nausea"
    qtbot.keyClicks(form.grade, "2")
    assert form.grade_description.text().startswith("Minimal, local or non-invasive")
    qtbot.keyClicks(form.action, "Anti")
    assert form.action.currentData() == "antiemetic"
    qtbot.keyClicks(form.action_detail, "ondansetron 4 mg")
    enter(form.action_detail)

    assert form.result() == QDialog.DialogCode.Accepted
    (row,) = store.load(session_id).current("adverse_events")
    assert (row["term"], row["grade"], row["serious"]) == ("nausea", 2, 0)
    assert row["verbatim"] is None and row["code"] is None and row["serious_criterion"] is None
    assert (row["action"], row["action_detail"]) == ("antiemetic", "ondansetron 4 mg")
    assert row["relatedness"] == "unknown"
    assert row["observed_at"] == to_iso(clock.now())


def test_serious_event_needs_its_criterion(
    qtbot: QtBot,
    shown: Shown,
    enter: Enter,
    ref: Reference,
    save: Save,
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
) -> None:
    form = shown(AdverseEventForm(ref, save, clock.now()))
    type_term(qtbot, form, "Apnoea")
    qtbot.keyClicks(form.grade, "3")  # grade 4-5 tick "Serious" themselves (see below)
    qtbot.keyClick(form.serious, Qt.Key.Key_Space)
    assert form.criterion.isEnabled()
    enter(form.serious)

    assert form.isVisible()
    assert "A serious event needs its seriousness criterion" in form.errors_text()
    assert form.criterion.property("invalid") is True
    assert form.serious.isChecked() and form.term.currentText() == "Apnoea"

    qtbot.keyClicks(form.criterion, "Life")
    qtbot.keyClicks(form.relatedness, "Rel")
    enter(form.criterion)
    (row,) = store.load(session_id).current("adverse_events")
    assert (row["term"], row["grade"], row["serious"]) == ("apnoea", 3, 1)
    assert row["serious_criterion"] == "life_threatening"
    assert row["relatedness"] == "related"


@pytest.mark.parametrize(("grade", "criterion"), [("4", "life_threatening"), ("5", "death")])
def test_grade_4_and_5_are_serious_by_definition(
    qtbot: QtBot,
    shown: Shown,
    enter: Enter,
    ref: Reference,
    save: Save,
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
    grade: str,
    criterion: str,
) -> None:
    form = shown(AdverseEventForm(ref, save, clock.now()))
    type_term(qtbot, form, "Apnoea")
    assert form.serious.isEnabled() and not form.serious.isChecked()
    qtbot.keyClicks(form.grade, grade)
    # Ticked, locked, its criterion chosen, and said in words.
    assert form.serious.isChecked() and not form.serious.isEnabled()
    assert form.criterion.currentData() == criterion
    assert form.serious_note.isVisible()
    assert f"Grade {grade} is serious by definition (ICH E2A" in form.serious_note.text()
    # A lower grade gives the choice back (the tick stays until the clinician changes it).
    form.grade.setCurrentIndex(form.grade.findData(2))
    assert form.serious.isEnabled() and not form.serious_note.isVisible()
    form.grade.setCurrentIndex(form.grade.findData(int(grade)))
    enter(form.grade)
    (row,) = store.load(session_id).current("adverse_events")
    assert (row["grade"], row["serious"], row["serious_criterion"]) == (int(grade), 1, criterion)


def test_other_term_without_verbatim_is_refused(
    qtbot: QtBot,
    shown: Shown,
    enter: Enter,
    ref: Reference,
    save: Save,
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
) -> None:
    form = shown(AdverseEventForm(ref, save, clock.now()))
    type_term(qtbot, form, "Other (verbatim term)")
    assert form.term_code() == "other"
    assert "required" in form.verbatim.placeholderText()
    qtbot.keyClicks(form.grade, "1")
    enter(form.grade)

    assert form.isVisible()
    assert "Adverse effect 'Other': type the verbatim term" in form.errors_text()
    assert form.term.property("invalid") is True
    assert form.verbatim.property("invalid") is True  # the box to type in is marked too
    assert form.focusWidget() is form.verbatim
    assert store.load(session_id).current("adverse_events") == []

    qtbot.keyClicks(form.verbatim, "jaw clenching")
    enter(form.verbatim)
    (row,) = store.load(session_id).current("adverse_events")
    assert (row["term"], row["verbatim"]) == ("other", "jaw clenching")


def test_text_not_in_the_list_is_refused_not_guessed(
    qtbot: QtBot,
    shown: Shown,
    enter: Enter,
    ref: Reference,
    save: Save,
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
) -> None:
    form = shown(AdverseEventForm(ref, save, clock.now()))
    type_term(qtbot, form, "izz")
    enter(form.grade)

    text = form.errors_text()
    assert "Adverse effect “izz” is not in the list" in text
    assert "Did you mean Dizziness?" in text
    assert "Choose the severity" in text  # every problem at once
    assert form.term.currentText() == "izz"
    assert store.load(session_id).current("adverse_events") == []


def test_other_action_needs_a_description(
    qtbot: QtBot,
    shown: Shown,
    enter: Enter,
    ref: Reference,
    save: Save,
    clock: FakeClock,
) -> None:
    form = shown(AdverseEventForm(ref, save, clock.now()))
    type_term(qtbot, form, "Headache")
    qtbot.keyClicks(form.grade, "1")
    qtbot.keyClicks(form.action, "Oth")
    assert form.action.currentData() == "other"
    enter(form.action)
    assert "Action 'Other': describe it" in form.errors_text()
    assert form.action.property("invalid") is True
    assert form.action_detail.property("invalid") is True


def test_escape_cancels_without_writing(
    qtbot: QtBot,
    shown: Shown,
    ref: Reference,
    save: Save,
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
) -> None:
    form = shown(AdverseEventForm(ref, save, clock.now()))
    qtbot.keyClicks(form.grade, "1")
    qtbot.keyClick(form.grade, Qt.Key.Key_Escape)
    assert form.result() == QDialog.DialogCode.Rejected
    assert store.load(session_id).current("adverse_events") == []


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
    event = AdverseEvent(
        "other",
        3,
        clock.now(),
        verbatim="chest tightness",
        code="10008469",
        serious=True,
        serious_criterion="important_medical_event",
        action="other",
        action_detail="ECG",
        relatedness="possibly_related",
    )
    original_id = store.add(session_id, event, recorder).primary_id
    original = store.row("adverse_events", original_id)
    form: AdverseEventForm

    def correct(entry: Entry) -> int:
        return store.correct(session_id, original_id, entry, form.reason(), recorder).primary_id

    form = shown(AdverseEventForm(ref, correct, clock.now(), correcting=original))
    assert form.windowTitle() == "Correct adverse effect"
    assert form.term_code() == "other"
    assert form.verbatim.text() == "chest tightness"
    assert form.code.text() == "10008469"
    assert form.grade.currentData() == "3"
    assert form.serious.isChecked() and form.criterion.isEnabled()
    assert form.criterion.currentData() == "important_medical_event"
    assert (form.action.currentData(), form.action_detail.text()) == ("other", "ECG")
    assert form.relatedness.currentData() == "possibly_related"

    qtbot.keyClicks(form.grade, "2")
    qtbot.keyClicks(form.reason_edit, "regraded after review")
    enter(form.reason_edit)
    (row,) = store.load(session_id).current("adverse_events")
    assert row["grade"] == 2 and row["supersedes_id"] == original_id


# --- outcome --------------------------------------------------------------------------------


@pytest.fixture
def two_events(store: SessionStore, session_id: str, clock: FakeClock, recorder: str) -> list[int]:
    return [
        store.add(session_id, AdverseEvent("nausea", 1, clock.now()), recorder).primary_id,
        store.add(session_id, AdverseEvent("headache", 2, clock.now()), recorder).primary_id,
    ]


def test_outcome_typed_and_saved(
    qtbot: QtBot,
    shown: Shown,
    enter: Enter,
    ref: Reference,
    save: Save,
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
    two_events: list[int],
) -> None:
    nausea, headache = two_events
    clock.advance(minutes=15)
    events = [(nausea, "Nausea G1"), (headache, "Headache G2")]
    form = shown(
        AdverseEventOutcomeForm(ref, save, clock.now(), open_events=events, preselect=headache)
    )
    assert form.windowTitle() == "Adverse effect outcome"
    assert form.event.currentData() == headache
    assert form.outcome.currentData() == "resolved"
    assert form.save_button.isEnabled()

    qtbot.keyClicks(form.note, "after paracetamol")
    enter(form.note)

    assert form.result() == QDialog.DialogCode.Accepted
    log = store.load(session_id)
    (row,) = log.current("adverse_event_outcomes")
    assert (row["adverse_event_id"], row["outcome"]) == (headache, "resolved")
    assert row["note"] == "after paracetamol"
    assert row["observed_at"] == to_iso(clock.now())
    assert [e["id"] for e in log.open_adverse_events()] == [nausea]


def test_outcome_other_than_resolved_keeps_the_event_open(
    qtbot: QtBot,
    shown: Shown,
    enter: Enter,
    ref: Reference,
    save: Save,
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
    two_events: list[int],
) -> None:
    nausea, headache = two_events
    events = [(nausea, "Nausea G1"), (headache, "Headache G2")]
    form = shown(AdverseEventOutcomeForm(ref, save, clock.now(), open_events=events))
    assert form.event.currentData() == nausea
    qtbot.keyClicks(form.outcome, "Impro")
    enter(form.outcome)
    (row,) = store.load(session_id).current("adverse_event_outcomes")
    assert (row["adverse_event_id"], row["outcome"]) == (nausea, "resolving")
    assert len(store.load(session_id).open_adverse_events()) == 2


def test_outcome_with_nothing_open_cannot_be_saved(
    qtbot: QtBot,
    shown: Shown,
    enter: Enter,
    ref: Reference,
    save: Save,
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
) -> None:
    form = shown(AdverseEventOutcomeForm(ref, save, clock.now(), open_events=[]))
    assert form.errors_text() == NO_OPEN_EVENTS
    assert not form.save_button.isEnabled()
    enter(form.outcome)
    enter(form.note)  # even Enter in the note saves nothing
    assert form.isVisible()
    assert store.load(session_id).current("adverse_event_outcomes") == []
    qtbot.keyClick(form.outcome, Qt.Key.Key_Escape)
    assert form.result() == QDialog.DialogCode.Rejected


def test_outcome_escape_cancels_without_writing(
    qtbot: QtBot,
    shown: Shown,
    ref: Reference,
    save: Save,
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
    two_events: list[int],
) -> None:
    events = [(two_events[0], "Nausea G1")]
    form = shown(AdverseEventOutcomeForm(ref, save, clock.now(), open_events=events))
    qtbot.keyClicks(form.note, "better")
    qtbot.keyClick(form.note, Qt.Key.Key_Escape)
    assert form.result() == QDialog.DialogCode.Rejected
    assert store.load(session_id).current("adverse_event_outcomes") == []


def test_outcome_correction_prefills_even_a_closed_event(
    qtbot: QtBot,
    shown: Shown,
    enter: Enter,
    ref: Reference,
    save: Save,
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
    two_events: list[int],
    recorder: str,
) -> None:
    nausea = two_events[0]
    outcome_id = save(AdverseEventOutcome(nausea, "resolved", clock.now(), note="gone"))
    original = store.row("adverse_event_outcomes", outcome_id)
    form: AdverseEventOutcomeForm

    def correct(entry: Entry) -> int:
        return store.correct(session_id, outcome_id, entry, form.reason(), recorder).primary_id

    # The nausea is closed now, so it is not among the open events any more.
    form = shown(
        AdverseEventOutcomeForm(
            ref,
            correct,
            clock.now(),
            open_events=[(two_events[1], "Headache")],
            correcting=original,
        )
    )
    assert form.event.currentData() == nausea
    assert form.outcome.currentData() == "resolved"
    assert form.note.text() == "gone"
    qtbot.keyClicks(form.outcome, "Impro")
    qtbot.keyClicks(form.reason_edit, "still mildly nauseous")
    enter(form.reason_edit)
    (row,) = store.load(session_id).current("adverse_event_outcomes")
    assert (row["adverse_event_id"], row["outcome"]) == (nausea, "resolving")


def test_tab_order_follows_reading_order(
    shown: Shown,
    tab_chain: Callable[[list[QWidget]], list[QWidget]],
    ref: Reference,
    save: Save,
    clock: FakeClock,
) -> None:
    form = shown(AdverseEventForm(ref, save, clock.now()))
    expected: list[QWidget] = [
        form.term,
        form.verbatim,
        form.code,
        form.grade,
        form.serious,
        form.action,
        form.action_detail,
        form.relatedness,
        form.time_edit,
        form.save_button,
    ]
    assert tab_chain(expected) == expected
