"""One patient's course of sessions: dose, PHQ-9 before each session, blood pressure, effects.

Three stacked plots share the session date across (fixed clinical ranges, marker shapes as well
as colours) and a table below says the same numbers in words, so response (PHQ-9 falling) and
relapse (rising again), and the blood-pressure response at each dose, read at a glance. The
numbers come from :func:`kapmonitor.store.archive.patient_series` on the archive worker.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from kapmonitor import APP_NAME
from kapmonitor.domain.clock import Clock
from kapmonitor.settings import LARGE_TYPE, NIGHT_MODE, Settings
from kapmonitor.store.archive import SeriesPoint, patient_series
from kapmonitor.ui.forms.form_base import resize_within_screen
from kapmonitor.ui.review.archive_worker import ArchiveWorker, WorkerResults
from kapmonitor.ui.review.dashboard_window import plot_colours, style_plot
from kapmonitor.ui.review.session_review_view import ReadOnlyTable, local

DAY = 86400.0
PHQ9_BANDS = ((5, "mild"), (10, "moderate"), (15, "mod. severe"), (20, "severe"))
STATUS_WORDS = {"open": "open", "ended": "ended, not signed", "signed": "signed"}


class PatientSeriesView(WorkerResults, QWidget):
    """A window of its own (pass a parent to keep it with the review window)."""

    job_kind = "series"
    failure_text = "The series could not be read"

    def __init__(
        self,
        db_path: Path | str,
        patient_code: str,
        clock: Clock,
        settings: Settings,
        parent: QWidget | None = None,
        *,
        worker: ArchiveWorker | None = None,
        source: Callable[[str], list[SeriesPoint]] | None = None,
    ) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.source = source
        """Where the course comes from when not the laptop's file: ``source(code)`` on the
        worker (the clinic archive's window passes every laptop's sessions of the patient)."""
        self.patient_code = patient_code
        self.clock = clock
        self.settings = settings
        self.own_worker = worker is None
        self.worker = worker or ArchiveWorker(db_path, self)
        self.worker.finished.connect(self._done)
        self.worker.failed.connect(self._failed)
        self.request = 0
        self.shown_request = 0
        self.points: list[SeriesPoint] | None = None
        self.setWindowTitle(f"{APP_NAME} — patient {patient_code}")
        resize_within_screen(self, 1100, 860)

        layout = QVBoxLayout(self)
        self.title = QLabel(f"Patient {patient_code}", self)
        self.title.setObjectName("PatientCode")
        layout.addWidget(self.title)
        self.summary = QLabel("Loading…", self)
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.banner = QLabel(self)
        self.banner.setObjectName("ErrorBanner")
        self.banner.setWordWrap(True)
        self.banner.hide()
        layout.addWidget(self.banner)

        self.plots = pg.GraphicsLayoutWidget(self)
        self.dose_plot = self._plot(0, "Dose per session", "mg/kg")
        self.phq9_plot = self._plot(1, "PHQ-9 before the session", "PHQ-9 total")
        self.bp_plot = self._plot(2, "Systolic blood pressure", "SBP mmHg")
        self.bp_plot.setLabel("bottom", "Session date")
        for plot in (self.dose_plot, self.phq9_plot):
            plot.getAxis("bottom").setStyle(showValues=False)
            plot.setXLink(self.bp_plot)
        self.bp_plot.addLegend(offset=(-10, 10))
        self.table = ReadOnlyTable(self)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.plots)
        split.addWidget(self.table)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        self.plots.setMinimumHeight(420)
        split.setSizes([640, 170])
        layout.addWidget(split, 1)
        self.adverse_labels: list[tuple[float, str]] = []

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

    def _plot(self, row: int, title: str, y_label: str) -> pg.PlotItem:
        plot = self.plots.addPlot(
            row=row, col=0, title=title, axisItems={"bottom": pg.DateAxisItem(orientation="bottom")}
        )
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setMouseEnabled(x=False, y=False)
        plot.disableAutoRange()
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.setLabel("left", y_label)
        plot.getAxis("left").enableAutoSIPrefix(False)
        plot.getAxis("left").setWidth(70)
        return plot

    # --- data ---------------------------------------------------------------------------------

    def load(self) -> int:
        code = self.patient_code
        source = self.source
        if source is not None:
            self.request = self.worker.submit("series", lambda _db: source(code), needs_db=False)
            return self.request
        self.request = self.worker.submit("series", lambda db: patient_series(db, code))
        return self.request

    @property
    def loaded(self) -> bool:
        return self.points is not None and self.shown_request == self.request

    def _accept(self, result: object) -> None:
        assert isinstance(result, list)
        self.points = result
        self._draw()

    # --- drawing ------------------------------------------------------------------------------

    def _draw(self) -> None:
        points = self.points or []
        colours = plot_colours(self.settings.get(NIGHT_MODE))
        for plot in (self.dose_plot, self.phq9_plot, self.bp_plot):
            plot.clear()
        if self.bp_plot.legend is not None:
            self.bp_plot.legend.clear()
        noun = "session" if len(points) == 1 else "sessions"
        self.title.setText(f"Patient {self.patient_code} — {len(points)} {noun}")
        self.summary.setText(self.summary_text())
        xs = [p.started_at.timestamp() for p in points]
        lo = (min(xs) if xs else self.clock.now().timestamp()) - 3 * DAY
        hi = (max(xs) if xs else self.clock.now().timestamp()) + 3 * DAY
        self.bp_plot.setXRange(lo, hi, padding=0)

        doses = [(p.started_at.timestamp(), p.dose_mg_per_kg) for p in points if p.dose_mg_per_kg]
        top = max([1.5, *(d * 1.15 for _x, d in doses)])
        self.dose_plot.setYRange(0, top, padding=0)
        self.dose_curve = self.dose_plot.plot(
            [x for x, _d in doses],
            [d for _x, d in doses],
            pen=pg.mkPen(colours["bar"], width=2),
            symbol="o",
            symbolSize=10,
            symbolBrush=pg.mkBrush(colours["bar"]),
        )
        for x, per_kg in doses:
            label = pg.TextItem(f"{per_kg:.2f}", color=colours["foreground"], anchor=(0.5, 1.2))
            label.setPos(x, per_kg)
            self.dose_plot.addItem(label)

        self.phq9_plot.setYRange(0, 27, padding=0)
        self.phq9_plot.getAxis("left").setTicks([[(v, str(v)) for v in (0, 5, 10, 15, 20, 27)]])
        for value, band in PHQ9_BANDS:
            line = pg.InfiniteLine(
                pos=value,
                angle=0,
                pen=pg.mkPen(colours["muted"], width=1, style=Qt.PenStyle.DotLine),
                label=band,
                labelOpts={
                    "position": 0.01,
                    "color": colours["muted"],
                    "anchors": [(0, 1), (0, 1)],
                },
            )
            self.phq9_plot.addItem(line)
        phq9 = [
            (p.started_at.timestamp(), p.phq9_before) for p in points if p.phq9_before is not None
        ]
        self.phq9_curve = self.phq9_plot.plot(
            [x for x, _v in phq9],
            [float(v) for _x, v in phq9],
            pen=pg.mkPen(colours["second"], width=2),
            symbol="s",
            symbolSize=10,
            symbolBrush=pg.mkBrush(colours["second"]),
        )

        self.bp_plot.setYRange(80, 230, padding=0)
        peaks = [(p.started_at.timestamp(), p.peak_sbp) for p in points if p.peak_sbp is not None]
        bases = [
            (p.started_at.timestamp(), p.baseline_sbp) for p in points if p.baseline_sbp is not None
        ]
        self.peak_curve = self.bp_plot.plot(
            [x for x, _v in peaks],
            [float(v) for _x, v in peaks],
            pen=pg.mkPen(colours["second"], width=2),
            symbol="t1",
            symbolSize=12,
            symbolBrush=pg.mkBrush(colours["second"]),
            name="peak after dose ▲",
        )
        self.baseline_curve = self.bp_plot.plot(
            [x for x, _v in bases],
            [float(v) for _x, v in bases],
            pen=pg.mkPen(colours["bar"], width=2, style=Qt.PenStyle.DashLine),
            symbol="t",
            symbolSize=12,
            symbolBrush=pg.mkBrush(colours["bar"]),
            name="before dose ▼",
        )
        self.adverse_labels = []
        for p in points:
            if not p.adverse_effects:
                continue
            text = "⚑ " + ", ".join(p.adverse_effects)
            item = pg.TextItem(text, color=colours["second"], anchor=(0.5, 0))
            item.setPos(p.started_at.timestamp(), 226)
            self.bp_plot.addItem(item)
            self.adverse_labels.append((p.started_at.timestamp(), text))
        self._fill_table(points)

    def summary_text(self) -> str:
        points = self.points or []
        if not points:
            return "No sessions with this patient code."
        first, last = points[0], points[-1]
        parts = [f"{local(first.started_at, True)} to {local(last.started_at, True)}"]
        scored = [p for p in points if p.phq9_before is not None]
        if len(scored) >= 2:
            change = scored[-1].phq9_before - scored[0].phq9_before  # type: ignore[operator]
            parts.append(f"PHQ-9 {scored[0].phq9_before} → {scored[-1].phq9_before} ({change:+d})")
        with_ae = sum(1 for p in points if p.adverse_effects)
        parts.append(f"{with_ae} of {len(points)} with adverse effects")
        return " · ".join(parts)

    def _fill_table(self, points: list[SeriesPoint]) -> None:
        rows = []
        for p in points:
            bp = (
                f"{p.baseline_sbp} → {p.peak_sbp} ({p.sbp_rise:+d})"
                if p.sbp_rise is not None
                else (str(p.peak_sbp) if p.peak_sbp is not None else "")
            )
            rows.append(
                [
                    local(p.started_at, True),
                    STATUS_WORDS.get(p.status, p.status),
                    f"{p.dose_mg:g} mg" if p.dose_mg else "none",
                    f"{p.dose_mg_per_kg:.2f}" if p.dose_mg_per_kg else "",
                    f"{p.phq9_before} ({p.phq9_band})" if p.phq9_before is not None else "",
                    bp,
                    ", ".join(p.adverse_effects) or "none",
                ]
            )
        headers = [
            "Session",
            "Status",
            "Dose",
            "mg/kg",
            "PHQ-9 before",
            "SBP before → peak",
            "Adverse effects",
        ]
        self.table.fill(headers, rows, {i for i, p in enumerate(points) if p.adverse_effects})

    # --- read back what is drawn ------------------------------------------------------------

    @staticmethod
    def _xy(curve: Any) -> list[tuple[float, float]]:
        xs, ys = curve.getData()
        if xs is None or ys is None:
            return []
        return [(float(x), float(y)) for x, y in zip(xs, ys, strict=True)]

    def dose_points(self) -> list[tuple[float, float]]:
        return self._xy(self.dose_curve)

    def phq9_points(self) -> list[tuple[float, float]]:
        return self._xy(self.phq9_curve)

    def peak_points(self) -> list[tuple[float, float]]:
        return self._xy(self.peak_curve)

    def baseline_points(self) -> list[tuple[float, float]]:
        return self._xy(self.baseline_curve)

    # --- view ---------------------------------------------------------------------------

    def apply_view_settings(self) -> None:
        night, large = self.settings.get(NIGHT_MODE), self.settings.get(LARGE_TYPE)
        self.plots.setBackground(plot_colours(night)["background"])
        for plot in (self.dose_plot, self.phq9_plot, self.bp_plot):
            style_plot(plot, night, large)
        if self.points is not None:
            self._draw()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.release_worker(self.worker, self.own_worker)
        super().closeEvent(event)


__all__ = ["PatientSeriesView"]
