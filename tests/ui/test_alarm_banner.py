"""The alarm banner: every waiting alarm, most urgent first, in words, symbols and local time."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import from_iso
from kapmonitor.ui.widgets.alarm_banner import AlarmBanner


def alarm(alarm_id: int, priority: str, message: str, at: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": alarm_id,
        "priority": priority,
        "message": message,
        "parameter": "sbp",
        "observed_at": at,
        **extra,
    }


def local(iso: str) -> str:
    return from_iso(iso).astimezone().strftime("%H:%M")


ALARMS = [
    alarm(1, "advisory", "RR 9 /min ≤ 10", "2026-01-15T09:30:00.000Z"),
    alarm(2, "warning", "Heart rate 115 /min ≥ 110", "2026-01-15T09:35:00.000Z"),
    alarm(3, "critical", "Systolic BP 185 mmHg ≥ 180", "2026-01-15T09:40:00.000Z"),
    alarm(4, "warning", "SpO₂ 91 % ≤ 91", "2026-01-15T09:20:00.000Z"),
]


def make_banner(qtbot: QtBot) -> AlarmBanner:
    banner = AlarmBanner()
    qtbot.addWidget(banner)
    return banner


def test_hidden_while_nothing_waits(qtbot: QtBot) -> None:
    banner = make_banner(qtbot)
    banner.set_alarms([])
    assert banner.isHidden()
    assert banner.first_alarm_id() is None


def test_most_urgent_first_each_with_word_symbol_and_time(qtbot: QtBot) -> None:
    banner = make_banner(qtbot)
    banner.show()
    banner.set_alarms(ALARMS)
    assert not banner.isHidden()
    # Critical first; among warnings the longest waiting first; advisory last.
    assert banner.alarm_ids() == [3, 4, 2, 1]
    lines = banner.lines()
    assert lines[0] == (
        f"▲ CRITICAL — Systolic BP 185 mmHg ≥ 180 — raised {local('2026-01-15T09:40:00.000Z')}"
    )
    assert lines[1].startswith("● WARNING — SpO₂ 91 % ≤ 91")
    assert lines[3].startswith("○ ADVISORY — RR 9 /min ≤ 10")
    assert banner.first_alarm_id() == 3
    assert [b.text() for b in banner.buttons] == ["Acknowledge"] * 4
    assert "(K)" in banner.buttons[0].toolTip()


def test_acknowledge_button_emits_the_alarm_id(qtbot: QtBot) -> None:
    banner = make_banner(qtbot)
    banner.show()
    banner.set_alarms(ALARMS)
    with qtbot.waitSignal(banner.acknowledge_requested, timeout=1000) as blocker:
        banner.buttons[1].click()
    assert blocker.args == [4]


def test_acknowledged_rows_are_left_out(qtbot: QtBot) -> None:
    banner = make_banner(qtbot)
    banner.show()
    rows = [*ALARMS[:2], alarm(9, "critical", "old", "2026-01-15T09:00:00.000Z", acknowledged=1)]
    banner.set_alarms(rows)
    assert banner.alarm_ids() == [2, 1]


def test_same_alarms_again_changes_nothing_and_an_empty_list_hides(qtbot: QtBot) -> None:
    banner = make_banner(qtbot)
    banner.show()
    banner.set_alarms(ALARMS)
    buttons = list(banner.buttons)
    banner.set_alarms(list(reversed(ALARMS)))
    assert banner.buttons == buttons  # not rebuilt: a focused button keeps its focus
    banner.set_alarms(ALARMS[:1])
    assert banner.alarm_ids() == [1]
    banner.set_alarms([])
    assert banner.isHidden()


def test_critical_rows_are_styled_strongest(qtbot: QtBot) -> None:
    banner = make_banner(qtbot)
    banner.show()
    banner.set_alarms(ALARMS)
    qtbot.waitUntil(lambda: banner.buttons[3].isVisible())  # new rows show on the next loop
    messages = [b.parentWidget().findChild(QLabel, "AlarmMessage") for b in banner.buttons]
    critical_font, advisory_font = messages[0].font(), messages[3].font()
    assert critical_font.pointSizeF() > advisory_font.pointSizeF()
    assert critical_font.bold()
    banner.apply_theme(night=True)
    assert 'priority="critical"' in banner.styleSheet()


def test_the_header_says_when_the_critical_sound_is_off(qtbot: QtBot) -> None:
    banner = make_banner(qtbot)
    banner.show()
    banner.set_alarms(ALARMS[:1])
    assert "sound" not in banner.header.text()
    banner.set_sound_off(True)
    assert banner.header.text().startswith("1 alarm waiting for acknowledgement")
    assert banner.header.text().endswith("— critical-alarm sound is off")
    banner.set_alarms(ALARMS)  # new alarms keep the note
    assert banner.header.text().startswith("4 alarms waiting")
    assert banner.header.text().endswith("critical-alarm sound is off")
    banner.set_sound_off(False)
    assert "sound" not in banner.header.text()
