"""Sign-off through the window: the supervisor types the password again and the session locks.

A clinician sees the actions disabled, and when the save path is called anyway the store refuses
and audits the attempt. After signing only addenda are accepted, marked ADDENDUM everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import QCheckBox, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import from_iso, to_iso
from kapmonitor.domain.dose_guards import DoseClearance
from kapmonitor.domain.records import (
    DischargeAssessment,
    Dose,
    Override,
    SessionEnd,
    VitalSigns,
)
from kapmonitor.store.accounts import AccessRefused, Accounts
from kapmonitor.store.database import StoreError
from kapmonitor.store.signoff import Review
from kapmonitor.ui.forms import form_base
from kapmonitor.ui.forms.form_base import TITLE_BAR_ALLOWANCE, to_qdatetime
from kapmonitor.ui.review.session_review_view import ADDENDUM, local
from kapmonitor.ui.review.sign_dialog import MEANINGS, SignDialog
from tests.store.test_archive import (
    BASE,
    SUPERVISOR,
    Known,
    _add,
    _session,
    _vitals,
    build_known_archive,
)
from tests.ui.test_review_window import account, open_review, open_session
from tests.ui.window_driver import drive, type_into

CTRL = Qt.KeyboardModifier.ControlModifier
SCREEN = QRect(0, 0, 1280, 720)  # the clinic laptop: 1366 × 768 at 150 % is 1280 × 720 logical
CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


@pytest.fixture
def known(tmp_path: Path) -> Iterator[Known]:
    built = build_known_archive(tmp_path / "archive.sqlite")
    yield built
    built.store.close()


def signatures(known: Known, session_id: str) -> list[dict]:
    return Review(known.store).signatures(session_id)


def tick(qtbot: QtBot, dialog: SignDialog, box: QCheckBox) -> None:
    """Scroll to a flag and click its checkbox on the square, as a person does (the row is
    wider than the box's click area, so its centre could miss)."""
    dialog.show_flag(box)
    was = box.isChecked()
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))
    assert box.isChecked() != was


def test_a_supervisor_signs_through_the_dialog(
    qtbot: QtBot,
    known: Known,
    tmp_path: Path,
) -> None:
    window = open_review(qtbot, known, "chen", tmp_path)
    open_session(qtbot, window, known.a)
    sign = window.actions_by_name["sign"]
    assert sign.isEnabled() and window.actions_by_name["comment"].isEnabled()
    assert not window.actions_by_name["addendum"].isEnabled()
    known.clock.advance(hours=20)

    def sign_twice(dialog: QWidget) -> None:
        assert isinstance(dialog, SignDialog)
        assert "Dr M. Chen" in dialog.printed_name.text()
        assert "supervisor" in dialog.printed_name.text()
        assert dialog.chosen_meaning() == "reviewed and approved"
        assert dialog.focusWidget() is dialog.password, "type the password straight away"
        # Session A has a missed check and an unresolved adverse effect: both confirmed first.
        assert [box.text() for box in dialog.flag_boxes()] == [
            "⚠ 1. Missed check",
            "⚠ 2. Unresolved adverse effect",
        ]
        for box in dialog.flag_boxes():
            tick(qtbot, dialog, box)
        assert dialog.sign_button.isEnabled()
        qtbot.keyClicks(dialog.password, "not-my-password")
        qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
        assert dialog.isVisible(), "a wrong password signs nothing"
        assert "Wrong user name or password" in dialog.errors_text()
        assert dialog.password.text() == "", "a refused password is not kept"
        assert signatures(known, known.a) == []
        qtbot.keyClicks(dialog.password, SUPERVISOR[2])
        qtbot.keyClick(dialog.password, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_S, sign_twice, CTRL_SHIFT)
    (signature,) = signatures(known, known.a)
    assert (signature["printed_name"], signature["role"], signature["recorded_by"]) == (
        "Dr M. Chen",
        "supervisor",
        "chen",
    )
    assert signature["meaning"] == "reviewed and approved"
    assert signature["observed_at"] == to_iso(known.clock.now())
    [confirmed] = Review(known.store).confirmations(known.a)
    assert confirmed["signature_id"] == signature["id"]
    assert [f["code"] for f in confirmed["flags"]] == ["missed_check", "unresolved_adverse_event"]
    when = local(from_iso(signature["observed_at"]), with_date=True)
    header = window.detail.signature_label.text()
    assert header == (
        f"Status: Signed · Signed by Dr M. Chen, supervisor, {when} — reviewed and approved"
    )
    # The list shows it signed once the worker has re-read it.
    qtbot.waitUntil(lambda: window.shown_request == window.worker.latest("list"), timeout=15000)
    row = window.table.proxy.index(
        next(
            r for r in range(window.table.proxy.rowCount()) if window.table.session_at(r) == known.a
        ),
        2,
    )
    assert row.data() == "✔ Signed"
    # Now locked: no signing again, no comments, no amendments; addenda only.
    assert not sign.isEnabled()
    assert not window.actions_by_name["comment"].isEnabled()
    assert not window.actions_by_name["amend"].isEnabled()
    assert window.actions_by_name["addendum"].isEnabled()
    audit = known.store.db.execute(
        "SELECT actor, table_name FROM audit WHERE action = 'signature' AND session_id = ?",
        [known.a],
    ).fetchall()
    assert audit == [("chen", "signatures"), ("chen", "signature_seals")]
    failed = known.store.db.execute(
        "SELECT count(*) FROM audit WHERE action = 'sign_in_failed' AND actor = ?",
        [Accounts(known.store.db, known.store.clock).name_digest("chen")],  # never the text
    ).fetchone()[0]
    assert failed == 1


