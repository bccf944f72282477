"""Tests for the live session trend chart.

The chart is read at the bedside, so these tests pin the behaviour a clinician relies on: values
land at the right minute relative to the first dose, missing values do not disturb other series,
the clinical y ranges never rescale, memory stays bounded, and a long live session runs and
closes without Qt warnings (pytest is configured to fail on any).
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from kapmonitor.domain.chart_picture import (
    CHART_SERIES,
    ChartDelta,
    ChartMarker,
    ChartPicture,
    ChartSeries,
    LimitLine,
    labelled_ticks,
)
from kapmonitor.ui.widgets.trend_chart import MARKER_KINDS, SERIES, TrendChart

START = 1_700_000_000.0  # session start, epoch seconds
DOSE = START + 10 * 60  # first dose ten minutes after the start

EXPECTED_Y = [(20.0, 220.0), (70.0, 100.0), (0.0, 60.0), (-0.4, 5.4)]  # as the PDF draws them


@pytest.fixture
def chart(qtbot: QtBot) -> TrendChart:
    widget = TrendChart()
    qtbot.addWidget(widget)
    widget.resize(1280, 800)
    widget.reset(START, origin=DOSE)
    return widget


def test_series_constant() -> None:
    assert SERIES == ("sbp", "dbp", "hr", "spo2", "rr", "etco2", "moaas", "dissociation")


def test_vitals_land_at_minutes_since_dose(chart: TrendChart) -> None:
    chart.add_vitals(DOSE - 5 * 60, sbp=120, dbp=80, hr=70, spo2=98, rr=14)
    chart.add_vitals(DOSE + 30 * 60, sbp=140, dbp=90, hr=88, spo2=96, rr=12)

    x, y = chart.series_xy("sbp")
    np.testing.assert_allclose(x, [-5.0, 30.0])
    np.testing.assert_allclose(y, [120.0, 140.0])
    assert x[0] < 0  # before the dose

    cx, cy = chart.curve_data("sbp")
    np.testing.assert_allclose(cx, [-5.0, 30.0])
    np.testing.assert_allclose(cy, [120.0, 140.0])
    for name, expected in (("dbp", [80, 90]), ("hr", [70, 88]), ("spo2", [98, 96])):
        np.testing.assert_allclose(chart.series_xy(name)[1], expected)
        np.testing.assert_allclose(chart.curve_data(name)[1], expected)


def test_scores_land_in_sedation_lane(chart: TrendChart) -> None:
    chart.add_scores(DOSE + 20 * 60, moaas=3, dissociation=2)
    np.testing.assert_allclose(chart.series_xy("moaas")[0], [20.0])
    np.testing.assert_allclose(chart.series_xy("moaas")[1], [3.0])
    np.testing.assert_allclose(chart.curve_data("dissociation")[1], [2.0])


def test_changing_origin_shifts_x(chart: TrendChart) -> None:
    chart.add_vitals(DOSE + 60, hr=75)
    chart.add_scores(DOSE + 60, moaas=5)
    np.testing.assert_allclose(chart.series_xy("hr")[0], [1.0])

    chart.set_origin(DOSE + 11 * 60)  # dose recorded as later than first thought
    np.testing.assert_allclose(chart.series_xy("hr")[0], [-10.0])
    np.testing.assert_allclose(chart.curve_data("hr")[0], [-10.0])
    np.testing.assert_allclose(chart.curve_data("moaas")[0], [-10.0])

    chart.set_origin(None)  # no dose: back to the session start
    np.testing.assert_allclose(chart.series_xy("hr")[0], [11.0])
    assert chart.origin == START


def test_origin_defaults_to_session_start(qtbot: QtBot) -> None:
    widget = TrendChart()
    qtbot.addWidget(widget)
    widget.reset(START)
    widget.add_vitals(START + 90, spo2=97)
    np.testing.assert_allclose(widget.series_xy("spo2")[0], [1.5])


def test_none_skips_only_that_series(chart: TrendChart) -> None:
    chart.add_vitals(DOSE, sbp=120, dbp=None, hr=72, spo2=None, rr=None, temp=36.8)
    chart.add_vitals(DOSE + 60, sbp=None, dbp=79, hr=float("nan"))
    chart.add_scores(DOSE, moaas=None, dissociation=1)

    assert chart.point_count("sbp") == 1
    assert chart.point_count("dbp") == 1
    assert chart.point_count("hr") == 1  # NaN is treated like None
    assert chart.point_count("spo2") == 0
    assert chart.point_count("rr") == 0
    assert chart.point_count("moaas") == 0
    assert chart.point_count("dissociation") == 1
    assert chart.curve_data("spo2")[0].size == 0
    np.testing.assert_allclose(chart.series_xy("dbp")[0], [1.0])


def test_back_dated_entry_is_kept_in_time_order(chart: TrendChart) -> None:
    chart.add_vitals(DOSE + 10 * 60, hr=80)
    chart.add_vitals(DOSE + 20 * 60, hr=90)
    chart.add_vitals(DOSE + 15 * 60, hr=85)  # entered late
    x, y = chart.series_xy("hr")
    np.testing.assert_allclose(x, [10.0, 15.0, 20.0])
    np.testing.assert_allclose(y, [80.0, 85.0, 90.0])


def test_markers_record_kind_label_and_shift_with_origin(chart: TrendChart) -> None:
    chart.add_marker(DOSE, "dose", "Ketamine 50 mg IM")
    chart.add_marker(DOSE + 55 * 60, "adverse", "Nausea")
    chart.add_marker(DOSE + 90 * 60, "note", "Integration {talk}")  # braces are not a format
    assert chart.markers() == [
        (0.0, "dose", "Ketamine 50 mg IM"),
        (55.0, "adverse", "Nausea"),
        (90.0, "note", "Integration {talk}"),
    ]
    chart.set_origin(DOSE + 5 * 60)
    assert [m[0] for m in chart.markers()] == pytest.approx([-5.0, 50.0, 85.0])
    # One line per plot, all moved; the label text appears only in the top plot.
    lines = [item for item in chart.plots()[2].items if type(item).__name__ == "InfiniteLine"]
    assert sorted(line.value() for line in lines) == pytest.approx([-5.0, 50.0, 85.0])


def test_every_marker_kind_has_its_own_pen_style(chart: TrendChart, qtbot: QtBot) -> None:
    chart.show()
    qtbot.waitExposed(chart)
    for i, kind in enumerate(MARKER_KINDS):
        chart.add_marker(DOSE + i * 60 * 30, kind, kind.title())
    top = chart.plots()[0]
    lines = [item for item in top.items if type(item).__name__ == "InfiniteLine"]
    styles = {line.pen.style() for line in lines}
    colours = {line.pen.color().name() for line in lines}
    assert len(styles) == len(MARKER_KINDS)
    assert len(colours) == len(MARKER_KINDS)
    assert {item.text() for item in chart.marker_labels()} == {k.title() for k in MARKER_KINDS}


def test_unknown_marker_kind_does_not_raise(chart: TrendChart) -> None:
    chart.add_marker(DOSE, "something-new", "?")
    assert chart.markers() == [(0.0, "something-new", "?")]


def test_thresholds_replace_and_ignore_origin(chart: TrendChart) -> None:
    chart.set_thresholds([("sbp", 160, "SBP 160"), ("spo2", 92, "SpO₂ 92")])
    assert chart.thresholds() == [("sbp", 160.0, "SBP 160"), ("spo2", 92.0, "SpO₂ 92")]

    chart.set_thresholds([("rr", 8, "RR 8"), ("temp", 38.0, "T 38")])  # temp is not charted
    assert chart.thresholds() == [("rr", 8.0, "RR 8")]
    rr_plot = chart.plots()[2]
    lines = [item for item in rr_plot.items if type(item).__name__ == "InfiniteLine"]
    assert [line.value() for line in lines] == [8.0]
    for plot in chart.plots()[:2]:
        assert not [item for item in plot.items if type(item).__name__ == "InfiniteLine"]

    chart.set_origin(DOSE + 600)  # horizontal lines do not move with time
    assert chart.thresholds() == [("rr", 8.0, "RR 8")]

    with pytest.raises(ValueError):
        chart.set_thresholds([("bogus", 1.0, "x")])
    assert chart.thresholds() == [("rr", 8.0, "RR 8")]  # unchanged on error


def test_series_are_distinguishable_without_colour(chart: TrendChart) -> None:
    by_plot: dict[int, list[tuple[object, object]]] = {}
    for name in SERIES:
        curve = chart.curve(name)
        index = next(i for i, p in enumerate(chart.plots()) if curve in p.items)
        by_plot.setdefault(index, []).append((curve.opts["symbol"], curve.opts["pen"].style()))
    symbols = [chart.curve(n).opts["symbol"] for n in SERIES]
    assert len(set(symbols)) == len(SERIES)
    colours = {chart.curve(n).opts["pen"].color().name() for n in SERIES}
    assert len(colours) == len(SERIES)
    assert sorted(by_plot) == [0, 1, 2, 3]


def test_y_ranges_stay_fixed_with_extreme_values(chart: TrendChart, qtbot: QtBot) -> None:
    chart.show()
    qtbot.waitExposed(chart)
    before = [plot.viewRange()[1] for plot in chart.plots()]
    for (lo, hi), (exp_lo, exp_hi) in zip(before, EXPECTED_Y, strict=True):
        assert (lo, hi) == (pytest.approx(exp_lo), pytest.approx(exp_hi))
    # Out-of-range but possible values are clipped visually, never rescaled.
    chart.add_vitals(DOSE, sbp=240, dbp=130, hr=180, spo2=60, rr=45)
    chart.add_scores(DOSE, moaas=0, dissociation=4)
    for i in range(1, 30):
        chart.add_vitals(DOSE + i * 60, sbp=240 - i, hr=30 + i)
    QApplication.processEvents()
    after = [plot.viewRange()[1] for plot in chart.plots()]
    assert after == before
    assert chart.y_ranges() == [tuple(r) for r in before]
    for plot in chart.plots():
        assert plot.vb.state["autoRange"] == [False, False]
        assert plot.vb.state["mouseEnabled"][1] is False


def test_x_window_is_fixed_and_only_grows(chart: TrendChart) -> None:
    assert chart.x_range() == pytest.approx((-15.0, 180.0))
    chart.add_vitals(DOSE + 30 * 60, hr=70)
    chart.set_now(DOSE + 30 * 60)
    assert chart.x_range() == pytest.approx((-15.0, 180.0))

    chart.add_vitals(START - 10 * 60, hr=70)  # baseline 20 min before the dose
    assert chart.x_range() == pytest.approx((-22.0, 180.0))

    chart.set_now(DOSE + 200 * 60)  # session ran long
    assert chart.x_range() == pytest.approx((-22.0, 210.0))


def test_buffers_are_bounded_and_keep_newest(qtbot: QtBot) -> None:
    widget = TrendChart(max_points=1000)
    qtbot.addWidget(widget)
    widget.reset(START, origin=DOSE)
    for i in range(1500):
        widget.add_vitals(DOSE + i, hr=60 + (i % 40))
    n = widget.point_count("hr")
    assert 900 <= n <= 1000
    x, y = widget.series_xy("hr")
    assert x[-1] == pytest.approx(1499 / 60)
    assert y[-1] == 60 + (1499 % 40)
    assert np.all(np.diff(x) > 0)
    cx, _ = widget.curve_data("hr")
    assert cx.size == n and cx[-1] == pytest.approx(1499 / 60)


def test_dense_series_hide_symbols_but_keep_key_symbols(chart: TrendChart) -> None:
    for i in range(700):
        chart.add_vitals(DOSE + i, spo2=97)
    curve = chart.curve("spo2")
    assert curve.opts["symbol"] is None
    keys = chart._keys["spo2"]  # sparse five-minute key symbols keep the shape code
    assert 1 <= len(keys.data) <= 4
    chart.reset(START, origin=DOSE)
    assert chart.point_count("spo2") == 0
    assert chart.curve("spo2").opts["symbol"] == "d"


def test_bulk_replay_pushes_once_with_same_result(chart: TrendChart) -> None:
    calls: list[int] = []
    curve = chart.curve("hr")
    original = curve.setData
    curve.setData = lambda *a, **k: (calls.append(1), original(*a, **k))  # type: ignore[method-assign]
    with chart.bulk():
        for i in range(2000):
            chart.add_vitals(START - 20 * 60 + i, hr=70 + i % 9)
        with chart.bulk():  # re-entrant
            chart.add_marker(DOSE, "dose", "Ketamine")
        assert calls == []
    assert len(calls) == 1
    x, y = chart.curve_data("hr")
    assert x.size == 2000 and x[0] == pytest.approx(-30.0)
    np.testing.assert_allclose(y, chart.series_xy("hr")[1])
    assert chart.curve("hr").opts["symbol"] is None  # dense style applied at the end
    assert chart.x_range() == pytest.approx((-32.0, 180.0))


def test_reset_clears_data_and_markers_keeps_thresholds(chart: TrendChart) -> None:
    chart.add_vitals(DOSE, hr=70)
    chart.add_marker(DOSE, "dose", "Ketamine")
    chart.set_thresholds([("hr", 120, "HR 120")])
    chart.reset(START + 86_400)
    assert all(chart.point_count(n) == 0 for n in SERIES)
    assert chart.markers() == []
    assert chart.thresholds() == [("hr", 120.0, "HR 120")]
    assert chart.origin == START + 86_400


def test_palette_and_large_type_change_look(chart: TrendChart, qtbot: QtBot) -> None:
    chart.add_vitals(DOSE, sbp=120, hr=70)
    chart.add_marker(DOSE, "dose", "Ketamine")
    chart.set_thresholds([("sbp", 160, "SBP 160")])
    day = chart.backgroundBrush().color().name()

    chart.apply_palette(True)
    night = chart.backgroundBrush().color()
    assert night.name() != day
    assert night.lightness() < 40
    assert chart.night

    chart.set_large_type(True)
    tick_font = chart.plots()[0].getAxis("left").style["tickFont"]
    assert tick_font.pointSize() > 11
    assert chart.large_type
    chart.set_large_type(False)
    chart.apply_palette(False)
    assert chart.backgroundBrush().color().name() == day
    chart.show()
    qtbot.waitExposed(chart)
    chart.grab()


@pytest.mark.slow
def test_soak_live_session_exits_cleanly(qtbot: QtBot) -> None:
    widget = TrendChart(night=True)
    qtbot.addWidget(widget)
    widget.resize(1280, 800)
    widget.reset(START, origin=DOSE)
    widget.set_thresholds([("sbp", 160, "SBP 160"), ("spo2", 92, "SpO₂ 92")])
    widget.add_marker(DOSE, "dose", "Ketamine")
    widget.show()
    qtbot.waitExposed(widget)
    rng = np.random.default_rng(7)
    for i in range(5000):
        t = START + i
        widget.add_vitals(
            t,
            sbp=125 + rng.normal(0, 4),
            dbp=80 + rng.normal(0, 3),
            hr=75 + rng.normal(0, 3),
            spo2=97 + rng.normal(0, 1),
            rr=15 + rng.normal(0, 1),
            etco2=38 + rng.normal(0, 2),
            temp=36.8,
        )
        widget.add_scores(t, moaas=5 - (i // 1000) % 3, dissociation=(i // 800) % 5)
        widget.set_now(t)
        if i % 50 == 0:
            QApplication.processEvents()
        if i == 2500:
            widget.add_marker(t, "adverse", "Nausea")
    QApplication.processEvents()
    assert all(widget.point_count(n) == 5000 for n in SERIES)
    widget.close()
    QApplication.processEvents()


@pytest.mark.slow
def test_full_three_hour_record(qtbot: QtBot) -> None:
    widget = TrendChart()
    qtbot.addWidget(widget)
    widget.resize(1280, 800)
    widget.reset(START, origin=DOSE)
    widget.show()
    qtbot.waitExposed(widget)
    seconds = 3 * 60 * 60
    for i in range(seconds):
        t = DOSE + i
        widget.add_vitals(t, sbp=120 + (i % 17), hr=70 + (i % 11), spo2=97, rr=14)
        if i % 500 == 0:
            QApplication.processEvents()
    widget.set_now(DOSE + seconds)
    QApplication.processEvents()
    for name in ("sbp", "hr", "spo2", "rr"):
        assert widget.point_count(name) == seconds
        assert widget.curve_data(name)[0].size == seconds
    assert widget.point_count("dbp") == 0
    x, _ = widget.series_xy("sbp")
    assert x[0] == 0.0 and x[-1] == pytest.approx((seconds - 1) / 60)
    assert widget.x_range() == pytest.approx((-15.0, 190.0))
    widget.grab()
    widget.close()


# ---------------------------------------------------------------- event labels

BUSY_EVENTS: list[tuple[float, str, str]] = [
    (0, "dose", "700 mg IM"),
    (60, "adverse", "Nausea G2"),
    (90, "alarm", "CRITICAL: SBP 182"),
    (120, "adverse", "Dizziness G1"),
    (150, "note", "Ondansetron 4 mg"),
    (180, "alarm", "WARNING: HR 121"),
    (200, "adverse", "Anxiety G1"),
    (240, "note", "Music changed"),
    (270, "alarm", "WARNING: SPO2 91"),
    (300, "phase", "Peak effect"),
]
"""A dose, three adverse effects, three alarms, two notes and a phase change in five minutes."""


def busy_chart(qtbot: QtBot, *, night: bool = False, large: bool = False) -> TrendChart:
    """The chart at the size the 1280 × 720 window gives it, with a crowded first five minutes."""
    widget = TrendChart(night=night)
    qtbot.addWidget(widget)
    widget.resize(700, 300)
    widget.reset(START, origin=DOSE)
    widget.set_large_type(large)
    widget.show()
    qtbot.waitExposed(widget)
    for i in range(12):
        widget.add_vitals(START + i * 60, sbp=128, dbp=82, hr=76, spo2=97, rr=14)
    for offset, kind, text in BUSY_EVENTS:
        widget.add_marker(DOSE + offset, kind, text)
    widget.set_now(DOSE + 5 * 60)
    QApplication.processEvents()
    return widget


def assert_labels_apart_and_inside(chart: TrendChart) -> None:
    items = chart.marker_labels()
    assert items, "some label is shown"
    band = chart._label_host.sceneBoundingRect()
    rects = [item.sceneBoundingRect() for item in items]
    for item, rect in zip(items, rects, strict=True):
        assert band.contains(rect), f"{item.text()!r} is clipped by the plot edge"
    for i, a in enumerate(rects):
        for j in range(i + 1, len(rects)):
            assert not a.intersects(rects[j]), (items[i].text(), items[j].text())


def tooltip_at(chart: TrendChart, scene_point: QtCore.QPointF) -> str:
    """What a person sees when resting the pointer on a point of the chart."""
    pos = chart.mapFromScene(scene_point)
    event = QtGui.QHelpEvent(QtCore.QEvent.Type.ToolTip, pos, chart.viewport().mapToGlobal(pos))
    QApplication.sendEvent(chart.viewport(), event)
    text = QtWidgets.QToolTip.text()
    QtWidgets.QToolTip.hideText()
    return text


@pytest.mark.parametrize(
    ("night", "large"), [(False, False), (True, False), (False, True), (True, True)]
)
def test_crowded_event_labels_never_overlap_and_the_dose_reads_in_full(
    qtbot: QtBot, night: bool, large: bool
) -> None:
    chart = busy_chart(qtbot, night=night, large=large)
    assert_labels_apart_and_inside(chart)
    # The label band never pushes the chart past its height (which would cut off the time axis).
    minimum = chart.ci.effectiveSizeHint(QtCore.Qt.SizeHint.MinimumSize).height()
    assert minimum <= chart.height()
    time_axis = chart.plots()[-1].getAxis("bottom").sceneBoundingRect()
    assert time_axis.bottom() <= chart.height()
    items = chart.marker_labels()
    (dose,) = [item for item in items if item.kind == "dose"]
    assert dose.text() == "700 mg IM"
    metrics = QtGui.QFontMetricsF(dose._font)
    assert dose.boundingRect().width() >= metrics.horizontalAdvance("700 mg IM")
    # Everything not labelled in full is in a count badge; every event is somewhere.
    badges = [item for item in items if item.badge]
    assert badges, "eleven labels within five minutes cannot all be written out"
    described = "\n".join(item.toolTip() for item in items)
    for _offset, _kind, text in BUSY_EVENTS:
        assert text in described, text
    total = sum(1 for item in items if not item.badge) + sum(
        int(item.text().lstrip("+")) for item in badges
    )
    assert total == len(BUSY_EVENTS)


def test_hovering_a_label_a_badge_or_a_line_shows_the_full_text(qtbot: QtBot) -> None:
    chart = busy_chart(qtbot)
    items = chart.marker_labels()
    dose = next(item for item in items if item.kind == "dose")
    assert tooltip_at(chart, dose.sceneBoundingRect().center()).endswith(": 700 mg IM")
    badge = next(item for item in items if item.badge)
    shown = tooltip_at(chart, badge.sceneBoundingRect().center())
    assert len(shown.splitlines()) == int(badge.text().lstrip("+"))
    abbreviated = [item for item in items if not item.badge and item.kind != "dose"]
    for item in abbreviated:
        marker_texts = [text for _o, kind, text in BUSY_EVENTS if kind == item.kind]
        assert any(item.toolTip().endswith(f": {text}") for text in marker_texts)
    # The lines carry the full text too, in every plot (here: the oxygen plot).
    lines = chart.marker_lines()
    phase_line = lines[-1][1]
    assert phase_line.toolTip().endswith("Peak effect")
    point = chart.plots()[1].vb.mapViewToScene(QtCore.QPointF(phase_line.value(), 85))
    assert tooltip_at(chart, point).endswith("Peak effect")


def test_labels_are_laid_out_again_when_the_chart_grows_and_type_gets_large(
    qtbot: QtBot,
) -> None:
    chart = busy_chart(qtbot)
    small_badged = sum(int(i.text().lstrip("+")) for i in chart.marker_labels() if i.badge)
    chart.resize(1280, 700)
    QApplication.processEvents()
    assert_labels_apart_and_inside(chart)
    big_badged = sum(int(i.text().lstrip("+")) for i in chart.marker_labels() if i.badge)
    assert big_badged < small_badged  # more room: more labels written out
    assert chart.label_layout() is not None and chart.label_layout().lanes == 3
    chart.set_large_type(True)
    QApplication.processEvents()
    assert_labels_apart_and_inside(chart)
    assert "700 mg IM" in [item.text() for item in chart.marker_labels()]
    chart.resize(700, 300)
    QApplication.processEvents()
    assert_labels_apart_and_inside(chart)


def test_a_dose_at_the_right_edge_is_written_left_of_its_line_not_clipped(
    qtbot: QtBot,
) -> None:
    chart = busy_chart(qtbot)
    chart.add_marker(DOSE + 181 * 60, "dose", "700 mg IM")
    QApplication.processEvents()
    assert_labels_apart_and_inside(chart)
    late = [i for i in chart.marker_labels() if i.kind == "dose"]
    assert [i.text() for i in late] == ["700 mg IM", "700 mg IM"]
    line_x = chart.marker_lines()[-1][0].scenePos().x()
    rightmost = max(late, key=lambda i: i.sceneBoundingRect().left())
    assert rightmost.sceneBoundingRect().right() <= line_x + 1  # left of its line


def test_vitals_saves_do_not_lay_labels_out_again(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kapmonitor.ui.widgets.trend_chart as trend_chart

    chart = busy_chart(qtbot)
    calls: list[int] = []
    original = trend_chart.layout_labels

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(trend_chart, "layout_labels", counting)
    for i in range(30):
        chart.add_vitals(DOSE + 360 + i * 60, sbp=130, dbp=80, hr=80, spo2=97, rr=14)
        chart.set_now(DOSE + 360 + i * 60)
        QApplication.processEvents()
    assert calls == []
    chart.add_marker(DOSE + 40 * 60, "note", "Eyeshades off")
    assert len(calls) == 1
    # Past three hours the window grows a little at each save; only a pixel's move re-lays out.
    for i in range(60):
        chart.set_now(DOSE + 171 * 60 + i)
    assert len(calls) <= 2
    before = len(calls)
    chart.set_now(DOSE + 240 * 60)
    assert len(calls) == before + 1
    assert_labels_apart_and_inside(chart)


@pytest.mark.parametrize("large", [False, True])
def test_short_plots_keep_their_axis_text_apart(qtbot: QtBot, large: bool) -> None:
    chart = busy_chart(qtbot, large=large)
    tick_h = QtGui.QFontMetricsF(chart.plots()[0].getAxis("left").style["tickFont"]).ascent()
    for plot in chart.plots():
        left = plot.getAxis("left")
        labelled = sorted(v for v, text in left._tickLevels[0] if text)
        assert len(labelled) >= 2, "every plot keeps at least its scale's two ends labelled"
        gaps = np.diff([plot.vb.mapViewToScene(QtCore.QPointF(0, v)).y() for v in labelled])
        assert np.all(np.abs(gaps) >= tick_h - 0.5)
        if left.label.isVisible():  # a rotated title no longer than its plot
            assert left.label.boundingRect().width() <= plot.vb.boundingRect().height() + 4
    chart.resize(1280, 800)
    QApplication.processEvents()
    assert chart.plots()[0].getAxis("left").label.isVisible()  # room again: the title is back


def test_closing_twice_is_harmless(qtbot: QtBot) -> None:
    """The window and the test clean-up may both close a chart: the second close is a no-op."""
    widget = TrendChart()
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    widget.close()
    widget.close()
    assert widget.closed and not widget.isVisible()


def test_a_saved_rows_delta_hands_each_changed_series_to_its_curve_once(
    chart: TrendChart, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live save path: one setData per series that received a value, none for the rest."""
    chart.add_vitals(DOSE - 60, sbp=120, dbp=80, hr=70, spo2=98, rr=14, etco2=38)
    calls: list[str] = []
    for name in SERIES:
        for curve in (chart.curve(name), chart.curve_tail(name)):
            original = curve.setData

            def counting(
                *args: object, _name: str = name, _original=original, **kw: object
            ) -> None:
                calls.append(_name)
                _original(*args, **kw)

            monkeypatch.setattr(curve, "setData", counting)
    delta = ChartDelta(points=(("hr", DOSE + 60, 90.0), ("etco2", DOSE + 60, 47.0)))
    chart.apply(delta)
    assert sorted(calls) == ["etco2", "hr"]
    np.testing.assert_allclose(chart.curve_data("etco2")[1], [38.0, 47.0])
    chart.apply(ChartDelta(markers=(ChartMarker(DOSE + 120, "alarm", "WARNING: ETCO2 47"),)))
    assert chart.markers()[-1] == (pytest.approx(2.0), "alarm", "WARNING: ETCO2 47")
    assert sorted(calls) == ["etco2", "hr"]  # a marker touches no curve


