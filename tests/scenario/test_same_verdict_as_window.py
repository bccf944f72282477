"""The runner's discharge verdict is the discharge dialog's, word for word.

A session is recorded through the runner's own steps; then the real discharge dialog is opened
on that record (with the facts the window passes it), every judged item answered at its best
and every box ticked, as the runner assumes by default. Its verdict and listed reasons must be
the runner's ``ready`` and ``blockers``, before and after the 2-hour minimum.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QComboBox, QSpinBox
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.discharge_check import discharge_facts
from kapmonitor.domain.reference import default_reference
from kapmonitor.scenario import runner
from kapmonitor.scenario.reader import parse
from kapmonitor.scenario.steps import KINDS, Context
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.forms.discharge_dialog import DischargeDialog

pytestmark = pytest.mark.qt_log_ignore(
    r"^This plugin does not support (propagateSizeHints\(\)|raise\(\)|grabbing the keyboard)$"
)

STEPS: list[dict[str, Any]] = [
    {"at": -10, "vitals": {"sbp": 124, "dbp": 78, "hr": 72, "spo2": 98, "rr": 14}},
    {"at": -10, "observation": {"moaas": 5, "dissociation": 0}},
    {"at": 0, "dose": {"drug": "esketamine", "route": "intranasal", "mg": 56}},
    {"at": 40, "vitals": {"sbp": 150, "dbp": 90, "hr": 80, "spo2": 97, "rr": 14}},
    {"at": 90, "observation": {"moaas": 5, "dissociation": 0}},
    {"at": 95, "vitals": {"sbp": 128, "dbp": 80, "hr": 74, "spo2": 98, "rr": 14}},
    {"at": 100, "discharge_check": {"record": False}},
    {"at": 115, "observation": {"moaas": 5, "dissociation": 0}},
    {"at": 118, "vitals": {"sbp": 126, "dbp": 80, "hr": 72, "spo2": 98, "rr": 14}},
    {"at": 125, "discharge_check": {"record": False}},
]


def test_runner_and_dialog_reach_the_same_verdict(qtbot: QtBot, tmp_path: Path) -> None:
    scenario = parse({"protocol": "esketamine-rems", "steps": STEPS})
    protocol = runner.load_catalogue().protocols["esketamine-rems"]
    clock = FakeClock(runner.at_time(scenario.session_start))
    store = SessionStore.open(tmp_path / "s.sqlite", clock, default_reference())
    try:
        ctx = Context(store, "", protocol, "Dr A", runner.load_questionnaire_set(), scenario)
        KINDS["start"].run(ctx, {})
        verdicts: list[bool] = []
        for step in scenario.steps:
            clock.set(runner.at_time(step.at))
            line = runner.run_step(step, ctx)
            assert line["result"] == "committed", line
            if step.kind != "discharge_check":
                continue
            now = clock.now()
            facts = discharge_facts(protocol, store.load(ctx.session_id).current_rows(), now)
            dialog = DischargeDialog(protocol, facts, lambda *_: 1, now, "Dr A")
            qtbot.addWidget(dialog)
            for widget in dialog.inputs.values():  # every judged item at its best
                if isinstance(widget, QComboBox):
                    widget.setCurrentIndex(widget.findData(2))
                elif isinstance(widget, QSpinBox):
                    widget.setValue(0)
            for box in dialog.checks.values():
                box.setChecked(True)
            assert dialog.reasons() == line["blockers"]
            assert dialog.is_ready() is line["ready"]
            verdicts.append(line["ready"])
        assert verdicts == [False, True]  # before the 2-hour minimum, then after it
    finally:
        store.close()
