"""F never confirms a reading the device itself flagged (issue 13, window part 1).

A monitor that says "artefact" or "probe off" about a value has told us it doubts it; one
keystroke meant for the values that look right must not file it. The flagged reading is shown in
its own look (a lighter cross on the chart, "device: artefact" under the big number), left out of
F, refused by the store if anything else tries, and markable artefact with M
(tests/ui/test_device_artefact_chooser_gui.py drives M's chooser)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from kapmonitor.devices.reading import DeviceReading, ReadingFlag
from kapmonitor.domain.changes import Changes
from kapmonitor.domain.chart_style import flagged_color
from kapmonitor.domain.clock import FakeClock
from kapmonitor.store import device_store
from kapmonitor.store.errors import StoreError
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.bedside.device_review import FLAGGED_ONLY
from kapmonitor.ui.bedside.session_window import SessionWindow
from tests.factories import T0, open_store
from tests.ui.test_device_pending_gui import KETAMINE, MONITOR, count, no_auto, open_window, press


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    opened = open_store(tmp_path / "flagged.sqlite", clock)
    yield opened
    opened.close()


@pytest.fixture
def window(qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path) -> SessionWindow:
    return open_window(qtbot, store, clock, tmp_path, no_auto(KETAMINE))


def send(
    window: SessionWindow,
    clock: FakeClock,
    message: str,
    values: dict[str, float | None],
    flags: dict[str, set[ReadingFlag]] | None = None,
) -> Changes:
    """One message stored by the real store and handed to the window, as the feed does."""
    assert window.log is not None
    readings = [
        DeviceReading(
            device_id=MONITOR,
            source="mllp",
            message_id=message,
            received_at=clock.now(),
            observed_at=clock.now() - timedelta(seconds=1),
            vital=vital,
            value=value,
            unit="%" if vital == "spo2" else "/min",
            flags=frozenset((flags or {}).get(vital, set())),
        )
        for vital, value in values.items()
    ]
    changes = device_store.add_device_readings(window.store, window.log.id, readings)
    window.apply_device_changes(changes)
    return changes


def reading_id(store: SessionStore, vital: str, message: str) -> int:
    return int(
        store.db.execute(
            "SELECT id FROM device_readings WHERE vital = ? AND message_id = ?", [vital, message]
        ).fetchone()[0]
    )


def test_f_leaves_a_device_flagged_value_pending_and_shows_it_apart(
    qtbot: QtBot, window: SessionWindow, clock: FakeClock, store: SessionStore
) -> None:
    send(window, clock, "M1", {"spo2": 62, "hr": 72}, {"spo2": {ReadingFlag.ARTEFACT}})
    spo2, hr = reading_id(store, "spo2", "M1"), reading_id(store, "hr", "M1")
    panel, chart = window.last_values, window.chart
    # Its own look: a lighter cross on the chart, not a pending point; the flag in words.
    assert chart.flagged_xy("spo2")[1].tolist() == [62.0] and chart.pending_ids("spo2") == []
    assert chart.flagged_item("spo2").opts["pen"].color().name().upper() == flagged_color(False)
    assert panel.values["spo2"].text() == "62" and panel.ages["spo2"].text() == "device: artefact"
    assert "flagged by the device" in panel.values["spo2"].toolTip()
    assert panel.pending_ids() == (hr,) and panel.flagged_ids() == (spo2,)

    press(qtbot, window, Qt.Key.Key_F)
    confirmed = store.db.execute(
        "SELECT device_reading_id FROM device_reading_reviews WHERE decision = 'confirmed'"
    ).fetchall()
    assert confirmed == [(hr,)]  # the HR only
    assert count(store, "SELECT count(*) FROM vitals WHERE spo2 IS NOT NULL") == 0
    assert panel.flagged_ids() == (spo2,)  # still shown, still flagged, still pending
    # Only the flagged value left: F is disabled, M is not; asked anyway, F says why.
    assert not window.device_review.confirm_action.isEnabled()
    assert window.device_review.artefact_action.isEnabled()
    window.device_review.confirm()
    assert FLAGGED_ONLY in window.statusBar().currentMessage()
    assert count(store, "SELECT count(*) FROM device_reading_reviews") == 1


def test_the_store_refuses_to_confirm_a_flagged_reading_by_any_path(
    window: SessionWindow, clock: FakeClock, store: SessionStore
) -> None:
    send(window, clock, "M1", {"spo2": 95}, {"spo2": {ReadingFlag.PRELIMINARY}})
    spo2 = reading_id(store, "spo2", "M1")
    assert window.log is not None
    with pytest.raises(
        (StoreError, ValueError), match=r"flagged by the device \(device: preliminary\)"
    ):
        device_store.confirm_device_readings(store, window.log.id, [spo2], "Dr A")
    assert count(store, "SELECT count(*) FROM device_reading_reviews") == 0


def test_probe_off_is_said_under_the_number_until_a_value_returns(
    window: SessionWindow, clock: FakeClock, store: SessionStore
) -> None:
    send(window, clock, "M1", {"spo2": 97})
    clock.advance(seconds=5)
    send(window, clock, "M2", {"spo2": None}, {"spo2": {ReadingFlag.PROBE_OFF}})
    panel = window.last_values
    assert panel.ages["spo2"].text() == "probe off"
    assert panel.values["spo2"].text() == "97"  # the last value stays, captioned
    clock.advance(seconds=5)
    send(window, clock, "M3", {"spo2": 96})
    assert panel.values["spo2"].text() == "96" and panel.ages["spo2"].text() != "probe off"


def test_a_reopened_session_draws_the_flagged_reading_apart_again(
    window: SessionWindow, clock: FakeClock, store: SessionStore
) -> None:
    send(window, clock, "M1", {"spo2": 62, "hr": 72}, {"spo2": {ReadingFlag.ARTEFACT}})
    assert window.log is not None
    window.open_session(window.log.id)
    assert window.chart.flagged_xy("spo2")[1].tolist() == [62.0]
    assert window.chart.pending_xy("hr")[1].tolist() == [72.0]
    assert window.last_values.flagged_ids() == (reading_id(store, "spo2", "M1"),)
