"""The connection watch on a fake clock, without Qt: each state, its level, and the way back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kapmonitor.devices.connection_watch import ConnectionWatch, Level, WatchState
from kapmonitor.devices.reading import ConnectionState, DeviceReading, ReadingFlag
from kapmonitor.domain.clock import FakeClock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def reading(device: str, value: float | None, *flags: ReadingFlag) -> DeviceReading:
    return DeviceReading(
        device_id=device,
        source="mllp",
        message_id="m1",
        received_at=T0,
        observed_at=None,
        vital="spo2",
        value=value,
        unit="%",
        flags=frozenset(flags),
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def watch(clock: FakeClock) -> ConnectionWatch:
    return ConnectionWatch(clock.now, warning_s=30, alarm_s=120)


def only(watch: ConnectionWatch) -> tuple[WatchState, Level, str]:
    (status,) = watch.statuses()
    return status.state, status.level, status.text()


def test_nothing_heard_shows_nothing(watch: ConnectionWatch) -> None:
    assert watch.statuses() == []
    assert watch.status("MX450") is None


def test_data_keeps_a_device_connected_until_silence_warns_then_alarms(
    watch: ConnectionWatch, clock: FakeClock
) -> None:
    watch.link("MX450", ConnectionState.CONNECTED)
    watch.readings([reading("MX450", 97)])
    assert only(watch) == (WatchState.CONNECTED, Level.OK, "MX450: connected")
    clock.advance(seconds=29)
    assert only(watch)[:2] == (WatchState.CONNECTED, Level.OK)
    clock.advance(seconds=1)
    assert only(watch) == (WatchState.NO_DATA, Level.WARNING, "MX450: no data 30 s")
    clock.advance(seconds=89)
    assert only(watch)[1] is Level.WARNING
    clock.advance(seconds=1)
    assert only(watch) == (WatchState.NO_DATA, Level.ALARM, "MX450: ALARM no data 2 min 00 s")
    status = watch.status("MX450")
    assert status is not None and status.last_data == T0
    watch.readings([reading("MX450", 96)])  # data again: back to connected at once
    assert only(watch) == (WatchState.CONNECTED, Level.OK, "MX450: connected")


def test_a_device_connected_but_never_sending_warns_from_first_heard(
    watch: ConnectionWatch, clock: FakeClock
) -> None:
    watch.link("MX450", ConnectionState.CONNECTED)
    clock.advance(seconds=31)
    assert only(watch)[:2] == (WatchState.NO_DATA, Level.WARNING)
    assert watch.statuses()[0].last_data is None


def test_probe_off_from_the_reading_flags_is_a_warning_then_an_alarm(
    watch: ConnectionWatch, clock: FakeClock
) -> None:
    watch.readings([reading("MX450", 97)])
    clock.advance(seconds=1)
    watch.readings([reading("MX450", None, ReadingFlag.PROBE_OFF)])
    assert only(watch) == (WatchState.PROBE_OFF, Level.WARNING, "MX450: probe off 1 s")
    for _ in range(130):  # the device keeps talking, the patient is not measured
        clock.advance(seconds=1)
        watch.readings([reading("MX450", None, ReadingFlag.PROBE_OFF)])
    state, level, text = only(watch)
    assert (state, level) == (WatchState.PROBE_OFF, Level.ALARM)
    assert text == "MX450: ALARM probe off 2 min 11 s"
    watch.readings([reading("MX450", 95)])
    assert only(watch)[:2] == (WatchState.CONNECTED, Level.OK)


def test_a_flagged_reading_with_a_value_is_data(watch: ConnectionWatch, clock: FakeClock) -> None:
    watch.readings([reading("MX450", 188, ReadingFlag.ARTEFACT)])
    clock.advance(seconds=25)
    watch.readings([reading("MX450", 97, ReadingFlag.ARTEFACT)])
    clock.advance(seconds=25)
    assert only(watch)[:2] == (WatchState.CONNECTED, Level.OK)


def test_the_listeners_probe_off_state_counts_too_and_connected_clears_it(
    watch: ConnectionWatch,
) -> None:
    watch.link("MX450", ConnectionState.PROBE_OFF)
    assert only(watch)[0] is WatchState.PROBE_OFF
    watch.link("MX450", ConnectionState.CONNECTED)
    assert only(watch)[0] is WatchState.CONNECTED


def test_disconnect_warns_at_once_escalates_and_reconnection_returns_to_connected(
    watch: ConnectionWatch, clock: FakeClock
) -> None:
    watch.readings([reading("MX450", 97)])
    watch.link("MX450", ConnectionState.DISCONNECTED)
    assert only(watch) == (WatchState.DISCONNECTED, Level.WARNING, "MX450: disconnected")
    clock.advance(seconds=121)
    assert only(watch)[:2] == (WatchState.DISCONNECTED, Level.ALARM)
    watch.link("MX450", ConnectionState.CONNECTED)  # the monitor reconnected, no data yet
    assert only(watch)[:2] == (WatchState.NO_DATA, Level.ALARM)  # silence still counts
    watch.readings([reading("MX450", 97)])
    assert only(watch)[:2] == (WatchState.CONNECTED, Level.OK)


def test_a_reading_after_a_disconnect_is_proof_of_a_link(
    watch: ConnectionWatch, clock: FakeClock
) -> None:
    watch.link("MX450", ConnectionState.DISCONNECTED)
    watch.readings([reading("MX450", 97)])
    assert only(watch)[0] is WatchState.CONNECTED


def test_a_source_saying_no_data_leaves_the_judgement_to_the_clock(
    watch: ConnectionWatch, clock: FakeClock
) -> None:
    watch.readings([reading("MX450", 97)])
    watch.link("MX450", ConnectionState.NO_DATA)
    assert only(watch)[:2] == (WatchState.CONNECTED, Level.OK)


def test_devices_are_independent_and_listed_in_the_order_heard(
    watch: ConnectionWatch, clock: FakeClock
) -> None:
    watch.readings([reading("MX450", 97)])
    clock.advance(seconds=20)
    watch.readings([reading("serial:/dev/ttyUSB0", 98)])
    clock.advance(seconds=15)
    states = [(s.device_id, s.state) for s in watch.statuses()]
    assert states == [("MX450", WatchState.NO_DATA), ("serial:/dev/ttyUSB0", WatchState.CONNECTED)]
    watch.clear()
    assert watch.statuses() == []


def test_limits_follow_the_protocol_and_refuse_nonsense(
    watch: ConnectionWatch, clock: FakeClock
) -> None:
    watch.readings([reading("MX450", 97)])
    watch.set_limits(5, 10)
    clock.advance(seconds=6)
    assert only(watch)[1] is Level.WARNING
    clock.advance(seconds=4)
    assert only(watch)[1] is Level.ALARM
    with pytest.raises(ValueError):
        watch.set_limits(60, 30)
    with pytest.raises(ValueError):
        ConnectionWatch(clock.now, warning_s=0, alarm_s=10)


def test_the_protocol_files_carry_labelled_no_data_limits_and_refuse_bad_ones() -> None:
    from kapmonitor.domain.protocol import Protocol, ProtocolError, parse_protocol
    from kapmonitor.paths import resources_dir

    path = resources_dir() / "protocols" / "clinic-ketamine.toml"
    text = path.read_text(encoding="utf-8")
    parsed = parse_protocol(text, "x.toml")
    assert (parsed.no_data_warning_s, parsed.no_data_alarm_s) == (30.0, 120.0)
    assert "clinic to confirm" in parsed.sources["devices.no_data_alarm_s"]
    stored = Protocol.from_dict(parsed.to_dict())
    assert (stored.no_data_warning_s, stored.no_data_alarm_s) == (30.0, 120.0)
    swapped = text.replace("no_data_alarm_s = { value = 120", "no_data_alarm_s = { value = 20")
    with pytest.raises(ProtocolError, match="no_data_alarm_s: must be longer"):
        parse_protocol(swapped, "x.toml")
    unlabelled = text.replace(
        text[
            text.index("no_data_warning_s = {") : text.index("\n", text.index("no_data_warning_s"))
        ],
        "no_data_warning_s = 30",
    )
    with pytest.raises(ProtocolError, match="needs a source label"):
        parse_protocol(unlabelled, "x.toml")
