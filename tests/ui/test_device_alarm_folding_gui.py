"""Alarm folding for device feeds, in the bedside window (issue 13, window part 1).

A sustained desaturation from a 1 Hz monitor used to raise an alarm row and a beep every second.
While an unacknowledged alarm of the same vital and level is active, a device value crossing the
same limit raises no row and no sound; the banner says the newest value and for how long. A
worse level raises and sounds; after acknowledgement the next crossing raises again; typed
entries are never folded. The same rule, both ways, in a scenario a clinic reads:
resources/scenarios/device-desaturation-folded.json. Beeps are counted through
``QApplication.beep`` (the window's one sound), as tests/ui/test_critical_value.py does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import AlarmAcknowledgement, VitalSigns
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.bedside import protocol_support
from kapmonitor.ui.bedside.session_window import SessionWindow
from tests.factories import T0, open_store
from tests.ui.test_device_flagged_gui import send
from tests.ui.test_device_pending_gui import KETAMINE, count, no_auto, open_window


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    opened = open_store(tmp_path / "folding.sqlite", clock)
    yield opened
    opened.close()


@pytest.fixture
def beeps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    heard: list[int] = []
    monkeypatch.setattr(protocol_support.QApplication, "beep", lambda: heard.append(1))
    return heard


def spo2_alarms(store: SessionStore, priority: str) -> int:
    return count(
        store, "SELECT count(*) FROM alarms WHERE parameter = 'spo2' AND priority = ?", priority
    )


def run(window: SessionWindow, clock: FakeClock, spo2: float, seconds: int, tag: str) -> None:
    for i in range(seconds):
        clock.advance(seconds=1)
        send(window, clock, f"{tag}{i}", {"spo2": spo2, "hr": 90})


@pytest.mark.parametrize("auto", [False, True], ids=["pending", "auto-confirmed"])
def test_a_sustained_desaturation_is_one_alarm_and_one_beep(
    qtbot: QtBot,
    store: SessionStore,
    clock: FakeClock,
    tmp_path: Path,
    beeps: list[int],
    auto: bool,
) -> None:
    window = open_window(qtbot, store, clock, tmp_path, KETAMINE if auto else no_auto(KETAMINE))
    run(window, clock, 90, 30, "W")  # warning (≤ 91) for half a minute: one row
    assert spo2_alarms(store, "warning") == 1
    warning_beeps = len(beeps)  # warnings sound only when the warning sound is on
    run(window, clock, 84, 1, "C")  # worse: critical raises and sounds
    assert spo2_alarms(store, "critical") == 1 and len(beeps) == warning_beeps + 1
    run(window, clock, 84, 130, "D")  # two minutes more: nothing new, not a sound
    assert spo2_alarms(store, "critical") == 1 and spo2_alarms(store, "warning") == 1
    assert len(beeps) == warning_beeps + 1
    lines = window.alarm_banner.lines()
    critical = next(line for line in lines if line.startswith("▲") or "CRITICAL" in line)
    assert "SpO₂ 84 % for 2 min (device, unconfirmed)" in critical, lines

    # Acknowledged: the next crossing is a new alarm, with its sound.
    assert window.log is not None
    for alarm in window.log.active_alarms():
        changes = store.add(
            window.log.id,
            AlarmAcknowledgement(
                alarm["id"], sorted(window.ref.codes("alarm_responses"))[0], clock.now()
            ),
            "Dr A",
        )
        window.show_changes(changes)
    assert window.alarm_banner.lines() == []
    run(window, clock, 84, 1, "E")
    assert spo2_alarms(store, "critical") == 2 and len(beeps) == warning_beeps + 2
    assert "for" not in window.alarm_banner.lines()[0].split("—")[1]  # a new episode

    # A typed reading is never folded: it raises its own alarm beside the device's.
    clock.advance(seconds=30)
    typed = store.add(window.log.id, VitalSigns(clock.now(), spo2=84), "Dr A")
    window.show_changes(typed)
    assert spo2_alarms(store, "critical") == 3 and len(beeps) == warning_beeps + 3
