"""The dose dialog, typed as a clinician types it, checked against what the store committed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock, to_iso
from kapmonitor.domain.records import Dose, Entry
from kapmonitor.domain.reference import Reference
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.forms.dose_form import DoseForm

RECORDER = "Dr A"  # the recorder of the conftest fixtures
WEIGHT_KG = 74.0  # the weight of the conftest's started session

Shown = Callable[[Any], Any]
Enter = Callable[[QWidget], None]


def make_form(
    ref: Reference,
    save: Callable[[Entry], int],
    clock: FakeClock,
    previous: list[dict[str, Any]] | None = None,
    **kwargs: Any,
) -> DoseForm:
    return DoseForm(
        ref, save, clock.now(), weight_kg=WEIGHT_KG, previous_doses=previous or [], **kwargs
    )


def give(store: SessionStore, session_id: str, clock: FakeClock, mg: float) -> int:
    return store.add(
        session_id, Dose("ketamine", "im", mg, clock.now(), lot_number="L1"), RECORDER
    ).primary_id


def test_first_dose_typed_and_saved(
    qtbot: QtBot,
    shown: Shown,
    enter: Enter,
    ref: Reference,
    save: Callable[[Entry], int],
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
) -> None:
    form = shown(make_form(ref, save, clock, recorder=RECORDER))
    assert form.windowTitle() == "Dose"
    assert form.focusWidget() is form.drug
    assert form.drug.currentData() is None  # the first dose's drug is chosen, never assumed
    assert not form.booster.isChecked()

    qtbot.keyClicks(form.drug, "Rac")
    qtbot.keyClicks(form.route, "IM")
    qtbot.keyClicks(form.dose, "70")
    assert form.totals.text() == "0.95 mg/kg for 74 kg\nCumulative: 70 mg (0.95 mg/kg)"
    qtbot.keyClicks(form.lot, "LOT-7")
    enter(form.lot)

    assert form.result() == QDialog.DialogCode.Accepted
    (row,) = store.load(session_id).current("doses")
    assert row["id"] == form.saved_id
    assert (row["drug"], row["route"], row["dose_mg"]) == ("ketamine", "im", 70.0)
    assert row["dose_mg_per_kg"] == round(70 / WEIGHT_KG, 3)
    assert row["lot_number"] == "LOT-7"
    assert row["is_booster"] == 0
    assert row["drug_other"] is None
    assert row["observed_at"] == to_iso(clock.now())
    assert row["recorded_by"] == RECORDER


def test_later_dose_defaults_to_the_previous_one(
    qtbot: QtBot,
    shown: Shown,
    enter: Enter,
    ref: Reference,
    save: Callable[[Entry], int],
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
) -> None:
    give(store, session_id, clock, 70)
    clock.advance(minutes=30)
    previous = store.load(session_id).current("doses")
    form = shown(make_form(ref, save, clock, previous))
    assert form.drug.currentData() == "ketamine"
    assert form.route.currentData() == "im"
    assert form.lot.text() == "L1"
    assert form.booster.isChecked()
    assert "Cumulative so far: 70 mg (0.95 mg/kg)" in form.totals.text()

    qtbot.keyClicks(form.dose, "50")
    assert form.totals.text() == "0.68 mg/kg for 74 kg\nCumulative: 120 mg (1.62 mg/kg)"
    enter(form.dose)

    rows = store.load(session_id).current("doses")
    assert [r["dose_mg"] for r in rows] == [70.0, 50.0]
    assert rows[1]["is_booster"] == 1
    assert rows[1]["lot_number"] == "L1"


def test_non_numeric_dose_is_refused_and_kept(
    qtbot: QtBot,
    shown: Shown,
    enter: Enter,
    ref: Reference,
    save: Callable[[Entry], int],
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
) -> None:
    form = shown(make_form(ref, save, clock))
    qtbot.keyClicks(form.drug, "Rac")
    qtbot.keyClicks(form.route, "IM")
    qtbot.keyClicks(form.dose, "abc")
    assert form.totals.text().startswith("“abc” is not a number")
    enter(form.dose)

    assert form.isVisible()
    assert form.result() != QDialog.DialogCode.Accepted
    assert "Dose" in form.errors_text() and "abc" in form.errors_text()
    assert form.dose.property("invalid") is True
    assert form.dose.text() == "abc"
    assert form.focusWidget() is form.dose
    assert store.load(session_id).current("doses") == []


def test_empty_dose_is_refused(
    shown: Shown,
    enter: Enter,
    ref: Reference,
    save: Callable[[Entry], int],
    clock: FakeClock,
) -> None:
    form = shown(make_form(ref, save, clock))
    enter(form.dose)
    assert form.isVisible()
    assert "Dose: type the dose in mg" in form.errors_text()


def test_impossible_dose_and_missing_choices_are_refused_together(
    qtbot: QtBot,
    shown: Shown,
    enter: Enter,
    ref: Reference,
    save: Callable[[Entry], int],
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
) -> None:
    form = shown(make_form(ref, save, clock))
    qtbot.keyClicks(form.dose, "7000")
    enter(form.dose)

    text = form.errors_text()
    assert "Dose 7000 mg is not possible" in text
    assert "Choose the drug" in text and "Choose the route" in text
    for key in ("drug", "route", "dose_mg"):
        assert form.field_widgets[key].property("invalid") is True
    assert form.dose.text() == "7000"
    assert store.load(session_id).current("doses") == []

    # Fixing the fields clears the highlights and saves.
    qtbot.keyClicks(form.drug, "Esk")
    qtbot.keyClicks(form.route, "Intra")
    form.dose.clear()
    qtbot.keyClicks(form.dose, "56")
    enter(form.dose)
    assert form.result() == QDialog.DialogCode.Accepted
    (row,) = store.load(session_id).current("doses")
    assert (row["drug"], row["route"], row["dose_mg"]) == ("esketamine", "intranasal", 56.0)


def test_other_drug_needs_its_name(
    qtbot: QtBot,
    shown: Shown,
    enter: Enter,
    ref: Reference,
    save: Callable[[Entry], int],
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
) -> None:
    form = shown(make_form(ref, save, clock))
    assert not form.drug_other.isEnabled()
    qtbot.keyClicks(form.drug, "Oth")
    assert form.drug.currentData() == "other"
    assert form.drug_other.isEnabled()
    qtbot.keyClicks(form.route, "Or")
    qtbot.keyClicks(form.dose, "20")
    enter(form.dose)

    assert form.isVisible()
    assert "Drug 'Other': name it" in form.errors_text()
    assert form.field_widgets["drug"].property("invalid") is True

    qtbot.keyClicks(form.drug_other, "Arketamine")
    enter(form.drug_other)
    (row,) = store.load(session_id).current("doses")
    assert (row["drug"], row["drug_other"], row["route"]) == ("other", "Arketamine", "oral")


def test_escape_cancels_without_writing(
    qtbot: QtBot,
    shown: Shown,
    ref: Reference,
    save: Callable[[Entry], int],
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
) -> None:
    form = shown(make_form(ref, save, clock))
    qtbot.keyClicks(form.drug, "Rac")
    qtbot.keyClicks(form.route, "IM")
    qtbot.keyClicks(form.dose, "70")
    qtbot.keyClick(form.dose, Qt.Key.Key_Escape)

    assert form.result() == QDialog.DialogCode.Rejected
    assert form.saved_id is None
    assert store.load(session_id).current("doses") == []


def test_tab_order_follows_reading_order(
    shown: Shown,
    tab_chain: Callable[[list[QWidget]], list[QWidget]],
    ref: Reference,
    save: Callable[[Entry], int],
    clock: FakeClock,
) -> None:
    form = shown(make_form(ref, save, clock))
    expected = [
        form.drug,
        form.drug_other,
        form.route,
        form.dose,
        form.lot,
        form.booster,
        form.note,
        form.time_edit,
        form.save_button,
    ]
    assert tab_chain(expected) == expected


def test_correction_prefills_and_saves(
    qtbot: QtBot,
    shown: Shown,
    enter: Enter,
    ref: Reference,
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
) -> None:
    first = give(store, session_id, clock, 70)
    clock.advance(minutes=20)
    second = store.add(
        session_id,
        Dose("ketamine", "im", 30, clock.now(), lot_number="L1", booster=True, note="top-up"),
        RECORDER,
    ).primary_id
    original = store.row("doses", second)
    previous = store.load(session_id).current("doses")
    form: DoseForm

    def correct(entry: Entry) -> int:
        return store.correct(session_id, second, entry, form.reason(), RECORDER).primary_id

    form = shown(make_form(ref, correct, clock, previous, correcting=original))
    assert form.windowTitle() == "Correct dose"
    assert form.drug.currentData() == "ketamine"
    assert form.route.currentData() == "im"
    assert form.dose.text() == "30"
    assert form.lot.text() == "L1"
    assert form.booster.isChecked()
    assert form.note.text() == "top-up"
    assert form.observed_at() == clock.now()
    # The corrected row does not count twice in the running total.
    assert form.totals.text().endswith("Cumulative: 100 mg (1.35 mg/kg)")

    form.dose.selectAll()
    qtbot.keyClicks(form.dose, "35")
    qtbot.keyClicks(form.reason_edit, "typo in dose")
    enter(form.reason_edit)

    assert form.result() == QDialog.DialogCode.Accepted
    rows = store.load(session_id).current("doses")
    assert [r["dose_mg"] for r in rows] == [70.0, 35.0]
    assert rows[1]["supersedes_id"] == second
    assert rows[1]["correction_reason"] == "typo in dose"
    assert rows[0]["id"] == first
