"""NEWS2 SpO₂ Scale 2 chosen at the bedside with a reason, and an incomplete set shown as such.

The real window on a fake clock: View → NEWS2 SpO₂ scale… opens the form (triggered as the menu
item does), a missing reason is refused with nothing stored, a reason saves the choice (recorded
by the clinician, audited), and the next vital signs are scored on Scale 2 and shown as
"NEWS2 (Scale 2)". A set without a recent consciousness observation shows "incomplete", no band.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.bedside.session_window import SessionWindow
from kapmonitor.ui.forms.news2_scale_form import News2ScaleForm
from tests.factories import T0
from tests.ui.test_critical_value import start_racemic_session
from tests.ui.window_driver import drive, enter_vitals, shown_window, type_into

REASON = "COPD with hypercapnic respiratory failure, target 88-92 % prescribed"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    opened = SessionStore.open(tmp_path / "news2.sqlite", clock)
    yield opened
    opened.close()


@pytest.fixture
def window(qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path) -> SessionWindow:
    return shown_window(qtbot, store, clock, tmp_path)


def choose_scale(qtbot: QtBot, window: SessionWindow, fill) -> None:
    """Pick View → NEWS2 SpO₂ scale… and run ``fill`` on the form it opens."""
    problems: list[str] = []

    def handle() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, News2ScaleForm):
            QTimer.singleShot(5, handle)
            return
        try:
            fill(dialog)
        except BaseException as exc:  # reported below instead of hanging the suite
            problems.append(repr(exc))
        if dialog.isVisible():
            dialog.reject()

    QTimer.singleShot(5, handle)
    menu_texts = [a.text() for a in window.menuBar().actions()]
    assert "&View" in menu_texts
    window.news2_scale_action.trigger()
    assert not problems, problems


def latest_score(store: SessionStore, sid: str) -> dict:
    row = store.load(sid).current("vital_scores")[-1]
    return {**row, "parts": json.loads(row["news2_parts"])}


def test_choose_scale_2_with_a_reason_and_see_it_beside_the_score(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    start_racemic_session(qtbot, window)
    assert window.log is not None
    sid = window.log.id
    panel = window.last_values

    # A first set with no sedation observation: consciousness unknown, so no band.
    clock.advance(minutes=1)
    enter_vitals(qtbot, window, ["128/80", "72", "88", "16", "", "36.8"])
    score = latest_score(store, sid)
    assert score["news2_band"] == "incomplete" and "consciousness" in score["news2_missing"]
    assert panel.values["news2"].text() == f"{score['news2_total']} incomplete"
    assert "no band" in panel.news2_note.text()
    assert panel.captions["news2"].text() == "NEWS2 (info)"

    # Without a reason the choice is refused, nothing is stored, the form says why.
    def no_reason(dialog: News2ScaleForm) -> None:
        assert dialog.scale.currentData() == 2  # opened to switch
        qtbot.keyClick(dialog.reason_text, Qt.Key.Key_Return)
        assert dialog.isVisible()
        assert "reason" in dialog.errors_text().lower()
        qtbot.keyClick(dialog.reason_text, Qt.Key.Key_Escape)

    choose_scale(qtbot, window, no_reason)
    assert store.load(sid).current("news2_scale_choices") == []

    def with_reason(dialog: News2ScaleForm) -> None:
        screen = QApplication.primaryScreen().availableGeometry()
        assert screen.contains(dialog.frameGeometry()), (dialog.frameGeometry(), screen)
        type_into(qtbot, dialog.reason_text, REASON)
        qtbot.keyClick(dialog.reason_text, Qt.Key.Key_Return)

    clock.advance(minutes=1)
    choose_scale(qtbot, window, with_reason)
    (choice,) = store.load(sid).current("news2_scale_choices")
    assert (choice["scale"], choice["reason"], choice["recorded_by"]) == (2, REASON, "Dr Lee")
    audited = store.db.execute(
        "SELECT actor FROM audit WHERE table_name = 'news2_scale_choices' AND row_id = ?",
        [choice["id"]],
    ).fetchall()
    assert audited == [("Dr Lee",)]
    assert any("NEWS2 SpO₂ Scale 2" in item.summary for item in window.timeline.timeline.items)

    # A sedation check, then a set at SpO₂ 88 %: 0 points on Scale 2 (3 on Scale 1), a band.
    clock.advance(minutes=1)

    def awake(dialog: QWidget) -> None:
        type_into(qtbot, dialog.scale_combos["moaas"], "5")
        type_into(qtbot, dialog.scale_combos["dissociation"], "None")
        qtbot.keyClick(dialog.scale_combos["moaas"], Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_O, awake)
    enter_vitals(qtbot, window, ["128/80", "72", "88", "16", "", "36.8"])
    score = latest_score(store, sid)
    assert (score["parts"]["spo2"], score["parts"]["spo2_scale"]) == (0, 2)
    assert (score["news2_total"], score["news2_band"]) == (0, "routine")
    assert panel.captions["news2"].text() == "NEWS2 (Scale 2)"
    assert panel.values["news2"].text() == "0"
