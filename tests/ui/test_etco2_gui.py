"""End-tidal CO₂ at the bedside, through the real window and the real vitals form: typed after RR
(Tab order), refused with the reason when implausible, stored, shown as a big number captioned
EtCO₂ (mmHg in its tooltip), and alarmed by the protocol's limits both ways, with the record
still verifying."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.store.session_store import SessionStore
from kapmonitor.store.verify import verify
from kapmonitor.ui.bedside.session_window import SessionWindow
from tests.factories import T0
from tests.ui.test_critical_value import DOSE_AT, baseline_and_dose, start_racemic_session
from tests.ui.window_driver import drive, enter_vitals, shown_window


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    opened = SessionStore.open(tmp_path / "etco2.sqlite", clock)
    yield opened
    opened.close()


@pytest.fixture
def window(qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path) -> SessionWindow:
    return shown_window(qtbot, store, clock, tmp_path)


def etco2_values(store: SessionStore, window: SessionWindow) -> list[int | None]:
    assert window.log is not None
    return [row["etco2"] for row in store.load(window.log.id).current("vitals")]


def etco2_alarms(store: SessionStore, window: SessionWindow) -> list[tuple[str, str]]:
    assert window.log is not None
    alarms = store.load(window.log.id).current("alarms")
    return [(a["rule_id"], a["priority"]) for a in alarms if a["parameter"] == "etco2"]


def test_the_form_refuses_an_implausible_etco2_with_the_reason_and_keeps_it(
    qtbot: QtBot, window: SessionWindow, store: SessionStore
) -> None:
    start_racemic_session(qtbot, window)

    def fill(dialog: QWidget) -> None:
        # Keyboard order: BP, HR, SpO₂, RR, then EtCO₂ beside RR (ventilation), then temperature.
        for text in ("124/78", "72", "98", "14"):
            qtbot.keyClicks(dialog.focusWidget(), text)
            qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_Tab)
        assert dialog.focusWidget() is dialog.etco2
        assert dialog.etco2.placeholderText() == "mmHg, optional"
        qtbot.keyClicks(dialog.etco2, "101")
        qtbot.keyClick(dialog.etco2, Qt.Key.Key_Tab)
        assert dialog.focusWidget() is dialog.temp
        qtbot.keyClick(dialog.temp, Qt.Key.Key_Return)
        assert dialog.isVisible()
        assert "EtCO₂ 101 mmHg is not possible: enter 0–100 mmHg" in dialog.errors_text()
        assert dialog.etco2.property("invalid") is True
        assert dialog.focusWidget() is dialog.etco2
        assert dialog.etco2.text() == "101"  # nothing typed is lost
        qtbot.keyClicks(dialog.etco2, "\b\b\b38.5")
        qtbot.keyClick(dialog.etco2, Qt.Key.Key_Return)
        assert "EtCO₂: whole numbers only (got 38.5)" in dialog.errors_text()
        dialog.etco2.clear()
        qtbot.keyClicks(dialog.etco2, "38")
        qtbot.keyClick(dialog.etco2, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_V, fill)
    assert etco2_values(store, window) == [38]
    panel = window.last_values
    assert panel.captions["etco2"].text() == "EtCO₂"
    assert panel.values["etco2"].text() == "38"
    assert "mmHg" in panel.values["etco2"].toolTip()
    model = window.timeline.model()
    details = [str(model.index(r, 3).data()) for r in range(model.rowCount())]
    assert any("RR 14, EtCO₂ 38 mmHg" in text for text in details), details


def test_etco2_alarms_beyond_the_protocol_limits_and_not_within(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    start_racemic_session(qtbot, window)
    baseline_and_dose(qtbot, window, clock)
    clock.set(DOSE_AT + timedelta(minutes=10))
    enter_vitals(qtbot, window, ["122/78", "74", "97", "14", "50"])
    assert etco2_alarms(store, window) == []
    assert window.last_values.level("etco2") == "normal"
    clock.set(DOSE_AT + timedelta(minutes=15))
    enter_vitals(qtbot, window, ["", "", "", "", "64"])
    assert etco2_alarms(store, window) == [("etco2_high_critical", "critical")]
    assert window.last_values.values["etco2"].text() == "64"
    assert window.last_values.level("etco2") == "critical"
    assert "critical" in window.last_values.captions["etco2"].text()
    assert any("EtCO₂ 64 mmHg" in text for text in window.alarm_banner.lines())
    clock.set(DOSE_AT + timedelta(minutes=20))
    enter_vitals(qtbot, window, ["", "", "", "", "29"])
    assert etco2_alarms(store, window)[-1] == ("etco2_low", "warning")
    assert window.last_values.level("etco2") == "warning"
    clock.set(DOSE_AT + timedelta(minutes=25))
    enter_vitals(qtbot, window, ["", "", "", "", "30"])
    assert len(etco2_alarms(store, window)) == 2  # 30 mmHg is within: nothing new
    assert window.last_values.level("etco2") == "normal"
    assert etco2_values(store, window) == [None, 50, 64, 29, 30]
    assert verify(store.db).ok
