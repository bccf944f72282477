r"""HL7 v2 ORU^R01 messages into device readings, and the ACK for each message.

Why this module decides so much: the answer a monitor gets (AA accepted, AE application error,
AR rejected) is the only way it learns that a reading was not kept, so every refusal carries a
reason in MSA-3 and ERR, and the reason never contains a value or an identifier (it also goes to
the log). What is read, and from where (docs/devices.md is the conformance statement):

- MSH-9 message type (only ``ORU^R01``), MSH-10 control id (echoed in MSA-2, the duplicate key),
  MSH-12 version (2.x), MSH-3/MSH-4 sender;
- PID-2/PID-3 patient identifiers and PV1-3 point of care (bed), for the listener's patient match;
- for each OBX: OBX-3 code (LOINC or MDC, :mod:`kapmonitor.devices.code_map`), OBX-5 value, OBX-6
  unit, OBX-11 status (X = no value: probe off; W = wrong: artefact; P, C kept as flags),
  OBX-14 observation time (else OBR-7), OBX-18 equipment instance (the device id, else MSH-3).

Fields are read by splitting on the message's own separators (MSH-1, MSH-2) rather than through
``hl7.parse``: the package builds an object per sub-component, about 0.5 ms per monitor message
on the clinic laptop class of machine, which alone held the listener under the issue's
2,000 messages/s. The ``hl7`` package still parses the timestamps (``hl7.parse_datetime``) and is
the tests' independent reference: tests/devices/test_hl7_message.py checks every field read here
against ``hl7.parse`` for both simulator profiles. HL7 escape sequences (``\F\`` and the like) are
not decoded: no field read here is free text, and identifiers are compared as sent.

An OBX whose code the map does not know is skipped (monitors send many parameters the record does
not keep) and counted; a known code with an unknown unit refuses the message (AE): a value in an
unknown unit must never be stored as if it were in the registry's.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import hl7

from kapmonitor.devices.code_map import CodeMap, MappingError, default_code_map
from kapmonitor.devices.reading import DeviceReading, ReadingFlag
from kapmonitor.domain.reference import default_reference

__all__ = [
    "AckCode",
    "MessageRejected",
    "ParsedMessage",
    "build_ack",
    "parse_oru",
    "peek_header",
]

ACCEPTED_TYPES = {("ORU", "R01")}
_SEGMENT_NAME = re.compile(r"[A-Z][A-Z0-9]{2}")
_UNSAFE = re.compile(r"[\x00-\x1f|^~\\&]")  # separators and control characters


class AckCode:
    ACCEPT = "AA"
    ERROR = "AE"
    REJECT = "AR"


# HL7 table 0357 (message error condition codes) used in ERR.
ERR_SEGMENT_SEQUENCE = "100"
ERR_REQUIRED_FIELD = "101"
ERR_DATA_TYPE = "102"
ERR_TABLE_VALUE = "103"
ERR_UNSUPPORTED_TYPE = "200"
ERR_UNSUPPORTED_VERSION = "203"
ERR_UNKNOWN_KEY = "204"
ERR_INTERNAL = "207"

_ERR_TEXT = {
    ERR_SEGMENT_SEQUENCE: "Segment sequence error",
    ERR_REQUIRED_FIELD: "Required field missing",
    ERR_DATA_TYPE: "Data type error",
    ERR_TABLE_VALUE: "Table value not found",
    ERR_UNSUPPORTED_TYPE: "Unsupported message type",
    ERR_UNSUPPORTED_VERSION: "Unsupported version id",
    ERR_UNKNOWN_KEY: "Unknown key identifier",
    ERR_INTERNAL: "Application internal error",
}


class MessageRejected(Exception):
    """The message cannot be accepted: ``ack`` (AR or AE), ``error`` (table 0357) and ``reason``.

    ``reason`` is plain language without clinical values or identifiers: it is sent back and
    logged. ``header`` is what could be read of the MSH, so the answer still echoes MSH-10.
    """

    def __init__(self, ack: str, error: str, reason: str, header: Header | None = None) -> None:
        super().__init__(reason)
        self.ack = ack
        self.error = error
        self.reason = reason
        self.header = header or Header()


@dataclass(frozen=True)
class Header:
    """The MSH fields an answer needs (empty strings when unreadable)."""

    control_id: str = ""
    version: str = "2.3"
    sending_app: str = ""
    sending_facility: str = ""
    receiving_app: str = ""
    receiving_facility: str = ""
    trigger: str = "R01"
    message_code: str = ""


@dataclass(frozen=True)
class ParsedMessage:
    header: Header
    message_type: str  # "ORU^R01"
    device_id: str
    bed: str  # PV1-3.3 (bed), else PV1-3.1 (point of care); "" when absent
    patient_ids: tuple[str, ...]
    readings: tuple[DeviceReading, ...]
    skipped_codes: tuple[str, ...]  # OBX-3 codes not in the map (codes only, never values)

    @property
    def control_id(self) -> str:
        return self.header.control_id

    @property
    def sender(self) -> str:
        return f"{self.header.sending_app}|{self.header.sending_facility}"


def _text(payload: bytes | str) -> str:
    if isinstance(payload, str):
        text = payload
    else:
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            text = payload.decode("latin-1")  # HL7 v2's usual 8-bit character set
    return text.replace("\r\n", "\r").replace("\n", "\r").strip("\r\n\x00 ")


def _clean(value: str) -> str:
    """An identifier as read, without separators or control characters (it is compared)."""
    return _UNSAFE.sub("", value).strip()


def peek_header(payload: bytes | str) -> Header:
    """The MSH fields of a message too broken (or too big) to parse, read by plain splitting."""
    raw = payload[:4096]
    ended = any(mark in raw for mark in ((b"\r", b"\n") if isinstance(raw, bytes) else "\r\n"))
    text = _text(raw)
    if not text.startswith("MSH") or len(text) < 8:
        return Header()
    sep = text[3]
    fields = text.split("\r", 1)[0].split(sep)
    if not ended and len(fields) <= 10:
        fields = fields[:9]  # MSH-10 may itself be cut short: never echo a partial id
    comp = text[4] if len(text) > 4 else "^"

    def f(n: int) -> str:  # MSH-n is fields[n - 1]: MSH-1 is the separator itself
        return _clean(fields[n - 1].split(comp)[0]) if len(fields) >= n else ""

    type_parts = fields[8].split(comp) if len(fields) > 8 else [""]
    trigger = type_parts[1] if len(type_parts) > 1 else ""
    return Header(
        control_id=f(10)[:64],
        version=f(12)[:10] or "2.3",
        sending_app=f(3)[:64],
        sending_facility=f(4)[:64],
        receiving_app=f(5)[:64],
        receiving_facility=f(6)[:64],
        trigger=_clean(trigger)[:8],
        message_code=_clean(type_parts[0])[:8],
    )


def parse_oru(
    payload: bytes | str,
    received_at: datetime,
    code_map: CodeMap | None = None,
    source: str = "mllp",
) -> ParsedMessage:
    """The readings in one ORU^R01 message; MessageRejected (AR/AE with a reason) otherwise."""
    code_map = code_map or default_code_map()
    text = _text(payload)
    if not text.startswith("MSH"):
        raise MessageRejected(AckCode.REJECT, ERR_SEGMENT_SEQUENCE, "not an HL7 message (no MSH)")
    header = peek_header(text)
    field_sep, encoding = text[3:4], text[4:8]
    if (
        len(encoding) < 4
        or field_sep.isalnum()
        or len(set(field_sep + encoding)) != 5
        or any(c.isalnum() or c.isspace() for c in field_sep + encoding)
    ):
        raise MessageRejected(
            AckCode.REJECT, ERR_SEGMENT_SEQUENCE, "malformed message header", header
        )
    message = [line.split(field_sep) for line in text.split("\r") if line]
    if not header.control_id:
        raise MessageRejected(
            AckCode.REJECT, ERR_REQUIRED_FIELD, "MSH-10 message control id missing", header
        )
    msg_code, trigger = header.message_code, header.trigger
    if (msg_code, trigger) not in ACCEPTED_TYPES:
        shown = _clean(f"{msg_code} {trigger}")[:16] or "none"
        raise MessageRejected(
            AckCode.REJECT,
            ERR_UNSUPPORTED_TYPE,
            f"unsupported message type {shown}: only ORU R01 is accepted",
            header,
        )
    if not re.fullmatch(r"2(\.\d+)*", header.version):
        raise MessageRejected(
            AckCode.REJECT,
            ERR_UNSUPPORTED_VERSION,
            "unsupported HL7 version: 2.x expected",
            header,
        )
    try:
        seps = encoding[1] + encoding[0]  # repetition, component (MSH-2 is ^~\\&)
        return _read_body(message, seps, header, received_at, code_map, source, msg_code, trigger)
    except MessageRejected:
        raise
    except Exception as exc:
        raise MessageRejected(
            AckCode.REJECT, ERR_SEGMENT_SEQUENCE, "malformed segment", header
        ) from exc


Segment = list[str]  # a segment's fields as sent: field n of a non-MSH segment is [n]


def _segments(message: list[Segment], name: str) -> list[Segment]:
    return [s for s in message if s[0] == name]


def _part(segment: Segment, field: int, component: int = 1, seps: str = "~^") -> str:
    """Field ``field``, first repetition, component ``component`` of a (non-MSH) segment, as
    text; "" when absent."""
    if len(segment) <= field:
        return ""
    first = str(segment[field]).split(seps[0])[0]
    parts = first.split(seps[1])
    return parts[component - 1] if len(parts) >= component else ""


def _read_body(
    message: list[Segment],
    seps: str,
    header: Header,
    received_at: datetime,
    code_map: CodeMap,
    source: str,
    msg_code: str,
    trigger: str,
) -> ParsedMessage:
    for segment in message:
        if not _SEGMENT_NAME.fullmatch(segment[0]):
            raise MessageRejected(
                AckCode.REJECT, ERR_SEGMENT_SEQUENCE, "malformed segment name", header
            )
    patient_ids: list[str] = []
    rep_sep, comp_sep = seps[0], seps[1]
    for pid in _segments(message, "PID"):
        for field_no in (2, 3):
            if len(pid) <= field_no:
                continue
            for repetition in str(pid[field_no]).split(rep_sep):
                ident = _clean(repetition.split(comp_sep)[0])
                if ident:
                    patient_ids.append(ident)
    bed = ""
    for pv1 in _segments(message, "PV1")[:1]:  # PV1-3: point of care ^ room ^ bed
        bed = _clean(_part(pv1, 3, 3, seps)) or _clean(_part(pv1, 3, 1, seps))
    obr_time = ""
    for obr in _segments(message, "OBR")[:1]:
        obr_time = _part(obr, 7, 1, seps)
    sender_device = "/".join(p for p in (header.sending_app, header.sending_facility) if p)
    readings: list[DeviceReading] = []
    skipped: list[str] = []
    obxs = _segments(message, "OBX")
    if not obxs:
        raise MessageRejected(AckCode.REJECT, ERR_REQUIRED_FIELD, "no OBX segment", header)
    for index, obx in enumerate(obxs, start=1):
        identifier = _clean(_part(obx, 3, 1, seps))
        code_text = _clean(_part(obx, 3, 2, seps))
        system = _clean(_part(obx, 3, 3, seps))
        if not identifier and not code_text:
            raise MessageRejected(
                AckCode.REJECT, ERR_REQUIRED_FIELD, f"OBX {index}: OBX-3 code missing", header
            )
        entry = code_map.lookup(identifier, code_text, system)
        if entry is None or entry.vital is None:
            if entry is None:
                skipped.append(f"{system or '?'}:{identifier or code_text}"[:40])
            continue
        status = _part(obx, 11, 1, seps).strip().upper()
        raw = _part(obx, 5, 1, seps).strip()
        flags: set[ReadingFlag] = set()
        value: float | None
        if status == "W":
            flags.add(ReadingFlag.ARTEFACT)
        elif status == "P":
            flags.add(ReadingFlag.PRELIMINARY)
        elif status == "C":
            flags.add(ReadingFlag.CORRECTED)
        if raw == "":
            if status == "X":
                flags.add(ReadingFlag.PROBE_OFF)
            if not flags:
                continue  # nothing measured and nothing said: no reading
            value = None
        else:
            try:
                number = float(raw)
            except ValueError:
                raise MessageRejected(
                    AckCode.REJECT,
                    ERR_DATA_TYPE,
                    f"OBX {index}: OBX-5 is not a number",
                    header,
                ) from None
            if not math.isfinite(number):
                raise MessageRejected(
                    AckCode.REJECT, ERR_DATA_TYPE, f"OBX {index}: OBX-5 is not finite", header
                )
            unit_id = _part(obx, 6, 1, seps)
            unit_text = _part(obx, 6, 2, seps)
            try:
                value = code_map.convert(entry.vital, number, unit_id, unit_text)
            except MappingError as exc:
                raise MessageRejected(
                    AckCode.ERROR, ERR_TABLE_VALUE, f"OBX {index}: {exc}", header
                ) from None
        if value is not None and _implausible(entry.vital, value):
            flags.add(ReadingFlag.OUT_OF_RANGE)  # kept and flagged: the clinician judges it
        try:
            observed = _hl7_time(_part(obx, 14, 1, seps) or obr_time)
        except ValueError:
            raise MessageRejected(
                AckCode.REJECT, ERR_DATA_TYPE, f"OBX {index}: OBX-14 is not a date/time", header
            ) from None
        equipment = _clean(_part(obx, 18, 1, seps))
        unit_raw = str(obx[6]) if len(obx) > 6 else ""
        readings.append(
            DeviceReading(
                device_id=(equipment or sender_device or "unknown")[:64],
                source=source,
                message_id=header.control_id,
                received_at=received_at,
                observed_at=observed,
                vital=entry.vital,
                value=value,
                unit=unit_raw[:64],
                flags=frozenset(flags),
                code=f"{entry.system}:{entry.code}",
            )
        )
    device_ids = {r.device_id for r in readings}
    device_id = next(iter(device_ids)) if len(device_ids) == 1 else (sender_device or "unknown")
    return ParsedMessage(
        header=header,
        message_type=f"{msg_code}^{trigger}",
        device_id=device_id[:64],
        bed=bed[:64],
        patient_ids=tuple(dict.fromkeys(patient_ids)),
        readings=tuple(readings),
        skipped_codes=tuple(skipped),
    )


def _implausible(vital_key: str, value: float) -> bool:
    """Outside the clinic's entry plausibility range (resources/plausibility.json): a typed value
    there is refused; a device value is kept, flagged, for the clinician to judge."""
    limit = default_reference().limits.get(vital_key)
    return limit is not None and not limit.minimum <= value <= limit.maximum


def _hl7_time(value: str) -> datetime | None:
    """An HL7 DTM as an aware datetime; one without an offset is taken as this laptop's local
    time (bedside monitors keep local time)."""
    value = value.strip()
    if not value:
        return None
    parsed = hl7.parse_datetime(value)
    if parsed.tzinfo is None:
        return parsed.astimezone()  # local time, made aware
    offset = parsed.utcoffset() or timedelta(0)
    return parsed.replace(tzinfo=timezone(offset))


def _ack_text(value: str) -> str:
    """Text safe inside an HL7 field: no separators, no control characters, bounded."""
    return re.sub(r"[\x00-\x1f|^~\\&]", " ", value)[:200]


def build_ack(
    code: str,
    header: Header,
    reason: str = "",
    error: str = "",
    *,
    now: datetime | None = None,
    ack_id: str = "",
) -> bytes:
    """The ACK for a message: MSA-1 ``code``, MSA-2 = its MSH-10, MSA-3 and ERR the reason.

    ERR is written in the form of the message's own version: v2.5 and later use ERR-3 (code)
    and ERR-4 severity; earlier versions ERR-1 (location with code and text).
    """
    now = now or datetime.now(UTC)
    stamp = now.strftime("%Y%m%d%H%M%S")
    version = _ack_text(header.version) or "2.3"
    msh = "|".join(
        [
            "MSH",
            "^~\\&",
            "KAPMONITOR",
            _ack_text(header.receiving_facility),
            _ack_text(header.sending_app),
            _ack_text(header.sending_facility),
            stamp,
            "",
            f"ACK^{_ack_text(header.trigger) or 'R01'}^ACK",
            _ack_text(ack_id or f"A{_ack_text(header.control_id)}")[:20] or "A",
            "P",
            version,
        ]
    )
    segments = [msh, f"MSA|{code}|{_ack_text(header.control_id)}|{_ack_text(reason)}"]
    if code != AckCode.ACCEPT:
        err = error or ERR_INTERNAL
        err_text = _ERR_TEXT.get(err, "Error")
        if _version_at_least(version, 2, 5):
            segments.append(f"ERR|||{err}^{err_text}^HL70357|E||||{_ack_text(reason)}")
        else:
            segments.append(f"ERR|^^^{err}&{err_text}&HL70357")
    return ("\r".join(segments) + "\r").encode("utf-8")


def _version_at_least(version: str, major: int, minor: int) -> bool:
    parts = re.findall(r"\d+", version)
    numbers = (int(parts[0]) if parts else 0, int(parts[1]) if len(parts) > 1 else 0)
    return numbers >= (major, minor)
