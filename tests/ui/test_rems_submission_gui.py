"""The REMS form's 7-day submission in the review window, driven as a supervisor would: the list
shows "REMS due … — not submitted" (overdue highlighted), "Mark REMS form submitted…" records
who and when (append-only, audited) and the list then says "submitted by … on …"; a second mark
and a non-REMS session are refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import Dose, SessionEnd, VitalSigns
from kapmonitor.domain.rems import RemsStart, default_rems_defaults
from kapmonitor.settings import Settings
from kapmonitor.store import audit, rems_store
from kapmonitor.store.accounts import Accounts, User
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.forms import form_base
from kapmonitor.ui.review.review_window import ArchiveTableModel, ReviewWindow
from kapmonitor.ui.widgets.theme import current_theme
from tests.factories import T0, open_store, protocol, session_start
from tests.ui.window_driver import drive, type_into

SCREEN = QRect(0, 0, 1280, 720)
REMS = ArchiveTableModel.REMS_COLUMN


@dataclass
class Archive:
    store: SessionStore
    clock: FakeClock
    late: str  # esketamine, treated 10 days ago: overdue
    recent: str  # esketamine, treated 2 days ago: due in 5 days
    racemic: str  # clinic ketamine: the REMS form does not apply


def _session(store: SessionStore, clock: FakeClock, code: str, protocol_id: str) -> str:
    rems = None
    if protocol_id == "esketamine-rems":
        rems = RemsStart(
            True,
            "+1 555 0100",
            "dr.a@clinic.example",
            "Clinic room 2",
            "1 Main St",
            dict.fromkeys((c.code for c in default_rems_defaults().contraindications), False),
        )
    sid = store.start_session(
        session_start(clock, patient_code=code, rems=rems), "Dr A", protocol=protocol(protocol_id)
    )
    store.add(sid, VitalSigns(clock.now(), sbp=128, dbp=80, hr=72, spo2=98, rr=14), "Dr A")
    clock.advance(minutes=5)
    drug, route, mg = ("esketamine", "intranasal", 56) if rems else ("ketamine", "im", 35)
    store.add(sid, Dose(drug, route, mg, clock.now(), lot_number="L1"), "Dr A")
    clock.advance(minutes=30)
    store.add(sid, SessionEnd("stayed_for_observation", clock.now(), summary="ok"), "Dr A")
    return sid


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    clock = FakeClock(T0)
    store = open_store(tmp_path / "rems.sqlite", clock)
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    accounts.create_user(admin, "chen", "Dr M. Chen", "supervisor", "copper-meadow-9")
    late = _session(store, clock, "KAP-0101", "esketamine-rems")
    clock.advance(hours=24 * 8)
    recent = _session(store, clock, "KAP-0102", "esketamine-rems")
    racemic = _session(store, clock, "KAP-0103", "clinic-ketamine")
    clock.advance(hours=24 * 2)
    yield Archive(store, clock, late, recent, racemic)
    store.close()


@pytest.fixture(autouse=True)
def clinic_laptop(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = QApplication.primaryScreen()
    if screen is None or screen.availableGeometry() != SCREEN:
        monkeypatch.setattr(form_base, "screen_room", lambda _widget: QRect(SCREEN))


def open_review(qtbot: QtBot, archive: Archive, tmp_path: Path) -> ReviewWindow:
    user = Accounts(archive.store.db, archive.clock).find("chen")
    assert isinstance(user, User)
    window = ReviewWindow(archive.store, user, archive.clock, Settings(tmp_path))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    settle(qtbot, window)
    return window


def settle(qtbot: QtBot, window: ReviewWindow) -> None:
    qtbot.waitUntil(
        lambda: (
            not window._debounce.isActive() and window.shown_request == window.worker.latest("list")
        ),
        timeout=15000,
    )


def rems_cell(window: ReviewWindow, session_id: str) -> dict[str, object]:
    table = window.table
    for row in range(table.proxy.rowCount()):
        if table.session_at(row) == session_id:
            index = table.proxy.index(row, REMS)
            return {
                "text": index.data(Qt.ItemDataRole.DisplayRole),
                "colour": index.data(Qt.ItemDataRole.ForegroundRole),
            }
    raise AssertionError(f"{session_id} not listed")


def select(qtbot: QtBot, window: ReviewWindow, session_id: str) -> None:
    table = window.table
    table.setFocus()
    qtbot.keyClick(table, Qt.Key.Key_Home)
    for _ in range(table.proxy.rowCount()):
        if table.current_session() == session_id:
            break
        qtbot.keyClick(table, Qt.Key.Key_Down)
    qtbot.keyClick(table, Qt.Key.Key_Return)
    assert window.detail.log is not None and window.detail.log.id == session_id


def test_due_dates_and_overdue_in_the_list(qtbot: QtBot, archive: Archive, tmp_path: Path) -> None:
    window = open_review(qtbot, archive, tmp_path)
    treated = (T0 + timedelta(minutes=5)).astimezone().date()
    late = rems_cell(window, archive.late)
    assert late["text"] == f"REMS due {treated + timedelta(days=7)} — OVERDUE, not submitted"
    warn = current_theme(False).warn.lower()
    assert late["colour"] is not None and late["colour"].color().name() == warn
    recent = rems_cell(window, archive.recent)
    assert str(recent["text"]).endswith("— not submitted") and recent["colour"] is None
    assert rems_cell(window, archive.racemic)["text"] == "—"


def test_mark_submitted_records_who_and_when_and_the_list_says_so(
    qtbot: QtBot, archive: Archive, tmp_path: Path
) -> None:
    window = open_review(qtbot, archive, tmp_path)
    select(qtbot, window, archive.late)
    action = window.actions_by_name["rems_submitted"]
    assert action.isEnabled() and "OVERDUE" in action.toolTip()
    rems_tab = {r["Field"]: r["Value"] for r in window.detail.tab_records("REMS")}
    assert "OVERDUE" in rems_tab["REMS submission"]
    assert rems_tab["Setting address"] == "1 Main St"

    def mark(dialog: QWidget) -> None:
        assert dialog.submitted_by.text() == "Dr M. Chen"
        frame = dialog.frameGeometry()
        assert frame.height() <= SCREEN.height() and frame.width() <= SCREEN.width()
        type_into(qtbot, dialog.reference, "REMS-778")
        qtbot.keyClick(dialog.reference, Qt.Key.Key_Return)

    drive(
        qtbot,
        window,
        Qt.Key.Key_R,
        mark,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    settle(qtbot, window)
    (stored,) = rems_store.submissions(archive.store.db, archive.late)
    assert (stored["submitted_by"], stored["recorded_by"], stored["reference"]) == (
        "Dr M. Chen",
        "chen",
        "REMS-778",
    )
    today = archive.clock.now().astimezone().date()
    assert rems_cell(window, archive.late)["text"].endswith(  # type: ignore[union-attr]
        f"/ submitted by Dr M. Chen on {today} (late)"
    )
    assert rems_cell(window, archive.late)["colour"] is None  # no longer overdue
    actions = [
        e["action"]
        for e in audit.entries(archive.store.db)
        if e["table_name"] == "rems_submissions"
    ]
    assert actions == [rems_store.SUBMITTED_ACTION]
    assert not window.actions_by_name["rems_submitted"].isEnabled()  # once per session
    assert "submitted by Dr M. Chen" in window.actions_by_name["rems_submitted"].toolTip()


def test_a_second_mark_is_refused_in_the_dialog(
    qtbot: QtBot, archive: Archive, tmp_path: Path
) -> None:
    window = open_review(qtbot, archive, tmp_path)
    select(qtbot, window, archive.recent)
    rems_store.mark_submitted(
        archive.store.db, archive.recent, "Nurse B", archive.clock.now(), "chen", archive.clock
    )
    dialog = window.rems_submission_dialog()  # opened before the list knew of the other mark
    assert dialog is not None
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.keyClick(dialog.submitted_by, Qt.Key.Key_Return)
    assert dialog.isVisible() and "Already marked submitted by Nurse B" in dialog.errors_text()
    assert len(rems_store.submissions(archive.store.db, archive.recent)) == 1


def test_not_offered_for_a_non_rems_session(qtbot: QtBot, archive: Archive, tmp_path: Path) -> None:
    window = open_review(qtbot, archive, tmp_path)
    select(qtbot, window, archive.racemic)
    action = window.actions_by_name["rems_submitted"]
    assert not action.isEnabled()
    assert "esketamine REMS sessions only" in action.toolTip()
