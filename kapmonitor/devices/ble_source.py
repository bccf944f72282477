"""A Bluetooth LE oximeter or blood-pressure cuff as a
:class:`~kapmonitor.devices.reading.ReadingSource`.

The connection path (find the device by address, connect, subscribe to the measurement
characteristics, parse each notification, deliver, notice the link drop, reconnect with backoff,
report the state) is written once against a small :class:`BleClient` protocol with three calls:
``connect``, ``start_notify`` and ``disconnect``. :class:`BleakBleClient` implements it with
bleak for real hardware; :class:`FakePeripheral` / :class:`FakeBleClient` implement it in memory
for the tests (test machines have no Bluetooth), so the same source code runs in both.

bleak is imported only inside :meth:`BleakBleClient.connect`: on a machine without a Bluetooth
stack (no BlueZ D-Bus, no adapter) the app and the tests import this module without error and a
configured BLE device simply stays ``disconnected`` with the reason logged.

Subscribed characteristics (whichever the device has): PLX Continuous Measurement (0x2A5F),
PLX Spot-check Measurement (0x2A5E), Blood Pressure Measurement (0x2A35); parsing is in
:mod:`kapmonitor.devices.ble_gatt`. States: ``connected`` once subscribed, ``probe_off`` while the
oximeter's sensor status says the sensor is off, ``no_data`` when a continuous oximeter has sent
nothing for ``no_data_after`` seconds (a cuff only sends when it measures, so it has no such
limit), ``disconnected`` otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Protocol

from kapmonitor.devices.ble_gatt import (
    BLOOD_PRESSURE_MEASUREMENT,
    PLX_CONTINUOUS_MEASUREMENT,
    PLX_SPOT_CHECK_MEASUREMENT,
    GattParseError,
    bp_readings,
    parse_blood_pressure,
    parse_plx_continuous,
    parse_plx_spot_check,
    plx_readings,
)
from kapmonitor.devices.reading import (
    ConnectionState,
    DeviceReading,
    ReadingFlag,
    ReadingSink,
    StateSink,
    deliver,
)

__all__ = [
    "MEASUREMENT_CHARACTERISTICS",
    "BleClient",
    "BleSource",
    "BleakBleClient",
    "ClientFactory",
    "FakeBleClient",
    "FakePeripheral",
]

log = logging.getLogger(__name__)

NotificationCallback = Callable[[bytes], None]

#: What the source subscribes to, in this order.
MEASUREMENT_CHARACTERISTICS = (
    PLX_CONTINUOUS_MEASUREMENT,
    PLX_SPOT_CHECK_MEASUREMENT,
    BLOOD_PRESSURE_MEASUREMENT,
)
#: Notifications waiting to be parsed; more means the sink cannot keep up: the excess is dropped
#: and counted rather than growing memory without bound.
MAX_QUEUED = 1000


class BleClient(Protocol):
    """The three calls the source needs from a BLE central."""

    async def connect(self) -> None:
        """Find the device and connect; raise (any exception) if it cannot be reached."""

    async def start_notify(self, characteristic: str, callback: NotificationCallback) -> None:
        """Subscribe to notifications/indications of ``characteristic`` (a 128-bit UUID);
        raise LookupError if the device does not have it."""

    async def disconnect(self) -> None:
        """Drop the link (no error if it is already down)."""


#: Makes a client for ``address``; the client calls ``on_disconnect`` (from any thread) when the
#: link drops by itself.
ClientFactory = Callable[[str, Callable[[], None]], BleClient]


class BleakBleClient:
    """:class:`BleClient` over bleak (BlueZ on Linux, WinRT on Windows, CoreBluetooth on macOS)."""

    def __init__(
        self,
        address: str,
        on_disconnect: Callable[[], None],
        *,
        scan_timeout: float = 10.0,
        connect_timeout: float = 20.0,
    ) -> None:
        self.address = address
        self._on_disconnect = on_disconnect
        self.scan_timeout = scan_timeout
        self.connect_timeout = connect_timeout
        self._client: object | None = None

    async def connect(self) -> None:
        # Imported here, not at module level: bleak's backend needs a Bluetooth stack, and a
        # machine without one must still start the app (the device just stays disconnected).
        from bleak import BleakClient, BleakScanner

        device = await BleakScanner.find_device_by_address(self.address, timeout=self.scan_timeout)
        if device is None:
            raise ConnectionError(f"no Bluetooth device {self.address} in range")
        client = BleakClient(
            device,
            disconnected_callback=lambda _client: self._on_disconnect(),
            timeout=self.connect_timeout,
        )
        await client.connect()
        self._client = client

    async def start_notify(self, characteristic: str, callback: NotificationCallback) -> None:
        from bleak.exc import BleakCharacteristicNotFoundError

        if self._client is None:
            raise ConnectionError("not connected")
        try:
            await self._client.start_notify(  # type: ignore[attr-defined]
                characteristic, lambda _sender, data: callback(bytes(data))
            )
        except BleakCharacteristicNotFoundError as exc:
            raise LookupError(characteristic) from exc

    async def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.disconnect()  # type: ignore[attr-defined]


def _bleak_factory(address: str, on_disconnect: Callable[[], None]) -> BleClient:
    return BleakBleClient(address, on_disconnect)


def _utc_now() -> datetime:
    return datetime.now(UTC)


_DISCONNECTED = object()  # queued when the link drops
_STOP = object()  # queued by stop()


class BleSource:
    """Readings from the BLE oximeter or cuff at ``address`` (a MAC address, or a CoreBluetooth
    UUID on macOS) until :meth:`stop`."""

    def __init__(
        self,
        address: str,
        *,
        device_id: str | None = None,
        client_factory: ClientFactory | None = None,
        no_data_after: float = 10.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        clock: Callable[[], datetime] = _utc_now,
        device_timezone: tzinfo | None = None,
    ) -> None:
        if no_data_after <= 0 or backoff_initial <= 0 or backoff_max < backoff_initial:
            raise ValueError("no_data_after and the backoff must be positive")
        self.address = address
        self.device_id = device_id or f"ble:{address}"
        self._factory = client_factory or _bleak_factory
        self.no_data_after = no_data_after
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._clock = clock
        # A GATT time stamp has no time zone: it is read as this zone (the laptop's by default,
        # since the cuff was set from a phone or by hand in the same room).
        self._device_tz = device_timezone
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[object] | None = None
        self._on_state: StateSink | None = None
        self.state = ConnectionState.DISCONNECTED
        self.notifications = 0
        self.malformed = 0
        self.dropped = 0
        self.connect_attempts = 0
        self.subscribed: tuple[str, ...] = ()
        self.last_error: str | None = None  # why it is not connected, for the Devices dialog

    # --- ReadingSource ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask :meth:`run` to disconnect and return (from any thread)."""
        self._stopping.set()
        loop, queue = self._loop, self._queue
        if loop is not None and queue is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._put, _STOP)

    async def run(self, sink: ReadingSink, on_state: StateSink | None = None) -> None:
        """Connect, subscribe, deliver; reconnect after any failure, until stopped. A sink that
        raises ends the run with that error (after disconnecting)."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._on_state = on_state
        self._notify(ConnectionState.DISCONNECTED, force=True)
        stamp = self._clock().strftime("%Y%m%dT%H%M%S%f")
        sequence = 0
        delay = self.backoff_initial
        try:
            while not self._stopping.is_set():
                client = await self._connect()
                if client is None:
                    await self._pause(delay)
                    delay = min(delay * 2, self.backoff_max)
                    continue
                try:
                    sequence, got_data = await self._listen(sink, stamp, sequence)
                finally:
                    with contextlib.suppress(Exception):
                        await client.disconnect()
                    self._notify(ConnectionState.DISCONNECTED)
                if self._stopping.is_set():
                    break
                delay = self.backoff_initial if got_data else min(delay * 2, self.backoff_max)
                await self._pause(delay)
        finally:
            self._notify(ConnectionState.DISCONNECTED)

    # --- Inside ----------------------------------------------------------------------------------

    def _put(self, item: object) -> None:
        assert self._queue is not None
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:  # pragma: no cover - the queue is unbounded; see _on_data
            self.dropped += 1

    def _on_data(self, characteristic: str, data: bytes) -> None:
        """A notification, from whatever thread the BLE stack calls back on."""
        assert self._loop is not None and self._queue is not None
        if self._queue.qsize() >= MAX_QUEUED:
            self.dropped += 1
            return
        self._loop.call_soon_threadsafe(self._put, (characteristic, bytes(data)))

    def _on_link_lost(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._put, _DISCONNECTED)

    async def _connect(self) -> BleClient | None:
        """A connected, subscribed client, or None (logged, state ``disconnected``)."""
        assert self._queue is not None
        # A drop or stop queued for an earlier link must not end this one.
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is _STOP:
                self._stopping.set()
        if self._stopping.is_set():
            return None
        self.connect_attempts += 1
        client = self._factory(self.address, self._on_link_lost)
        try:
            await client.connect()
            subscribed = []
            for uuid in MEASUREMENT_CHARACTERISTICS:
                try:
                    await client.start_notify(uuid, lambda data, u=uuid: self._on_data(u, data))
                except LookupError:
                    continue
                subscribed.append(uuid)
            if not subscribed:
                raise LookupError("none of the PLX or blood pressure measurements")
        except Exception as exc:  # any failure of the radio path means "not connected, retry"
            self.last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            log.info("ble %s: cannot connect (%s)", self.address, self.last_error)
            with contextlib.suppress(Exception):
                await client.disconnect()
            self._notify(ConnectionState.DISCONNECTED)
            return None
        self.subscribed = tuple(subscribed)
        self.last_error = None
        self._notify(ConnectionState.CONNECTED)
        return client

    async def _listen(self, sink: ReadingSink, stamp: str, sequence: int) -> tuple[int, bool]:
        """Handle notifications until the link drops or the source stops."""
        assert self._queue is not None
        continuous = PLX_CONTINUOUS_MEASUREMENT in self.subscribed
        last_data = time.monotonic()
        got_data = False
        tick = min(0.5, self.no_data_after / 2)
        while not self._stopping.is_set():
            try:
                item = await asyncio.wait_for(self._queue.get(), timeout=tick)
            except TimeoutError:
                if continuous and time.monotonic() - last_data >= self.no_data_after:
                    self._notify(ConnectionState.NO_DATA)
                continue
            if item is _DISCONNECTED:
                log.info("ble %s: link lost", self.address)
                break
            if item is _STOP:
                break
            characteristic, data = item  # type: ignore[misc]
            self.notifications += 1
            sequence += 1
            readings = self._readings(characteristic, data, f"{stamp}-{sequence}")
            if readings is None:
                continue
            await deliver(sink, readings)
            got_data = True
            last_data = time.monotonic()
            if characteristic == BLOOD_PRESSURE_MEASUREMENT:
                if self.state == ConnectionState.NO_DATA:
                    self._notify(ConnectionState.CONNECTED)
            elif all(ReadingFlag.PROBE_OFF in r.flags for r in readings):
                self._notify(ConnectionState.PROBE_OFF)
            else:
                self._notify(ConnectionState.CONNECTED)
        return sequence, got_data

    def _readings(
        self, characteristic: str, data: bytes, message_id: str
    ) -> tuple[DeviceReading, ...] | None:
        """Parse one notification; None (counted, logged without the bytes) if malformed."""
        received = self._clock()
        common = {"device_id": self.device_id, "message_id": message_id, "received_at": received}
        try:
            if characteristic == PLX_CONTINUOUS_MEASUREMENT:
                return tuple(plx_readings(parse_plx_continuous(data), **common))  # type: ignore[arg-type]
            if characteristic == PLX_SPOT_CHECK_MEASUREMENT:
                spot = parse_plx_spot_check(data)
                observed = self._aware(spot.timestamp)
                return tuple(plx_readings(spot, observed_at=observed, **common))  # type: ignore[arg-type]
            bp = parse_blood_pressure(data)
            observed = self._aware(bp.timestamp)
            return tuple(bp_readings(bp, observed_at=observed, **common))  # type: ignore[arg-type]
        except GattParseError as exc:
            self.malformed += 1
            log.warning("ble %s: malformed notification ignored (%s)", self.address, exc)
            return None

    def _aware(self, stamp: datetime | None) -> datetime | None:
        if stamp is None:
            return None
        if self._device_tz is None:
            return stamp.astimezone()  # naive -> the laptop's local zone at that moment
        return stamp.replace(tzinfo=self._device_tz)

    async def _pause(self, seconds: float) -> None:
        """Wait before reconnecting; a stop() ends the wait at once."""
        assert self._queue is not None
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                item = await asyncio.wait_for(self._queue.get(), timeout=remaining)
            except TimeoutError:
                return
            if item is _STOP:
                self._stopping.set()
            # A late notification or drop from the old link is discarded: it has no link now.

    def _notify(self, state: ConnectionState, *, force: bool = False) -> None:
        if state == self.state and not force:
            return
        self.state = state
        log.info("ble %s: %s", self.address, state.value)
        if self._on_state is not None:
            self._on_state(self.device_id, state)


# --- The fake, for tests and demos without Bluetooth ---------------------------------------------


@dataclass
class FakePeripheral:
    """An in-memory BLE device: which characteristics it has, whether it is in range, and a way
    to notify values or drop the link, as a real oximeter or cuff would."""

    characteristics: frozenset[str] = frozenset({PLX_CONTINUOUS_MEASUREMENT})
    in_range: bool = True
    connects: int = 0
    clients: list[FakeBleClient] = field(default_factory=list)

    def client_factory(self, address: str, on_disconnect: Callable[[], None]) -> FakeBleClient:
        """A :data:`ClientFactory`: pass ``peripheral.client_factory`` to :class:`BleSource`."""
        client = FakeBleClient(self, address, on_disconnect)
        self.clients.append(client)
        return client

    @property
    def connected_client(self) -> FakeBleClient | None:
        for client in reversed(self.clients):
            if client.connected:
                return client
        return None

    def notify(self, characteristic: str, data: bytes) -> bool:
        """Send a value to the subscribed central; False if nobody is connected and subscribed."""
        client = self.connected_client
        if client is None or characteristic not in client.callbacks:
            return False
        client.callbacks[characteristic](bytes(data))
        return True

    def drop_link(self) -> None:
        """The link is lost (out of range, battery): the central is told, as bleak tells it."""
        client = self.connected_client
        if client is not None:
            client.connected = False
            client.callbacks.clear()
            client.on_disconnect()


class FakeBleClient:
    """:class:`BleClient` for a :class:`FakePeripheral`."""

    def __init__(
        self, peripheral: FakePeripheral, address: str, on_disconnect: Callable[[], None]
    ) -> None:
        self.peripheral = peripheral
        self.address = address
        self.on_disconnect = on_disconnect
        self.connected = False
        self.callbacks: dict[str, NotificationCallback] = {}

    async def connect(self) -> None:
        if not self.peripheral.in_range:
            raise ConnectionError(f"no Bluetooth device {self.address} in range")
        self.peripheral.connects += 1
        self.connected = True

    async def start_notify(self, characteristic: str, callback: NotificationCallback) -> None:
        if not self.connected:
            raise ConnectionError("not connected")
        if characteristic not in self.peripheral.characteristics:
            raise LookupError(characteristic)
        self.callbacks[characteristic] = callback

    async def disconnect(self) -> None:
        self.connected = False
        self.callbacks.clear()
