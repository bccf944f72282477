"""Nonin-style ASCII oximeter lines: ``SPO2=097 HR=072``, once a second at 9600 baud.

What the format is, from Nonin's operator manuals (real-time serial output of the 2500 PalmSAT,
7500FO, 8500, 8600V, 9847, Avant 4000/9600; docs/devices.md lists them):

- one line a second, ASCII, 9600 baud, 8 data bits, no parity (the 9th bit some models send is
  always "mark" in real-time mode, so 8N1/8N2 both read it), each line ended by CR LF;
- ``SPO2=XXX HR=YYY``: three digits each (``097``, ``072``);
- ``SPO2=--- HR=---`` when the oximeter has no data (the sensor is off the finger, unplugged, or
  has not yet found a pulse);
- optional ``HH:MM:SS`` device-clock prefix (9847, 8600V);
- optional suffixes: `` F`` (fast-responding values, DIP switch 8 up on the Avant), ``*`` (the
  event-marker button), ``B`` (a breath detected in the interval, 9847);
- a header at power-up naming the format, date and time (its layout is not documented: any line
  that is not a data line is ignored, never guessed at).

What the format does NOT carry, and how this module deals with it:

- no artefact or perfusion flag (Nonin's binary formats #2/#7 have them; the ASCII one does not).
  A value the device cannot display (SpO₂ above 100 %, pulse rate outside 18-321 /min, Nonin's
  stated range) can only be a corrupted line: it is kept, flagged ``out_of_range`` and
  ``artefact``, never silently dropped and never charted as if true. Motion artefact inside the
  range is indistinguishable from a true value here: that is why device values arrive pending and
  a clinician confirms or marks them.
- ``---`` does not say *why* there is no data. When both values are ``---`` the reading is
  flagged ``probe_off`` (the common cause, and what the bedside must see); when only one is
  ``---`` that vital simply has no reading for that second: a gap, never the last value carried
  forward.
- the ``HH:MM:SS`` prefix is a device clock without a date or time zone, usually unset: it is
  kept on the parsed line but not used as the observed time.

Pure functions, no I/O: :mod:`kapmonitor.devices.serial_source` reads the port.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time

from kapmonitor.devices.reading import DeviceReading, ReadingFlag

__all__ = [
    "HR_RANGE",
    "SPO2_RANGE",
    "NoninLine",
    "format_line",
    "parse_line",
    "to_readings",
]

#: What a Nonin oximeter can display (operator-manual specifications): anything outside is
#: corruption of the line, not physiology.
SPO2_RANGE = (0, 100)
HR_RANGE = (18, 321)

#: Codes recorded with each reading (``DeviceReading.code``): the field name on the line.
SPO2_CODE = "NONIN-ASCII:SPO2"
HR_CODE = "NONIN-ASCII:HR"

# The longest data line the format can produce is 33 characters; anything far longer is not a
# data line (and is not worth a regular expression's time).
MAX_LINE_CHARS = 80

_LINE = re.compile(
    r"""
    (?:(?P<hh>\d{2}):(?P<mm>\d{2}):(?P<ss>\d{2})[ ]+)?   # optional device clock
    SPO2=(?P<spo2>\d{1,3}|---)[ ]+
    HR=(?P<hr>\d{1,3}|---)
    (?P<suffix>[ FB*]*)                                  # fast / breath / event marker
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class NoninLine:
    """One parsed data line. ``None`` for a value the device sent as ``---``."""

    spo2: int | None
    hr: int | None
    clock: time | None = None  # the device's HH:MM:SS, if it printed one (not trusted as time)
    fast: bool = False  # "F": fast-responding values
    event: bool = False  # "*": the event-marker button was pressed
    breath: bool = False  # "B": a breath was detected in the interval

    @property
    def probe_off(self) -> bool:
        """Both values missing: the oximeter has no signal (sensor off, unplugged, searching)."""
        return self.spo2 is None and self.hr is None

    @property
    def spo2_out_of_range(self) -> bool:
        return self.spo2 is not None and not SPO2_RANGE[0] <= self.spo2 <= SPO2_RANGE[1]

    @property
    def hr_out_of_range(self) -> bool:
        return self.hr is not None and not HR_RANGE[0] <= self.hr <= HR_RANGE[1]