def early_discharge_session(known: Known, extra_overrides: int = 0) -> str:
    """KAP-0009 under the esketamine REMS protocol (120 min): 700 mg entered and corrected to
    70 mg, then discharged home by override at 19 of the 120 minutes."""
    m = timedelta(minutes=1)
    store, clock = known.store, known.clock
    session_id, dose = _session(
        store,
        clock,
        code="KAP-0009",
        start=BASE + timedelta(days=9),
        clinicians=("Dr Zoë Adams", "Nurse Bo"),
        protocol_id="esketamine-rems",
    )
    by = "Dr Zoë Adams"
    _add(store, clock, session_id, _vitals(dose - 10 * m, 120, 80), by)
    # The slip passed the dose guard only on the second clinician's word (a two-person check).
    slip = Dose(
        "esketamine",
        "intranasal",
        700,
        dose,
        clearance=DoseClearance(confirmed_by="Nurse Bo", confirm_reason="Read back as 70 mg"),
    )
    dose_id = _add(store, clock, session_id, slip, by)
    store.correct(
        session_id,
        dose_id,
        Dose("esketamine", "intranasal", 70, dose),
        "Decimal point slipped: 70 mg given",
        by,
    )
    _add(store, clock, session_id, _vitals(dose + 10 * m, 130, 84), by)
    _add(store, clock, session_id, _vitals(dose + 18 * m, 128, 82), by)
    for number in range(extra_overrides):
        reason = f"Monitor cuff failed, BP by hand (note {number + 1})"
        _add(store, clock, session_id, Override("dose_without_baseline", reason, dose), by)
    unmet = ("Monitored 19 min of the required 120 min since the first dose",)
    checklist = {"escort_present": True, "oriented": True, "ambulating": True}
    check = DischargeAssessment(
        "aldrete", 9, 10, 9, True, (), checklist, False, unmet, dose + 19 * m, "Escort had to go"
    )
    _add(store, clock, session_id, check, by)
    end = SessionEnd("home_with_escort", dose + 20 * m, escort="partner", summary="left early")
    _add(store, clock, session_id, end, by)
    known.clock.advance(hours=20)
    return session_id


