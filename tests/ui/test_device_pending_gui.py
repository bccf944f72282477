"""Device readings in the bedside window (issue 13 item 3): stored pending by the real store,
handed to the real window as the device feed does (``window.apply_device_changes``), charted
lighter and shown "device, unconfirmed" in the big numbers, then confirmed (F) or marked
artefact (M) by key, attributed and audited; alarms on pending values reach the banner; the
chart stays bounded at a 1 Hz feed for three hours."""

from __future__ import annotations

import dataclasses
import math
import tracemalloc
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.devices.reading import DeviceReading
from kapmonitor.domain.changes import Changes
from kapmonitor.domain.chart_picture import ChartDelta, DevicePoint
from kapmonitor.domain.chart_style import ARTEFACT, DAY, NIGHT, pending_color
from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.protocol import Protocol
from kapmonitor.domain.records import SessionEnd
from kapmonitor.store import device_store
from kapmonitor.store.session_store import SessionStore
from kapmonitor.store.verify import verify_database
from kapmonitor.ui.bedside.device_review import (
    ARTEFACT_TEXT,
    CONFIRM_TEXT,
    NOTHING_PENDING,
    split_for_window,
)
from kapmonitor.ui.bedside.session_window import SessionWindow
from kapmonitor.ui.widgets.last_values_panel import PENDING_CAPTION
from kapmonitor.ui.widgets.trend_chart import TrendChart
from tests.factories import T0, open_store, protocol, session_start
from tests.ui.window_driver import drive, shown_window

KETAMINE = protocol("clinic-ketamine")
MONITOR = "MINDRAY^BED7"
_UNITS = {"spo2": "%", "sbp": "mm[Hg]", "dbp": "mm[Hg]", "rr": "/min"}


def no_auto(p: Protocol) -> Protocol:
    return dataclasses.replace(p, auto_confirm=())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    opened = open_store(tmp_path / "device.sqlite", clock)
    yield opened
    opened.close()


def open_window(
    qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path, proto: Protocol
) -> SessionWindow:
    sid = store.start_session(session_start(clock), "Dr A", protocol=proto)
    clock.advance(minutes=1)
    window = shown_window(qtbot, store, clock, tmp_path)
    window.open_session(sid, fresh=True)
    assert window.recorder == "Dr A"
    return window


@pytest.fixture
def window(qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path) -> SessionWindow:
    return open_window(qtbot, store, clock, tmp_path, no_auto(KETAMINE))


def reading(clock: FakeClock, vital: str, value: float | None, message: str) -> DeviceReading:
    return DeviceReading(
        device_id=MONITOR,
        source="mllp",
        message_id=message,
        received_at=clock.now(),
        observed_at=clock.now() - timedelta(seconds=1),
        vital=vital,
        value=value,
        unit=_UNITS.get(vital, "/min"),
    )


def store_message(
    window: SessionWindow, clock: FakeClock, message: str, **values: float
) -> Changes:
    """One device message stored through the real store, as the listener's sink does."""
    assert window.log is not None
    readings = [reading(clock, vital, value, message) for vital, value in values.items()]
    return device_store.add_device_readings(window.store, window.log.id, readings)


def feed(window: SessionWindow, clock: FakeClock, message: str, **values: float) -> Changes:
    """Stored, then handed to the window on its thread, as the device feed does."""
    changes = store_message(window, clock, message, **values)
    window.apply_device_changes(changes)
    return changes


def press(qtbot: QtBot, window: SessionWindow, key: Qt.Key) -> None:
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=2000)
    qtbot.keyClick(window, key)


def mark_all_with_m(qtbot: QtBot, window: SessionWindow) -> None:
    """M, then Enter in its chooser: with one value pending (or none alarmed or flagged) all
    are ticked, so every value shown is marked with the first reason (tests/ui/
    test_device_artefact_chooser_gui.py drives the choice itself)."""
    drive(qtbot, window, Qt.Key.Key_M, lambda dialog: qtbot.keyClick(dialog, Qt.Key.Key_Return))


def count(store: SessionStore, sql: str, *args: object) -> int:
    return int(store.db.execute(sql, list(args)).fetchone()[0])


def color_of(item_opts: object) -> str:
    return str(item_opts.color().name()).upper()  # type: ignore[attr-defined]


# --- shown pending ----------------------------------------------------------------------------


