"""A session opened at the bedside is kept out of the cyclic collector's full passes while it is
shown (a full pass over a three-hour record took about 40 ms, landing on whatever save or device
message was being handled), and given back to the collector when another session opens or the
window closes, so nothing stays frozen after it."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import VitalSigns
from kapmonitor.store.session_store import SessionStore
from tests.factories import T0, session_start
from tests.ui.window_driver import shown_window

pytestmark = pytest.mark.qt_log_ignore(r"^This plugin does not support propagateSizeHints\(\)$")


def test_the_shown_record_is_frozen_and_thawed_on_close(qtbot: QtBot, tmp_path: Path) -> None:
    clock = FakeClock(T0)
    store = SessionStore.open(tmp_path / "gc.sqlite", clock)
    first = store.start_session(session_start(clock), "Dr A")
    store.add(first, VitalSigns(clock.now(), hr=70), "Dr A")
    second = store.start_session(session_start(clock, patient_code="KAP-0043"), "Dr A")
    window = shown_window(qtbot, store, clock, tmp_path)
    try:
        gc.unfreeze()
        window.open_session(first)
        frozen = gc.get_freeze_count()
        assert frozen > 0
        window.open_session(second)  # the first record goes back to the collector first
        assert gc.get_freeze_count() > 0
        window.close()
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()
        store.close()
