"""How long the bedside window may sit without input before it locks: the clinic's rule.

The lock protects the record (HIPAA automatic logoff), but a lock that falls due at every vitals
check makes a clinician type a password at every reading. So the clinic's setting is either
"automatic" (the running protocol's shortest check interval plus a margin) or an explicit
number of minutes that must be longer than the shortest interval of every protocol the clinic
can run; 0 turns the lock off. Pure rules, no Qt and no database: the store keeps the setting,
the window applies it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from kapmonitor.domain.protocol import Protocol

# "Automatic" = the protocol's shortest check interval plus this: a reading taken on time resets
# the idle time before the lock falls due.
AUTO_MARGIN_MINUTES = 5
# A session without a protocol (typed in a demo, or from before protocols) has no interval to go
# by: lock after this many minutes without input.
NO_PROTOCOL_MINUTES = 15
MAX_MINUTES = 240  # a session lasts at most a few hours; longer is a typing slip


@dataclass(frozen=True)
class IdleLock:
    """The lock in force for one session: ``minutes`` (0 = never) and why, in words."""

    minutes: int
    explanation: str


def shortest_interval(protocol: Protocol | None) -> float | None:
    """The shortest "vitals every N min" of the protocol's schedule, None without one."""
    if protocol is None or not protocol.intervals:
        return None
    return min(i.every_minutes for i in protocol.intervals)


def automatic_minutes(protocol: Protocol | None) -> int:
    """Shortest check interval + the margin, in whole minutes; a fixed value without one."""
    shortest = shortest_interval(protocol)
    if shortest is None:
        return NO_PROTOCOL_MINUTES
    return math.ceil(shortest) + AUTO_MARGIN_MINUTES


def refusal(minutes: int | None, protocols: Iterable[Protocol]) -> str | None:
    """Why an administrator's setting cannot be kept, or None when it can.

    ``None`` (automatic) and 0 (never) are always accepted; any other value must be longer
    than the shortest check interval of every protocol the clinic can run, or the lock would
    fall due between two readings taken on time.
    """
    if minutes is None or minutes == 0:
        return None
    if minutes < 0 or minutes > MAX_MINUTES:
        return f"The idle lock must be between 1 and {MAX_MINUTES} minutes (0 = never)"
    # The protocol whose shortest interval is longest binds: the value must clear each of them.
    binding: tuple[float, str] | None = None
    for protocol in protocols:
        every = shortest_interval(protocol)
        if every is not None and (binding is None or every > binding[0]):
            binding = (every, protocol.name)
    if binding is not None and minutes <= binding[0]:
        every, name = binding
        return (
            f"{minutes} min is not longer than the shortest check interval ({every:g} min, "
            f"“{name}”): the window would lock between checks taken on time. Choose more "
            f"than {every:g} min, or Automatic."
        )
    return None


def lock_in_force(setting: int | None, protocol: Protocol | None) -> IdleLock:
    """The lock for a session running ``protocol`` under the clinic's ``setting``.

    A setting that a protocol added later undercuts (at or below its shortest interval) is
    raised to the automatic value, and the explanation says so.
    """
    automatic = automatic_minutes(protocol)
    shortest = shortest_interval(protocol)
    if setting is None:
        if shortest is None:
            return IdleLock(automatic, f"automatic: {automatic} min (no protocol schedule)")
        return IdleLock(
            automatic,
            f"automatic: {automatic} min (checks every {shortest:g} min + "
            f"{AUTO_MARGIN_MINUTES} min)",
        )
    if setting <= 0:
        return IdleLock(0, "never (turned off by the administrator)")
    if shortest is not None and setting <= shortest:
        return IdleLock(
            automatic,
            f"{automatic} min: the clinic's {setting} min is not longer than this protocol's "
            f"{shortest:g}-min checks, so the automatic value applies",
        )
    return IdleLock(setting, f"{setting} min (clinic setting)")
