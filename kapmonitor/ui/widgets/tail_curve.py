"""The newest few minutes of a charted series: the part a save re-hands at every reading.

The chart draws each series as a history (a pyqtgraph ``PlotDataItem``, cached as a pixmap) and
this tail. ``PlotDataItem.setData`` runs its whole pipeline for every call: dataset, bounds,
downsampling, clipping, the curve's and the scatter's own ``setData``. For a tail of at most a
few hundred points that pipeline was most of what a save cost the chart (six of them: about
0.15 ms each, profiled), and none of it is needed: the tail is always in view, a strip a few
pixels wide, its points already finite-or-NaN floats.

So the tail keeps its arrays, its data extents and a path built when first painted; a series
with few points (symbols shown) hands them to a scatter item of its own, as the history does.
It takes the styling calls the chart gives the history (pen, symbol, symbol pen, brush and
size), so both halves of a line always look the same.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

_PEN_PAD = 0.7072  # as pyqtgraph pads a cosmetic pen: half its width along a diagonal


class TailCurve(pg.GraphicsObject):
    """One series' newest points: a polyline broken at NaN, symbols while the series is sparse."""

    def __init__(self) -> None:
        super().__init__()
        self.xData: np.ndarray | None = None
        self.yData: np.ndarray | None = None
        self._pen = pg.mkPen(None)
        self._symbol: str | None = None
        self._extent: QtCore.QRectF | None = None  # the data's, in data units
        self._rect: QtCore.QRectF | None = None  # with the pen's and symbols' pixels
        self._path: QtGui.QPainterPath | None = None
        self._scatter = pg.ScatterPlotItem(pxMode=True)
        self._scatter.setParentItem(self)
        self._scatter.hide()

    # --- data -------------------------------------------------------------------------------

    def setData(self, x: np.ndarray | list[float], y: np.ndarray | list[float]) -> None:
        """Show these points (views into the chart's buffers are fine: read, never kept past
        the next call)."""
        self.prepareGeometryChange()
        xs = np.asarray(x, dtype=np.float64)
        ys = np.asarray(y, dtype=np.float64)
        self.xData, self.yData = xs, ys
        self._path = None
        self._rect = None
        self._extent = _extent(xs, ys)
        if self._symbol is not None:
            self._scatter.setData(x=xs, y=ys)
        self.update()

    # --- style (the PlotDataItem calls the chart makes) ------------------------------------

    def setPen(self, *args: object, **kwargs: object) -> None:
        self._pen = pg.mkPen(*args, **kwargs)
        self._restyled()

    def setSymbol(self, symbol: str | None) -> None:
        if symbol == self._symbol:
            return
        self._symbol = symbol
        if symbol is None:
            self._scatter.hide()
            self._scatter.clear()
        else:
            self._scatter.setSymbol(symbol)
            self._scatter.show()
            if self.xData is not None:
                self._scatter.setData(x=self.xData, y=self.yData)
        self._restyled()

    def setSymbolPen(self, *args: object, **kwargs: object) -> None:
        self._scatter.setPen(pg.mkPen(*args, **kwargs))

    def setSymbolBrush(self, *args: object, **kwargs: object) -> None:
        self._scatter.setBrush(pg.mkBrush(*args, **kwargs))

    def setSymbolSize(self, size: float) -> None:
        self._scatter.setSize(size)

    def symbol(self) -> str | None:
        return self._symbol

    def pen(self) -> QtGui.QPen:
        return QtGui.QPen(self._pen)

    def _restyled(self) -> None:
        self.prepareGeometryChange()
        self._rect = None
        self.update()

    # --- drawing ----------------------------------------------------------------------------

    def boundingRect(self) -> QtCore.QRectF:
        if self._rect is None:
            self._rect = self._padded()
        return self._rect

    def _padded(self) -> QtCore.QRectF:
        if self._extent is None:
            return QtCore.QRectF()
        pad = 0.0
        if self._pen.style() != QtCore.Qt.PenStyle.NoPen:
            pad = self._pen.widthF() * _PEN_PAD
        px, py = self.pixelVectors()
        if px is None or py is None or pad == 0.0:
            return QtCore.QRectF(self._extent)
        dx, dy = px.length() * pad, py.length() * pad
        return self._extent.adjusted(-dx, -dy, dx, dy)

    def viewTransformChanged(self) -> None:
        """The view zoomed or resized: the pen's pixels are another size in data units."""
        self._rect = None
        self.prepareGeometryChange()

    def paint(self, p: QtGui.QPainter, *args: object) -> None:
        if self._extent is None or self._pen.style() == QtCore.Qt.PenStyle.NoPen:
            return
        if self._path is None:
            assert self.xData is not None and self.yData is not None
            self._path = pg.arrayToQPath(self.xData, self.yData, connect="finite")
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, False)
        p.setPen(self._pen)
        p.setBrush(QtCore.Qt.BrushStyle.NoBrush)
        p.drawPath(self._path)


def _extent(x: np.ndarray, y: np.ndarray) -> QtCore.QRectF | None:
    """The points' box, NaN values (breaks in device data) left out; ``None`` if none."""
    if x.size == 0:
        return None
    finite = np.isfinite(y)
    if not finite.all():
        if not finite.any():
            return None
        x, y = x[finite], y[finite]
    x0, x1 = float(x.min()), float(x.max())
    y0, y1 = float(y.min()), float(y.max())
    return QtCore.QRectF(x0, y0, x1 - x0, y1 - y0)
