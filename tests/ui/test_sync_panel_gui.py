"""The real bedside window syncs by itself to a real PostgreSQL, and its Sync panel says how it
goes (issue 14 items 1 and 6): saves reach the server, an outage is said in plain words with
the entries waiting while saves go on, the restart converges; a server that hangs never holds
up a save; Session ▸ Clinic server… refuses a bad address and says a wrong password plainly.

The server is the network tests' own (tests/network/conftest.py), imported, not a second one.
"""

from __future__ import annotations

import contextlib
import json
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from kapmonitor.network import connection
from kapmonitor.network.background import load_password, password_path, save_password
from kapmonitor.network.sync import without_password
from kapmonitor.settings import SETTINGS_FILE, SYNC_INTERVAL_SECONDS, SYNC_SERVER, Settings
from kapmonitor.store.key_slots import DatabaseKeys
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.bedside.session_window import SessionWindow
from kapmonitor.ui.forms.server_dialog import ServerDialog
from tests.factories import session_start
from tests.network import conftest as network
from tests.network.conftest import (
    ADMIN_USER,
    Archive,
    Laptop,
    local_counts,
    make_laptop,
    server_counts,
)
from tests.ui.window_driver import enter_vitals, shown_window

# the network tests' fixtures: one real PostgreSQL per session, a fresh archive per test, cheap
# key-slot derivation (a second server fixture would drift from theirs)
pg_server = network.pg_server
archive = network.archive
_cheap_key_slots = network._cheap_key_slots

# the network tests' fixtures: one real PostgreSQL per session, a fresh archive per test, cheap
# key-slot derivation (a second server fixture would drift from theirs)
pg_server = network.pg_server
archive = network.archive
_cheap_key_slots = network._cheap_key_slots

WAIT_MS = 60_000  # generous: passes run on a worker thread on a shared 2-core machine


def configure(folder: Path, laptop: Laptop, url: str) -> None:
    """What Session ▸ Clinic server… saves: the address in the settings, the password sealed."""
    settings = Settings(folder)
    settings.set(SYNC_SERVER, without_password(url))
    settings.set(SYNC_INTERVAL_SECONDS, 5)
    password = urlsplit(url).password
    if password:
        save_password(laptop.path, laptop.keys, password)


def open_window(qtbot: QtBot, laptop: Laptop, folder: Path) -> tuple[SessionWindow, SessionStore]:
    store = laptop.store()
    sid = store.start_session(
        session_start(laptop.clock, clinicians=("Dr Admin", "Nurse B")), "Dr Admin"
    )
    laptop.clock.advance(minutes=1)
    window = shown_window(qtbot, store, laptop.clock, folder)
    # as the start dialog's sign-in leaves it: the administrator attends and records
    window.access.attending = [window.access.accounts.find(ADMIN_USER)]
    window.open_session(sid, fresh=True)
    assert window.recorder == "Dr Admin"
    return window, store


def vitals_count(store: SessionStore) -> int:
    return int(store.db.execute("SELECT count(*) FROM vitals").fetchone()[0])


