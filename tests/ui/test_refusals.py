"""Refusals: one way in every dialog, and the store's own words in the windows.

Every dialog kind is driven to a refusal by keys, as a clinician meets it: the strip shows the
store's or the validator's reason, the field it names is outlined and has the focus, and what
was typed is still there (a password excepted). The bedside and review windows ask the store's
rules before opening a form and say exactly the sentence the store raises for the same act.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import SessionEnd, VitalSigns
from kapmonitor.domain.reference import Reference
from kapmonitor.domain.validation import FieldError, ValidationError
from kapmonitor.store import permissions
from kapmonitor.store.accounts import AccessRefused, Accounts
from kapmonitor.store.database import StoreError
from kapmonitor.store.session_store import SessionStore
from kapmonitor.store.signoff import Review
from kapmonitor.ui.forms.account_dialogs import SignInDialog
from kapmonitor.ui.forms.alarm_ack_dialog import AlarmAckDialog
from kapmonitor.ui.forms.discharge_dialog import DischargeDialog
from kapmonitor.ui.forms.dose_form import SecondClinicianDialog
from kapmonitor.ui.forms.rems_dialog import RemsSubmissionDialog
from kapmonitor.ui.forms.review_comment_dialog import ReviewCommentDialog
from kapmonitor.ui.forms.start_session_dialog import StartSessionDialog
from kapmonitor.ui.forms.vitals_form import VitalsForm
from kapmonitor.ui.review.sign_dialog import SignDialog
from kapmonitor.ui.widgets.field_errors import outline_of
from tests.factories import protocol
from tests.store.test_archive import Known, build_known_archive
from tests.ui.conftest import RECORDER
from tests.ui.test_dialogs_fit import NO_FACTS
from tests.ui.test_review_window import account, open_review, open_session
from tests.ui.window_driver import drive, shown_window, type_into

DISK_FULL = "The disk holding the database is full. Free some space, then save again."


def raising(exc: Exception) -> Callable[..., Any]:
    """A save that the store refuses with ``exc`` (what it raises for that act)."""

    def save(*_args: Any, **_kwargs: Any) -> Any:
        raise exc

    return save


def has_focus(widget: QWidget) -> bool:
    """The dialog's focus is on ``widget`` (offscreen, no window is active to own the focus)."""
    return widget.window().focusWidget() is widget


def refused_field(widget: QWidget) -> bool:
    return bool(widget.property("invalid")) and outline_of(widget) is not None


# --- every dialog kind, refused -------------------------------------------------------------


def test_an_entry_form_shows_the_stores_reason_and_keeps_the_reading(
    qtbot: QtBot,
    shown: Callable[[Any], Any],
    store: SessionStore,
    session_id: str,
    ref: Reference,
    clock: FakeClock,
) -> None:
    form = shown(
        VitalsForm(
            ref, lambda e: store.add(session_id, e, RECORDER).primary_id, clock.now(), recorder=""
        )
    )
    type_into(qtbot, form.field_widgets["bp"], "120/80")
    type_into(qtbot, form.field_widgets["hr"], "400")
    qtbot.keyClick(form.field_widgets["hr"], Qt.Key.Key_Return)
    assert form.isVisible() and form.saved_id is None
    with pytest.raises(ValidationError) as store_said:
        store.add(session_id, form.entry(), RECORDER)
    (reason,) = [e.message for e in store_said.value.errors if e.field == "hr"]
    assert reason in form.errors_text() and form.errors_text().startswith("Not saved:")
    hr = form.field_widgets["hr"]
    assert hr.text() == "400" and form.field_widgets["bp"].text() == "120/80"
    assert refused_field(hr) and has_focus(hr)
    assert store.load(session_id).current("vitals") == []


def test_the_start_dialog_says_the_validators_reasons_and_keeps_the_patient(
    qtbot: QtBot, shown: Callable[[Any], Any], ref: Reference, clock: FakeClock
) -> None:
    started: list[Any] = []
    dialog = shown(StartSessionDialog(ref, lambda *a: started.append(a), clock.now()))
    type_into(qtbot, dialog.patient_code, "KAP-0042")
    dialog.try_save()
    assert dialog.isVisible() and dialog.session_id is None and started == []
    assert dialog.errors_text().startswith("Session not started:\n• ")
    assert "Choose the sex" in dialog.errors_text()
    assert dialog.patient_code.text() == "KAP-0042"
    assert refused_field(dialog.field_widgets["sex"])


def test_the_start_dialog_says_the_store_failure(
    qtbot: QtBot, shown: Callable[[Any], Any], ref: Reference, clock: FakeClock
) -> None:
    dialog = shown(StartSessionDialog(ref, raising(StoreError(DISK_FULL, "full")), clock.now()))
    typed = SimpleNamespace(clinicians=("Dr A", "Dr B"))  # as if every field were right
    dialog.record = lambda: typed  # type: ignore[method-assign]
    dialog.try_save()
    assert dialog.errors_text() == f"Session not started. {DISK_FULL}"


