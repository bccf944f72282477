"""A serial pulse oximeter as a :class:`~kapmonitor.devices.reading.ReadingSource` (pyserial).

The port is read in a worker thread of its own (pyserial blocks), driven from the asyncio loop
the device layer runs in, never the GUI thread. Each Nonin-style line
(:mod:`kapmonitor.devices.nonin_serial`) becomes one batch for the sink: ``spo2`` and ``hr``.

Connection state (issue 13 item 4), reported to ``on_state`` on every change:

- ``disconnected``: the port cannot be opened or reading it failed (cable or USB adapter pulled,
  device node gone). The source closes it and tries again by itself, waiting 0.5 s, 1 s, 2 s ...
  up to ``backoff_max`` between attempts, and starts at 0.5 s again once data flows;
- ``connected``: a data line with values arrived;
- ``probe_off``: the oximeter sends ``---`` (no signal from the sensor);
- ``no_data``: the port is open but no data line has come for ``no_data_after`` seconds
  (oximeter switched off, wrong baud rate, a cable that carries nothing). Noise, the power-up
  header and torn lines are not data and do not keep the link "connected".

A gap in data is a gap: nothing is ever repeated or carried forward. Lines the oximeter sent while
the port was closed are lost (the port's input buffer is discarded when it is opened again, so a
stale line is never stamped with a fresh received time).

The port is opened exclusively (``flock``), so a second program reading the same port cannot
silently take half of the lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Protocol

from kapmonitor.devices.nonin_serial import parse_line, to_readings
from kapmonitor.devices.reading import ConnectionState, ReadingSink, StateSink, deliver

__all__ = ["SerialOximeterSource", "SerialPort"]

log = logging.getLogger(__name__)

#: A line longer than this without a newline is noise (a wrong baud rate reads as garbage with
#: few newlines): it is dropped so that no input can grow the buffer.
MAX_PENDING_BYTES = 512


class SerialPort(Protocol):
    """The part of ``serial.Serial`` the source uses (a test may pass its own opener)."""

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def close(self) -> None: ...


def _open_pyserial(port: str, baudrate: int, timeout: float) -> SerialPort:
    """Open ``port`` with pyserial: 8N1 (Nonin's 9th "mark" bit reads as a stop bit), exclusive."""
    import serial  # imported here: the app starts without pyserial if no serial device is used

    return serial.Serial(  # type: ignore[no-any-return]
        port,
        baudrate=baudrate,
        bytesize=serial.EIGHTBITS,
        parity=serial.PARITY_NONE,
        stopbits=serial.STOPBITS_ONE,
        timeout=timeout,
        exclusive=True,
    )


def _port_errors() -> tuple[type[BaseException], ...]:
    try:
        import serial
    except ImportError:  # pragma: no cover - pyserial is a dependency
        return (OSError,)
    return (OSError, serial.SerialException)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SerialOximeterSource:
    """Reads a Nonin-style oximeter on ``port`` (a device path such as ``/dev/ttyUSB0``,
    ``/dev/serial/by-id/...`` or ``COM3``) until :meth:`stop`."""

    def __init__(
        self,
        port: str,
        *,
        device_id: str | None = None,
        baudrate: int = 9600,
        no_data_after: float = 5.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 10.0,
        read_timeout: float = 0.2,
        open_port: Callable[[str, int, float], SerialPort] | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if no_data_after <= 0 or backoff_initial <= 0 or backoff_max < backoff_initial:
            raise ValueError("no_data_after and the backoff must be positive")
        self.port = port
        self.device_id = device_id or f"serial:{port}"
        self.baudrate = baudrate
        self.no_data_after = no_data_after
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.read_timeout = read_timeout
        self._open = open_port or _open_pyserial
        self._clock = clock
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._on_state: StateSink | None = None
        self.state = ConnectionState.DISCONNECTED
        # Counters for the Devices dialog and the tests (no clinical content).
        self.lines_read = 0
        self.lines_ignored = 0
        self.open_attempts = 0
        self.port_open = False  # open, whether or not data comes ("waiting for data")
        self.last_line_at: datetime | None = None
        # Why the port is not open, in plain words for the Devices dialog ("[Errno 13]
        # Permission denied: '/dev/ttyUSB0'"): pyserial's message, which holds no clinical data.
        self.last_error: str | None = None

    # --- ReadingSource ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask :meth:`run` to return (from any thread); it closes the port within a read timeout."""
        self._stopping.set()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    async def run(self, sink: ReadingSink, on_state: StateSink | None = None) -> None:
        """Open, read, deliver; on any port failure close, wait, open again, until stopped.

        A sink that raises ends the run with that error (after closing the port): a reading that
        could not be stored must not vanish behind a still-green indicator.
        """
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self._stopping.is_set():
            self._wake.set()
        self._on_state = on_state
        self._notify(ConnectionState.DISCONNECTED, force=True)
        stamp = self._clock().strftime("%Y%m%dT%H%M%S%f")
        sequence = 0
        delay = self.backoff_initial
        errors = _port_errors()
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kap-serial")
        try:
            while not self._stopping.is_set():
                self.open_attempts += 1
                try:
                    port = await self._loop.run_in_executor(
                        executor, self._open, self.port, self.baudrate, self.read_timeout
                    )
                except errors as exc:
                    self.last_error = str(exc) or type(exc).__name__
                    log.info("serial %s: cannot open (%s)", self.port, self.last_error)
                    self._notify(ConnectionState.DISCONNECTED)
                    await self._pause(delay)
                    delay = min(delay * 2, self.backoff_max)
                    continue
                self.port_open = True
                self.last_error = None
                try:
                    sequence, got_data = await self._read_port(
                        port, executor, sink, stamp, sequence
                    )
                finally:
                    await self._loop.run_in_executor(executor, _close_quietly, port)
                    self.port_open = False
                self._notify(ConnectionState.DISCONNECTED)
                if self._stopping.is_set():
                    break
                delay = self.backoff_initial if got_data else min(delay * 2, self.backoff_max)
                await self._pause(delay)
        finally:
            executor.shutdown(wait=False)
            self._notify(ConnectionState.DISCONNECTED)

    # --- Inside ----------------------------------------------------------------------------------

    async def _read_port(
        self,
        port: SerialPort,
        executor: ThreadPoolExecutor,
        sink: ReadingSink,
        stamp: str,
        sequence: int,
    ) -> tuple[int, bool]:
        """Read lines until the port fails or the source stops; returns the next sequence number
        and whether any data line came (which resets the reconnect backoff)."""
        assert self._loop is not None
        errors = _port_errors()
        pending = b""
        got_data = False
        opened = time.monotonic()
        last_data = opened
        while not self._stopping.is_set():
            try:
                chunk = await self._loop.run_in_executor(executor, _read_available, port)
            except errors as exc:
                self.last_error = str(exc) or type(exc).__name__
                log.info("serial %s: read failed (%s)", self.port, self.last_error)
                return sequence, got_data
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if len(pending) > MAX_PENDING_BYTES:
                self.lines_ignored += 1
                pending = b""
            for raw in lines:
                line = parse_line(raw)
                if line is None:
                    if raw.strip():
                        self.lines_ignored += 1
                    continue
                received = self._clock()
                sequence += 1
                readings = to_readings(
                    line,
                    device_id=self.device_id,
                    message_id=f"{stamp}-{sequence}",
                    received_at=received,
                )
                if readings:
                    await deliver(sink, readings)
                self.lines_read += 1
                self.last_line_at = received
                got_data = True
                last_data = time.monotonic()
                self._notify(
                    ConnectionState.PROBE_OFF if line.probe_off else ConnectionState.CONNECTED
                )
            if time.monotonic() - last_data >= self.no_data_after:
                self._notify(ConnectionState.NO_DATA)
        return sequence, got_data

    async def _pause(self, seconds: float) -> None:
        """Sleep before the next attempt, cut short by :meth:`stop`."""
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    def _notify(self, state: ConnectionState, *, force: bool = False) -> None:
        if state == self.state and not force:
            return
        self.state = state
        log.info("serial %s: %s", self.port, state.value)
        if self._on_state is not None:
            self._on_state(self.device_id, state)


def _read_available(port: SerialPort) -> bytes:
    """What the port has now, or after up to its read timeout (b"" when nothing came)."""
    waiting = port.in_waiting
    return port.read(waiting if waiting > 0 else 1)


def _close_quietly(port: Any) -> None:
    try:
        port.close()
    except Exception:  # closing a port whose device has gone may fail; it is closed either way
        log.debug("serial: close failed", exc_info=True)