def test_saves_reach_the_server_an_outage_is_said_plainly_and_the_restart_converges(
    qtbot: QtBot,
    archive: Archive,
    tmp_path: Path,
) -> None:
    laptop = make_laptop(tmp_path, "room-1")
    url = archive.add_laptop("room-1")
    password = str(urlsplit(url).password)
    configure(tmp_path / "cfg", laptop, url)
    window, store = open_window(qtbot, laptop, tmp_path / "cfg")
    feed, panel = window.sync_feed, window.sync_feed.panel
    thread = feed.runner._thread if feed.runner else None
    assert thread is not None and thread.is_alive()
    try:
        enter_vitals(qtbot, window, ["120/80", "72", "98"])
        assert vitals_count(store) == 1

        def converged() -> bool:
            return (
                feed.last is not None
                and feed.last.state == "ok"
                and server_counts(archive, "room-1") == local_counts(laptop)
            )

        qtbot.waitUntil(converged, timeout=WAIT_MS)
        assert panel.isVisible() and panel.state == "ok"
        assert panel.text().startswith("Sync ✓ last ") and "never" not in panel.text()
        assert archive.query("SELECT count(*) FROM kap.vitals")[0][0] == 1

        archive.server.stop()
        enter_vitals(qtbot, window, ["118/79", "70", "97"])
        enter_vitals(qtbot, window, ["121/81", "74", "98"])
        assert vitals_count(store) == 3  # saves go on with the server down
        qtbot.waitUntil(
            lambda: feed.last is not None and feed.last.state == "error", timeout=WAIT_MS
        )
        qtbot.waitUntil(lambda: feed.last is not None and feed.last.pending >= 2, timeout=WAIT_MS)
        error = feed.last.error
        port = archive.server.port
        assert error.startswith(
            f"The clinic server cannot be reached (connection refused at 127.0.0.1:{port}); "
        )
        assert error.endswith("entries wait on this laptop and will be sent when it is back.")
        assert f"; {feed.last.pending} entries wait" in error
        assert panel.text().startswith("⚠ Sync unreachable · ")
        assert f"{feed.last.pending} waiting" in panel.text()
        assert panel.toolTip() == error
        for shown in (error, panel.text(), panel.toolTip()):
            assert password not in shown and "Traceback" not in shown
        assert error in window.statusBar().currentMessage()
        boxed: list[str] = []

        def read_box() -> None:
            box = QApplication.activeModalWidget()
            if box is None:
                QTimer.singleShot(20, read_box)
                return
            boxed.append(box.text())  # type: ignore[attr-defined]
            box.close()

        QTimer.singleShot(20, read_box)
        qtbot.mouseClick(panel, Qt.MouseButton.LeftButton)  # the whole sentence, in a box
        assert boxed == [error]

        archive.server.start()
        enter_vitals(qtbot, window, ["119/80", "71", "99"])  # a save asks for a pass at once
        qtbot.waitUntil(converged, timeout=WAIT_MS)
        assert feed.last.pending == 0 and feed.last.error == ""
        assert panel.state == "ok" and not panel.text().startswith("⚠")
        assert archive.query("SELECT count(*) FROM kap.vitals")[0][0] == vitals_count(store) == 4
    finally:
        with contextlib.suppress(RuntimeError):  # already running
            archive.server.start()
    window.close()
    assert not thread.is_alive()  # stopped and joined on close, no thread left
    assert feed.runner is None


