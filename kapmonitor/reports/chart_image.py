"""A static trend chart of one session, drawn with QPainter onto a QImage for the PDF report.

The same picture as the live chart (``kapmonitor/ui/widgets/trend_chart.py``) without pyqtgraph or
widgets, so it runs from the command line with no display:

* x is minutes since the first dose (since the session start when there is no dose);
* four stacked panels on **fixed clinical axes**: BP and HR 20–220, SpO₂ 70–100 %, RR 0–40 /min,
  MOAA/S and dissociation 0–5;
* vertical markers for doses (solid), adverse effects (dashed) and alarms (dash-dot), each with
  its own shape in the band above the panels, and dotted lines at the protocol's alarm limits;
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
from dataclasses import dataclass, field
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

from kapmonitor.domain.label_layout import (
    EventLabel,
    LabelLayout,
    badge_text,
    label_texts,
    layout_labels,
)
from kapmonitor.domain.reference import Reference, default_reference
from kapmonitor.store.session_store import SessionLog

__all__ = [
    "ChartData",
    "Marker",
    "chart_data",
    "ensure_gui_application",
    "render_chart",
    "render_chart_with_labels",
]

#: Panels top to bottom: (axis title, y minimum, y maximum, major ticks, relative height).
PANELS: tuple[tuple[str, float, float, tuple[float, ...], int], ...] = (
    ("BP mmHg · HR /min", 20.0, 220.0, tuple(float(v) for v in range(40, 221, 40)), 45),
    ("SpO₂ %", 70.0, 100.0, (70.0, 80.0, 90.0, 100.0), 18),
    ("RR /min", 0.0, 40.0, (0.0, 10.0, 20.0, 30.0, 40.0), 18),
    ("MOAA/S · Dissoc.", -0.4, 5.4, (0.0, 1.0, 2.0, 3.0, 4.0, 5.0), 19),
)


@dataclass(frozen=True)
class _Style:
    panel: int
    legend: str
    symbol: str  # t1 ▲, t ▼, o ●, d ◆, s ■, + and x
    dash: Qt.PenStyle
    color: str


# Same shapes, dashes and (day) colours as the live chart.
SERIES: dict[str, _Style] = {
    "sbp": _Style(0, "SBP", "t1", Qt.PenStyle.SolidLine, "#C0392B"),
    "dbp": _Style(0, "DBP", "t", Qt.PenStyle.DashLine, "#B86100"),
    "hr": _Style(0, "HR", "o", Qt.PenStyle.DotLine, "#047857"),
    "spo2": _Style(1, "SpO₂", "d", Qt.PenStyle.SolidLine, "#1D4ED8"),
    "rr": _Style(2, "RR", "s", Qt.PenStyle.SolidLine, "#6D28D9"),
    "moaas": _Style(3, "MOAA/S", "+", Qt.PenStyle.SolidLine, "#0E7490"),
    "dissociation": _Style(3, "Dissoc.", "x", Qt.PenStyle.DashLine, "#BE185D"),
}

#: Marker kinds: (legend, line style, shape in the band above the panels, colour).
MARKERS: dict[str, tuple[str, Qt.PenStyle, str, str]] = {
    "dose": ("Dose", Qt.PenStyle.SolidLine, "t", "#166534"),
    "adverse": ("Adverse effect", Qt.PenStyle.DashLine, "s", "#B91C1C"),
    "alarm": ("Alarm", Qt.PenStyle.DashDotLine, "ring", "#C2410C"),
}

_SYMBOLS_MAX_POINTS = 600  # above this a series is dense: key symbols only (as the live chart)
_KEY_PERIOD_MIN = 5.0  # one key symbol per five minutes in dense mode
_KEY_PHASE_MIN = {"dbp": 100 / 60, "hr": 200 / 60, "dissociation": 150 / 60}
_THRESHOLD_COLOR = "#6B7280"
_INK = "#1F2328"
_GRID = "#D9DCE1"


@dataclass(frozen=True)
class Marker:
    x: float  # minutes since the origin
    kind: str  # "dose", "adverse" or "alarm"
    label: str


@dataclass
class ChartData:
    """What the chart draws, in minutes since the origin (the first dose, or the start)."""

    series: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (x minutes, values), x sorted
    markers: list[Marker] = field(default_factory=list)
    thresholds: list[tuple[str, float]] = field(default_factory=list)  # (series, value)
    since_dose: bool = True
    end_x: float | None = None  # the session end, when it has ended

    @property
    def x_axis_title(self) -> str:
        return "Minutes since first dose" if self.since_dose else "Minutes since session start"

    def x_range(self) -> tuple[float, float]:
        """From at least 15 min before the dose to the end of the data, in whole 15 minutes."""
        xs = [float(x[0]) for x, _y in self.series.values() if len(x)]
        xs += [float(x[-1]) for x, _y in self.series.values() if len(x)]
        xs += [m.x for m in self.markers]
        if self.end_x is not None:
            xs.append(self.end_x)
        lo = min(xs, default=0.0)
        hi = max(xs, default=60.0)
        x0 = min(-15.0 if self.since_dose else 0.0, math.floor(lo / 15) * 15)
        x1 = max(60.0, math.ceil(hi / 15) * 15)
        return x0, x1


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


# --- Data from the session log ----------------------------------------------------------------


def _minutes_since(rows: list[dict[str, Any]], origin: np.datetime64) -> np.ndarray:
    stamps = np.array([r["observed_at"][:-1] for r in rows], dtype="datetime64[ms]")
    return (stamps - origin).astype(np.float64) / 60_000.0


def _values(rows: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([r[key] for r in rows], dtype=np.float64)  # None becomes NaN


def _alarm_label(alarm: dict[str, Any]) -> str:
    return f"{alarm['parameter'].upper().replace('SPO2', 'SpO₂')} {alarm['value']:g}"


def chart_data(log: SessionLog, ref: Reference | None = None) -> ChartData:
    """The chart's series, markers and alarm-limit lines from a session's current rows."""
    ref = ref or default_reference()
    dose_at = log.first_dose_at()
    origin_text = log.current("doses")[0]["observed_at"] if dose_at else log.session["observed_at"]
    origin = np.datetime64(origin_text[:-1], "ms")
    series: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for table, keys in (
        ("vitals", ("sbp", "dbp", "hr", "spo2", "rr")),
        ("observations", ("moaas", "dissociation")),
    ):
        rows = log.current(table)
        x = _minutes_since(rows, origin) if rows else np.empty(0)
        for key in keys:
            y = _values(rows, key) if rows else np.empty(0)
            keep = np.isfinite(y)
            series[key] = (x[keep], y[keep])
    markers: list[Marker] = []

    def at(row: dict[str, Any]) -> float:
        return float(_minutes_since([row], origin)[0])

    for dose in log.current("doses"):
        route = ref.label("routes", dose["route"]).split(" (")[0]
        markers.append(Marker(at(dose), "dose", f"{dose['dose_mg']:g} mg {route}"))
    for event in log.current("adverse_events"):
        term = (
            event["verbatim"]
            if event["term"] == "other"
            else ref.label("adverse_effects", event["term"])
        )
        markers.append(Marker(at(event), "adverse", f"{term} G{event['grade']}"))
    for alarm in log.current("alarms"):
        markers.append(Marker(at(alarm), "alarm", _alarm_label(alarm)))
    thresholds: list[tuple[str, float]] = []
    protocol = log.protocol
    if protocol is not None:
        for rule in protocol.alarms:
            limit = rule.at_or_above if rule.at_or_above is not None else rule.at_or_below
            if limit is None or rule.parameter not in SERIES or rule.priority == "advisory":
                continue
            if rule.phase != "pre_dose" and (rule.parameter, float(limit)) not in thresholds:
                thresholds.append((rule.parameter, float(limit)))
    end = log.ended_at()
    end_x = None
    if end is not None:
        end_x = at(log.current("session_ends")[-1])
    return ChartData(series, markers, thresholds, dose_at is not None, end_x)


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


def _decimate(px: np.ndarray, py: np.ndarray, columns: float) -> tuple[np.ndarray, np.ndarray]:
    """Keep each pixel column's minimum and maximum when there are more points than columns."""
    if len(px) <= 2 * columns:
        return px, py
    cols = np.floor(px).astype(np.int64)
    starts = np.flatnonzero(np.concatenate(([True], cols[1:] != cols[:-1])))
    lows = np.minimum.reduceat(py, starts)
    highs = np.maximum.reduceat(py, starts)
    xs = np.repeat(cols[starts] + 0.5, 2)
    ys = np.empty(2 * len(starts))
    ys[0::2] = lows
    ys[1::2] = highs
    return xs, ys


