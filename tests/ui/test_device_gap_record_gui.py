"""A pause of the device feed is a gap on the record's own curve in the bedside window too.

The protocol confirms the 1 Hz SpO₂/HR trend as it arrives (clinic-ketamine), so those values are
drawn by the record's curve (vitals rows), not the pending one. When the feed stops for a minute,
that curve must not bridge the minute as if the patient had been watched; hand-entered readings
are joined as always. Reopening the session (the rows replayed) and the review/PDF picture show
the same gap."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import VitalSigns
from kapmonitor.store.session_store import SessionStore
from tests.factories import T0, open_store
from tests.ui.test_device_pending_gui import KETAMINE, feed, open_window


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    opened = open_store(tmp_path / "gap.sqlite", clock)
    yield opened
    opened.close()


def nan_count(y: np.ndarray) -> int:
    return int(np.isnan(y).sum())


def test_a_paused_auto_confirmed_feed_breaks_the_record_curve(
    qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path
) -> None:
    window = open_window(qtbot, store, clock, tmp_path, KETAMINE)  # auto-confirms SpO₂ and HR
    for i in range(10):
        clock.advance(seconds=1)
        feed(window, clock, f"A{i}", spo2=97, hr=72)
    clock.advance(seconds=60)  # the probe was off the finger for a minute: no message at all
    for i in range(10):
        clock.advance(seconds=1)
        feed(window, clock, f"B{i}", spo2=96, hr=74)
    chart = window.chart
    for series in ("spo2", "hr"):
        assert chart.pending_ids(series) == []  # all charted as the record
        x, y = chart.curve_data(series)
        assert nan_count(y) == 1, series  # one break, at the minute without data
        i = int(np.flatnonzero(np.isnan(y))[0])
        assert x[i] == x[i - 1] and y[i - 1] == (97 if series == "spo2" else 72)
        assert y[i + 1] == (96 if series == "spo2" else 74)
        assert chart.curve(series).opts["connect"] == "finite"

    # A reading typed by hand fifteen minutes later is joined to the device line.
    clock.advance(minutes=15)
    assert window.log is not None
    changes = store.add(window.log.id, VitalSigns(clock.now(), spo2=95, hr=80), "Dr A")
    window.show_changes(changes)
    assert nan_count(chart.curve_data("spo2")[1]) == 1

    # Reopened, the rows are replayed through the same rule; the review/PDF picture agrees.
    window.open_session(window.log.id)
    assert nan_count(chart.curve_data("spo2")[1]) == 1
    assert nan_count(chart.curve_data("hr")[1]) == 1
    picture = window.log.chart_picture(window.ref)
    assert sum(math.isnan(v) for v in picture.series["spo2"].y) == 1
    assert len(picture.series["spo2"].y) == 21 + 1  # 20 device rows, 1 typed, 1 break