def parse_line(raw: str | bytes) -> NoninLine | None:
    """The data line in ``raw``, or None for anything else (header, blank, noise, a torn line).

    Never raises on any input: a serial line is whatever the wire delivered, including bytes
    that are not ASCII after a framing error. Trailing CR/LF and surrounding blanks are ignored.
    """
    if isinstance(raw, bytes | bytearray):
        if len(raw) > MAX_LINE_CHARS:
            return None
        text = raw.decode("ascii", errors="replace")
    else:
        text = raw
    text = text.strip(" \r\n")
    if len(text) > MAX_LINE_CHARS:
        return None
    match = _LINE.fullmatch(text)
    if match is None:
        return None
    clock = None
    if match["hh"] is not None:
        hh, mm, ss = int(match["hh"]), int(match["mm"]), int(match["ss"])
        if hh > 23 or mm > 59 or ss > 59:
            return None  # not a clock: the line is corrupt, not a reading
        clock = time(hh, mm, ss)
    suffix = match["suffix"]
    return NoninLine(
        spo2=None if match["spo2"] == "---" else int(match["spo2"]),
        hr=None if match["hr"] == "---" else int(match["hr"]),
        clock=clock,
        fast="F" in suffix,
        event="*" in suffix,
        breath="B" in suffix,
    )


def format_line(line: NoninLine) -> str:
    """The line as the oximeter prints it (without CR LF): the simulator's and the tests' writer."""
    spo2 = "---" if line.spo2 is None else f"{line.spo2:03d}"
    hr = "---" if line.hr is None else f"{line.hr:03d}"
    text = f"SPO2={spo2} HR={hr}"
    if line.clock is not None:
        text = f"{line.clock:%H:%M:%S} {text}"
    if line.fast:
        text += " F"
    if line.event:
        text += "*"
    if line.breath:
        text += "B"
    return text


def to_readings(
    line: NoninLine,
    *,
    device_id: str,
    message_id: str,
    received_at: datetime,
    source: str = "serial",
) -> Sequence[DeviceReading]:
    """The registry readings one line stands for (``spo2`` and ``hr``, units ``%`` and ``/min``).

    Probe off gives one value-less reading per vital flagged ``probe_off`` (so the record shows
    the gap was the sensor, not the link); a single ``---`` gives no reading for that vital; an
    undisplayable value is kept, flagged ``out_of_range`` and ``artefact``.
    """
    common = {
        "device_id": device_id,
        "source": source,
        "message_id": message_id,
        "received_at": received_at,
        "observed_at": None,
    }
    if line.probe_off:
        return (
            DeviceReading(vital="spo2", value=None, unit="%", code=SPO2_CODE,
                          flags=frozenset({ReadingFlag.PROBE_OFF}), **common),
            DeviceReading(vital="hr", value=None, unit="/min", code=HR_CODE,
                          flags=frozenset({ReadingFlag.PROBE_OFF}), **common),
        )  # fmt: skip
    bad = frozenset({ReadingFlag.OUT_OF_RANGE, ReadingFlag.ARTEFACT})
    readings = []
    if line.spo2 is not None:
        flags = bad if line.spo2_out_of_range else frozenset()
        readings.append(
            DeviceReading(vital="spo2", value=float(line.spo2), unit="%", code=SPO2_CODE,
                          flags=flags, **common)
        )  # fmt: skip
    if line.hr is not None:
        flags = bad if line.hr_out_of_range else frozenset()
        readings.append(
            DeviceReading(vital="hr", value=float(line.hr), unit="/min", code=HR_CODE,
                          flags=flags, **common)
        )  # fmt: skip
    return tuple(readings)