def test_pending_values_are_charted_lighter_and_shown_unconfirmed(
    window: SessionWindow, clock: FakeClock, store: SessionStore
) -> None:
    lines = window.timeline.model().rowCount()
    feed(window, clock, "M1", sbp=128, dbp=82, spo2=96, hr=72)
    chart, panel = window.chart, window.last_values
    # On the chart as pending points, not as the record's.
    for key, value in (("spo2", 96), ("hr", 72), ("sbp", 128), ("dbp", 82)):
        assert chart.pending_xy(key)[1].tolist() == [value]
        assert chart.point_count(key) == 0
    item = chart.pending_item("spo2")
    assert color_of(item.opts["pen"]) == pending_color("spo2", night=False)
    assert color_of(item.opts["symbolPen"]) == pending_color("spo2", night=False)
    assert color_of(item.opts["symbolBrush"]) == DAY.background.upper()  # hollow
    assert item.opts["pen"].style() == Qt.PenStyle.DotLine
    assert item.opts["symbol"] == chart.curve("spo2").opts["symbol"]  # same shape as confirmed
    # In the big numbers: lighter, italic, captioned, the device named.
    assert panel.values["spo2"].text() == "96" and panel.values["bp"].text() == "128/82"
    for key in ("spo2", "hr", "bp"):
        value = panel.values[key]
        assert value.property("pending") is True
        assert value.graphicsEffect() is not None and value.graphicsEffect().opacity() < 1
        assert "italic" in value.styleSheet()
        assert panel.ages[key].text().startswith(PENDING_CAPTION)
        assert MONITOR in value.toolTip()
    window.tick()
    assert panel.ages["spo2"].text() == f"{PENDING_CAPTION} · now"
    assert "Device value, unconfirmed" in panel.values["spo2"].toolTip()
    assert window.device_review.confirm_action.isEnabled()
    assert window.device_review.artefact_action.isEnabled()
    # Nothing of it is in the record or the timeline yet.
    assert count(store, "SELECT count(*) FROM vitals") == 0
    assert window.timeline.model().rowCount() == lines


def test_the_keys_are_in_the_entry_menu_and_the_action_bar(window: SessionWindow) -> None:
    entry = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Entry")
    texts = {a.text(): a.shortcut().toString() for a in entry.actions()}
    assert texts[CONFIRM_TEXT] == "F" and texts[ARTEFACT_TEXT] == "M"
    assert CONFIRM_TEXT in window.action_bar.buttons and ARTEFACT_TEXT in window.action_bar.buttons
    # Disabled with nothing pending.
    assert not window.device_review.confirm_action.isEnabled()
    assert not window.device_review.artefact_action.isEnabled()


# --- F: confirm what is on screen -------------------------------------------------------------


def test_f_confirms_the_values_shown_attributed_and_charted_as_the_record(
    qtbot: QtBot, window: SessionWindow, clock: FakeClock, store: SessionStore
) -> None:
    feed(window, clock, "M1", spo2=96, hr=72)
    press(qtbot, window, Qt.Key.Key_F)
    rows = store.db.execute(
        "SELECT spo2, hr, device_reading_id, source, recorded_by FROM vitals"
    ).fetchall()
    assert len(rows) == 1
    spo2, hr, reading_id, source, by = rows[0]
    assert (spo2, hr, source, by) == (96, 72, "mllp", "Dr A") and reading_id is not None
    reviews = store.db.execute(
        "SELECT decision, recorded_by, automatic FROM device_reading_reviews"
    ).fetchall()
    assert reviews == [("confirmed", "Dr A", 0)] * 2
    chart, panel = window.chart, window.last_values
    assert chart.pending_ids("spo2") == [] and chart.pending_ids("hr") == []
    assert chart.series_xy("spo2")[1].tolist() == [96.0]  # now a normal point
    assert panel.values["spo2"].text() == "96" and panel.values["spo2"].property("pending") is False
    assert panel.values["spo2"].graphicsEffect() is None
    assert not panel.ages["spo2"].text().startswith(PENDING_CAPTION)
    assert not window.device_review.confirm_action.isEnabled()
    assert "confirmed by Dr A" in window.statusBar().currentMessage()
    # Audited: every row of the confirmation is in the trail, under the clinician's name.
    by_action = "SELECT count(*) FROM audit WHERE action = ?"
    audited = count(store, by_action, device_store.ACTION_CONFIRMED)
    assert audited >= 3  # the vitals row and the two reviews (NEWS2 too)
    assert count(store, by_action + " AND actor = ?", device_store.ACTION_CONFIRMED, "Dr A") == (
        audited
    )


