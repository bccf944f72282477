"""The sedation and dissociation dialog, including a scale a clinic adds without code."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication, QComboBox, QDialog, QLineEdit, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock, to_iso
from kapmonitor.domain.records import Entry, Observation, SessionStart
from kapmonitor.domain.reference import Reference, load_reference
from kapmonitor.paths import resources_dir
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.forms.observation_form import FEATURE_COLUMNS, NOT_ASSESSED, ObservationForm
from kapmonitor.ui.widgets.theme import current_theme, stylesheet

Shown = Callable[[Any], Any]
Enter = Callable[[QWidget], None]
Save = Callable[[Entry], int]


def test_scores_features_and_note_typed_and_saved(
    qtbot: QtBot,
    shown: Shown,
    ref: Reference,
    save: Save,
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
) -> None:
    form = shown(ObservationForm(ref, save, clock.now()))
    assert form.windowTitle() == "Sedation and dissociation"
    assert form.focusWidget() is form.scale_combos["moaas"]
    for scale_id in ("moaas", "rass", "dissociation"):
        assert form.scale_combos[scale_id].currentText() == NOT_ASSESSED

    qtbot.keyClicks(form.scale_combos["moaas"], "4")
    assert form.descriptions["moaas"].text() == ref.scales["moaas"].level(4).description
    qtbot.keyClicks(form.scale_combos["rass"], "0")
    qtbot.keyClicks(form.scale_combos["dissociation"], "Mo")
    assert form.descriptions["dissociation"].text().startswith("Clear dissociative experience")
    qtbot.keyClick(form.feature_boxes["derealisation"], Qt.Key.Key_Space)
    qtbot.mouseClick(form.feature_boxes["calm_pleasant"], Qt.MouseButton.LeftButton)
    qtbot.keyClicks(form.cadss, "12")
    qtbot.keyClicks(form.note, "eyes closed")
    qtbot.keyClick(form.note, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(form.note, "smiling")
    qtbot.keyClick(form.note, Qt.Key.Key_Return)  # Enter in the note saves

    assert form.result() == QDialog.DialogCode.Accepted
    (row,) = store.load(session_id).current("observations")
    assert (row["moaas"], row["rass"], row["dissociation"]) == (4, 0, 2)
    assert json.loads(row["features"]) == ["calm_pleasant", "derealisation"]
    assert row["cadss_total"] == 12
    assert json.loads(row["other_scores"]) == {}
    assert row["note"] == "eyes closed\nsmiling"
    assert row["observed_at"] == to_iso(clock.now())


@pytest.mark.parametrize(
    ("typed", "message"),
    [("93", "CADSS total must be between 0 and 92; got 93"), ("lots", "“lots” is not a number")],
)
def test_impossible_cadss_is_refused_and_kept(
    qtbot: QtBot,
    shown: Shown,
    enter: Enter,
    ref: Reference,
    save: Save,
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
    typed: str,
    message: str,
) -> None:
    form = shown(ObservationForm(ref, save, clock.now()))
    qtbot.keyClicks(form.scale_combos["moaas"], "5")
    qtbot.keyClicks(form.cadss, typed)
    enter(form.cadss)

    assert form.isVisible()
    assert message in form.errors_text()
    assert form.field_widgets["cadss"].property("invalid") is True
    assert form.cadss.text() == typed
    assert form.scale_combos["moaas"].currentData() == 5
    assert store.load(session_id).current("observations") == []


def test_an_empty_check_is_refused(
    shown: Shown, enter: Enter, ref: Reference, save: Save, clock: FakeClock
) -> None:
    form = shown(ObservationForm(ref, save, clock.now()))
    enter(form.scale_combos["moaas"])
    assert form.isVisible()
    assert "Enter at least one score, feature or note" in form.errors_text()
    assert form.scale_combos["moaas"].property("invalid") is True


def type_keys(widget: QWidget, text: str) -> None:
    """Type ``text`` one key at a time, as a keyboard or input method delivers it.

    QTest's keyClicks maps each character to a Latin-1 key and aborts on others (such as the
    minus sign "−"), so the key events are built here: the key code a keyboard would give for
    the character, and the character itself as the event's text.
    """
    keys = {"-": Qt.Key.Key_Minus, "+": Qt.Key.Key_Plus}
    for ch in text:
        key = keys.get(ch, Qt.Key(ord(ch)) if ch.isdigit() else Qt.Key.Key_unknown)
        modifiers = Qt.KeyboardModifier.ShiftModifier if ch == "+" else Qt.KeyboardModifier(0)
        for kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
            QApplication.sendEvent(widget, QKeyEvent(kind, key, modifiers, ch))


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("-1", -1),  # hyphen-minus, as a keyboard types it
        ("\u22121", -1),  # the minus sign the list shows
        ("-2", -2),
        ("\u20133", -3),  # an en dash, as some keyboards' autocorrect gives
        ("-5", -5),
        ("+1", 1),
        ("1", 1),
        ("+4", 4),
        ("0", 0),
    ],
)
def test_rass_level_is_picked_by_typing_its_number_with_any_minus(
    qtbot: QtBot,
    shown: Shown,
    enter: Enter,
    ref: Reference,
    save: Save,
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
    typed: str,
    expected: int,
) -> None:
    form = shown(ObservationForm(ref, save, clock.now()))
    rass = form.scale_combos["rass"]
    type_keys(rass, typed)
    assert rass.currentData() == expected
    assert form.descriptions["rass"].text() == ref.scales["rass"].level(expected).description
    enter(rass)
    (row,) = store.load(session_id).current("observations")
    assert row["rass"] == expected


def test_typing_a_number_that_is_no_level_leaves_the_choice_alone(
    qtbot: QtBot, shown: Shown, ref: Reference, save: Save, clock: FakeClock
) -> None:
    form = shown(ObservationForm(ref, save, clock.now()))
    rass = form.scale_combos["rass"]
    type_keys(rass, "-2")
    type_keys(rass, "-9")  # no such level: "-2" stays, "-9" picks nothing
    assert rass.currentData() == -2
    qtbot.keyClicks(form.scale_combos["dissociation"], "Mo")  # letters still search the labels
    assert form.scale_combos["dissociation"].currentData() == 2


@pytest.mark.parametrize("large", [False, True])
def test_feature_boxes_wrap_to_the_width_and_never_overlap(
    shown: Shown, ref: Reference, save: Save, clock: FakeClock, large: bool
) -> None:
    form = ObservationForm(ref, save, clock.now())
    form.setStyleSheet(stylesheet(current_theme(False), large))
    shown(form)
    boxes = list(form.feature_boxes.values())
    grid = form.feature_grid
    assert form.minimumSizeHint().width() <= 1280

    def assert_whole_and_apart() -> None:
        container = boxes[0].parentWidget()
        for box in boxes:
            assert box.width() >= box.sizeHint().width(), box.text()  # the label is not cut
            assert container.rect().contains(box.geometry()), box.text()
        for first, second in itertools.combinations(boxes, 2):
            assert not first.geometry().intersects(second.geometry()), (first.text(), second.text())

    form.resize(1200, form.height())
    QApplication.processEvents()
    assert grid.column_count() == FEATURE_COLUMNS
    assert_whole_and_apart()

    form.resize(form.minimumSizeHint().width(), form.height())
    QApplication.processEvents()
    assert grid.column_count() == 1  # the longest label does not fit twice: one column
    assert_whole_and_apart()


def test_escape_cancels_without_writing(
    qtbot: QtBot,
    shown: Shown,
    ref: Reference,
    save: Save,
    clock: FakeClock,
    store: SessionStore,
    session_id: str,
) -> None:
    form = shown(ObservationForm(ref, save, clock.now()))
    qtbot.keyClicks(form.scale_combos["moaas"], "3")
    qtbot.keyClick(form.scale_combos["moaas"], Qt.Key.Key_Escape)
    assert form.result() == QDialog.DialogCode.Rejected
    assert store.load(session_id).current("observations") == []


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
        Observation(
            clock.now(),
            moaas=3,
            rass=-2,
            dissociation=1,
            features=("detachment", "confusion"),
            cadss_total=20,
            note="quiet",
        ),
        recorder,
    ).primary_id
    original = store.row("observations", original_id)
    form: ObservationForm

    def correct(entry: Entry) -> int:
        return store.correct(session_id, original_id, entry, form.reason(), recorder).primary_id

    form = shown(ObservationForm(ref, correct, clock.now(), correcting=original))
    assert form.windowTitle() == "Correct sedation and dissociation"
    assert form.scale_combos["moaas"].currentData() == 3
    assert form.scale_combos["rass"].currentData() == -2
    assert form.scale_combos["dissociation"].currentData() == 1
    ticked = {code for code, box in form.feature_boxes.items() if box.isChecked()}
    assert ticked == {"detachment", "confusion"}
    assert form.cadss.text() == "20"
    assert form.note.text() == "quiet"

    qtbot.keyClicks(form.scale_combos["moaas"], "2")
    qtbot.keyClicks(form.reason_edit, "rated the wrong patient response")
    enter(form.reason_edit)
    (row,) = store.load(session_id).current("observations")
    assert row["moaas"] == 2
    assert row["supersedes_id"] == original_id


CLINIC_ORDINAL = {
    "id": "nausea_vrs",
    "name": "Nausea (VRS)",
    "title": "Nausea verbal rating",
    "kind": "ordinal",
    "source": "Clinic protocol 2026-01",
    "levels": [
        {"value": 0, "label": "0 — none", "description": "No nausea"},
        {"value": 1, "label": "1 — mild", "description": "Mild nausea"},
        {"value": 2, "label": "2 — severe", "description": "Severe nausea"},
    ],
}
CLINIC_TOTAL = {
    "id": "cadss6",
    "name": "CADSS-6",
    "title": "CADSS six-item short form",
    "kind": "total",
    "min": 0,
    "max": 24,
    "source": "Bremner et al. 1998 (CADSS); six-item short form",
}


@pytest.fixture
def clinic_ref(tmp_path: Path) -> Reference:
    scales = tmp_path / "config" / "scales"
    scales.mkdir(parents=True)
    (scales / "nausea_vrs.json").write_text(json.dumps(CLINIC_ORDINAL), encoding="utf-8")
    (scales / "x.json").write_text(json.dumps(CLINIC_TOTAL), encoding="utf-8")
    return load_reference(resources_dir(), tmp_path / "config")


@pytest.fixture
def clinic_store(tmp_path: Path, clock: FakeClock, clinic_ref: Reference) -> Iterator[SessionStore]:
    opened = SessionStore.open(tmp_path / "clinic.sqlite", clock, clinic_ref)
    yield opened
    opened.close()


def test_clinic_added_scales_become_fields_and_land_in_other_scores(
    qtbot: QtBot,
    shown: Shown,
    enter: Enter,
    clinic_ref: Reference,
    clinic_store: SessionStore,
    clock: FakeClock,
    recorder: str,
    start_record: Callable[[Reference], SessionStart],
) -> None:
    session_id = clinic_store.start_session(start_record(clinic_ref), recorder)
    form = shown(
        ObservationForm(
            clinic_ref, lambda e: clinic_store.add(session_id, e, recorder).primary_id, clock.now()
        )
    )
    ordinal = form.field_widgets["nausea_vrs"]
    total = form.field_widgets["cadss6"]
    assert isinstance(ordinal, QComboBox) and isinstance(total, QLineEdit)
    assert [ordinal.itemText(i) for i in range(ordinal.count())] == [
        NOT_ASSESSED,
        "0 — none",
        "1 — mild",
        "2 — severe",
    ]
    assert total.placeholderText() == "0–24, optional"

    qtbot.keyClicks(ordinal, "1")
    assert form.descriptions["nausea_vrs"].text() == "Mild nausea"
    qtbot.keyClicks(total, "30")
    enter(total)
    assert "CADSS-6 total must be between 0 and 24; got 30" in form.errors_text()
    assert total.property("invalid") is True

    total.clear()
    qtbot.keyClicks(total, "7")
    enter(total)
    assert form.result() == QDialog.DialogCode.Accepted
    (row,) = clinic_store.load(session_id).current("observations")
    assert json.loads(row["other_scores"]) == {"cadss6": 7, "nausea_vrs": 1}

    # And a correction puts the clinic scores back in their fields.
    again = ObservationForm(clinic_ref, lambda e: 0, clock.now(), correcting=row)
    qtbot.addWidget(again)
    assert again.field_widgets["nausea_vrs"].currentData() == 1
    assert again.field_widgets["cadss6"].text() == "7"


def test_tab_order_follows_reading_order(
    shown: Shown,
    tab_chain: Callable[[list[QWidget]], list[QWidget]],
    ref: Reference,
    save: Save,
    clock: FakeClock,
) -> None:
    form = shown(ObservationForm(ref, save, clock.now()))
    expected: list[QWidget] = [
        *(form.scale_combos[s] for s in ("moaas", "rass", "dissociation")),
        *form.feature_boxes.values(),
        form.cadss,
        form.note,
        form.time_edit,
        form.save_button,
    ]
    assert tab_chain(expected) == expected
