"""A refused field's outline lies exactly on the field: after the refusal, after the dialog
relays out or is resized, and for fields that are containers (a row, a group of checkboxes).

The outline used to be the field's own style-sheet border; on a container that border lay under
its children, so it showed only between them (around the word "or" of "birth year or age").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.reference import Reference
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.forms.observation_form import ObservationForm
from kapmonitor.ui.forms.start_session_dialog import StartSessionDialog
from kapmonitor.ui.widgets.field_errors import FieldOutline, outline_of
from kapmonitor.ui.widgets.theme import current_theme, stylesheet

Shown = Callable[[Any], Any]
Enter = Callable[[QWidget], None]
Save = Callable[[Any], int]


def in_window(widget: QWidget) -> QRect:
    """The widget's rectangle in its window's coordinates."""
    return QRect(widget.mapTo(widget.window(), QPoint(0, 0)), widget.size())


def assert_outline_on(field: QWidget) -> FieldOutline:
    outline = outline_of(field)
    assert outline is not None, field.objectName() or type(field).__name__
    assert outline.isVisible()
    assert outline.geometry() == field.geometry()
    assert in_window(outline) == in_window(field)
    siblings = field.parentWidget().children()
    assert siblings.index(outline) > siblings.index(field)  # drawn above the field
    assert outline.testAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
    return outline


def test_start_dialog_outlines_sit_on_their_fields_after_refusal_and_resize(
    qtbot: QtBot, enter: Enter, shown: Shown, ref: Reference, store: SessionStore, clock: FakeClock
) -> None:
    dialog = StartSessionDialog(ref, store.start_session, clock.now())
    dialog.setStyleSheet(stylesheet(current_theme(False), True))
    shown(dialog)
    qtbot.keyClicks(dialog.weight, "900")
    enter(dialog.weight)
    QApplication.processEvents()

    refused = [w for w in dialog.field_widgets.values() if w.property("invalid")]
    names = {k for k, w in dialog.field_widgets.items() if w.property("invalid")}
    # Inputs and containers alike: the age row and the checklist group are containers.
    assert {"patient_code", "age", "weight_kg", "indication", "checklist"} <= names
    before = {key: in_window(dialog.field_widgets[key]) for key in names}
    for field in refused:
        assert_outline_on(field)

    dialog.resize(dialog.width() + 240, dialog.height())
    QApplication.processEvents()
    moved = [key for key in names if in_window(dialog.field_widgets[key]) != before[key]]
    assert moved, "the resize should have moved or widened the fields"
    for field in refused:
        assert_outline_on(field)

    # A fixed field loses its outline when the dialog is tried again; the rest keep theirs.
    weight = dialog.field_widgets["weight_kg"]
    weight.clear()
    qtbot.keyClicks(weight, "74")
    qtbot.keyClicks(dialog.patient_code, "KAP-0042")
    enter(dialog.weight)
    QApplication.processEvents()
    assert outline_of(weight) is None
    assert outline_of(dialog.field_widgets["patient_code"]) is None
    assert_outline_on(dialog.field_widgets["age"])


def test_observation_form_outline_follows_the_field_as_the_banner_pushes_it_down(
    shown: Shown, enter: Enter, ref: Reference, save: Save, clock: FakeClock, qtbot: QtBot
) -> None:
    form = shown(ObservationForm(ref, save, clock.now()))
    before = in_window(form.cadss)
    qtbot.keyClicks(form.cadss, "93")
    enter(form.cadss)
    QApplication.processEvents()
    assert form.cadss.property("invalid") is True
    assert in_window(form.cadss) != before  # the banner above moved it after it was outlined
    outline = assert_outline_on(form.cadss)

    form.resize(form.width() + 300, form.height() + 40)
    QApplication.processEvents()
    assert outline_of(form.cadss) is outline
    assert_outline_on(form.cadss)

    form.cadss.clear()
    qtbot.keyClicks(form.cadss, "12")
    enter(form.cadss)
    assert outline_of(form.cadss) is None
