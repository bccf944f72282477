"""Accounts at the bedside: first run, clinicians signing in, the idle lock, emergency access.

Driven through the real window with keys; asserted on the store (sessions, audit rows) and on
what the lock screen shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QInputDialog, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import VitalSigns
from kapmonitor.settings import Settings
from kapmonitor.store.accounts import Accounts
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.bedside.session_window import SessionWindow
from kapmonitor.ui.forms.account_dialogs import AccountsDialog, FirstRunDialog
from kapmonitor.ui.widgets.theme import current_theme, stylesheet
from tests.factories import T0, session_start
from tests.ui.window_driver import drive, shown_window, type_into


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    opened = SessionStore.open(tmp_path / "accounts.sqlite", clock)
    accounts = Accounts(opened.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    accounts.create_user(admin, "lee", "Dr Lee", "clinician", "linden-river-31")
    accounts.create_user(admin, "kim", "Nurse Kim", "clinician", "kestrel-dawn-52")
    yield opened
    opened.close()


@pytest.fixture
def window(qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path) -> SessionWindow:
    return shown_window(qtbot, store, clock, tmp_path)


def press(qtbot: QtBot, window: SessionWindow, key: Qt.Key, modifier: Qt.KeyboardModifier) -> None:
    """A shortcut pressed in the window, once it is the active window again."""
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=2000)
    qtbot.keyClick(window, key, modifier)


def audit_actions(store: SessionStore) -> list[tuple[str, str]]:
    return [
        (r[0], r[1])
        for r in store.db.execute("SELECT actor, action FROM audit WHERE table_name IS NULL")
    ]


def sign_in(qtbot: QtBot, dialog: QWidget, rows: list[tuple[str, str]]) -> None:
    for (name, secret), (name_box, secret_box) in zip(rows, dialog.rows, strict=False):
        type_into(qtbot, name_box.lineEdit(), name)
        type_into(qtbot, secret_box, secret)
    qtbot.keyClick(dialog.rows[0][1], Qt.Key.Key_Return)


def fill_start(qtbot: QtBot, dialog: QWidget) -> None:
    assert [e.text() for e in dialog.clinicians[:2]] == ["Dr Lee", "Nurse Kim"]
    assert dialog.clinicians[0].isReadOnly()
    type_into(qtbot, dialog.patient_code, "KAP-0500")
    type_into(qtbot, dialog.age, "38")
    type_into(qtbot, dialog.sex, "Female")
    type_into(qtbot, dialog.weight, "64")
    type_into(qtbot, dialog.indication, "Treatment")
    for box in dialog.checklist.boxes.values():
        box.setChecked(True)
    qtbot.keyClick(dialog.weight, Qt.Key.Key_Return)


def start_signed_in(qtbot: QtBot, window: SessionWindow) -> None:
    def clinicians(dialog: QWidget) -> None:
        sign_in(qtbot, dialog, [("lee", "linden-river-31"), ("kim", "kestrel-dawn-52")])

    drive(
        qtbot,
        window,
        Qt.Key.Key_N,
        [clinicians, lambda d: fill_start(qtbot, d)],
        Qt.KeyboardModifier.ControlModifier,
    )


def test_first_run_creates_the_administrator(
    qtbot: QtBot, tmp_path: Path, clock: FakeClock
) -> None:
    store = SessionStore.open(tmp_path / "fresh.sqlite", clock)
    accounts = Accounts(store.db, clock)
    dialog = FirstRunDialog(accounts)
    qtbot.addWidget(dialog)
    dialog.show()
    type_into(qtbot, dialog.username, "admin")
    type_into(qtbot, dialog.display_name, "Alex Admin")
    type_into(qtbot, dialog.secret, "alpine-harbour-7")
    type_into(qtbot, dialog.repeat, "admin-secreT")
    qtbot.keyClick(dialog.repeat, Qt.Key.Key_Return)
    assert dialog.isVisible() and "differ" in dialog.errors_text()
    assert not accounts.any_users()
    dialog.repeat.clear()
    type_into(qtbot, dialog.repeat, "alpine-harbour-7")
    qtbot.keyClick(dialog.repeat, Qt.Key.Key_Return)
    assert not dialog.isVisible()
    assert accounts.find("admin").role == "administrator"
    store.close()


def test_two_clinicians_sign_in_and_switch_without_retyping(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    def only_one(dialog: QWidget) -> None:
        sign_in(qtbot, dialog, [("lee", "linden-river-31")])
        assert dialog.isVisible() and "At least 2" in dialog.errors_text()
        type_into(qtbot, dialog.rows[1][0].lineEdit(), "kim")
        type_into(qtbot, dialog.rows[1][1], "wrong-pin")
        qtbot.keyClick(dialog.rows[1][1], Qt.Key.Key_Return)
        assert "Clinician 2: Wrong user name or password" in dialog.errors_text()
        dialog.rows[0][1].clear()
        type_into(qtbot, dialog.rows[0][1], "linden-river-31")
        type_into(qtbot, dialog.rows[1][1], "kestrel-dawn-52")
        qtbot.keyClick(dialog.rows[1][1], Qt.Key.Key_Return)

    drive(
        qtbot,
        window,
        Qt.Key.Key_N,
        [only_one, lambda d: fill_start(qtbot, d)],
        Qt.KeyboardModifier.ControlModifier,
    )
    assert window.log is not None
    assert store.load(window.log.id).clinicians == ["Dr Lee", "Nurse Kim"]
    assert window.recorder == "Dr Lee"
    press(qtbot, window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert window.recorder == "Nurse Kim"  # no password asked: she signed in at the start
    # A failure is audited under a keyed digest of the typed name, never the text.
    kim_digest = Accounts(store.db, clock).name_digest("kim")
    assert (kim_digest, "sign_in_failed") in audit_actions(store)
    assert ("kim", "sign_in_failed") not in audit_actions(store)
    assert [a for a in audit_actions(store) if a[1] == "sign_in"][-2:] == [
        ("lee", "sign_in"),
        ("kim", "sign_in"),
    ]


def test_the_lock_keeps_the_clock_next_check_and_alarms_and_opens_for_a_clinician(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    start_signed_in(qtbot, window)
    session_id = window.log.id
    clock.advance(minutes=2)
    store.add(session_id, VitalSigns(clock.now(), hr=70, sbp=185, dbp=90, spo2=97, rr=14), "Dr Lee")
    window.open_session(session_id, fresh=True)
    clock.advance(minutes=1)
    window.tick()
    press(qtbot, window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    overlay = window.access.overlay
    assert overlay.isVisible()
    covering = window.childAt(window.chart.mapTo(window, window.chart.rect().center()))
    assert covering is overlay or overlay.isAncestorOf(covering)  # on top, hiding the chart
    assert overlay.clock.text() == "KAP-0500 · session 0:03:00"
    assert overlay.next_check.text() == window.schedule_panel.text()
    assert "CRITICAL" in overlay.alarms.text()
    assert not window.actions_by_name["vitals"].isEnabled()
    press(qtbot, window, Qt.Key.Key_V, Qt.KeyboardModifier.NoModifier)
    assert QApplication.activeModalWidget() is None  # entry is closed while locked
    clock.advance(minutes=1)
    window.tick()
    assert overlay.clock.text().endswith("0:04:00")  # the clock still runs on the lock screen

    overlay.username.setCurrentText("admin")
    type_into(qtbot, overlay.secret, "alpine-harbour-7")
    qtbot.keyClick(overlay.secret, Qt.Key.Key_Return)
    assert overlay.isVisible() and "not an attending clinician" in overlay.error.text()
    overlay.username.setCurrentText("kim")
    type_into(qtbot, overlay.secret, "kestrel-dawn-52")
    qtbot.keyClick(overlay.secret, Qt.Key.Key_Return)
    assert not overlay.isVisible()
    assert window.recorder == "Nurse Kim"
    assert window.actions_by_name["vitals"].isEnabled()


def test_idle_time_locks_the_window(
    qtbot: QtBot, window: SessionWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    start_signed_in(qtbot, window)
    minutes = window.access.idle_lock().minutes
    assert minutes > 10  # the protocol checks every 10 min: no lock between two checks
    watcher = window.access.watcher
    monkeypatch.setattr(watcher, "idle_seconds", lambda: minutes * 60 - 1)
    watcher.check()
    assert not window.access.locked()
    monkeypatch.setattr(watcher, "idle_seconds", lambda: minutes * 60)
    watcher.check()
    assert window.access.locked()
    assert "no input" in window.access.overlay.title.text()


def test_a_resumed_session_opens_locked(
    qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path
) -> None:
    session_id = store.start_session(
        session_start(clock, clinicians=("Dr Lee", "Nurse Kim")), "Dr Lee"
    )
    window = SessionWindow(store, clock, Settings(tmp_path))
    qtbot.addWidget(window)
    window.show()
    window.open_session(session_id)
    assert window.access.locked()
    assert [window.access.overlay.username.itemText(i) for i in range(2)] == ["lee", "kim"]


def test_emergency_access_is_recorded_and_marked(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter([("Sam Locum", True), ("accounts server down, patient waiting", True)])
    monkeypatch.setattr(QInputDialog, "getText", lambda *_a, **_k: next(answers))

    def clinicians(dialog: QWidget) -> None:
        dialog.emergency_button.click()
        assert "Emergency access recorded for Sam Locum" in dialog.banner.text()
        sign_in(qtbot, dialog, [("lee", "linden-river-31")])

    def start(dialog: QWidget) -> None:
        assert [e.text() for e in dialog.clinicians[:2]] == [
            "Sam Locum (emergency access)",
            "Dr Lee",
        ]
        type_into(qtbot, dialog.patient_code, "KAP-0501")
        type_into(qtbot, dialog.age, "38")
        type_into(qtbot, dialog.sex, "Female")
        type_into(qtbot, dialog.weight, "64")
        type_into(qtbot, dialog.indication, "Treatment")
        for box in dialog.checklist.boxes.values():
            box.setChecked(True)
        qtbot.keyClick(dialog.weight, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_N, [clinicians, start], Qt.KeyboardModifier.ControlModifier)
    assert window.recorder == "Sam Locum (emergency access)"
    actions = audit_actions(store)
    assert ("Sam Locum (emergency access)", "emergency_access") in actions
    session = store.load(window.log.id).session
    assert session["recorded_by"] == "Sam Locum (emergency access)"


def test_a_fresh_install_says_to_add_the_clinicians_first(
    qtbot: QtBot, tmp_path: Path, clock: FakeClock
) -> None:
    fresh = SessionStore.open(tmp_path / "fresh.sqlite", clock)
    accounts = Accounts(fresh.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    window = shown_window(qtbot, fresh, clock, tmp_path)
    assert window.accounts_hint.isVisible()
    assert "Session → Accounts" in window.accounts_hint.text()
    accounts.create_user(admin, "lee", "Dr Lee", "clinician", "linden-river-31")
    window.show_welcome()
    assert not window.accounts_hint.isVisible()
    window.close()
    fresh.close()


def test_account_columns_are_as_wide_as_their_contents(
    qtbot: QtBot, store: SessionStore, clock: FakeClock
) -> None:
    """A long printed name or user name is never clipped, in large type and a narrowed dialog."""
    accounts = Accounts(store.db, clock)
    admin = next(user for user in accounts.users() if user.username == "admin")
    accounts.create_user(
        admin,
        "featherstonehaugh",
        "Dr Maximiliana Featherstonehaugh-Worthington",
        "clinician",
        "lichen-harbour-77",
    )
    dialog = AccountsDialog(accounts, admin)
    dialog.setStyleSheet(stylesheet(current_theme(False), True))
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    table, header = dialog.table, dialog.table.horizontalHeader()

    for width in (dialog.width(), 200):  # as opened, then dragged as narrow as it goes
        dialog.resize(width, dialog.height())
        QApplication.processEvents()
        for column in range(table.columnCount()):
            content = max(table.sizeHintForColumn(column), header.sectionSizeHint(column))
            assert table.columnWidth(column) >= content, header.model().headerData(
                column, Qt.Orientation.Horizontal
            )
        assert header.length() <= table.viewport().width()  # nothing scrolled off to the right
        assert dialog.width() <= 1280
    names = [table.item(row, 1).text() for row in range(table.rowCount())]
    assert "Dr Maximiliana Featherstonehaugh-Worthington" in names
