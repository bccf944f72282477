"""Patterns across sessions: adverse effects, blood-pressure response to dose, alarms, checks.

Four fixed, labelled plots over a chosen period (last 30, 90 or 365 days, or all). Every series
differs by marker shape as well as colour, and every number a plot shows is also written in the
summary line or as a label, so nothing rides on colour. The numbers are computed on the archive
worker (:func:`kapmonitor.store.archive.dashboard`), never on the GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent, QFont, QKeySequence
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QMainWindow, QVBoxLayout, QWidget

from kapmonitor import APP_NAME
from kapmonitor.domain.clock import Clock
from kapmonitor.settings import LARGE_TYPE, NIGHT_MODE, Settings
from kapmonitor.store.archive import Dashboard, dashboard
from kapmonitor.ui.forms.form_base import resize_within_screen
from kapmonitor.ui.review.archive_worker import ArchiveWorker, WorkerResults
from kapmonitor.ui.widgets.theme import current_theme

PERIODS: tuple[tuple[str, int | None], ...] = (
    ("Last 30 days", 30),
    ("Last 90 days", 90),
    ("Last 365 days", 365),
    ("All sessions", None),
)
DEFAULT_PERIOD = 1  # last 90 days
DRUG_SYMBOLS = {"ketamine": ("o", "racemic ketamine ●"), "esketamine": ("t1", "esketamine ▲")}
OTHER_SYMBOL = ("s", "other ■")
RISE_REFERENCE_MMHG = 40.0  # the default "SBP 40 above baseline" alarm (Spravato label §5.6)


def plot_colours(night: bool) -> dict[str, str]:
    theme = current_theme(night)
    return {
        "background": "#101418" if night else "#FBFBF8",
        "foreground": theme.text,
        "bar": theme.accent,
        "second": theme.warn,
        "muted": theme.muted,
    }


def style_plot(plot: pg.PlotItem, night: bool, large: bool) -> None:
    colours = plot_colours(night)
    font = QFont()
    font.setPointSize(14 if large else 10)
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(colours["muted"]))
        axis.setTextPen(pg.mkPen(colours["foreground"]))
        axis.setTickFont(font)
        if axis.labelText:
            axis.setLabel(
                axis.labelText,
                **{"color": colours["foreground"], "font-size": f"{14 if large else 10}pt"},
            )
    plot.titleLabel.setText(
        plot.titleLabel.text, color=colours["foreground"], size=f"{15 if large else 11}pt"
    )
    if plot.legend is not None:
        plot.legend.setLabelTextColor(colours["foreground"])
        plot.legend.setLabelTextSize(f"{13 if large else 10}pt")


def fixed_plot(
    layout: pg.GraphicsLayoutWidget,
    row: int,
    column: int,
    title: str,
    x_label: str,
    y_label: str,
    axis_items: dict[str, pg.AxisItem] | None = None,
) -> pg.PlotItem:
    plot = layout.addPlot(row=row, col=column, title=title, axisItems=axis_items)
    plot.setMenuEnabled(False)
    plot.hideButtons()
    plot.setMouseEnabled(x=False, y=False)
    plot.disableAutoRange()
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setLabel("bottom", x_label)
    plot.setLabel("left", y_label)
    for name in ("left", "bottom"):
        plot.getAxis(name).enableAutoSIPrefix(False)
    return plot


DashboardSource = Callable[[datetime | None, datetime], Dashboard]


class DashboardWindow(WorkerResults, QMainWindow):
    """The dashboard; pass the review window's worker to share it, or let it make its own."""

    job_kind = "dashboard"
    failure_text = "The dashboard could not be computed"

    def __init__(
        self,
        db_path: Path | str,
        clock: Clock,
        settings: Settings,
        parent: QWidget | None = None,
        *,
        worker: ArchiveWorker | None = None,
        source: DashboardSource | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowFlag(Qt.WindowType.Window, True)
        self.source = source
        """Where the figures come from when not the laptop's file: ``source(since, now)`` run on
        the worker (the clinic archive's window passes the archive's dashboard)."""
        self.clock = clock
        self.settings = settings
        self.own_worker = worker is None
        self.worker = worker or ArchiveWorker(db_path, self)
        self.worker.finished.connect(self._done)
        self.worker.failed.connect(self._failed)
        self.request = 0
        self.shown_request = 0
        self.data: Dashboard | None = None
        self.incidence_labels: list[str] = []
        self.setWindowTitle(f"{APP_NAME} — dashboard")
        resize_within_screen(self, 1280, 820)

        central = QWidget(self)
        layout = QVBoxLayout(central)
        top = QHBoxLayout()
        label = QLabel("&Period", central)
        self.period = QComboBox(central)
        for text, _days in PERIODS:
            self.period.addItem(text)
        self.period.setCurrentIndex(DEFAULT_PERIOD)
        label.setBuddy(self.period)
        self.period.currentIndexChanged.connect(lambda _i: self.load())
        top.addWidget(label)
        top.addWidget(self.period)
        top.addStretch(1)
        layout.addLayout(top)
        self.summary = QLabel("Loading…", central)
        self.summary.setObjectName("DashboardSummary")
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.banner = QLabel(central)
        self.banner.setObjectName("ErrorBanner")
        self.banner.setWordWrap(True)
        self.banner.hide()
        layout.addWidget(self.banner)

        self.plots = pg.GraphicsLayoutWidget(central)
        self.incidence_plot = fixed_plot(
            self.plots, 0, 0, "Adverse-effect incidence", "Sessions with the effect (%)", ""
        )
        self.dose_plot = fixed_plot(
            self.plots,
            0,
            1,
            "Peak systolic rise against first dose",
            "First dose (mg/kg)",
            "Peak SBP − pre-dose SBP (mmHg)",
        )
        self.alarm_plot = fixed_plot(
            self.plots, 1, 0, "Alarms per session", "Alarms in the session", "Sessions"
        )
        self.missed_plot = fixed_plot(
            self.plots,
            1,
            1,
            "Vital-sign checks per session",
            "Session date",
            "Checks",
            axis_items={"bottom": pg.DateAxisItem(orientation="bottom")},
        )
        self.missed_plot.addLegend(offset=(-10, 10))
        self.dose_plot.addLegend(offset=(-10, 10))
        self.alarm_plot.addLegend(offset=(-10, 10))
        layout.addWidget(self.plots, 1)
        self.setCentralWidget(central)
        self._items: list[Any] = []

        refresh = QAction("Refresh", self)
        refresh.setShortcut(QKeySequence("F5"))
        refresh.triggered.connect(self.load)
        self.addAction(refresh)
        close = QAction("Close", self)
        close.setShortcut(QKeySequence("Ctrl+W"))
        close.triggered.connect(self.close)
        self.addAction(close)
        self.apply_view_settings()
        self.load()

    # --- data ---------------------------------------------------------------------------------

    def period_bounds(self) -> tuple[datetime | None, datetime]:
        now = self.clock.now()
        days = PERIODS[self.period.currentIndex()][1]
        return (now - timedelta(days=days) if days is not None else None), now

    def load(self) -> int:
        since, now = self.period_bounds()
        self.summary.setText("Loading…")
        source = self.source
        if source is not None:
            self.request = self.worker.submit(
                "dashboard", lambda _db: source(since, now), needs_db=False
            )
            return self.request
        self.request = self.worker.submit(
            "dashboard", lambda db: dashboard(db, since, None, now=now)
        )
        return self.request

    @property
    def loaded(self) -> bool:
        return self.data is not None and self.shown_request == self.request

    def _accept(self, result: object) -> None:
        assert isinstance(result, Dashboard)
        self.data = result
        self._draw()

    def _on_failure(self) -> None:
        self.summary.setText("")

    # --- drawing ----------------------------------------------------------------------------

    def summary_text(self) -> str:
        data = self.data
        if data is None:
            return ""
        if not data.sessions:
            return f"{PERIODS[self.period.currentIndex()][0]}: no sessions."
        with_ae = data.sessions_with_adverse_effects
        parts = [
            f"{PERIODS[self.period.currentIndex()][0]}: {data.sessions} sessions",
            f"{with_ae} with adverse effects ({100 * with_ae / data.sessions:.0f} %)",
            f"alarms per session {data.mean('alarms'):.2f} "
            f"({sum(c.value for c in data.unacknowledged_alarms)} unanswered)",
        ]
        parts.append(f"missed checks per session {data.mean('missed_checks'):.2f}")
        parts.append(f"late checks per session {data.mean('late_checks'):.2f}")
        if data.dose_response:
            mean_rise = sum(p.rise for p in data.dose_response) / len(data.dose_response)
            parts.append(f"mean peak SBP rise {mean_rise:+.0f} mmHg")
        return " · ".join(parts)

    def _clear(self) -> None:
        for plot in (self.incidence_plot, self.dose_plot, self.alarm_plot, self.missed_plot):
            plot.clear()
            if plot.legend is not None:
                plot.legend.clear()
        self._items = []

    def _draw(self) -> None:
        data = self.data
        assert data is not None
        self._clear()
        self.summary.setText(self.summary_text())
        night = self.settings.get(NIGHT_MODE)
        colours = plot_colours(night)
        self._draw_incidence(data, colours)
        self._draw_dose(data, colours)
        self._draw_alarms(data, colours)
        self._draw_checks(data, colours)

    def _draw_incidence(self, data: Dashboard, colours: dict[str, str]) -> None:
        plot = self.incidence_plot
        terms = list(reversed(data.adverse_effects))  # most frequent at the top
        plot.setXRange(-2, 102, padding=0)
        plot.setYRange(-0.7, max(len(terms), 1) - 0.3, padding=0)
        self.incidence_labels = [t.label for t in terms]
        plot.getAxis("left").setTicks([[(i, t.label) for i, t in enumerate(terms)]])
        plot.getAxis("bottom").setTicks([[(v, f"{v} %") for v in range(0, 101, 20)]])
        if not terms:
            empty = pg.TextItem("No adverse effects recorded", color=colours["muted"])
            empty.setPos(5, 0)
            plot.addItem(empty)
            return
        bars = pg.BarGraphItem(
            x0=np.zeros(len(terms)),
            y=np.arange(len(terms), dtype=float),
            height=0.6,
            width=np.array([t.percent for t in terms]),
            brush=pg.mkBrush(colours["bar"]),
            pen=pg.mkPen(colours["foreground"]),
        )
        plot.addItem(bars)
        self.incidence_bars_item = bars
        for i, term in enumerate(terms):
            text = pg.TextItem(
                f"{term.percent:.0f} % ({term.sessions}/{term.total})",
                color=colours["foreground"],
                anchor=(0, 0.5),
            )
            text.setPos(min(term.percent, 78) + 1, i)
            plot.addItem(text)

    def _draw_dose(self, data: Dashboard, colours: dict[str, str]) -> None:
        plot = self.dose_plot
        points = data.dose_response
        max_x = max([2.0, *(p.first_dose_mg_per_kg * 1.1 for p in points)])
        rises = [p.rise for p in points]
        low = min([-20.0, *(r - 5 for r in rises)])
        high = max([80.0, *(r + 5 for r in rises)])
        plot.setXRange(0, max_x, padding=0)
        plot.setYRange(low, high, padding=0)
        line = pg.InfiniteLine(
            pos=RISE_REFERENCE_MMHG,
            angle=0,
            pen=pg.mkPen(colours["second"], width=1.5, style=Qt.PenStyle.DashLine),
            label=f"+{RISE_REFERENCE_MMHG:g} mmHg (rise alarm)",
            labelOpts={"position": 0.02, "color": colours["second"], "anchors": [(0, 1), (0, 1)]},
        )
        plot.addItem(line)
        self.dose_scatter: dict[str, pg.ScatterPlotItem] = {}
        groups: dict[str, list[Any]] = {}
        for p in points:
            groups.setdefault(p.drug if p.drug in DRUG_SYMBOLS else "other", []).append(p)
        for drug, group in groups.items():
            symbol, name = DRUG_SYMBOLS.get(drug, OTHER_SYMBOL)
            scatter = pg.ScatterPlotItem(
                x=[p.first_dose_mg_per_kg for p in group],
                y=[float(p.rise) for p in group],
                symbol=symbol,
                size=11,
                brush=pg.mkBrush(colours["bar"] if drug == "ketamine" else colours["second"]),
                pen=pg.mkPen(colours["foreground"]),
                name=f"{name} ({len(group)})",
                data=[p.patient_code for p in group],
            )
            scatter.setToolTip("Each mark is one session")
            plot.addItem(scatter)
            self.dose_scatter[drug] = scatter

    def _draw_alarms(self, data: Dashboard, colours: dict[str, str]) -> None:
        plot = self.alarm_plot
        counts = [c.value for c in data.alarms]
        top = max(counts, default=0)
        histogram = np.bincount(np.array(counts, dtype=int), minlength=max(top + 1, 4))
        unanswered = [c.value for c in data.unacknowledged_alarms if c.value]
        unanswered_hist = np.bincount(np.array(unanswered, dtype=int), minlength=len(histogram))[
            : len(histogram)
        ]
        plot.setXRange(-0.6, len(histogram) - 0.4, padding=0)
        top_count = max(int(histogram.max(initial=0)) + 1, 4)
        plot.setYRange(0, top_count, padding=0)
        step = max(1, top_count // 8)
        plot.getAxis("left").setTicks([[(v, str(v)) for v in range(0, top_count + 1, step)]])
        plot.getAxis("bottom").setTicks([[(i, str(i)) for i in range(len(histogram))]])
        bars = pg.BarGraphItem(
            x=np.arange(len(histogram), dtype=float),
            height=histogram.astype(float),
            width=0.6,
            brush=pg.mkBrush(colours["bar"]),
            pen=pg.mkPen(colours["foreground"]),
            name="sessions with that many alarms ▮",
        )
        plot.addItem(bars)
        self.alarm_bars_item = bars
        marks = pg.ScatterPlotItem(
            x=[float(i) for i, n in enumerate(unanswered_hist) if n],
            y=[float(n) for n in unanswered_hist if n],
            symbol="x",
            size=14,
            pen=pg.mkPen(colours["second"], width=2),
            brush=pg.mkBrush(colours["second"]),
            name="…of which with unanswered alarms ✕",
        )
        plot.addItem(marks)
        self.unanswered_marks = marks

    def _draw_checks(self, data: Dashboard, colours: dict[str, str]) -> None:
        plot = self.missed_plot
        missed = data.missed_checks
        late = data.late_checks
        xs = [c.started_at.timestamp() for c in missed]
        now = self.clock.now().timestamp()
        since, _now = self.period_bounds()
        first = since.timestamp() if since is not None else min(xs, default=now - 86400)
        plot.setXRange(first, now + 3600, padding=0.02)
        values = [c.value for c in missed] + [c.value for c in late]
        plot.setYRange(-0.3, max([5, *values]) + 0.5, padding=0)
        self.missed_scatter = pg.ScatterPlotItem(
            x=xs,
            y=[float(c.value) for c in missed],
            symbol="o",
            size=10,
            brush=pg.mkBrush(colours["second"]),
            pen=pg.mkPen(colours["foreground"]),
            name="missed checks ●",
        )
        self.late_scatter = pg.ScatterPlotItem(
            x=[c.started_at.timestamp() for c in late],
            y=[float(c.value) for c in late],
            symbol="+",
            size=13,
            pen=pg.mkPen(colours["bar"], width=2),
            brush=pg.mkBrush(colours["bar"]),
            name="late checks ✚",
        )
        plot.addItem(self.missed_scatter)
        plot.addItem(self.late_scatter)

    # --- read back what is drawn (tests, screenshots) ----------------------------------------

    def incidence_bars(self) -> list[tuple[str, float]]:
        """(term label, % of sessions) as drawn, most frequent first."""
        if self.data is None or not self.data.adverse_effects:
            return []
        opts = self.incidence_bars_item.opts
        pairs = [
            (self.incidence_labels[int(y)], float(w))
            for y, w in zip(opts["y"], opts["width"], strict=True)
        ]
        return list(reversed(pairs))

    def dose_points(self) -> list[tuple[float, float]]:
        """(first dose mg/kg, peak SBP rise) of every session drawn."""
        found: list[tuple[float, float]] = []
        for scatter in getattr(self, "dose_scatter", {}).values():
            xs, ys = scatter.getData()
            found += [(float(x), float(y)) for x, y in zip(xs, ys, strict=True)]
        return sorted(found)

    def alarm_histogram(self) -> list[int]:
        """Sessions with 0, 1, 2 … alarms, as drawn."""
        return [int(h) for h in self.alarm_bars_item.opts["height"]]

    def missed_points(self) -> list[tuple[float, float]]:
        xs, ys = self.missed_scatter.getData()
        return [(float(x), float(y)) for x, y in zip(xs, ys, strict=True)]

    # --- view ---------------------------------------------------------------------------

    def apply_view_settings(self) -> None:
        night, large = self.settings.get(NIGHT_MODE), self.settings.get(LARGE_TYPE)
        self.plots.setBackground(plot_colours(night)["background"])
        for plot in (self.incidence_plot, self.dose_plot, self.alarm_plot, self.missed_plot):
            style_plot(plot, night, large)
        if self.data is not None:
            self._draw()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.release_worker(self.worker, self.own_worker)
        super().closeEvent(event)


__all__ = ["PERIODS", "DashboardWindow"]