def _key_indices(x: np.ndarray, name: str) -> np.ndarray:
    """The first point of each five-minute bucket (staggered per series, as the live chart)."""
    bucket = np.floor((x + _KEY_PHASE_MIN.get(name, 0.0)) / _KEY_PERIOD_MIN)
    return np.concatenate(([0], np.flatnonzero(bucket[1:] != bucket[:-1]) + 1))


def _polygon(xs: np.ndarray, ys: np.ndarray) -> QPolygonF:
    return QPolygonF([QPointF(float(a), float(b)) for a, b in zip(xs, ys, strict=True)])


def _ticks(x0: float, x1: float) -> list[float]:
    span = x1 - x0
    step = 15 if span <= 240 else 30 if span <= 480 else 60
    first = math.ceil(x0 / step) * step
    return [float(v) for v in np.arange(first, x1 + 0.001, step)]


def _legend(canvas: _Canvas, rect: QRectF) -> None:
    p = canvas.p
    font = canvas.font(7.5)
    p.setFont(font)
    metrics = QFontMetricsF(font)
    sample = canvas.pt(18)
    gap = canvas.pt(9)
    x, y = rect.left(), rect.top() + rect.height() / 2
    items: list[tuple[str, str, Qt.PenStyle, str, bool]] = [
        (s.legend, s.symbol, s.dash, s.color, False) for s in SERIES.values()
    ]
    items += [(label, shape, dash, color, True) for label, dash, shape, color in MARKERS.values()]
    items.append(("Alarm limit", "", Qt.PenStyle.DotLine, _THRESHOLD_COLOR, False))
    for label, shape, dash, color, vertical in items:
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


