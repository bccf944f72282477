"""The live view window against a real PostgreSQL: a supervisor opens it from the review
window's menu, sees each laptop's session in progress, and sees a laptop's commit after its
sync (awaited with qtbot.waitUntil, never timed); a critical alarm and an overdue check are
shown in the alarm colour with words; the server stopped, the window says so plainly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from pytestqt.qtbot import QtBot

from kapmonitor.domain.records import PhaseChange, VitalSigns
from kapmonitor.network.sync import sync_once
from kapmonitor.settings import NIGHT_MODE, Settings
from kapmonitor.store.accounts import Accounts
from kapmonitor.ui.review.live_view import COL_ALARMS, COL_NEXT, COLUMNS, LiveViewWindow
from kapmonitor.ui.review.review_window import ReviewWindow
from kapmonitor.ui.widgets.theme import current_theme
from tests.network import conftest as network
from tests.network.conftest import Archive, make_laptop
from tests.network.test_live import add, reviewer_url, start_session
from tests.store.test_archive import Known, build_known_archive

WAIT_MS = 30000
# the real PostgreSQL of tests/network (one server per test session, a database per test)
pg_server = network.pg_server
archive = network.archive
_cheap_key_slots = network._cheap_key_slots


def cell(window: LiveViewWindow, patient: str, column: str) -> str:
    table = window.table
    for row in range(table.rowCount()):
        if table.item(row, 1).text() == patient:
            return table.item(row, COLUMNS.index(column)).text()
    raise KeyError(patient)


def shown_patients(window: LiveViewWindow) -> set[str]:
    return {window.table.item(r, 1).text() for r in range(window.table.rowCount())}


@pytest.fixture
def known(tmp_path: Path) -> Iterator[Known]:
    built = build_known_archive(tmp_path / "archive.sqlite")
    yield built
    built.store.close()


def test_from_the_review_menu_the_live_view_lists_and_follows_each_laptop(
    qtbot: QtBot,
    archive: Archive,
    known: Known,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    urls = {n: archive.add_laptop(n) for n in ("room-1", "room-2")}
    laptops = {n: make_laptop(tmp_path / n, n) for n in urls}
    sids = {n: start_session(laptops[n], f"KAP-10{i}") for i, n in enumerate(urls, 1)}
    for n in urls:
        sync_once(laptops[n].path, urls[n], laptops[n].keys)
    monkeypatch.setenv("KAPMONITOR_LIVE_SERVER", reviewer_url(archive))

    user = Accounts(known.store.db, known.clock).find("chen")
    assert user is not None
    review = ReviewWindow(known.store, user, known.clock, Settings(tmp_path))
    qtbot.addWidget(review)
    review.show()
    review.actions_by_name["live"].trigger()  # Review → Live view (sessions in progress)…
    live = review.child_windows[-1]
    assert isinstance(live, LiveViewWindow)
    qtbot.addWidget(live)
    try:
        qtbot.waitUntil(lambda: shown_patients(live) == {"KAP-101", "KAP-102"}, timeout=WAIT_MS)
        assert cell(live, "KAP-101", "Laptop") == "room-1"
        assert cell(live, "KAP-102", "Phase") == "preparation"
        assert "2 sessions in progress" in live.summary.text()

        # room-2 doses and a critical SpO2: after its sync the row shows the new phase,
        # the alarm in the alarm colour, and the next check (a critical re-check)
        two = laptops["room-2"]
        two.clock.advance(minutes=3)
        add(two, sids["room-2"], lambda s: PhaseChange("monitoring", two.clock.now()))
        add(
            two,
            sids["room-2"],
            lambda s: VitalSigns(two.clock.now(), hr=70, sbp=120, dbp=80, spo2=80),
        )
        sync_once(two.path, urls["room-2"], two.keys)
        qtbot.waitUntil(lambda: cell(live, "KAP-102", "Phase") == "monitoring", timeout=WAIT_MS)
        qtbot.waitUntil(lambda: "critical" in cell(live, "KAP-102", "Open alarms"), timeout=WAIT_MS)
        row = next(
            r for r in range(live.table.rowCount()) if live.table.item(r, 1).text() == "KAP-102"
        )
        alarm = live.table.item(row, COL_ALARMS)
        theme = current_theme(Settings(tmp_path).get(NIGHT_MODE))
        assert alarm.foreground().color() == QColor(theme.error_text)
        assert alarm.data(Qt.ItemDataRole.UserRole) == "critical"
        # the laptop's clock is months behind this machine's: the re-check is long overdue,
        # said in words and in the alarm colour
        nxt = live.table.item(row, COL_NEXT)
        assert nxt.text().startswith("⚠ OVERDUE") and "Re-check" in nxt.text()
        assert nxt.data(Qt.ItemDataRole.UserRole) == "overdue"
        assert nxt.background().color() == QColor(theme.error_bg)
        assert cell(live, "KAP-101", "Open alarms") == "none"

        # the server goes away: a plain banner, the list kept
        archive.server.stop("immediate")
        try:
            qtbot.waitUntil(lambda: live.banner.isVisible(), timeout=WAIT_MS)
            assert live.banner.text().startswith(
                "The clinic server cannot be reached; the list shows what was known at "
            )
            assert shown_patients(live) == {"KAP-101", "KAP-102"}
        finally:
            archive.server.start()
        qtbot.waitUntil(lambda: not live.banner.isVisible(), timeout=WAIT_MS)
    finally:
        live.close()


def test_night_mode_and_large_type_reach_the_live_view(
    qtbot: QtBot, archive: Archive, tmp_path: Path
) -> None:
    settings = Settings(tmp_path)
    window = LiveViewWindow(reviewer_url(archive), settings)
    qtbot.addWidget(window)
    window.show()
    try:
        qtbot.waitUntil(lambda: "in progress" in window.summary.text(), timeout=WAIT_MS)
        assert "0 sessions in progress" in window.summary.text()
        window.night_action.trigger()
        window.large_action.trigger()
        assert settings.get(NIGHT_MODE)
        assert window.width() <= 1280 and window.height() <= 720
    finally:
        window.night_action.trigger()
        window.large_action.trigger()
        window.close()


def test_a_refused_sign_in_is_said_plainly_without_the_password(
    qtbot: QtBot, archive: Archive, tmp_path: Path
) -> None:
    good = reviewer_url(archive)
    wrong = good.replace("@127.0.0.1", "x@127.0.0.1")  # the password with one letter more
    password = wrong.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    window = LiveViewWindow(wrong, Settings(tmp_path))
    qtbot.addWidget(window)
    window.show()
    try:
        qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=WAIT_MS)
        text = window.banner.text()
        assert "did not accept" in text and text.endswith("Nothing is known yet.")
        assert password not in text and password not in window.banner.toolTip()
        assert password not in window.windowTitle()
        assert window.table.rowCount() == 0
    finally:
        window.close()
