"""Record protection…: an administrator chooses the anchor log's folder in a dialog.

Driven with clicks on the real dialog over a real store; the folder picker is the one thing
replaced (the platform's own dialog cannot be driven offscreen). Asserted on the settings file,
the anchor log's lines and the audit trail.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QMenu
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.settings import ANCHOR_LOG_FOLDER, Settings
from kapmonitor.store import anchors
from kapmonitor.store.accounts import Accounts, User
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.forms.account_dialogs import SignInDialog
from kapmonitor.ui.forms.anchor_settings_dialog import AnchorSettingsDialog
from tests.factories import T0
from tests.ui.window_driver import shown_window, type_into


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def people(tmp_path: Path, clock: FakeClock) -> Iterator[tuple[SessionStore, Accounts, User, User]]:
    store = SessionStore.open(tmp_path / "clinic" / "clinic.sqlite", clock)
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    lee = accounts.create_user(admin, "lee", "Dr Lee", "clinician", "linden-river-31")
    Settings().set(ANCHOR_LOG_FOLDER, "")
    yield store, accounts, admin, lee
    Settings().set(ANCHOR_LOG_FOLDER, "")
    store.close()


def dialog_for(qtbot: QtBot, store: SessionStore, accounts: Accounts, user: User):
    dialog = AnchorSettingsDialog(store.db, accounts, user, store.clock.now)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def pick(monkeypatch: pytest.MonkeyPatch, folder: Path) -> list[str]:
    asked: list[str] = []

    def chosen(_parent, caption: str, _start: str = "") -> str:
        asked.append(caption)
        return str(folder)

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(chosen))
    return asked


def audit_of(store: SessionStore, action: str) -> list[tuple[str, dict]]:
    rows = store.db.execute("SELECT actor, detail FROM audit WHERE action = ?", [action]).fetchall()
    return [(actor, json.loads(detail)) for actor, detail in rows]


def test_an_administrator_chooses_the_folder_and_an_anchor_is_written_there(
    qtbot: QtBot, people, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, accounts, admin, _lee = people
    stick = tmp_path / "usb-stick"
    stick.mkdir()
    asked = pick(monkeypatch, stick)
    dialog = dialog_for(qtbot, store, accounts, admin)
    assert dialog.folder_label.text() == "None chosen: no anchor log is kept."
    assert not dialog.write_button.isEnabled()

    qtbot.mouseClick(dialog.choose_button, Qt.MouseButton.LeftButton)

    assert asked == ["Keep the anchor log in"]
    assert dialog.errors_text() == ""
    assert Settings().get(ANCHOR_LOG_FOLDER) == str(stick.resolve())
    lines = (stick / anchors.LOG_NAME).read_text().splitlines()
    newest = store.db.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    record = json.loads(lines[-1])
    assert (record["entry"], record["mac"]) == (newest[0], newest[1])
    # The change is audited, and the log starts with the head that records it.
    assert audit_of(store, anchors.LOG_FOLDER_CHANGED) == [
        ("admin", {"from": None, "to": str(stick.resolve())})
    ]
    assert store.db.execute(
        "SELECT action FROM audit WHERE id = ?", [record["entry"]]
    ).fetchone() == (anchors.LOG_FOLDER_CHANGED,)
    assert dialog.folder_label.text() == str(stick.resolve())
    assert dialog.newest_label.text().startswith(f"Entry #{newest[0]}, ")
    assert dialog.newest_label.text().endswith(", when this folder was chosen")

    qtbot.mouseClick(dialog.write_button, Qt.MouseButton.LeftButton)
    assert len((stick / anchors.LOG_NAME).read_text().splitlines()) == len(lines) + 1
    assert json.loads((stick / anchors.LOG_NAME).read_text().splitlines()[-1])["event"] == (
        "written by hand"
    )


def test_a_folder_beside_the_database_is_warned_about(
    qtbot: QtBot, people, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, accounts, admin, _lee = people
    beside = store.path.parent / "anchors"
    pick(monkeypatch, beside)
    dialog = dialog_for(qtbot, store, accounts, admin)
    qtbot.mouseClick(dialog.choose_button, Qt.MouseButton.LeftButton)
    assert Settings().get(ANCHOR_LOG_FOLDER) == str(beside.resolve())  # allowed, but said
    assert dialog.warning.isVisible()
    assert "anyone with the database file there has the log too" in dialog.warning.text()


def test_a_clinician_is_refused_with_the_stores_reason_and_nothing_changes(
    qtbot: QtBot, people, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, accounts, _admin, lee = people
    stick = tmp_path / "usb-stick"
    stick.mkdir()
    pick(monkeypatch, stick)
    dialog = dialog_for(qtbot, store, accounts, lee)
    qtbot.mouseClick(dialog.choose_button, Qt.MouseButton.LeftButton)
    assert (
        "Dr Lee (clinician) may not change record protection: it needs a administrator account"
        in dialog.errors_text()
    )
    assert Settings().get(ANCHOR_LOG_FOLDER) == ""
    assert not (stick / anchors.LOG_NAME).exists()
    assert audit_of(store, anchors.LOG_FOLDER_CHANGED) == []
    assert [
        a for a, d in audit_of(store, "refused") if d["attempted"] == "change record protection"
    ] == ["lee"]


def test_an_unwritable_folder_is_refused_plainly(
    qtbot: QtBot, people, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, accounts, admin, _lee = people
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    pick(monkeypatch, blocker / "inside")
    dialog = dialog_for(qtbot, store, accounts, admin)
    qtbot.mouseClick(dialog.choose_button, Qt.MouseButton.LeftButton)
    assert "The anchor log cannot be written in" in dialog.errors_text()
    assert "the anchor log folder was not changed" in dialog.errors_text()
    assert Settings().get(ANCHOR_LOG_FOLDER) == ""
    assert audit_of(store, anchors.LOG_FOLDER_CHANGED) == []


def test_the_bedside_menu_opens_it_after_an_administrator_signs_in(
    qtbot: QtBot, people, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _accounts, _admin, _lee = people
    stick = tmp_path / "usb-stick"
    stick.mkdir()
    pick(monkeypatch, stick)
    window = shown_window(qtbot, store, store.clock, tmp_path / "settings")
    (action,) = [
        a
        for menu in window.menuBar().findChildren(QMenu)
        for a in menu.actions()
        if a.text() == "Record protection…"
    ]
    seen: list[str] = []

    def poll() -> None:
        dialog = QApplication.activeModalWidget()
        if dialog is None or type(dialog).__name__ in seen:
            return
        seen.append(type(dialog).__name__)
        if isinstance(dialog, SignInDialog):
            dialog.username.setCurrentText("admin")
            type_into(qtbot, dialog.secret, "alpine-harbour-7")
            qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
        elif isinstance(dialog, AnchorSettingsDialog):
            qtbot.mouseClick(dialog.choose_button, Qt.MouseButton.LeftButton)
            dialog.reject()
        else:
            dialog.close()

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(poll)
    timer.start()
    try:
        action.trigger()
    finally:
        timer.stop()
    assert seen == ["SignInDialog", "AnchorSettingsDialog"]
    assert Settings().get(ANCHOR_LOG_FOLDER) == str(stick.resolve())
    assert (stick / anchors.LOG_NAME).exists()


def test_the_newest_anchor_says_in_words_what_wrote_it() -> None:
    from kapmonitor.ui.forms.anchor_settings_dialog import occasion

    assert occasion("backup") == "at a backup"
    assert occasion("sign-off") == "at a sign-off"
    assert occasion("signing_key alex ab12cd new account") == (
        "when alex's signing key was recorded"
    )
    assert occasion("something newer") == "something newer"
    assert occasion("") == "reason not recorded"