def test_etco2_is_drawn_with_rr_on_the_ventilation_plot(chart: TrendChart) -> None:
    chart.add_vitals(DOSE, rr=12, etco2=45, temp_c=36.9)
    ventilation = chart.plots()[2]
    assert chart.curve("etco2") in ventilation.items and chart.curve("rr") in ventilation.items
    assert chart.plots()[2].getAxis("left").labelText == "RR /min · EtCO₂ mmHg"
    assert chart.curve("etco2").opts["symbol"] != chart.curve("rr").opts["symbol"]
    with pytest.raises(TypeError):
        chart.add_vitals(DOSE, bogus=1.0)


def test_a_whole_picture_is_drawn_with_its_origin_limits_and_markers(chart: TrendChart) -> None:
    series = {s.key: ChartSeries(s.key, s.lane) for s in CHART_SERIES}
    series["etco2"].t, series["etco2"].y = [DOSE - 300, DOSE + 600], [36.0, 49.0]
    picture = ChartPicture(
        start=START,
        origin=DOSE,
        since_dose=True,
        series=series,
        markers=[ChartMarker(DOSE, "dose", "50 mg IM")],
        limits=[LimitLine("etco2", "ventilation", 50.0, "EtCO₂ ≥ 50")],
        end=DOSE + 3600,
    )
    chart.add_vitals(DOSE, hr=99)  # replaced: a picture is the whole chart
    chart.show_picture(picture)
    np.testing.assert_allclose(chart.series_xy("etco2")[0], [-5.0, 10.0])
    np.testing.assert_allclose(chart.curve_data("etco2")[1], [36.0, 49.0])
    assert chart.point_count("hr") == 0
    assert chart.thresholds() == [("etco2", 50.0, "EtCO₂ ≥ 50")]
    assert chart.markers() == [(0.0, "dose", "50 mg IM")]
    plot_title = chart.plots()[-1].getAxis("bottom").labelText
    assert plot_title == "Minutes since first dose"


