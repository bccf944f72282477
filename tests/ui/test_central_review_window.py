"""The clinic archive window against a real PostgreSQL: two laptops synced, a supervisor lists,
filters, opens, exports and signs at the centre; the server stopped is a plain line.

The server and its fixtures are tests/network/conftest.py's (a real PostgreSQL started once per
test session, a fresh database per test)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import QApplication, QCheckBox, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.network import admin
from kapmonitor.network.sync import sync_once
from kapmonitor.settings import LARGE_TYPE, NIGHT_MODE, Settings
from kapmonitor.store import central_signatures
from kapmonitor.store.database import connect_readonly
from kapmonitor.ui.review.central_review_window import CentralReviewWindow
from kapmonitor.ui.review.sign_dialog import SignDialog
from tests.network.conftest import (  # noqa: F401  (fixtures: the real server)
    Archive,
    Laptop,
    _cheap_key_slots,
    archive,
    make_laptop,
    pg_server,
    record_demo_session,
)
from tests.ui.window_driver import drive

CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


class Clinic:
    """Two laptops, each with two recorded (ended) sessions, synced; a registered reviewer."""

    def __init__(self, central: Archive, tmp_path: Path) -> None:
        self.archive = central
        self.urls = {name: central.add_laptop(name) for name in ("room-1", "room-2")}
        self.laptops: dict[str, Laptop] = {}
        self.sessions: dict[str, list[str]] = {}
        for number, name in enumerate(self.urls, 1):
            laptop = self.laptops[name] = make_laptop(tmp_path / name, name)
            self.sessions[name] = []
            for seed in (number, number + 10):
                self.sessions[name].append(record_demo_session(laptop, seed))
                laptop.clock.advance(hours=3)
            sync_once(laptop.path, self.urls[name], laptop.keys)
        added = admin.add_reviewer(central.admin_url, "dr-lee", "Dr K. Lee", "supervisor")
        self.password = added.password
        self.reviewer_url = central.server.url(central.name, added.role, added.password)

    def sync(self, name: str) -> int:
        laptop = self.laptops[name]
        return sync_once(laptop.path, self.urls[name], laptop.keys).reviews_received


@pytest.fixture
def clinic(archive: Archive, tmp_path: Path) -> Clinic:  # noqa: F811
    return Clinic(archive, tmp_path)


@pytest.fixture
def window(qtbot: QtBot, clinic: Clinic, tmp_path: Path) -> Iterator[CentralReviewWindow]:
    opened = CentralReviewWindow(clinic.reviewer_url, Settings(tmp_path / "settings"))
    qtbot.addWidget(opened)
    opened.show()
    opened.activateWindow()
    qtbot.waitExposed(opened)
    settle(qtbot, opened)
    qtbot.waitUntil(lambda: opened.reviewer is not None, timeout=15000)
    yield opened
    opened.close()


def settle(qtbot: QtBot, window: CentralReviewWindow) -> None:
    """Until the list on screen answers the latest request (no timing asserted)."""
    qtbot.waitUntil(
        lambda: (
            not window._debounce.isActive() and window.shown_request == window.worker.latest("list")
        ),
        timeout=15000,
    )


def listed(window: CentralReviewWindow) -> list[tuple[str, str]]:
    table = window.table
    return [table.session_at(r) for r in range(table.proxy.rowCount())]  # type: ignore[misc]


def column(window: CentralReviewWindow, title: str) -> list[str]:
    number = window.table.source.COLUMNS.index(title)
    return window.table.shown_texts(number)


def open_by_keyboard(qtbot: QtBot, window: CentralReviewWindow, key: tuple[str, str]) -> None:
    """Into the list, Home, ↓ until the session is current, Enter; wait for it to arrive."""
    table = window.table
    table.setFocus()
    qtbot.keyClick(table, Qt.Key.Key_Home)
    for _ in range(table.proxy.rowCount()):
        if table.current_session() == key:
            break
        qtbot.keyClick(table, Qt.Key.Key_Down)
    assert table.current_session() == key
    qtbot.keyClick(table, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.opened is not None and window.opened.key == key, timeout=15000)


def test_the_archive_lists_both_laptops_a_filter_narrows_and_a_session_opens(
    qtbot: QtBot, clinic: Clinic, window: CentralReviewWindow
) -> None:
    every = {(lap, sid) for lap, ids in clinic.sessions.items() for sid in ids}
    assert set(listed(window)) == every
    assert sorted(set(column(window, "Laptop"))) == ["room-1", "room-2"]
    assert window.counts_label.text().startswith("4 sessions · ")

    # The laptop chooser (filled from the server) narrows to one laptop's sessions.
    qtbot.waitUntil(lambda: window.laptop_filter.findData("room-2") >= 0, timeout=15000)
    window.laptop_filter.setCurrentIndex(window.laptop_filter.findData("room-2"))
    settle(qtbot, window)
    assert set(listed(window)) == {("room-2", sid) for sid in clinic.sessions["room-2"]}
    assert window.counts_label.text().startswith("2 sessions · ")

    # A patient code typed in the filter: any part, ignoring case, as the laptop's review.
    key = ("room-2", clinic.sessions["room-2"][0])
    code = next(r.patient_code for r in window.rows if (r.laptop_id, r.session_id) == key)
    window.patient_filter.setFocus()
    qtbot.keyClicks(window.patient_filter, code.lower())
    settle(qtbot, window)
    assert key in listed(window)
    assert all(text == code for text in column(window, "Patient"))

    open_by_keyboard(qtbot, window, key)
    detail = window.detail
    assert detail is not None and detail.log is not None and detail.log.id == key[1]
    assert window.windowTitle().startswith("Clinic archive — room-2")
    assert window.title_label.text().startswith(f"Clinic archive — room-2 · patient {code}")
    assert detail.tab_rows("Doses") and detail.tab_rows("Vitals")  # the report's sections
    assert detail.tab_rows("Timeline")
    assert detail.signature_label.text().startswith("Status: Ended — not signed")
    assert window.actions_by_name["sign"].isEnabled()
    assert not window.actions_by_name["addendum"].isEnabled()
    assert window.message_text() == ""

    # A filter that leaves the opened session out clears the pane, as the local review does.
    window.laptop_filter.setCurrentIndex(window.laptop_filter.findData("room-1"))
    settle(qtbot, window)
    assert window.opened is None and detail.log is None
    assert not window.actions_by_name["sign"].isEnabled()


def test_the_list_comes_a_page_at_a_time(
    qtbot: QtBot, clinic: Clinic, window: CentralReviewWindow
) -> None:
    every = listed(window)
    window.page_rows = 3
    window.refresh()
    settle(qtbot, window)
    assert listed(window) == every[:3]
    assert window.counts_label.text().startswith("4 sessions · ")
    assert window.counts_label.text().endswith("showing 3 of 4")
    assert window.more_button.isVisible()
    qtbot.mouseClick(window.more_button, Qt.MouseButton.LeftButton)
    settle(qtbot, window)
    assert listed(window) == every
    assert window.counts_label.text().endswith("showing 4 of 4")
    assert not window.more_button.isVisible()


def test_an_export_writes_the_file_and_is_recorded_at_the_archive(
    qtbot: QtBot, clinic: Clinic, window: CentralReviewWindow, tmp_path: Path
) -> None:
    key = ("room-1", clinic.sessions["room-1"][1])
    open_by_keyboard(qtbot, window, key)
    out = tmp_path / "out" / "session.json"
    out.parent.mkdir()
    assert window.export("json", str(out)) is not None
    qtbot.waitUntil(lambda: window.exports_pending == 0, timeout=30000)
    assert window.message_text() == ""
    document = json.loads(out.read_text())
    assert key[1] in json.dumps(document)
    rows = clinic.archive.query("SELECT format, destination, sessions FROM kap.central_exports")
    assert rows == [("json", str(out), [f"room-1/{key[1]}"])]
    # The report, from the same copy: a PDF, recorded too.
    pdf = tmp_path / "out" / "session.pdf"
    assert window.export("pdf", str(pdf)) is not None
    qtbot.waitUntil(lambda: window.exports_pending == 0, timeout=60000)
    assert window.message_text() == ""
    assert pdf.read_bytes().startswith(b"%PDF")
    assert [r[0] for r in clinic.archive.query("SELECT format FROM kap.central_exports")] == [
        "json",
        "pdf",
    ]


def test_the_listed_sessions_export_into_a_folder_per_laptop_recorded_once(
    qtbot: QtBot, clinic: Clinic, window: CentralReviewWindow, tmp_path: Path
) -> None:
    action = window.actions_by_name["export_listed_json"]
    assert action.isEnabled()
    out = tmp_path / "listed"
    out.mkdir()
    assert window.export_listed("json", str(out)) is not None
    assert window.findChild(QWidget, "ExportProgress") is not None
    qtbot.waitUntil(lambda: window.exports_pending == 0, timeout=60000)
    assert window.message_text() == ""
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.json"))
    assert written == sorted(
        f"{lap}/{sid}.json" for lap, ids in clinic.sessions.items() for sid in ids
    )
    ((fmt, destination, sessions),) = clinic.archive.query(
        "SELECT format, destination, sessions FROM kap.central_exports"
    )
    assert (fmt, destination) == ("json", str(out))
    assert sorted(sessions) == sorted(  # type: ignore[arg-type]
        f"{lap}/{sid}" for lap, ids in clinic.sessions.items() for sid in ids
    )
    qtbot.waitUntil(lambda: window.findChild(QWidget, "ExportProgress") is None, timeout=5000)


def test_an_export_that_cannot_be_written_leaves_no_file_and_says_so(
    qtbot: QtBot, clinic: Clinic, window: CentralReviewWindow, tmp_path: Path
) -> None:
    key = ("room-2", clinic.sessions["room-2"][0])
    open_by_keyboard(qtbot, window, key)
    out = tmp_path / "no-such-folder" / "deeper" / "session.json"
    assert window.export("json", str(out)) is not None
    qtbot.waitUntil(lambda: window.exports_pending == 0, timeout=30000)
    assert window.message_text().startswith("The export was not written: ")
    assert "Traceback" not in window.message_text()
    assert not out.exists()
    assert clinic.archive.query("SELECT count(*) FROM kap.central_exports") == [(0,)]


def tick(qtbot: QtBot, dialog: SignDialog, box: QCheckBox) -> None:
    dialog.show_flag(box)
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))
    assert box.isChecked()


def central_rows(clinic: Clinic) -> list[tuple[object, ...]]:
    return clinic.archive.query(
        "SELECT laptop_id, session_id, kind, printed_name FROM kap.central_reviews ORDER BY id"
    )


def test_signing_at_the_centre_refuses_a_wrong_password_then_signs_and_flows_back(
    qtbot: QtBot, clinic: Clinic, window: CentralReviewWindow
) -> None:
    key = ("room-1", clinic.sessions["room-1"][0])
    open_by_keyboard(qtbot, window, key)

    def sign(dialog: QWidget) -> None:
        assert isinstance(dialog, SignDialog)
        assert "Dr K. Lee" in dialog.printed_name.text()
        assert dialog.focusWidget() is dialog.password
        for box in dialog.flag_boxes():
            tick(qtbot, dialog, box)
        qtbot.keyClicks(dialog.password, "not-the-password")
        qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
        assert dialog.isVisible(), "a wrong password signs nothing"
        assert "The password is not right for Dr K. Lee's signing key" in dialog.errors_text()
        assert "Traceback" not in dialog.errors_text()
        assert dialog.password.text() == ""
        assert central_rows(clinic) == []  # nothing stored
        qtbot.keyClicks(dialog.password, clinic.password)
        qtbot.keyClick(dialog.password, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_S, sign, CTRL_SHIFT)  # type: ignore[arg-type]
    assert central_rows(clinic) == [("room-1", key[1], "signature", "Dr K. Lee")]
    # The window re-reads the server: the opened session and the list say signed at the centre.
    qtbot.waitUntil(lambda: window.opened is not None and window.signed_centrally(), timeout=15000)
    settle(qtbot, window)
    header = window.detail.signature_label.text()  # type: ignore[union-attr]
    assert header.startswith("Status: Signed at the centre · Signed at the centre by Dr K. Lee")
    row = listed(window).index(key)
    assert column(window, "Status")[row] == "✔ Signed"
    assert column(window, "Signed by")[row] == "Dr K. Lee (at the centre)"
    assert not window.actions_by_name["sign"].isEnabled()
    assert not window.actions_by_name["comment"].isEnabled()
    assert window.actions_by_name["addendum"].isEnabled()

    # The originating laptop's next sync brings it back, checked against its own record.
    assert clinic.sync("room-1") == 1
    assert clinic.sync("room-2") == 0
    laptop = clinic.laptops["room-1"]
    db = connect_readonly(laptop.path, laptop.keys)
    try:
        text = central_signatures.central_text(db, key[1])
        assert "Signed at the centre by Dr K. Lee, supervisor" in text
        assert "(verified: matches this laptop's record)" in text
    finally:
        db.close()


def test_a_session_signed_meanwhile_by_someone_else_is_refused_in_the_dialog(
    qtbot: QtBot, clinic: Clinic, window: CentralReviewWindow
) -> None:
    from kapmonitor.network.central_review import sign_centrally

    key = ("room-2", clinic.sessions["room-2"][0])
    open_by_keyboard(qtbot, window, key)
    sign_centrally(clinic.reviewer_url, *key, clinic.password, "reviewed with comments")
    assert window.actions_by_name["sign"].isEnabled()  # the window has not re-read it yet

    def sign(dialog: QWidget) -> None:
        assert isinstance(dialog, SignDialog)
        for box in dialog.flag_boxes():
            tick(qtbot, dialog, box)
        qtbot.keyClicks(dialog.password, clinic.password)
        qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
        assert dialog.isVisible()
        assert dialog.errors_text().startswith("Not signed. The session is already signed (at")
        assert "nothing was signed" in dialog.errors_text()
        dialog.reject()

    drive(qtbot, window, Qt.Key.Key_S, sign, CTRL_SHIFT)  # type: ignore[arg-type]
    assert [r[2] for r in central_rows(clinic)] == ["signature"]  # the other one, only


def test_a_comment_then_an_addendum_at_the_centre(
    qtbot: QtBot, clinic: Clinic, window: CentralReviewWindow
) -> None:
    key = ("room-2", clinic.sessions["room-2"][1])
    open_by_keyboard(qtbot, window, key)

    def comment(dialog: QWidget) -> None:
        qtbot.keyClicks(dialog.text, "Escort noted; BP handled well.")  # type: ignore[attr-defined]
        qtbot.keyClick(dialog.text, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)  # type: ignore[attr-defined]

    drive(qtbot, window, Qt.Key.Key_M, comment, Qt.KeyboardModifier.ControlModifier)  # type: ignore[arg-type]
    assert central_rows(clinic) == [("room-2", key[1], "comment", "Dr K. Lee")]
    qtbot.waitUntil(lambda: "Escort noted" in window.centre_label.text(), timeout=15000)
    assert window.centre_label.text().startswith("Comment at the centre by Dr K. Lee")

    # An addendum before sign-off: offered only after; the server refuses it anyway, and the
    # refusal is said in the dialog with the text kept.
    assert not window.actions_by_name["addendum"].isEnabled()
    from kapmonitor.network.central_review import addendum_centrally, sign_centrally
    from kapmonitor.network.connection import NetworkError

    with pytest.raises(NetworkError, match="An addendum is for a signed session"):
        addendum_centrally(clinic.reviewer_url, *key, "too early")
    sign_centrally(clinic.reviewer_url, *key, clinic.password)
    window.open_session(key)
    qtbot.waitUntil(lambda: window.actions_by_name["addendum"].isEnabled(), timeout=15000)

    def addendum(dialog: QWidget) -> None:
        qtbot.keyClicks(dialog.text, "Follow-up call done.")  # type: ignore[attr-defined]
        qtbot.keyClick(dialog.text, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)  # type: ignore[attr-defined]

    drive(qtbot, window, Qt.Key.Key_A, addendum, CTRL_SHIFT)  # type: ignore[arg-type]
    assert [r[2] for r in central_rows(clinic)] == ["comment", "signature", "addendum"]
    qtbot.waitUntil(lambda: "Follow-up call done." in window.centre_label.text(), timeout=15000)
    # On the timeline too, at their time, as the local review places its own.
    timeline = window.detail.tab_records("Timeline")  # type: ignore[union-attr]
    centre = [(r["Entry"], r["Details"]) for r in timeline if "at the centre" in r["Details"]]
    assert [entry.split(" ", 1)[1] for entry, _ in centre] == [
        "Review comment",
        "Signature",
        "ADDENDUM",
    ]
    assert centre[0][1] == "at the centre: Escort noted; BP handled well."


def test_the_server_stopped_is_a_plain_line_and_the_list_keeps_what_it_knew(
    qtbot: QtBot, clinic: Clinic, window: CentralReviewWindow
) -> None:
    before = listed(window)
    assert len(before) == 4
    open_by_keyboard(qtbot, window, before[0])
    server = clinic.archive.server
    server.stop("immediate")
    try:
        window.refresh()
        settle(qtbot, window)
        line = window.message_text()
        assert line.startswith(f"The clinic server cannot be reached: {window.where} (")
        assert "The list shows what was known at " in line
        assert "Traceback" not in line and "rows wait on the laptop" not in line
        assert clinic.password not in line  # the address is shown without its password
        assert listed(window) == before  # what was known stays on screen
        assert "as known at" in window.counts_label.text()
        # Signing while the server is away: refused in the dialog, in words.
        dialog = window.sign_dialog()
        assert dialog is not None
        qtbot.addWidget(dialog)
        for box in dialog.flag_boxes():
            box.setChecked(True)
        dialog.password.setText(clinic.password)
        dialog.try_sign()
        assert dialog.saved_id is None
        assert dialog.errors_text().startswith("Not signed. The clinic server cannot be reached")
        assert clinic.password not in dialog.errors_text()
        dialog.reject()
        # Opening another session while the server is away: a plain line; the one open stays.
        window.open_session(before[1])
        qtbot.waitUntil(
            lambda: window.message_text().startswith("The session could not be opened"),
            timeout=15000,
        )
        assert window.opened is not None and window.opened.key == before[0]
        assert window.title_label.text().startswith(f"Clinic archive — {before[0][0]} · patient")
    finally:
        server.start()
    assert central_rows(clinic) == []
    window.refresh()
    settle(qtbot, window)
    assert window.message_text() == ""
    assert listed(window) == before


def test_a_window_opened_while_the_server_is_away_catches_up_when_it_is_back(
    qtbot: QtBot, clinic: Clinic, tmp_path: Path
) -> None:
    server = clinic.archive.server
    server.stop("immediate")
    try:
        opened = CentralReviewWindow(clinic.reviewer_url, Settings(tmp_path / "settings"))
        qtbot.addWidget(opened)
        opened.show()
        settle(qtbot, opened)
        qtbot.waitUntil(lambda: opened.worker.pending == 0, timeout=15000)
        assert opened.message_text().startswith("The clinic server cannot be reached")
        assert opened.reviewer is None and not opened.actions_by_name["sign"].isEnabled()
    finally:
        server.start()
    qtbot.keyClick(opened, Qt.Key.Key_F5)  # Refresh, as a person does
    settle(qtbot, opened)
    assert len(listed(opened)) == 4 and opened.message_text() == ""
    qtbot.waitUntil(lambda: opened.reviewer is not None, timeout=15000)
    qtbot.waitUntil(lambda: opened.laptop_filter.findData("room-2") >= 0, timeout=15000)
    open_by_keyboard(qtbot, opened, listed(opened)[0])
    assert opened.actions_by_name["sign"].isEnabled()
    opened.close()


def test_an_unreachable_server_at_the_start_says_so(qtbot: QtBot, tmp_path: Path) -> None:
    url = "postgresql://nobody@127.0.0.1:1/kapmonitor?connect_timeout=2"
    opened = CentralReviewWindow(url, Settings(tmp_path))
    qtbot.addWidget(opened)
    opened.show()
    settle(qtbot, opened)
    assert opened.message_text().startswith("The clinic server cannot be reached")
    assert opened.message_text().endswith("Nothing could be listed yet.")
    assert listed(opened) == []
    opened.close()


SCREEN = QRect(0, 0, 1280, 720)


def fits(window: QWidget, what: str) -> None:
    for _ in range(3):
        QApplication.processEvents()
    frame = window.frameGeometry()
    assert SCREEN.contains(frame), f"{what} at {frame.getRect()}"
    minimum = window.minimumSizeHint()
    assert minimum.width() <= SCREEN.width() and minimum.height() <= SCREEN.height(), (
        f"{what} needs {minimum.toTuple()}"
    )


# Day and normal type last: the window applies its look to the whole application.
@pytest.mark.parametrize(
    ("night", "large"), [(True, True), (False, True), (True, False), (False, False)]
)
def test_the_clinic_archive_fits_the_laptop(
    qtbot: QtBot, clinic: Clinic, tmp_path: Path, night: bool, large: bool
) -> None:
    settings = Settings(tmp_path / "settings")
    settings.set(NIGHT_MODE, night)
    settings.set(LARGE_TYPE, large)
    opened = CentralReviewWindow(clinic.reviewer_url, settings)
    qtbot.addWidget(opened)
    opened.move(0, 0)
    opened.show()
    qtbot.waitExposed(opened)
    settle(qtbot, opened)
    applied = QApplication.instance().property("kapmonitorTheme")
    assert applied == f"{'night' if night else 'day'}/{'large' if large else 'normal'}"
    fits(opened, "clinic archive")
    open_by_keyboard(qtbot, opened, ("room-1", clinic.sessions["room-1"][0]))
    fits(opened, "clinic archive with a session open")
    opened.close()


def test_the_command_line_opens_the_window_on_the_saved_connection(
    qtbot: QtBot, clinic: Clinic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``kapmonitor review --server`` (no value) takes $KAPMONITOR_SERVER; the window it opens
    reads that archive. The event loop is replaced by one that looks at the window and closes
    it, as a person would after reading the list."""
    from kapmonitor import cli

    monkeypatch.setenv("KAPMONITOR_SERVER", clinic.reviewer_url)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    seen: list[list[tuple[str, str]]] = []

    def run_loop() -> int:
        (shown,) = [
            w
            for w in QApplication.topLevelWidgets()
            if isinstance(w, CentralReviewWindow) and w.isVisible()
        ]
        settle(qtbot, shown)
        seen.append(listed(shown))
        shown.close()
        return 0

    monkeypatch.setattr(QApplication.instance(), "exec", run_loop, raising=False)
    assert cli.main(["review", "--server"]) == 0
    every = {(lap, sid) for lap, ids in clinic.sessions.items() for sid in ids}
    assert [set(s) for s in seen] == [every]