def test_the_alarm_acknowledgement_outlines_the_refused_detail_and_keeps_it(
    qtbot: QtBot, shown: Callable[[Any], Any]
) -> None:
    alarm = {
        "id": 7,
        "priority": "warning",
        "message": "SpO2 91 % < 92",
        "parameter": "spo2",
        "observed_at": "2026-01-15T09:40:00.000Z",
    }
    reason = "That alarm was already acknowledged"
    dialog = shown(
        AlarmAckDialog(alarm, raising(ValidationError(FieldError("detail", reason))), "Dr A")
    )
    dialog.response.setCurrentIndex(1)
    type_into(qtbot, dialog.detail, "oxygen 2 l/min")
    qtbot.keyClick(dialog.detail, Qt.Key.Key_Return)
    assert dialog.isVisible() and dialog.saved_id is None
    assert dialog.errors_text() == f"Not saved:\n• {reason}"
    assert dialog.detail.text() == "oxygen 2 l/min"
    assert refused_field(dialog.detail) and has_focus(dialog.detail)


def test_the_discharge_check_refuses_unassessed_items_and_keeps_the_override_reason(
    qtbot: QtBot, shown: Callable[[Any], Any], clock: FakeClock
) -> None:
    saved: list[Any] = []
    dialog = shown(
        DischargeDialog(
            protocol("clinic-ketamine"), NO_FACTS, lambda *a: saved.append(a), clock.now(), "Dr A"
        )
    )
    qtbot.mouseClick(dialog.override_button, Qt.MouseButton.LeftButton)  # asks the reason
    qtbot.mouseClick(dialog.override_button, Qt.MouseButton.LeftButton)  # none given
    assert dialog.errors_text() == (
        "Not saved:\n• Give the reason for discharging although not ready"
    )
    assert refused_field(dialog.override_edit) and has_focus(dialog.override_edit)
    type_into(qtbot, dialog.override_edit, "Escort waiting; reviewed by Dr B")
    qtbot.keyClick(dialog.override_edit, Qt.Key.Key_Return)
    assert dialog.isVisible() and saved == []
    assert dialog.errors_text().startswith("Not saved:\n• Assess ")
    assert not refused_field(dialog.override_edit)  # that refusal was answered
    assert dialog.override_edit.text() == "Escort waiting; reviewed by Dr B"


def test_the_rems_submission_keeps_the_reference_when_refused(
    qtbot: QtBot, shown: Callable[[Any], Any], clock: FakeClock
) -> None:
    reason = "The REMS form of this session was already marked submitted"
    refusal = ValidationError(FieldError("submitted_by", reason))
    dialog = shown(
        RemsSubmissionDialog(raising(refusal), "patient KAP-1", "due", "Dr A", clock.now())
    )
    type_into(qtbot, dialog.reference, "REMS-778")
    qtbot.keyClick(dialog.reference, Qt.Key.Key_Return)
    assert dialog.isVisible() and dialog.saved_id is None
    assert dialog.errors_text() == f"Not recorded:\n• {reason}"
    assert dialog.reference.text() == "REMS-778"
    assert refused_field(dialog.submitted_by) and has_focus(dialog.submitted_by)


def test_sign_in_refused_keeps_the_name_and_clears_only_the_password(
    qtbot: QtBot, shown: Callable[[Any], Any], store: SessionStore, clock: FakeClock
) -> None:
    accounts = Accounts(store.db, clock)
    accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    dialog = shown(SignInDialog(accounts, "review", usernames=["admin"]))
    type_into(qtbot, dialog.secret, "not-it")
    qtbot.keyClick(dialog.secret, Qt.Key.Key_Return)
    with pytest.raises(AccessRefused) as store_said:
        accounts.sign_in("admin", "not-it")
    assert dialog.isVisible() and dialog.user is None
    assert dialog.errors_text() == store_said.value.message
    assert dialog.username.currentText() == "admin" and dialog.secret.text() == ""
    assert refused_field(dialog.secret) and has_focus(dialog.secret)


def test_the_two_person_check_keeps_its_reason_when_the_sign_in_fails(
    qtbot: QtBot, shown: Callable[[Any], Any]
) -> None:
    wrong = AccessRefused("Wrong user name or password")
    dialog = shown(
        SecondClinicianDialog(("700 mg is above 100 mg",), "Dr A", ["drb"], raising(wrong))
    )
    type_into(qtbot, dialog.password, "nope")
    type_into(qtbot, dialog.reason, "Prescribed by the psychiatrist")
    qtbot.keyClick(dialog.reason, Qt.Key.Key_Return)
    assert dialog.isVisible() and dialog.confirmed_by is None
    assert dialog.errors_text() == "Not confirmed:\n• Wrong user name or password"
    assert dialog.reason.text() == "Prescribed by the psychiatrist"
    assert refused_field(dialog.password) and has_focus(dialog.password)


