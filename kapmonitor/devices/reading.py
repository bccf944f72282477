"""A device reading, and the one interface every source of readings implements.

Why one small interface: the MLLP/HL7 listener, the serial oximeter and the Bluetooth adapter all
end in the same place (a pending reading in the store), so the store side is written once against
:class:`ReadingSink` and each adapter is a :class:`ReadingSource`. A reading is not yet a clinical
record: it is stored *pending* until a clinician confirms it (issue 13), so it keeps everything
needed to judge it later: which device, over what, which message, when it arrived, when the device
says it was observed, and the flags the device raised (probe off, artefact).

Delivery is by batch: one device message (one HL7 ORU^R01, one serial line, one GATT notification)
is one call of the sink, stored in one transaction, and acknowledged only after the sink returns.
The sink returning is the promise "durably stored"; raising means "not stored" and the source must
not acknowledge.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from kapmonitor.domain.vitals import VITAL_KEYS

__all__ = [
    "ConnectionState",
    "DeviceReading",
    "ReadingFlag",
    "ReadingSink",
    "ReadingSource",
    "StateSink",
    "deliver",
]


class ReadingFlag(StrEnum):
    """What the device said about a value besides the number (stored with it, never dropped)."""

    PROBE_OFF = "probe_off"  # sensor off the patient / no signal: value is None
    ARTEFACT = "artefact"  # the device marks the value as unreliable (motion, low perfusion)
    PRELIMINARY = "preliminary"  # HL7 OBX-11 "P": the device may still correct it
    CORRECTED = "corrected"  # HL7 OBX-11 "C": replaces an earlier value from the same device
    OUT_OF_RANGE = "out_of_range"  # outside the device's or the registry's measuring range


class ConnectionState(StrEnum):
    """A source's link to its device, for the connection indicator (issue 13 item 4)."""

    CONNECTED = "connected"
    NO_DATA = "no_data"  # connected but silent longer than the source's own limit
    PROBE_OFF = "probe_off"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True)
class DeviceReading:
    """One value of one registry vital sign, as a device reported it.

    ``vital`` is a key of :data:`kapmonitor.domain.vitals.VITAL_SIGNS` (checked here, so no
    adapter can invent a private vital). ``value`` is already in the registry's unit (conversion
    happens in the code map); ``unit`` is what the device sent, kept for the audit of that
    conversion. ``value`` is None only when a flag says why (probe off, artefact without value).
    Times are timezone-aware; ``observed_at`` is None when the device gave no time of its own.
    """

    device_id: str  # the device or gateway's own identity (MSH-3/4, serial port, BLE address)
    source: str  # "mllp", "serial", "ble"
    message_id: str  # MSH-10, a serial line counter, a notification counter: dedup key with device
    received_at: datetime
    observed_at: datetime | None
    vital: str
    value: float | None
    unit: str
    flags: frozenset[ReadingFlag] = field(default_factory=frozenset)
    code: str = ""  # the device's own code for the observation (e.g. "MDC:150456"), for the record

    def __post_init__(self) -> None:
        if self.vital not in VITAL_KEYS:
            raise ValueError(f"not a registry vital sign: {self.vital!r}")
        if self.received_at.tzinfo is None:
            raise ValueError("received_at must be timezone-aware")
        if self.observed_at is not None and self.observed_at.tzinfo is None:
            raise ValueError("observed_at must be timezone-aware")
        if self.value is None and not self.flags:
            raise ValueError("a reading without a value must say why (a flag)")

    @property
    def probe_off(self) -> bool:
        return ReadingFlag.PROBE_OFF in self.flags

    @property
    def artefact(self) -> bool:
        return ReadingFlag.ARTEFACT in self.flags


#: The store side: called once per device message with its readings; returns (or its awaitable
#: completes) only when they are durably stored. Raising means "not stored": no acknowledgement.
ReadingSink = Callable[[Sequence[DeviceReading]], Awaitable[None] | None]

#: Told when a device's connection state changes (device id, new state).
StateSink = Callable[[str, ConnectionState], None]


@runtime_checkable
class ReadingSource(Protocol):
    """A source of device readings, run on an asyncio loop (in a worker thread, never the GUI's).

    ``run`` delivers each device message's readings to ``sink`` (awaiting it: see :func:`deliver`)
    until ``stop`` is called or the source fails; ``stop`` may be called from any thread.
    """

    async def run(self, sink: ReadingSink, on_state: StateSink | None = None) -> None: ...

    def stop(self) -> None: ...


async def deliver(sink: ReadingSink, readings: Sequence[DeviceReading]) -> None:
    """Hand ``readings`` to ``sink`` and wait until it has stored them, sync or async alike.

    A plain (blocking) sink runs in the loop's default executor so a slow disk never stalls the
    other connections the loop is serving.
    """
    if inspect.iscoroutinefunction(sink):
        await sink(readings)
        return
    result = await asyncio.get_running_loop().run_in_executor(None, sink, readings)
    if inspect.isawaitable(result):
        await result
