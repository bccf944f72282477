"""ORU^R01 into readings, and the ACK for each outcome: both message styles the issue names, the
code map's conversions, and every refusal with its reason (never a traceback)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import hl7
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kapmonitor.devices.code_map import CodeMap, MappingError, default_code_map
from kapmonitor.devices.hl7_message import MessageRejected, build_ack, parse_oru, peek_header
from kapmonitor.devices.reading import ReadingFlag
from kapmonitor.devices.simulator import Sample, build_message
from kapmonitor.domain.vitals import VITAL_SIGNS
from kapmonitor.paths import resources_dir

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
WHEN = datetime(2026, 3, 1, 10, 29, 58, tzinfo=timezone(timedelta(hours=1)))
NORMAL = Sample(0, 96, 71, (131, 79, 96), probe_off=False, artefact=False)


def parse(text: str | bytes):
    return parse_oru(text if isinstance(text, bytes) else text.encode(), NOW)


def values(message) -> dict[str, float | None]:
    return {r.vital: r.value for r in message.readings}


@pytest.mark.parametrize(
    ("profile", "device", "codes"),
    [
        ("philips", "MX450-0001", {"LN:59408-5", "LN:8867-4"}),
        ("mindray", "MR-BV-0001", {"MDC:150456", "MDC:149530"}),
    ],
)
def test_both_styles_give_the_same_readings_with_their_device(profile, device, codes) -> None:
    message = parse(build_message(profile, NORMAL, "C-17", WHEN, bed="B7", patient="P123"))
    assert message.control_id == "C-17"
    assert message.message_type == "ORU^R01"
    assert message.header.version == ("2.3" if profile == "philips" else "2.6")
    assert values(message) == {"spo2": 96, "hr": 71}
    assert {r.code for r in message.readings} == codes
    assert message.device_id == device
    assert message.bed == "B7"
    assert message.patient_ids == ("P123",)
    for reading in message.readings:
        assert reading.device_id == device
        assert reading.message_id == "C-17"
        assert reading.source == "mllp"
        assert reading.received_at == NOW
        assert reading.observed_at == WHEN
        assert reading.flags == frozenset()


@pytest.mark.parametrize("profile", ["philips", "mindray"])
def test_nibp_keeps_systolic_and_diastolic_and_acknowledges_the_mean(profile) -> None:
    message = parse(build_message(profile, NORMAL, "N1", WHEN, nibp_only=True))
    assert values(message) == {"sbp": 131, "dbp": 79}
    assert message.skipped_codes == ()  # the mean is known, not unknown


@pytest.mark.parametrize("profile", ["philips", "mindray"])
def test_probe_off_and_artefact_are_flags_not_lost_values(profile) -> None:
    off = Sample(1, None, None, None, probe_off=True, artefact=False)
    message = parse(build_message(profile, off, "X1", WHEN))
    assert values(message) == {"spo2": None, "hr": None}
    assert all(r.flags == {ReadingFlag.PROBE_OFF} for r in message.readings)
    spike = Sample(2, 97, 188, None, probe_off=False, artefact=True)
    message = parse(build_message(profile, spike, "W1", WHEN))
    by_vital = {r.vital: r for r in message.readings}
    assert by_vital["hr"].value == 188 and by_vital["hr"].artefact
    assert not by_vital["spo2"].flags


def oru(*obx: str, msh: str = "MSH|^~\\&|GW|ICU|KAP|KAP|20260301103000||ORU^R01|M1|P|2.5") -> str:
    lines = [msh, "PID|||P1", "PV1||I|ICU^^B1"]
    lines += [f"OBX|{i}|NM|{o}" for i, o in enumerate(obx, start=1)]
    return "\r".join(lines) + "\r"


def test_units_are_converted_into_the_registry_unit() -> None:
    message = parse(
        oru(
            "151708^MDC_AWAY_CO2_ET^MDC||5.2|kPa|||||F|||20260301103000+0000",
            "150364^MDC_TEMP_BODY^MDC||98.6|[degF]|||||F",
            "8310-5^Temp^LN||37.2|Cel|||||F",
        )
    )
    readings = message.readings
    assert [r.vital for r in readings] == ["etco2", "temp_c", "temp_c"]
    assert readings[0].value == pytest.approx(39.0, abs=0.01)
    assert readings[0].unit == "kPa"  # what the device sent, for the audit of the conversion
    assert readings[1].value == pytest.approx(37.0, abs=0.01)
    assert readings[2].value == pytest.approx(37.2)
    assert readings[0].observed_at == datetime(2026, 3, 1, 10, 30, tzinfo=UTC)


def test_an_unknown_unit_is_refused_never_guessed() -> None:
    with pytest.raises(MessageRejected) as caught:
        parse(oru("8310-5^Temp^LN||37.2|K|||||F"))
    assert caught.value.ack == "AE"
    assert "unit" in caught.value.reason and "37.2" not in caught.value.reason
    with pytest.raises(MessageRejected):  # a temperature without a unit is ambiguous (°C/°F)
        parse(oru("8310-5^Temp^LN||98.6||||||F"))


def test_unknown_codes_are_skipped_and_counted_by_code_only() -> None:
    message = parse(oru("0002-4bb8^SpO2^MDIL||97|%|||||F", "8867-4^HR^LN||70|/min|||||F"))
    assert values(message) == {"hr": 70}
    assert message.skipped_codes == ("MDIL:0002-4bb8",)


@pytest.mark.parametrize(
    ("text", "ack", "error", "words"),
    [
        ("hello world", "AR", "100", "not an HL7"),
        (oru("8867-4^HR^LN||70|/min", msh="MSH|^~\\&|GW|ICU|||20260301||ADT^A01|M1|P|2.5"),
         "AR", "200", "unsupported message type"),
        (oru("8867-4^HR^LN||70|/min", msh="MSH|^~\\&|GW|ICU|||20260301||ORU^R01||P|2.5"),
         "AR", "101", "MSH-10"),
        (oru("8867-4^HR^LN||70|/min", msh="MSH|^~\\&|GW|ICU|||20260301||ORU^R01|M1|P|3.0"),
         "AR", "203", "version"),
        (oru("8867-4^HR^LN||seventy|/min"), "AR", "102", "not a number"),
        (oru("8867-4^HR^LN||nan|/min"), "AR", "102", "not finite"),
        (oru("8867-4^HR^LN||70|/min|||||F|||yesterday"), "AR", "102", "date/time"),
        (oru("||70|/min"), "AR", "101", "OBX-3"),
        (oru(), "AR", "101", "no OBX"),
        (oru("8867-4^HR^LN||70|/min") + "x\x00y|1\r", "AR", "100", "segment"),
    ],
)  # fmt: skip
def test_each_refusal_has_its_ack_code_and_reason(text, ack, error, words) -> None:
    with pytest.raises(MessageRejected) as caught:
        parse(text)
    assert (caught.value.ack, caught.value.error) == (ack, error)
    assert words in caught.value.reason


def test_the_ack_echoes_msh10_and_parses_as_hl7() -> None:
    message = parse(build_message("mindray", NORMAL, "CTRL-9", WHEN))
    ack = hl7.parse(build_ack("AA", message.header).decode())
    assert str(ack.segment("MSA")[1]) == "AA"
    assert str(ack.segment("MSA")[2]) == "CTRL-9"
    assert str(ack.segment("MSH")[9]) == "ACK^R01^ACK"
    assert str(ack.segment("MSH")[12]) == "2.6"
    assert str(ack.segment("MSH")[5]) == "BeneVision"


@pytest.mark.parametrize(("version", "err_field"), [("2.3", 1), ("2.6", 3)])
def test_a_refusal_carries_its_reason_in_msa3_and_err(version, err_field) -> None:
    header = peek_header(f"MSH|^~\\&|GW|ICU|||20260301||ORU^R01|Q|P|{version}".encode())
    raw = build_ack("AR", header, "bad | reason ^ with & separators\r", "204").decode()
    ack = hl7.parse(raw)
    assert str(ack.segment("MSA")[1]) == "AR"
    assert str(ack.segment("MSA")[2]) == "Q"
    assert str(ack.segment("MSA")[3]).startswith("bad   reason")
    assert "204" in str(ack.segment("ERR")[err_field])
    assert raw.count("\r") == 3  # MSH, MSA, ERR: the reason's CR did not make a segment


def test_peek_header_reads_what_it_can_of_a_broken_message() -> None:
    header = peek_header(b"MSH|^~\\&|APP|FAC|||2026||ORU^R01|ID-1|P|2.4|" + b"x" * 5000)
    assert (header.control_id, header.version, header.sending_app) == ("ID-1", "2.4", "APP")
    assert peek_header(b"garbage").control_id == ""
    assert peek_header(b"MSH|^~\\&|APP|FAC|||2026||ORU^R01|ID-").control_id == ""  # cut short
    assert peek_header(b"MSH|^~\\&|APP|FAC|||2026||ORU^R01|ID-1\r").control_id == "ID-1"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_any_text_after_an_msh_is_parsed_or_refused_never_crashes(tail) -> None:
    text = "MSH|^~\\&|GW|ICU|||2026||ORU^R01|M1|P|2.5\r" + tail
    try:
        message = parse(text)
    except MessageRejected as exc:
        assert exc.ack in {"AR", "AE"}
        assert exc.reason
    else:
        assert message.control_id == "M1"


def test_every_registry_vital_is_reachable_by_its_own_loinc_code() -> None:
    code_map = default_code_map()
    for vital in VITAL_SIGNS:
        entry = code_map.lookup(vital.loinc, "", "LN")
        assert entry is not None and entry.vital == vital.key, vital.key


def test_the_issue_mdc_codes_are_mapped() -> None:
    code_map = default_code_map()
    expected = {
        "150021": "sbp", "150022": "dbp", "150023": None, "150456": "spo2", "147842": "hr",
        "149530": "hr", "151562": "rr", "150344": "temp_c", "150364": "temp_c",
        "151708": "etco2",
    }  # fmt: skip
    for code, vital in expected.items():
        entry = code_map.lookup(code, "", "MDC")
        assert entry is not None and entry.vital == vital, code
        assert entry.source


def test_the_code_map_refuses_a_vital_the_registry_does_not_have() -> None:
    data = json.loads((resources_dir() / "device_codes.json").read_text(encoding="utf-8"))
    data["codes"].append(
        {"system": "LN", "code": "1-1", "name": "x", "vital": "glucose", "source": "test"}
    )
    with pytest.raises(ValueError, match="glucose"):
        CodeMap(data)


def test_an_unknown_unit_identifier_is_not_rescued_by_an_empty_text() -> None:
    with pytest.raises(MappingError):
        default_code_map().convert("spo2", 97, "furlong", "")
    assert default_code_map().convert("spo2", 97, "", "") == 97


@pytest.mark.parametrize("profile", ["philips", "mindray"])
@pytest.mark.parametrize("nibp_only", [False, True])
def test_the_fields_read_agree_with_the_hl7_package(profile, nibp_only) -> None:
    """The splitter reads what the maintained ``hl7`` parser reads, field by field."""
    raw = build_message(
        profile, NORMAL, "REF-1", WHEN, bed="B9", patient="P-4", nibp_only=nibp_only
    )
    reference = hl7.parse(raw.decode())
    message = parse(raw)
    msh = reference.segment("MSH")
    assert message.control_id == str(msh[10])
    assert message.header.version == str(msh[12])
    assert message.message_type == "^".join(str(msh[9]).split("^")[:2])
    assert message.bed == str(reference.segment("PV1").extract_field(1, 3, 1, 3))
    assert message.patient_ids == (str(reference.segment("PID").extract_field(1, 3, 1, 1)),)
    mapped = [
        o
        for o in reference.segments("OBX")
        if "MEAN" not in str(o[3]) and "8478-0" not in str(o[3])
    ]
    assert len(mapped) == len(message.readings)
    for obx, reading in zip(mapped, message.readings, strict=True):
        assert reading.code.split(":")[1] == str(obx.extract_field(1, 3, 1, 1))
        assert reading.value == float(str(obx[5]))
        assert reading.unit == str(obx[6])
        assert reading.observed_at == hl7.parse_datetime(str(obx[14]))
        assert reading.device_id == str(obx.extract_field(1, 18, 1, 1))


def test_an_implausible_device_value_is_kept_and_flagged_for_the_clinician() -> None:
    message = parse(oru("59408-5^SpO2^LN||140|%|||||F", "8867-4^HR^LN||70|/min|||||F"))
    by_vital = {r.vital: r for r in message.readings}
    assert by_vital["spo2"].value == 140
    assert by_vital["spo2"].flags == {ReadingFlag.OUT_OF_RANGE}
    assert by_vital["hr"].flags == frozenset()