class HangingServer:
    """A listening socket that takes connections and never says a word."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.listener.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def hanging() -> Iterator[HangingServer]:
    server = HangingServer()
    yield server
    server.close()


def test_a_save_does_not_wait_for_a_server_that_never_answers(
    qtbot: QtBot, tmp_path: Path, hanging: HangingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection, "CONNECT_TIMEOUT_S", 600)  # the pass stays stuck throughout
    laptop = make_laptop(tmp_path, "room-2")
    url = f"postgresql://kap_x_room_2:secret-pw@127.0.0.1:{hanging.port}/kapmonitor"
    configure(tmp_path / "cfg", laptop, url)
    window, store = open_window(qtbot, laptop, tmp_path / "cfg")
    runner = window.sync_feed.runner
    assert runner is not None
    thread = runner._thread
    qtbot.waitUntil(lambda: bool(hanging.held) and runner.status().running, timeout=WAIT_MS)
    ticks = 0

    def tick() -> None:
        nonlocal ticks
        ticks += 1

    timer = QTimer(window)
    timer.timeout.connect(tick)
    timer.start(5)
    enter_vitals(qtbot, window, ["130/85", "80", "96"])
    enter_vitals(qtbot, window, ["131/86", "81", "95"])
    # both saves returned and are committed while the first pass is still stuck in its connect
    assert runner.status().running and runner.passes == 0
    assert vitals_count(store) == 2
    stored = [
        tuple(r) for r in store.db.execute("SELECT sbp, dbp, hr FROM vitals ORDER BY id").fetchall()
    ]
    assert stored == [(130, 85, 80), (131, 86, 81)]
    seen = ticks
    qtbot.waitUntil(lambda: ticks > seen + 3, timeout=WAIT_MS)  # the GUI thread kept running
    assert window.sync_feed.panel.text() == "Sync: starting…"
    timer.stop()
    hanging.close()  # the server goes away: the stuck pass ends, with an error
    qtbot.waitUntil(lambda: window.sync_feed.last is not None, timeout=WAIT_MS)
    assert window.sync_feed.last.state == "error"
    assert "secret-pw" not in window.sync_feed.last.error
    window.close()
    assert thread is not None and not thread.is_alive()


# --- Session ▸ Clinic server… ----------------------------------------------------------------


def server_dialog(qtbot: QtBot, tmp_path: Path, laptop: Laptop) -> tuple[ServerDialog, Settings]:
    store = laptop.store()
    admin = store.db  # the dialog's accounts work on the laptop's own database
    from kapmonitor.store.accounts import Accounts

    accounts = Accounts(admin, laptop.clock)
    user = accounts.find(ADMIN_USER)
    assert user is not None
    settings = Settings(tmp_path / "cfg")
    dialog = ServerDialog(settings, laptop.path, laptop.keys, accounts, user)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.finished.connect(store.close)
    return dialog, settings


def test_a_bad_address_is_refused_plainly_and_nothing_is_saved(
    qtbot: QtBot, tmp_path: Path
) -> None:
    laptop = make_laptop(tmp_path, "room-3")
    dialog, settings = server_dialog(qtbot, tmp_path, laptop)
    for typed, said in (
        ("clinic-pc:5432", "That is not a server address: it starts postgresql://"),
        ("postgresql://clinic-pc:port/kap", "the port must be a number"),
        ("postgresql://clinic-pc/kapmonitor", "needs the laptop's role before the @"),
        ("postgresql://role:hunter2@clinic-pc/kap", "Leave the password out of the address"),
    ):
        dialog.address.setText(typed)
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
        assert dialog.isVisible()
        assert said in dialog.errors_text(), dialog.errors_text()
        assert "Traceback" not in dialog.errors_text()
    assert "hunter2" not in dialog.errors_text()
    assert settings.get(SYNC_SERVER) == ""
    assert not password_path(laptop.path).exists()
    dialog.close()


def test_a_wrong_password_is_a_plain_sentence_and_the_right_one_is_saved_sealed(
    qtbot: QtBot,
    archive: Archive,
    tmp_path: Path,
) -> None:
    laptop = make_laptop(tmp_path, "room-4")
    url = archive.add_laptop("room-4")
    password = str(urlsplit(url).password)
    dialog, _settings = server_dialog(qtbot, tmp_path, laptop)
    dialog.address.setText(without_password(url))
    dialog.password.setText("not-the-password")
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.test_button.isEnabled(), timeout=WAIT_MS)
    port = archive.server.port
    assert dialog.result_text() == (
        f"The clinic server at 127.0.0.1:{port} did not accept this password for the laptop's "
        "role. Check the password the administrator was given with kapmonitor server add-laptop."
    )
    dialog.password.setText(password)
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.test_button.isEnabled(), timeout=WAIT_MS)
    assert dialog.result_text() == (
        f"Connected: the archive at 127.0.0.1:{port} knows this laptop as room-4."
    )
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible() and "127.0.0.1" in dialog.changed
    assert Settings(tmp_path / "cfg").get(SYNC_SERVER) == without_password(url)
    settings_text = (tmp_path / "cfg" / SETTINGS_FILE).read_text()
    assert password not in settings_text and "clinic_server" in json.loads(settings_text)
    sealed = password_path(laptop.path)
    assert stat.S_IMODE(sealed.stat().st_mode) == 0o600
    assert password not in sealed.read_text()
    assert load_password(laptop.path, laptop.keys) == password
    other = DatabaseKeys(master=bytes(range(32)))
    assert load_password(laptop.path, other) is None  # another database's key opens nothing


# --- the panel alone --------------------------------------------------------------------------


def test_the_panel_says_each_state_in_words_in_day_and_night(qtbot: QtBot) -> None:
    from datetime import UTC, datetime, timedelta

    from kapmonitor.domain.clock import to_iso
    from kapmonitor.network.background import SyncReport
    from kapmonitor.ui.widgets.sync_panel import SyncPanel, age_text

    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    panel = SyncPanel()
    qtbot.addWidget(panel)
    assert panel.isHidden()  # no server configured: no panel
    four_min = to_iso(now - timedelta(minutes=4))
    local = (now - timedelta(minutes=4)).astimezone()
    panel.show_report(SyncReport(7, four_min, "", "", 2), now)
    assert panel.state == "pending" and panel.isVisible()
    assert panel.text() == f"Sync: 7 waiting · last {local:%H:%M} (4 min ago)"
    panel.show_report(SyncReport(0, four_min, "", "", 3), now)
    assert panel.text() == f"Sync ✓ last {local:%H:%M} (4 min ago)"
    sentence = "The clinic server cannot be reached (…); 7 entries wait on this laptop …"
    panel.show_report(SyncReport(7, "", sentence, "unreachable", 4), now)
    assert panel.text() == "⚠ Sync unreachable · 7 waiting · last never"
    assert panel.toolTip() == sentence == panel.accessibleDescription()
    for night, large in ((True, False), (True, True), (False, True)):
        panel.apply_theme(night, large)
        assert "font-size: " + ("15pt" if large else "11pt") in panel.styleSheet()
    assert age_text(to_iso(now - timedelta(minutes=65)), now).endswith("(1 h 5 m ago)")
    assert age_text(to_iso(now - timedelta(days=3)), now).endswith("(3 days ago)")
