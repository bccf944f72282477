"""Live trend chart of a ketamine-assisted psychotherapy (KAP) session.

The therapist glances at this chart from the bedside, often from a couple of metres away and in
a dimmed room, so the design choices below favour legibility and predictability over features:

* Four stacked plots share one time axis (minutes since the first dose, negative before it) so a
  change in blood pressure can be read against the sedation level and the dose marker directly
  above or below it.
* Every plot has a fixed clinical y range. Auto-scaling would make a normal reading look dramatic
  (or hide a real trend) and would make the picture jump at every save.
* The x window is fixed to the whole three-hour session and only ever grows (past three hours in
  5-minute steps), so the chart does not scroll or jump while someone is looking at it.
* Every series and every marker kind differs by shape or line style as well as by colour, because
  colour alone is unreliable for colour-blind readers, on a night palette and on poor displays.
* A full session at one reading per second (10,800 points per series) must stay smooth, so data
  live in bounded numpy buffers reserved for a whole session, handed to the curves as slices;
  each series is drawn as a cached history plus a short tail, each append re-hands only the tail
  of the series that received a value (Qt repaints a narrow strip), and no per-point Python
  objects are created.

* Event labels never print over each other or past the plot edge: they are laid out in lanes
  by :mod:`kapmonitor.domain.label_layout` (doses first and always in full, others shortened or
  counted in a "+n" badge), with the full text as a tooltip on every label, badge and line.
  The layout is redone only when the events, the plot size, the type size or the x window (by a
  pixel or more) change, never on a plain vitals save.

* Device readings awaiting a clinician (issue 13) are drawn apart from the record, per series, in
  the style's pending look (lighter, hollow symbols, a thin dotted line broken where the device
  data stopped); a confirmed reading's pending point goes (its vitals row is a normal point) and
  a reading marked artefact stays as a grey cross. They too live in numpy buffers with the
  reading ids beside them (no per-point Python objects), bounded like the series.

The chart is a thin renderer of the Qt-free chart picture (:mod:`kapmonitor.domain.chart_picture`)
in the shared style (:mod:`kapmonitor.domain.chart_style`), the same picture and style the PDF
chart draws: the review view shows a whole picture (:meth:`TrendChart.show_picture`), the session
window applies one saved row's :class:`~kapmonitor.domain.chart_picture.ChartDelta` at a time
(:meth:`TrendChart.apply`). Lanes, their fixed ranges and ticks are the vital-sign registry's.
All times are POSIX epoch seconds.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pyqtgraph as pg
from pyqtgraph.graphicsItems.LegendItem import ItemSample
from pyqtgraph.graphicsItems.ScatterPlotItem import drawSymbol
from PySide6 import QtCore, QtGui, QtWidgets

from kapmonitor.domain.chart_picture import (
    CHART_SERIES,
    MARKER_KINDS,
    SERIES_KEYS,
    ChartDelta,
    ChartMarker,
    ChartPicture,
    DeviceGaps,
    LimitLine,
    labelled_ticks,
    marker_tip,
)
from kapmonitor.domain.chart_style import (
    ARTEFACT,
    GAP_WINDOW,
    KEY_PERIOD_MIN,
    KEY_PHASE_MIN,
    PENDING,
    SERIES_STYLES,
    SYMBOLS_MAX_POINTS,
    flagged_color,
    gap_limit,
    marker_style,
    palette,
    pending_color,
)
from kapmonitor.domain.label_layout import (
    EventLabel,
    LabelLayout,
    badge_text,
    label_texts,
    layout_labels,
)
from kapmonitor.domain.vitals import CHART_LANES, VITAL_KEYS, ChartLane
from kapmonitor.ui.widgets.tail_curve import TailCurve

__all__ = ["MARKER_KINDS", "SERIES", "TrendChart"]

#: Names of the charted series, in drawing order (the picture's).
SERIES: tuple[str, ...] = SERIES_KEYS

_LANE_INDEX = {lane.key: i for i, lane in enumerate(CHART_LANES)}

_Y_RANGES: tuple[tuple[float, float], ...] = tuple((x.y_min, x.y_max) for x in CHART_LANES)
"""Fixed clinical y range of each plot, top to bottom: the registry's lanes."""


def _ticks(lane: ChartLane, labelled: tuple[float, ...]) -> tuple[list[float], list[float]]:
    """(major, minor): the labelled ticks, then the lane's others and the halves between."""
    halves = [(a + b) / 2 for a, b in itertools.pairwise(lane.ticks)]
    return list(labelled), sorted([t for t in lane.ticks if t not in labelled] + halves)


_Y_TICKS: tuple[tuple[list[float], list[float]], ...] = tuple(
    _ticks(lane, ticks) for lane, ticks in zip(CHART_LANES, labelled_ticks(), strict=True)
)
"""Explicit (major, minor) y ticks: fixed ranges deserve fixed, round, always-labelled ticks
(automatic ticks drop labels on the short plots). Majors are the ones the PDF labels too."""

_PLOT_STRETCH: tuple[int, ...] = tuple(x.stretch for x in CHART_LANES)
"""Relative plot heights: BP/HR gets most room because it holds three series."""

_AXIS_LABELS: tuple[str, ...] = tuple(x.title for x in CHART_LANES)

_SYMBOLS_MAX_POINTS = SYMBOLS_MAX_POINTS
"""Above this many points a series is "dense": per-point symbols would merge into a smear and
drawing thousands of them costs far more than the line itself, so they are hidden. Dash patterns
are dropped too: on a peak-downsampled line they read as noise and cost ~10x a solid line."""

_KEY_PERIOD_S = KEY_PERIOD_MIN * 60.0
"""In dense mode the series symbol is still drawn once per five minutes ("key symbols"), so
series stay distinguishable without colour. The grid is anchored to the epoch, not to the
number of points, so existing key symbols never move as data arrive."""

_KEY_PHASE_S: dict[str, float] = {k: v * 60.0 for k, v in KEY_PHASE_MIN.items()}
"""Series sharing a plot put their key symbols at staggered times so they do not overlap."""

_IGNORED = frozenset({"temp", *(k for k in VITAL_KEYS if k not in SERIES_KEYS)})
"""Vitals a caller may pass with a whole reading that are not charted (temperature: its trend
over a session is flat and it is shown as a number elsewhere)."""

#: The style's line names as Qt pen styles.
_DASH: dict[str, QtCore.Qt.PenStyle] = {
    "solid": QtCore.Qt.PenStyle.SolidLine,
    "dash": QtCore.Qt.PenStyle.DashLine,
    "dot": QtCore.Qt.PenStyle.DotLine,
    "dashdot": QtCore.Qt.PenStyle.DashDotLine,
    "dashdotdot": QtCore.Qt.PenStyle.DashDotDotLine,
}

SESSION_CAPACITY = 3 * 60 * 60 + 1200
"""Points reserved per series up front: a three-hour session (the protocols' session limit)
at one reading per second, plus 20 minutes of margin for the baseline before the dose and a
session running a little long. Growing by doubling mid-session copied every buffer once in
the third hour (a visible step in resident memory); a longer session still grows."""

_LABEL_PAD_X = 4.0
"""Horizontal padding inside a marker label box, each side (px)."""

_LABEL_LINE_GAP = 3.0
"""Distance between a marker line and its label box (px)."""

_LABEL_BAND_SHARE = 0.16
"""About this share of the chart's height goes to the label band above the plots, in whole
lanes: one or two lanes on a 300 px chart, three on a tall one. The rest stays for the data."""

_LABEL_MAX_LANES = 3

_X_MIN_DEFAULT = -15.0
_X_MAX_DEFAULT = 180.0

_TAIL_POINTS = 240
"""A series is drawn as two curves: its history, and a tail of at most about this many newest
points (4 minutes at 1 Hz). A save re-hands only the tail, so Qt repaints a strip a few pixels
wide at the right of the data instead of every lane end to end; the history, cached as a
pixmap, is redrawn once per tail length (staggered between series)."""

_X_GROW_STEP_MIN = 5.0
"""Past its default end the x window grows in steps of this many minutes (at most one move
per five minutes of session), so a save in a long session does not move the whole picture."""


def _step_up(x: float) -> float:
    """``x`` rounded up to the next whole growth step (minutes)."""
    return math.ceil(x / _X_GROW_STEP_MIN - 1e-9) * _X_GROW_STEP_MIN


@dataclass(frozen=True)
class _SeriesSpec:
    """How one series is drawn; shape and dash keep series apart without colour."""

    plot: int
    legend: str
    symbol: str
    dash: QtCore.Qt.PenStyle


_SPECS: dict[str, _SeriesSpec] = {
    s.key: _SeriesSpec(
        _LANE_INDEX[s.lane],
        SERIES_STYLES[s.key].legend,
        SERIES_STYLES[s.key].symbol,
        _DASH[SERIES_STYLES[s.key].dash],
    )
    for s in CHART_SERIES
}


@dataclass(frozen=True)
class _Palette:
    """Colours of one lighting condition, from the shared style. Night colours are muted and
    never pure white."""

    background: str
    foreground: str
    axis: str
    grid_alpha: float
    legend_fill: QtGui.QColor
    label_fill: QtGui.QColor
    series: dict[str, str]
    markers: dict[str, str]
    pending: dict[str, str]
    artefact: str
    flagged: str


