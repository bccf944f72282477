"""The bedside timeline pages from SQLite: it keeps each line's place, builds lines when shown.

A record longer than the cache (512 lines) is opened; every line is still there, in order, the
oldest read back from the store when scrolled to, exactly as the full timeline describes it, and
a line selected far back is the one corrected.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import VitalSigns
from kapmonitor.domain.timeline import timeline
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.bedside.session_window import SessionWindow
from kapmonitor.ui.widgets.timeline_view import CACHED_ITEMS, PagedTimelineModel
from tests.factories import T0, session_start
from tests.ui.window_driver import shown_window

pytestmark = pytest.mark.qt_log_ignore(r"^This plugin does not support")
READINGS = CACHED_ITEMS + 200


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    opened = SessionStore.open(tmp_path / "paged.sqlite", clock)
    opened.db.execute("PRAGMA synchronous = OFF")  # test speed only: many small commits
    yield opened
    opened.close()


@pytest.fixture
def window(qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path) -> SessionWindow:
    session_id = store.start_session(session_start(clock), "Dr A")
    for second in range(READINGS):
        clock.advance(seconds=1)
        store.add(session_id, VitalSigns(clock.now(), hr=60 + second % 40, sbp=120, dbp=80), "Dr A")
    shown = shown_window(qtbot, store, clock, tmp_path)
    shown.open_session(session_id, fresh=True)
    return shown


def test_a_long_record_keeps_places_not_lines(window: SessionWindow, store: SessionStore) -> None:
    model = window.timeline.timeline
    assert isinstance(model, PagedTimelineModel)
    assert window.log is not None
    expected = timeline(store.load(window.log.id).rows, store.ref)  # the full, built timeline
    assert model.rowCount() == len(expected) > CACHED_ITEMS
    assert len(model._cache) <= CACHED_ITEMS  # built lines held: a bounded number

    for _item in model.items[-CACHED_ITEMS:]:  # the newest lines fill the cache
        pass
    reads: list[tuple[str, int]] = []
    fetch = model.fetch
    model.fetch = lambda table, ids: reads.append((table, len(ids))) or fetch(table, ids)
    window.timeline.scrollToTop()
    first = model.index(0, 3).data()
    assert reads, "the oldest lines are read from the store when shown"
    ordered = sorted(expected, key=lambda i: (i.observed_at, i.recorded_at))
    assert first == ordered[0].summary
    assert [(i.table, i.row_id) for i in model.items] == [(i.table, i.row_id) for i in ordered]
    assert len(model._cache) <= CACHED_ITEMS


def test_a_line_far_back_is_selected_and_found_by_id(
    window: SessionWindow, store: SessionStore
) -> None:
    model = window.timeline.timeline
    assert window.log is not None
    oldest_vitals = store.load(window.log.id).current("vitals")[0]
    position = model.items.index(
        next(i for i in model.items if i.table == "vitals" and i.row_id == oldest_vitals["id"])
    )
    window.timeline.selectRow(position)
    item = window.timeline.selected_item()
    assert item is not None and (item.table, item.row_id) == ("vitals", oldest_vitals["id"])
    assert f"HR {oldest_vitals['hr']}" in item.summary


def test_opening_builds_the_same_lines_as_the_full_timeline(
    qtbot: QtBot, store: SessionStore, clock: FakeClock
) -> None:
    """Opening a session builds only the kept lines (``reset_rows``): the places, their order
    (entries at the same moment included), what each line says and which entries are
    superseded are those of the full timeline."""
    session_id = store.start_session(session_start(clock), "Dr A")
    clock.advance(seconds=30)
    same_moment = clock.now()
    first = store.add(session_id, VitalSigns(same_moment, hr=70, sbp=120, dbp=80), "Dr A")
    store.add(session_id, VitalSigns(same_moment, hr=71, sbp=121, dbp=81), "Dr B")
    for second in range(CACHED_ITEMS + 40):
        clock.advance(seconds=1)
        store.add(session_id, VitalSigns(clock.now(), hr=60 + second % 9), "Dr A")
    assert first.primary_id is not None
    store.correct(session_id, first.primary_id, VitalSigns(same_moment, hr=72), "typo", "Dr A")
    rows = store.load(session_id).rows
    full = PagedTimelineModel(store.rows_by_id, store.ref)
    full.reset(timeline(rows, store.ref), same_moment)
    paged = PagedTimelineModel(store.rows_by_id, store.ref)
    paged.reset_rows(rows, same_moment)
    assert len(paged._cache) <= CACHED_ITEMS
    assert paged.superseded == full.superseded and paged.superseded
    assert paged.rowCount() == full.rowCount() > CACHED_ITEMS
    lines = [[paged.index(r, c).data() for c in range(6)] for r in range(paged.rowCount())]
    assert lines == [[full.index(r, c).data() for c in range(6)] for r in range(full.rowCount())]
