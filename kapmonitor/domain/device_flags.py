"""Which device flags keep a reading from being confirmed, and how each is said (issue 13).

A monitor says more about a value than the number: the probe is off, the value is an artefact
(motion, low perfusion), it is preliminary, it is outside the measuring range
(:class:`kapmonitor.devices.reading.ReadingFlag`; stored as a JSON list in
``device_readings.flags``). A value the device itself doubts must never become part of the record
by one keystroke meant for the values that look right: the confirm key (F) leaves such a reading
out, the window shows it in its own look (a lighter cross on the chart, the flag in words under
the big number), and the artefact key (M) can mark it. The store refuses to confirm it too
(:func:`kapmonitor.store.device_store.confirm_device_readings`), so no other path does.

A *corrected* value (HL7 OBX-11 "C") is the device's own final word replacing an earlier one, so
it is not held back here. The names are plain strings (the domain does not import the device
layer); a test checks they are :class:`ReadingFlag` values.
"""

from __future__ import annotations

import json

__all__ = ["BLOCKING_FLAGS", "blocking_flags", "flag_caption"]

#: Flags that keep a reading out of a clinician's confirmation, with the words the window says.
BLOCKING_FLAGS: dict[str, str] = {
    "probe_off": "probe off",
    "artefact": "device: artefact",
    "preliminary": "device: preliminary",
    "out_of_range": "device: out of range",
}


def blocking_flags(flags: str | None) -> tuple[str, ...]:
    """The blocking flags of a stored ``flags`` column (a JSON list; an unreadable one counts
    as doubted by the device, since nobody can say it was not flagged)."""
    if not flags or flags == "[]":
        return ()
    try:
        names = json.loads(flags)
    except ValueError:
        return ("artefact",)
    if not isinstance(names, list):
        return ("artefact",)
    return tuple(str(name) for name in names if str(name) in BLOCKING_FLAGS)


def flag_caption(flags: tuple[str, ...]) -> str:
    """ "probe off" / "device: artefact": the first blocking flag in words (probe off first)."""
    for name in BLOCKING_FLAGS:
        if name in flags:
            return BLOCKING_FLAGS[name]
    return ""
