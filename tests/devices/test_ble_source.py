"""The BLE source's connection path with the in-memory peripheral (no Bluetooth here): connect,
subscribe, notifications to readings, probe off, no data, link loss and reconnection, devices out
of range or without the services, malformed values, a failing sink; and the real bleak client on
a machine without a Bluetooth stack. Values are built from the specifications as in
test_ble_gatt.py. Waits are for events with a guard; nothing asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone

import pytest

from kapmonitor.devices.ble_gatt import (
    BLOOD_PRESSURE_MEASUREMENT,
    PLX_CONTINUOUS_MEASUREMENT,
    PLX_SPOT_CHECK_MEASUREMENT,
)
from kapmonitor.devices.ble_source import BleakBleClient, BleSource, FakePeripheral
from kapmonitor.devices.reading import ConnectionState, DeviceReading, ReadingFlag

GUARD = 20.0

# GSS "PLX Continuous Measurement": flags 0x00, SpO2 97, PR 72 (SFLOAT, exponent 0).
PLX_97_72 = bytes([0x00, 0x61, 0x00, 0x48, 0x00])
PLX_95_80 = bytes([0x00, 0x5F, 0x00, 0x50, 0x00])
# Flags 0x08 (Device and Sensor Status present), NaN, NaN, status bit 15 Sensor Disconnected.
PLX_PROBE_OFF = bytes([0x08, 0xFF, 0x07, 0xFF, 0x07, 0x00, 0x80, 0x00])
# GSS "PLX Spot-check Measurement": flags 0x01 (Timestamp), SpO2 98, PR 64, 2026-11-27 21:45:30.
SPOT_98_64 = bytes([0x01, 0x62, 0x00, 0x40, 0x00, 0xEA, 0x07, 0x0B, 0x1B, 0x15, 0x2D, 0x1E])
# GSS "Blood Pressure Measurement": flags 0x06 (Time Stamp, Pulse Rate), mmHg 120/80 MAP 93,
# 2026-11-27 21:45:30, pulse 72.
BP_120_80 = bytes(
    [0x06, 0x78, 0x00, 0x50, 0x00, 0x5D, 0x00, 0xEA, 0x07, 0x0B, 0x1B, 0x15, 0x2D, 0x1E, 0x48, 0x00]
)
CET = timezone(timedelta(hours=1))


class Harness:
    def __init__(self, source: BleSource) -> None:
        self.source = source
        self.batches: list[Sequence[DeviceReading]] = []
        self.states: list[ConnectionState] = []
        self.task: asyncio.Task[None] | None = None

    def start(self, sink: Callable[[Sequence[DeviceReading]], None] | None = None) -> None:
        self.task = asyncio.get_running_loop().create_task(
            self.source.run(
                sink or (lambda rs: self.batches.append(tuple(rs))),
                lambda _device, state: self.states.append(state),
            )
        )

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + GUARD
        while not condition():
            if self.task is not None and self.task.done():
                self.task.result()
                raise AssertionError(f"the source ended before {what}")
            if loop.time() > deadline:
                raise AssertionError(f"gave up waiting for {what}; states {self.states}")
            await asyncio.sleep(0.005)

    async def state(self, state: ConnectionState) -> None:
        await self.until(lambda: self.source.state == state, f"state {state.value}")

    async def batch_count(self, count: int) -> None:
        await self.until(lambda: len(self.batches) >= count, f"{count} batches")

    async def stop(self) -> None:
        self.source.stop()
        assert self.task is not None
        await asyncio.wait_for(self.task, GUARD)


def make_source(peripheral: FakePeripheral, **kwargs) -> BleSource:
    options = {"no_data_after": 30.0, "backoff_initial": 0.01, "backoff_max": 0.05}
    options.update(kwargs)
    return BleSource("00:1C:05:AA:BB:CC", client_factory=peripheral.client_factory, **options)


def test_connect_subscribe_notify_and_probe_off() -> None:
    async def scenario() -> None:
        device = FakePeripheral(frozenset({PLX_CONTINUOUS_MEASUREMENT, PLX_SPOT_CHECK_MEASUREMENT}))
        run = Harness(make_source(device, device_timezone=CET))
        run.start()
        await run.state(ConnectionState.CONNECTED)
        # Subscribed to what the device has, not to the blood pressure it lacks.
        assert run.source.subscribed == (PLX_CONTINUOUS_MEASUREMENT, PLX_SPOT_CHECK_MEASUREMENT)
        assert device.notify(PLX_CONTINUOUS_MEASUREMENT, PLX_97_72)
        await run.batch_count(1)
        assert device.notify(PLX_CONTINUOUS_MEASUREMENT, PLX_PROBE_OFF)
        await run.state(ConnectionState.PROBE_OFF)
        assert device.notify(PLX_CONTINUOUS_MEASUREMENT, PLX_95_80)
        await run.state(ConnectionState.CONNECTED)
        assert device.notify(PLX_SPOT_CHECK_MEASUREMENT, SPOT_98_64)
        await run.batch_count(4)
        await run.stop()
        assert device.connected_client is None  # stop disconnects
        got = [[(r.vital, r.value) for r in b] for b in run.batches]
        assert got == [
            [("spo2", 97), ("hr", 72)],
            [("spo2", None), ("hr", None)],
            [("spo2", 95), ("hr", 80)],
            [("spo2", 98), ("hr", 64)],
        ]
        assert all(r.flags == {ReadingFlag.PROBE_OFF} for r in run.batches[1])
        spot = run.batches[3][0]
        assert spot.observed_at == datetime(2026, 11, 27, 21, 45, 30, tzinfo=CET)
        assert spot.code == "GATT:2A5E:SpO2"
        assert run.batches[0][0].observed_at is None  # continuous values carry no time
        assert {r.device_id for b in run.batches for r in b} == {"ble:00:1C:05:AA:BB:CC"}
        assert len({b[0].message_id for b in run.batches}) == 4
        assert run.states == [
            ConnectionState.DISCONNECTED,
            ConnectionState.CONNECTED,
            ConnectionState.PROBE_OFF,
            ConnectionState.CONNECTED,
            ConnectionState.DISCONNECTED,
        ]

    asyncio.run(scenario())


def test_link_loss_is_disconnected_and_the_source_reconnects() -> None:
    async def scenario() -> None:
        device = FakePeripheral()
        run = Harness(make_source(device))
        run.start()
        await run.state(ConnectionState.CONNECTED)
        device.notify(PLX_CONTINUOUS_MEASUREMENT, PLX_97_72)
        await run.batch_count(1)
        device.in_range = False  # walks out of range: the link drops, reconnecting fails
        device.drop_link()
        await run.state(ConnectionState.DISCONNECTED)
        attempts = run.source.connect_attempts
        await run.until(lambda: run.source.connect_attempts >= attempts + 2, "retries")
        assert device.notify(PLX_CONTINUOUS_MEASUREMENT, PLX_95_80) is False  # nobody listening
        assert len(run.batches) == 1  # the gap stays a gap
        assert (
            run.source.last_error
            == "ConnectionError: no Bluetooth device 00:1C:05:AA:BB:CC in range"
        )
        device.in_range = True
        await run.state(ConnectionState.CONNECTED)
        assert device.connects == 2
        device.notify(PLX_CONTINUOUS_MEASUREMENT, PLX_95_80)
        await run.batch_count(2)
        await run.stop()
        assert [r.value for b in run.batches for r in b] == [97, 72, 95, 80]

    asyncio.run(scenario())


def test_a_device_without_the_services_is_never_connected() -> None:
    async def scenario() -> None:
        device = FakePeripheral(frozenset({"00002a37-0000-1000-8000-00805f9b34fb"}))  # HR only
        run = Harness(make_source(device))
        run.start()
        await run.until(lambda: run.source.connect_attempts >= 3, "retries")
        assert ConnectionState.CONNECTED not in run.states
        assert all(not client.connected for client in device.clients)  # each link let go
        assert (run.source.last_error or "").startswith("LookupError")
        await run.stop()

    asyncio.run(scenario())


def test_malformed_notifications_are_counted_and_skipped() -> None:
    async def scenario() -> None:
        device = FakePeripheral()
        run = Harness(make_source(device))
        run.start()
        await run.state(ConnectionState.CONNECTED)
        device.notify(PLX_CONTINUOUS_MEASUREMENT, b"\x01\x61\x00")  # flags promise more
        device.notify(PLX_CONTINUOUS_MEASUREMENT, PLX_97_72 + b"\x00")  # trailing byte
        device.notify(PLX_CONTINUOUS_MEASUREMENT, b"")
        device.notify(PLX_CONTINUOUS_MEASUREMENT, PLX_95_80)
        await run.batch_count(1)
        await run.stop()
        assert run.source.malformed == 3
        assert [r.value for b in run.batches for r in b] == [95, 80]

    asyncio.run(scenario())


def test_silent_oximeter_is_no_data_but_a_cuff_has_no_such_limit() -> None:
    """A cuff sends only when it measures: its silence is normal. Both run side by side; the
    oximeter reaching ``no_data`` shows the cuff had as long and stayed connected."""

    async def scenario() -> None:
        oximeter = FakePeripheral()
        cuff = FakePeripheral(frozenset({BLOOD_PRESSURE_MEASUREMENT}))
        ox = Harness(make_source(oximeter, no_data_after=0.2))
        bp = Harness(make_source(cuff, no_data_after=0.2, device_timezone=CET))
        ox.start()
        bp.start()
        await ox.state(ConnectionState.CONNECTED)
        await bp.state(ConnectionState.CONNECTED)
        cuff.notify(BLOOD_PRESSURE_MEASUREMENT, BP_120_80)
        await bp.batch_count(1)
        oximeter.notify(PLX_CONTINUOUS_MEASUREMENT, PLX_97_72)
        await ox.batch_count(1)
        await ox.state(ConnectionState.NO_DATA)
        assert bp.source.state == ConnectionState.CONNECTED
        oximeter.notify(PLX_CONTINUOUS_MEASUREMENT, PLX_95_80)
        await ox.state(ConnectionState.CONNECTED)
        await ox.stop()
        await bp.stop()
        sbp, dbp, hr = bp.batches[0]
        assert [(r.vital, r.value, r.unit) for r in (sbp, dbp, hr)] == [
            ("sbp", 120, "mmHg"),
            ("dbp", 80, "mmHg"),
            ("hr", 72, "/min"),
        ]
        assert sbp.observed_at == datetime(2026, 11, 27, 21, 45, 30, tzinfo=CET)
        assert sbp.observed_at.astimezone(UTC).hour == 20

    asyncio.run(scenario())


def test_a_failing_sink_ends_the_run_and_drops_the_link() -> None:
    def failing_sink(_readings: Sequence[DeviceReading]) -> None:
        raise OSError("disk full")

    async def scenario() -> None:
        device = FakePeripheral()
        run = Harness(make_source(device))
        run.start(failing_sink)
        await run.state(ConnectionState.CONNECTED)
        device.notify(PLX_CONTINUOUS_MEASUREMENT, PLX_97_72)
        with pytest.raises(OSError, match="disk full"):
            await asyncio.wait_for(run.task, GUARD)
        assert device.connected_client is None
        assert run.states[-1] == ConnectionState.DISCONNECTED

    asyncio.run(scenario())


def test_stop_from_another_thread_cuts_a_reconnect_wait_short() -> None:
    async def scenario() -> None:
        device = FakePeripheral(in_range=False)
        run = Harness(make_source(device, backoff_initial=30.0, backoff_max=30.0))
        run.start()
        await run.until(lambda: run.source.connect_attempts >= 1, "an attempt")
        await asyncio.get_running_loop().run_in_executor(None, run.source.stop)
        await asyncio.wait_for(run.task, GUARD)
        assert run.source.connect_attempts == 1

    asyncio.run(scenario())


def test_importing_the_ble_source_does_not_import_bleak() -> None:
    code = (
        "import sys, kapmonitor.devices.ble_source, kapmonitor.devices.ble_gatt; "
        "sys.exit(1 if 'bleak' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_the_real_bleak_client_without_a_reachable_device_stays_disconnected() -> None:
    """On this machine (no BlueZ, or no such device in range) the bleak path fails at connect:
    the source reports disconnected and keeps retrying instead of failing the app."""

    async def scenario() -> None:
        source = BleSource(
            "00:1C:05:AA:BB:CC",
            client_factory=lambda address, on_disconnect: BleakBleClient(
                address, on_disconnect, scan_timeout=0.5, connect_timeout=1.0
            ),
            backoff_initial=0.01,
            backoff_max=0.02,
        )
        run = Harness(source)
        run.start()
        await run.until(lambda: source.connect_attempts >= 2, "two attempts")
        await run.stop()
        assert ConnectionState.CONNECTED not in run.states
        assert source.state == ConnectionState.DISCONNECTED

    asyncio.run(scenario())
