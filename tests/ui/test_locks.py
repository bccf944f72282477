"""Locks that help: a correction does not lock, the clinicians who signed in switch freely, the
idle lock outlasts the protocol's checks, and the lock screen keeps the numbers the room needs.

Driven through the real window with keys and clicks; asserted on what the store kept (rows,
audit entries, the clinic setting) and on what the screen shows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.idle_lock import shortest_interval
from kapmonitor.domain.records import VitalSigns
from kapmonitor.store.accounts import Accounts
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.bedside.session_window import SessionWindow
from kapmonitor.ui.forms.account_dialogs import AccountsDialog, SignInDialog
from kapmonitor.ui.widgets.last_values_panel import CAPTIONS
from tests.factories import T0, session_start
from tests.ui.test_accounts_gui import press, start_signed_in
from tests.ui.window_driver import Action, drive, enter_vitals, shown_window, type_into

SCREEN_W, SCREEN_H = 1280, 720


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    opened = SessionStore.open(tmp_path / "locks.sqlite", clock)
    accounts = Accounts(opened.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    accounts.create_user(admin, "lee", "Dr Lee", "clinician", "linden-river-31")
    accounts.create_user(admin, "kim", "Nurse Kim", "clinician", "kestrel-dawn-52")
    accounts.create_user(admin, "ray", "Ray Super", "supervisor", "rowan-quartz-64")
    yield opened
    opened.close()


@pytest.fixture
def window(qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path) -> SessionWindow:
    return shown_window(qtbot, store, clock, tmp_path)


def audit(store: SessionStore, action: str) -> list[tuple[str, str]]:
    return [
        (actor, detail)
        for actor, detail in store.db.execute(
            "SELECT actor, detail FROM audit WHERE action = ? ORDER BY id", [action]
        )
    ]


def no_dialog(qtbot: QtBot, act: Callable[[], None]) -> None:
    """Run ``act``; fail (instead of hanging) if it opens any dialog, such as a password ask."""
    opened: list[str] = []

    def poll() -> None:
        dialog = QApplication.activeModalWidget()
        if dialog is not None:
            opened.append(dialog.windowTitle())
            dialog.close()

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(poll)
    timer.start()
    try:
        act()
        qtbot.wait(1)
    finally:
        timer.stop()
    assert opened == []


def with_dialogs(qtbot: QtBot, trigger: Callable[[], None], actions: list[Action]) -> None:
    """Like ``drive`` for something started by a menu command rather than a key."""
    steps = list(actions)
    handled: list[QWidget] = []
    problems: list[str] = []
    busy = False

    def poll() -> None:
        nonlocal busy
        dialog = QApplication.activeModalWidget()
        if busy or not steps or dialog is None or any(d is dialog for d in handled):
            return
        busy = True
        handled.append(dialog)
        try:
            steps.pop(0)(dialog)
        except BaseException as exc:
            problems.append(f"{type(dialog).__name__}: {type(exc).__name__}: {exc}")
        if dialog.isVisible():
            problems.append(f"{type(dialog).__name__} left open")
            steps.clear()
            dialog.close()
        busy = False

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(poll)
    timer.start()
    try:
        trigger()
    finally:
        timer.stop()
    assert not problems, problems
    assert not steps, f"{len(steps)} expected dialog(s) never opened"


def select_row(window: SessionWindow, table: str) -> None:
    row = next(i for i, item in enumerate(window.timeline.timeline.items) if item.table == table)
    window.timeline.selectRow(row)


def unlock(qtbot: QtBot, window: SessionWindow, username: str, secret: str) -> None:
    overlay = window.access.overlay
    overlay.username.setCurrentText(username)
    type_into(qtbot, overlay.secret, secret)
    qtbot.keyClick(overlay.secret, Qt.Key.Key_Return)


# --- corrections and "Recording as" ------------------------------------------------------


def test_a_correction_does_not_lock_and_the_signed_in_clinicians_switch_freely(
    qtbot: QtBot, window: SessionWindow, store: SessionStore
) -> None:
    start_signed_in(qtbot, window)
    session_id = window.log.id
    enter_vitals(qtbot, window, ["118/76", "70", "98", "14"])
    no_dialog(
        qtbot, lambda: press(qtbot, window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    )
    assert window.recorder == "Nurse Kim"
    sign_ins = len(audit(store, "sign_in"))

    select_row(window, "vitals")

    def correct(dialog: QWidget) -> None:
        dialog.hr.clear()
        type_into(qtbot, dialog.hr, "74")
        type_into(qtbot, dialog.reason_edit, "HR misread from the monitor")
        qtbot.keyClick(dialog.reason_edit, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_C, correct)
    corrected = store.load(session_id).current("vitals")[0]
    assert corrected["hr"] == 74 and corrected["recorded_by"] == "Nurse Kim"
    assert not window.access.locked()  # the defect: "sign in to continue this session"
    assert not window.access.overlay.isVisible()
    assert window.recorder == "Nurse Kim"  # who records is kept too
    assert window.header.recorder.currentText() == "Nurse Kim"
    assert window.actions_by_name["vitals"].isEnabled()

    # Both signed in at the start: switching back and forth asks no password.
    no_dialog(
        qtbot, lambda: press(qtbot, window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    )
    assert window.recorder == "Dr Lee"
    no_dialog(
        qtbot, lambda: press(qtbot, window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    )
    assert window.recorder == "Nurse Kim"
    assert len(audit(store, "sign_in")) == sign_ins

    # An idle lock opened by one of them does not make the other sign in again either.
    press(qtbot, window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert window.access.locked()
    unlock(qtbot, window, "lee", "linden-river-31")
    assert not window.access.locked() and window.recorder == "Dr Lee"
    no_dialog(
        qtbot, lambda: press(qtbot, window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    )
    assert window.recorder == "Nurse Kim"


def test_a_clinician_not_signed_in_this_session_needs_a_password(
    qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path
) -> None:
    session_id = store.start_session(
        session_start(clock, clinicians=("Dr Lee", "Nurse Kim")), "Dr Lee"
    )
    window = shown_window(qtbot, store, clock, tmp_path)
    window.open_session(session_id)  # resumed after a restart: nobody is signed in yet
    assert window.access.locked()
    unlock(qtbot, window, "lee", "linden-river-31")
    assert window.recorder == "Dr Lee"

    def cancel(dialog: QWidget) -> None:
        assert isinstance(dialog, SignInDialog)
        assert dialog.username.currentText() == "kim"
        dialog.reject()

    drive(qtbot, window, Qt.Key.Key_2, cancel, Qt.KeyboardModifier.ControlModifier)
    assert window.recorder == "Dr Lee"  # refused: still recording as the one who signed in
    assert window.header.recorder.currentText() == "Dr Lee"

    def wrong_then_right(dialog: QWidget) -> None:
        type_into(qtbot, dialog.secret, "kestrel-dawn-53")
        qtbot.keyClick(dialog.secret, Qt.Key.Key_Return)
        assert dialog.isVisible() and "Wrong user name or password" in dialog.errors_text()
        type_into(qtbot, dialog.secret, "kestrel-dawn-52")
        qtbot.keyClick(dialog.secret, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_2, wrong_then_right, Qt.KeyboardModifier.ControlModifier)
    assert window.recorder == "Nurse Kim"
    failed_actor, _detail = audit(store, "sign_in_failed")[-1]
    assert failed_actor == Accounts(store.db, store.clock).name_digest("kim")  # never the text
    assert audit(store, "sign_in")[-1] == ("kim", '{"purpose":"record"}')
    # Signed in once, she too switches freely from now on.
    no_dialog(
        qtbot, lambda: press(qtbot, window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    )
    no_dialog(
        qtbot, lambda: press(qtbot, window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    )
    assert window.recorder == "Nurse Kim"


# --- the idle lock ------------------------------------------------------------------------


def test_the_default_idle_lock_outlasts_10_minute_checks_then_locks(
    qtbot: QtBot, window: SessionWindow, clock: FakeClock
) -> None:
    start_signed_in(qtbot, window)
    assert shortest_interval(window.store.protocol_for(window.log.id)) == 10
    in_force = window.access.idle_lock()
    assert in_force.minutes > 10 and "automatic" in in_force.explanation
    watcher = window.access.watcher
    watcher.monotonic = lambda: clock.now().timestamp()  # idle time follows the fake clock
    watcher.last_activity = watcher.monotonic()
    clock.advance(minutes=10)  # a check falls due: no password asked
    watcher.check()
    assert not window.access.locked()
    clock.advance(minutes=in_force.minutes - 10, seconds=-1)
    watcher.check()
    assert not window.access.locked()
    clock.advance(seconds=1)
    watcher.check()
    assert window.access.locked()
    assert window.access.overlay.title.text() == f"LOCKED — no input for {in_force.minutes} min"


def test_an_administrator_sets_the_clinic_idle_lock_refused_when_too_short_and_audited(
    qtbot: QtBot, window: SessionWindow, store: SessionStore
) -> None:
    accounts_action = next(
        a for a in window.menuBar().actions()[0].menu().actions() if a.text() == "Accounts…"
    )

    def admin_signs_in(dialog: QWidget) -> None:
        assert isinstance(dialog, SignInDialog)
        type_into(qtbot, dialog.secret, "alpine-harbour-7")
        qtbot.keyClick(dialog.secret, Qt.Key.Key_Return)

    def set_idle_lock(dialog: QWidget) -> None:
        assert isinstance(dialog, AccountsDialog)
        box = dialog.idle_lock
        assert box.automatic.isChecked() and not box.minutes.isEnabled()
        assert "automatic: 15 min (checks every 10 min + 5 min)" in box.note.text()
        qtbot.mouseClick(box.automatic, Qt.MouseButton.LeftButton)
        assert box.minutes.isEnabled()
        box.minutes.lineEdit().selectAll()
        type_into(qtbot, box.minutes.lineEdit(), "10")
        qtbot.mouseClick(box.save_button, Qt.MouseButton.LeftButton)
        assert "10 min is not longer than the shortest check interval (10 min" in (
            box.errors_text()
        )
        box.minutes.lineEdit().selectAll()
        type_into(qtbot, box.minutes.lineEdit(), "25")
        qtbot.mouseClick(box.save_button, Qt.MouseButton.LeftButton)
        assert box.errors_text() == ""
        assert "Saved." in box.note.text() and "25 min (clinic setting)" in box.note.text()
        dialog.reject()

    with_dialogs(qtbot, accounts_action.trigger, [admin_signs_in, set_idle_lock])
    values = [r[0] for r in store.db.execute("SELECT value FROM clinic_settings ORDER BY id")]
    assert values == ["25"]  # the refused 10 was never stored
    changes = store.db.execute(
        "SELECT actor, table_name FROM audit WHERE action = 'clinic_setting_changed'"
    ).fetchall()
    assert changes == [("admin", "clinic_settings")]

    start_signed_in(qtbot, window)
    assert window.access.idle_lock().minutes == 25  # every laptop on this file follows it


def test_a_supervisor_cannot_open_the_clinic_setting(
    qtbot: QtBot, window: SessionWindow, store: SessionStore
) -> None:
    accounts_action = next(
        a for a in window.menuBar().actions()[0].menu().actions() if a.text() == "Accounts…"
    )

    def supervisor_tries(dialog: QWidget) -> None:
        dialog.username.setCurrentText("ray")
        type_into(qtbot, dialog.secret, "rowan-quartz-64")
        qtbot.keyClick(dialog.secret, Qt.Key.Key_Return)

    def told(dialog: QWidget) -> None:
        assert "may not manage accounts" in dialog.text()
        dialog.accept()

    with_dialogs(qtbot, accounts_action.trigger, [supervisor_tries, told])
    assert store.db.execute("SELECT count(*) FROM clinic_settings").fetchone()[0] == 0
    assert "ray" in [actor for actor, _detail in audit(store, "refused")]


# --- the lock screen ------------------------------------------------------------------------


def test_the_lock_screen_shows_the_big_numbers_and_fits_1280x720_in_large_type(
    qtbot: QtBot, window: SessionWindow, clock: FakeClock
) -> None:
    start_signed_in(qtbot, window)
    clock.advance(minutes=1)
    enter_vitals(qtbot, window, ["128/84", "72", "97", "15", "38", "36.8"])
    press(qtbot, window, Qt.Key.Key_F9, Qt.KeyboardModifier.NoModifier)  # large type
    try:
        window.resize(SCREEN_W, SCREEN_H)
        clock.advance(minutes=3)
        window.tick()
        press(qtbot, window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
        overlay = window.access.overlay
        assert overlay.isVisible()
        assert overlay.numbers() == [
            (CAPTIONS["bp"], "128/84", "3 min ago"),
            (CAPTIONS["hr"], "72", "3 min ago"),
            (CAPTIONS["spo2"], "97", "3 min ago"),
            (CAPTIONS["rr"], "15", "3 min ago"),
            (CAPTIONS["etco2"], "38", "3 min ago"),
            (CAPTIONS["temp_c"], "36.8", "3 min ago"),
        ]
        assert overlay.next_check.text() == window.schedule_panel.text() != ""
        assert overlay.alarms.text() == "No active alarm"
        clock.advance(minutes=2)
        window.tick()  # the screen stays current while locked
        assert overlay.numbers()[0] == (CAPTIONS["bp"], "128/84", "5 min ago")
        assert overlay.clock.text().endswith("0:06:00")

        # Fits: what the lock screen needs, plus the window's menus and toolbars, is within
        # 1280 × 720, and no big number is cut.
        page = window.pages.widget(1)
        chrome_w = window.width() - page.width()
        chrome_h = window.height() - page.height()
        layout = overlay.layout()
        width = SCREEN_W - chrome_w
        needed = (
            layout.totalHeightForWidth(width)
            if layout.hasHeightForWidth()
            else layout.totalMinimumSize().height()
        )
        assert needed + chrome_h <= SCREEN_H, (needed, chrome_h)
        assert layout.totalMinimumSize().width() + chrome_w <= SCREEN_W
        shown = [*overlay.number_values, *overlay.number_ages, overlay.clock, overlay.next_check]

        def unclipped() -> bool:
            return all(label.width() >= label.sizeHint().width() for label in shown)

        qtbot.waitUntil(unclipped, timeout=2000)  # once the layout has run
    finally:
        window.large_action.setChecked(False)


def test_the_lock_screen_sums_up_many_alarms(qtbot: QtBot, window: SessionWindow) -> None:
    start_signed_in(qtbot, window)
    press(qtbot, window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    overlay = window.access.overlay
    lines = [f"⚠ WARNING — alarm {n} — raised 09:0{n}" for n in range(5)]
    overlay.show_status("KAP-0500 · session 0:05:00", "Next check in 5 min", lines)
    assert overlay.alarms.text().splitlines() == [*lines[:2], "… and 3 more active alarms"]


def test_a_critical_value_stays_marked_on_the_lock_screen(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    start_signed_in(qtbot, window)
    session_id = window.log.id
    clock.advance(minutes=2)
    store.add(session_id, VitalSigns(clock.now(), hr=70, sbp=185, dbp=90, spo2=97, rr=14), "Dr Lee")
    window.open_session(session_id, fresh=True)
    press(qtbot, window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    overlay = window.access.overlay
    caption, value, age = overlay.numbers()[0]
    assert value == "185/90" and age == "just now"
    assert window.last_values.level("bp") == "critical"
    assert "critical" in caption  # in words, not by colour alone
    assert overlay.number_values[0].property("level") == "critical"
    assert "CRITICAL" in overlay.alarms.text()
