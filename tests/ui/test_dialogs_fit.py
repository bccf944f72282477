"""Every dialog fits a 1280 × 720 screen after its longest refusal, in normal and large type.

The clinic laptop gives 1280 × 720 logical pixels; a dialog that grew past the bottom after a
refusal hid its own buttons. Each dialog here is opened as the bedside window opens it, refused
as badly as it can be (every field wrong, typed by keys, then every field refused at once with
the store's longest words), and then measured: its frame lies on the screen and every button
lies inside the dialog, shown and not cut by a scroll area.

The dialogs ask ``form_base.screen_room`` (the screen's available geometry) for the room they may
use. When the test platform's screen is not the clinic laptop's (the offscreen platform's default
is 800 × 800), the tests give them 1280 × 720 there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QWidget,
)
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import AdverseEvent, Entry
from kapmonitor.domain.reference import Reference
from kapmonitor.domain.rems import RemsField
from kapmonitor.domain.validation import FieldError, ValidationError
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.forms import form_base
from kapmonitor.ui.forms.adverse_event_form import AdverseEventForm
from kapmonitor.ui.forms.ae_outcome_form import AdverseEventOutcomeForm
from kapmonitor.ui.forms.alarm_ack_dialog import AlarmAckDialog
from kapmonitor.ui.forms.discharge_dialog import DischargeDialog, DischargeFacts
from kapmonitor.ui.forms.dose_form import DoseForm
from kapmonitor.ui.forms.end_session_form import EndSessionForm
from kapmonitor.ui.forms.form_base import TITLE_BAR_ALLOWANCE, EntryForm
from kapmonitor.ui.forms.intervention_form import InterventionForm
from kapmonitor.ui.forms.observation_form import ObservationForm
from kapmonitor.ui.forms.questionnaire_window import QuestionnaireWindow
from kapmonitor.ui.forms.rems_dialog import RemsDialog
from kapmonitor.ui.forms.review_comment_dialog import ReviewCommentDialog
from kapmonitor.ui.forms.start_session_dialog import StartSessionDialog
from kapmonitor.ui.forms.vitals_form import VitalsForm
from kapmonitor.ui.widgets.theme import apply_theme
from tests.factories import protocol
from tests.ui.test_questionnaire_window import answer_all, press, shipped

SCREEN = QRect(0, 0, 1280, 720)  # the clinic laptop: 1366 × 768 at 150 % is 1280 × 720 logical
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
# A refusal as long as the store words them: every field, each with its full reason.
LONG_REASON = (
    "{field}: this value cannot be accepted — it is outside the range the protocol allows for "
    "this patient; check the reading and type it again"
)
JUNK = "999999 ?? -x"

Build = Callable[[QtBot, dict[str, Any]], QDialog]


@pytest.fixture(autouse=True)
def clinic_laptop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dialogs size themselves against a 1280 × 720 screen, whatever the test platform says."""
    screen = QApplication.primaryScreen()
    if screen is None or screen.availableGeometry() != SCREEN:
        monkeypatch.setattr(form_base, "screen_room", lambda _widget: QRect(SCREEN))


@pytest.fixture(params=[False, True], ids=["normal-type", "large-type"])
def large(request: pytest.FixtureRequest) -> Iterator[bool]:
    """The application's look as the clinic uses it, normal or large type (F9)."""
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    font, palette = app.font(), app.palette()
    apply_theme(app, False, request.param)
    yield request.param
    app.setStyleSheet("")
    app.setProperty("kapmonitorTheme", None)
    app.setFont(font)
    app.setPalette(palette)


def refuse_all(keys: list[str]) -> ValidationError:
    return ValidationError([FieldError(key, LONG_REASON.format(field=key)) for key in keys])