def test_the_command_line_without_a_server_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from kapmonitor import cli

    monkeypatch.delenv("KAPMONITOR_SERVER", raising=False)
    assert cli.main(["review", "--server"]) != 0
    err = capsys.readouterr().err
    assert "no server given" in err and "Traceback" not in err


def test_the_local_review_opens_the_clinic_archive_from_its_menu(
    qtbot: QtBot, clinic: Clinic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.store.test_archive import build_known_archive
    from tests.ui.test_review_window import open_review

    monkeypatch.setenv("KAPMONITOR_SERVER", clinic.reviewer_url)
    known = build_known_archive(tmp_path / "laptop.sqlite")
    try:
        local_window = open_review(qtbot, known, "chen", tmp_path)
        action = local_window.actions_by_name["clinic_archive"]
        assert action.text() == "Open the clinic archive…"
        qtbot.keyClick(local_window, Qt.Key.Key_O, CTRL_SHIFT)
        (opened,) = [w for w in local_window.child_windows if isinstance(w, CentralReviewWindow)]
        qtbot.addWidget(opened)
        settle(qtbot, opened)
        every = {(lap, sid) for lap, ids in clinic.sessions.items() for sid in ids}
        assert set(listed(opened)) == every
        local_window.close()
        assert not opened.isVisible()  # closed with the review it was opened from
    finally:
        known.store.close()


def test_the_dashboard_and_a_patients_series_cover_every_laptop(
    qtbot: QtBot, clinic: Clinic, window: CentralReviewWindow
) -> None:
    """Ctrl+D and Ctrl+T open the local review's dashboard and patient series, with figures
    from the whole archive: the sessions of both laptops, as their own files count them."""
    from kapmonitor.store import archive as local_archive
    from kapmonitor.ui.review.dashboard_window import PERIODS, DashboardWindow
    from kapmonitor.ui.review.patient_series_view import PatientSeriesView

    now = window.clock.now()
    local_sessions = 0
    for laptop in clinic.laptops.values():
        db = connect_readonly(laptop.path, laptop.keys)
        try:
            local_sessions += local_archive.dashboard(db, None, None, now=now).sessions
        finally:
            db.close()
    assert window.actions_by_name["dashboard"].shortcut().toString() == "Ctrl+D"
    window.actions_by_name["dashboard"].trigger()
    board = next(w for w in window.findChildren(DashboardWindow))
    qtbot.addWidget(board)
    board.period.setCurrentIndex([days for _t, days in PERIODS].index(None))
    qtbot.waitUntil(lambda: board.loaded, timeout=30000)
    assert board.data is not None and board.data.sessions == local_sessions == 4
    assert "every laptop" in board.windowTitle()

    key = ("room-1", clinic.sessions["room-1"][0])
    open_by_keyboard(qtbot, window, key)
    window.actions_by_name["series"].trigger()
    view = next(w for w in window.findChildren(PatientSeriesView))
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: view.loaded, timeout=30000)
    laptop = clinic.laptops["room-1"]
    db = connect_readonly(laptop.path, laptop.keys)
    try:
        own = local_archive.patient_series(db, view.patient_code)
    finally:
        db.close()
    assert view.points is not None
    assert [p.session_id for p in view.points] == [p.session_id for p in own]
    assert key[1] in [p.session_id for p in view.points]
