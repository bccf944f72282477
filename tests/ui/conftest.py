"""Fixtures for the entry-dialog tests: a real store on a fake clock and a started session.

The dialogs are driven with keys against a real SQLite store, so a test asserts what was
committed, not what a mock was told. Reference data is the shipped set only, never the user's
config folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import Entry, SessionStart
from kapmonitor.domain.reference import Reference, load_reference
from kapmonitor.paths import resources_dir
from kapmonitor.store.session_store import SessionStore

WEIGHT_KG = 74.0
RECORDER = "Dr A"

D = TypeVar("D", bound=QDialog)

# The offscreen platform cannot do these and says so as a Qt warning whenever a dialog is shown
# or a completer pops up; they are limits of the test platform, not problems of the app.
OFFSCREEN_LIMITS = (
    r"^This plugin does not support (propagateSizeHints\(\)|raise\(\)|grabbing the keyboard)$"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if item.path.parent == here:
            item.add_marker(pytest.mark.qt_log_ignore(OFFSCREEN_LIMITS))


@pytest.fixture
def ref() -> Reference:
    return load_reference(resources_dir())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock, ref: Reference) -> Iterator[SessionStore]:
    opened = SessionStore.open(tmp_path / "t.sqlite", clock, ref)
    yield opened
    opened.close()


def session_start(ref: Reference, clock: FakeClock) -> SessionStart:
    return SessionStart(
        patient_code="KAP-0001",
        sex="female",
        weight_kg=WEIGHT_KG,
        indication="trd",
        clinicians=(RECORDER, "Dr B"),
        started_at=clock.now() - timedelta(minutes=20),
        age_years=40,
        checklist={c.code: True for c in ref.choices("eligibility_checklist")},
    )


@pytest.fixture
def session_id(store: SessionStore, ref: Reference, clock: FakeClock) -> str:
    return store.start_session(session_start(ref, clock), RECORDER)


@pytest.fixture
def save(store: SessionStore, session_id: str) -> Callable[[Entry], int]:
    return lambda entry: store.add(session_id, entry, RECORDER).primary_id


@pytest.fixture
def shown(qtbot: QtBot) -> Callable[[D], D]:
    """Register a dialog with qtbot and show it (Enter only reaches a visible default button)."""

    def show(dialog: D) -> D:
        qtbot.addWidget(dialog)
        dialog.show()
        qtbot.waitExposed(dialog)
        return dialog

    return show


@pytest.fixture
def enter(qtbot: QtBot) -> Callable[[QWidget], None]:
    return lambda widget: qtbot.keyClick(widget, Qt.Key.Key_Return)


@pytest.fixture
def recorder() -> str:
    """Who the fixtures record as (also the session's first clinician)."""
    return RECORDER


@pytest.fixture
def start_record(clock: FakeClock) -> Callable[[Reference], SessionStart]:
    """A valid session start for a given reference (e.g. one with a clinic's own scales)."""
    return lambda reference: session_start(reference, clock)


@pytest.fixture
def tab_chain() -> Callable[[list[QWidget]], list[QWidget]]:
    """Follow Tab from the first of ``widgets``; returns those reached, in the order reached."""

    def follow(widgets: list[QWidget]) -> list[QWidget]:
        reached, widget = [widgets[0]], widgets[0]
        for _ in range(200):
            widget = widget.nextInFocusChain()
            if widget is widgets[0] or len(reached) == len(widgets):
                break
            if widget in widgets and widget not in reached:
                reached.append(widget)
        return reached

    return follow