def test_a_supervisor_cannot_sign_until_each_flag_is_confirmed(
    qtbot: QtBot,
    known: Known,
    tmp_path: Path,
) -> None:
    session_id = early_discharge_session(known)
    window = open_review(qtbot, known, "chen", tmp_path)
    open_session(qtbot, window, session_id)
    shown: list[str] = []

    def confirm_each(dialog: QWidget) -> None:
        assert isinstance(dialog, SignDialog)
        assert dialog.flag_list is not None
        texts = [label.text() for label in dialog.flag_list.texts]
        shown.extend(texts)
        names = [box.text().split(". ", 1)[1] for box in dialog.flag_boxes()]
        assert "Large correction" in names and "Discharge override" in names
        early = texts[names.index("Discharge override")]
        assert early.startswith("Early discharge: 20 of the 120 min of monitoring")
        assert early.endswith("Override reason by Dr Zoë Adams: Escort had to go")
        dose = texts[names.index("Large correction")]
        assert "Dose 700 mg → 70 mg (10×)" in dose
        assert dose.endswith("Reason: Decimal point slipped: 70 mg given")
        # Nothing ticked: Sign is disabled, and Enter after the password says why.
        assert not dialog.sign_button.isEnabled()
        assert "0 of" in dialog.progress.text()
        qtbot.keyClicks(dialog.password, SUPERVISOR[2])
        qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
        assert dialog.isVisible()
        assert "confirm each quality flag first" in dialog.errors_text()
        assert dialog.password.text() == "", "a refused password is not kept"
        assert signatures(known, session_id) == []
        # All but the last ticked: still disabled.
        boxes = dialog.flag_boxes()
        for box in boxes[:-1]:
            tick(qtbot, dialog, box)
            assert not dialog.sign_button.isEnabled()
        # Unticking one takes it back; the last one is ticked by clicking its text.
        tick(qtbot, dialog, boxes[0])
        tick(qtbot, dialog, boxes[0])
        last = dialog.flag_list.texts[-1]
        dialog.show_flag(last)
        qtbot.mouseClick(last, Qt.MouseButton.LeftButton, pos=QPoint(40, 4))
        assert all(box.isChecked() for box in boxes)
        assert dialog.sign_button.isEnabled() and not dialog.progress.isVisible()
        qtbot.keyClicks(dialog.password, SUPERVISOR[2])
        qtbot.keyClick(dialog.password, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_S, confirm_each, CTRL_SHIFT)
    (signature,) = signatures(known, session_id)
    assert signature["recorded_by"] == "chen"
    # What was confirmed is stored with the signature, word for word, in the audit trail.
    [confirmed] = Review(known.store).confirmations(session_id)
    assert confirmed["signature_id"] == signature["id"]
    assert [f["message"] for f in confirmed["flags"]] == shown
    (actor,) = known.store.db.execute(
        "SELECT actor FROM audit WHERE action = 'flags_confirmed' AND session_id = ?",
        [session_id],
    ).fetchone()
    assert actor == "chen"


def test_many_flags_scroll_and_the_buttons_stay_within_1280_by_720(
    qtbot: QtBot,
    known: Known,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The dialog sizes itself against the clinic laptop, whatever the test platform's screen.
    monkeypatch.setattr(form_base, "screen_room", lambda _widget: QRect(SCREEN))
    session_id = early_discharge_session(known, extra_overrides=30)
    window = open_review(qtbot, known, "chen", tmp_path)
    open_session(qtbot, window, session_id)
    dialog = window.sign_dialog()
    assert isinstance(dialog, SignDialog)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)

    def fits() -> None:
        frame = dialog.frameGeometry()
        assert SCREEN.contains(frame), frame
        assert frame.height() <= SCREEN.height() - TITLE_BAR_ALLOWANCE
        inside = dialog.rect()
        for widget in (dialog.password, dialog.sign_button, *dialog.buttons.buttons()):
            assert widget.isVisible()
            top_left = widget.mapTo(dialog, QPoint(0, 0))
            bottom_right = top_left + QPoint(widget.width() - 1, widget.height() - 1)
            assert inside.contains(top_left) and inside.contains(bottom_right), widget

    # 30 overrides, the large correction and the discharge override, at least (the slip's
    # two-person check is an audited override too).
    count = len(dialog.flag_boxes())
    assert count >= 32
    fits()
    assert dialog.scroll.verticalScrollBar().maximum() > 0, "the flags scroll"
    # A refusal (nothing ticked yet) adds its banner; the buttons stay on screen.
    qtbot.keyClicks(dialog.password, SUPERVISOR[2])
    qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
    assert f"confirm each quality flag first ({count} not ticked)" in dialog.errors_text()
    fits()
    # Every flag can be reached and ticked; then Sign is enabled.
    for box in dialog.flag_boxes():
        tick(qtbot, dialog, box)
    assert dialog.sign_button.isEnabled() and not dialog.progress.isVisible()
    fits()
    dialog.close()
    assert signatures(known, session_id) == []


def test_the_meaning_can_be_reviewed_with_comments(
    qtbot: QtBot,
    known: Known,
    tmp_path: Path,
) -> None:
    window = open_review(qtbot, known, "chen", tmp_path)
    open_session(qtbot, window, known.d)

    def sign(dialog: QWidget) -> None:
        assert isinstance(dialog, SignDialog)
        dialog.meaning.setFocus()
        qtbot.keyClick(dialog.meaning, Qt.Key.Key_Down)
        assert dialog.chosen_meaning() == MEANINGS[1] == "reviewed with comments"
        type_into(qtbot, dialog.password, SUPERVISOR[2])
        qtbot.keyClick(dialog.password, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_S, sign, CTRL_SHIFT)
    (signature,) = signatures(known, known.d)
    assert signature["meaning"] == "reviewed with comments"
    assert window.detail.signature_label.text().endswith("— reviewed with comments")


