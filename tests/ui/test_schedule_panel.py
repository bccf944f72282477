"""The next-check panel: big words for each state, times from the stored due time and ``now``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pytestqt.qtbot import QtBot

from kapmonitor.domain.schedule import Check, CheckStatus, ScheduleState
from kapmonitor.ui.widgets.schedule_panel import BLOCKED_TEXT, SchedulePanel, format_countdown
from kapmonitor.ui.widgets.theme import DAY, NIGHT

NOW = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)


def state(
    status: str,
    due_in_seconds: float,
    label: str = "Vitals (every 10 min)",
    blocked: bool = False,
    seconds_to_due: float | None = None,
) -> ScheduleState:
    check_status: CheckStatus = status if status != "none" else "upcoming"  # type: ignore[assignment]
    check = Check("interval", label, NOW + timedelta(seconds=due_in_seconds), check_status)
    return ScheduleState(
        next_check=check,
        status=status,  # type: ignore[arg-type]
        seconds_to_due=due_in_seconds if seconds_to_due is None else seconds_to_due,
        history=(),
        dosing_blocked=blocked,
    )


def make_panel(qtbot: QtBot) -> SchedulePanel:
    panel = SchedulePanel()
    qtbot.addWidget(panel)
    panel.show()
    return panel


def test_upcoming_counts_down_in_minutes_and_seconds(qtbot: QtBot) -> None:
    panel = make_panel(qtbot)
    panel.show_state(state("upcoming", 4 * 60 + 32), NOW)
    assert panel.text() == "Next check: Vitals (every 10 min) in 4:32"
    assert panel.state() == "upcoming"
    assert panel.property("state") == "upcoming"
    assert panel.main.property("state") == "upcoming"
    assert not panel.blocked_shown()


def test_due_says_due_now_in_words(qtbot: QtBot) -> None:
    panel = make_panel(qtbot)
    panel.show_state(state("due", -20, label="Peak BP check (~40 min)"), NOW)
    assert panel.text() == "DUE NOW: Peak BP check (~40 min)"
    assert panel.state() == "due"
    assert panel.property("state") == "due"


def test_overdue_says_by_how_long_with_a_symbol(qtbot: QtBot) -> None:
    panel = make_panel(qtbot)
    panel.show_state(state("overdue", -(3 * 60 + 10)), NOW)
    assert panel.text() == "⚠ OVERDUE by 3:10: Vitals (every 10 min)"
    assert panel.state() == "overdue"
    assert panel.property("state") == "overdue"


def test_the_time_comes_from_the_due_time_and_now_not_a_stale_counter(qtbot: QtBot) -> None:
    """A state computed a minute ago still reads right against the ``now`` passed in."""
    panel = make_panel(qtbot)
    stale = state("upcoming", 5 * 60, seconds_to_due=999)
    panel.show_state(stale, NOW + timedelta(seconds=60))
    assert panel.text().endswith("in 4:00")
    panel.show_state(state("overdue", -10, seconds_to_due=-10), NOW + timedelta(minutes=70))
    assert panel.text().startswith("⚠ OVERDUE by 1:10:10:")


def test_nothing_due_and_no_state(qtbot: QtBot) -> None:
    panel = make_panel(qtbot)
    panel.show_state(state("overdue", -60), NOW)
    panel.show_state(None, NOW)
    assert panel.text() == "No check due"
    assert panel.state() == "none"
    assert panel.property("state") == "none"
    empty = ScheduleState(None, "none", 0, (), False)
    panel.show_state(empty, NOW)
    assert panel.text() == "No check due"


def test_dosing_blocked_line_until_baseline(qtbot: QtBot) -> None:
    panel = make_panel(qtbot)
    panel.show_state(state("due", 0, label="Baseline vitals", blocked=True), NOW)
    assert panel.text() == "DUE NOW: Baseline vitals"
    assert panel.blocked_shown()
    assert BLOCKED_TEXT in panel.blocked.text()
    panel.show_state(state("upcoming", 600, blocked=False), NOW)
    assert not panel.blocked_shown()


def test_theme_colours_follow_day_and_night(qtbot: QtBot) -> None:
    panel = make_panel(qtbot)
    panel.apply_theme(night=True)
    assert NIGHT.error_text in panel.styleSheet()
    assert DAY.error_text not in panel.styleSheet()
    panel.apply_theme(night=False)
    assert DAY.error_text in panel.styleSheet()


def test_countdown_format() -> None:
    assert format_countdown(0) == "0:00"
    assert format_countdown(59.9) == "0:59"
    assert format_countdown(-190) == "3:10"
    assert format_countdown(3600 + 65) == "1:01:05"
