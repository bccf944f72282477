"""The start-up unlock, the recovery key shown once, and the first run that makes both, driven
with the keyboard and mouse as the administrator would."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.store import encrypted_store, encryption, key_slots
from kapmonitor.store.accounts import Accounts
from kapmonitor.store.key_slots import KdfCost, KeySlots
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui import app as app_module
from kapmonitor.ui.forms.account_dialogs import FirstRunDialog
from kapmonitor.ui.forms.unlock_dialog import RecoveryKeyDialog, UnlockDialog
from tests.factories import T0, open_store

PASSWORD = "violet orchard lantern 42"


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(key_slots, "PASSWORD_COST", KdfCost(n=2**10))
    monkeypatch.setattr(key_slots, "RECOVERY_COST", KdfCost(n=2**10))
    encryption.forget_all()
    yield
    encryption.forget_all()


def when_modal(kind: type[QWidget], act: Callable[[QWidget], None]) -> None:
    """Act on the next modal dialog of ``kind`` once it is shown (its exec() blocks the test)."""

    def poll() -> None:
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, kind) and dialog.isVisible():
            act(dialog)
        else:
            QTimer.singleShot(20, poll)

    QTimer.singleShot(0, poll)


def type_into(qtbot: QtBot, widget: QWidget, text: str) -> None:
    widget.setFocus()
    qtbot.keyClicks(widget, text)


def acknowledge(seen: list[str]) -> Callable[[QWidget], None]:
    def act(dialog: QWidget) -> None:
        assert isinstance(dialog, RecoveryKeyDialog)
        seen.append(dialog.key_label.text())
        QTest_escape(dialog)
        assert dialog.isVisible()  # Escape does not close it before it is acknowledged
        assert not dialog.done_button.isEnabled()
        dialog.written.click()
        dialog.done_button.click()

    return act


def QTest_escape(dialog: QWidget) -> None:
    from PySide6.QtTest import QTest

    QTest.keyClick(dialog, Qt.Key.Key_Escape)


def new_clinic(tmp_path: Path) -> tuple[Path, encrypted_store.Opened]:
    path = tmp_path / "clinic.sqlite"
    opened = encrypted_store.create(path, FakeClock(T0), "admin", "Dr Admin", PASSWORD)
    encryption.forget_all()
    return path, opened


def test_a_wrong_password_is_refused_and_the_right_one_unlocks(
    qtbot: QtBot, tmp_path: Path
) -> None:
    path, opened = new_clinic(tmp_path)
    clock = FakeClock(T0)
    dialog = UnlockDialog(path, lambda n, p: encrypted_store.unlock(path, n, p, clock))
    qtbot.addWidget(dialog)
    dialog.show()
    type_into(qtbot, dialog.username, "Admin")
    type_into(qtbot, dialog.secret, "not my password")
    qtbot.keyClick(dialog.secret, Qt.Key.Key_Return)
    assert dialog.isVisible() and dialog.opened is None
    assert "Wrong user name or password" in dialog.errors_text()
    assert dialog.secret.text() == "" and dialog.username.text() == "Admin"
    type_into(qtbot, dialog.secret, PASSWORD)
    qtbot.keyClick(dialog.secret, Qt.Key.Key_Return)
    assert not dialog.isVisible() and dialog.opened is not None
    assert dialog.opened.keys == opened.keys
    store = SessionStore.open(path, clock)  # this process now opens it without asking again
    assert Accounts(store.db, clock).find("admin") is not None
    store.close()


def test_the_recovery_key_resets_a_forgotten_password_from_the_unlock_dialog(
    qtbot: QtBot, tmp_path: Path
) -> None:
    path, opened = new_clinic(tmp_path)
    assert opened.recovery_key is not None
    clock = FakeClock(T0)
    dialog = UnlockDialog(
        path,
        lambda n, p: encrypted_store.unlock(path, n, p, clock),
        lambda k, n, p: encrypted_store.reset_with_recovery(path, k, n, p, clock),
    )
    qtbot.addWidget(dialog)
    dialog.show()

    def fill(reset: QWidget) -> None:
        type_into(qtbot, reset.recovery, opened.recovery_key.lower())  # type: ignore[attr-defined, union-attr]
        type_into(qtbot, reset.username, "admin")  # type: ignore[attr-defined]
        type_into(qtbot, reset.secret, "plum quartz ferry 2031 window")  # type: ignore[attr-defined]
        type_into(qtbot, reset.repeat, "plum quartz ferry 2031 window")  # type: ignore[attr-defined]
        qtbot.keyClick(reset.repeat, Qt.Key.Key_Return)  # type: ignore[attr-defined]

    from kapmonitor.ui.forms.unlock_dialog import RecoveryResetDialog

    when_modal(RecoveryResetDialog, fill)
    assert dialog.recovery_button is not None
    dialog.recovery_button.click()
    assert dialog.opened is not None and dialog.opened.keys == opened.keys
    encryption.forget_all()
    with pytest.raises(Exception, match="Wrong user name or password"):
        encrypted_store.unlock(path, "admin", PASSWORD, clock)
    assert encrypted_store.unlock(path, "admin", "plum quartz ferry 2031 window", clock).keys


def test_first_run_seals_the_administrators_slot_and_shows_the_recovery_key_once(
    qtbot: QtBot, tmp_path: Path
) -> None:
    path = tmp_path / "clinic.sqlite"
    keys = encrypted_store.begin_new(path)
    store = SessionStore.open(path, FakeClock(T0), keys=keys)
    dialog = FirstRunDialog(Accounts(store.db, store.clock))
    qtbot.addWidget(dialog)
    dialog.show()
    type_into(qtbot, dialog.username, "admin")
    type_into(qtbot, dialog.display_name, "Dr Admin")
    type_into(qtbot, dialog.secret, PASSWORD)
    type_into(qtbot, dialog.repeat, PASSWORD)
    seen: list[str] = []
    when_modal(RecoveryKeyDialog, acknowledge(seen))
    dialog.ok_button.click()
    assert dialog.user is not None and not dialog.isVisible()
    store.close()
    (recovery,) = seen
    assert len(recovery.split("-")) == 8
    slots = KeySlots.load(path)
    assert slots.unlock("admin", PASSWORD) == keys
    assert slots.unlock_with_recovery(recovery) == keys
    assert recovery.replace("-", "") not in key_slots.slots_path(path).read_text().upper()


def test_the_app_encrypts_a_plain_database_when_its_administrator_signs_in(
    qtbot: QtBot, tmp_path: Path
) -> None:
    path = tmp_path / "clinic.sqlite"
    clock = FakeClock(T0)
    plain = open_store(path, clock)
    Accounts(plain.db, clock).create_first_administrator("admin", "Dr Admin", PASSWORD)
    plain.close()
    assert encryption.is_plain(path)

    def sign_in(dialog: QWidget) -> None:
        assert isinstance(dialog, UnlockDialog)
        assert dialog.ok_button.text() == "Encrypt and open"
        type_into(qtbot, dialog.username, "admin")
        type_into(qtbot, dialog.secret, PASSWORD)
        seen: list[str] = []
        when_modal(RecoveryKeyDialog, acknowledge(seen))
        dialog.ok_button.click()

    when_modal(UnlockDialog, sign_in)
    store = app_module.open_database(path, clock)
    assert store is not None
    assert not encryption.is_plain(path)
    assert Accounts(store.db, clock).find("admin") is not None
    store.close()


def test_cancelling_the_first_run_leaves_no_database(qtbot: QtBot, tmp_path: Path) -> None:
    path = tmp_path / "clinic.sqlite"
    when_modal(FirstRunDialog, lambda dialog: dialog.reject())  # type: ignore[attr-defined]
    from PySide6.QtWidgets import QMessageBox

    when_modal(QMessageBox, lambda box: box.accept())  # type: ignore[attr-defined]
    assert app_module.open_database(path, FakeClock(T0)) is None
    assert not path.exists() and not key_slots.slots_path(path).exists()


def test_the_app_unlocks_at_start_and_audits_the_wrong_passwords_typed_first(
    qtbot: QtBot, tmp_path: Path
) -> None:
    path, _opened = new_clinic(tmp_path)

    def two_tries(dialog: QWidget) -> None:
        assert isinstance(dialog, UnlockDialog)
        type_into(qtbot, dialog.username, "admin")
        type_into(qtbot, dialog.secret, "wrong guess number one")
        qtbot.keyClick(dialog.secret, Qt.Key.Key_Return)
        assert dialog.isVisible() and "Wrong user name or password" in dialog.errors_text()
        type_into(qtbot, dialog.secret, PASSWORD)
        qtbot.keyClick(dialog.secret, Qt.Key.Key_Return)

    when_modal(UnlockDialog, two_tries)
    store = app_module.open_database(path, FakeClock(T0))
    assert store is not None
    actor, detail = store.db.execute(
        "SELECT actor, detail FROM audit WHERE action = 'database_unlocked'"
    ).fetchone()
    assert actor == "admin" and '"failed_before":1' in detail.replace(" ", "")
    assert PASSWORD not in " ".join(str(r) for r in store.db.execute("SELECT * FROM audit"))
    store.close()
