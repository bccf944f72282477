"""The review window's exports come from the export registry: a registered format is in the menu,
exporting the listed sessions shows a progress dialog that Cancel stops (nothing written, nothing
audited), and a finished export is audited once per session."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMenu, QProgressDialog, QPushButton
from pytestqt.qtbot import QtBot
from sqlite_utils import Database

from kapmonitor.reports.export_registry import (
    ExportTarget,
    Progress,
    register_export,
    unregister_export,
)
from tests.store.test_archive import Known, build_known_archive
from tests.ui.test_review_window import open_review


@pytest.fixture
def known(tmp_path: Path) -> Iterator[Known]:
    built = build_known_archive(tmp_path / "archive.sqlite")
    yield built
    built.store.close()


def export_audits(known: Known) -> list[tuple[str, dict[str, str]]]:
    return [
        (sid, json.loads(detail))
        for sid, detail in known.store.db.execute(
            "SELECT session_id, detail FROM audit WHERE action = 'export' ORDER BY id"
        )
    ]


def menu_texts(window: object, title: str) -> list[str]:
    bar = window.menuBar()  # type: ignore[attr-defined]
    (menu,) = [a.menu() for a in bar.actions() if a.text().replace("&", "") == title]
    texts = [a.text() for a in menu.actions() if a.text()]
    listed = menu.findChild(QMenu, "ExportListedMenu")
    return texts + [a.text() for a in listed.actions()]


def test_a_registered_format_is_in_the_export_menu(
    qtbot: QtBot, known: Known, tmp_path: Path
) -> None:
    def writer(db: Database, ids: Sequence[str], target: ExportTarget, progress: Progress) -> None:
        for done, sid in enumerate(ids, 1):
            with target.open_text(f"{sid}.txt") as out:
                out.write(sid)
            progress(done, len(ids))

    register_export("plain", "Plain text", ".txt", writer, short="Text…")
    try:
        window = open_review(qtbot, known, "chen", tmp_path)
        texts = menu_texts(window, "Export")
        assert "Export PLAIN…" in texts and "PLAIN into a folder…" in texts
        assert "Export JSON…" in texts and "Export FHIR…" in texts
        folder = tmp_path / "plain"
        window.export_listed("plain", str(folder))
        qtbot.waitUntil(lambda: window.exports_pending == 0, timeout=15000)
        listed = [row.session_id for row in window.rows]
        assert sorted(p.name for p in folder.iterdir()) == sorted(f"{s}.txt" for s in listed)
        # one audit entry per session that left, naming the format and the folder
        assert export_audits(known) == [
            (sid, {"format": "plain", "file": str(folder)}) for sid in listed
        ]
        window.close()
    finally:
        unregister_export("plain")


def test_exporting_the_listed_sessions_shows_progress_and_cancel_writes_nothing(
    qtbot: QtBot, known: Known, tmp_path: Path
) -> None:
    first_done = threading.Event()
    go_on = threading.Event()

    def slow_writer(
        db: Database, ids: Sequence[str], target: ExportTarget, progress: Progress
    ) -> None:
        for done, sid in enumerate(ids, 1):
            with target.open_text(f"{sid}.txt") as out:
                out.write(sid)
            progress(done, len(ids))
            first_done.set()
            go_on.wait(15)

    register_export("slow", "Slow text", ".txt", slow_writer)
    try:
        window = open_review(qtbot, known, "chen", tmp_path)
        assert len(window.rows) > 1
        folder = tmp_path / "slow"
        window.export_listed("slow", str(folder))
        qtbot.waitUntil(first_done.is_set, timeout=15000)
        dialog = window.findChild(QProgressDialog, "ExportProgress")
        assert dialog is not None and dialog.maximum() == len(window.rows)
        qtbot.waitUntil(lambda: dialog.value() == 1, timeout=15000)
        (cancel,) = dialog.findChildren(QPushButton)
        assert cancel.text() == "Cancel"
        cancel.click()
        go_on.set()
        qtbot.waitUntil(lambda: window.exports_pending == 0, timeout=15000)
        assert window.message_text() == "The Slow text export was cancelled; nothing was written."
        assert not folder.exists()  # the folder it created is gone with the staged files
        assert export_audits(known) == []
        window.close()
    finally:
        go_on.set()
        unregister_export("slow")


def test_listed_json_export_writes_one_document_per_session(
    qtbot: QtBot, known: Known, tmp_path: Path
) -> None:
    window = open_review(qtbot, known, "chen", tmp_path)
    folder = tmp_path / "json"
    window.export_listed("json", str(folder))
    qtbot.waitUntil(lambda: window.exports_pending == 0, timeout=30000)
    assert window.message_text() == ""
    listed = [row.session_id for row in window.rows]
    assert sorted(p.stem for p in folder.iterdir()) == sorted(listed)
    assert [sid for sid, _detail in export_audits(known)] == listed
    window.close()
