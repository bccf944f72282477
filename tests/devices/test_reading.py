"""The device reading refuses what would make it unusable later, and ``deliver`` waits for both
kinds of sink (plain functions off the loop, coroutines on it) before returning."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import pytest

from kapmonitor.devices.reading import DeviceReading, ReadingFlag, deliver

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def reading(**changes) -> DeviceReading:
    fields = dict(
        device_id="D1", source="mllp", message_id="M1", received_at=NOW, observed_at=NOW,
        vital="spo2", value=97.0, unit="%",
    )  # fmt: skip
    return DeviceReading(**{**fields, **changes})


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"vital": "glucose"}, "not a registry vital"),
        ({"received_at": datetime(2026, 3, 1, 9, 0)}, "timezone-aware"),
        ({"observed_at": datetime(2026, 3, 1, 9, 0)}, "timezone-aware"),
        ({"value": None}, "must say why"),
    ],
)
def test_a_reading_that_could_not_be_judged_later_is_refused(changes, words) -> None:
    with pytest.raises(ValueError, match=words):
        reading(**changes)


def test_a_reading_without_a_value_carries_its_reason() -> None:
    off = reading(value=None, flags=frozenset({ReadingFlag.PROBE_OFF}))
    assert off.probe_off and not off.artefact


def test_deliver_runs_a_plain_sink_off_the_loop_and_waits_for_it() -> None:
    seen: list[tuple[str, int]] = []

    def sink(readings) -> None:
        seen.append((threading.current_thread().name, len(readings)))

    async def main() -> str:
        await deliver(sink, [reading()])
        return threading.current_thread().name

    loop_thread = asyncio.run(main())
    assert len(seen) == 1 and seen[0][1] == 1
    assert seen[0][0] != loop_thread


def test_deliver_awaits_a_coroutine_sink_and_passes_on_its_failure() -> None:
    seen: list[int] = []

    async def sink(readings) -> None:
        await asyncio.sleep(0)
        seen.append(len(readings))

    async def failing(readings) -> None:
        raise OSError("disk full")

    asyncio.run(deliver(sink, [reading(), reading(vital="hr", value=70.0, unit="/min")]))
    assert seen == [2]
    with pytest.raises(OSError):
        asyncio.run(deliver(failing, [reading()]))