def _palette(night: bool) -> _Palette:
    chrome = palette(night)
    return _Palette(
        background=chrome.background,
        foreground=chrome.foreground,
        axis=chrome.axis,
        grid_alpha=chrome.grid_alpha,
        legend_fill=QtGui.QColor(*chrome.legend_fill),
        label_fill=QtGui.QColor(*chrome.label_fill),
        series={key: style.color(night) for key, style in SERIES_STYLES.items()},
        markers={kind: marker_style(kind).color(night) for kind in MARKER_KINDS},
        pending={key: pending_color(key, night) for key in SERIES_STYLES},
        artefact=ARTEFACT.color(night),
        flagged=flagged_color(night),
    )


_DAY = _palette(False)
_NIGHT = _palette(True)


@dataclass(frozen=True)
class _TypeScale:
    """Font sizes (pt) and axis widths (px) for normal and large type."""

    tick: int
    label: int
    legend: int
    marker: int
    symbol: int
    left_axis_width: int
    right_axis_width: int


_NORMAL_TYPE = _TypeScale(
    tick=11, label=11, legend=11, marker=11, symbol=9, left_axis_width=72, right_axis_width=72
)
_LARGE_TYPE = _TypeScale(
    tick=15, label=14, legend=14, marker=14, symbol=12, left_axis_width=96, right_axis_width=96
)