class RefusingSave:
    """A save that refuses every field of the dialog it belongs to (set ``keys`` first)."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def __call__(self, *_args: Any) -> int:
        raise refuse_all(self.keys)


def type_junk_everywhere(qtbot: QtBot, dialog: QWidget) -> None:
    """Every text field gets something no field accepts, typed as a person would."""
    for edit in dialog.findChildren(QLineEdit):
        if edit.isVisible() and edit.isEnabled() and not edit.isReadOnly():
            if edit.parent() is not None and edit.parent().inherits("QAbstractSpinBox"):
                continue
            edit.setFocus()
            qtbot.keyClicks(edit, JUNK)


def save_with_keys(qtbot: QtBot, dialog: QWidget) -> None:
    """Press Enter in the focused field (or the dialog), as the clinician saves."""
    target = QApplication.focusWidget() or dialog
    if isinstance(target, QPlainTextEdit):
        target = dialog
    qtbot.keyClick(target, Qt.Key.Key_Return)


# --- how each dialog is opened and refused ---------------------------------------------------


def entry_form(kind: type[EntryForm], **extra: Any) -> Build:
    def build(qtbot: QtBot, ctx: dict[str, Any]) -> QDialog:
        save = RefusingSave()
        form = kind(ctx["ref"], save, NOW, recorder="Dr A with a long name", **extra)
        save.keys = list(form.field_widgets)
        return form

    return build


def adverse_event_correction(qtbot: QtBot, ctx: dict[str, Any]) -> QDialog:
    """The tallest entry form: an adverse effect being corrected (reason and withdraw rows)."""
    store: SessionStore = ctx["store"]
    clock: FakeClock = ctx["clock"]
    event = AdverseEvent("other", 3, clock.now(), verbatim="chest tightness", serious=True)
    event = replace(event, serious_criterion="important_medical_event")
    original_id = store.add(ctx["session_id"], event, "Dr A").primary_id
    save = RefusingSave()
    form = AdverseEventForm(
        ctx["ref"],
        save,
        clock.now(),
        recorder="Dr A",
        correcting=store.row("adverse_events", original_id),
    )
    save.keys = list(form.field_widgets)
    return form


def start_session(qtbot: QtBot, ctx: dict[str, Any]) -> QDialog:
    protocols = [("clinic-ketamine", "Clinic ketamine (IM/IV) with a long protocol name")]
    return StartSessionDialog(ctx["ref"], lambda _record, _who: "x", NOW, protocols=protocols)


NO_FACTS = DischargeFacts(
    first_dose=None,
    sbp_now=None,
    sbp_baseline=None,
    hr_now=None,
    hr_baseline=None,
    moaas=None,
    spo2=None,
    on_oxygen=True,
    recent_vitals=False,
)


def discharge(qtbot: QtBot, ctx: dict[str, Any]) -> QDialog:
    save = RefusingSave()
    save.keys = ["score", "checklist", "override", "observed_at"]
    return DischargeDialog(protocol("clinic-ketamine"), NO_FACTS, save, NOW, "Dr A")


def alarm_ack(qtbot: QtBot, ctx: dict[str, Any]) -> QDialog:
    alarm = {
        "id": 7,
        "priority": "critical",
        "message": "Systolic BP 245 mmHg ≥ 180 (critical): hypertensive crisis range",
        "parameter": "sbp",
        "observed_at": "2026-01-15T09:40:00.000Z",
    }
    save = RefusingSave()
    save.keys = ["response", "detail", "symptoms"]
    return AlarmAckDialog(alarm, save, "Dr A")


def review_comment(qtbot: QtBot, ctx: dict[str, Any]) -> QDialog:
    save = RefusingSave()
    save.keys = ["text", "at", "author", "session"]
    about = "Vitals 12:40 — BP 182/104, HR 112, SpO₂ 93 %, RR 22, temperature 37.9 °C " * 3
    return ReviewCommentDialog(save, NOW, "Dr Supervisor", dose_at=NOW, about=about)


def rems(qtbot: QtBot, ctx: dict[str, Any]) -> QDialog:
    fields = [
        RemsField(f"f{i}", f"Field {i} of the REMS form", "", False, "not recorded in the log")
        for i in range(40)
    ]
    return RemsDialog(fields, "KAP-0001-WITH-A-LONG-CODE")


def questionnaire(qtbot: QtBot, ctx: dict[str, Any]) -> QDialog:
    save = RefusingSave()
    save.keys = ["answers", "total", "band", "questionnaire_id", "timing"]
    return QuestionnaireWindow(shipped()["phq9"], save, "Dr A")


def refuse_by_keys(qtbot: QtBot, dialog: QDialog) -> None:
    """Every field wrong, typed; then Enter (and the dialog's second step where it has one)."""
    if isinstance(dialog, RemsDialog):
        return  # read-only: nothing to refuse
    if isinstance(dialog, QuestionnaireWindow):
        press(qtbot, dialog, Qt.Key.Key_Return)
        answer_all(qtbot, dialog, [3] * len(dialog.questionnaire.items))
        press(qtbot, dialog, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
        save_button = dialog.save_button
        qtbot.mouseClick(save_button, Qt.MouseButton.LeftButton)
        return
    if isinstance(dialog, DischargeDialog):
        qtbot.mouseClick(dialog.record_button, Qt.MouseButton.LeftButton)  # items unassessed
        qtbot.mouseClick(dialog.override_button, Qt.MouseButton.LeftButton)  # asks the reason
        qtbot.mouseClick(dialog.override_button, Qt.MouseButton.LeftButton)  # none given
        return
    if isinstance(dialog, AlarmAckDialog):
        for box in dialog.symptom_boxes.values():  # the emergency line shows too
            qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))
    if isinstance(dialog, ReviewCommentDialog):
        dialog.text.setFocus()
        qtbot.keyClicks(dialog.text, JUNK)
        qtbot.keyClick(dialog.text, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
        return
    type_junk_everywhere(qtbot, dialog)
    save_with_keys(qtbot, dialog)


def refuse_every_field(dialog: QDialog) -> None:
    """The longest refusal a dialog can show: every one of its fields, in the store's words."""
    if isinstance(dialog, EntryForm | StartSessionDialog):
        dialog.show_errors(refuse_all(list(dialog.field_widgets)))
    elif isinstance(dialog, AlarmAckDialog):
        dialog.show_errors(refuse_all([*dialog.field_widgets, "x", "y", "z"]))
    elif isinstance(dialog, DischargeDialog | QuestionnaireWindow | ReviewCommentDialog):
        keys = [f"field {n}" for n in range(12)]
        error = refuse_all(keys)
        text = "Not saved:\n" + "\n".join(f"• {e.message}" for e in error.errors)
        if isinstance(dialog, QuestionnaireWindow):
            dialog._show_banner(text)
        else:
            dialog.show_banner(text)


DIALOGS: dict[str, Build] = {
    "start-session": start_session,
    "vitals": entry_form(VitalsForm),
    "dose": entry_form(DoseForm, weight_kg=74.0, previous_doses=[]),
    "observation": entry_form(ObservationForm),
    "adverse-effect": entry_form(AdverseEventForm),
    "adverse-effect-correction": adverse_event_correction,
    "ae-outcome": entry_form(
        AdverseEventOutcomeForm,
        open_events=[(1, "Nausea (grade 2) at 12:10"), (2, "Dissociation, severe, at 12:20")],
    ),
    "intervention": entry_form(InterventionForm),
    "end-session": entry_form(EndSessionForm, elapsed_text="2 h 10 min", open_adverse_events=2),
    "discharge": discharge,
    "alarm-ack": alarm_ack,
    "review-comment": review_comment,
    "rems": rems,
    "questionnaire": questionnaire,
}


# --- measuring -------------------------------------------------------------------------------


def clipped_by(widget: QWidget, top: QWidget) -> QWidget | None:
    """The first ancestor (up to ``top``) that cuts part of ``widget`` off, if any."""
    rect = QRect(QPoint(0, 0), widget.size())
    child: QWidget = widget
    while child is not top:
        parent = child.parentWidget()
        assert parent is not None
        rect = rect.translated(child.pos())
        if not parent.rect().contains(rect):
            return parent
        child = parent
    return None


def buttons_of(dialog: QDialog) -> list[QAbstractButton]:
    boxes = dialog.findChildren(QDialogButtonBox)
    found = [button for box in boxes for button in box.buttons() if not button.isHidden()]
    if isinstance(dialog, QuestionnaireWindow):  # the current page's own buttons
        page = dialog.stack.currentWidget()
        answers = ("OptionButton", "ScaleButton")
        found = [
            button
            for button in page.findChildren(QPushButton)
            if not button.isHidden() and button.objectName() not in answers
        ]
    return found


def assert_fits(dialog: QDialog, what: str) -> None:
    QApplication.processEvents()  # the layouts apply the refusal
    frame = dialog.frameGeometry()
    assert frame.height() <= SCREEN.height(), f"{what}: frame {frame.height()} px high"
    assert dialog.height() <= SCREEN.height() - TITLE_BAR_ALLOWANCE, f"{what}: {dialog.height()}"
    assert SCREEN.contains(frame), f"{what}: frame {frame} is off the screen {SCREEN}"
    buttons = buttons_of(dialog)
    assert buttons, f"{what}: no buttons found"
    for button in buttons:
        name = f"{what}: button {button.text()!r}"
        assert button.isVisible(), f"{name} is not shown"
        place = QRect(button.mapTo(dialog, QPoint(0, 0)), button.size())
        assert dialog.rect().contains(place), f"{name} at {place} is outside {dialog.rect()}"
        cutter = clipped_by(button, dialog)
        assert cutter is None, f"{name} is cut by {type(cutter).__name__}"
    banner = getattr(dialog, "banner", None)
    if banner is not None and not banner.isHidden():
        strip = banner.parentWidget().parentWidget()  # viewport, then the strip
        assert strip.height() <= SCREEN.height() * 0.3, f"{what}: banner {strip.height()} px"


def grab(dialog: QDialog, name: str) -> None:
    """With KAPMONITOR_GRAB_DIR set, keep a picture of the dialog to look at."""
    folder = os.environ.get("KAPMONITOR_GRAB_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        dialog.grab().save(str(Path(folder) / f"{name}.png"))


@pytest.mark.parametrize("name", list(DIALOGS))
def test_every_dialog_fits_the_screen_after_its_longest_refusal(
    qtbot: QtBot,
    large: bool,
    name: str,
    ref: Reference,
    store: SessionStore,
    session_id: str,
    clock: FakeClock,
) -> None:
    ctx = {"ref": ref, "store": store, "session_id": session_id, "clock": clock}
    dialog = DIALOGS[name](qtbot, ctx)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    label = f"{name} ({'large' if large else 'normal'} type)"
    assert_fits(dialog, f"{label}, opened")

    refuse_by_keys(qtbot, dialog)
    if not isinstance(dialog, RemsDialog):
        assert dialog.isVisible(), f"{label}: the junk was accepted"
        assert dialog.errors_text(), f"{label}: no refusal shown"
    assert_fits(dialog, f"{label}, refused by keys")

    refuse_every_field(dialog)
    assert_fits(dialog, f"{label}, every field refused")
    grab(dialog, f"{name}-{'large' if large else 'normal'}")


def test_a_refusal_moves_the_dialog_up_rather_than_off_the_bottom(
    qtbot: QtBot, ref: Reference
) -> None:
    """Opened low on the screen, a dialog that grows with a refusal moves up to stay on it."""
    save = RefusingSave()
    form = VitalsForm(ref, save, NOW, recorder="Dr A")
    save.keys = list(form.field_widgets)
    qtbot.addWidget(form)
    form.show()
    qtbot.waitExposed(form)
    form.move(100, SCREEN.bottom() - form.frameGeometry().height())
    qtbot.keyClick(form.bp, Qt.Key.Key_Return)
    assert form.errors_text()
    assert_fits(form, "vitals low on the screen")


def test_the_fields_scroll_to_the_first_refused_one(qtbot: QtBot, ref: Reference) -> None:
    """When the fields scroll, the first refused one is brought into view with the focus."""
    save = RefusingSave()
    form = VitalsForm(ref, save, NOW, recorder="Dr A")
    last = list(form.field_widgets)[-1]  # the time, at the bottom
    save.keys = [last]
    qtbot.addWidget(form)
    form.show()
    qtbot.waitExposed(form)
    form.resize(form.width(), 260)  # a short screen: the body must scroll
    QApplication.processEvents()
    assert form.scroll.verticalScrollBar().maximum() > 0
    assert form.scroll.verticalScrollBar().value() == 0
    qtbot.keyClicks(form.bp, "120/80")
    qtbot.keyClick(form.bp, Qt.Key.Key_Return)
    assert form.errors_text()
    QApplication.processEvents()
    field = form.field_widgets[last]
    assert field.hasFocus() or field.isAncestorOf(QApplication.focusWidget())
    viewport = form.scroll.viewport()
    place = QRect(field.mapTo(viewport, QPoint(0, 0)), field.size())
    assert viewport.rect().intersects(place)


def test_tab_does_not_stop_on_the_scroll_areas(qtbot: QtBot, ref: Reference) -> None:
    """The scroll areas take no focus: Tab goes from field to field as before."""
    form = VitalsForm(ref, lambda _e: 1, NOW, recorder="Dr A")
    qtbot.addWidget(form)
    form.show()
    qtbot.waitExposed(form)
    assert form.scroll.focusPolicy() == Qt.FocusPolicy.NoFocus
    assert form.banner_area.focusPolicy() == Qt.FocusPolicy.NoFocus
    start = form.focusWidget()
    qtbot.keyClick(start, Qt.Key.Key_Tab)
    assert isinstance(form.focusWidget(), QLineEdit | QCheckBox | QPlainTextEdit)


def test_an_empty_banner_takes_no_room(qtbot: QtBot, ref: Reference) -> None:
    """Before any refusal the banner strip is hidden, and it hides again once corrected."""
    saved: list[Entry] = []
    form = VitalsForm(ref, lambda e: saved.append(e) or 1, NOW, recorder="Dr A")
    qtbot.addWidget(form)
    form.show()
    qtbot.waitExposed(form)
    assert form.banner_area.isHidden()
    qtbot.keyClicks(form.bp, "abc")
    qtbot.keyClick(form.bp, Qt.Key.Key_Return)
    assert form.banner_area.isVisible() and form.errors_text()
    form.bp.clear()
    qtbot.keyClicks(form.bp, "120/80")
    form.clear_errors()
    assert form.banner_area.isHidden()


def test_dialogs_measure_against_the_clinic_laptop(qtbot: QtBot) -> None:
    """Dialogs ask ``form_base.screen_room`` for their room: here, the clinic laptop's."""
    widget = QWidget()
    qtbot.addWidget(widget)
    assert form_base.screen_room(widget) == SCREEN
    assert form_base.max_dialog_height(widget) == SCREEN.height() - TITLE_BAR_ALLOWANCE
