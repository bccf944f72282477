"""GATT measurement parsing, checked against byte strings built by hand from the specifications.

References (cited by section title; the GSS renumbers its sections between releases):
- IEEE 11073-20601, Annex F.8 "SFLOAT-Type": 4-bit exponent, 12-bit mantissa, both two's
  complement; special values NaN 0x07FF, NRes 0x0800, +INF 0x07FE, -INF 0x0802, reserved 0x0801.
- Bluetooth GATT Specification Supplement (GSS): "PLX Spot-check Measurement" (0x2A5E),
  "PLX Continuous Measurement" (0x2A5F), "Blood Pressure Measurement" (0x2A35), "Date Time"
  (0x2A08); all multi-byte fields little-endian.
The bytes are written out literally (not produced by the code under test) so that a misreading
of the specification in the parser cannot be mirrored by the test.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kapmonitor.devices.ble_gatt import (
    KPA_TO_MMHG,
    BpStatus,
    DeviceSensorStatus,
    GattParseError,
    MeasurementStatus,
    SFloat,
    bp_readings,
    encode_sfloat,
    parse_blood_pressure,
    parse_date_time,
    parse_plx_continuous,
    parse_plx_spot_check,
    parse_sfloat,
    plx_readings,
    uuid16,
)
from kapmonitor.devices.reading import ReadingFlag

NOW = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)
META = {"device_id": "ble:AA", "message_id": "n-1", "received_at": NOW}

# SFLOATs used below, little-endian on the wire:
SPO2_97 = bytes([0x61, 0x00])  # mantissa 97, exponent 0
PR_72 = bytes([0x48, 0x00])  # 72
SPO2_98_5 = bytes([0xD9, 0xF3])  # 0xF3D9: exponent -1, mantissa 985 -> 98.5
PR_110 = bytes([0x6E, 0x00])  # 110
SPO2_90 = bytes([0x5A, 0x00])  # 90
PR_60 = bytes([0x3C, 0x00])  # 60
NAN = bytes([0xFF, 0x07])  # 0x07FF
PAI_2_5 = bytes([0x19, 0xF0])  # 0xF019: exponent -1, mantissa 25 -> 2.5
# GSS "Date Time": year 2026 (0x07EA), month 11, day 27, 21:45:30
STAMP = bytes([0xEA, 0x07, 0x0B, 0x1B, 0x15, 0x2D, 0x1E])
STAMP_DT = datetime(2026, 11, 27, 21, 45, 30)


# --- IEEE 11073-20601 F.8 SFLOAT ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (0x0000, 0.0),
        (0x0061, 97.0),
        (0xF3D9, 98.5),  # exponent -1 (0xF), mantissa 985
        (0xF3E8, 100.0),  # 1000 x 10^-1, not 100.00000000000001
        (0x0FFF, -1.0),  # mantissa 0xFFF = -1
        (0xE04D, 0.77),  # exponent -2, mantissa 77
        (0x1002, 20.0),  # exponent +1, mantissa 2
        (0x07FD, 2045.0),  # the largest ordinary mantissa
        (0x0803, -2045.0),  # the smallest
        (0x8001, 1e-8),  # exponent -8
        (0x7001, 1e7),  # exponent +7
    ],
)
def test_sfloat_numbers(raw: int, value: float) -> None:
    decoded = parse_sfloat(raw)
    assert decoded.special is None
    assert decoded.value == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize(
    ("raw", "special"),
    [
        (0x07FF, "nan"),
        (0x0800, "nres"),
        (0x07FE, "+inf"),
        (0x0802, "-inf"),
        (0x0801, "reserved"),
        # The special mantissas mean the same whatever the exponent nibble holds.
        (0xF7FF, "nan"),
        (0x37FE, "+inf"),
    ],
)
def test_sfloat_special_values_are_not_numbers(raw: int, special: str) -> None:
    assert parse_sfloat(raw) == SFloat(None, special)


@given(st.integers(min_value=0, max_value=0xFFFF))
def test_every_sfloat_decodes_to_a_finite_number_or_a_named_special(raw: int) -> None:
    decoded = parse_sfloat(raw)
    if decoded.special is None:
        assert decoded.value is not None
        assert abs(decoded.value) <= 2045 * 10**7
    else:
        assert decoded.value is None


@given(st.integers(min_value=-2045, max_value=2045), st.integers(min_value=-8, max_value=7))
def test_sfloat_encode_decode_round_trip(mantissa: int, exponent: int) -> None:
    value = mantissa * 10.0**exponent
    decoded = parse_sfloat(encode_sfloat(value, exponent))
    assert decoded.value == pytest.approx(value, rel=1e-9, abs=1e-12)


# --- GSS "Date Time" ---------------------------------------------------------------------------


def test_date_time() -> None:
    assert parse_date_time(STAMP) == STAMP_DT


@pytest.mark.parametrize("zeroed", [(0, 1), (2,), (3,)])  # year, month or day 0: "not known"
def test_date_time_unknown_fields_give_no_time(zeroed: tuple[int, ...]) -> None:
    data = bytearray(STAMP)
    for i in zeroed:
        data[i] = 0
    assert parse_date_time(bytes(data)) is None


@pytest.mark.parametrize(
    "data",
    [
        bytes([0xEA, 0x07, 0x0D, 0x1B, 0x15, 0x2D, 0x1E]),  # month 13
        bytes([0xEA, 0x07, 0x02, 0x1E, 0x15, 0x2D, 0x1E]),  # 30 February
        bytes([0xEA, 0x07, 0x0B, 0x1B, 0x18, 0x2D, 0x1E]),  # hour 24
        bytes([0x10, 0x00, 0x0B, 0x1B, 0x15, 0x2D, 0x1E]),  # year 16 (< 1582)
        STAMP[:6],
    ],
)
def test_date_time_that_is_not_a_date_is_refused(data: bytes) -> None:
    with pytest.raises(GattParseError):
        parse_date_time(data)


# --- GSS "PLX Continuous Measurement" (0x2A5F) ---------------------------------------------------

# Flags: bit 0 SpO2PR-Fast, bit 1 SpO2PR-Slow, bit 2 Measurement Status, bit 3 Device and Sensor
# Status, bit 4 Pulse Amplitude Index. Fields follow SpO2PR-Normal in that order.
FAST = SPO2_98_5 + PR_110
SLOW = SPO2_90 + PR_60
STATUS_VALIDATED = bytes([0x80, 0x00])  # bit 7 Validated Data
SENSOR_LOW_PERFUSION = bytes([0x20, 0x00, 0x00])  # bit 5 Low Perfusion Detected


@pytest.mark.parametrize("flags", range(32))
def test_plx_continuous_every_flag_combination(flags: int) -> None:
    data = bytes([flags]) + SPO2_97 + PR_72
    if flags & 0x01:
        data += FAST
    if flags & 0x02:
        data += SLOW
    if flags & 0x04:
        data += STATUS_VALIDATED
    if flags & 0x08:
        data += SENSOR_LOW_PERFUSION
    if flags & 0x10:
        data += PAI_2_5
    m = parse_plx_continuous(data)
    assert (m.spo2.value, m.pulse_rate.value) == (97.0, 72.0)
    assert (m.spo2_fast, m.pulse_rate_fast) == (
        (SFloat(98.5), SFloat(110.0)) if flags & 0x01 else (None, None)
    )
    assert (m.spo2_slow, m.pulse_rate_slow) == (
        (SFloat(90.0), SFloat(60.0)) if flags & 0x02 else (None, None)
    )
    assert m.measurement_status == (MeasurementStatus.VALIDATED_DATA if flags & 0x04 else None)
    assert m.sensor_status == (DeviceSensorStatus.LOW_PERFUSION if flags & 0x08 else None)
    assert m.pulse_amplitude_index == (SFloat(2.5) if flags & 0x10 else None)
    # Every field the flags announce must be there; a byte short is refused, not misread.
    with pytest.raises(GattParseError):
        parse_plx_continuous(data[:-1])
    with pytest.raises(GattParseError):
        parse_plx_continuous(data + b"\x00")


def test_plx_continuous_reserved_flag_bits_are_ignored() -> None:
    m = parse_plx_continuous(bytes([0xE0]) + SPO2_97 + PR_72)  # bits 5-7 set
    assert (m.spo2.value, m.pulse_rate.value, m.spo2_fast) == (97.0, 72.0, None)


def test_plx_continuous_readings() -> None:
    spo2, hr = plx_readings(parse_plx_continuous(bytes([0x00]) + SPO2_97 + PR_72), **META)
    assert (spo2.vital, spo2.value, spo2.unit, spo2.flags) == ("spo2", 97.0, "%", frozenset())
    assert (hr.vital, hr.value, hr.unit, hr.flags) == ("hr", 72.0, "/min", frozenset())
    assert spo2.source == "ble" and spo2.code == "GATT:2A5F:SpO2"


@pytest.mark.parametrize("bit", range(16))
def test_device_and_sensor_status_bits(bit: int) -> None:
    """GSS "PLX Continuous Measurement", Device and Sensor Status (24 bits, 16-23 reserved):
    each defined bit maps to probe off, artefact, or nothing."""
    sensor = (1 << bit).to_bytes(3, "little")
    m = parse_plx_continuous(bytes([0x08]) + SPO2_97 + PR_72 + sensor)
    assert m.sensor_status == DeviceSensorStatus(1 << bit)
    spo2, _ = plx_readings(m, **META)
    probe_off = {11, 13, 15}  # Sensor Unconnected to User, Sensor Displaced, Sensor Disconnected
    quiet = {0, 9}  # Extended Display Update Ongoing, Signal Analysis Ongoing
    if bit in probe_off:
        assert spo2.flags == {ReadingFlag.PROBE_OFF}
    elif bit in quiet:
        assert spo2.flags == frozenset()
    else:
        assert spo2.flags == {ReadingFlag.ARTEFACT}
    assert spo2.value == 97.0  # a flagged number is kept, never dropped


def test_device_and_sensor_status_reserved_bits_read_but_unflagged() -> None:
    m = parse_plx_continuous(bytes([0x08]) + SPO2_97 + PR_72 + bytes([0x00, 0x00, 0xFF]))
    assert int(m.sensor_status) == 0xFF0000
    assert plx_readings(m, **META)[0].flags == frozenset()


@pytest.mark.parametrize("bit", range(5, 16))
def test_measurement_status_bits(bit: int) -> None:
    """GSS Measurement Status (16 bits; 0-4 reserved)."""
    status = (1 << bit).to_bytes(2, "little")
    m = parse_plx_continuous(bytes([0x04]) + SPO2_97 + PR_72 + status)
    assert m.measurement_status == MeasurementStatus(1 << bit)
    flags = plx_readings(m, **META)[0].flags
    expected = {
        5: {ReadingFlag.PRELIMINARY},  # Measurement Ongoing
        6: {ReadingFlag.PRELIMINARY},  # Early Estimated Data
        7: set(),  # Validated Data
        8: set(),  # Fully Qualified Data
        9: set(),  # Data from Measurement Storage
        10: {ReadingFlag.ARTEFACT},  # Data for Demonstration: not this patient's
        11: {ReadingFlag.ARTEFACT},  # Data for Testing
        12: {ReadingFlag.ARTEFACT},  # Calibration Ongoing
        13: {ReadingFlag.ARTEFACT},  # Measurement Unavailable
        14: {ReadingFlag.ARTEFACT},  # Questionable Measurement Detected
        15: {ReadingFlag.ARTEFACT},  # Invalid Measurement Detected
    }[bit]
    assert flags == expected


def test_probe_off_with_nan_values() -> None:
    """What an oximeter sends with the finger out: NaN values, Sensor Unconnected to User."""
    data = bytes([0x08]) + NAN + NAN + bytes([0x00, 0x08, 0x00])  # bit 11
    spo2, hr = plx_readings(parse_plx_continuous(data), **META)
    assert spo2.value is None and hr.value is None
    assert spo2.flags == hr.flags == {ReadingFlag.PROBE_OFF}


@pytest.mark.parametrize(
    ("raw", "flag"),
    [
        (bytes([0xFF, 0x07]), ReadingFlag.ARTEFACT),  # NaN
        (bytes([0x00, 0x08]), ReadingFlag.ARTEFACT),  # NRes
        (bytes([0x01, 0x08]), ReadingFlag.ARTEFACT),  # reserved
        (bytes([0xFE, 0x07]), ReadingFlag.OUT_OF_RANGE),  # +INF
        (bytes([0x02, 0x08]), ReadingFlag.OUT_OF_RANGE),  # -INF
    ],
)
def test_special_values_become_valueless_readings_that_say_why(raw: bytes, flag) -> None:
    spo2, hr = plx_readings(parse_plx_continuous(bytes([0x00]) + raw + PR_72), **META)
    assert spo2.value is None and spo2.flags == {flag}
    assert hr.value == 72.0 and hr.flags == frozenset()


# --- GSS "PLX Spot-check Measurement" (0x2A5E) ---------------------------------------------------

# Flags: bit 0 Timestamp, bit 1 Measurement Status, bit 2 Device and Sensor Status, bit 3 Pulse
# Amplitude Index, bit 4 Device Clock is Not Set.


@pytest.mark.parametrize("flags", range(32))
def test_plx_spot_check_every_flag_combination(flags: int) -> None:
    data = bytes([flags]) + SPO2_97 + PR_72
    if flags & 0x01:
        data += STAMP
    if flags & 0x02:
        data += STATUS_VALIDATED
    if flags & 0x04:
        data += SENSOR_LOW_PERFUSION
    if flags & 0x08:
        data += PAI_2_5
    m = parse_plx_spot_check(data)
    assert (m.spo2.value, m.pulse_rate.value) == (97.0, 72.0)
    assert m.clock_not_set == bool(flags & 0x10)
    # With the device clock not set, a time stamp is not a time.
    assert m.timestamp == (STAMP_DT if flags & 0x01 and not flags & 0x10 else None)
    assert m.measurement_status == (MeasurementStatus.VALIDATED_DATA if flags & 0x02 else None)
    assert m.sensor_status == (DeviceSensorStatus.LOW_PERFUSION if flags & 0x04 else None)
    assert m.pulse_amplitude_index == (SFloat(2.5) if flags & 0x08 else None)
    with pytest.raises(GattParseError):
        parse_plx_spot_check(data[:-1])
    with pytest.raises(GattParseError):
        parse_plx_spot_check(data + b"\x00")


def test_plx_spot_check_readings_carry_the_observed_time() -> None:
    m = parse_plx_spot_check(bytes([0x01]) + SPO2_97 + PR_72 + STAMP)
    observed = STAMP_DT.replace(tzinfo=UTC)
    spo2, hr = plx_readings(m, observed_at=observed, **META)
    assert spo2.observed_at == hr.observed_at == observed
    assert spo2.code == "GATT:2A5E:SpO2"


# --- GSS "Blood Pressure Measurement" (0x2A35) -------------------------------------------------

# Flags: bit 0 units (0 mmHg, 1 kPa), bit 1 Time Stamp, bit 2 Pulse Rate, bit 3 User ID, bit 4
# Measurement Status. Systolic, Diastolic, MAP (SFLOAT) always; then the flagged fields in order.
SYS_120, DIA_80, MAP_93 = bytes([0x78, 0x00]), bytes([0x50, 0x00]), bytes([0x5D, 0x00])
# kPa with one decimal (exponent -1): 16.0, 10.7, 12.4
SYS_16K, DIA_10_7K, MAP_12_4K = bytes([0xA0, 0xF0]), bytes([0x6B, 0xF0]), bytes([0x7C, 0xF0])
USER_3 = bytes([0x03])
BP_STATUS_MOVEMENT = bytes([0x01, 0x00])


@pytest.mark.parametrize("flags", range(32))
def test_blood_pressure_every_flag_combination(flags: int) -> None:
    kpa = bool(flags & 0x01)
    data = bytes([flags]) + (SYS_16K + DIA_10_7K + MAP_12_4K if kpa else SYS_120 + DIA_80 + MAP_93)
    if flags & 0x02:
        data += STAMP
    if flags & 0x04:
        data += PR_72
    if flags & 0x08:
        data += USER_3
    if flags & 0x10:
        data += BP_STATUS_MOVEMENT
    m = parse_blood_pressure(data)
    if kpa:
        assert m.unit_sent == "kPa"
        assert m.systolic.value == pytest.approx(16.0 * KPA_TO_MMHG, abs=0.05)  # 120.0
        assert m.diastolic.value == pytest.approx(10.7 * KPA_TO_MMHG, abs=0.05)  # 80.3
        assert m.mean_arterial.value == pytest.approx(12.4 * KPA_TO_MMHG, abs=0.05)
    else:
        assert m.unit_sent == "mmHg"
        assert (m.systolic.value, m.diastolic.value, m.mean_arterial.value) == (120, 80, 93)
    assert m.timestamp == (STAMP_DT if flags & 0x02 else None)
    assert m.pulse_rate == (SFloat(72.0) if flags & 0x04 else None)
    assert m.user_id == (3 if flags & 0x08 else None)
    assert m.status == (BpStatus.BODY_MOVEMENT if flags & 0x10 else None)
    with pytest.raises(GattParseError):
        parse_blood_pressure(data[:-1])
    with pytest.raises(GattParseError):
        parse_blood_pressure(data + b"\x00")


def test_kpa_is_converted_to_mmhg_and_the_unit_sent_is_kept() -> None:
    sbp, dbp = bp_readings(
        parse_blood_pressure(bytes([0x01]) + SYS_16K + DIA_10_7K + MAP_12_4K), **META
    )
    assert sbp.vital == "sbp" and sbp.value == pytest.approx(120.0, abs=0.05)
    assert dbp.vital == "dbp" and dbp.value == pytest.approx(80.3, abs=0.05)
    assert sbp.unit == dbp.unit == "kPa"  # what the cuff sent, for the audit of the conversion


def test_blood_pressure_readings_with_pulse_rate() -> None:
    data = bytes([0x04]) + SYS_120 + DIA_80 + MAP_93 + PR_72
    sbp, dbp, hr = bp_readings(parse_blood_pressure(data), **META)
    assert [(r.vital, r.value, r.unit) for r in (sbp, dbp, hr)] == [
        ("sbp", 120.0, "mmHg"),
        ("dbp", 80.0, "mmHg"),
        ("hr", 72.0, "/min"),
    ]
    assert hr.code == "GATT:2A35:PulseRate"


@pytest.mark.parametrize(
    ("status", "pressure_flags", "hr_flags"),
    [
        (0x0001, {ReadingFlag.ARTEFACT}, {ReadingFlag.ARTEFACT}),  # body movement
        (0x0002, {ReadingFlag.ARTEFACT}, {ReadingFlag.ARTEFACT}),  # cuff too loose
        (0x0004, set(), set()),  # irregular pulse: a finding, not an artefact
        (0x0008, set(), {ReadingFlag.OUT_OF_RANGE}),  # pulse rate above the upper limit
        (0x0010, set(), {ReadingFlag.OUT_OF_RANGE}),  # pulse rate below the lower limit
        (0x0018, set(), set()),  # range value 3: reserved
        (0x0020, {ReadingFlag.ARTEFACT}, {ReadingFlag.ARTEFACT}),  # improper position
        (0xFFC0, set(), set()),  # reserved bits only
    ],
)
def test_blood_pressure_measurement_status(status: int, pressure_flags, hr_flags) -> None:
    data = bytes([0x14]) + SYS_120 + DIA_80 + MAP_93 + PR_72 + status.to_bytes(2, "little")
    sbp, dbp, hr = bp_readings(parse_blood_pressure(data), **META)
    assert sbp.flags == dbp.flags == pressure_flags
    assert hr.flags == hr_flags
    assert (sbp.value, dbp.value, hr.value) == (120.0, 80.0, 72.0)


def test_blood_pressure_with_newer_flag_bits_is_refused_not_misread() -> None:
    """BLS 1.1 bits 5-6 add fields this parser does not read: refuse rather than shift."""
    with pytest.raises(GattParseError):
        parse_blood_pressure(bytes([0x20]) + SYS_120 + DIA_80 + MAP_93 + bytes([0x01]))


@given(st.binary(max_size=40))
def test_no_bytes_make_a_parser_fail_other_than_by_refusing(data: bytes) -> None:
    """Whatever a device sends: a refusal, or readings that each have a value or say why not."""
    for parse, to_readings in (
        (parse_plx_continuous, plx_readings),
        (parse_plx_spot_check, plx_readings),
        (parse_blood_pressure, bp_readings),
    ):
        with contextlib.suppress(GattParseError):
            for reading in to_readings(parse(data), **META):
                assert reading.value is not None or reading.flags


@pytest.mark.parametrize("status_bit", [5, 6])  # Measurement Ongoing, Early Estimated Data
def test_a_preliminary_nan_is_still_flagged_artefact(status_bit: int) -> None:
    status = (1 << status_bit).to_bytes(2, "little")
    spo2, _ = plx_readings(parse_plx_continuous(bytes([0x04]) + NAN + PR_72 + status), **META)
    assert spo2.value is None
    assert spo2.flags == {ReadingFlag.PRELIMINARY, ReadingFlag.ARTEFACT}


def test_uuids() -> None:
    assert uuid16(0x2A5F) == "00002a5f-0000-1000-8000-00805f9b34fb"
    assert [uuid16(n)[4:8] for n in (0x1822, 0x2A5E, 0x1810, 0x2A35)] == [
        "1822",
        "2a5e",
        "1810",
        "2a35",
    ]
