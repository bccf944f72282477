"""The sign dialog shows the signer's key fingerprint, and a swapped password hash signs in
but cannot sign: the dialog says so and nothing is stored."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.store.accounts import Accounts, hash_secret
from kapmonitor.store.signatures import printable
from kapmonitor.store.signoff import Review
from kapmonitor.ui.review.sign_dialog import SignDialog
from tests.store.test_archive import Known, build_known_archive
from tests.ui.test_review_window import open_review, open_session
from tests.ui.test_sign_off_gui import CTRL_SHIFT, tick
from tests.ui.window_driver import drive

KNOWN = "attacker-knows-this-1"


@pytest.fixture
def known(tmp_path: Path) -> Iterator[Known]:
    built = build_known_archive(tmp_path / "archive.sqlite")
    yield built
    built.store.close()


def test_the_dialog_shows_the_key_and_a_swapped_hash_cannot_sign(
    qtbot: QtBot, known: Known, tmp_path: Path
) -> None:
    window = open_review(qtbot, known, "chen", tmp_path)
    open_session(qtbot, window, known.a)
    chen = Accounts(known.store.db, known.clock).signing_key("chen")
    assert chen is not None
    # The insider swaps chen's password hash for one they know (chen's own key stays wrapped
    # by chen's real password).
    raw = sqlite3.connect(known.path)
    (real,) = raw.execute("SELECT password_hash FROM users WHERE username = 'chen'").fetchone()
    raw.execute("UPDATE users SET password_hash = ? WHERE username = 'chen'", [hash_secret(KNOWN)])
    raw.commit()

    def try_known_then_cancel(dialog: QWidget) -> None:
        assert isinstance(dialog, SignDialog)
        assert dialog.key_label.text().startswith(printable(chen.fingerprint))
        for box in dialog.flag_boxes():
            tick(qtbot, dialog, box)
        qtbot.keyClicks(dialog.password, KNOWN)
        qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
        assert dialog.isVisible(), "the known password opens no key: nothing signed"
        assert "does not open with this password" in dialog.errors_text()
        dialog.reject()

    drive(qtbot, window, Qt.Key.Key_S, try_known_then_cancel, CTRL_SHIFT)
    raw.execute("UPDATE users SET password_hash = ? WHERE username = 'chen'", [real])
    raw.commit()
    raw.close()
    assert Review(known.store).signatures(known.a) == []
