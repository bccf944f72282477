"""The session page's chart and timeline, built when the first session is opened or resumed.

The bedside window imports this module inside a method, on first use, and that is for
start-up time only: the chart brings in pyqtgraph (with its Qt shim and numpy's array code,
the largest import of the program), which the welcome page the window opens on does not
need. It is not there to break an import cycle; this module imports widgets only, never the
window, so it could be imported at the top of session_window without a circle.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QSplitter, QWidget

from kapmonitor.domain.reference import Reference
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.widgets.timeline_view import PagedTimelineModel, TimelineView
from kapmonitor.ui.widgets.trend_chart import TrendChart


def build_chart_and_timeline(
    parent: QWidget,
    splitter: QSplitter,
    store: SessionStore,
    ref: Reference,
    night: bool,
    large: bool,
    on_double_click: Callable[[], object],
) -> tuple[TrendChart, TimelineView]:
    """Put the live chart over the timeline in ``splitter`` (the chart three quarters).

    The timeline keeps each line's place, not its row: lines are read from ``store`` when
    shown. The chart is drawn in the window's current palette and type size.
    """
    chart = TrendChart(night=night)
    chart.apply_palette(night)
    chart.set_large_type(large)
    paged = PagedTimelineModel(store.rows_by_id, ref, parent)
    timeline = TimelineView(parent, compact=True, model=paged)
    timeline.doubleClicked.connect(lambda _index: on_double_click())
    splitter.addWidget(chart)
    splitter.addWidget(timeline)
    splitter.setStretchFactor(0, 3)
    splitter.setStretchFactor(1, 1)
    splitter.setCollapsible(0, False)
    splitter.setCollapsible(1, False)
    splitter.setSizes([3000, 1000])  # in proportion: the timeline a quarter
    return chart, timeline