def test_an_open_session_cannot_be_signed(
    qtbot: QtBot,
    known: Known,
    tmp_path: Path,
) -> None:
    window = open_review(qtbot, known, "chen", tmp_path)
    open_session(qtbot, window, known.c)
    assert not window.actions_by_name["sign"].isEnabled()
    assert "End the session before signing" in window.actions_by_name["sign"].toolTip()
    dialog = window.sign_dialog()
    assert dialog is not None
    qtbot.addWidget(dialog)
    for box in dialog.flag_boxes():  # every flag confirmed: the store still refuses
        box.setChecked(True)
    dialog.password.setText(SUPERVISOR[2])
    dialog.try_sign()
    assert "End the session before signing it" in dialog.errors_text()
    assert signatures(known, known.c) == []


def test_a_clinician_cannot_sign_and_the_store_refuses_and_audits(
    qtbot: QtBot,
    known: Known,
    tmp_path: Path,
) -> None:
    window = open_review(qtbot, known, "adams", tmp_path)
    open_session(qtbot, window, known.a)
    sign = window.actions_by_name["sign"]
    assert not sign.isEnabled()
    assert "needs a supervisor or administrator" in sign.toolTip()
    qtbot.keyClick(window, Qt.Key.Key_S, CTRL_SHIFT)  # a disabled action opens nothing
    assert window.active_dialog is None
    window.sign_selected()
    assert "may not sign a session" in window.message_text()
    # The save path, called anyway: the store decides, refuses and audits.
    dialog = window.sign_dialog()
    assert isinstance(dialog, SignDialog)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.role_warning is not None
    assert "may not sign a session: it needs a supervisor or administrator account" in (
        dialog.role_warning.text()
    )
    qtbot.waitExposed(dialog)
    for box in dialog.flag_boxes():
        tick(qtbot, dialog, box)
    type_into(qtbot, dialog.password, "amber-lattice-5")
    dialog.try_sign()
    assert "Dr Zoë Adams (clinician) may not sign a session" in dialog.errors_text()
    assert dialog.isVisible() and dialog.saved_id is None
    assert signatures(known, known.a) == []
    (detail,) = known.store.db.execute(
        "SELECT detail FROM audit WHERE action = 'refused' AND actor = 'adams' AND session_id = ?",
        [known.a],
    ).fetchone()
    assert json.loads(detail)["attempted"] == "sign a session"


# --- comments, addenda -------------------------------------------------------------------


def test_a_review_comment_is_stored_at_the_selected_moment(
    qtbot: QtBot,
    known: Known,
    tmp_path: Path,
) -> None:
    window = open_review(qtbot, known, "chen", tmp_path)
    open_session(qtbot, window, known.a)
    peak = known.log(known.a).current("vitals")[-1]  # 185/100 at 35 min
    assert window.detail.select_entry("vitals", peak["id"])

    def comment(dialog: QWidget) -> None:
        assert dialog.windowTitle() == "Add review comment"
        assert dialog.at() == from_iso(peak["observed_at"]), "defaults to the selected entry"
        assert dialog.when_label.text() == "0:35:00 after the first dose"
        assert dialog.focusWidget() is dialog.text
        qtbot.keyClicks(dialog.text, "Critical BP answered within a minute; well documented")
        qtbot.keyClick(dialog.text, Qt.Key.Key_Return, CTRL)

    drive(qtbot, window, Qt.Key.Key_M, comment, CTRL)
    (row,) = known.log(known.a).rows["review_comments"]
    assert row.observed_at == peak["observed_at"]
    assert row.recorded_by == "Dr M. Chen"
    assert row["text"] == "Critical BP answered within a minute; well documented"
    (shown,) = window.detail.tab_records("Comments & addenda")
    assert (shown["Kind"], shown["Since dose"], shown["Author"]) == (
        "Review comment",
        "0:35:00",
        "Dr M. Chen",
    )
    timeline = window.detail.tab_records("Timeline")
    assert any(r["Entry"].endswith("Review comment") for r in timeline)

    # Another moment, typed into the time field.
    window.detail.timeline.clearSelection()
    dose_at = known.log(known.a).first_dose_at()
    assert dose_at is not None
    chosen = dose_at + timedelta(minutes=20)

    def later(dialog: QWidget) -> None:
        assert dialog.at() == dose_at, "without a selection: the first dose"
        dialog.time_edit.setDateTime(to_qdatetime(chosen))
        qtbot.keyClicks(dialog.text, "Nausea: was an outcome recorded?")
        dialog.save_button.click()

    drive(qtbot, window, Qt.Key.Key_M, later, CTRL)
    stored = [r["observed_at"] for r in known.log(known.a).rows["review_comments"]]
    assert to_iso(chosen) in stored


