"""The laptop's review window shows a sign-off made at the centre, once the sync brought it back,
and treats the session as signed (closed): no sign, no comment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from kapmonitor.network import admin
from kapmonitor.network.central_review import comment_centrally, sign_centrally
from kapmonitor.network.sync import sync_once
from tests.network.conftest import Archive
from tests.store.test_archive import Known, build_known_archive
from tests.ui.conftest import OFFSCREEN_LIMITS
from tests.ui.test_review_window import open_review, open_session


@pytest.fixture
def known(tmp_path: Path) -> Iterator[Known]:
    built = build_known_archive(tmp_path / "archive.sqlite")
    yield built
    built.store.close()


@pytest.mark.qt_log_ignore(OFFSCREEN_LIMITS)  # limits of the offscreen platform, as tests/ui
def test_the_review_window_shows_the_central_sign_off_and_closes_the_session(
    qtbot: QtBot, known: Known, archive: Archive, tmp_path: Path
) -> None:
    url = archive.add_laptop("room-1")
    sync_once(known.store.path, url)
    added = admin.add_reviewer(archive.admin_url, "dr-lee", "Dr K. Lee", "supervisor")
    reviewer_url = archive.server.url(archive.name, added.role, added.password)
    comment_centrally(reviewer_url, "room-1", known.a, "Alarm handled well.")
    sign_centrally(reviewer_url, "room-1", known.a, added.password)
    assert sync_once(known.store.path, url).reviews_received == 2

    window = open_review(qtbot, known, "chen", tmp_path)
    open_session(qtbot, window, known.a)
    header = window.detail.signature_label.text()
    assert header.startswith("Status: Signed at the centre · none made on this laptop · ")
    assert "Comment at the centre by Dr K. Lee" in header and "Alarm handled well." in header
    assert "Signed at the centre by Dr K. Lee, supervisor" in header
    assert "(verified: matches this laptop's record)" in header
    assert not window.actions_by_name["sign"].isEnabled()  # signed: not signed twice
    assert not window.actions_by_name["comment"].isEnabled()  # closed: addenda only
    window.close()
