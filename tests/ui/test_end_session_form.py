"""The end-of-session dialog."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock, to_iso
from kapmonitor.domain.records import Entry, SessionEnd
from kapmonitor.domain.reference import Reference
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.forms.end_session_form import EndSessionForm, open_events_warning

Shown = Callable[[Any], Any]
Enter = Callable[[QWidget], None]
Save = Callable[[Entry], int]
ELAPSED = "Session length 2:10:00; 1:55:00 since first dose"


def test_end_typed_and_saved(
    qtbot: QtBot,
    shown: Shown,
    ref: Reference,
    save: Save,
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
) -> None:
    form = shown(EndSessionForm(ref, save, clock.now(), elapsed_text=ELAPSED))
    assert form.windowTitle() == "End session"
    assert form.focusWidget() is form.disposition
    assert form.warning is None
    assert form.form.labelForField(form.time_edit).text() == "Ended at"

    qtbot.keyClicks(form.disposition, "Home w")
    assert form.disposition.currentData() == "home_with_escort"
    assert not form.disposition_other.isEnabled()
    qtbot.keyClicks(form.escort, "partner")
    qtbot.keyClicks(form.summary, "Uneventful session; BP back to baseline.")
    qtbot.keyClick(form.summary, Qt.Key.Key_Return)

    assert form.result() == QDialog.DialogCode.Accepted
    log = store.load(session_id)
    (row,) = log.current("session_ends")
    assert (row["disposition"], row["escort"]) == ("home_with_escort", "partner")
    assert row["summary"] == "Uneventful session; BP back to baseline."
    assert row["disposition_other"] is None
    assert row["observed_at"] == to_iso(clock.now())
    assert log.phase() == "ended"


def test_context_is_shown(shown: Shown, ref: Reference, save: Save, clock: FakeClock) -> None:
    form = shown(
        EndSessionForm(ref, save, clock.now(), elapsed_text=ELAPSED, open_adverse_events=1)
    )
    assert form.warning is not None and form.warning.isVisible()
    assert "1 adverse effect is not marked resolved" in form.warning.text()
    assert any(label.text() == ELAPSED for label in form.findChildren(type(form.warning)))


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, ""),
        (1, "1 adverse effect is not marked resolved"),
        (3, "3 adverse effects are not marked resolved"),
    ],
)
def test_open_events_warning_wording(count: int, text: str) -> None:
    assert open_events_warning(count) == text


def test_missing_escort_other_text_and_summary_are_refused(
    qtbot: QtBot,
    shown: Shown,
    enter: Enter,
    ref: Reference,
    save: Save,
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
) -> None:
    form = shown(EndSessionForm(ref, save, clock.now()))
    qtbot.keyClicks(form.disposition, "Home w")
    enter(form.escort)
    text = form.errors_text()
    assert "name the escort" in text and "Write a short summary" in text
    assert form.escort.property("invalid") is True
    assert form.summary.property("invalid") is True
    assert form.isVisible()

    # A second keyboard search within Qt's typing interval would extend the first: pick directly.
    form.disposition.setCurrentIndex(form.disposition.findData("other"))
    assert form.disposition_other.isEnabled()
    qtbot.keyClicks(form.summary, "Left early")
    enter(form.escort)
    assert "Disposition 'Other': say where the patient went" in form.errors_text()
    assert form.field_widgets["disposition"].property("invalid") is True
    assert form.summary.text() == "Left early"
    assert store.load(session_id).current("session_ends") == []

    qtbot.keyClicks(form.disposition_other, "collected by taxi service")
    enter(form.disposition_other)
    (row,) = store.load(session_id).current("session_ends")
    assert (row["disposition"], row["disposition_other"]) == ("other", "collected by taxi service")


def test_escape_cancels_without_writing(
    qtbot: QtBot,
    shown: Shown,
    ref: Reference,
    save: Save,
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
) -> None:
    form = shown(EndSessionForm(ref, save, clock.now()))
    qtbot.keyClicks(form.summary, "draft")
    qtbot.keyClick(form.summary, Qt.Key.Key_Escape)
    assert form.result() == QDialog.DialogCode.Rejected
    assert store.load(session_id).current("session_ends") == []
    assert store.load(session_id).phase() != "ended"


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
    end = SessionEnd(
        "other", clock.now(), escort="sister", summary="Fine", disposition_other="hotel"
    )
    original_id = store.add(session_id, end, recorder).primary_id
    original = store.row("session_ends", original_id)
    form: EndSessionForm

    def correct(entry: Entry) -> int:
        return store.correct(session_id, original_id, entry, form.reason(), recorder).primary_id

    form = shown(EndSessionForm(ref, correct, clock.now(), correcting=original))
    assert form.windowTitle() == "Correct end session"
    assert form.disposition.currentData() == "other"
    assert form.disposition_other.text() == "hotel"
    assert form.escort.text() == "sister"
    assert form.summary.text() == "Fine"

    qtbot.keyClicks(form.disposition, "Home w")
    qtbot.keyClicks(form.reason_edit, "went home after all")
    enter(form.reason_edit)
    (row,) = store.load(session_id).current("session_ends")
    assert (row["disposition"], row["disposition_other"]) == ("home_with_escort", None)
    assert row["supersedes_id"] == original_id


def test_tab_order_follows_reading_order(
    shown: Shown,
    tab_chain: Callable[[list[QWidget]], list[QWidget]],
    ref: Reference,
    save: Save,
    clock: FakeClock,
) -> None:
    form = shown(EndSessionForm(ref, save, clock.now(), elapsed_text=ELAPSED))
    expected: list[QWidget] = [
        form.disposition,
        form.disposition_other,
        form.escort,
        form.summary,
        form.time_edit,
        form.save_button,
    ]
    assert tab_chain(expected) == expected