def test_a_clinician_cannot_add_a_review_comment(
    qtbot: QtBot,
    known: Known,
    tmp_path: Path,
) -> None:
    window = open_review(qtbot, known, "adams", tmp_path)
    open_session(qtbot, window, known.a)
    assert not window.actions_by_name["comment"].isEnabled()
    dialog = window.comment_dialog()
    assert dialog is not None
    qtbot.addWidget(dialog)
    dialog.text.setPlainText("fine")
    dialog.try_save()
    assert "may not add a review comment" in dialog.errors_text()
    assert known.log(known.a).rows["review_comments"] == []


def test_after_signing_comments_and_amendments_are_refused_and_an_addendum_is_added(
    qtbot: QtBot,
    known: Known,
    tmp_path: Path,
) -> None:
    window = open_review(qtbot, known, "chen", tmp_path)
    open_session(qtbot, window, known.b)  # signed when the archive was built
    assert window.detail.signed
    assert not window.actions_by_name["comment"].isEnabled()
    assert not window.actions_by_name["amend"].isEnabled()
    assert not window.actions_by_name["sign"].isEnabled()
    assert window.actions_by_name["addendum"].isEnabled()

    # The store refuses what the disabled actions would do.
    review = Review(known.store)
    chen, adams = account(known, "chen"), account(known, "adams")
    at = known.log(known.b).first_dose_at()
    with pytest.raises(StoreError, match="signed and locked"):
        review.add_review_comment(known.b, chen, at, "late thought")
    dialog = window.comment_dialog()
    assert dialog is not None
    qtbot.addWidget(dialog)
    dialog.text.setPlainText("late thought")
    dialog.try_save()
    assert "signed and locked" in dialog.errors_text()
    entry = known.log(known.b).current("vitals")[0]
    with pytest.raises(StoreError, match="signed and locked"):
        review.amend(known.b, adams, entry["id"], VitalSigns(known.clock.now(), hr=70), "x")
    window.detail.select_entry("vitals", entry["id"])
    window.amend_selected()
    assert "signed and locked" in window.message_text()

    known.clock.advance(days=1)

    def addendum(dialog: QWidget) -> None:
        assert dialog.windowTitle() == "Add addendum"
        assert not dialog.time_edit.isVisible(), "an addendum is written now"
        qtbot.keyClicks(dialog.text, "Patient phoned next day: slept well")
        qtbot.keyClick(dialog.text, Qt.Key.Key_Return, CTRL)

    drive(qtbot, window, Qt.Key.Key_A, addendum, CTRL_SHIFT)
    (row,) = known.log(known.b).rows["addenda"]
    assert row["text"] == "Patient phoned next day: slept well"
    assert row.recorded_by == "Dr M. Chen"
    assert row.observed_at == to_iso(known.clock.now())
    shown = window.detail.tab_records("Comments & addenda")
    assert [r["Kind"] for r in shown] == ["Signature", ADDENDUM]
    assert shown[1]["Text"] == "Patient phoned next day: slept well"
    timeline = window.detail.tab_records("Timeline")
    assert timeline[-1]["Entry"].endswith(ADDENDUM)
    assert timeline[-1]["Details"] == "Patient phoned next day: slept well"
    assert window.detail.tab_title("Comments & addenda") == "Comments & addenda (1)"


def test_an_addendum_is_refused_before_sign_off(
    qtbot: QtBot,
    known: Known,
    tmp_path: Path,
) -> None:
    window = open_review(qtbot, known, "chen", tmp_path)
    open_session(qtbot, window, known.a)
    assert not window.actions_by_name["addendum"].isEnabled()
    dialog = window.addendum_dialog()
    assert dialog is not None
    qtbot.addWidget(dialog)
    dialog.text.setPlainText("too early")
    dialog.try_save()
    assert "Addenda are for signed sessions" in dialog.errors_text()
    with pytest.raises(AccessRefused):
        Review(known.store).add_addendum(known.a, account(known, "chen"), "too early")
    assert known.log(known.a).rows["addenda"] == []
