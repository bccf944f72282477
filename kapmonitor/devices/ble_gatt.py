"""Bluetooth LE GATT measurements: Pulse Oximeter (0x1822) and Blood Pressure (0x1810) services.

Pure parsing of the characteristic values a device notifies or indicates, from the Bluetooth SIG
specifications (GATT Specification Supplement, "PLX Continuous Measurement", "PLX Spot-check
Measurement", "Blood Pressure Measurement", "Date Time"; Pulse Oximeter Service 1.0 and Blood
Pressure Service 1.1 for the services; IEEE 11073-20601 for the 16-bit SFLOAT). All fields are
little-endian. The spec sections are cited by name, not number, because the GSS renumbers them
between releases.

Why here and not in bleak: bleak only moves bytes. What those bytes mean (which fields are
present, a NaN that is not a number, a sensor that says it is off the finger) decides whether a
value may be charted at all, so it is parsed here and tested with byte strings built from the
specifications (tests/devices/test_ble_gatt.py), with no Bluetooth hardware.

A malformed value (too short, trailing bytes, a time stamp that is not a date) raises
:class:`GattParseError` with a plain reason; the BLE source counts it and keeps listening.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntFlag

from kapmonitor.devices.reading import DeviceReading, ReadingFlag

__all__ = [
    "BLOOD_PRESSURE_MEASUREMENT",
    "BLOOD_PRESSURE_SERVICE",
    "KPA_TO_MMHG",
    "PLX_CONTINUOUS_MEASUREMENT",
    "PLX_SPOT_CHECK_MEASUREMENT",
    "PULSE_OXIMETER_SERVICE",
    "BpMeasurement",
    "BpStatus",
    "DeviceSensorStatus",
    "GattParseError",
    "MeasurementStatus",
    "PlxContinuous",
    "PlxSpotCheck",
    "SFloat",
    "parse_blood_pressure",
    "parse_date_time",
    "parse_plx_continuous",
    "parse_plx_spot_check",
    "parse_sfloat",
    "uuid16",
]


def uuid16(short: int) -> str:
    """The 128-bit UUID of a 16-bit SIG-assigned number (Bluetooth Base UUID), as bleak has it."""
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


PULSE_OXIMETER_SERVICE = uuid16(0x1822)
PLX_SPOT_CHECK_MEASUREMENT = uuid16(0x2A5E)  # indicated
PLX_CONTINUOUS_MEASUREMENT = uuid16(0x2A5F)  # notified
BLOOD_PRESSURE_SERVICE = uuid16(0x1810)
BLOOD_PRESSURE_MEASUREMENT = uuid16(0x2A35)  # indicated

#: 1 kPa in mmHg: 760 mmHg = 101.325 kPa (standard atmosphere).
KPA_TO_MMHG = 760.0 / 101.325


class GattParseError(ValueError):
    """A characteristic value that does not follow its specification (the reason says how)."""


# --- IEEE 11073-20601 SFLOAT ---------------------------------------------------------------------


@dataclass(frozen=True)
class SFloat:
    """A decoded 16-bit SFLOAT: ``value`` is a finite number, or None with ``special`` saying why.

    ``special`` is one of "nan", "nres" (not at this resolution), "+inf", "-inf", "reserved".
    """

    value: float | None
    special: str | None = None

    @property
    def is_number(self) -> bool:
        return self.value is not None


# IEEE 11073-20601 §F.8 (SFLOAT-Type): the mantissa values set aside for special meanings. The
# normal mantissa range is -2045..+2045, so these are recognised whatever the exponent.
_SFLOAT_SPECIAL = {
    0x07FF: "nan",  # +2047
    0x0800: "nres",  # -2048
    0x07FE: "+inf",  # +2046
    0x0802: "-inf",  # -2046
    0x0801: "reserved",  # -2047
}


def parse_sfloat(raw: int) -> SFloat:
    """Decode one SFLOAT: a 4-bit two's-complement exponent (high nibble) and a 12-bit
    two's-complement mantissa; value = mantissa × 10^exponent.

    The result is rounded to the exponent's decimal places, so 0x F3 E8 (1000 × 10⁻¹) is 100.0 and
    not 100.00000000000001.
    """
    if not 0 <= raw <= 0xFFFF:
        raise GattParseError(f"an SFLOAT is 16 bits, not {raw!r}")
    mantissa_bits = raw & 0x0FFF
    if mantissa_bits in _SFLOAT_SPECIAL:
        return SFloat(None, _SFLOAT_SPECIAL[mantissa_bits])
    mantissa = mantissa_bits - 0x1000 if mantissa_bits & 0x0800 else mantissa_bits
    exponent = raw >> 12
    if exponent & 0x8:
        exponent -= 0x10
    value = mantissa * 10.0**exponent
    return SFloat(round(value, -exponent) if exponent < 0 else value)


def encode_sfloat(value: float, exponent: int = 0) -> int:
    """The SFLOAT bits of ``value`` at ``exponent`` (tests and the fake client build values)."""
    if math.isnan(value):
        return 0x07FF
    if not -8 <= exponent <= 7:
        raise ValueError("SFLOAT exponent is -8..7")
    mantissa = round(value / 10.0**exponent)
    if not -2045 <= mantissa <= 2045:
        raise ValueError(f"{value} does not fit an SFLOAT at exponent {exponent}")
    return ((exponent & 0xF) << 12) | (mantissa & 0x0FFF)


# --- Reading a value -----------------------------------------------------------------------------


class _Reader:
    """Walks a characteristic value field by field; running out of bytes is a parse error."""

    def __init__(self, data: bytes | bytearray, what: str) -> None:
        self.data = bytes(data)
        self.offset = 0
        self.what = what

    def take(self, size: int, field: str) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise GattParseError(
                f"{self.what}: {len(self.data)} bytes end before the {field} field (needs {end})"
            )
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def uint8(self, field: str) -> int:
        return self.take(1, field)[0]

    def uint16(self, field: str) -> int:
        return int(struct.unpack("<H", self.take(2, field))[0])

    def uint24(self, field: str) -> int:
        return int.from_bytes(self.take(3, field), "little")

    def sfloat(self, field: str) -> SFloat:
        return parse_sfloat(self.uint16(field))

    def date_time(self, field: str) -> datetime | None:
        return parse_date_time(self.take(7, field))

    def end(self) -> None:
        # Fields the flags do not announce: a newer revision of the characteristic, or a corrupt
        # value. Refused rather than guessed at (what would they shift?).
        if self.offset != len(self.data):
            raise GattParseError(
                f"{self.what}: {len(self.data) - self.offset} bytes after the last field the "
                f"flags announce"
            )


def parse_date_time(data: bytes | bytearray) -> datetime | None:
    """GSS "Date Time" (0x2A08): year uint16, month, day, hours, minutes, seconds.

    A zero year, month or day means "not known" (GSS): the time stamp is then None, not a guess.
    The result is naive: the specification gives no time zone (the source decides what the
    device clock's zone is).
    """
    if len(data) != 7:
        raise GattParseError(f"a Date Time is 7 bytes, not {len(data)}")
    year, month, day, hours, minutes, seconds = struct.unpack("<HBBBBB", bytes(data))
    if year == 0 or month == 0 or day == 0:
        return None
    if not 1582 <= year <= 9999:
        raise GattParseError(f"Date Time year {year} is outside 1582-9999")
    try:
        return datetime(year, month, day, hours, minutes, seconds)
    except ValueError as exc:
        raise GattParseError(f"Date Time is not a date: {exc}") from None


# --- Pulse oximeter (PLX) ------------------------------------------------------------------------


class MeasurementStatus(IntFlag):
    """GSS "PLX Continuous/Spot-check Measurement", Measurement Status field (uint16).
    Bits 0-4 are reserved for future use."""

    MEASUREMENT_ONGOING = 1 << 5
    EARLY_ESTIMATED_DATA = 1 << 6
    VALIDATED_DATA = 1 << 7
    FULLY_QUALIFIED_DATA = 1 << 8
    DATA_FROM_STORAGE = 1 << 9
    DATA_FOR_DEMONSTRATION = 1 << 10
    DATA_FOR_TESTING = 1 << 11
    CALIBRATION_ONGOING = 1 << 12
    MEASUREMENT_UNAVAILABLE = 1 << 13
    QUESTIONABLE_MEASUREMENT = 1 << 14
    INVALID_MEASUREMENT = 1 << 15


class DeviceSensorStatus(IntFlag):
    """GSS "PLX ... Measurement", Device and Sensor Status field (uint24). Bits 16-23 reserved."""

    EXTENDED_DISPLAY_UPDATE_ONGOING = 1 << 0
    EQUIPMENT_MALFUNCTION = 1 << 1
    SIGNAL_PROCESSING_IRREGULARITY = 1 << 2
    INADEQUATE_SIGNAL = 1 << 3
    POOR_SIGNAL = 1 << 4
    LOW_PERFUSION = 1 << 5
    ERRATIC_SIGNAL = 1 << 6
    NONPULSATILE_SIGNAL = 1 << 7
    QUESTIONABLE_PULSE = 1 << 8
    SIGNAL_ANALYSIS_ONGOING = 1 << 9
    SENSOR_INTERFERENCE = 1 << 10
    SENSOR_UNCONNECTED_TO_USER = 1 << 11
    UNKNOWN_SENSOR_CONNECTED = 1 << 12
    SENSOR_DISPLACED = 1 << 13
    SENSOR_MALFUNCTIONING = 1 << 14
    SENSOR_DISCONNECTED = 1 << 15


#: Sensor states that mean "no patient signal": the reading is probe off.
PROBE_OFF_STATUS = (
    DeviceSensorStatus.SENSOR_UNCONNECTED_TO_USER
    | DeviceSensorStatus.SENSOR_DISPLACED
    | DeviceSensorStatus.SENSOR_DISCONNECTED
)
#: Device states that make a value unreliable: the reading is flagged artefact.
ARTEFACT_STATUS = (
    DeviceSensorStatus.EQUIPMENT_MALFUNCTION
    | DeviceSensorStatus.SIGNAL_PROCESSING_IRREGULARITY
    | DeviceSensorStatus.INADEQUATE_SIGNAL
    | DeviceSensorStatus.POOR_SIGNAL
    | DeviceSensorStatus.LOW_PERFUSION
    | DeviceSensorStatus.ERRATIC_SIGNAL
    | DeviceSensorStatus.NONPULSATILE_SIGNAL
    | DeviceSensorStatus.QUESTIONABLE_PULSE
    | DeviceSensorStatus.SENSOR_INTERFERENCE
    | DeviceSensorStatus.UNKNOWN_SENSOR_CONNECTED
    | DeviceSensorStatus.SENSOR_MALFUNCTIONING
)
#: Measurement states that make a value unreliable or not a patient's (demonstration, testing).
ARTEFACT_MEASUREMENT = (
    MeasurementStatus.QUESTIONABLE_MEASUREMENT
    | MeasurementStatus.INVALID_MEASUREMENT
    | MeasurementStatus.DATA_FOR_DEMONSTRATION
    | MeasurementStatus.DATA_FOR_TESTING
    | MeasurementStatus.CALIBRATION_ONGOING
)
#: Measurement states that mean "the device may still change it".
PRELIMINARY_MEASUREMENT = (
    MeasurementStatus.MEASUREMENT_ONGOING | MeasurementStatus.EARLY_ESTIMATED_DATA
)


@dataclass(frozen=True)
class PlxContinuous:
    """GSS "PLX Continuous Measurement" (0x2A5F)."""

    spo2: SFloat
    pulse_rate: SFloat
    spo2_fast: SFloat | None = None
    pulse_rate_fast: SFloat | None = None
    spo2_slow: SFloat | None = None
    pulse_rate_slow: SFloat | None = None
    measurement_status: MeasurementStatus | None = None
    sensor_status: DeviceSensorStatus | None = None
    pulse_amplitude_index: SFloat | None = None


@dataclass(frozen=True)
class PlxSpotCheck:
    """GSS "PLX Spot-check Measurement" (0x2A5E)."""

    spo2: SFloat
    pulse_rate: SFloat
    timestamp: datetime | None = None  # naive device time; None when absent, unknown or unset
    measurement_status: MeasurementStatus | None = None
    sensor_status: DeviceSensorStatus | None = None
    pulse_amplitude_index: SFloat | None = None
    clock_not_set: bool = False


def parse_plx_continuous(data: bytes | bytearray) -> PlxContinuous:
    """GSS "PLX Continuous Measurement": Flags (uint8), SpO2PR-Normal (SpO2, PR: SFLOAT each),
    then as the flags say: bit 0 SpO2PR-Fast, bit 1 SpO2PR-Slow, bit 2 Measurement Status
    (uint16), bit 3 Device and Sensor Status (uint24), bit 4 Pulse Amplitude Index (SFLOAT).
    Bits 5-7 are reserved and ignored."""
    r = _Reader(data, "PLX Continuous Measurement")
    flags = r.uint8("Flags")
    spo2, pr = r.sfloat("SpO2"), r.sfloat("PR")
    fast = (r.sfloat("SpO2 fast"), r.sfloat("PR fast")) if flags & 0x01 else (None, None)
    slow = (r.sfloat("SpO2 slow"), r.sfloat("PR slow")) if flags & 0x02 else (None, None)
    status = MeasurementStatus(r.uint16("Measurement Status")) if flags & 0x04 else None
    sensor = DeviceSensorStatus(r.uint24("Device and Sensor Status")) if flags & 0x08 else None
    pai = r.sfloat("Pulse Amplitude Index") if flags & 0x10 else None
    r.end()
    return PlxContinuous(spo2, pr, *fast, *slow, status, sensor, pai)


def parse_plx_spot_check(data: bytes | bytearray) -> PlxSpotCheck:
    """GSS "PLX Spot-check Measurement": Flags (uint8), SpO2PR-Spot-Check (SpO2, PR: SFLOAT
    each), then as the flags say: bit 0 Timestamp (Date Time), bit 1 Measurement Status
    (uint16), bit 2 Device and Sensor Status (uint24), bit 3 Pulse Amplitude Index (SFLOAT);
    bit 4 "Device Clock is Not Set" (then the time stamp is not trusted). Bits 5-7 reserved."""
    r = _Reader(data, "PLX Spot-check Measurement")
    flags = r.uint8("Flags")
    spo2, pr = r.sfloat("SpO2"), r.sfloat("PR")
    stamp = r.date_time("Timestamp") if flags & 0x01 else None
    status = MeasurementStatus(r.uint16("Measurement Status")) if flags & 0x02 else None
    sensor = DeviceSensorStatus(r.uint24("Device and Sensor Status")) if flags & 0x04 else None
    pai = r.sfloat("Pulse Amplitude Index") if flags & 0x08 else None
    r.end()
    clock_not_set = bool(flags & 0x10)
    return PlxSpotCheck(
        spo2, pr, None if clock_not_set else stamp, status, sensor, pai, clock_not_set
    )


# --- Blood pressure ----------------------------------------------------------------------------


class BpStatus(IntFlag):
    """GSS "Blood Pressure Measurement", Measurement Status field (uint16). Bits 3-4 are the
    pulse rate range (0 within, 1 above the upper limit, 2 below the lower limit, 3 reserved);
    bits 6-15 reserved."""

    BODY_MOVEMENT = 1 << 0
    CUFF_TOO_LOOSE = 1 << 1
    IRREGULAR_PULSE = 1 << 2
    PULSE_RATE_RANGE_BIT0 = 1 << 3
    PULSE_RATE_RANGE_BIT1 = 1 << 4
    IMPROPER_POSITION = 1 << 5

    @property
    def pulse_rate_range(self) -> int:
        return (int(self) >> 3) & 0x3


#: Measurement states that make the pressures unreliable: the readings are flagged artefact.
#: An irregular pulse is a finding about the patient, not about the measurement: not flagged.
BP_ARTEFACT = BpStatus.BODY_MOVEMENT | BpStatus.CUFF_TOO_LOOSE | BpStatus.IMPROPER_POSITION


@dataclass(frozen=True)
class BpMeasurement:
    """GSS "Blood Pressure Measurement" (0x2A35), pressures already in mmHg."""

    systolic: SFloat
    diastolic: SFloat
    mean_arterial: SFloat
    unit_sent: str  # "mmHg" or "kPa": what the device sent (flags bit 0)
    timestamp: datetime | None = None
    pulse_rate: SFloat | None = None
    user_id: int | None = None  # 0xFF means "unknown user"
    status: BpStatus | None = None


def _kpa(value: SFloat) -> SFloat:
    if value.value is None:
        return value
    return SFloat(round(value.value * KPA_TO_MMHG, 1))


def parse_blood_pressure(data: bytes | bytearray) -> BpMeasurement:
    """GSS "Blood Pressure Measurement": Flags (uint8): bit 0 units (0 mmHg, 1 kPa), bit 1 Time
    Stamp, bit 2 Pulse Rate, bit 3 User ID, bit 4 Measurement Status; then Systolic, Diastolic,
    Mean Arterial Pressure (SFLOAT each, in the flagged unit), then the flagged fields in that
    order: Time Stamp (Date Time), Pulse Rate (SFLOAT), User ID (uint8), Measurement Status
    (uint16). kPa is converted to mmHg (one decimal: the registry rounds to whole mmHg).
    Bits 5-7 (BLS 1.1's User Facing Time and Epoch Start 2000) are not read; a value with them set
    carries extra fields and is refused by the trailing-bytes check rather than misread."""
    r = _Reader(data, "Blood Pressure Measurement")
    flags = r.uint8("Flags")
    kpa = bool(flags & 0x01)
    pressures = [r.sfloat("Systolic"), r.sfloat("Diastolic"), r.sfloat("Mean Arterial Pressure")]
    if kpa:
        pressures = [_kpa(p) for p in pressures]
    stamp = r.date_time("Time Stamp") if flags & 0x02 else None
    pulse = r.sfloat("Pulse Rate") if flags & 0x04 else None
    user = r.uint8("User ID") if flags & 0x08 else None
    status = BpStatus(r.uint16("Measurement Status")) if flags & 0x10 else None
    r.end()
    return BpMeasurement(*pressures, "kPa" if kpa else "mmHg", stamp, pulse, user, status)


# --- To registry readings ------------------------------------------------------------------------


def _reading(
    vital: str,
    value: SFloat,
    unit: str,
    code: str,
    flags: set[ReadingFlag],
    common: dict[str, object],
) -> DeviceReading:
    """One registry reading; a special SFLOAT becomes a value-less reading that says why."""
    flags = set(flags)
    if value.special in {"+inf", "-inf"}:
        flags.add(ReadingFlag.OUT_OF_RANGE)
    elif value.special is not None and ReadingFlag.PROBE_OFF not in flags:
        flags.add(ReadingFlag.ARTEFACT)  # NaN / NRes / reserved: the device has no valid number
    return DeviceReading(
        vital=vital, value=value.value, unit=unit, code=code, flags=frozenset(flags),
        **common,  # type: ignore[arg-type]
    )  # fmt: skip


def _plx_flags(
    status: MeasurementStatus | None, sensor: DeviceSensorStatus | None
) -> set[ReadingFlag]:
    flags: set[ReadingFlag] = set()
    if sensor is not None and sensor & PROBE_OFF_STATUS:
        flags.add(ReadingFlag.PROBE_OFF)
    if (sensor is not None and sensor & ARTEFACT_STATUS) or (
        status is not None and status & ARTEFACT_MEASUREMENT
    ):
        flags.add(ReadingFlag.ARTEFACT)
    if status is not None and status & PRELIMINARY_MEASUREMENT:
        flags.add(ReadingFlag.PRELIMINARY)
    if status is not None and status & MeasurementStatus.MEASUREMENT_UNAVAILABLE:
        flags.add(ReadingFlag.ARTEFACT)  # no valid measurement; the cause is not stated
    return flags


def plx_readings(
    measurement: PlxContinuous | PlxSpotCheck,
    *,
    device_id: str,
    message_id: str,
    received_at: datetime,
    observed_at: datetime | None = None,
) -> Sequence[DeviceReading]:
    """``spo2`` and ``hr`` readings for one PLX measurement (the Normal / Spot-check pair; the
    fast and slow pairs stay on the parsed measurement). Probe-off sensor states flag both
    ``probe_off``; signal-quality and demonstration/testing states flag ``artefact``; ongoing or
    early-estimate measurements flag ``preliminary``; "measurement unavailable" flags
    ``artefact`` (a number sent anyway is kept and flagged, never dropped)."""
    kind = "2A5F" if isinstance(measurement, PlxContinuous) else "2A5E"
    flags = _plx_flags(measurement.measurement_status, measurement.sensor_status)
    common: dict[str, object] = {
        "device_id": device_id,
        "source": "ble",
        "message_id": message_id,
        "received_at": received_at,
        "observed_at": observed_at,
    }
    return (
        _reading("spo2", measurement.spo2, "%", f"GATT:{kind}:SpO2", flags, common),
        _reading("hr", measurement.pulse_rate, "/min", f"GATT:{kind}:PR", flags, common),
    )


def bp_readings(
    measurement: BpMeasurement,
    *,
    device_id: str,
    message_id: str,
    received_at: datetime,
    observed_at: datetime | None = None,
) -> Sequence[DeviceReading]:
    """``sbp``, ``dbp`` (mmHg) and, if sent, ``hr`` readings for one cuff measurement. The mean
    arterial pressure has no registry vital yet: it stays on the parsed measurement. Body
    movement, a loose cuff or an improper position flag the pressures ``artefact``; a pulse rate
    outside the device's range flags ``hr`` ``out_of_range``."""
    status = measurement.status
    flags: set[ReadingFlag] = set()
    if status is not None and status & BP_ARTEFACT:
        flags.add(ReadingFlag.ARTEFACT)
    common: dict[str, object] = {
        "device_id": device_id,
        "source": "ble",
        "message_id": message_id,
        "received_at": received_at,
        "observed_at": observed_at,
    }
    unit = measurement.unit_sent
    readings = [
        _reading("sbp", measurement.systolic, unit, "GATT:2A35:Systolic", flags, common),
        _reading("dbp", measurement.diastolic, unit, "GATT:2A35:Diastolic", flags, common),
    ]
    if measurement.pulse_rate is not None:
        hr_flags = set(flags)
        if status is not None and status.pulse_rate_range in (1, 2):
            hr_flags.add(ReadingFlag.OUT_OF_RANGE)
        readings.append(
            _reading("hr", measurement.pulse_rate, "/min", "GATT:2A35:PulseRate", hr_flags, common)
        )
    return tuple(readings)
