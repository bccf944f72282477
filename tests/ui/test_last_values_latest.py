"""Opening a session shows the big numbers from the rows holding the newest values only.

Showing every row in turn set each number 10,800 times on a three-hour 1 Hz record; the panel
must end up exactly as it did then, including a number whose newest reading is older than the
newest set (EtCO2 measured only now and then) and observations that score one scale only.
"""

from __future__ import annotations

from typing import Any

from pytestqt.qtbot import QtBot

from kapmonitor.domain.reference import default_reference
from kapmonitor.ui.widgets.last_values_panel import LastValuesPanel


def vitals(second: int, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(("sbp", "dbp", "hr", "spo2", "rr", "etco2", "temp_c"))
    row.update(values, observed_at=f"2026-03-03T10:{second // 60:02d}:{second % 60:02d}Z")
    return row


def shown(panel: LastValuesPanel) -> dict[str, tuple[str, str]]:
    return {key: (label.text(), panel.times.get(key, "")) for key, label in panel.values.items()}


def test_the_newest_values_are_shown_as_if_every_row_had_been(qtbot: QtBot) -> None:
    rows = [vitals(0, sbp=150, dbp=95, hr=99, spo2=91, rr=20, etco2=48, temp_c=37.9)]
    rows += [vitals(s, sbp=120 + s % 7, dbp=80, hr=60 + s % 11, spo2=97) for s in range(1, 300)]
    rows += [vitals(300, hr=64), vitals(301, rr=15)]  # the newest sets carry one vital each
    observations = [
        {"observed_at": "2026-03-03T10:00:10Z", "moaas": 4, "dissociation": 2},
        {"observed_at": "2026-03-03T10:02:00Z", "moaas": 3, "dissociation": None},
    ]
    each, latest = LastValuesPanel(default_reference()), LastValuesPanel(default_reference())
    for panel in (each, latest):
        qtbot.addWidget(panel)
    for row in rows:
        each.show_vitals(row)
    for row in observations:
        each.show_observation(row)
    latest.show_latest("vitals", rows)
    latest.show_latest("observations", observations)
    assert shown(latest) == shown(each)
    assert latest.values["etco2"].text() != "—" and latest.values["rr"].text() == "15"
