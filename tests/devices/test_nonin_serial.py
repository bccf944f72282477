"""Nonin-style ASCII lines: the documented forms parse, anything else is ignored, nothing raises,
and each line maps to registry readings with the reasons a value may not be trusted."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kapmonitor.devices.nonin_serial import (
    HR_RANGE,
    SPO2_RANGE,
    NoninLine,
    format_line,
    parse_line,
    to_readings,
)
from kapmonitor.devices.reading import ReadingFlag

NOW = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)


def readings(line: NoninLine):
    return to_readings(line, device_id="serial:/dev/ttyUSB0", message_id="m-1", received_at=NOW)


# The forms printed in Nonin's operator manuals (2500, 7500FO, 8500, 8600V, 9847, Avant 4000/9600).
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"SPO2=097 HR=072\r\n", NoninLine(97, 72)),
        ("SPO2=100 HR=045", NoninLine(100, 45)),
        ("SPO2=--- HR=---", NoninLine(None, None)),
        ("SPO2=097 HR=072 F", NoninLine(97, 72, fast=True)),
        ("SPO2=097 HR=072*", NoninLine(97, 72, event=True)),
        ("SPO2=--- HR=---*", NoninLine(None, None, event=True)),
        ("14:03:59 SPO2=093 HR=110", NoninLine(93, 110, clock=time(14, 3, 59))),
        ("14:03:59 SPO2=093 HR=110B", NoninLine(93, 110, clock=time(14, 3, 59), breath=True)),
        ("SPO2=088 HR=---", NoninLine(88, None)),
    ],
)
def test_documented_lines_parse(raw: str | bytes, expected: NoninLine) -> None:
    assert parse_line(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "\r\n",
        "NONIN 2500 FORMAT 1  27-NOV-26 14:03:00",  # a power-up header
        "9 HR=072",  # torn: the start of the line was lost
        "SPO2=097 HR=0",  # torn at the end... still a number: see test below
        "SPO2=97HR=72",
        "spo2=097 hr=072",
        "SPO2=0970 HR=072",
        "25:00:00 SPO2=097 HR=072",  # not a clock: corrupt
        "SPO2=097 HR=072 X",
        b"\xff\xfe\x00SPO2=097 HR=072",
        b"SPO2=097 HR=072" + b" " * 200,
    ],
)
def test_anything_else_is_not_a_reading(raw: str | bytes) -> None:
    line = parse_line(raw)
    if raw == "SPO2=097 HR=0":
        # A line cut inside the last field still matches the format: HR 0 is below what the
        # oximeter can show, so it arrives flagged, never as a plain value.
        assert line == NoninLine(97, 0)
        hr = next(r for r in readings(line) if r.vital == "hr")
        assert {ReadingFlag.OUT_OF_RANGE, ReadingFlag.ARTEFACT} <= hr.flags
        return
    assert line is None


@given(st.binary(max_size=120))
def test_no_bytes_make_the_parser_raise(raw: bytes) -> None:
    line = parse_line(raw)
    assert line is None or isinstance(line, NoninLine)


@given(st.text(max_size=120))
def test_no_text_makes_the_parser_raise(raw: str) -> None:
    line = parse_line(raw)
    assert line is None or isinstance(line, NoninLine)


values = st.one_of(st.none(), st.integers(min_value=0, max_value=999))


@given(
    spo2=values,
    hr=values,
    clock=st.one_of(st.none(), st.times().map(lambda t: t.replace(microsecond=0))),
    fast=st.booleans(),
    event=st.booleans(),
    breath=st.booleans(),
)
def test_format_and_parse_round_trip(spo2, hr, clock, fast, event, breath) -> None:
    line = NoninLine(spo2, hr, clock=clock, fast=fast, event=event, breath=breath)
    text = format_line(line)
    assert parse_line(text) == line
    assert parse_line(text.encode("ascii") + b"\r\n") == line


@given(spo2=values, hr=values)
def test_readings_never_invent_a_value(spo2, hr) -> None:
    """Every reading's value is exactly what the line said; a missing value is never filled."""
    result = readings(NoninLine(spo2, hr))
    by_vital = {r.vital: r for r in result}
    if spo2 is None and hr is None:
        assert set(by_vital) == {"spo2", "hr"}
        assert all(r.value is None and r.flags == {ReadingFlag.PROBE_OFF} for r in result)
        return
    for vital, value, (low, high) in (("spo2", spo2, SPO2_RANGE), ("hr", hr, HR_RANGE)):
        if value is None:
            assert vital not in by_vital  # a gap, not the last value carried forward
            continue
        reading = by_vital[vital]
        assert reading.value == value
        if low <= value <= high:
            assert reading.flags == frozenset()
        else:
            assert reading.flags == {ReadingFlag.OUT_OF_RANGE, ReadingFlag.ARTEFACT}


def test_readings_carry_units_codes_and_provenance() -> None:
    spo2, hr = readings(NoninLine(96, 80))
    assert (spo2.vital, spo2.value, spo2.unit, spo2.code) == ("spo2", 96.0, "%", "NONIN-ASCII:SPO2")
    assert (hr.vital, hr.value, hr.unit, hr.code) == ("hr", 80.0, "/min", "NONIN-ASCII:HR")
    for reading in (spo2, hr):
        assert reading.source == "serial"
        assert reading.device_id == "serial:/dev/ttyUSB0"
        assert reading.message_id == "m-1"
        assert reading.received_at == NOW
        assert reading.observed_at is None  # the device clock has no date or zone


def test_the_device_clock_is_kept_but_not_used_as_observed_time() -> None:
    line = parse_line("23:59:59 SPO2=097 HR=072")
    assert line is not None and line.clock == time(23, 59, 59)
    assert all(r.observed_at is None for r in readings(line))
