"""The review window driven as a supervisor uses it: filter the archive, open a session, read it.

The archive is the known one of ``tests/store/test_archive.py`` (four sessions with hand-checked
numbers), built through the real store. Each test asserts on what the window shows and what the
database holds; results from the archive worker are awaited, never timed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from PySide6.QtCore import QDate, QPoint, Qt
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.records import VitalSigns
from kapmonitor.domain.session_rows import VitalsRow
from kapmonitor.settings import LARGE_TYPE, NIGHT_MODE, Settings
from kapmonitor.store.accounts import AccessRefused, Accounts, User
from kapmonitor.store.signoff import Review
from kapmonitor.ui.review.review_window import ReviewWindow
from tests.store.test_archive import Known, build_known_archive
from tests.ui.window_driver import drive, type_into


@pytest.fixture
def known(tmp_path: Path) -> Iterator[Known]:
    built = build_known_archive(tmp_path / "archive.sqlite")
    yield built
    built.store.close()


def account(known: Known, username: str) -> User:
    found = Accounts(known.store.db, known.clock).find(username)
    assert found is not None
    return found


def open_review(qtbot: QtBot, known: Known, username: str, tmp_path: Path) -> ReviewWindow:
    window = ReviewWindow(known.store, account(known, username), known.clock, Settings(tmp_path))
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitExposed(window)
    settle(qtbot, window)
    return window


def settle(qtbot: QtBot, window: ReviewWindow) -> None:
    """Wait until the list on screen answers the latest filter (no timing asserted)."""
    qtbot.waitUntil(
        lambda: (
            not window._debounce.isActive() and window.shown_request == window.worker.latest("list")
        ),
        timeout=15000,
    )


def shown_sessions(window: ReviewWindow) -> set[str]:
    table = window.table
    return {table.session_at(r) for r in range(table.proxy.rowCount())}  # type: ignore[misc]


def open_session(qtbot: QtBot, window: ReviewWindow, session_id: str) -> None:
    """Pick the session with the keyboard: into the list, Home, ↓ until it is current, Enter."""
    table = window.table
    table.setFocus()
    assert table.current_session() is not None, "arriving by keyboard selects a row"
    qtbot.keyClick(table, Qt.Key.Key_Home)
    for _ in range(table.proxy.rowCount()):
        if table.current_session() == session_id:
            break
        qtbot.keyClick(table, Qt.Key.Key_Down)
    assert table.current_session() == session_id
    qtbot.keyClick(table, Qt.Key.Key_Return)
    assert window.detail.log is not None and window.detail.log.id == session_id


@pytest.fixture
def supervisor_window(qtbot: QtBot, known: Known, tmp_path: Path) -> ReviewWindow:
    return open_review(qtbot, known, "chen", tmp_path)


# --- the archive list ---------------------------------------------------------------------


def test_every_session_is_listed_newest_first_with_the_summary_line(
    supervisor_window: ReviewWindow, known: Known
) -> None:
    window = supervisor_window
    assert window.table.shown_texts(0) == ["KAP-0002", "KAP-0001", "KAP-0001", "KAP-0003"]
    assert window.counts_label.text() == (
        "4 sessions · 2 with adverse effects · 2 with alarms · 3 unsigned · 1 still open"
    )
    statuses = dict(zip(window.table.shown_texts(0), window.table.shown_texts(2), strict=False))
    assert statuses["KAP-0003"] == "● Ended — not signed"
    assert window.table.shown_texts(2)[0] == "○ Open"
    assert window.table.shown_texts(2)[1] == "✔ Signed"
    assert window.table.shown_texts(8)[0] == "2 (⚠ 2 unanswered)"
    assert window.table.shown_texts(9)[1] == "Dr M. Chen"


def test_each_filter_narrows_the_list_and_the_counts_line(
    qtbot: QtBot, supervisor_window: ReviewWindow, known: Known
) -> None:
    window = supervisor_window

    def check(expected: str, counts: str | None = None) -> None:
        settle(qtbot, window)
        assert shown_sessions(window) == {getattr(known, letter) for letter in expected}
        if counts is not None:
            assert window.counts_label.text() == counts

    type_into(qtbot, window.patient_filter, "kap-0001")
    check("ab", "2 sessions · 1 with adverse effects · 1 with alarms · 1 unsigned")
    window.clear_filters()
    check("abcd")

    type_into(qtbot, window.clinician_filter, "BRIAIN")
    check("d", "1 session · 0 with adverse effects · 0 with alarms · 1 unsigned")
    window.clinician_filter.clear()
    check("abcd")

    index = window.protocol_filter.findData("esketamine-rems")
    assert index > 0, "the protocols in use are offered"
    window.protocol_filter.setCurrentIndex(index)
    check("c", "1 session · 1 with adverse effects · 1 with alarms · 1 unsigned · 1 still open")
    window.protocol_filter.setCurrentIndex(0)

    for status, expected in (("open", "c"), ("ended", "abd"), ("signed", "b"), ("unsigned", "acd")):
        window.status_filter.setCurrentIndex(window.status_filter.findData(status))
        check(expected)
    window.status_filter.setCurrentIndex(0)
    check("abcd")

    for box, expected in (
        (window.ae_filter, "ac"),
        (window.alarm_filter, "ac"),
        (window.unsigned_filter, "acd"),
    ):
        box.setFocus()
        qtbot.keyClick(box, Qt.Key.Key_Space)
        check(expected)
        qtbot.keyClick(box, Qt.Key.Key_Space)
        check("abcd")

    window.ae_filter.setChecked(True)
    window.unsigned_filter.setChecked(True)
    check("ac", "2 sessions · 2 with adverse effects · 2 with alarms · 2 unsigned · 1 still open")
    window.clear_filters()

    window.date_from.setDate(QDate(2026, 3, 2))
    window.date_to.setDate(QDate(2026, 3, 9))
    check("ab")
    assert window.current_filter().date_from == date(2026, 3, 2)
    window.date_to.setDate(window.date_to.minimumDate())  # shown as "any"
    check("abc")
    assert window.date_to.text() == "any" and window.current_filter().date_to is None

    window.clear_filters()
    check("abcd", "4 sessions · 2 with adverse effects · 2 with alarms · 3 unsigned · 1 still open")


def test_sorting_by_a_column_heading(
    qtbot: QtBot, supervisor_window: ReviewWindow, known: Known
) -> None:
    window = supervisor_window
    header = window.table.horizontalHeader()
    alarms_column = 8

    def click_heading() -> list[str]:
        x = header.sectionViewportPosition(alarms_column) + header.sectionSize(alarms_column) // 2
        qtbot.mouseClick(
            header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, header.height() // 2)
        )
        return window.table.shown_texts(alarms_column)

    first, second = click_heading(), click_heading()
    orders = {tuple(first), tuple(second)}
    assert ("—", "—", "1", "2 (⚠ 2 unanswered)") in orders
    assert ("2 (⚠ 2 unanswered)", "1", "—", "—") in orders


# --- reading one session -------------------------------------------------------------------


def test_opening_a_session_shows_its_header_chart_and_tabs(
    qtbot: QtBot, supervisor_window: ReviewWindow, known: Known
) -> None:
    window = supervisor_window
    open_session(qtbot, window, known.a)
    detail = window.detail
    assert detail.patient_label.text() == "KAP-0001"
    assert detail.details_label.text() == ("41 y · Female · 70 kg · Treatment-resistant depression")
    assert "Clinicians: Dr Zoë Adams, Nurse Bo" in detail.people_label.text()
    assert "Clinic default: racemic ketamine" in detail.people_label.text()
    assert "duration 1:00:00" in detail.times_label.text()
    assert "dose 70 mg (1.00 mg/kg)" in detail.times_label.text()
    assert detail.signature_label.text() == "Status: Ended — not signed · Not signed"
    # The chart holds the session's readings, replayed from the store.
    assert detail.chart.point_count("sbp") == 3
    assert detail.chart.series_xy("sbp")[1].tolist() == [120.0, 150.0, 185.0]
    kinds = [kind for _x, kind, _label in detail.chart.markers()]
    assert kinds.count("dose") == 1 and kinds.count("alarm") == 1 and "adverse" in kinds
    assert detail.chart.thresholds(), "the protocol's alarm limits are drawn"
    # Enter moved to the timeline.
    assert detail.tabs.currentIndex() == detail.tab_index("Timeline")
    assert detail.timeline.hasFocus()
    assert detail.tab_title("Vitals") == "Vitals (3)"
    vitals = detail.tab_records("Vitals")
    assert [r["BP"] for r in vitals] == ["120/80", "150/90", "185/100"]
    assert all(r["NEWS2 (info)"] for r in vitals), "each set shows its NEWS2"
    (alarm,) = detail.tab_records("Alarms")
    assert alarm["Priority"] == "▲ CRITICAL" and alarm["Response"] == "Re-measured"
    assert alarm["Acknowledged by"].startswith("Dr Zoë Adams at ")
    (effect,) = detail.tab_records("Adverse effects")
    assert effect["Adverse effect"] == "Nausea" and effect["Outcome"] == "⚠ no outcome recorded"
    flags = detail.tab_records("Quality flags")
    assert any(r["Flag"] == "Missed check" for r in flags)
    assert any(r["Flag"] == "Unresolved adverse effect" for r in flags)
    (questionnaire, *_) = detail.tab_records("Questionnaires")
    assert (questionnaire["Questionnaire"], questionnaire["Timing"], questionnaire["Total"]) == (
        "PHQ9",
        "before",
        "15",
    )
    assert detail.tab_records("REMS") == [
        {"Field": "REMS form", "Value": "Applies to esketamine REMS sessions only"}
    ]
    assert detail.tab_records("Discharge")[0]["What"] == "Session end"


def test_the_timeline_shows_each_correction_beside_what_it_corrects(
    qtbot: QtBot, supervisor_window: ReviewWindow, known: Known
) -> None:
    window = supervisor_window
    open_session(qtbot, window, known.c)
    rows = window.detail.tab_records("Timeline")
    corrected = next(i for i, r in enumerate(rows) if r["Details"].startswith("BP 200/88"))
    correction = rows[corrected + 1]
    assert rows[corrected]["Status"] == f"superseded by {correction['Entry'].split()[0]}"
    assert correction["Details"].startswith("BP 150/88")
    assert correction["Status"] == (
        f"corrects {rows[corrected]['Entry'].split()[0]}: typed 200 for 150"
    )
    assert correction["By"] == "Dr Cruz" and correction["Recorded"].startswith("2026-03-10")
    withdrawn = next(i for i, r in enumerate(rows) if r["Status"].startswith("withdraws"))
    assert rows[withdrawn]["Details"].startswith("[withdrawn] BP 210/90")
    assert rows[withdrawn - 1]["Status"].startswith("superseded by")
    assert rows[withdrawn]["Status"].endswith(": other patient")
    # The chart and the tabs show current values only: 130, 140, then the corrected 150.
    assert window.detail.chart.series_xy("sbp")[1].tolist() == [130.0, 140.0, 150.0]
    assert window.detail.tab_title("Alarms") == "Alarms (2, ⚠ 2 unanswered)"
    alarms = window.detail.tab_records("Alarms")
    assert all(r["Response"] == "⚠ NOT ACKNOWLEDGED" for r in alarms)
    rems = window.detail.tab_records("REMS")
    assert rems[0]["Field"] == "Summary" and "need completing" in rems[0]["Value"]
    assert any(r["Value"].startswith("⚠ Not in the log") for r in rems)
    assert {"Field": "Dose", "Value": "56 mg"} in rems


def test_selection_follows_the_list_and_survives_a_refresh(
    qtbot: QtBot, supervisor_window: ReviewWindow, known: Known
) -> None:
    window = supervisor_window
    window.table.select_session(known.d)
    assert window.detail.patient_label.text() == "KAP-0003"
    number = window.refresh()
    qtbot.waitUntil(lambda: window.shown_request == number, timeout=15000)
    assert window.table.current_session() == known.d
    type_into(qtbot, window.patient_filter, "KAP-0001")  # filters it out
    settle(qtbot, window)
    assert window.detail.log is None and not window.actions_by_name["sign"].isEnabled()


# --- amendments ----------------------------------------------------------------------------


def test_a_clinician_amends_their_own_entry_before_sign_off(
    qtbot: QtBot, known: Known, tmp_path: Path
) -> None:
    window = open_review(qtbot, known, "adams", tmp_path)
    assert not window.actions_by_name["sign"].isEnabled()
    assert not window.actions_by_name["comment"].isEnabled()
    open_session(qtbot, window, known.a)
    vitals = known.log(known.a).current("vitals")
    original = vitals[1]  # 150/90 at 10 min, recorded by Dr Zoë Adams
    assert window.detail.select_entry("vitals", original.id)

    def amend(dialog: QWidget) -> None:
        assert dialog.windowTitle() == "Correct vital signs"
        dialog.bp.clear()
        qtbot.keyClicks(dialog.bp, "145/90")
        type_into(qtbot, dialog.reason_edit, "misread the monitor")
        qtbot.keyClick(dialog.reason_edit, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_E, amend, Qt.KeyboardModifier.ControlModifier)
    rows = known.log(known.a).rows["vitals"]
    correction = next(r for r in rows if r.supersedes_id == original.id)
    assert isinstance(correction, VitalsRow)
    assert (correction.sbp, correction.recorded_by) == (145, "Dr Zoë Adams")
    assert correction.correction_reason == "misread the monitor"
    assert any(r.id == original.id for r in rows), "the original stays"
    timeline = window.detail.tab_records("Timeline")
    at = next(i for i, r in enumerate(timeline) if r["Entry"] == f"#{original.id} Vitals")
    assert timeline[at + 1]["Status"].startswith(f"corrects #{original.id}: misread the monitor")
    assert window.detail.chart.series_xy("sbp")[1].tolist() == [120.0, 145.0, 185.0]


def test_amending_someone_elses_entry_is_refused_in_the_window_and_the_store(
    qtbot: QtBot, supervisor_window: ReviewWindow, known: Known
) -> None:
    window = supervisor_window
    open_session(qtbot, window, known.a)
    entry = known.log(known.a).current("vitals")[0]
    window.detail.select_entry("vitals", entry.id)
    window.amend_selected()
    assert "Only Dr Zoë Adams, who recorded this entry, can amend it" in window.message_text()
    review = Review(known.store)
    chen = account(known, "chen")
    with pytest.raises(AccessRefused, match="Only Dr Zoë Adams"):
        review.amend(known.a, chen, entry.id, VitalSigns(known.clock.now(), hr=70), "tidy up")
    refused = known.store.db.execute(
        "SELECT detail FROM audit WHERE action = 'refused' AND actor = 'chen'"
    ).fetchall()
    assert any("amend another clinician's entry" in d for (d,) in refused)
    window.detail.timeline.clearSelection()
    window.amend_selected()
    assert window.message_text() == "Select the entry to amend in the Timeline tab first."


# --- exports -----------------------------------------------------------------------------


def test_export_json_runs_on_the_worker_and_is_audited(
    qtbot: QtBot, supervisor_window: ReviewWindow, known: Known, tmp_path: Path
) -> None:
    window = supervisor_window
    open_session(qtbot, window, known.b)
    out = tmp_path / "b.json"
    window.export("json", str(out))
    qtbot.waitUntil(lambda: window.exports_pending == 0, timeout=15000)
    assert window.message_text() == ""
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["session"]["patient_code"] == "KAP-0001"
    (detail,) = known.store.db.execute(
        "SELECT detail FROM audit WHERE action = 'export' AND actor = 'chen' AND session_id = ?",
        [known.b],
    ).fetchone()
    assert json.loads(detail) == {"format": "json", "file": str(out)}


def test_an_export_that_cannot_be_written_is_said_plainly(
    qtbot: QtBot, supervisor_window: ReviewWindow, known: Known, tmp_path: Path
) -> None:
    window = supervisor_window
    open_session(qtbot, window, known.a)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file, not a folder")
    window.export("json", str(blocker / "a.json"))
    qtbot.waitUntil(lambda: window.exports_pending == 0, timeout=15000)
    message = window.message_text()
    assert message.startswith("The JSON document was not written to")
    assert "Traceback" not in message
    assert not known.store.db.execute("SELECT 1 FROM audit WHERE action = 'export'").fetchone()


def test_export_pdf_csv_and_fhir(
    qtbot: QtBot, supervisor_window: ReviewWindow, known: Known, tmp_path: Path
) -> None:
    window = supervisor_window
    open_session(qtbot, window, known.b)
    targets = {
        "pdf": tmp_path / "b.pdf",
        "csv": tmp_path / "csv",
        "fhir": tmp_path / "b.fhir.json",
    }
    for fmt, target in targets.items():
        window.export(fmt, str(target))
        qtbot.waitUntil(lambda: window.exports_pending == 0, timeout=30000)
        assert window.message_text() == "", fmt
    assert targets["pdf"].read_bytes().startswith(b"%PDF")
    assert (targets["csv"] / "sessions.csv").exists()
    assert json.loads(targets["fhir"].read_text(encoding="utf-8"))["resourceType"] == "Bundle"
    formats = {
        json.loads(d)["format"]
        for (d,) in known.store.db.execute("SELECT detail FROM audit WHERE action = 'export'")
    }
    assert formats == {"pdf", "csv", "fhir"}


# --- view --------------------------------------------------------------------------------


def test_night_mode_and_large_type_apply_and_are_remembered(
    qtbot: QtBot, supervisor_window: ReviewWindow, known: Known, tmp_path: Path
) -> None:
    window = supervisor_window
    open_session(qtbot, window, known.a)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=2000)
    qtbot.keyClick(window, Qt.Key.Key_F8)
    qtbot.keyClick(window, Qt.Key.Key_F9)
    assert window.detail.chart.night and window.detail.chart.large_type
    settings = Settings(tmp_path)
    assert settings.get(NIGHT_MODE) and settings.get(LARGE_TYPE)
    window.night_action.setChecked(False)
    window.large_action.setChecked(False)
    assert not window.detail.chart.night and not window.detail.chart.large_type
