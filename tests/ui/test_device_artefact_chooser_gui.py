"""M asks which device values are artefact (issue 13, window part 1): the chooser, by keyboard.

A bad SpO₂ must not take the good heart rate with it. M lists the pending values on screen, each
ticked by its digit; at first the alarmed and device-flagged ones are ticked (else all); Enter
marks the ticked ones artefact with the reason chosen; Esc changes nothing; the unchosen stay
pending. Every test asserts on the stored review rows (which readings, which reason)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.devices.reading import ReadingFlag
from kapmonitor.domain.clock import FakeClock
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.bedside.artefact_chooser import ArtefactChooser
from kapmonitor.ui.bedside.session_window import SessionWindow
from tests.factories import T0, open_store
from tests.ui.test_device_flagged_gui import reading_id, send
from tests.ui.test_device_pending_gui import KETAMINE, count, no_auto, open_window
from tests.ui.window_driver import drive


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    opened = open_store(tmp_path / "chooser.sqlite", clock)
    yield opened
    opened.close()


@pytest.fixture
def window(qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path) -> SessionWindow:
    return open_window(qtbot, store, clock, tmp_path, no_auto(KETAMINE))


def reviews(store: SessionStore) -> list[tuple[int, str, str]]:
    return [
        (int(i), str(d), str(r))
        for i, d, r in store.db.execute(
            "SELECT device_reading_id, decision, reason FROM device_reading_reviews ORDER BY id"
        )
    ]


def keys(qtbot: QtBot, *presses: Qt.Key | tuple[Qt.Key, Qt.KeyboardModifier]) -> Callable:
    """A dialog action pressing ``presses`` in turn on whatever has the focus, as a person."""

    def act(dialog: QWidget) -> None:
        seen.append(dialog)
        ticked.append([box.isChecked() for box in dialog.boxes])  # type: ignore[attr-defined]
        for press in presses:
            key, mod = (
                press if isinstance(press, tuple) else (press, Qt.KeyboardModifier.NoModifier)
            )
            focus = QApplication.focusWidget()
            target = focus if focus is not None and dialog.isAncestorOf(focus) else dialog
            qtbot.keyClick(target, key, mod)

    seen: list[QWidget] = []
    ticked: list[list[bool]] = []
    act.seen = seen  # type: ignore[attr-defined]
    act.ticked = ticked  # type: ignore[attr-defined]
    return act


def test_m_ticks_the_alarmed_value_and_marks_only_it(
    qtbot: QtBot, window: SessionWindow, clock: FakeClock, store: SessionStore
) -> None:
    send(window, clock, "M1", {"spo2": 84, "hr": 110})  # SpO₂ 84 raises the critical alarm
    spo2, hr = reading_id(store, "spo2", "M1"), reading_id(store, "hr", "M1")
    enter = keys(qtbot, Qt.Key.Key_Return)
    drive(qtbot, window, Qt.Key.Key_M, enter)
    (chooser,) = enter.seen  # type: ignore[attr-defined]
    assert isinstance(chooser, ArtefactChooser)
    assert [c.label for c in chooser.choices] == ["HR 110", "SpO₂ 84"]
    assert enter.ticked == [[False, True]]  # type: ignore[attr-defined]  # the alarmed SpO₂ only
    assert reviews(store) == [(spo2, "artefact", "Motion (M at the bedside: SpO₂ 84)")]
    assert window.last_values.pending_ids() == (hr,)  # the good HR still awaits F
    assert window.chart.artefact_xy("spo2")[1].tolist() == [84.0]
    assert window.chart.pending_ids("hr") == [hr]


def test_digits_toggle_and_a_reason_is_chosen_from_the_list_by_keyboard(
    qtbot: QtBot, window: SessionWindow, clock: FakeClock, store: SessionStore
) -> None:
    send(window, clock, "M1", {"spo2": 96, "hr": 72, "rr": 14})  # nothing alarmed: all ticked
    ids = {v: reading_id(store, v, "M1") for v in ("spo2", "hr", "rr")}
    act = keys(
        qtbot,
        Qt.Key.Key_1,  # HR off
        Qt.Key.Key_3,  # RR off
        Qt.Key.Key_P,  # the reason: probe off
        Qt.Key.Key_Return,
    )
    drive(qtbot, window, Qt.Key.Key_M, act)
    assert act.ticked == [[True, True, True]]  # type: ignore[attr-defined]
    assert reviews(store) == [(ids["spo2"], "artefact", "Probe off (M at the bedside: SpO₂ 96)")]
    assert set(window.last_values.pending_ids()) == {ids["hr"], ids["rr"]}


def test_other_takes_the_words_typed(
    qtbot: QtBot, window: SessionWindow, clock: FakeClock, store: SessionStore
) -> None:
    send(window, clock, "M1", {"spo2": 96})
    spo2 = reading_id(store, "spo2", "M1")

    def other(dialog: QWidget) -> None:
        assert isinstance(dialog, ArtefactChooser)
        qtbot.keyClick(dialog, Qt.Key.Key_O)  # other: the words box takes the focus
        assert dialog.other.isEnabled() and dialog.focusWidget() is dialog.other
        qtbot.keyClicks(dialog.other, "coughing, 1 2 3")  # digits typed are words, not ticks
        assert dialog.boxes[0].isChecked()
        qtbot.keyClick(dialog.other, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_M, other)
    assert reviews(store) == [(spo2, "artefact", "coughing, 1 2 3 (M at the bedside: SpO₂ 96)")]


def test_esc_changes_nothing_and_nothing_ticked_is_refused_in_the_strip(
    qtbot: QtBot, window: SessionWindow, clock: FakeClock, store: SessionStore
) -> None:
    send(window, clock, "M1", {"spo2": 96, "hr": 72})
    drive(qtbot, window, Qt.Key.Key_M, keys(qtbot, Qt.Key.Key_2, Qt.Key.Key_Escape))
    assert reviews(store) == []
    assert len(window.last_values.pending_ids()) == 2

    def untick_all(dialog: QWidget) -> None:
        assert isinstance(dialog, ArtefactChooser)
        qtbot.keyClick(dialog, Qt.Key.Key_1)
        qtbot.keyClick(dialog, Qt.Key.Key_2)
        qtbot.keyClick(dialog, Qt.Key.Key_Return)
        assert dialog.isVisible() and "Tick at least one value" in dialog.errors_text()
        qtbot.keyClick(dialog, Qt.Key.Key_Escape)

    drive(qtbot, window, Qt.Key.Key_M, untick_all)
    assert count(store, "SELECT count(*) FROM device_reading_reviews") == 0


def test_a_device_flagged_value_is_ticked_and_marked_with_m(
    qtbot: QtBot, window: SessionWindow, clock: FakeClock, store: SessionStore
) -> None:
    send(window, clock, "M1", {"spo2": 62, "hr": 72}, {"spo2": {ReadingFlag.ARTEFACT}})
    spo2, hr = reading_id(store, "spo2", "M1"), reading_id(store, "hr", "M1")
    enter = keys(qtbot, Qt.Key.Key_Return)
    drive(qtbot, window, Qt.Key.Key_M, enter)
    (chooser,) = enter.seen  # type: ignore[attr-defined]
    assert "device: artefact" in chooser.boxes[1].text()  # type: ignore[attr-defined]
    assert enter.ticked == [[False, True]]  # type: ignore[attr-defined]
    assert reviews(store) == [(spo2, "artefact", "Motion (M at the bedside: SpO₂ 62)")]
    assert window.chart.flagged_xy("spo2")[1].tolist() == []
    assert window.chart.artefact_xy("spo2")[1].tolist() == [62.0]
    assert window.last_values.pending_ids() == (hr,)


def test_the_chooser_fits_1280x720_in_large_type(
    qtbot: QtBot, window: SessionWindow, clock: FakeClock
) -> None:
    send(window, clock, "M1", {"spo2": 96, "hr": 72, "rr": 14, "sbp": 120, "dbp": 80})

    def look(dialog: QWidget) -> None:
        assert isinstance(dialog, ArtefactChooser)
        screen = dialog.screen().availableGeometry()
        frame = dialog.frameGeometry()
        assert screen.contains(frame), (frame, screen)
        assert all(box.font().pointSize() >= 15 for box in dialog.boxes)
        assert [b.text().split()[0] for b in dialog.boxes] == ["1", "2", "3", "4"]
        qtbot.keyClick(dialog, Qt.Key.Key_Escape)

    drive(qtbot, window, Qt.Key.Key_M, look)
