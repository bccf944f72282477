"""The dashboard and a patient's series show the known archive's numbers; the worker is honest.

The plots are read back (bar lengths, marker positions), so the test checks what is drawn, not
only what was computed. The archive worker is checked on its own: each job gets its own
connection, a newer request makes an older result stale, and a failure comes back as a sentence.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from kapmonitor.settings import Settings
from kapmonitor.store import archive
from kapmonitor.store.database import StoreError
from kapmonitor.ui.review.archive_worker import ArchiveWorker
from kapmonitor.ui.review.dashboard_window import DashboardWindow
from kapmonitor.ui.review.patient_series_view import PatientSeriesView
from tests.store.test_archive import Known, build_known_archive
from tests.ui.test_review_window import open_review, open_session


@pytest.fixture
def known(tmp_path: Path) -> Iterator[Known]:
    built = build_known_archive(tmp_path / "archive.sqlite")
    yield built
    built.store.close()


def test_the_dashboard_opens_from_the_review_window_with_the_known_numbers(
    qtbot: QtBot, known: Known, tmp_path: Path
) -> None:
    window = open_review(qtbot, known, "chen", tmp_path)
    qtbot.keyClick(window, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    board = window.child_windows[-1]
    assert isinstance(board, DashboardWindow)
    qtbot.waitUntil(lambda: board.loaded, timeout=15000)
    assert board.period.currentText() == "Last 90 days"
    assert board.summary.text().startswith(
        "Last 90 days: 4 sessions · 2 with adverse effects (50 %) · alarms per session 0.75 "
        "(2 unanswered)"
    )
    assert board.incidence_bars() == [("Nausea", 50.0), ("Dizziness", 25.0)]
    # First dose mg/kg against the peak systolic rise: A 1.0/+65, B 0.5/+12, C 0.7/+20, D 1.2/+6.
    assert board.dose_points() == [(0.5, 12.0), (0.7, 20.0), (1.0, 65.0), (1.2, 6.0)]
    assert set(board.dose_scatter) == {"ketamine", "esketamine"}, "one marker shape per drug"
    # Sessions with 0, 1, 2 … alarms: B and D none, A one, C two.
    assert board.alarm_histogram()[:3] == [2, 1, 1]
    expected = archive.dashboard(known.store.db, now=known.clock.now())
    assert sorted(board.missed_points()) == sorted(
        (c.started_at.timestamp(), float(c.value)) for c in expected.missed_checks
    )
    assert f"missed checks per session {expected.mean('missed_checks'):.2f}" in (
        board.summary.text()
    )
    board.close()


def test_the_period_chooser_narrows_the_dashboard(
    qtbot: QtBot, known: Known, tmp_path: Path
) -> None:
    board = DashboardWindow(known.path, known.clock, Settings(tmp_path))
    qtbot.addWidget(board)
    board.show()
    qtbot.waitUntil(lambda: board.loaded, timeout=15000)
    board.period.setCurrentIndex(0)  # last 30 days: D (forty days earlier) drops out
    qtbot.waitUntil(lambda: board.loaded, timeout=15000)
    assert board.summary.text().startswith("Last 30 days: 3 sessions")
    assert [(label, round(p, 1)) for label, p in board.incidence_bars()] == [
        ("Nausea", 66.7),
        ("Dizziness", 33.3),
    ]
    assert board.dose_points() == [(0.5, 12.0), (0.7, 20.0), (1.0, 65.0)]
    assert board.alarm_histogram()[:3] == [1, 1, 1]
    board.period.setCurrentIndex(3)  # all sessions
    qtbot.waitUntil(lambda: board.loaded, timeout=15000)
    assert board.summary.text().startswith("All sessions: 4 sessions")


def test_the_patient_series_of_the_selected_session(
    qtbot: QtBot, known: Known, tmp_path: Path
) -> None:
    window = open_review(qtbot, known, "chen", tmp_path)
    open_session(qtbot, window, known.a)
    qtbot.keyClick(window, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    series = window.child_windows[-1]
    assert isinstance(series, PatientSeriesView)
    qtbot.waitUntil(lambda: series.loaded, timeout=15000)
    a_x = known.log(known.a).started_at().timestamp()
    b_x = known.log(known.b).started_at().timestamp()
    assert series.title.text() == "Patient KAP-0001 — 2 sessions"
    assert series.dose_points() == [(a_x, 1.0), (b_x, 0.5)]
    assert series.phq9_points() == [(a_x, 15.0), (b_x, 10.0)]
    assert series.peak_points() == [(a_x, 185.0), (b_x, 130.0)]
    assert series.baseline_points() == [(a_x, 120.0), (b_x, 118.0)]
    assert series.adverse_labels == [(a_x, "⚑ Nausea")]
    assert "PHQ-9 15 → 10 (-5)" in series.summary.text()
    rows = series.table.records()
    shown = ("Dose", "mg/kg", "PHQ-9 before", "SBP before → peak", "Adverse effects")
    assert [[r[column] for column in shown] for r in rows] == [
        ["70 mg", "1.00", "15 (moderate)", "120 → 185 (+65)", "Nausea"],
        ["35 mg", "0.50", "10 (mild)", "118 → 130 (+12)", "none"],
    ]
    assert [r["Status"] for r in rows] == ["ended, not signed", "signed"]


def test_a_patient_with_no_sessions_says_so(qtbot: QtBot, known: Known, tmp_path: Path) -> None:
    view = PatientSeriesView(known.path, "KAP-9999", known.clock, Settings(tmp_path))
    qtbot.addWidget(view)
    view.show()
    qtbot.waitUntil(lambda: view.loaded, timeout=15000)
    assert view.summary.text() == "No sessions with this patient code."
    assert view.dose_points() == [] and view.table.rows == []


# --- the worker ---------------------------------------------------------------------------


def test_each_job_gets_its_own_read_only_connection(qtbot: QtBot, known: Known) -> None:
    worker = ArchiveWorker(known.path)
    seen: dict[str, object] = {}

    def job(db):
        seen["same"] = db.conn is known.store.db.conn
        seen["thread"] = threading.current_thread() is threading.main_thread()
        seen["query_only"] = db.execute("PRAGMA query_only").fetchone()[0]
        return len(archive.list_sessions(db))

    with qtbot.waitSignal(worker.finished, timeout=15000) as done:
        worker.submit("list", job)
    assert done.args[1:] == ["list", 4]
    assert seen == {"same": False, "thread": False, "query_only": 1}
    worker.shutdown()


def test_a_newer_request_makes_an_older_result_stale(qtbot: QtBot, known: Known) -> None:
    worker = ArchiveWorker(known.path, threads=2)
    release = threading.Event()
    delivered: list[tuple[int, str, object]] = []
    worker.finished.connect(lambda n, kind, result: delivered.append((n, kind, result)))

    def slow(_db):
        release.wait(30)
        return "old"

    old = worker.submit("list", slow)
    new = worker.submit("list", lambda _db: "new")
    qtbot.waitUntil(lambda: bool(delivered), timeout=15000)
    release.set()
    qtbot.waitUntil(lambda: worker.pending == 0, timeout=15000)
    assert delivered == [(new, "list", "new")] and old < new
    # An export keeps every result, even with a newer one of the same kind.
    first = worker.submit("export", lambda _db: 1, keep_all=True)
    second = worker.submit("export", lambda _db: 2, keep_all=True)
    qtbot.waitUntil(lambda: worker.pending == 0, timeout=15000)
    assert sorted(n for n, kind, _r in delivered if kind == "export") == [first, second]
    worker.shutdown()


def test_a_failed_job_comes_back_as_a_sentence(qtbot: QtBot, known: Known, tmp_path: Path) -> None:
    worker = ArchiveWorker(known.path)
    failures: list[str] = []
    worker.failed.connect(lambda _n, _kind, message: failures.append(message))

    def refused(_db):
        raise StoreError("The file is locked by another program; nothing was read.")

    def broken(_db):
        raise KeyError("protocol")

    worker.submit("a", refused)
    worker.submit("b", broken)
    qtbot.waitUntil(lambda: len(failures) == 2, timeout=15000)
    assert "The file is locked by another program; nothing was read." in failures
    assert any(m.startswith("Something unexpected went wrong (KeyError") for m in failures)
    assert not any("Traceback" in m for m in failures)
    worker.shutdown()

    missing = ArchiveWorker(tmp_path / "nowhere.sqlite")
    with qtbot.waitSignal(missing.failed, timeout=15000) as failed:
        missing.submit("list", lambda db: archive.list_sessions(db))
    assert "There is no database" in failed.args[2]
    missing.shutdown()
