"""The device sources' one shape and checks (settings file, dialog, feed), without Qt."""

from __future__ import annotations

import errno

import pytest

from kapmonitor.devices import mllp_listener
from kapmonitor.devices.source_config import (
    MATCH_KINDS,
    SourceConfig,
    bind_problem,
    load_sources,
    session_rule,
)
from kapmonitor.domain.validation import ValidationError


def test_the_match_kinds_are_the_listeners() -> None:
    assert set(MATCH_KINDS) == set(mllp_listener.MATCH_KINDS)


def test_a_damaged_settings_list_keeps_the_good_entries_and_names_the_rest() -> None:
    sources, problems = load_sources(
        [
            {"kind": "mllp", "host": "127.0.0.1", "port": 2575},
            "not a dict",
            {"kind": "mllp", "port": 99999},
            {"kind": "mllp", "host": "127.0.0.1", "port": "2575"},  # the same source again
            {"kind": "serial", "device": ""},
            {"kind": "ble", "device": "00:1C:05:AB:12:34"},
            {"kind": "telepathy"},
            {"kind": "mllp", "port": "abc"},
        ]
    )
    assert [s.key for s in sources] == ["mllp 127.0.0.1:2575", "ble 00:1C:05:AB:12:34"]
    assert problems == [
        "device source 2: not a device source",
        "device source 3: Port 99999: use 1–65535",
        "device source 4: mllp 127.0.0.1:2575 is listed twice",
        "device source 5: Serial port: e.g. /dev/ttyUSB0 or COM3",
        "device source 7: unknown kind of source 'telepathy'",
        "device source 8: not a device source",
    ]


def test_each_field_is_refused_by_name() -> None:
    with pytest.raises(ValidationError) as refused:
        SourceConfig("mllp", host="bad host!", port=70000, match="bed", match_value=" ")
    assert [e.field for e in refused.value.errors] == ["host", "port", "match_value"]
    with pytest.raises(ValidationError, match="Bluetooth address"):
        SourceConfig("ble", device="not-an-address")
    assert SourceConfig.from_dict(SourceConfig("serial", device="COM3").to_dict()).key == (
        "serial COM3"
    )


def test_the_session_rule_uses_the_patient_code_unless_a_bed_or_device_is_set() -> None:
    assert session_rule(SourceConfig("mllp"), "KAP-7") == mllp_listener.PatientRule(
        "patient_id", "KAP-7"
    )
    bed = SourceConfig("mllp", match="bed", match_value="BED-3")
    assert session_rule(bed, "KAP-7") == mllp_listener.PatientRule("bed", "BED-3")


def test_bind_problems_are_plain_words() -> None:
    in_use = bind_problem(OSError(errno.EADDRINUSE, "Address already in use"), "127.0.0.1", 2575)
    assert in_use == "port 2575 is already in use by another program (or another KAP Monitor)"
    denied = bind_problem(OSError(errno.EACCES, "Permission denied"), "0.0.0.0", 104)
    assert "ports below 1024 need an administrator" in denied
    assert "no address 10.9.9.9" in bind_problem(
        OSError(errno.EADDRNOTAVAIL, "x"), "10.9.9.9", 2575
    )
