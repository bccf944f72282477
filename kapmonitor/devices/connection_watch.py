"""Each device's connection state for the indicator: connected, no data, probe off, disconnected.

Issue 13 item 4. Why a watch of its own, apart from the sources: a source knows when its link
opens and closes (and says so through its :data:`~kapmonitor.devices.reading.StateSink`), but
"no data for N seconds" is a clinical judgement with the protocol's numbers
(``[devices] no_data_warning_s`` / ``no_data_alarm_s``), and it must be measured on the app's
clock (injected, so a test moves time instead of waiting). The watch is told two things:

- :meth:`ConnectionWatch.link` when a source reports a device's link state (a monitor connects,
  its connection closes, it reconnects);
- :meth:`ConnectionWatch.readings` when a device's readings have been stored: a reading with a
  value is "data"; readings that are all flagged probe off mean the probe is off (the device
  is talking, the patient is not being measured).

and :meth:`ConnectionWatch.statuses` answers, at any moment, one :class:`DeviceStatus` per device
heard: its state, how long since its last valued reading, and a level (ok / warning / alarm).
The silence counts from the last *valued* reading, so a probe left off or a monitor unplugged
escalates exactly like a silent one: a warning after ``warning_s``, an alarm after ``alarm_s``.
A disconnected or probe-off device is a warning at once. Reconnection (a link reported
connected, or a valued reading) returns it to connected.

What it does not do: it never writes the record (the indicator's alarm is not a stored alarm:
no clinical value was measured), and it cannot tell a monitor that opens one connection per
message from one that dropped: such a monitor shows "disconnected" between messages, and its
silence timer is what matters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from kapmonitor.devices.reading import ConnectionState, DeviceReading

__all__ = ["ConnectionWatch", "DeviceStatus", "Level", "WatchState"]


class WatchState(StrEnum):
    """What the indicator says about one device (the first word of its text)."""

    CONNECTED = "connected"
    NO_DATA = "no data"
    PROBE_OFF = "probe off"
    DISCONNECTED = "disconnected"


class Level(StrEnum):
    """How loudly the indicator shows it."""

    OK = "ok"
    WARNING = "warning"
    ALARM = "alarm"


@dataclass(frozen=True)
class DeviceStatus:
    """One device at one moment, as the indicator shows it."""

    device_id: str
    state: WatchState
    level: Level
    silent_s: float  # since the last valued reading (or since the device was first heard)
    last_data: datetime | None  # the app clock's time of the last valued reading

    def text(self) -> str:
        """Plain words, e.g. ``"MX450-0001: no data 45 s"`` (never a clinical value)."""
        word = str(self.state)
        if self.state is not WatchState.CONNECTED and self.silent_s >= 1:
            word += f" {_age(self.silent_s)}"  # how long without a valued reading
        if self.level is Level.ALARM:
            word = f"ALARM {word}"
        return f"{self.device_id}: {word}"


def _age(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60:02d} s"


@dataclass
class _Device:
    first_heard: datetime
    link: ConnectionState = ConnectionState.CONNECTED
    probe_off: bool = False
    last_data: datetime | None = None


class ConnectionWatch:
    """Per-device connection state on an injected clock (``now``: the app clock's ``now``)."""

    def __init__(
        self, now: Callable[[], datetime], warning_s: float = 30.0, alarm_s: float = 120.0
    ) -> None:
        if not 0 < warning_s < alarm_s:
            raise ValueError("the no-data warning must come before the alarm, both above zero")
        self.now = now
        self.warning_s = warning_s
        self.alarm_s = alarm_s
        self._devices: dict[str, _Device] = {}

    def set_limits(self, warning_s: float, alarm_s: float) -> None:
        """The session's protocol changed (a new session): its numbers apply from now."""
        if not 0 < warning_s < alarm_s:
            raise ValueError("the no-data warning must come before the alarm, both above zero")
        self.warning_s, self.alarm_s = warning_s, alarm_s

    def clear(self) -> None:
        """Forget every device (a new session starts with no device heard)."""
        self._devices.clear()

    def _device(self, device_id: str) -> _Device:
        found = self._devices.get(device_id)
        if found is None:
            found = self._devices[device_id] = _Device(first_heard=self.now())
        return found

    def link(self, device_id: str, state: ConnectionState) -> None:
        """A source reported the device's link: connected, disconnected (or its own "no data"
        or "probe off", which the watch judges itself from readings and its clock)."""
        device = self._device(device_id)
        if state is ConnectionState.DISCONNECTED:
            device.link = ConnectionState.DISCONNECTED
        elif state is ConnectionState.CONNECTED:
            device.link = ConnectionState.CONNECTED
            device.probe_off = False
        elif state is ConnectionState.PROBE_OFF:
            device.link = ConnectionState.CONNECTED
            device.probe_off = True
        # NO_DATA from a source: the link is up; the watch's own timer says how long.

    def readings(self, readings: Iterable[DeviceReading]) -> None:
        """Readings were stored: a valued one is data; all probe-off means the probe is off."""
        by_device: dict[str, list[DeviceReading]] = {}
        for reading in readings:
            by_device.setdefault(reading.device_id, []).append(reading)
        now = self.now()
        for device_id, batch in by_device.items():
            device = self._device(device_id)
            device.link = ConnectionState.CONNECTED  # a reading is proof of a link
            if any(r.value is not None for r in batch):
                device.last_data = now
                device.probe_off = False
            elif all(r.probe_off for r in batch):
                device.probe_off = True

    def statuses(self) -> list[DeviceStatus]:
        """Every device heard, in the order first heard."""
        now = self.now()
        return [self._status(device_id, d, now) for device_id, d in self._devices.items()]

    def status(self, device_id: str) -> DeviceStatus | None:
        device = self._devices.get(device_id)
        return None if device is None else self._status(device_id, device, self.now())

    def _status(self, device_id: str, device: _Device, now: datetime) -> DeviceStatus:
        since = device.last_data or device.first_heard
        silent = max(0.0, (now - since).total_seconds())
        if device.link is ConnectionState.DISCONNECTED:
            state = WatchState.DISCONNECTED
        elif device.probe_off:
            state = WatchState.PROBE_OFF
        elif silent >= self.warning_s:
            state = WatchState.NO_DATA
        else:
            state = WatchState.CONNECTED
        if silent >= self.alarm_s:
            level = Level.ALARM
        elif silent >= self.warning_s or state is not WatchState.CONNECTED:
            level = Level.WARNING
        else:
            level = Level.OK
        return DeviceStatus(device_id, state, level, silent, device.last_data)