class _SeriesBuffer:
    """Bounded, preallocated storage for one series.

    ``x`` holds the instants in minutes since the origin (what is drawn, handed to the curve as
    a slice, shifted only when the origin moves) and ``y`` the values. The epoch seconds are not
    kept beside them: ``origin + 60 * x`` gives them back (:meth:`times`) to well under a
    microsecond, and a third array per series was a third of what a three-hour 1 Hz record
    grows the window by. Capacity starts at ``capacity`` (a whole session, so no copy happens
    while one is recorded) and doubles up to ``max_points`` beyond it; when full, the oldest
    10% are dropped so a runaway session can never exhaust memory.
    """

    __slots__ = ("count", "edits", "max_points", "origin", "x", "y")

    def __init__(self, max_points: int, capacity: int = SESSION_CAPACITY) -> None:
        self.max_points = max_points
        self.edits = 0
        """Counts changes to points already stored (oldest dropped, a back-dated insert, the
        origin moved): the chart then redraws the whole series, not just its tail."""
        capacity = max(1, min(capacity, max_points))
        self.x = np.empty(capacity, dtype=np.float64)
        self.y = np.empty(capacity, dtype=np.float64)
        self.count = 0
        self.origin: float | None = None  # epoch seconds at x == 0, from the first point

    def clear(self) -> None:
        self.count = 0
        self.edits += 1

    def time_at(self, index: int) -> float:
        """Epoch seconds of point ``index`` (stored times are whole milliseconds)."""
        return round(float(self.origin or 0.0) + 60.0 * float(self.x[index]), 3)

    def times(self) -> np.ndarray:
        """Epoch seconds of every point (a new array; stored times are whole milliseconds)."""
        return np.round(float(self.origin or 0.0) + 60.0 * self.x[: self.count], 3)

    def _make_room(self) -> None:
        n = self.count
        capacity = self.x.shape[0]
        if n < capacity:
            return
        if capacity < self.max_points:
            new_capacity = min(capacity * 2, self.max_points)
            for name in ("x", "y"):
                old = getattr(self, name)
                new = np.empty(new_capacity, dtype=np.float64)
                new[:n] = old[:n]
                setattr(self, name, new)
            return
        drop = max(1, n // 10)
        keep = n - drop
        for arr in (self.x, self.y):
            arr[:keep] = arr[drop:n]
        self.count = keep
        self.edits += 1

    def append(self, t: float, x: float, y: float) -> None:
        """Store one point, keeping time order (late entries are inserted in place). ``x`` is
        ``t`` in minutes since the chart's current origin."""
        if self.origin is None or self.count == 0:
            self.origin = t - 60.0 * x
        self._make_room()
        n = self.count
        if n == 0 or x >= self.x[n - 1]:
            self.x[n] = x
            self.y[n] = y
        else:
            # A back-dated entry: rare, so an O(n) shift is fine and keeps x sorted, which
            # clip-to-view and the line drawing rely on.
            i = int(np.searchsorted(self.x[:n], x, side="right"))
            for arr, value in ((self.x, x), (self.y, y)):
                arr[i + 1 : n + 1] = arr[i:n].copy()
                arr[i] = value
            self.edits += 1
        self.count = n + 1

    def recompute_x(self, origin: float) -> None:
        n = self.count
        if self.origin is not None and n:
            self.x[:n] += (self.origin - origin) / 60.0
        self.origin = origin
        self.edits += 1


#: The series a device reading can be drawn on: the charted vitals (scores are typed only).
DEVICE_SERIES: tuple[str, ...] = tuple(s.key for s in CHART_SERIES if s.table == "vitals")

_DEVICE_CAPACITY = 256
"""Points reserved per series for device readings at first; doubled as needed (a 1 Hz feed left
pending reaches 16,384 slots in the third hour: 512 KB for its SpO₂ and HR together)."""


class _DeviceBuffer:
    """Device readings of one series (pending, or marked artefact) in time order, each with its
    reading id so a decision finds its point: numpy arrays, never a Python object per point.
    Bounded like :class:`_SeriesBuffer`: past ``max_points`` the oldest 10% are dropped."""

    __slots__ = ("count", "ids", "max_points", "t", "x", "y")

    def __init__(self, max_points: int, capacity: int = _DEVICE_CAPACITY) -> None:
        self.max_points = max_points
        capacity = max(1, min(capacity, max_points))
        self.t = np.empty(capacity, dtype=np.float64)
        self.x = np.empty(capacity, dtype=np.float64)
        self.y = np.empty(capacity, dtype=np.float64)
        self.ids = np.empty(capacity, dtype=np.int64)
        self.count = 0

    def clear(self) -> None:
        self.count = 0

    def time_at(self, index: int) -> float:
        """Epoch seconds of reading ``index``."""
        return float(self.t[index])

    def _make_room(self) -> None:
        n = self.count
        capacity = self.t.shape[0]
        if n < capacity:
            return
        if capacity < self.max_points:
            new_capacity = min(capacity * 2, self.max_points)
            for name in ("t", "x", "y", "ids"):
                old = getattr(self, name)
                new = np.empty(new_capacity, dtype=old.dtype)
                new[:n] = old[:n]
                setattr(self, name, new)
            return
        drop = max(1, n // 10)
        for arr in (self.t, self.x, self.y, self.ids):
            arr[: n - drop] = arr[drop:n]
        self.count = n - drop

    def add(self, t: float, x: float, y: float, reading_id: int) -> None:
        """Keep one reading in time order (a late one is inserted in place)."""
        self._make_room()
        n = self.count
        i = n if n == 0 or t >= self.t[n - 1] else int(np.searchsorted(self.t[:n], t, "right"))
        for arr, value in ((self.t, t), (self.x, x), (self.y, y), (self.ids, reading_id)):
            if i < n:
                arr[i + 1 : n + 1] = arr[i:n].copy()
            arr[i] = value
        self.count = n + 1

    def take(self, reading_id: int) -> tuple[float, float, float] | None:
        """Remove the reading ``reading_id``; its (t, x, y), or None if it is not here."""
        n = self.count
        found = np.flatnonzero(self.ids[:n] == reading_id)
        if found.shape[0] == 0:
            return None
        i = int(found[0])
        point = (float(self.t[i]), float(self.x[i]), float(self.y[i]))
        for arr in (self.t, self.x, self.y, self.ids):
            arr[i : n - 1] = arr[i + 1 : n].copy()
        self.count = n - 1
        return point

    def recompute_x(self, origin: float) -> None:
        n = self.count
        np.subtract(self.t[:n], origin, out=self.x[:n])
        self.x[:n] /= 60.0

    def with_gaps(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) to draw, a NaN after each interval longer than the series' gap limit, so a
        curve drawn with ``connect="finite"`` shows the interruption instead of bridging it."""
        n = self.count
        x, y = self.x[:n], self.y[:n]
        if n < 2:
            return x, y
        steps = np.diff(self.t[:n])
        limit = gap_limit(steps[-GAP_WINDOW:].tolist())
        gaps = np.flatnonzero(steps > limit)
        if gaps.shape[0] == 0:
            return x, y
        return np.insert(x, gaps + 1, x[gaps]), np.insert(y, gaps + 1, np.nan)


@dataclass
class _Marker:
    t: float
    kind: str
    label: str
    lines: list[pg.InfiniteLine] = field(default_factory=list)
    band_line: pg.InfiniteLine | None = None


class _LabelItem(QtWidgets.QGraphicsItem):
    """A marker label or count badge: text in a filled box, drawn in view-box pixels.

    A child of the top plot's view box rather than of the line, so the layout (done in pixels)
    decides its place and the plot's data transform never stretches or clips it. The box is
    exactly as wide as the measured text plus padding: nothing is ever elided.
    """

    def __init__(self, parent: QtWidgets.QGraphicsItem) -> None:
        super().__init__(parent)
        self.setZValue(20)
        self.kind = ""
        self.badge = False
        self._text = ""
        self._font = QtGui.QFont()
        self._color = QtGui.QColor("black")
        self._fill = QtGui.QBrush()
        self._size = QtCore.QSizeF(0, 0)

    def set_content(
        self,
        text: str,
        *,
        kind: str,
        badge: bool,
        font: QtGui.QFont,
        color: QtGui.QColor,
        fill: QtGui.QColor,
        size: QtCore.QSizeF,
        tooltip: str,
    ) -> None:
        if size != self._size:
            self.prepareGeometryChange()
            self._size = QtCore.QSizeF(size)
        self.kind, self.badge, self._text = kind, badge, text
        self._font, self._color, self._fill = font, QtGui.QColor(color), QtGui.QBrush(fill)
        if self.toolTip() != tooltip:
            self.setToolTip(tooltip)
        self.update()

    def text(self) -> str:
        """The text shown (a count badge: "+n")."""
        return self._text

    def boundingRect(self) -> QtCore.QRectF:
        return QtCore.QRectF(QtCore.QPointF(0, 0), self._size)

    def paint(self, p: QtGui.QPainter, *args: object) -> None:
        rect = self.boundingRect().adjusted(0.5, 0.5, -0.5, -0.5)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        pen = QtGui.QPen(self._color)
        pen.setWidthF(1.0)
        if self.badge:
            pen.setStyle(QtCore.Qt.PenStyle.DashLine)
        p.setPen(pen)
        p.setBrush(self._fill)
        p.drawRoundedRect(rect, 3, 3)
        p.setFont(self._font)
        p.drawText(self.boundingRect(), QtCore.Qt.AlignmentFlag.AlignCenter, self._text)


@dataclass
class _Threshold:
    series: str
    value: float
    label: str
    line: pg.InfiniteLine


class _EdgeAxis(pg.AxisItem):
    """Vertical axis whose tick labels may overhang its ends by a few pixels.

    With the grid on, pyqtgraph drops any label that pokes past the plot edge, so the labels
    at the ends of a fixed range (SpO₂ 100, RR 0 and 40) would silently disappear.
    """

    def boundingRect(self) -> QtCore.QRectF:
        return super().boundingRect().adjusted(0, -12, 0, 12)

    def setRange(self, mn: float, mx: float) -> None:
        """Keep the drawn picture when the range has not changed: pyqtgraph redraws the axis at
        every view resize, and a lane's y range is fixed, so a change of the chart's width
        would otherwise redraw every vertical axis with its text."""
        if getattr(self, "range", None) == [mn, mx] and self.picture is not None:
            return
        super().setRange(mn, mx)


class _BottomAxis(pg.AxisItem):
    """Time axis whose line is never cut off.

    Without values (every lane but the last) the axis is 0 px high and pyqtgraph draws its
    line a pixel below that, outside its bounding rectangle: it showed only while the grid
    made the rectangle as large as the plot. Two pixels more keep the line in it."""

    def boundingRect(self) -> QtCore.QRectF:
        return super().boundingRect().adjusted(0, 0, 0, 2)

    def paint(self, p: QtGui.QPainter, *args: object) -> None:
        """A lane's time axis without values is only its line (the grid item draws the grid,
        its ticks have no pen): drawn directly, where pyqtgraph worked out every tick and its
        text first (about 0.5 ms per lane on each redraw after a resize)."""
        if self.style["showValues"] or self.labelText:
            super().paint(p, *args)
            return
        bounds = self.mapRectFromParent(self.geometry())
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, False)
        p.setPen(self.pen())
        # Where pyqtgraph draws it: one pixel below the top, one past each end.
        p.drawLine(
            QtCore.QPointF(bounds.left() - 1, bounds.top() + 1),
            QtCore.QPointF(bounds.right() + 1, bounds.top() + 1),
        )


class _Grid(pg.GraphicsObject):
    """A plot's grid lines, drawn by one cached item per lane instead of by its axes.

    pyqtgraph draws a grid by stretching each axis' ticks across the plot, so each axis item
    (and its cached picture) is as large as the plot, and any resize or range update repaints
    all of them with their text: about 2 ms per left axis on a redraw after a resize. Here the
    axes draw only their own strip (their picture survives a change of the chart's width),
    and this item draws the same lines: vertical ones at the bottom axis' ticks, horizontal
    ones at the left axis' ticks (labelled or not), with pyqtgraph's opacity per tick level.

    The lines are drawn opaque in the colour that opacity gives over the chart's background,
    under the data rather than over it: Qt's raster engine draws a translucent line 15–30
    times slower than an opaque one (about 1 ms per lane), and a grid line faintly crossing a
    curve is all that differs.
    """

    def __init__(self, plot: pg.PlotItem) -> None:
        super().__init__()
        self._plot = plot
        self._alpha = 0
        self._color = QtGui.QColor("black")
        self._background = QtGui.QColor("white")
        self._rect = QtCore.QRectF()
        self.setZValue(-10)  # under the limit lines (-6), event lines (-5) and the data
        self.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def set_style(self, color: str, alpha: int, background: str) -> None:
        """Line colour and opacity (0–255, like ``AxisItem.setGrid``) over ``background``."""
        self._color = QtGui.QColor(color)
        self._alpha = alpha
        self._background = QtGui.QColor(background)
        self.update()

    def refresh(self) -> None:
        """The ticks or the view changed: draw the lines again."""
        rect = self._plot.vb.viewRect()
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = rect
        self.update()

    def viewRangeChanged(self) -> None:
        self.refresh()

    def viewTransformChanged(self) -> None:
        self.refresh()

    def boundingRect(self) -> QtCore.QRectF:
        return QtCore.QRectF(self._rect)

    def _blend(self, alpha: float) -> QtGui.QColor:
        """The colour a line of this opacity (0–255) shows over the background."""
        a = min(max(alpha / 255.0, 0.0), 1.0)
        fg, bg = self._color, self._background
        return QtGui.QColor(
            round(fg.red() * a + bg.red() * (1 - a)),
            round(fg.green() * a + bg.green() * (1 - a)),
            round(fg.blue() * a + bg.blue() * (1 - a)),
        )

    def paint(self, p: QtGui.QPainter, *args: object) -> None:
        rect = self._rect
        size = self._plot.vb.boundingRect()
        if self._alpha <= 0 or rect.isEmpty() or size.isEmpty():
            return
        bottom = self._plot.getAxis("bottom")
        left = self._plot.getAxis("left")
        x_levels = [v for _spacing, v in bottom.tickValues(rect.left(), rect.right(), size.width())]
        y_levels = [[value for value, _text in level] for level in left._tickLevels or []]
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, False)
        # The axis' length in pixels as pyqtgraph measures it (one pixel past each end).
        for levels, length, vertical in (
            (x_levels, size.width() + 2, True),
            (y_levels, size.height() + 2, False),
        ):
            lo, hi = (rect.left(), rect.right()) if vertical else (rect.top(), rect.bottom())
            for level, ticks in enumerate(levels):
                inside = [v for v in ticks if lo <= v <= hi]
                if not inside:
                    continue
                # pyqtgraph's opacity for grid lines: fainter per level and when dense.
                share = min(max(0.05 * length / (len(ticks) + 1), 0.0), 1.0)
                pen = QtGui.QPen(self._blend(int(255 / (level + 1) * self._alpha / 255 * share)))
                pen.setCosmetic(True)
                p.setPen(pen)
                if vertical:
                    lines = [QtCore.QLineF(v, rect.top(), v, rect.bottom()) for v in inside]
                else:
                    lines = [QtCore.QLineF(rect.left(), v, rect.right(), v) for v in inside]
                p.drawLines(lines)


class _KeySymbols(pg.ScatterPlotItem):
    """The key symbols of a dense series, with their bounding rectangle worked out once.

    pyqtgraph's scatter recomputes its data bounds and pixel padding at every call, and Qt
    asks a cached item for it several times per repaint: about 18 calls per save on the
    three-hour record, for symbols that change once per five minutes. The rectangle is kept
    until the data bounds are reset (new points, size or pen: pyqtgraph replaces its
    ``bounds`` list then) or the item's device transform changes (zoom, resize).
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        self._rect_for: tuple[object, QtGui.QTransform | None] | None = None
        self._rect = QtCore.QRectF()
        super().__init__(*args, **kwargs)

    def boundingRect(self) -> QtCore.QRectF:
        transform = self.deviceTransform_()
        cached = self._rect_for
        if cached is None or cached[0] is not self.bounds or cached[1] != transform:
            self._rect = super().boundingRect()
            # dataBounds fills the list in place; a reset replaces it, which is what is checked.
            self._rect_for = (self.bounds, transform)
        return QtCore.QRectF(self._rect)


class _LegendSample(ItemSample):
    """Legend swatch drawn from the series' fixed style, not from the live curve.

    The curve drops its symbols once it gets dense; the legend must keep showing the symbol so
    the key still works without colour. Clicking does nothing: hiding a vital sign by a stray
    tap at the bedside would be a hazard.
    """

    def __init__(self, item: pg.PlotDataItem, symbol: str, dash: QtCore.Qt.PenStyle) -> None:
        super().__init__(item)
        self._symbol = symbol
        self._dash = dash
        self._color = QtGui.QColor("black")
        self._symbol_size = 9
        self._apply_size()

    def _apply_size(self) -> None:
        self.setFixedWidth(self._symbol_size * 4)
        self.setFixedHeight(self._symbol_size * 2 + 4)

    def set_style(self, color: str, symbol_size: int, dash: QtCore.Qt.PenStyle) -> None:
        """Match the curve: colour, symbol size, and the dash it currently uses."""
        self._color = QtGui.QColor(color)
        self._dash = dash
        self._symbol_size = symbol_size
        self._apply_size()
        self.update()

    def boundingRect(self) -> QtCore.QRectF:
        return QtCore.QRectF(0, 0, self._symbol_size * 4, self._symbol_size * 2 + 4)

    def paint(self, p: QtGui.QPainter, *args: object) -> None:
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        rect = self.boundingRect()
        pen = pg.mkPen(self._color, width=2, style=self._dash)
        p.setPen(pen)
        mid = rect.height() / 2
        p.drawLine(QtCore.QPointF(0, mid), QtCore.QPointF(rect.width(), mid))
        p.translate(rect.width() / 2, mid)
        drawSymbol(
            p, self._symbol, self._symbol_size, pg.mkPen(self._color), pg.mkBrush(self._color)
        )

    def mouseClickEvent(self, event: QtWidgets.QGraphicsSceneMouseEvent) -> None:
        event.accept()


class TrendChart(pg.GraphicsLayoutWidget):
    """Stacked live trend of vitals, sedation and dissociation for one KAP session.

    Feed it with :meth:`reset` at session start, then :meth:`add_vitals`, :meth:`add_scores`,
    :meth:`add_marker` and :meth:`set_now` as the session window saves entries. The chart owns
    no timer; it redraws only when fed.
    """

    def __init__(
        self,
        parent: QtWidgets.QWidget | None = None,
        *,
        max_points: int = 20_000,
        capacity: int = SESSION_CAPACITY,
        night: bool = False,
    ) -> None:
        """``capacity``: points reserved per series up front (a whole session at the expected
        reading rate, so no buffer is copied mid-session); ``max_points``: the most kept."""
        if max_points < 10:
            raise ValueError("max_points must be at least 10")
        super().__init__(parent)
        self._max_points = max_points
        self._night = night
        self._palette = _NIGHT if night else _DAY
        self._type = _NORMAL_TYPE
        self._session_start: float | None = None
        self._dose_origin: float | None = None
        self._now: float | None = None
        self._x_range: tuple[float, float] | None = None
        self._buffers: dict[str, _SeriesBuffer] = {
            s: _SeriesBuffer(max_points, capacity) for s in SERIES
        }
        self._dense: dict[str, bool] = dict.fromkeys(SERIES, False)
        self._key_sig: dict[str, tuple[int, float, float]] = {}
        self._key_seen: dict[str, tuple[int, int]] = {}  # (buffer edits, points) keyed last
        self._markers: list[_Marker] = []
        self._thresholds: list[_Threshold] = []
        self._bulk_depth = 0
        self._dirty: set[str] = set()
        self._gaps = DeviceGaps()  # where the record's curve breaks in device data
        self._label_items: list[_LabelItem] = []
        self._label_layout: LabelLayout | None = None
        self._label_lane_pitch = 0.0
        self._label_sig: tuple[object, ...] | None = None
        self._label_range: tuple[float, float] | None = None
        self._markers_changed = 0
        self._text_widths: dict[tuple[str, bool, int], float] = {}
        self._device_style: dict[str, tuple[object, ...]] = {}

        self.ci.layout.setSpacing(4)
        self.ci.setContentsMargins(6, 8, 6, 6)
        self._plots: list[pg.PlotItem] = []
        self._grids: list[_Grid] = []
        self._legends: list[pg.LegendItem] = []
        for row, ((lo, hi), stretch, text) in enumerate(
            zip(_Y_RANGES, _PLOT_STRETCH, _AXIS_LABELS, strict=True)
        ):
            plot = self.addPlot(
                row=row + 1,  # row 0 is the label band
                col=0,
                axisItems={
                    "left": _EdgeAxis("left"),
                    "right": _EdgeAxis("right"),
                    "bottom": _BottomAxis("bottom"),
                },
            )
            plot.setMenuEnabled(False)
            plot.hideButtons()
            # Fixed window on both axes: the chart is read, not explored, at the bedside.
            plot.setMouseEnabled(x=False, y=False)
            plot.disableAutoRange()
            plot.setYRange(lo, hi, padding=0)
            # "peak" keeps the min and max of each pixel column, so a brief spike survives.
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
            grid = _Grid(plot)
            plot.addItem(grid, ignoreBounds=True)
            self._grids.append(grid)
            left = plot.getAxis("left")
            left.enableAutoSIPrefix(False)
            left.setLabel(text)
            bottom = plot.getAxis("bottom")
            bottom.enableAutoSIPrefix(False)
            # The right axis carries the threshold labels, outside the data area, so they never
            # cover a reading; it is shown on every plot so the x extents line up.
            plot.showAxis("right")
            right = plot.getAxis("right")
            right.setTicks([[]])
            # Axes change only when the time window or the thresholds move; cached as pixmaps
            # they cost a blit per repaint instead of re-laying-out their text (the benchmark's
            # profile: 12 axes were most of a full redraw of a three-hour record).
            for axis in (left, bottom, right):
                axis.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
            if row < len(_Y_RANGES) - 1:
                bottom.setStyle(showValues=False)
            if row > 0:
                plot.setXLink(self._plots[0])
            self.ci.layout.setRowStretchFactor(row + 1, stretch)
            legend = pg.LegendItem(
                offset=None, sampleType=_LegendSample, verSpacing=-2, horSpacing=6
            )
            self.addItem(legend, row=row + 1, col=1)
            # Keep the key compact at the top of its plot instead of stretched over the row.
            legend.setSizePolicy(
                QtWidgets.QSizePolicy.Policy.Preferred, QtWidgets.QSizePolicy.Policy.Maximum
            )
            self.ci.layout.setAlignment(legend, QtCore.Qt.AlignmentFlag.AlignTop)
            # pyqtgraph's 9 px margins made the legends, not the plots, set the chart's minimum
            # height: on a short chart with large type the time axis was pushed out of view.
            legend.layout.setContentsMargins(6, 1, 6, 1)
            self._plots.append(plot)
            self._legends.append(legend)
        self._axis_fit: dict[int, tuple[int, bool]] = {}
        for plot in self._plots:
            plot.vb.sigResized.connect(self._fit_axes)
        self._plots[-1].getAxis("bottom").setLabel("Minutes since session start")

        self._curves: dict[str, pg.PlotDataItem] = {}
        self._tails: dict[str, TailCurve] = {}
        self._split: dict[str, tuple[int, int]] = {}  # (first tail index, buffer edits)
        self._tail_limit: dict[str, int] = {}
        self._keys: dict[str, pg.ScatterPlotItem] = {}
        self._samples: dict[str, _LegendSample] = {}
        for index, name in enumerate(SERIES):
            spec = _SPECS[name]
            # autoDownsampleFactor 1: "peak" already yields two points per pixel column, the
            # default (5) leaves a 3-hour 1 Hz record undecimated. Values stored are finite but
            # for a NaN where device data pause (DeviceGaps): connect="finite" breaks the line
            # there (pyqtgraph still checks for it itself with the finite check skipped).
            curve = pg.PlotDataItem(
                symbol=spec.symbol,
                antialias=False,
                autoDownsampleFactor=1.0,
                skipFiniteCheck=True,
                connect="finite",
            )
            self._plots[spec.plot].addItem(curve)
            # The tail (a few minutes, a strip a few pixels wide, always in view) is drawn
            # point for point by an item of its own: see tail_curve.
            tail = TailCurve()
            tail.setSymbol(spec.symbol)
            self._plots[spec.plot].addItem(tail, ignoreBounds=True)
            # Also set on the curve itself, independent of the plot's context-menu state.
            curve.setDownsampling(auto=True, method="peak")
            curve.setClipToView(True)
            # The history changes once per tail length: a pixmap blit repaints it under the
            # tail's strip, instead of stroking its thousands of segments at every save.
            for child in (curve.curve, curve.scatter):
                child.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
            keys = _KeySymbols(symbol=spec.symbol, pxMode=True)
            keys.setZValue(1)
            keys.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
            self._plots[spec.plot].addItem(keys)
            self._keys[name] = keys
            self._tails[name] = tail
            self._split[name] = (0, -1)
            self._tail_limit[name] = _TAIL_POINTS + 7 * index
            sample = _LegendSample(curve, spec.symbol, spec.dash)
            self._legends[spec.plot].addItem(sample, spec.legend)
            self._curves[name] = curve
            self._samples[name] = sample

        # Device readings awaiting a decision, and those marked artefact (issue 13): one item
        # each per charted vital, under the record's curve (pending) and over it (artefacts).
        self._pending: dict[str, _DeviceBuffer] = {}
        self._artefacts: dict[str, _DeviceBuffer] = {}
        self._pending_items: dict[str, pg.PlotDataItem] = {}
        self._artefact_items: dict[str, pg.ScatterPlotItem] = {}
        # Pending readings the device flagged (no F): a lighter cross, over the record's curve.
        self._flagged: dict[str, _DeviceBuffer] = {}
        self._flagged_items: dict[str, pg.ScatterPlotItem] = {}
        for name in DEVICE_SERIES:
            spec = _SPECS[name]
            self._pending[name] = _DeviceBuffer(max_points)
            self._artefacts[name] = _DeviceBuffer(max_points, 16)
            pending = pg.PlotDataItem(symbol=spec.symbol, antialias=False, connect="finite")
            pending.setClipToView(True)
            pending.setZValue(-1)
            crosses = pg.ScatterPlotItem(symbol=ARTEFACT.symbol, pxMode=True)
            crosses.setZValue(2)
            self._plots[spec.plot].addItem(pending)
            self._plots[spec.plot].addItem(crosses)
            self._pending_items[name] = pending
            self._artefact_items[name] = crosses
            self._flagged[name] = _DeviceBuffer(max_points, 16)
            doubted = pg.ScatterPlotItem(symbol=ARTEFACT.symbol, pxMode=True)
            doubted.setZValue(2)
            self._plots[spec.plot].addItem(doubted)
            self._flagged_items[name] = doubted

        # The band above the plots where the event labels go, so a label never hides a reading
        # (a blood pressure peak after the dose is exactly what one would be drawn over). It has
        # the plots' left and right axes, empty, so its x extent is theirs.
        band = self.addPlot(row=0, col=0)
        band.setMenuEnabled(False)
        band.hideButtons()
        band.setMouseEnabled(x=False, y=False)
        band.disableAutoRange()
        band.setYRange(0.0, 1.0, padding=0)
        band.hideAxis("bottom")
        for name in ("left", "right"):
            band.showAxis(name)
            axis = band.getAxis(name)
            axis.setTicks([[]])
            axis.setStyle(showValues=False, tickLength=0)
            axis.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
        band.setXLink(self._plots[0])
        self.ci.layout.setRowStretchFactor(0, 0)
        self._band = band
        self._label_lanes = 0
        self._band_height = 0.0
        self._label_host: pg.ViewBox = band.vb
        band.vb.sigResized.connect(self._layout_labels)
        # No axis here has a unit to prefix (fixed clinical ranges, minutes, threshold labels);
        # the automatic SI prefix re-set each axis title's HTML, hidden axes' too, at every
        # view resize.
        for plot in (*self._plots, band):
            for name in ("top", "bottom", "left", "right"):
                plot.getAxis(name).enableAutoSIPrefix(False)
        self._plots[0].vb.sigResized.connect(self._layout_labels)
        self._plots[0].vb.sigXRangeChanged.connect(self._layout_labels)

        self.apply_palette(night)
        self._update_x_range()

    # ------------------------------------------------------------------ session lifecycle

    @property
    def origin(self) -> float | None:
        """Epoch seconds of x = 0: the first dose, else the session start, else the first datum."""
        if self._dose_origin is not None:
            return self._dose_origin
        return self._session_start

    def reset(self, session_start: float, origin: float | None = None) -> None:
        """Forget all data and markers and start drawing a new session.

        Thresholds, palette and type size are display settings, not session data, and are
        kept: losing the alarm-limit lines because a new session started would be the worse
        failure. Call :meth:`set_thresholds` to change them.
        """
        for buf in self._buffers.values():
            buf.clear()
        self._gaps.clear()
        for name in DEVICE_SERIES:
            self._pending[name].clear()
            self._artefacts[name].clear()
            self._flagged[name].clear()
            self._push_device(name)
        for name, curve in self._curves.items():
            curve.setData([], [])
            self._tails[name].setData([], [])
            self._split[name] = (0, -1)
            self._set_dense(name, False)
        for marker in self._markers:
            self._remove_marker_items(marker)
        self._markers.clear()
        self._markers_changed += 1
        self._session_start = float(session_start)
        self._now = None
        self._set_origin_value(origin)
        self._update_x_range()
        self._layout_labels()

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Batch many appends (e.g. replaying a stored session) into one redraw.

        Each live append re-hands a whole series to its curve, which is cheap once per save but
        quadratic when thousands of stored readings are replayed. Inside this block curves and
        the x window are left untouched; on leaving it every changed series is pushed once.
        Re-entrant. :meth:`curve_data` is stale until the outermost block ends.
        """
        self._bulk_depth += 1
        try:
            yield
        finally:
            self._bulk_depth -= 1
            if self._bulk_depth == 0:
                dirty, self._dirty = self._dirty, set()
                for name in SERIES:
                    if name in dirty:
                        self._push(name, force_keys=True)
                        if name in self._pending:
                            self._push_device(name)
                self._update_x_range()
                self._layout_labels()

    def set_origin(self, t0: float | None) -> None:
        """Move x = 0 to the first dose ``t0`` (``None``: back to the session start).

        Rare (normally once per session), so every curve and marker is recomputed.
        """
        self._set_origin_value(t0)
        self._update_x_range()
        self._markers_changed += 1  # the tooltips give minutes since the origin
        self._layout_labels()

    def _set_origin_value(self, t0: float | None) -> None:
        self._dose_origin = None if t0 is None else float(t0)
        self._plots[-1].getAxis("bottom").setLabel(
            "Minutes since first dose" if t0 is not None else "Minutes since session start"
        )
        origin = self.origin
        if origin is None:
            return
        for name, buf in self._buffers.items():
            if buf.count:
                buf.recompute_x(origin)
                self._push(name, force_keys=True)
        for name in DEVICE_SERIES:
            if (
                self._pending[name].count
                or self._artefacts[name].count
                or self._flagged[name].count
            ):
                self._flagged[name].recompute_x(origin)
                self._pending[name].recompute_x(origin)
                self._artefacts[name].recompute_x(origin)
                self._push_device(name)
        for marker in self._markers:
            x = self._to_x(marker.t)
            tip = self._marker_tip(marker)
            for line in (*marker.lines, marker.band_line):
                if line is not None:
                    line.setValue(x)
                    line.setToolTip(tip)

    # ------------------------------------------------------------------ data in

    def add_vitals(self, t: float, **values: float | None) -> None:
        """Append one vitals reading (any charted vital by its registry key); ``None`` (or NaN)
        values leave that series untouched.

        Uncharted vitals (temperature) are accepted so callers can pass a whole reading: its
        trend over a session is flat and it is shown as a number elsewhere."""
        for key in values:
            if key not in _SPECS and key not in _IGNORED:
                raise TypeError(f"add_vitals() got an unknown vital {key!r}")
        self._add(t, ((k, v) for k, v in values.items() if k in _SPECS))

    def add_scores(
        self, t: float, *, moaas: float | None = None, dissociation: float | None = None
    ) -> None:
        """Append MOAA/S (0–5) and/or dissociation intensity (0 none … 4 extreme)."""
        self._add(t, (("moaas", moaas), ("dissociation", dissociation)))

    def apply(self, delta: ChartDelta) -> None:
        """Draw what one saved row adds (from :func:`~kapmonitor.domain.chart_picture.chart_delta`).

        The live save path: each changed series is handed to its curve once, markers are added,
        and the x window is checked once; nothing already drawn is rebuilt."""
        if not delta:
            return
        changed: dict[str, None] = {}
        for key, t, value in delta.points:
            buf = self._buffers[key]
            if self._gaps.breaks(key, t, delta.device) and buf.count:
                # Device data paused: a NaN at the previous point's time breaks the line.
                self._keep(key, buf.time_at(buf.count - 1), math.nan)
            self._keep(key, t, value)
            changed[key] = None
        for key in changed:
            self._push(key)
        for marker in delta.markers:
            self.add_marker(marker.t, marker.kind, marker.label)
        device = self._apply_device(delta)
        if changed or device:
            self._update_x_range()

    def _apply_device(self, delta: ChartDelta) -> bool:
        """Device readings: pending points kept, artefacts drawn crossed, and each decision
        takes its reading's pending point away (an artefact's comes back crossed). A decision on
        a reading not drawn here (confirmed by the protocol as it arrived) changes nothing."""
        changed: dict[str, None] = {}
        for point in delta.pending:
            if point.series in self._pending:
                x = self._to_x(point.t)
                self._pending[point.series].add(point.t, x, point.value, point.reading_id)
                changed[point.series] = None
        for point in delta.flagged:
            if point.series in self._flagged:
                x = self._to_x(point.t)
                self._flagged[point.series].add(point.t, x, point.value, point.reading_id)
                changed[point.series] = None
        for point in delta.artefacts:
            if point.series in self._artefacts:
                x = self._to_x(point.t)
                self._artefacts[point.series].add(point.t, x, point.value, point.reading_id)
                changed[point.series] = None
        for reading_id, decision in delta.decided:
            for name, buf in (*self._pending.items(), *self._flagged.items()):
                taken = buf.take(reading_id)
                if taken is None:
                    continue
                if decision == "artefact":
                    self._artefacts[name].add(*taken, reading_id)
                changed[name] = None
                break
        for name in changed:
            self._push_device(name)
        return bool(changed)

    def _push_device(self, name: str) -> None:
        """Hand one series' pending readings (gaps broken) and artefact crosses to their items."""
        if self._bulk_depth:
            self._dirty.add(name)
            return
        pending = self._pending[name]
        self._style_device(name)
        x, y = pending.with_gaps()
        self._pending_items[name].setData(x, y)
        crosses = self._artefacts[name]
        n = crosses.count
        self._artefact_items[name].setData(x=crosses.x[:n], y=crosses.y[:n])
        doubted = self._flagged[name]
        n = doubted.count
        self._flagged_items[name].setData(x=doubted.x[:n], y=doubted.y[:n])

    def show_picture(self, picture: ChartPicture, now: float | None = None) -> None:
        """Draw a whole picture (a stored session): its origin, limit lines, series and markers.

        The x window reaches the session end, or ``now`` while the session is open."""
        self.reset(picture.start, picture.origin if picture.since_dose else None)
        self.set_limits(picture.limits)
        with self.bulk():
            for key in SERIES:
                series = picture.series[key]
                for t, value in zip(series.t, series.y, strict=True):
                    self._keep(key, t, value)
                if series.t:
                    self._push(key)  # deferred to the end of the block
            for marker in picture.markers:
                self.add_marker(marker.t, marker.kind, marker.label)
        end = picture.end if picture.end is not None else now
        if end is not None:
            self.set_now(end)

    def set_limits(self, limits: Iterable[LimitLine]) -> None:
        """Draw the picture's alarm-limit lines (replacing any drawn before)."""
        self.set_thresholds((limit.series, limit.value, limit.label) for limit in limits)

    def _keep(self, key: str, t: float, value: float) -> None:
        """Keep one point in its buffer (the caller hands the series to its curve)."""
        t = float(t)
        if self._session_start is None:
            self._session_start = t  # fed before reset(): the first datum is the origin
        self._buffers[key].append(t, self._to_x(t), float(value))

    def _add(self, t: float, values: Iterable[tuple[str, float | None]]) -> None:
        t = float(t)
        if self._session_start is None:
            # Fed before reset(): use the first datum as a provisional origin.
            self._session_start = t
        x = self._to_x(t)
        for name, value in values:
            if value is None or not math.isfinite(value):
                continue
            self._buffers[name].append(t, x, float(value))
            self._push(name)
        self._update_x_range()

    def _push(self, name: str, *, force_keys: bool = False) -> None:
        """Hand the stored slice to the curve; no copy, no item rebuild."""
        if self._bulk_depth:
            self._dirty.add(name)
            return
        buf = self._buffers[name]
        n = buf.count
        self._set_dense(name, n > _SYMBOLS_MAX_POINTS)
        start, edits = self._split[name]
        if force_keys or edits != buf.edits or n - start > self._tail_limit[name]:
            # Fold the tail into the history: the whole series is redrawn once.
            start = max(0, n - 1)
            self._split[name] = (start, buf.edits)
            self._curves[name].setData(buf.x[: start + 1], buf.y[: start + 1])
        # The tail starts at the history's last point, so the line is continuous.
        self._tails[name].setData(buf.x[start:n], buf.y[start:n])
        if self._dense[name]:
            self._update_keys(name, force=force_keys)

    def _update_keys(self, name: str, *, force: bool = False) -> None:
        """Refresh the sparse key symbols of a dense series, only when they actually change."""
        buf = self._buffers[name]
        n = buf.count
        phase = _KEY_PHASE_S.get(name, 0.0)
        seen = self._key_seen.get(name)
        if not force and seen == (buf.edits, n - 1) and n >= 2:
            # One point appended at the end since the keys were worked out: they change only
            # if it opens a new key period (once per five minutes), so the whole series is not
            # bucketed again at every save.
            self._key_seen[name] = (buf.edits, n)
            if math.floor((buf.time_at(n - 1) + phase) / _KEY_PERIOD_S) == math.floor(
                (buf.time_at(n - 2) + phase) / _KEY_PERIOD_S
            ):
                return
        self._key_seen[name] = (buf.edits, n)
        t = buf.times()
        bucket = np.floor((t + phase) / _KEY_PERIOD_S)
        idx = np.flatnonzero(bucket[1:] != bucket[:-1]) + 1
        sig = (int(idx.shape[0]), float(t[0]), float(t[int(idx[-1])]) if idx.shape[0] else 0.0)
        if not force and self._key_sig.get(name) == sig:
            return
        self._key_sig[name] = sig
        keys = np.concatenate(([0], idx))
        self._keys[name].setData(x=buf.x[keys], y=buf.y[keys])

    def _set_dense(self, name: str, dense: bool) -> None:
        if self._dense[name] == dense:
            return
        self._dense[name] = dense
        self._style_series(name)
        if not dense:
            self._keys[name].clear()
            self._key_sig.pop(name, None)
            self._key_seen.pop(name, None)

    def add_marker(self, t: float, kind: str, label: str) -> None:
        """Draw a labelled vertical event line across all plots (label in the top plot only).

        ``kind`` is one of :data:`MARKER_KINDS`. An unknown kind is drawn in the "note" style
        rather than raising, so a new event type can never take the chart down mid-session.
        The label goes where :mod:`~kapmonitor.domain.label_layout` finds room for it; its full
        text is always the tooltip of the line.
        """
        t = float(t)
        if self._session_start is None:
            self._session_start = t
        marker = _Marker(t, kind, label)
        x = self._to_x(t)
        tip = self._marker_tip(marker)
        for plot in self._plots:
            line = pg.InfiniteLine(pos=x, angle=90, movable=False)
            line.setZValue(-5)
            line.setToolTip(tip)
            plot.addItem(line, ignoreBounds=True)
            marker.lines.append(line)
        # Continued through the label band, so a label visibly belongs to its line.
        marker.band_line = pg.InfiniteLine(pos=x, angle=90, movable=False)
        marker.band_line.setZValue(-5)
        marker.band_line.setToolTip(tip)
        self._band.addItem(marker.band_line, ignoreBounds=True)
        self._markers.append(marker)
        self._markers_changed += 1
        self._style_marker(marker)
        self._update_x_range()
        self._layout_labels()

    def _marker_tip(self, marker: _Marker) -> str:
        """The full description of one event: kind, clock time, minutes since the origin, text."""
        return marker_tip(ChartMarker(marker.t, marker.kind, marker.label), self.origin)

    def _remove_marker_items(self, marker: _Marker) -> None:
        for plot, line in zip(self._plots, marker.lines, strict=False):
            plot.removeItem(line)
        marker.lines.clear()
        if marker.band_line is not None:
            self._band.removeItem(marker.band_line)
            marker.band_line = None

    # ------------------------------------------------------------------ marker labels

    def _label_font(self, bold: bool) -> QtGui.QFont:
        font = QtGui.QFont()
        font.setPointSize(self._type.marker)
        font.setBold(bold)
        return font

    def _text_width(self, text: str, bold: bool) -> float:
        """Width of a label box for ``text``, padding included; cached per text and type size."""
        key = (text, bold, self._type.marker)
        width = self._text_widths.get(key)
        if width is None:
            metrics = QtGui.QFontMetricsF(self._label_font(bold))
            width = math.ceil(metrics.horizontalAdvance(text) + 2 * _LABEL_PAD_X)
            self._text_widths[key] = width
        return width

    def _fit_axes(self, *_args: object) -> None:
        """Keep the y-axis text of short plots legible instead of printed over itself.

        On a small chart (the 1280 × 720 window gives it about 900 × 300 px) a plot may be
        40 px high: every other tick value is then unlabelled (the grid line stays), and a
        rotated axis title longer than its plot is hidden rather than run into its neighbours'
        (the legend beside each plot still names its series).
        """
        if getattr(self, "closed", False):
            return
        tick_font = self._plots[0].getAxis("left").style.get("tickFont") or QtGui.QFont()
        # Digits are about a cap height tall: labels an ascent apart never touch.
        tick_h = QtGui.QFontMetricsF(tick_font).ascent()
        for row, plot in enumerate(self._plots):
            left = plot.getAxis("left")
            height = plot.vb.boundingRect().height()
            majors, minors = _Y_TICKS[row]
            lo, hi = _Y_RANGES[row]
            step_px = height * (majors[1] - majors[0]) / (hi - lo) if len(majors) > 1 else height
            # Strides that keep both ends of the scale labelled; the widest if none is enough.
            spans = len(majors) - 1
            strides = [k for k in range(1, spans + 1) if spans % k == 0] or [1]
            stride = next((k for k in strides if step_px * k >= tick_h), strides[-1])
            title_font = QtGui.QFont()
            title_font.setPointSize(self._type.label)
            title_w = QtGui.QFontMetricsF(title_font).horizontalAdvance(_AXIS_LABELS[row])
            show_title = title_w + 4 <= height
            if self._axis_fit.get(row) == (stride, show_title):
                continue
            self._axis_fit[row] = (stride, show_title)
            labelled = majors[::stride]
            left.setTicks(
                [
                    [(v, f"{v:g}") for v in labelled],
                    [(v, "") for v in sorted(set(majors) - set(labelled)) + minors],
                ]
            )
            left.showLabel(show_title)
            self._grids[row].refresh()

    def _lane_metrics(self) -> tuple[float, float]:
        """Height of a label box and the distance from one lane to the next (px)."""
        metrics = QtGui.QFontMetricsF(self._label_font(True))
        box_h = float(math.ceil(metrics.height() + 2))
        return box_h, box_h + 2

    def _fit_band(self) -> None:
        """Give the label band as many whole lanes as the chart's height affords (1 to 3).

        The plots cannot shrink below what their legends need, so the band only takes height
        that is left over: a band pushing the chart past its height would cut off the time axis.
        With no room for even one lane (large type on a very short chart) the labels go in one
        lane at the top of the blood-pressure plot instead, over the data but still apart.
        """
        _box_h, pitch = self._lane_metrics()
        wanted = max(1, min(_LABEL_MAX_LANES, int(self.height() * _LABEL_BAND_SHARE // pitch)))
        minimum = self.ci.effectiveSizeHint(QtCore.Qt.SizeHint.MinimumSize).height()
        spare = self.height() - (minimum - self._band_height) - 2
        lanes = min(wanted, int(spare // pitch))
        if lanes >= 1:
            height, host = lanes * pitch + 2, self._band.vb
        else:
            lanes, height, host = 1, 0.0, self._plots[0].vb
        if (lanes, height, host) == (self._label_lanes, self._band_height, self._label_host):
            return
        self._label_lanes, self._band_height = lanes, height
        if host is not self._label_host:
            self._label_host = host
            for item in self._label_items:
                item.setParentItem(host)
        self.ci.layout.setRowFixedHeight(0, height)
        self._band.setVisible(height > 0)
        self._layout_labels()

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:
        # Qt may resize the widget while it is being built, and while closing (after pyqtgraph
        # has deleted every item of the scene).
        if hasattr(self, "_band") and not getattr(self, "closed", False):
            self._fit_band()
        super().resizeEvent(event)

    def _layout_labels(self, *_args: object) -> None:
        """Lay the marker labels out again if anything they depend on changed.

        Called on every marker change, view-box resize and x-window change. A plain vitals save
        changes none of these until the session passes three hours; from then on the x window
        grows by a step every five minutes, and the labels are re-laid out only once that has
        moved some marker by a pixel or more.
        """
        if self._bulk_depth or getattr(self, "closed", False):
            return  # done once when the bulk block ends; nothing to draw once closed
        vb = self._label_host
        size = vb.boundingRect().size()
        lo, hi = (float(v) for v in self._plots[0].vb.viewRange()[0])
        sig = (self._markers_changed, round(size.width()), self._label_lanes, self._type, vb)
        if sig == self._label_sig and self._label_range is not None:
            if self._label_range == (lo, hi) or not self._markers:
                return
            old_lo, old_hi = self._label_range
            # The map from minutes to pixels is linear: the end markers move the most.
            times = [m.t for m in self._markers]
            xs = (self._to_x(min(times)), self._to_x(max(times)))
            shift = max(
                abs((x - lo) / (hi - lo) - (x - old_lo) / (old_hi - old_lo)) * size.width()
                for x in xs
            )
            if shift < 1.0:
                return
        self._label_sig = sig
        self._label_range = (lo, hi)
        width, height = size.width(), size.height()
        if not self._markers or width < 20 or height < 10 or hi <= lo:
            self._label_layout = None
            self._show_labels(None)
            return
        box_h, pitch = self._lane_metrics()
        lanes = self._label_lanes
        events = []
        for index, marker in enumerate(self._markers):
            texts = label_texts(marker.kind, marker.label)
            bold = marker.kind == "dose"
            x_px = (self._to_x(marker.t) - lo) / (hi - lo) * width
            widths = tuple(self._text_width(text, bold) for text in texts)
            events.append(EventLabel(index, x_px, marker.kind, texts, widths))
        layout = layout_labels(
            events,
            left=1.0,
            right=width - 1.0,
            lanes=lanes,
            gap=4.0,
            offset=_LABEL_LINE_GAP,
            badge_width=lambda n: self._text_width(badge_text(n), True),
        )
        self._label_layout = layout
        self._label_lane_pitch = pitch
        self._show_labels(layout, box_h)

    def _show_labels(self, layout: LabelLayout | None, box_h: float = 0.0) -> None:
        """Put the laid-out labels and badges on screen, reusing the label items."""
        wanted = 0 if layout is None else len(layout.labels) + len(layout.badges)
        vb = self._label_host
        while len(self._label_items) < wanted:
            self._label_items.append(_LabelItem(vb))
        for item in self._label_items[wanted:]:
            item.hide()
        if layout is None:
            return
        pal = self._palette
        items = iter(self._label_items)
        for placed in layout.labels:
            item = next(items)
            marker = self._markers[cast(int, placed.key)]
            color = QtGui.QColor(pal.markers.get(marker.kind, pal.markers["note"]))
            bold = marker.kind == "dose"
            item.set_content(
                placed.text,
                kind=marker.kind,
                badge=False,
                font=self._label_font(bold),
                color=color,
                fill=pal.label_fill,
                size=QtCore.QSizeF(placed.width, box_h),
                tooltip=self._marker_tip(marker),
            )
            item.setPos(placed.left, 1 + placed.lane * self._label_lane_pitch)
            item.show()
        for badge in layout.badges:
            item = next(items)
            members = [self._markers[cast(int, key)] for key in badge.keys]
            item.set_content(
                badge.text,
                kind="badge",
                badge=True,
                font=self._label_font(True),
                color=QtGui.QColor(pal.foreground),
                fill=pal.label_fill,
                size=QtCore.QSizeF(badge.width, box_h),
                tooltip="\n".join(self._marker_tip(m) for m in members),
            )
            item.setPos(badge.left, 1 + badge.lane * self._label_lane_pitch)
            item.show()

    def set_thresholds(self, items: Iterable[tuple[str, float, str]]) -> None:
        """Replace the dashed alarm-limit lines: ``(series, value, label)`` each.

        Thresholds for temperature are ignored (it is not charted); any other unknown series
        name raises :class:`ValueError` before anything is changed.
        """
        wanted: list[tuple[str, float, str]] = []
        for series, value, label in items:
            if series in _IGNORED:
                continue
            if series not in _SPECS:
                raise ValueError(f"unknown series for threshold: {series!r}")
            wanted.append((series, float(value), str(label)))
        self._clear_thresholds()
        for series, value, label in wanted:
            line = pg.InfiniteLine(pos=value, angle=0, movable=False)
            line.setZValue(-6)
            self._plots[_SPECS[series].plot].addItem(line, ignoreBounds=True)
            threshold = _Threshold(series, value, label, line)
            self._thresholds.append(threshold)
            self._style_threshold(threshold)
        self._update_threshold_ticks()

    def _clear_thresholds(self) -> None:
        for th in self._thresholds:
            self._plots[_SPECS[th.series].plot].removeItem(th.line)
        self._thresholds.clear()
        self._update_threshold_ticks()

    def _update_threshold_ticks(self) -> None:
        for i, plot in enumerate(self._plots):
            ticks = [(th.value, th.label) for th in self._thresholds if _SPECS[th.series].plot == i]
            plot.getAxis("right").setTicks([ticks])

    def set_now(self, t: float) -> None:
        """Tell the chart the current time, which may widen the x window past three hours."""
        self._now = float(t)
        self._update_x_range()

    # ------------------------------------------------------------------ x window

    def _to_x(self, t: float) -> float:
        origin = self.origin
        return 0.0 if origin is None else (t - origin) / 60.0

    def _data_extent(self) -> tuple[float | None, float | None]:
        """Earliest and latest stored epoch time over all series and markers."""
        first: float | None = None
        last: float | None = None
        for buf in (*self._buffers.values(), *self._pending.values(), *self._flagged.values()):
            if buf.count:
                lo, hi = buf.time_at(0), buf.time_at(buf.count - 1)
                first = lo if first is None else min(first, lo)
                last = hi if last is None else max(last, hi)
        for m in self._markers:
            first = m.t if first is None else min(first, m.t)
            last = m.t if last is None else max(last, m.t)
        return first, last

    def _update_x_range(self) -> None:
        """Keep x at [min(-15, first - 2), max(180, now + 10)] minutes; touch Qt only on change.

        Past three hours the right end grows in whole :data:`_X_GROW_STEP_MIN` steps: growing it
        by a second at every save moved every pixel of the chart, so each save repainted all
        lanes and re-rendered the cached axes (the profile's largest cost of a late save)."""
        if self._bulk_depth:
            return  # done once when the bulk block ends
        first, last = self._data_extent()
        lo, hi = _X_MIN_DEFAULT, _X_MAX_DEFAULT
        if first is not None:
            lo = min(lo, self._to_x(first) - 2.0)
        if self._now is not None:
            hi = max(hi, _step_up(self._to_x(self._now) + 10.0))
        if last is not None:
            hi = max(hi, _step_up(self._to_x(last) + 2.0))
        new = (lo, hi)
        if new == self._x_range:
            return
        self._x_range = new
        span = hi - lo
        major = 30.0 if span <= 300 else 60.0 if span <= 600 else 120.0
        for plot in self._plots:
            plot.getAxis("bottom").setTickSpacing(major, major / 3)
        self._plots[0].setXRange(lo, hi, padding=0)

    # ------------------------------------------------------------------ appearance

    def close(self) -> bool | None:
        """Close once: pyqtgraph's close empties the scene and drops the viewport, and a second
        call (the window closing a chart already closed, or a test's clean-up) touched the
        dropped viewport and could crash the process."""
        if self.closed:
            return super(pg.GraphicsView, self).close()
        return super().close()

    def apply_palette(self, night: bool) -> None:
        """Switch between the day palette and the low-glare night palette."""
        self._night = night
        self._palette = _NIGHT if night else _DAY
        self._restyle()

    def set_large_type(self, on: bool) -> None:
        """Enlarge tick labels, axis labels, legend and marker text for reading from afar."""
        self._type = _LARGE_TYPE if on else _NORMAL_TYPE
        self._restyle()

    @property
    def night(self) -> bool:
        return self._night

    @property
    def large_type(self) -> bool:
        return self._type is _LARGE_TYPE

    def _restyle(self) -> None:
        pal, ts = self._palette, self._type
        self.setBackground(pal.background)
        tick_font = QtGui.QFont()
        tick_font.setPointSize(ts.tick)
        label_style = {"color": pal.foreground, "font-size": f"{ts.label}pt"}
        for plot in self._plots:
            for name in ("left", "bottom", "right"):
                axis = plot.getAxis(name)
                axis.setPen(pg.mkPen(pal.axis))
                axis.setTextPen(pg.mkPen(pal.foreground))
                axis.setTickFont(tick_font)
                # The grid is drawn by the plot's _Grid item; the axes draw no tick lines of
                # their own (with pyqtgraph's grid their ticks were the grid lines).
                axis.setGrid(False)
                if name != "right":
                    axis.setTickPen(pg.mkPen(None))
                if axis.labelText:
                    axis.setLabel(axis.labelText, **label_style)
            # Fixed widths so the stacked view boxes share exactly the same x extent.
            plot.getAxis("left").setWidth(ts.left_axis_width)
            plot.getAxis("right").setWidth(ts.right_axis_width)
        for grid in self._grids:
            grid.set_style(pal.axis, int(255 * pal.grid_alpha), pal.background)
        for legend in self._legends:
            legend.setBrush(pg.mkBrush(pal.legend_fill))
            legend.setPen(pg.mkPen(None))
            legend.opts["labelTextColor"] = pg.mkColor(pal.foreground)
            legend.opts["labelTextSize"] = f"{ts.legend}pt"
            for _sample, label in legend.items:
                label.setText(label.text, color=pal.foreground, size=f"{ts.legend}pt")
            legend.updateSize()
        for name in SERIES:
            self._style_series(name)
        for name in DEVICE_SERIES:
            self._style_device(name, force=True)
        for marker in self._markers:
            self._style_marker(marker)
        for th in self._thresholds:
            self._style_threshold(th)
        for name in ("left", "right"):
            axis = self._band.getAxis(name)
            axis.setPen(pg.mkPen(None))
            axis.setWidth(ts.left_axis_width if name == "left" else ts.right_axis_width)
        self._label_sig = None  # colours and perhaps the type size changed
        self._axis_fit.clear()  # setLabel above showed every axis title again
        self._fit_axes()
        self._fit_band()
        self._layout_labels()

    def _style_series(self, name: str) -> None:
        pal, ts = self._palette, self._type
        color = pal.series[name]
        spec = _SPECS[name]
        dense = self._dense[name]
        style = QtCore.Qt.PenStyle.SolidLine if dense else spec.dash
        for curve in (self._curves[name], self._tails[name]):
            curve.setPen(pg.mkPen(color, width=2, style=style))
            curve.setSymbolPen(pg.mkPen(color))
            curve.setSymbolBrush(pg.mkBrush(color))
            curve.setSymbolSize(ts.symbol)
            curve.setSymbol(None if dense else spec.symbol)
        keys = self._keys[name]
        # A background-coloured rim lifts the key symbol off its own line.
        keys.setPen(pg.mkPen(pal.background, width=1.5))
        keys.setBrush(pg.mkBrush(color))
        keys.setSize(ts.symbol + 4)
        self._samples[name].set_style(color, ts.symbol, style)

    def _style_device(self, name: str, *, force: bool = False) -> None:
        """The pending look (lighter, hollow, dotted; symbols only while sparse) and the
        artefact crosses, in the current palette and type size; restyled only on a change."""
        pal, ts = self._palette, self._type
        dense = self._pending[name].count > _SYMBOLS_MAX_POINTS
        sig = (self._night, ts, dense)
        if not force and self._device_style.get(name) == sig:
            return
        self._device_style[name] = sig
        color = pal.pending[name]
        item = self._pending_items[name]
        dash = QtCore.Qt.PenStyle.SolidLine if dense else _DASH[PENDING.dash]
        item.setPen(pg.mkPen(color, width=PENDING.width, style=dash))
        item.setSymbol(None if dense else _SPECS[name].symbol)
        item.setSymbolPen(pg.mkPen(color, width=1.5))
        item.setSymbolBrush(pg.mkBrush(pal.background if PENDING.hollow else color))
        item.setSymbolSize(ts.symbol)
        crosses = self._artefact_items[name]
        crosses.setPen(pg.mkPen(pal.artefact, width=1.5))
        crosses.setBrush(pg.mkBrush(pal.artefact))
        crosses.setSize(ts.symbol + ARTEFACT.size_delta)
        doubted = self._flagged_items[name]
        doubted.setPen(pg.mkPen(pal.flagged, width=1.5))
        doubted.setBrush(pg.mkBrush(pal.flagged))
        doubted.setSize(ts.symbol + ARTEFACT.size_delta)

    def _style_marker(self, marker: _Marker) -> None:
        pal = self._palette
        style = marker_style(marker.kind)
        color = pal.markers.get(marker.kind, pal.markers["note"])
        pen = pg.mkPen(color, width=style.width, style=_DASH[style.dash])
        for line in (*marker.lines, marker.band_line):
            if line is not None:
                line.setPen(pen)
                line.setHoverPen(pen)

    def _style_threshold(self, th: _Threshold) -> None:
        color = QtGui.QColor(self._palette.series[th.series])
        pen = pg.mkPen(color, width=1.5, style=QtCore.Qt.PenStyle.DashLine)
        th.line.setPen(pen)
        th.line.setHoverPen(pen)

    # ------------------------------------------------------------------ test accessors

    def _buffer(self, name: str) -> _SeriesBuffer:
        try:
            return self._buffers[name]
        except KeyError:
            raise KeyError(f"unknown series {name!r}; expected one of {SERIES}") from None

    def series_xy(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the stored (minutes since origin, value) of one series."""
        buf = self._buffer(name)
        return buf.x[: buf.count].copy(), buf.y[: buf.count].copy()

    def curve_data(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the full data the plotted curves hold (before clipping/downsampling): the
        history up to where the tail starts, then the tail."""
        self._buffer(name)
        start = self._split[name][0]
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        for curve, end in ((self._curves[name], start), (self._tails[name], None)):
            x, y = curve.xData, curve.yData
            if x is not None and y is not None:
                parts.append((np.asarray(x)[:end], np.asarray(y)[:end]))
        if not parts:
            return np.empty(0), np.empty(0)
        return (
            np.concatenate([p[0] for p in parts]).astype(np.float64),
            np.concatenate([p[1] for p in parts]).astype(np.float64),
        )

    def point_count(self, name: str) -> int:
        """Number of points stored for one series."""
        return self._buffer(name).count

    def markers(self) -> list[tuple[float, str, str]]:
        """(x minutes since origin, kind, label) of every marker, in insertion order."""
        return [(self._to_x(m.t), m.kind, m.label) for m in self._markers]

    def marker_labels(self) -> list[_LabelItem]:
        """The label and badge items on screen (for tests and screenshots)."""
        return [item for item in self._label_items if item.isVisible()]

    def marker_lines(self) -> list[list[pg.InfiniteLine]]:
        """Each marker's vertical lines, top plot first, in insertion order."""
        return [list(m.lines) for m in self._markers]

    def label_layout(self) -> LabelLayout | None:
        """The layout the labels on screen come from (keys index :meth:`markers`)."""
        return self._label_layout

    def thresholds(self) -> list[tuple[str, float, str]]:
        """(series, value, label) of the threshold lines currently drawn."""
        return [(th.series, th.value, th.label) for th in self._thresholds]

    def x_range(self) -> tuple[float, float]:
        """The x window (minutes) the chart currently shows."""
        lo, hi = self._plots[0].viewRange()[0]
        return float(lo), float(hi)

    def y_ranges(self) -> list[tuple[float, float]]:
        """The y window of each plot, top to bottom."""
        return [(float(p.viewRange()[1][0]), float(p.viewRange()[1][1])) for p in self._plots]

    def plots(self) -> list[pg.PlotItem]:
        """The stacked plot items, top to bottom (for tests and screenshots)."""
        return list(self._plots)

    def curve(self, name: str) -> pg.PlotDataItem:
        """The plot item that draws one series."""
        self._buffer(name)
        return self._curves[name]

    def curve_tail(self, name: str) -> TailCurve:
        """The plot item that draws the newest points of one series (what a save re-hands)."""
        self._buffer(name)
        return self._tails[name]

    def pending_xy(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the stored pending device readings of one series (minutes, values)."""
        buf = self._pending[name]
        return buf.x[: buf.count].copy(), buf.y[: buf.count].copy()

    def pending_ids(self, name: str) -> list[int]:
        """The reading ids of the pending points of one series, in time order."""
        buf = self._pending[name]
        return [int(i) for i in buf.ids[: buf.count]]

    def artefact_xy(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the readings of one series drawn as marked artefact (minutes, values)."""
        buf = self._artefacts[name]
        return buf.x[: buf.count].copy(), buf.y[: buf.count].copy()

    def flagged_xy(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the pending readings of one series the device flagged (minutes, values)."""
        buf = self._flagged[name]
        return buf.x[: buf.count].copy(), buf.y[: buf.count].copy()

    def flagged_item(self, name: str) -> pg.ScatterPlotItem:
        """The scatter item that draws one series' device-flagged pending readings."""
        return self._flagged_items[name]

    def pending_item(self, name: str) -> pg.PlotDataItem:
        """The plot item that draws one series' pending device readings."""
        return self._pending_items[name]

    def artefact_item(self, name: str) -> pg.ScatterPlotItem:
        """The scatter item that draws one series' readings marked artefact."""
        return self._artefact_items[name]

    def device_buffers(self, name: str) -> tuple[_DeviceBuffer, _DeviceBuffer]:
        """The (pending, artefact) buffers of one series (the memory test reads their arrays)."""
        return self._pending[name], self._artefacts[name]