def _legend_height(canvas: _Canvas, width: float) -> float:
    metrics = QFontMetricsF(canvas.font(7.5))
    sample, gap = canvas.pt(18), canvas.pt(9)
    labels = [s.legend for s in SERIES.values()] + [m[0] for m in MARKERS.values()]
    labels.append("Alarm limit")
    rows, x = 1, 0.0
    for label in labels:
        w = sample + canvas.pt(3) + metrics.horizontalAdvance(label)
        if x + w > width:
            rows, x = rows + 1, 0.0
        x += w + gap
    return rows * metrics.height() * 1.35


def render_chart(data: ChartData, width_px: int, height_px: int, dpi: float = 200.0) -> QImage:
    """Draw the chart onto a white RGB image of the given size (``dpi`` sets text and line
    sizes: a 7.5 pt label is 7.5/72 inch at that resolution)."""
    return render_chart_with_labels(data, width_px, height_px, dpi)[0]


def render_chart_with_labels(
    data: ChartData, width_px: int, height_px: int, dpi: float = 200.0
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


def _draw(canvas: _Canvas, data: ChartData, whole: QRectF) -> LabelLayout:
    p = canvas.p
    pad = canvas.pt(4)
    legend_h = _legend_height(canvas, whole.width() - 2 * pad)
    _legend(canvas, QRectF(pad, pad, whole.width() - 2 * pad, legend_h))
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

    total = sum(panel[4] for panel in PANELS)
    usable = bottom - top - gap * (len(PANELS) - 1)
    rects: list[QRectF] = []
    y = top
    for panel in PANELS:
        h = usable * panel[4] / total
        rects.append(QRectF(left, y, width, h))
        y += h + gap
    x_ticks = _ticks(x0, x1)

    for index, (title, lo, hi, y_ticks, _weight) in enumerate(PANELS):
        rect = rects[index]

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
        # The axis title, rotated, wrapped onto two lines when the panel is short.
        p.save()
        p.translate(canvas.pt(10), rect.center().y())
        p.rotate(-90)
        p.setFont(canvas.font(7, bold=True))
        p.drawText(
            QRectF(-rect.height() / 2, -canvas.pt(9), rect.height(), canvas.pt(18)),
            Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
            title,
        )
        p.restore()

        # Alarm limits: dotted, labelled on the right, labels pushed apart when close.
        label_h = canvas.pt(7)
        p.setFont(canvas.font(6))
        limits = sorted(
            (float(to_py(value)), name, value)
            for name, value in data.thresholds
            if SERIES[name].panel == index and lo <= value <= hi
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
                f"{SERIES[name].legend} {value:g}",
            )

        # The series, clipped to the panel.
        p.save()
        p.setClipRect(rect.adjusted(-canvas.pt(3), -canvas.pt(3), canvas.pt(3), canvas.pt(3)))
        for name, style in SERIES.items():
            if style.panel != index:
                continue
            xs, ys = data.series.get(name, (np.empty(0), np.empty(0)))
            if not len(xs):
                continue
            px, py = to_px(xs), to_py(ys)
            lx, ly = _decimate(px, py, width)
            dense = len(xs) > _SYMBOLS_MAX_POINTS
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.setPen(canvas.pen(style.color, 1.0 if dense else 1.3, style.dash))
            if len(lx) > 1:
                p.drawPolyline(_polygon(lx, ly))
            keys = _key_indices(np.asarray(xs), name) if dense else np.arange(len(xs))
            _draw_symbols(
                canvas,
                style.symbol,
                style.color,
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
        data.x_axis_title,
    )
    return layout


def _draw_markers(
    canvas: _Canvas,
    data: ChartData,
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
    shown: list[tuple[int, Marker, float]] = []
    for index, marker in enumerate(data.markers):
        xp = float(to_px(marker.x))
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
        _legend_text, dash, _shape, color = MARKERS.get(marker.kind, MARKERS["alarm"])
        p.setPen(canvas.pen(color, 0.9, dash))
        for rect in rects:
            p.drawLine(QLineF(xp, rect.top(), xp, rect.bottom()))
    p.setFont(label_font)
    for placed in layout.labels:
        marker = data.markers[cast(int, placed.key)]
        _legend_text, _dash, shape, color = MARKERS.get(marker.kind, MARKERS["alarm"])
        xp = float(to_px(marker.x))
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