@pytest.fixture
def known(tmp_path: Path) -> Iterator[Known]:
    built = build_known_archive(tmp_path / "archive.sqlite")
    yield built
    built.store.close()


def test_a_review_comment_on_a_signed_session_shows_the_stores_lock_and_keeps_the_text(
    qtbot: QtBot, shown: Callable[[Any], Any], known: Known, tmp_path: Path
) -> None:
    review = Review(known.store)
    chen = account(known, "chen")
    assert review.is_signed(known.b)
    at = known.log(known.b).started_at()

    def save(when: Any, text: str) -> int:
        return review.add_review_comment(known.b, chen, when, text).primary_id

    dialog = shown(ReviewCommentDialog(save, at, "Dr M. Chen"))
    qtbot.keyClicks(dialog.text, "BP response documented")
    dialog.try_save()
    reason = permissions.why_not_comment(known.store.db, known.b, chen)
    assert reason is not None and dialog.errors_text() == f"Not saved. {reason}"
    assert dialog.text.toPlainText() == "BP response documented"


def test_the_sign_dialog_shows_the_stores_reason_and_clears_the_password(
    qtbot: QtBot, shown: Callable[[Any], Any], known: Known
) -> None:
    review = Review(known.store)
    chen = account(known, "chen")

    def sign(meaning: str, secret: str, confirmed: list[str]) -> int:
        return review.sign(known.c, "chen", secret, meaning, confirmed).primary_id

    dialog = shown(SignDialog(chen, "patient C", sign, flags=review.quality_flags(known.c)))
    for box in dialog.flag_boxes():
        box.setChecked(True)
    dialog.meaning.setCurrentText("reviewed with comments")
    type_into(qtbot, dialog.password, "copper-meadow-9")
    dialog.try_sign()
    reason = permissions.why_not_sign(known.store.db, known.c, chen)
    assert reason is not None and dialog.errors_text() == f"Not signed:\n• {reason}"
    assert dialog.meaning.currentText() == "reviewed with comments"
    assert dialog.password.text() == ""  # never kept after a refusal


# --- the windows say the store's rule, in its words -------------------------------------------


@pytest.fixture
def said(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the bedside's information boxes said (answered at once, as OK)."""
    texts: list[str] = []

    def information(_parent: Any, _title: str, text: str, *_a: Any) -> Any:
        texts.append(text)
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "information", information)
    return texts


def test_the_bedside_says_the_stores_reason_for_an_ended_session_and_a_corrected_entry(
    qtbot: QtBot,
    store: SessionStore,
    session_id: str,
    clock: FakeClock,
    tmp_path: Path,
    said: list[str],
) -> None:
    first = store.add(session_id, VitalSigns(clock.now(), hr=70), RECORDER).primary_id
    store.correct(session_id, first, VitalSigns(clock.now(), hr=74), "misread", RECORDER)
    end = SessionEnd("stayed_for_observation", clock.now(), summary="ok")
    store.add(session_id, end, RECORDER)
    window = shown_window(qtbot, store, clock, tmp_path)
    window.open_session(session_id, fresh=True)

    window.enter_vitals()  # a stale action: the store's rule answers before any form opens
    closed = permissions.why_not_add(store.db, session_id, "vitals")
    with pytest.raises(StoreError) as store_said:
        store.add(session_id, VitalSigns(clock.now(), hr=71), RECORDER)
    assert said == [closed] == [str(store_said.value)]

    row = next(
        i
        for i, item in enumerate(window.timeline.timeline.items)
        if item.table == "vitals" and item.row_id == first
    )
    window.timeline.selectRow(row)
    drive(qtbot, window, Qt.Key.Key_C, [])  # C: correct the selected entry
    corrected = permissions.why_not_correct(store.db, session_id, "vitals", first)
    with pytest.raises(ValidationError) as store_said:
        store.correct(session_id, first, VitalSigns(clock.now(), hr=75), "again", RECORDER)
    assert said[1:] == [corrected] == [store_said.value.errors[0].message]
    assert len(store.load(session_id).rows["vitals"]) == 2


def test_the_review_window_says_the_stores_reason_for_signing_as_a_clinician(
    qtbot: QtBot, known: Known, tmp_path: Path
) -> None:
    window = open_review(qtbot, known, "adams", tmp_path)
    open_session(qtbot, window, known.a)
    window.sign_selected()
    adams = account(known, "adams")
    reason = permissions.why_not_sign(known.store.db, known.a, adams)
    with pytest.raises(AccessRefused) as store_said:
        Review(known.store).sign(known.a, "adams", "amber-lattice-5")
    assert reason is not None and window.message_text() == reason == store_said.value.message
    assert window.actions_by_name["sign"].toolTip().endswith(reason)