def test_the_labelled_y_ticks_are_the_ones_the_pdf_labels(chart: TrendChart, qtbot: QtBot) -> None:
    chart.show()
    qtbot.waitExposed(chart)
    QApplication.processEvents()
    for plot, ticks in zip(chart.plots(), labelled_ticks(), strict=True):
        shown = [v for v, text in plot.getAxis("left")._tickLevels[0] if text]
        assert shown == list(ticks)


def test_a_save_hands_only_its_series_to_the_chart(
    chart: TrendChart, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A saved SpO2 reading re-hands the newest few minutes of the SpO2 curve alone: no other
    curve, no history, key symbols or axis is touched, and the x window does not move (so Qt
    repaints a narrow strip of the SpO2 lane)."""
    for i in range(900):  # dense: key symbols are drawn too
        chart.apply(ChartDelta(points=tuple((k, DOSE + i, 50.0) for k in SERIES)))
    QApplication.processEvents()
    touched: list[str] = []
    for name in SERIES:
        monkeypatch.setattr(
            chart.curve(name), "setData", lambda *a, _n=name, **k: touched.append(_n)
        )
        monkeypatch.setattr(
            chart.curve_tail(name), "setData", lambda *a, _n=name, **k: touched.append("tail " + _n)
        )
        monkeypatch.setattr(
            chart._keys[name], "setData", lambda *a, _n=name, **k: touched.append("keys " + _n)
        )
    moved: list[object] = []
    for plot in chart.plots():
        plot.vb.sigXRangeChanged.connect(moved.append)
    updated: list[str] = []
    for plot in chart.plots():
        for side in ("left", "bottom", "right"):
            axis = plot.getAxis(side)
            monkeypatch.setattr(axis, "update", lambda *a, _s=side: updated.append(_s))
    before = chart.x_range()
    chart.apply(ChartDelta(points=(("spo2", DOSE + 901, 96.0),)))
    # Only the SpO2 tail: its history, the other series and the key symbols are not re-handed.
    assert touched == ["tail spo2"]
    assert moved == [] and updated == []
    assert chart.x_range() == before


def test_x_window_grows_in_steps_past_three_hours(chart: TrendChart) -> None:
    """Past three hours a save a second later leaves the window where it was; it moves by a
    whole step (keeping at least ten minutes of room) only when the session reaches it."""
    chart.set_now(DOSE + 200 * 60)
    assert chart.x_range() == pytest.approx((-15.0, 210.0))
    chart.set_now(DOSE + 200 * 60 + 1)
    assert chart.x_range() == pytest.approx((-15.0, 215.0))
    for s in range(2, 300):
        chart.set_now(DOSE + 200 * 60 + s)
        assert chart.x_range() == pytest.approx((-15.0, 215.0))
    chart.set_now(DOSE + 205 * 60 + 1)
    assert chart.x_range() == pytest.approx((-15.0, 220.0))


def test_buffers_hold_a_whole_session_without_copying(qtbot: QtBot) -> None:
    """Three hours at one reading per second fit the buffers reserved at the start, so no
    buffer is reallocated (and memory does not step) mid-session; a longer one still grows."""
    widget = TrendChart()
    qtbot.addWidget(widget)
    widget.reset(START, origin=DOSE)
    arrays = widget._buffer("hr").x
    assert arrays.shape[0] >= 3 * 60 * 60
    with widget.bulk():
        for i in range(3 * 60 * 60):
            widget.add_vitals(DOSE + i, hr=70)
    assert widget._buffer("hr").x is arrays
    small = TrendChart(capacity=100)
    qtbot.addWidget(small)
    small.reset(START, origin=DOSE)
    for i in range(300):
        small.add_vitals(DOSE + i, hr=70)
    assert small.point_count("hr") == 300
    np.testing.assert_allclose(small.series_xy("hr")[0][-1], 299 / 60)


def test_tail_folds_into_history_and_the_drawn_line_stays_whole(chart: TrendChart) -> None:
    """Past a few minutes of readings the newest ones move into the history: the two curves
    together always hold exactly the stored series, through a back-dated entry and a new
    origin too (both redraw the whole series)."""
    for i in range(1000):
        chart.add_vitals(DOSE + i, hr=60 + i % 30)
        if i in (0, 239, 240, 500, 999):
            np.testing.assert_allclose(chart.curve_data("hr")[0], chart.series_xy("hr")[0])
    history = chart.curve("hr").xData
    assert history is not None and 600 <= history.size < 1000  # folded, tail kept short
    assert chart.curve_tail("hr").xData.size <= 300
    chart.add_vitals(DOSE + 10.5, hr=99)  # back-dated
    x, y = chart.curve_data("hr")
    np.testing.assert_allclose(y, chart.series_xy("hr")[1])
    assert np.all(np.diff(x) > 0) and 99.0 in y
    chart.set_origin(DOSE + 60)
    np.testing.assert_allclose(chart.curve_data("hr")[0], chart.series_xy("hr")[0])
    assert chart.curve_data("hr")[0][0] == pytest.approx(-1.0)


def test_times_survive_a_moved_origin_to_the_millisecond(qtbot: QtBot) -> None:
    """The buffers keep minutes since the origin, not epoch seconds beside them: a dose that
    moves the origin shifts every point, and the times read back are the ones stored."""
    widget = TrendChart()
    qtbot.addWidget(widget)
    widget.reset(START)
    stored = [START + 0.123 + 7.001 * i for i in range(200)]
    for t in stored:
        widget.add_vitals(t, hr=70)
    widget.set_origin(DOSE)
    buffer = widget._buffer("hr")
    assert buffer.times().tolist() == [round(t, 3) for t in stored]
    assert buffer.time_at(199) == round(stored[-1], 3)
    np.testing.assert_allclose(widget.series_xy("hr")[0], [(t - DOSE) / 60 for t in stored])
    widget.set_origin(None)
    np.testing.assert_allclose(widget.series_xy("hr")[0], [(t - START) / 60 for t in stored])
    assert buffer.times().tolist() == [round(t, 3) for t in stored]