def test_f_does_not_confirm_a_reading_that_arrived_after_the_screen_was_drawn(
    qtbot: QtBot, window: SessionWindow, clock: FakeClock, store: SessionStore
) -> None:
    seen = feed(window, clock, "M1", spo2=95).device_readings[0]
    clock.advance(seconds=1)
    unseen = store_message(window, clock, "M2", spo2=88).device_readings[0]  # not yet shown
    press(qtbot, window, Qt.Key.Key_F)
    decided = dict(
        store.db.execute("SELECT device_reading_id, decision FROM device_reading_reviews")
    )
    assert decided == {seen.id: "confirmed"}
    assert unseen.id not in decided  # still pending, never confirmed unseen


def test_an_older_superseded_pending_reading_stays_pending(
    qtbot: QtBot, window: SessionWindow, clock: FakeClock, store: SessionStore
) -> None:
    older = feed(window, clock, "M1", spo2=94).device_readings[0]
    clock.advance(seconds=1)
    newer = feed(window, clock, "M2", spo2=97).device_readings[0]
    assert window.last_values.values["spo2"].text() == "97"
    press(qtbot, window, Qt.Key.Key_F)
    decided = dict(
        store.db.execute("SELECT device_reading_id, decision FROM device_reading_reviews")
    )
    assert decided == {newer.id: "confirmed"}
    assert window.chart.pending_ids("spo2") == [older.id]  # still drawn pending
    assert window.last_values.pending_ids() == ()  # the screen shows the confirmed 97


def test_a_blood_pressure_pair_is_confirmed_as_one_reading(
    qtbot: QtBot, window: SessionWindow, clock: FakeClock, store: SessionStore
) -> None:
    feed(window, clock, "NIBP1", sbp=131, dbp=84)
    press(qtbot, window, Qt.Key.Key_F)
    assert store.db.execute("SELECT sbp, dbp FROM vitals").fetchall() == [(131, 84)]
    assert window.last_values.values["bp"].text() == "131/84"
    assert window.chart.series_xy("sbp")[1].tolist() == [131.0]


# --- M: artefact, kept ------------------------------------------------------------------------


def test_m_marks_the_values_shown_artefact_and_keeps_them_crossed(
    qtbot: QtBot, window: SessionWindow, clock: FakeClock, store: SessionStore
) -> None:
    feed(window, clock, "M0", spo2=97)  # a confirmed value to fall back on
    press(qtbot, window, Qt.Key.Key_F)
    clock.advance(seconds=5)
    artefact = feed(window, clock, "M1", spo2=62).device_readings[0]
    assert window.last_values.values["spo2"].text() == "62"
    mark_all_with_m(qtbot, window)
    review = store.db.execute(
        "SELECT decision, reason, recorded_by FROM device_reading_reviews "
        "WHERE device_reading_id = ?",
        [artefact.id],
    ).fetchone()
    assert review[0] == "artefact" and review[2] == "Dr A" and "SpO₂ 62" in review[1]
    # Kept: the reading is still stored as it arrived, and never became vitals.
    kept = store.db.execute("SELECT value FROM device_readings WHERE id = ?", [artefact.id])
    assert kept.fetchone()[0] == 62
    assert store.db.execute("SELECT spo2 FROM vitals").fetchall() == [(97,)]
    chart = window.chart
    assert chart.pending_ids("spo2") == []
    assert chart.artefact_xy("spo2")[1].tolist() == [62.0]
    crosses = chart.artefact_item("spo2")
    assert crosses.opts["symbol"] == ARTEFACT.symbol
    assert color_of(crosses.opts["pen"]) == ARTEFACT.day.upper()
    # The big number falls back to the confirmed value, looking as usual.
    assert window.last_values.values["spo2"].text() == "97"
    assert window.last_values.values["spo2"].property("pending") is False
    audited = count(
        store, "SELECT count(*) FROM audit WHERE action = ?", device_store.ACTION_ARTEFACT
    )
    assert audited == 1


# --- refusals ---------------------------------------------------------------------------------


def test_nothing_pending_refuses_plainly_and_stores_nothing(
    qtbot: QtBot, window: SessionWindow, store: SessionStore
) -> None:
    press(qtbot, window, Qt.Key.Key_F)
    press(qtbot, window, Qt.Key.Key_M)
    assert count(store, "SELECT count(*) FROM device_reading_reviews") == 0
    window.device_review.confirm()  # reached anyway (a race): said, not raised
    assert NOTHING_PENDING in window.statusBar().currentMessage()
    window.device_review.mark_artefact()
    assert NOTHING_PENDING in window.statusBar().currentMessage()
    assert count(store, "SELECT count(*) FROM vitals") == 0


