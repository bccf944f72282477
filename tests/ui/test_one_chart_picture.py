"""The live chart, the review chart and the PDF chart of one session draw one picture.

Before, rows became a chart three times and the copies drifted (the SpO₂ axis, the alarm
labels, which limit lines were drawn). Here one session with EtCO₂ is recorded: part before the
bedside window opens it (its replay), part saved while it is open (the live path, one row at a
time); then the review view shows it and the PDF is written. Every series, limit line, marker
and lane range must be the same in all three, and the same as the domain's picture.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from kapmonitor.domain.changes import Changes
from kapmonitor.domain.chart_picture import SERIES_KEYS, ChartPicture, picture_of
from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import (
    AdverseEvent,
    Dose,
    Entry,
    Intervention,
    Observation,
    VitalSigns,
)
from kapmonitor.domain.reference import default_reference
from kapmonitor.domain.vitals import CHART_LANES
from kapmonitor.reports import pdf_report
from kapmonitor.store.session_store import SessionStore
from kapmonitor.store.signoff import session_quality_flags
from kapmonitor.ui.bedside.session_window import SessionWindow
from kapmonitor.ui.review.session_review_view import SessionReviewView
from kapmonitor.ui.widgets.trend_chart import TrendChart
from tests.factories import T0, open_store, protocol, session_start
from tests.ui.window_driver import shown_window


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    opened = open_store(tmp_path / "picture.sqlite", clock)
    yield opened
    opened.close()


def vitals(minutes: float, sbp: int, hr: int, spo2: int, rr: int, etco2: int) -> VitalSigns:
    return VitalSigns(
        T0 + timedelta(minutes=minutes),
        hr=hr,
        sbp=sbp,
        dbp=sbp - 45,
        spo2=spo2,
        rr=rr,
        etco2=etco2,
    )


def add(store: SessionStore, clock: FakeClock, session_id: str, entry: Entry) -> Changes:
    clock.set(entry.observed_at + timedelta(seconds=20))  # type: ignore[attr-defined]
    return store.add(session_id, entry, "Dr A")


def drawn(chart: TrendChart) -> dict[str, Any]:
    """What a chart draws: each series' points, the limit lines, the markers, the y ranges."""
    markers = sorted((round(x, 6), kind, label) for x, kind, label in chart.markers())
    return {
        "series": {key: chart.series_xy(key) for key in SERIES_KEYS},
        "limits": sorted(chart.thresholds()),
        "markers": markers,
        "y": chart.y_ranges(),
    }


def assert_same(chart: dict[str, Any], picture: ChartPicture) -> None:
    for key in SERIES_KEYS:
        x, y = picture.xy(key)
        np.testing.assert_allclose(chart["series"][key][0], x, atol=1e-9, err_msg=key)
        np.testing.assert_allclose(chart["series"][key][1], y, err_msg=key)
    assert chart["limits"] == sorted(
        (line.series, line.value, line.label) for line in picture.limits
    )
    assert chart["markers"] == sorted(
        (round(picture.x(m.t), 6), m.kind, m.label) for m in picture.markers
    )
    assert chart["y"] == [(lane.y_min, lane.y_max) for lane in picture.lanes]


def test_live_review_and_pdf_charts_draw_one_picture(
    qtbot: QtBot,
    store: SessionStore,
    clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session_id = store.start_session(
        session_start(clock), "Dr A", protocol=protocol("clinic-ketamine")
    )
    before = [
        vitals(2, 128, 72, 98, 14, 38),
        Dose("ketamine", "im", 50.0, T0 + timedelta(minutes=10), weight_kg=70.0),
        vitals(15, 142, 84, 96, 12, 44),
    ]
    for entry in before:
        add(store, clock, session_id, entry)

    window: SessionWindow = shown_window(qtbot, store, clock, tmp_path)
    window.open_session(session_id, fresh=True)
    live_entries: list[Entry] = [
        Observation(T0 + timedelta(minutes=20), moaas=4, dissociation=2),
        vitals(25, 150, 90, 93, 9, 52),  # EtCO₂ above the protocol's limit: an alarm marker
        AdverseEvent("nausea", 2, T0 + timedelta(minutes=28)),
        Intervention("support", T0 + timedelta(minutes=30), detail="Reassured"),
        vitals(35, 136, 80, 97, 13, 41),
    ]
    for entry in live_entries:
        window.show_changes(add(store, clock, session_id, entry))

    log = store.load(session_id)
    picture = picture_of(log, default_reference())
    assert picture.xy("etco2")[1] == [38.0, 44.0, 52.0, 41.0]
    assert any(m.kind == "alarm" and "ETCO2" in m.label for m in picture.markers)
    assert any(line.series == "etco2" for line in picture.limits)
    assert {m.kind for m in picture.markers} >= {"dose", "adverse", "note", "alarm"}

    live = drawn(window.chart)
    assert_same(live, picture)
    ventilation = window.chart.plots()[[lane.key for lane in CHART_LANES].index("ventilation")]
    assert window.chart.curve("etco2") in ventilation.items
    assert window.chart.curve("rr") in ventilation.items

    review = SessionReviewView(store, clock)
    qtbot.addWidget(review)
    review.show_session(session_id)
    reviewed = drawn(review.chart)
    assert_same(reviewed, picture)
    assert {k: v for k, v in reviewed.items() if k != "series"} == {
        k: v for k, v in live.items() if k != "series"
    }

    pictures: list[ChartPicture] = []
    real_render = pdf_report.render_chart

    def capture(data: ChartPicture, *args: Any, **kwargs: Any) -> Any:
        pictures.append(data)
        return real_render(data, *args, **kwargs)

    monkeypatch.setattr(pdf_report, "render_chart", capture)
    pdf_report.render_session_pdf(log, tmp_path / "picture.pdf", session_quality_flags(store, log))
    (printed,) = pictures
    assert printed == picture
