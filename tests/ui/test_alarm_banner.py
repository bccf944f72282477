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


def test_new_words_for_the_same_alarms_refill_the_rows_and_keep_the_focus(qtbot: QtBot) -> None:
    """A device alarm continued by later readings shows their newest value, once a second
    during a desaturation: the rows are filled again in place, so a clinician who has tabbed to
    Acknowledge keeps the focus there, and the button still acknowledges the same alarm."""
    banner = make_banner(qtbot)
    banner.show()
    banner.set_alarms(ALARMS)
    rows = list(banner._rows)
    top = banner.buttons[0]
    top.setFocus()
    newer = [dict(a) for a in ALARMS]
    newer[2] = {**newer[2], "message": "Systolic BP 192 mmHg ≥ 180; also ≥ 160"}
    banner.set_alarms(newer)
    assert banner._rows == rows  # the same row widgets
    assert banner.buttons[0] is top and banner.focusWidget() is top
    assert banner.lines()[0].startswith("▲ CRITICAL — Systolic BP 192 mmHg ≥ 180; also ≥ 160 —")
    shown = [label.text() for label in banner.findChildren(QLabel, "AlarmMessage")]
    assert any("192" in text for text in shown) and not any("185" in text for text in shown)
    with qtbot.waitSignal(banner.acknowledge_requested) as signal:
        top.click()
    assert signal.args == [3]
    # Another alarm, or another order: rebuilt.
    banner.set_alarms([*newer, alarm(5, "critical", "SpO₂ 84 %", "2026-01-15T09:41:00.000Z")])
    assert banner._rows != rows
    assert banner.alarm_ids() == [3, 5, 4, 2, 1]