def test_a_reading_decided_elsewhere_is_refused_in_the_stores_words(
    qtbot: QtBot, window: SessionWindow, clock: FakeClock, store: SessionStore
) -> None:
    shown = feed(window, clock, "M1", spo2=96).device_readings[0]
    assert window.log is not None
    # Decided on another path (the capture tool, another window) after the screen was drawn.
    device_store.mark_device_artefact(store, window.log.id, [shown.id], "Nurse B", "motion")
    said: list[str] = []

    def read_and_close(box: QWidget) -> None:
        assert isinstance(box, QMessageBox)
        said.append(box.text())
        box.accept()

    drive(qtbot, window, Qt.Key.Key_F, read_and_close)
    assert "already artefact" in said[0]
    assert "Nothing confirmed" in window.statusBar().currentMessage()
    assert count(store, "SELECT count(*) FROM vitals") == 0


def test_without_a_recorder_nothing_is_decided(
    qtbot: QtBot, window: SessionWindow, clock: FakeClock, store: SessionStore
) -> None:
    feed(window, clock, "M1", spo2=96)
    window.recorder = ""
    window.device_review.confirm()
    assert "Choose who records" in window.statusBar().currentMessage()
    assert count(store, "SELECT count(*) FROM device_reading_reviews") == 0


# --- alarms, automatic confirmation, reopening ------------------------------------------------


def test_a_desaturation_on_a_pending_value_raises_the_banner_at_once(
    window: SessionWindow, clock: FakeClock, store: SessionStore
) -> None:
    feed(window, clock, "M1", spo2=85, hr=110)
    lines = window.alarm_banner.lines()
    assert lines and "device, unconfirmed" in lines[0] and "CRITICAL" in lines[0]
    assert any(kind == "alarm" for _x, kind, _label in window.chart.markers())
    assert count(store, "SELECT count(*) FROM vitals") == 0  # raised before any confirmation


def test_auto_confirmed_trend_is_charted_as_the_record_not_pending(
    qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path
) -> None:
    window = open_window(qtbot, store, clock, tmp_path, KETAMINE)  # auto_confirm spo2, hr
    feed(window, clock, "M1", spo2=97, hr=71, sbp=126, dbp=80)
    chart = window.chart
    assert chart.series_xy("spo2")[1].tolist() == [97.0] and chart.pending_ids("spo2") == []
    assert chart.pending_xy("sbp")[1].tolist() == [126.0]  # a BP spot reading waits
    panel = window.last_values
    assert panel.values["spo2"].text() == "97" and panel.values["spo2"].property("pending") in (
        None,
        False,
    )
    assert panel.values["bp"].text() == "126/80" and panel.values["bp"].property("pending")
    bp = store.db.execute(
        "SELECT id FROM device_readings WHERE vital IN ('sbp', 'dbp') ORDER BY id"
    ).fetchall()
    assert panel.pending_ids() == tuple(i for (i,) in bp)  # F would confirm the BP only


def test_reopening_the_session_draws_pending_and_artefact_readings_again(
    qtbot: QtBot, window: SessionWindow, clock: FakeClock, store: SessionStore, tmp_path: Path
) -> None:
    feed(window, clock, "M1", spo2=63)
    mark_all_with_m(qtbot, window)
    clock.advance(seconds=2)
    pending = feed(window, clock, "M2", spo2=93, hr=80).device_readings
    assert window.log is not None
    sid = window.log.id
    window.close()
    again = shown_window(qtbot, store, clock, tmp_path / "again")
    again.open_session(sid)
    assert again.chart.artefact_xy("spo2")[1].tolist() == [63.0]
    assert again.chart.pending_ids("spo2") == [pending[0].id]
    assert again.last_values.values["spo2"].text() == "93"
    assert again.last_values.values["spo2"].property("pending") is True


def test_night_mode_draws_pending_in_the_night_colours(
    window: SessionWindow, clock: FakeClock
) -> None:
    feed(window, clock, "M1", spo2=96)
    window.chart.apply_palette(True)
    item = window.chart.pending_item("spo2")
    assert color_of(item.opts["pen"]) == pending_color("spo2", night=True)
    assert color_of(item.opts["symbolBrush"]) == NIGHT.background.upper()
    assert color_of(window.chart.artefact_item("spo2").opts["pen"]) == ARTEFACT.night.upper()


def test_the_record_verifies_after_pending_confirmed_and_artefact(
    qtbot: QtBot, window: SessionWindow, clock: FakeClock, store: SessionStore, tmp_path: Path
) -> None:
    feed(window, clock, "M1", spo2=96)
    press(qtbot, window, Qt.Key.Key_F)
    clock.advance(seconds=3)
    feed(window, clock, "M2", spo2=60)
    mark_all_with_m(qtbot, window)
    window.close()
    store.close()
    assert verify_database(tmp_path / "device.sqlite").problems == []


# --- splitting a device write for the window --------------------------------------------------


