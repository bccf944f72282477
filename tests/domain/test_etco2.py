"""End-tidal CO₂ through the registry, in the domain: the entry record takes it, refuses an
implausible or fractional value with the reason, and each shipped protocol alarms beyond each of
its limits and not within them. The layers below the chart loop over the registry, so EtCO₂
appears in each without a list of its own."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from kapmonitor.domain import protocol as protocol_module
from kapmonitor.domain import quality, timeline, vital_alerts
from kapmonitor.domain.alarm_rules import evaluate, one_per_parameter
from kapmonitor.domain.protocol import ALARM_PARAMETERS, load_protocols
from kapmonitor.domain.records import VITAL_FIELDS, VitalSigns
from kapmonitor.domain.reference import default_reference
from kapmonitor.domain.session_rows import VitalsRow
from kapmonitor.domain.validation import ValidationError
from kapmonitor.domain.vitals import VITAL_KEYS, VITAL_SIGNS
from kapmonitor.paths import resources_dir

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REF = default_reference()
SHIPPED = load_protocols([resources_dir() / "protocols"]).protocols


def test_the_record_validates_and_stores_etco2() -> None:
    reading = VitalSigns(NOW, spo2=97, etco2=38)
    reading.validate(REF, NOW)
    assert reading.row()["etco2"] == 38
    assert set(VITAL_KEYS) <= set(reading.columns())
    VitalSigns(NOW, etco2=0).validate(REF, NOW)  # no exhaled CO₂ is recordable on its own


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (101, "EtCO₂ 101 mmHg is not possible: enter 0–100 mmHg"),
        (-1, "EtCO₂ -1 mmHg is not possible: enter 0–100 mmHg"),
        (38.5, "End-tidal CO₂: whole numbers only (got 38.5)"),
    ],
)
def test_an_implausible_etco2_is_refused_with_the_reason(value: float, reason: str) -> None:
    with pytest.raises(ValidationError) as refused:
        VitalSigns(NOW, hr=70, etco2=value).validate(REF, NOW)  # type: ignore[arg-type]
    assert refused.value.for_field("etco2") == reason


@pytest.mark.parametrize("protocol_id", sorted(SHIPPED))
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (29, ("etco2_low", "warning")),
        (30, None),
        (38, None),
        (50, None),
        (51, ("etco2_high", "warning")),
        (60, ("etco2_high", "warning")),
        (61, ("etco2_high_critical", "critical")),
        (11, ("etco2_low", "warning")),
        (10, ("etco2_low_critical", "critical")),
        (0, ("etco2_low_critical", "critical")),
    ],
)
def test_each_protocol_alarms_beyond_each_etco2_limit_and_not_within(
    protocol_id: str, value: int, expected: tuple[str, str] | None
) -> None:
    findings = one_per_parameter(evaluate(SHIPPED[protocol_id], {"etco2": value}, None, True))
    assert [(f.rule_id, f.priority) for f in findings] == ([expected] if expected else [])
    for finding in findings:
        assert f"EtCO₂ {value} mmHg" in finding.message


def test_etco2_limits_are_labelled_editable_defaults_with_their_source() -> None:
    for protocol in SHIPPED.values():
        rules = [r for r in protocol.alarms if r.parameter == "etco2"]
        assert {r.id for r in rules} == {
            "etco2_low_critical",
            "etco2_low",
            "etco2_high",
            "etco2_high_critical",
        }
        for rule in rules:
            assert "KAP Monitor default, clinic to confirm" in rule.source
            assert "EtCO₂" in rule.label


def test_every_layer_below_the_chart_reads_the_registry() -> None:
    assert VITAL_FIELDS == VITAL_KEYS
    assert (*(v.key for v in VITAL_SIGNS if v.alarm), "moaas", "rass") == ALARM_PARAMETERS
    assert "etco2" in protocol_module._BASELINE_VITALS
    assert vital_alerts.VITALS["etco2"] == ("vitals", ("etco2",))
    assert vital_alerts.VITAL_NAMES["etco2"] == "EtCO₂"
    corrected = {key for key, _label, _unit in quality._CORRECTED_VALUES["vitals"]}
    assert corrected == set(VITAL_KEYS)


def test_the_timeline_line_shows_etco2() -> None:
    row = VitalsRow(
        id=1,
        session_id="s" * 32,
        observed_at="2026-01-01T10:00:00.000Z",
        recorded_at="2026-01-01T10:00:00.000Z",
        recorded_by="Dr A",
        sbp=124,
        dbp=78,
        hr=72,
        spo2=97,
        rr=14,
        etco2=38,
        temp_c=36.6,
    )
    assert timeline.describe("vitals", row, REF) == (
        "BP 124/78, HR 72, SpO₂ 97%, RR 14, EtCO₂ 38 mmHg, T 36.6 °C"
    )
    assert timeline.describe("vitals", replace(row, etco2=None), REF) == (
        "BP 124/78, HR 72, SpO₂ 97%, RR 14, T 36.6 °C"
    )


def test_a_protocol_may_ask_for_etco2_in_the_baseline_and_at_a_checkpoint() -> None:
    text = (resources_dir() / "protocols" / "clinic-ketamine.toml").read_text(encoding="utf-8")
    edited = text.replace(
        'baseline_vitals = ["bp", "hr", "spo2"]', 'baseline_vitals = ["bp", "hr", "spo2", "etco2"]'
    )
    assert edited != text
    parsed = protocol_module.parse_protocol(edited, "clinic.toml")
    assert parsed.baseline_vitals == ("bp", "hr", "spo2", "etco2")
    with pytest.raises(protocol_module.ProtocolError, match="unknown vital 'co2'"):
        protocol_module.parse_protocol(edited.replace('"etco2"]', '"co2"]'), "clinic.toml")
