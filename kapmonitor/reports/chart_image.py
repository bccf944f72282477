"""A static trend chart of one session, drawn with QPainter onto a QImage for the PDF report.

A thin renderer of the session's chart picture (:mod:`kapmonitor.domain.chart_picture`) in the
shared style (:mod:`kapmonitor.domain.chart_style`), the same picture and style the live chart
(``kapmonitor/ui/widgets/trend_chart.py``) draws, without pyqtgraph or widgets, so it runs from
the command line with no display:

* x is minutes since the first dose (since the session start when there is no dose);
* one panel per lane of the registry, on its **fixed clinical axis** (BP and HR 20–220, SpO₂
  70–100 %, RR and EtCO₂ 0–60, MOAA/S and dissociation 0–5);
* vertical markers for doses (solid), adverse effects (dashed), alarms (dash-dot) and notes
  (dotted), each with its own shape in the band above the panels, and dotted lines at the
  protocol's alarm limits;
* marker labels laid out as on the live chart (``kapmonitor/domain/label_layout.py``): never
  over each other, the dose always in full, crowded ones shortened or counted ("+3");
* a legend with each series' line style and symbol, so **colour never carries meaning alone**.

Every reading is used: when a series has more points than the panel has pixel columns, each
column keeps its minimum and maximum ("peak" decimation, as the live chart does), so a one-second
desaturation in a three-hour record still shows.
"""

from __future__ import annotations

import math
import os
from typing import Any, cast

import numpy as np
from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QGuiApplication,
    QImage,
    QPainter,
    QPainterPath,
    QPen,
    QPolygonF,
)

from kapmonitor.domain.chart_picture import (
    CHART_SERIES,
    ChartMarker,
    ChartPicture,
    labelled_ticks,
)
from kapmonitor.domain.chart_style import (
    DAY,
    KEY_PERIOD_MIN,
    KEY_PHASE_MIN,
    MARKER_STYLES,
    SERIES_STYLES,
    SYMBOLS_MAX_POINTS,
    marker_style,
)
from kapmonitor.domain.label_layout import (
    EventLabel,
    LabelLayout,
    badge_text,
    label_texts,
    layout_labels,
)

__all__ = [
    "ensure_gui_application",
    "render_chart",
    "render_chart_with_labels",
]

#: The style's line names as Qt pen styles.
DASH: dict[str, Qt.PenStyle] = {
    "solid": Qt.PenStyle.SolidLine,
    "dash": Qt.PenStyle.DashLine,
    "dot": Qt.PenStyle.DotLine,
    "dashdot": Qt.PenStyle.DashDotLine,
    "dashdotdot": Qt.PenStyle.DashDotDotLine,
}

#: The marker kinds in the legend (notes and phases are drawn when present, listed when drawn).
_LEGEND_MARKERS = ("dose", "adverse", "alarm")
_INK = DAY.ink
_GRID = DAY.grid
_THRESHOLD_COLOR = DAY.threshold


def ensure_gui_application() -> QGuiApplication:
    """The running QGuiApplication, or a new offscreen one for command-line use.

    Qt needs a GUI application to render text. When none exists and ``QT_QPA_PLATFORM`` is not
    set, the offscreen platform is chosen, so a report can be written with no display.
    """
    app = QGuiApplication.instance()
    if app is None:
        if not os.environ.get("QT_QPA_PLATFORM"):
            os.environ["QT_QPA_PLATFORM"] = "offscreen"
        app = QGuiApplication(["kapmonitor-report"])
        globals()["_APP"] = app  # keep it alive for the rest of the process
    if not isinstance(app, QGuiApplication):
        raise RuntimeError("A QCoreApplication is running: the PDF report needs a QGuiApplication")
    return app


# --- Drawing ----------------------------------------------------------------------------------