def test_an_auto_confirmed_write_splits_into_one_save_per_vitals_row(
    qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path
) -> None:
    window = open_window(qtbot, store, clock, tmp_path, KETAMINE)
    changes = store_message(window, clock, "M1", spo2=84, hr=71, sbp=120, dbp=80)
    saves, device = split_for_window(changes)
    assert [part.primary_table for part in saves] == ["vitals"]
    assert {t for t, _r in device.rows} <= {"device_readings", "device_reading_reviews", "alarms"}
    assert sum(len(p.rows) for p in saves) + len(device.rows) == len(changes.rows)
    kept = [r for p in saves for r in p.rows] + list(device.rows)
    assert sorted(id(r[1]) for r in kept) == sorted(id(r[1]) for r in changes.rows)


# --- bounded at 1 Hz for three hours ----------------------------------------------------------

THREE_HOURS = 3 * 60 * 60


def one_hertz(series: str, start: float, first_id: int, n: int) -> Sequence[DevicePoint]:
    return [DevicePoint(series, start + i, 90.0 + (i % 7), first_id + i) for i in range(n)]


def test_a_three_hour_pending_feed_is_held_in_numpy_arrays_not_python_objects(
    qtbot: QtBot,
) -> None:
    chart = TrendChart()
    qtbot.addWidget(chart)
    start = T0.timestamp()
    chart.reset(start)
    hour = 3600
    tracemalloc.start()
    try:
        for part in range(3):
            if part == 2:
                before = tracemalloc.get_traced_memory()[0]
            for series, base in (("spo2", 0), ("hr", 1_000_000)):
                for chunk in range(0, hour, 600):  # as it arrives, ten minutes at a time
                    first = part * hour + chunk
                    points = one_hertz(series, start + first, base + first, 600)
                    chart.apply(ChartDelta(pending=tuple(points)))
                    del points  # the test's own objects: not the chart's memory
            if part == 2:
                third_hour = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    for series in ("spo2", "hr"):
        pending, _artefacts = chart.device_buffers(series)
        assert pending.count == THREE_HOURS
        for array in (pending.t, pending.x, pending.y, pending.ids):
            assert isinstance(array, np.ndarray) and array.dtype.kind in "fi"
        y = chart.pending_item(series).yData
        assert isinstance(y, np.ndarray) and len(y) == THREE_HOURS  # no gap in a steady feed
    # The third hour's growth (issue 13's target: at most 1 MB): the two series' buffers
    # doubling once each (512 kB) and the curves' data; a Python object per reading would be
    # about 100 B each, 720 kB for the hour's 7,200 readings on top.
    assert third_hour < 1_000_000, third_hour


def test_a_gap_in_device_data_is_drawn_as_a_gap(qtbot: QtBot) -> None:
    chart = TrendChart()
    qtbot.addWidget(chart)
    start = T0.timestamp()
    chart.reset(start)
    before = one_hertz("spo2", start, 1, 120)
    after = one_hertz("spo2", start + 120 + 60, 500, 120)  # a minute without data
    chart.apply(ChartDelta(pending=(*before, *after)))
    y = chart.pending_item("spo2").yData
    assert int(np.isnan(y).sum()) == 1
    assert chart.pending_item("spo2").opts["connect"] == "finite"
    assert math.isnan(y[120]) and y[119] == before[-1].value and y[121] == after[0].value


def test_the_pending_look_drops_symbols_when_dense(qtbot: QtBot) -> None:
    chart = TrendChart()
    qtbot.addWidget(chart)
    chart.reset(T0.timestamp())
    chart.apply(ChartDelta(pending=tuple(one_hertz("hr", T0.timestamp(), 1, 10))))
    assert chart.pending_item("hr").opts["symbol"] is not None
    chart.apply(ChartDelta(pending=tuple(one_hertz("hr", T0.timestamp() + 10, 100, 1000))))
    assert chart.pending_item("hr").opts["symbol"] is None


def test_an_ended_session_takes_no_decision_and_its_keys_are_disabled(
    window: SessionWindow, clock: FakeClock, store: SessionStore
) -> None:
    feed(window, clock, "M1", spo2=96)
    assert window.log is not None
    ended = store.add(
        window.log.id, SessionEnd("stayed_for_observation", clock.now(), summary="ok"), "Dr A"
    )
    window.show_changes(ended)
    assert window.log.phase() == "ended"
    assert not window.device_review.confirm_action.isEnabled()
    window.device_review.confirm()  # reached anyway: the store's rule, said plainly
    assert "ended" in window.statusBar().currentMessage()
    assert count(store, "SELECT count(*) FROM device_reading_reviews") == 0
