"""The account dialogs with the passphrase rule, a person's own password change, and the
administrator's account sheet, driven with the keyboard and mouse as a person would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QLabel
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.store import signatures
from kapmonitor.store.accounts import Accounts
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.forms.account_dialogs import (
    AccountsDialog,
    AccountSheetDialog,
    FirstRunDialog,
    MyAccountDialog,
    NewAccountDialog,
)
from tests.factories import T0
from tests.ui.window_driver import type_into as _type_into


def type_into(qtbot: QtBot, widget, text: str) -> None:
    """Replace what the field holds, as selecting all and typing over it does."""
    widget.setFocus()
    qtbot.keyClick(widget, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(widget, Qt.Key.Key_Delete)
    _type_into(qtbot, widget, text)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    opened = SessionStore.open(tmp_path / "acc.sqlite", clock)
    yield opened
    opened.close()


def test_the_first_administrator_needs_a_passphrase(
    qtbot: QtBot, store: SessionStore, clock: FakeClock
) -> None:
    accounts = Accounts(store.db, clock)
    dialog = FirstRunDialog(accounts)
    qtbot.addWidget(dialog)
    dialog.show()
    assert any("at least 12 characters" in label.text() for label in dialog.findChildren(QLabel))
    type_into(qtbot, dialog.username, "admin")
    type_into(qtbot, dialog.display_name, "Alex Admin")
    for weak, words in (("tiny-pass", "at least 12"), ("qwerty123456", "common passwords")):
        type_into(qtbot, dialog.secret, weak)
        type_into(qtbot, dialog.repeat, weak)
        qtbot.keyClick(dialog.repeat, Qt.Key.Key_Return)
        assert dialog.isVisible() and words in dialog.errors_text()
        assert not accounts.any_users()
    type_into(qtbot, dialog.secret, "alpine-harbour-7")
    type_into(qtbot, dialog.repeat, "alpine-harbour-7")
    qtbot.keyClick(dialog.repeat, Qt.Key.Key_Return)
    assert not dialog.isVisible()
    assert dialog.user is not None and accounts.signing_key("admin") is not None


@pytest.fixture
def admin(store: SessionStore, clock: FakeClock):
    accounts = Accounts(store.db, clock)
    return accounts, accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")


def test_a_new_account_says_why_a_password_is_refused(qtbot: QtBot, admin) -> None:
    accounts, by = admin
    dialog = NewAccountDialog(accounts, by)
    qtbot.addWidget(dialog)
    dialog.show()
    type_into(qtbot, dialog.username, "chen")
    type_into(qtbot, dialog.display_name, "Dr M. Chen")
    dialog.role.setCurrentText("supervisor")
    type_into(qtbot, dialog.secret, "chen-is-the-best")
    qtbot.keyClick(dialog.secret, Qt.Key.Key_Return)
    assert dialog.isVisible() and "must not contain the user name" in dialog.errors_text()
    assert dialog.secret.placeholderText().startswith("passphrase")
    type_into(qtbot, dialog.secret, "copper-meadow-9")
    qtbot.keyClick(dialog.secret, Qt.Key.Key_Return)
    assert not dialog.isVisible(), dialog.errors_text()
    assert accounts.find("CHEN").role == "supervisor"


def test_a_person_changes_their_own_password_and_keeps_their_key(qtbot: QtBot, admin) -> None:
    accounts, by = admin
    accounts.create_user(by, "chen", "Dr M. Chen", "supervisor", "copper-meadow-9")
    key = accounts.signing_key("chen")
    dialog = MyAccountDialog(accounts)
    qtbot.addWidget(dialog)
    dialog.show()
    type_into(qtbot, dialog.username.lineEdit(), "Chen")
    type_into(qtbot, dialog.current, "not-my-password")
    type_into(qtbot, dialog.new_password, "granite-poppy-shore")
    type_into(qtbot, dialog.repeat_password, "granite-poppy-shore")
    qtbot.keyClick(dialog.repeat_password, Qt.Key.Key_Return)
    assert dialog.isVisible() and "Wrong user name or password" in dialog.errors_text()
    assert dialog.current.text() == "" and dialog.new_password.text() == ""  # nothing kept
    type_into(qtbot, dialog.current, "copper-meadow-9")
    type_into(qtbot, dialog.new_password, "granite-poppy-shore")
    type_into(qtbot, dialog.repeat_password, "granite-poppy-shore")
    qtbot.keyClick(dialog.repeat_password, Qt.Key.Key_Return)
    assert not dialog.isVisible() and dialog.done_text == "password changed"
    assert accounts.sign_in("chen", "granite-poppy-shore").username == "chen"
    changed = accounts.signing_key("chen")
    assert changed.public_key == key.public_key
    assert signatures.unwrap(changed.wrapped_key, "granite-poppy-shore")


def test_the_account_sheet_shows_every_key_fingerprint_and_saves(
    qtbot: QtBot, admin, tmp_path: Path
) -> None:
    accounts, by = admin
    accounts.create_user(by, "chen", "Dr M. Chen", "supervisor", "copper-meadow-9")
    dialog = AccountsDialog(accounts, by)
    qtbot.addWidget(dialog)
    dialog.show()
    opened: list[AccountSheetDialog] = []

    def look() -> None:
        sheet = QApplication.activeModalWidget()
        assert isinstance(sheet, AccountSheetDialog)
        opened.append(sheet)
        sheet.save(str(tmp_path / "sheet.txt"))
        sheet.reject()

    QTimer.singleShot(50, look)
    qtbot.mouseClick(dialog.sheet_button, Qt.MouseButton.LeftButton)
    assert opened
    text = opened[0].text.toPlainText()
    chen = accounts.signing_key("chen")
    assert "chen — Dr M. Chen — supervisor" in text
    assert signatures.printable(chen.fingerprint) in text
    assert (tmp_path / "sheet.txt").read_text(encoding="utf-8") == text


def test_a_password_typed_into_the_user_name_box_is_not_stored(
    qtbot: QtBot, admin, store: SessionStore
) -> None:
    """At the bedside sign-in, a clinician types their password into the user-name box by
    mistake: the failure is audited, but the text is nowhere in the file."""
    from kapmonitor.ui.forms.account_dialogs import ClinicianSignInDialog

    accounts, by = admin
    accounts.create_user(by, "lee", "Dr Lee", "clinician", "linden-river-31")
    dialog = ClinicianSignInDialog(accounts)
    qtbot.addWidget(dialog)
    dialog.show()
    name, secret = dialog.rows[0]
    type_into(qtbot, name.lineEdit(), "linden-river-31")  # the password, in the name box
    type_into(qtbot, secret, "linden-river-31")
    qtbot.keyClick(secret, Qt.Key.Key_Return)
    assert dialog.isVisible() and "Wrong user name or password" in dialog.errors_text()
    dialog.reject()
    (failed,) = store.db.execute(
        "SELECT actor FROM audit WHERE action = 'sign_in_failed'"
    ).fetchone()
    assert failed == accounts.name_digest("linden-river-31")
    store.db.execute("PRAGMA wal_checkpoint(FULL)")
    data = store.path.read_bytes()
    wal = store.path.with_name(store.path.name + "-wal")
    data += wal.read_bytes() if wal.exists() else b""
    assert b"linden-river-31" not in data
