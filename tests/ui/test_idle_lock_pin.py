"""The idle-lock PIN, driven as a person would: set in "My password and PIN…", it opens the
lock of a session its owner signed in to, never for anyone else, never after a resume, and
after five wrong PINs only a password opens it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.store.accounts import PIN_TRIES, AccessRefused, Accounts
from kapmonitor.store.session_store import SessionStore
from kapmonitor.store.signoff import Review
from kapmonitor.ui.bedside.session_window import SessionWindow
from kapmonitor.ui.forms.account_dialogs import MyAccountDialog
from tests.factories import T0, session_start
from tests.ui.test_accounts_gui import press, start_signed_in
from tests.ui.test_locks import unlock, with_dialogs
from tests.ui.window_driver import shown_window, type_into

LEE = "linden-river-31"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    opened = SessionStore.open(tmp_path / "pin.sqlite", clock)
    accounts = Accounts(opened.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    accounts.create_user(admin, "lee", "Dr Lee", "clinician", LEE)
    accounts.create_user(admin, "kim", "Nurse Kim", "clinician", "kestrel-dawn-52")
    yield opened
    opened.close()


@pytest.fixture
def window(qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path) -> SessionWindow:
    return shown_window(qtbot, store, clock, tmp_path)


def menu_action(window: SessionWindow, text: str):
    return next(a for a in window.menuBar().actions()[0].menu().actions() if a.text() == text)


def set_pin_through_the_menu(qtbot: QtBot, window: SessionWindow, pin: str) -> None:
    def fill(dialog: QWidget) -> None:
        assert isinstance(dialog, MyAccountDialog)
        type_into(qtbot, dialog.username.lineEdit(), "lee")
        type_into(qtbot, dialog.current, LEE)
        type_into(qtbot, dialog.pin, pin)
        type_into(qtbot, dialog.repeat_pin, pin)
        qtbot.keyClick(dialog.repeat_pin, Qt.Key.Key_Return)

    with_dialogs(qtbot, menu_action(window, "My password and PIN…").trigger, [fill])


def lock(qtbot: QtBot, window: SessionWindow) -> None:
    press(qtbot, window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert window.access.locked()


def test_the_pin_opens_the_lock_for_the_clinician_who_signed_in(
    qtbot: QtBot, window: SessionWindow, store: SessionStore
) -> None:
    set_pin_through_the_menu(qtbot, window, "4821")
    assert Accounts(store.db, store.clock).has_pin("lee")
    start_signed_in(qtbot, window)
    lock(qtbot, window)
    unlock(qtbot, window, "kim", "4821")  # kim has no PIN: it is a (wrong) password for her
    assert window.access.locked()
    assert "Wrong user name or password" in window.access.overlay.error.text()
    unlock(qtbot, window, "lee", "4821")
    assert not window.access.locked()
    assert window.recorder == "Dr Lee"
    actions = [
        r[0] for r in store.db.execute("SELECT action FROM audit WHERE actor = 'lee' ORDER BY id")
    ]
    assert actions[-1] == "pin_unlock", actions


def test_the_pin_is_not_a_password_anywhere_else(
    qtbot: QtBot, window: SessionWindow, store: SessionStore
) -> None:
    set_pin_through_the_menu(qtbot, window, "4821")
    accounts = Accounts(store.db, store.clock)
    with pytest.raises(AccessRefused, match="Wrong user name or password"):
        accounts.sign_in("lee", "4821")
    with pytest.raises(AccessRefused):
        Review(store).sign("0" * 32, "lee", "4821")


def test_after_a_resume_only_the_password_opens_the_lock(
    qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path
) -> None:
    Accounts(store.db, clock).set_pin(Accounts(store.db, clock).find("lee"), LEE, "4821")
    session_id = store.start_session(
        session_start(clock, clinicians=("Dr Lee", "Nurse Kim")), "Dr Lee"
    )
    window = shown_window(qtbot, store, clock, tmp_path)
    window.open_session(session_id)  # resumed: nobody has signed in during this run
    assert window.access.locked()
    unlock(qtbot, window, "lee", "4821")
    assert window.access.locked()
    unlock(qtbot, window, "lee", LEE)
    assert not window.access.locked()


def test_five_wrong_pins_then_only_the_password(
    qtbot: QtBot, window: SessionWindow, store: SessionStore
) -> None:
    set_pin_through_the_menu(qtbot, window, "4821")
    start_signed_in(qtbot, window)
    lock(qtbot, window)
    for attempt in range(PIN_TRIES):
        unlock(qtbot, window, "lee", f"{1000 + attempt}")
        assert window.access.locked()
        assert "Wrong PIN" in window.access.overlay.error.text()
    unlock(qtbot, window, "lee", "4821")  # the right PIN, too late
    assert window.access.locked()
    assert "unlock with a password" in window.access.overlay.error.text()
    unlock(qtbot, window, "lee", LEE)
    assert not window.access.locked()
    failed = store.db.execute("SELECT count(*) FROM audit WHERE action = 'pin_failed'").fetchone()
    assert failed[0] == PIN_TRIES


def test_each_clinician_may_attest_the_record_at_the_end(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    """After End session, the clinicians who signed in are asked to attest with their own
    password; one does, the other leaves it empty (allowed): only the first attests."""
    from kapmonitor.domain.records import SessionEnd
    from kapmonitor.ui.forms.account_dialogs import AttestDialog

    start_signed_in(qtbot, window)
    assert window.log is not None
    session_id = window.log.id
    clock.advance(minutes=30)
    store.add(session_id, SessionEnd("stayed_for_observation", clock.now(), summary="ok"), "Dr Lee")

    def attest(dialog: QWidget) -> None:
        assert isinstance(dialog, AttestDialog)
        assert [u.display_name for u in dialog.clinicians] == ["Dr Lee", "Nurse Kim"]
        type_into(qtbot, dialog.secrets[0], "not-lees-password")
        qtbot.keyClick(dialog.secrets[0], Qt.Key.Key_Return)
        assert dialog.isVisible() and "Wrong user name or password" in dialog.errors_text()
        type_into(qtbot, dialog.secrets[0], LEE)
        qtbot.keyClick(dialog.secrets[0], Qt.Key.Key_Return)

    with_dialogs(qtbot, window.access.attest_after_end, [attest])
    rows = Review(store).attestations(session_id)
    assert [(r["signer"], r["printed_name"]) for r in rows] == [("lee", "Dr Lee")]


def test_ending_the_session_in_the_window_asks_for_the_attestations(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    from kapmonitor.ui.forms.account_dialogs import AttestDialog
    from kapmonitor.ui.forms.discharge_dialog import DischargeDialog
    from tests.ui.window_driver import drive

    start_signed_in(qtbot, window)
    assert window.log is not None
    session_id = window.log.id
    clock.advance(minutes=30)
    steps = []

    def no_discharge_yet(dialog: QWidget) -> None:
        steps.append(type(dialog).__name__)
        assert isinstance(dialog, DischargeDialog)
        qtbot.keyClick(dialog.inputs["activity"], Qt.Key.Key_Escape)

    def stay(dialog: QWidget) -> None:
        steps.append(type(dialog).__name__)
        type_into(qtbot, dialog.disposition, "Kept for further observation")
        type_into(qtbot, dialog.summary, "Kept for observation")
        qtbot.keyClick(dialog.summary, Qt.Key.Key_Return)

    def attest(dialog: QWidget) -> None:
        steps.append(type(dialog).__name__)
        assert isinstance(dialog, AttestDialog)
        type_into(qtbot, dialog.secrets[1], "kestrel-dawn-52")  # Nurse Kim attests
        qtbot.keyClick(dialog.secrets[1], Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_E, [no_discharge_yet, stay, attest])
    assert steps == ["DischargeDialog", "EndSessionForm", "AttestDialog"]
    assert store.load(session_id).phase() == "ended"
    rows = Review(store).attestations(session_id)
    assert [r["printed_name"] for r in rows] == ["Nurse Kim"]


def test_a_closed_window_stops_its_idle_check_before_the_store_closes(
    qtbot: QtBot, window: SessionWindow, store: SessionStore
) -> None:
    """A window closed but still held (a bench, a test, a dialog's parent) must not read the
    clinic's idle-lock setting from a store that is closed after it: the check stops with the
    window, and the application no longer routes events to it."""
    watcher = window.access.watcher
    assert watcher.timer.isActive()
    window.close()
    assert not watcher.timer.isActive()
    store.close()
    watcher.timer.timeout.emit()  # a tick already queued when the window closed
