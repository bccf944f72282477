"""Serious and respiratory adverse events, driven through the real bedside window by keys.

Grade 4 is serious by definition (ICH E2A): the form ticks and locks "Serious" with its
criterion and says so; saving raises the critical escalation alarm, whose acknowledgement shows the
escalation checklist with the report's due date; each step ticked is stored with its time and who.
A laryngospasm raises the critical airway alarm with the airway checklist. A grade 3 nausea raises
nothing (the other way).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock, from_iso
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.bedside.session_window import SessionWindow
from kapmonitor.ui.forms.adverse_event_form import AdverseEventForm
from kapmonitor.ui.forms.alarm_ack_dialog import AlarmAckDialog
from tests.factories import T0
from tests.ui.test_discharge_gate_gui import dosed_session
from tests.ui.window_driver import drive, shown_window, type_into


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    opened = SessionStore.open(tmp_path / "ae.sqlite", clock)
    yield opened
    opened.close()


@pytest.fixture
def window(qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path) -> SessionWindow:
    return shown_window(qtbot, store, clock, tmp_path)


def adverse_event(
    qtbot: QtBot, term: str, grade: str, check: Callable[[AdverseEventForm], None] | None = None
) -> Callable[[QWidget], None]:
    """A: the adverse-effect form, filled by keys (``check`` looks at it before saving)."""

    def fill(dialog: QWidget) -> None:
        assert isinstance(dialog, AdverseEventForm)
        type_into(qtbot, dialog.term.lineEdit(), term)
        type_into(qtbot, dialog.grade, grade)
        if check is not None:
            check(dialog)
        qtbot.keyClick(dialog.grade, Qt.Key.Key_Return)

    return fill


def event_onset(store: SessionStore, sid: str) -> datetime:
    return from_iso(store.load(sid).current("adverse_events")[0]["observed_at"])


def tick(qtbot: QtBot, dialog: AlarmAckDialog, checklist: str, step: str) -> None:
    box = dialog.step_boxes[(checklist, step)]
    dialog.scroll.show_widget(box)
    box.setFocus()
    qtbot.keyClick(box, Qt.Key.Key_Space)


def test_grade_4_is_made_serious_and_its_escalation_steps_are_recorded(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    dosed_session(qtbot, window, clock)
    sid = window.log.id
    clock.advance(minutes=20)

    def serious_by_definition(form: AdverseEventForm) -> None:
        assert form.serious.isChecked() and not form.serious.isEnabled()
        assert form.criterion.currentData() == "life_threatening"
        assert form.serious_note.isVisible()
        assert form.serious_note.text().startswith(
            "Grade 4 is serious by definition (ICH E2A: life-threatening): marked serious."
        )

    drive(
        qtbot,
        window,
        Qt.Key.Key_A,
        adverse_event(qtbot, "Seizure / tonic-clonic movements", "4", serious_by_definition),
    )
    [event] = store.load(sid).current("adverse_events")
    assert (event["grade"], event["serious"], event["serious_criterion"]) == (
        4,
        1,
        "life_threatening",
    )
    [alarm] = [
        a for a in store.load(sid).current("alarms") if a["source_table"] == "adverse_events"
    ]
    assert (alarm["rule_id"], alarm["priority"]) == ("ae_serious", "critical")
    assert window.alarm_banner.lines()[0].startswith("▲ CRITICAL — Serious adverse event: Seizure")

    clock.advance(minutes=1)
    ticked_at = clock.now()

    def escalate(dialog: QWidget) -> None:
        assert isinstance(dialog, AlarmAckDialog)
        [box] = dialog.step_checklists
        assert box.title() == "Escalation checklist"
        report = dialog.step_texts[("sae_escalation", "report")]
        # clinic-ketamine reports within 15 days of onset (the protocol's [adverse_events]).
        due = event_onset(store, sid) + timedelta(days=15)
        assert report.startswith("Report the serious adverse event: to FDA MedWatch")
        assert due.astimezone().strftime("%a %d %b %Y") in report
        for step in ("stop_dosing", "call_for_help", "notify_prescriber"):
            tick(qtbot, dialog, "sae_escalation", step)
        assert dialog.steps_done() == [
            ("sae_escalation", "stop_dosing"),
            ("sae_escalation", "call_for_help"),
            ("sae_escalation", "notify_prescriber"),
        ]
        assert dialog.step_stamps[("sae_escalation", "stop_dosing")].text().startswith("✓ done ")
        type_into(qtbot, dialog.response, "Emergency")
        qtbot.keyClick(dialog.response, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_K, escalate)
    log = store.load(sid)
    steps = log.current("alarm_checklist_steps")
    assert [(s["step"], s["alarm_id"], s["recorded_by"]) for s in steps] == [
        ("stop_dosing", alarm["id"], window.recorder),
        ("call_for_help", alarm["id"], window.recorder),
        ("notify_prescriber", alarm["id"], window.recorder),
    ]
    assert {s["observed_at"] for s in steps} == {ticked_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")}
    [ack] = log.current("alarm_acknowledgements")
    assert ack["alarm_id"] == alarm["id"] and ack["response"] == "emergency_transfer"
    assert window.alarm_banner.lines() == []


def test_laryngospasm_shows_the_airway_checklist_and_nausea_raises_nothing(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    dosed_session(qtbot, window, clock)
    sid = window.log.id
    clock.advance(minutes=10)
    drive(qtbot, window, Qt.Key.Key_A, adverse_event(qtbot, "Nausea", "3"))
    assert [
        a for a in store.load(sid).current("alarms") if a["source_table"] == "adverse_events"
    ] == []
    assert window.alarm_banner.lines() == []

    clock.advance(minutes=5)
    drive(qtbot, window, Qt.Key.Key_A, adverse_event(qtbot, "Laryngospasm", "3"))
    [alarm] = [
        a for a in store.load(sid).current("alarms") if a["source_table"] == "adverse_events"
    ]
    assert (alarm["rule_id"], alarm["parameter"], alarm["priority"]) == (
        "ae_respiratory",
        "airway",
        "critical",
    )

    def airway(dialog: QWidget) -> None:
        assert isinstance(dialog, AlarmAckDialog)
        [box] = dialog.step_checklists
        assert box.title() == "Airway checklist"
        assert [code for _, code in dialog.step_boxes] == [
            "stop_dosing",
            "call_for_help",
            "open_airway",
            "clear_airway",
            "oxygen",
            "ventilate",
            "monitor",
        ]
        tick(qtbot, dialog, "airway", "open_airway")
        tick(qtbot, dialog, "airway", "oxygen")
        type_into(qtbot, dialog.response, "Oxygen")
        qtbot.keyClick(dialog.response, Qt.Key.Key_Return)

    drive(qtbot, window, Qt.Key.Key_K, airway)
    steps = store.load(sid).current("alarm_checklist_steps")
    assert [(s["checklist"], s["step"]) for s in steps] == [
        ("airway", "open_airway"),
        ("airway", "oxygen"),
    ]
