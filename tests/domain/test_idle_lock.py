"""The clinic's idle-lock rule: automatic = shortest check interval + margin; too short refused."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kapmonitor.domain.idle_lock import (
    AUTO_MARGIN_MINUTES,
    NO_PROTOCOL_MINUTES,
    automatic_minutes,
    lock_in_force,
    refusal,
    shortest_interval,
)
from kapmonitor.domain.protocol import Interval, Protocol
from tests.factories import protocol, protocols


def every(minutes: float, *more: float) -> Protocol:
    """The clinic default protocol with its cadence replaced."""
    intervals = tuple(
        Interval(i * 100, (i + 1) * 100, m, "test") for i, m in enumerate((minutes, *more))
    )
    return replace(protocol("clinic-ketamine"), name=f"every {minutes}", intervals=intervals)


def test_automatic_is_longer_than_the_shortest_check_of_each_shipped_protocol() -> None:
    for shipped in protocols().values():
        shortest = shortest_interval(shipped)
        assert shortest is not None
        assert automatic_minutes(shipped) == shortest + AUTO_MARGIN_MINUTES
        assert automatic_minutes(shipped) > shortest
    assert automatic_minutes(protocol("clinic-ketamine")) == 15  # checks every 10 min


def test_the_shortest_interval_decides_not_the_first() -> None:
    assert shortest_interval(every(15, 7.5)) == 7.5
    assert automatic_minutes(every(15, 7.5)) == 8 + AUTO_MARGIN_MINUTES  # whole minutes, up
    assert automatic_minutes(None) == NO_PROTOCOL_MINUTES


@pytest.mark.parametrize("minutes", [1, 5, 9, 10])
def test_a_setting_not_longer_than_a_protocols_checks_is_refused(minutes: int) -> None:
    reason = refusal(minutes, protocols().values())
    assert reason is not None
    assert "shortest check interval (10 min" in reason and "Automatic" in reason


@pytest.mark.parametrize("minutes", [None, 0, 11, 30, 240])
def test_automatic_never_and_longer_values_are_accepted(minutes: int | None) -> None:
    assert refusal(minutes, protocols().values()) is None


def test_the_strictest_protocol_of_the_clinic_counts() -> None:
    assert refusal(12, [every(10)]) is None
    assert refusal(12, [every(10), every(15)]) is not None  # 12 would lock between 15-min checks
    assert "every 15" in (refusal(12, [every(15), every(10)]) or "")


def test_nonsense_values_are_refused() -> None:
    assert refusal(-1, []) is not None
    assert refusal(241, []) is not None


def test_the_lock_in_force_for_a_session() -> None:
    ten = every(10)
    assert lock_in_force(None, ten).minutes == 15
    assert "checks every 10 min" in lock_in_force(None, ten).explanation
    assert lock_in_force(30, ten).minutes == 30
    assert lock_in_force(0, ten).minutes == 0
    assert lock_in_force(None, None).minutes == NO_PROTOCOL_MINUTES
    # A protocol added after the setting was chosen cannot make it lock between checks.
    raised = lock_in_force(12, every(15))
    assert raised.minutes == 20 and "not longer than" in raised.explanation
