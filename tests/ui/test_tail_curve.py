"""The newest minutes of a series are drawn by a lean item of their own (tail_curve): these
tests look at the pixels it paints, where device data pause, and the symbols of a sparse series.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui
from pytestqt.qtbot import QtBot

from kapmonitor.ui.widgets.tail_curve import TailCurve
from kapmonitor.ui.widgets.trend_chart import TrendChart

RED = QtGui.QColor(220, 0, 0)


def _plot(qtbot: QtBot) -> tuple[pg.PlotWidget, TailCurve]:
    widget = pg.PlotWidget(background="w")
    qtbot.addWidget(widget)
    widget.resize(400, 300)
    plot = widget.getPlotItem()
    plot.disableAutoRange()
    plot.setXRange(0, 10, padding=0)
    plot.setYRange(0, 10, padding=0)
    tail = TailCurve()
    tail.setPen(RED, width=3)
    plot.addItem(tail, ignoreBounds=True)
    widget.show()
    qtbot.waitExposed(widget)
    return widget, tail


def _red_near(widget: pg.PlotWidget, image: QtGui.QImage, x: float, y: float) -> bool:
    """Any strongly red pixel within 2 px of data point (x, y)."""
    scene = widget.getPlotItem().vb.mapViewToScene(QtCore.QPointF(x, y))
    at = widget.mapFromScene(scene)
    ratio = image.devicePixelRatio()
    for dx in range(-2, 3):
        for dy in range(-2, 3):
            c = image.pixelColor(int((at.x() + dx) * ratio), int((at.y() + dy) * ratio))
            if c.red() > 180 and c.green() < 90 and c.blue() < 90:
                return True
    return False


def test_the_tail_line_is_drawn_through_its_points_and_broken_where_data_paused(
    qtbot: QtBot,
) -> None:
    widget, tail = _plot(qtbot)
    x = np.array([2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    y = np.array([5.0, 5.0, 5.0, math.nan, 5.0, 5.0, 5.0])  # a NaN: the device paused
    tail.setData(x, y)
    image = widget.grab().toImage()
    for drawn in (2.5, 3.5, 6.5, 7.5):
        assert _red_near(widget, image, drawn, 5.0), drawn
    assert not _red_near(widget, image, 5.0, 5.0)  # the pause is not bridged
    assert not _red_near(widget, image, 9.0, 5.0)  # nothing past the newest point
    tail.setData(x, y + 2.0)  # re-handed: drawn at the new values, not the old
    image = widget.grab().toImage()
    assert _red_near(widget, image, 2.5, 7.0) and not _red_near(widget, image, 2.5, 5.0)


def test_its_box_holds_every_finite_point_and_nothing_when_empty(qtbot: QtBot) -> None:
    _widget, tail = _plot(qtbot)
    tail.setData([1.0, 2.0, 3.0], [4.0, math.nan, 9.0])
    box = tail.boundingRect()
    assert box.left() <= 1.0 and box.right() >= 3.0
    assert box.top() <= 4.0 and box.bottom() >= 9.0
    tail.setData([1.0], [math.nan])
    assert tail.boundingRect().isNull()
    tail.setData([], [])
    assert tail.boundingRect().isNull() and tail.xData is not None and tail.xData.size == 0


def test_a_sparse_series_shows_its_symbols_and_a_dense_one_a_plain_line(qtbot: QtBot) -> None:
    _widget, tail = _plot(qtbot)
    tail.setSymbol("t")
    tail.setData([1.0, 2.0], [3.0, 4.0])
    scatter = tail._scatter
    assert scatter.isVisible()
    np.testing.assert_allclose(scatter.getData()[0], [1.0, 2.0])
    tail.setData([1.0, 2.0, 3.0], [3.0, 4.0, 5.0])
    np.testing.assert_allclose(scatter.getData()[1], [3.0, 4.0, 5.0])
    tail.setSymbol(None)  # dense: the history's key symbols take over
    assert not scatter.isVisible() and len(scatter.getData()[0]) == 0


def test_the_chart_hands_the_tail_its_newest_points_in_the_series_style(qtbot: QtBot) -> None:
    chart = TrendChart()
    qtbot.addWidget(chart)
    chart.resize(1280, 800)
    start = 1_700_000_000.0
    chart.reset(start, origin=start)
    for i in range(30):  # sparse: symbols on, dashed as the history
        chart.add_vitals(start + 60 * i, hr=60 + i)
    tail, history = chart.curve_tail("hr"), chart.curve("hr")
    assert tail.symbol() == history.opts["symbol"]
    assert tail.pen().style() == history.opts["pen"].style()
    assert tail.pen().color() == history.opts["pen"].color()
    np.testing.assert_allclose(chart.curve_data("hr")[1], chart.series_xy("hr")[1])
    for i in range(30, 700):  # dense: a solid line without symbols
        chart.add_vitals(start + 60 * i, hr=60 + i % 20)
    assert tail.symbol() is None and history.opts["symbol"] is None
    assert tail.pen().style() == QtCore.Qt.PenStyle.SolidLine
    assert tail.xData is not None and 1 <= tail.xData.size <= 300
    np.testing.assert_allclose(tail.xData[-1], 699.0)