class _Canvas:
    """Sizes in points, converted to image pixels."""

    def __init__(self, painter: QPainter, dpi: float) -> None:
        self.p = painter
        self.px_per_pt = dpi / 72.0

    def pt(self, value: float) -> float:
        return value * self.px_per_pt

    def font(self, size_pt: float, bold: bool = False) -> QFont:
        font = QFont()
        font.setPixelSize(max(1, round(self.pt(size_pt))))
        font.setBold(bold)
        return font

    def pen(self, color: str, width_pt: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
        pen = QPen(QColor(color))
        pen.setWidthF(self.pt(width_pt))
        pen.setStyle(style)
        pen.setCapStyle(Qt.PenCapStyle.FlatCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        return pen


def _symbol_path(shape: str, x: float, y: float, r: float) -> QPainterPath:
    path = QPainterPath()
    if shape == "t1":  # ▲
        path.addPolygon(
            QPolygonF([QPointF(x, y - r), QPointF(x + r, y + r), QPointF(x - r, y + r)])
        )
        path.closeSubpath()
    elif shape == "t":  # ▼
        path.addPolygon(
            QPolygonF([QPointF(x, y + r), QPointF(x + r, y - r), QPointF(x - r, y - r)])
        )
        path.closeSubpath()
    elif shape == "d":  # ◆
        path.addPolygon(
            QPolygonF([QPointF(x, y - r), QPointF(x + r, y), QPointF(x, y + r), QPointF(x - r, y)])
        )
        path.closeSubpath()
    elif shape == "t2":  # ▶
        path.addPolygon(
            QPolygonF([QPointF(x + r, y), QPointF(x - r, y - r), QPointF(x - r, y + r)])
        )
        path.closeSubpath()
    elif shape == "s":  # ■
        path.addRect(QRectF(x - r * 0.85, y - r * 0.85, r * 1.7, r * 1.7))
    elif shape == "+":
        path.moveTo(x - r, y)
        path.lineTo(x + r, y)
        path.moveTo(x, y - r)
        path.lineTo(x, y + r)
    elif shape == "x":
        path.moveTo(x - r, y - r)
        path.lineTo(x + r, y + r)
        path.moveTo(x - r, y + r)
        path.lineTo(x + r, y - r)
    else:  # "o" ● and "ring" ○
        path.addEllipse(QPointF(x, y), r * 0.9, r * 0.9)
    return path


def _draw_symbols(canvas: _Canvas, shape: str, color: str, points: list[QPointF], r: float) -> None:
    p = canvas.p
    stroke_only = shape in ("+", "x", "ring")
    p.setPen(canvas.pen(color, 1.1 if stroke_only else 0.5))
    p.setBrush(Qt.BrushStyle.NoBrush if stroke_only else QBrush(QColor(color)))
    for point in points:
        p.drawPath(_symbol_path(shape, point.x(), point.y(), r))


_COLUMN_PX = 2.0
"""Width of a column (image pixels) whose readings are reduced to their lowest and highest.
At the report's 200 dpi two pixels are 0.25 mm, narrower than the 1 pt (0.35 mm) line, so
the print shows the same line and every spike; the antialiased line then has half the
vertices of one-pixel columns (drawing the three-hour record's seven lines took 0.3 of the
report's 1.1 s, now about half that)."""


def _decimate(px: np.ndarray, py: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Keep each column's minimum and maximum when there are more points than columns."""
    if len(px) <= 2 * width / _COLUMN_PX:
        return px, py
    cols = np.floor(px / _COLUMN_PX).astype(np.int64)
    starts = np.flatnonzero(np.concatenate(([True], cols[1:] != cols[:-1])))
    lows = np.minimum.reduceat(py, starts)
    highs = np.maximum.reduceat(py, starts)
    xs = np.repeat((cols[starts] + 0.5) * _COLUMN_PX, 2)
    ys = np.empty(2 * len(starts))
    ys[0::2] = lows
    ys[1::2] = highs
    return xs, ys


def _key_indices(x: np.ndarray, name: str) -> np.ndarray:
    """The first point of each five-minute bucket (staggered per series, as the live chart)."""
    bucket = np.floor((x + KEY_PHASE_MIN.get(name, 0.0)) / KEY_PERIOD_MIN)
    return np.concatenate(([0], np.flatnonzero(bucket[1:] != bucket[:-1]) + 1))


def _finite_runs(xs: np.ndarray, ys: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The line split where the picture breaks it (a NaN where device data paused, see
    :class:`~kapmonitor.domain.chart_picture.DeviceGaps`): the finite stretches between."""
    finite = np.isfinite(ys)
    if finite.all():
        return [(xs, ys)]
    edges = np.flatnonzero(np.diff(np.concatenate(([0], finite.view(np.int8), [0]))))
    return [(xs[a:b], ys[a:b]) for a, b in zip(edges[0::2], edges[1::2], strict=True)]


def _polygon(xs: np.ndarray, ys: np.ndarray) -> QPolygonF:
    return QPolygonF([QPointF(float(a), float(b)) for a, b in zip(xs, ys, strict=True)])


def _ticks(x0: float, x1: float) -> list[float]:
    span = x1 - x0
    step = 15 if span <= 240 else 30 if span <= 480 else 60
    first = math.ceil(x0 / step) * step
    return [float(v) for v in np.arange(first, x1 + 0.001, step)]


def _legend_items(picture: ChartPicture) -> list[tuple[str, str, Qt.PenStyle, str, bool]]:
    """(text, symbol, dash, colour, vertical) of each legend entry: every series, the usual
    marker kinds and any other kind the picture has (notes), and the alarm-limit line."""
    items = [
        (style.legend, style.symbol, DASH[style.dash], style.day, False)
        for style in (SERIES_STYLES[s.key] for s in CHART_SERIES)
    ]
    kinds = [k for k in MARKER_STYLES if k in _LEGEND_MARKERS]
    kinds += [
        k for k in MARKER_STYLES if k not in kinds and any(m.kind == k for m in picture.markers)
    ]
    for kind in kinds:
        m = MARKER_STYLES[kind]
        items.append((m.name, m.shape, DASH[m.dash], m.day, True))
    items.append(("Alarm limit", "", Qt.PenStyle.DotLine, _THRESHOLD_COLOR, False))
    return items


def _legend(canvas: _Canvas, rect: QRectF, picture: ChartPicture) -> None:
    p = canvas.p
    font = canvas.font(7.5)
    p.setFont(font)
    metrics = QFontMetricsF(font)
    sample = canvas.pt(18)
    gap = canvas.pt(9)
    x, y = rect.left(), rect.top() + rect.height() / 2
    for label, shape, dash, color, vertical in _legend_items(picture):
        width = sample + canvas.pt(3) + metrics.horizontalAdvance(label)
        if x + width > rect.right():
            x, y = rect.left(), y + metrics.height() * 1.35
        p.setPen(canvas.pen(color, 1.3, dash))
        if vertical:
            mid = x + sample / 2
            p.drawLine(QLineF(mid, y - canvas.pt(5), mid, y + canvas.pt(5)))
            _draw_symbols(canvas, shape, color, [QPointF(mid + canvas.pt(5), y)], canvas.pt(2.6))
        else:
            p.drawLine(QLineF(x, y, x + sample, y))
            if shape:
                _draw_symbols(canvas, shape, color, [QPointF(x + sample / 2, y)], canvas.pt(2.4))
        p.setPen(QColor(_INK))
        p.drawText(
            QRectF(x + sample + canvas.pt(3), y - metrics.height() / 2, width, metrics.height()),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            label,
        )
        x += width + gap


def _legend_height(canvas: _Canvas, width: float, picture: ChartPicture) -> float:
    metrics = QFontMetricsF(canvas.font(7.5))
    sample, gap = canvas.pt(18), canvas.pt(9)
    rows, x = 1, 0.0
    for label, *_rest in _legend_items(picture):
        w = sample + canvas.pt(3) + metrics.horizontalAdvance(label)
        if x + w > width:
            rows, x = rows + 1, 0.0
        x += w + gap
    return rows * metrics.height() * 1.35


def render_chart(data: ChartPicture, width_px: int, height_px: int, dpi: float = 200.0) -> QImage:
    """Draw the chart onto a white RGB image of the given size (``dpi`` sets text and line
    sizes: a 7.5 pt label is 7.5/72 inch at that resolution)."""
    return render_chart_with_labels(data, width_px, height_px, dpi)[0]


def render_chart_with_labels(
    data: ChartPicture, width_px: int, height_px: int, dpi: float = 200.0
) -> tuple[QImage, LabelLayout]:
    """:func:`render_chart`, plus where the event labels went (image pixels; lanes from the top
    of the band above the panels), so tests can check them without reading pixels."""
    ensure_gui_application()
    image = QImage(width_px, height_px, QImage.Format.Format_RGB32)
    image.setDotsPerMeterX(round(dpi / 0.0254))
    image.setDotsPerMeterY(round(dpi / 0.0254))
    image.fill(QColor("white"))
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        layout = _draw(_Canvas(painter, dpi), data, QRectF(0, 0, width_px, height_px))
    finally:
        painter.end()
    return image, layout


def _draw(canvas: _Canvas, data: ChartPicture, whole: QRectF) -> LabelLayout:
    p = canvas.p
    pad = canvas.pt(4)
    legend_h = _legend_height(canvas, whole.width() - 2 * pad, data)
    _legend(canvas, QRectF(pad, pad, whole.width() - 2 * pad, legend_h), data)
    tick_font = canvas.font(7)
    tick_metrics = QFontMetricsF(tick_font)
    band_top = pad + legend_h + canvas.pt(4)
    band_h = tick_metrics.height() * 3.2  # marker shapes and labels, three staggered rows
    left = canvas.pt(46)
    right = whole.width() - canvas.pt(34)
    top = band_top + band_h
    bottom = whole.height() - canvas.pt(26)
    gap = canvas.pt(5)
    x0, x1 = data.x_range()
    width = right - left

    def to_px(x: np.ndarray | float) -> Any:
        return left + (np.asarray(x, dtype=np.float64) - x0) / (x1 - x0) * width

    lanes = data.lanes
    total = sum(lane.stretch for lane in lanes)
    usable = bottom - top - gap * (len(lanes) - 1)
    rects: list[QRectF] = []
    y = top
    for lane in lanes:
        h = usable * lane.stretch / total
        rects.append(QRectF(left, y, width, h))
        y += h + gap
    x_ticks = _ticks(x0, x1)

    labelled = labelled_ticks(lanes)
    for index, lane in enumerate(lanes):
        rect = rects[index]
        title, lo, hi, y_ticks = lane.title, lane.y_min, lane.y_max, lane.ticks

        def to_py(
            v: np.ndarray | float, rect: QRectF = rect, lo: float = lo, hi: float = hi
        ) -> Any:
            return (
                rect.bottom() - (np.asarray(v, dtype=np.float64) - lo) / (hi - lo) * rect.height()
            )

        # Grid, ticks and the axis title.
        p.setFont(tick_font)
        p.setPen(canvas.pen(_GRID, 0.5))
        for tick in x_ticks:
            xp = float(to_px(tick))
            p.drawLine(QLineF(xp, rect.top(), xp, rect.bottom()))
        for tick in y_ticks:
            yp = float(to_py(tick))
            p.setPen(canvas.pen(_GRID, 0.5))
            p.drawLine(QLineF(rect.left(), yp, rect.right(), yp))
            if tick not in labelled[index]:
                continue  # on the edge the next panel labels: its grid line only
            p.setPen(QColor(_INK))
            p.drawText(
                QRectF(
                    rect.left() - canvas.pt(26),
                    yp - tick_metrics.height() / 2,
                    canvas.pt(23),
                    tick_metrics.height(),
                ),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                f"{tick:g}",
            )
        # The axis title, rotated, wrapped onto two lines when the panel is short, and set
        # smaller when two lines are still not enough ("RR /min · EtCO₂ mmHg" on a short panel).
        p.save()
        p.translate(canvas.pt(10), rect.center().y())
        p.rotate(-90)
        title_rect = QRectF(-rect.height() / 2, -canvas.pt(9), rect.height(), canvas.pt(18))
        flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
        for size in (7.0, 6.5, 6.0, 5.5, 5.0):
            title_font = canvas.font(size, bold=True)
            needed = QFontMetricsF(title_font).boundingRect(title_rect, int(flags), title)
            if needed.height() <= title_rect.height() and needed.width() <= title_rect.width():
                break
        p.setFont(title_font)
        p.drawText(title_rect, flags, title)
        p.restore()

        # Alarm limits: dotted, labelled on the right, labels pushed apart when close.
        label_h = canvas.pt(7)
        p.setFont(canvas.font(6))
        limits = sorted(
            (float(to_py(limit.value)), limit.series, limit.value)
            for limit in data.lane_limits(lane.key)
            if lo <= limit.value <= hi
        )
        previous = -math.inf
        for yp, name, value in limits:
            p.setPen(canvas.pen(_THRESHOLD_COLOR, 0.8, Qt.PenStyle.DotLine))
            p.drawLine(QLineF(rect.left(), yp, rect.right(), yp))
            label_y = max(yp, previous + label_h)
            previous = label_y
            p.setPen(QColor(_THRESHOLD_COLOR))
            p.drawText(
                QRectF(rect.right() + canvas.pt(2), label_y - label_h / 2, canvas.pt(34), label_h),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                f"{SERIES_STYLES[name].legend} {value:g}",
            )

        # The series, clipped to the panel.
        p.save()
        p.setClipRect(rect.adjusted(-canvas.pt(3), -canvas.pt(3), canvas.pt(3), canvas.pt(3)))
        for name in data.lane_series(lane.key):
            style = SERIES_STYLES[name]
            x_list, y_list = data.xy(name)
            if not x_list:
                continue
            xs = np.asarray(x_list, dtype=np.float64)
            ys = np.asarray(y_list, dtype=np.float64)
            px, py = to_px(xs), to_py(ys)
            lx, ly = _decimate(px, py, width)
            dense = len(xs) > SYMBOLS_MAX_POINTS
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.setPen(canvas.pen(style.day, 1.0 if dense else 1.3, DASH[style.dash]))
            for run_x, run_y in _finite_runs(lx, ly):  # a NaN: device data paused, a gap
                if len(run_x) > 1:
                    p.drawPolyline(_polygon(run_x, run_y))
            keys = _key_indices(np.asarray(xs), name) if dense else np.arange(len(xs))
            keys = keys[np.isfinite(ys[keys])]
            _draw_symbols(
                canvas,
                style.symbol,
                style.day,
                [QPointF(float(px[k]), float(py[k])) for k in keys],
                canvas.pt(2.2),
            )
        p.restore()

        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(canvas.pen("#3A4048", 0.7))
        p.drawRect(rect)

    layout = _draw_markers(canvas, data, rects, band_top, band_h, to_px, left, right, top)

    # The x axis under the last panel.
    p.setFont(tick_font)
    p.setPen(QColor(_INK))
    last = rects[-1]
    for tick in x_ticks:
        xp = float(to_px(tick))
        p.drawText(
            QRectF(
                xp - canvas.pt(15),
                last.bottom() + canvas.pt(2),
                canvas.pt(30),
                tick_metrics.height(),
            ),
            Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
            f"{tick:g}",
        )
    p.setFont(canvas.font(7, bold=True))
    p.drawText(
        QRectF(left, last.bottom() + canvas.pt(3) + tick_metrics.height(), width, canvas.pt(12)),
        Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
        data.x_title,
    )
    return layout


def _draw_markers(
    canvas: _Canvas,
    data: ChartPicture,
    rects: list[QRectF],
    band_top: float,
    band_h: float,
    to_px: Any,
    left: float,
    right: float,
    top: float,
) -> LabelLayout:
    """Event lines through every panel; shapes and labels in the band above, in three lanes.

    Labels are placed by :func:`~kapmonitor.domain.label_layout.layout_labels`, as on the live
    chart: never over each other, doses first and in full, others shortened or counted in a
    "+n" badge (the report's tables list every event in full).
    """
    p = canvas.p
    label_font = canvas.font(6.5)
    label_metrics = QFontMetricsF(label_font)
    lanes = 3
    row_h = band_h / lanes
    radius = canvas.pt(2.6)
    text_gap = canvas.pt(2)
    shown: list[tuple[int, ChartMarker, float]] = []
    for index, marker in enumerate(data.markers):
        xp = float(to_px(data.x(marker.t)))
        if left - 1 <= xp <= right + 1:
            shown.append((index, marker, xp))
    events = []
    for index, marker, xp in shown:
        texts = label_texts(marker.kind, marker.label)
        widths = tuple(
            2 * radius + text_gap + label_metrics.horizontalAdvance(t) + canvas.pt(1) for t in texts
        )
        events.append(EventLabel(index, xp, marker.kind, texts, widths))
    layout = layout_labels(
        events,
        left=left - radius,
        right=right + canvas.pt(30),  # labels may run into the right margin, as before
        lanes=lanes,
        gap=canvas.pt(3),
        offset=-radius,  # the box starts at the marker's shape, drawn on the line
        badge_width=lambda n: label_metrics.horizontalAdvance(badge_text(n)) + canvas.pt(4),
        allow_over=False,
    )
    for _index, marker, xp in shown:
        style = marker_style(marker.kind)
        p.setPen(canvas.pen(style.day, 0.9, DASH[style.dash]))
        for rect in rects:
            p.drawLine(QLineF(xp, rect.top(), xp, rect.bottom()))
    p.setFont(label_font)
    for placed in layout.labels:
        marker = data.markers[cast(int, placed.key)]
        style = marker_style(marker.kind)
        shape, color = style.shape, style.day
        xp = float(to_px(data.x(marker.t)))
        cy = band_top + row_h * (placed.lane + 0.5)
        p.setPen(canvas.pen(color, 0.4, Qt.PenStyle.DotLine))
        p.drawLine(QLineF(xp, cy, xp, top))
        _draw_symbols(canvas, shape, color, [QPointF(xp, cy)], radius)
        text_w = placed.width - 2 * radius - text_gap
        if placed.side == "right":
            text_left = xp + radius + text_gap
        else:  # "left": the text ends at the shape
            text_left = xp - radius - text_gap - text_w
        p.setPen(QColor(_INK))
        p.drawText(
            QRectF(text_left, cy - row_h / 2, text_w, row_h),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            placed.text,
        )
    for badge in layout.badges:
        cy = band_top + row_h * (badge.lane + 0.5)
        box = QRectF(badge.left, cy - row_h / 2 + canvas.pt(0.5), badge.width, row_h - canvas.pt(1))
        p.setPen(canvas.pen(_THRESHOLD_COLOR, 0.5, Qt.PenStyle.DashLine))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRoundedRect(box, canvas.pt(1.5), canvas.pt(1.5))
        p.setPen(QColor(_INK))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, badge.text)
    return layout
