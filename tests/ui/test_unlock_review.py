"""The review room on an encrypted database: its archive worker and exports open the file on
their own connections (other threads) with the key the window was unlocked with, never asking
again and never falling back to reading it as plain SQLite."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from kapmonitor.settings import Settings
from kapmonitor.store import encrypted_store, encryption, key_slots
from kapmonitor.store.accounts import Accounts
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.review.review_window import ReviewWindow
from tests.store.test_archive import build_known_archive
from tests.ui.test_review_window import open_session, settle


@pytest.fixture
def encrypted_archive(tmp_path: Path) -> Iterator[tuple[SessionStore, object]]:
    """The known archive of the review tests, encrypted (the migration's own copy), and the
    store the window would hold after an unlock."""
    encryption.forget_all()
    known = build_known_archive(tmp_path / "plain.sqlite")
    known.store.close()
    keys = key_slots.new_keys()
    target = tmp_path / "clinic.sqlite"
    encrypted_store.encrypt_copy(known.path, target, keys)
    known.path.unlink()
    store = SessionStore.open(target, known.clock, keys=keys)
    yield store, known
    store.close()
    encryption.forget_all()


def test_the_archive_list_and_an_export_work_on_the_encrypted_file(
    qtbot: QtBot, encrypted_archive: tuple[SessionStore, object], tmp_path: Path
) -> None:
    store, known = encrypted_archive
    assert not encryption.is_plain(store.path)
    chen = Accounts(store.db, store.clock).find("chen")
    assert chen is not None
    window = ReviewWindow(store, chen, store.clock, Settings(tmp_path))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    settle(qtbot, window)
    assert sorted(window.table.shown_texts(0)) == ["KAP-0001", "KAP-0001", "KAP-0002", "KAP-0003"]
    open_session(qtbot, window, known.b)  # type: ignore[attr-defined]
    out = tmp_path / "b.json"
    window.export("json", str(out))
    qtbot.waitUntil(lambda: window.exports_pending == 0, timeout=15000)
    assert window.message_text() == ""
    assert json.loads(out.read_text(encoding="utf-8"))["session"]["patient_code"] == "KAP-0001"
    assert b"KAP-0001" not in store.path.read_bytes()
