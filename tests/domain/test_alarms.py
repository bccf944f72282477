"""Every alarm rule of both shipped protocols fires exactly at its limit and not one unit inside.

The rules are generated from the loaded protocol files, so a clinic-visible number that changes in
a file is tested as it now reads. A property test checks ``evaluate`` against an independent
re-statement of the rules in integer arithmetic.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kapmonitor.domain.alarm_rules import (
    AlarmFinding,
    crosses,
    evaluate,
    highest,
    limit_text,
    one_per_parameter,
)
from kapmonitor.domain.protocol import (
    ALARM_PARAMETERS,
    PRIORITIES,
    AlarmRule,
    Protocol,
    ProtocolError,
    load_protocols,
    parse_protocol,
)
from kapmonitor.domain.reference import default_reference
from kapmonitor.domain.vitals import VITAL_SIGNS
from kapmonitor.paths import resources_dir

SHIPPED_DIR = resources_dir() / "protocols"
SHIPPED = load_protocols([SHIPPED_DIR]).protocols
RULES = [(p.id, rule) for p in SHIPPED.values() for rule in p.alarms]
# A plausible pre-dose baseline for the relative rules (inside the plausibility ranges).
BASELINE = {"sbp": 118, "dbp": 76, "hr": 72, "spo2": 97, "rr": 14, "etco2": 38, "temp_c": 36.6}


def step(parameter: str) -> float:
    """One unit of the vital as it is entered: 0.1 °C, else a whole unit."""
    return 0.1 if parameter == "temp_c" else 1


def inside(rule: AlarmRule, limit: float) -> float:
    """One unit on the safe side of ``limit``."""
    one = step(rule.parameter)
    value = limit + one if rule.at_or_below is not None else limit - one
    return round(value, 1)


def fired(protocol_id: str, values: dict[str, Any], baseline: dict[str, Any] | None, after: bool):
    return [f.rule_id for f in evaluate(SHIPPED[protocol_id], values, baseline, after)]


def absolute(rule: AlarmRule) -> bool:
    return rule.at_or_above is not None or rule.at_or_below is not None


def after_dose_for(rule: AlarmRule) -> bool:
    return rule.phase != "pre_dose"


def test_both_protocols_have_rules_to_test() -> None:
    assert {pid for pid, _ in RULES} == {"clinic-ketamine", "esketamine-rems"}
    assert len(RULES) >= 30


@pytest.mark.parametrize(
    ("protocol_id", "rule"),
    [r for r in RULES if absolute(r[1])],
    ids=[f"{pid}:{r.id}" for pid, r in RULES if absolute(r)],
)
def test_absolute_rule_fires_at_the_limit_not_one_unit_inside(
    protocol_id: str, rule: AlarmRule
) -> None:
    limit = rule.at_or_above if rule.at_or_above is not None else rule.at_or_below
    assert limit is not None
    safe = inside(rule, limit)
    assert crosses(rule, limit, None)
    assert not crosses(rule, safe, None)
    after = after_dose_for(rule)
    assert rule.id in fired(protocol_id, {rule.parameter: limit}, None, after)
    assert rule.id not in fired(protocol_id, {rule.parameter: safe}, None, after)


@pytest.mark.parametrize(
    ("protocol_id", "rule"),
    [r for r in RULES if r[1].rise_at_least is not None],
    ids=[f"{pid}:{r.id}" for pid, r in RULES if r.rise_at_least is not None],
)
def test_relative_rule_fires_at_baseline_plus_rise_and_never_without_baseline(
    protocol_id: str, rule: AlarmRule
) -> None:
    assert rule.rise_at_least is not None
    base = BASELINE[rule.parameter]
    limit = base + rule.rise_at_least
    safe = round(limit - step(rule.parameter), 1)
    assert crosses(rule, limit, base)
    assert not crosses(rule, safe, base)
    assert not crosses(rule, limit + 100, None)
    after = after_dose_for(rule)
    baseline = {rule.parameter: base}
    assert rule.id in fired(protocol_id, {rule.parameter: limit}, baseline, after)
    assert rule.id not in fired(protocol_id, {rule.parameter: safe}, baseline, after)
    assert rule.id not in fired(protocol_id, {rule.parameter: limit + 100}, None, after)
    assert rule.id not in fired(protocol_id, {rule.parameter: limit + 100}, {}, after)


@pytest.mark.parametrize(
    ("protocol_id", "rule"),
    [r for r in RULES if r[1].fall_percent_at_least is not None],
    ids=[f"{pid}:{r.id}" for pid, r in RULES if r.fall_percent_at_least is not None],
)
def test_fall_rule_fires_at_baseline_minus_percent_and_never_without_baseline(
    protocol_id: str, rule: AlarmRule
) -> None:
    percent = rule.fall_percent_at_least
    assert percent is not None
    base = 120  # whole-number edges: 20 % -> 96, 30 % -> 84
    limit = base * (100 - percent) / 100
    assert limit == int(limit)
    assert crosses(rule, limit, base)
    assert not crosses(rule, limit + 1, base)
    assert not crosses(rule, 40, None)
    assert not crosses(rule, 40, 0)
    after = after_dose_for(rule)
    assert rule.id in fired(protocol_id, {rule.parameter: limit}, {rule.parameter: base}, after)
    assert rule.id not in fired(
        protocol_id, {rule.parameter: limit + 1}, {rule.parameter: base}, after
    )
    assert rule.id not in fired(protocol_id, {rule.parameter: 40}, None, after)


@pytest.mark.parametrize(
    ("protocol_id", "rule"),
    [r for r in RULES if r[1].phase != "any"],
    ids=[f"{pid}:{r.id}" for pid, r in RULES if r.phase != "any"],
)
def test_phase_limited_rules_fire_only_in_their_phase(protocol_id: str, rule: AlarmRule) -> None:
    value = rule.at_or_above if rule.at_or_above is not None else rule.at_or_below
    if rule.rise_at_least is not None:
        value = BASELINE[rule.parameter] + rule.rise_at_least + 10
    if rule.fall_percent_at_least is not None:
        value = BASELINE[rule.parameter] * (100 - rule.fall_percent_at_least) / 100 - 1
    baseline = BASELINE
    right = rule.phase == "post_dose"
    assert rule.id in fired(protocol_id, {rule.parameter: value}, baseline, right)
    assert rule.id not in fired(protocol_id, {rule.parameter: value}, baseline, not right)


def test_shipped_protocols_have_both_phases() -> None:
    for protocol in SHIPPED.values():
        assert {r.phase for r in protocol.alarms} == {"any", "pre_dose", "post_dose"}


def test_findings_come_highest_priority_first() -> None:
    protocol = SHIPPED["clinic-ketamine"]
    values = {"temp_c": 38.4, "hr": 120, "sbp": 185, "spo2": 88, "dbp": 95}
    findings = evaluate(protocol, values, {"sbp": 120, "dbp": 80}, after_dose=True)
    priorities = [f.priority for f in findings]
    assert priorities == sorted(priorities, key=PRIORITIES.index, reverse=True)
    assert priorities[0] == "critical" and priorities[-1] == "advisory"
    assert {f.rule_id for f in findings} == {
        "sbp_high_critical",
        "spo2_low_critical",
        "spo2_low_warning",
        "sbp_rise",
        "hr_high",
        "temp_high",
    }
    # Same priority keeps the protocol's order.
    assert [f.rule_id for f in findings[:2]] == ["spo2_low_critical", "sbp_high_critical"]
    assert highest(findings) == "critical"
    assert highest([f for f in findings if f.priority == "advisory"]) == "advisory"
    assert highest([]) is None


def test_messages_are_plain_words_with_units() -> None:
    protocol = SHIPPED["esketamine-rems"]
    [sbp] = [f for f in evaluate(protocol, {"sbp": 185}, None, True) if f.parameter == "sbp"]
    assert sbp.limit_text == "≥ 180 mmHg"
    assert sbp.message == "Systolic BP 185 mmHg ≥ 180 mmHg (critical)"
    assert sbp.value == 185 and sbp.source.startswith("KAP Monitor default alarm set")
    [rise] = evaluate(protocol, {"sbp": 160}, {"sbp": 118}, True)
    assert rise.limit_text == "≥ baseline + 40 mmHg (118 → 158 mmHg)"
    assert rise.message == "Systolic BP 160 mmHg ≥ baseline + 40 mmHg (118 → 158 mmHg) (warning)"
    [spo2, *_] = evaluate(protocol, {"spo2": 89}, None, True)
    assert spo2.message == "Desaturation: SpO₂ 89 % ≤ 89 % (critical)"
    [temp] = evaluate(protocol, {"temp_c": 38}, None, True)
    assert temp.message == "Temperature 38.0 °C ≥ 38.0 °C (advisory)"
    [rass] = evaluate(protocol, {"rass": 3}, None, True)
    assert rass.message == "RASS +3 ≥ +2 (warning)"
    [sedated] = evaluate(protocol, {"rass": -4}, None, True)
    assert sedated.message == "RASS −4 ≤ −3 (warning)"
    [moaas] = evaluate(protocol, {"moaas": 1}, None, True)
    assert moaas.message == "MOAA/S 1 ≤ 2 (critical)"
    rule = next(r for r in protocol.alarms if r.id == "dbp_rise")
    assert limit_text(rule) == "≥ baseline + 25 mmHg"


def test_missing_and_unusable_values_are_not_measured() -> None:
    protocol = SHIPPED["clinic-ketamine"]
    assert evaluate(protocol, {}, None, True) == []
    odd = {"sbp": None, "hr": math.nan, "spo2": True, "rr": "8", "temp_c": math.inf}
    assert evaluate(protocol, odd, {"sbp": None}, True) == []
    assert evaluate(protocol, {"sbp": 150}, {"sbp": math.nan}, True) == []


def test_a_decimal_rise_is_exact() -> None:
    rule = AlarmRule("t", "temp_c", "advisory", "test", "rise", rise_at_least=0.6)
    assert 37.3 - 36.7 < 0.6  # binary floating point would miss this one
    assert crosses(rule, 37.3, 36.7)
    assert not crosses(rule, 37.2, 36.7)


# --- Property tests ---------------------------------------------------------------------------

# Each vital as integer "units" of entry (tenths for temperature), over its plausible range: the
# registry's decimals and the shipped plausibility file, so a new vital sign is covered as added.
_LIMITS = default_reference().limits
UNITS = {v.key: 10**v.decimals for v in VITAL_SIGNS} | {"moaas": 1, "rass": 1}
RANGES = {
    v.key: (
        round(_LIMITS[v.key].minimum * UNITS[v.key]),
        round(_LIMITS[v.key].maximum * UNITS[v.key]),
    )
    for v in VITAL_SIGNS
} | {"moaas": (0, 5), "rass": (-5, 4)}
EXTRA_RULES = (
    AlarmRule("temp_rise", "temp_c", "advisory", "test", "temp rise", rise_at_least=0.6),
    AlarmRule("hr_rise", "hr", "critical", "test", "hr rise", rise_at_least=30, phase="any"),
    AlarmRule("rr_pre", "rr", "advisory", "test", "rr pre", at_or_above=20, phase="pre_dose"),
)
PROTOCOLS = [
    *SHIPPED.values(),
    dataclasses.replace(
        SHIPPED["clinic-ketamine"], alarms=(*EXTRA_RULES, *SHIPPED["clinic-ketamine"].alarms)
    ),
]


def _readings() -> st.SearchStrategy[dict[str, int]]:
    return st.fixed_dictionaries(
        {}, optional={p: st.integers(*RANGES[p]) for p in ALARM_PARAMETERS}
    )


def _as_values(units: dict[str, int]) -> dict[str, float]:
    return {p: (n / 10 if UNITS[p] == 10 else n) for p, n in units.items()}


def _expected(
    protocol: Protocol, units: dict[str, int], base: dict[str, int] | None, after: bool
) -> list[str]:
    """The rules re-stated in whole units: which ids fire, highest priority first."""
    hits = []
    for rule in protocol.alarms:
        if (rule.phase == "pre_dose" and after) or (rule.phase == "post_dose" and not after):
            continue
        if rule.parameter not in units:
            continue
        scale = UNITS[rule.parameter]
        value = units[rule.parameter]
        if rule.at_or_above is not None:
            hit = value >= round(rule.at_or_above * scale)
        elif rule.at_or_below is not None:
            hit = value <= round(rule.at_or_below * scale)
        elif rule.fall_percent_at_least is not None:
            has_base = base is not None and base.get(rule.parameter, 0) > 0
            percent = round(rule.fall_percent_at_least)
            hit = has_base and value * 100 <= base[rule.parameter] * (100 - percent)
        else:
            assert rule.rise_at_least is not None
            has_base = base is not None and rule.parameter in base
            hit = has_base and value - base[rule.parameter] >= round(rule.rise_at_least * scale)
        if hit:
            hits.append((-PRIORITIES.index(rule.priority), rule.id))
    return [rule_id for _, rule_id in sorted(hits, key=lambda h: h[0])]


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    protocol=st.sampled_from(PROTOCOLS),
    units=_readings(),
    base=st.none() | _readings(),
    after=st.booleans(),
)
def test_evaluate_agrees_with_an_independent_statement(
    protocol: Protocol, units: dict[str, int], base: dict[str, int] | None, after: bool
) -> None:
    baseline = None if base is None else _as_values(base)
    findings: list[AlarmFinding] = evaluate(protocol, _as_values(units), baseline, after)
    assert [f.rule_id for f in findings] == _expected(protocol, units, base, after)
    for finding in findings:
        assert finding.message.endswith(f"({finding.priority})")
    assert highest(findings) == (findings[0].priority if findings else None)


@settings(max_examples=1000, deadline=None)
@given(text=st.text())
def test_parse_protocol_on_arbitrary_text_raises_only_protocol_error(text: str) -> None:
    try:
        parse_protocol(text, "fuzz.toml")
    except ProtocolError as exc:
        assert str(exc).startswith("fuzz.toml: ")


SHIPPED_LINES = (SHIPPED_DIR / "esketamine-rems.toml").read_text(encoding="utf-8").splitlines()
TOML_VALUES = st.sampled_from(
    [
        "0",
        "-1",
        "1e400",
        "nan",
        "inf",
        "-inf",
        "true",
        "1.5",
        '""',
        '"  "',
        '"x"',
        "[]",
        "[1, 2]",
        '["a", 3]',
        "{}",
        "{ value = 5 }",
        '{ value = "5", source = "s" }',
        '{ value = 5, source = "s", extra = 1 }',
        "1979-05-27T07:32:00Z",
        "12:00:00",
        '"sbp"',
        '"warning"',
        '"pre"',
        '"post_dose"',
        "9999999999999999999999",
    ]
)


@settings(max_examples=1000, deadline=None)
@given(
    line=st.integers(0, len(SHIPPED_LINES) - 1),
    value=TOML_VALUES | st.text(max_size=20),
    drop=st.booleans(),
)
def test_a_damaged_shipped_file_raises_only_protocol_error(
    line: int, value: str, drop: bool
) -> None:
    lines = list(SHIPPED_LINES)
    if drop:
        del lines[line]
    elif "=" in lines[line]:
        key = lines[line].split("=", 1)[0]
        lines[line] = f"{key}= {value}"
    else:
        lines[line] = value
    try:
        protocol = parse_protocol("\n".join(lines), "damaged.toml")
    except ProtocolError as exc:
        assert str(exc).startswith("damaged.toml: ")
    else:
        assert Protocol.from_dict(protocol.to_dict()) == protocol


def test_damaged_files_in_a_folder_never_stop_loading(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text("[[alarms]]\nid = 1\n", encoding="utf-8")
    (tmp_path / "b.toml").write_bytes(b"\xff\xfe\x00")
    (tmp_path / "c.toml").write_text("[" * 5000, encoding="utf-8")
    catalogue = load_protocols([SHIPPED_DIR, tmp_path])
    assert len(catalogue.problems) == 3
    assert set(SHIPPED) <= set(catalogue.protocols)


def test_one_alarm_per_vital_sign_names_the_other_limits_crossed() -> None:
    protocol = SHIPPED["esketamine-rems"]
    found = evaluate(protocol, {"sbp": 186, "dbp": 104}, {"sbp": 124, "dbp": 78}, True)
    assert [f.rule_id for f in found] == [
        "sbp_high_critical",
        "sbp_rise",
        "dbp_rise",
        "dbp_trial_stop",
    ]
    merged = one_per_parameter(found)
    assert [(f.rule_id, f.priority) for f in merged] == [
        ("sbp_high_critical", "critical"),
        ("dbp_rise", "warning"),
    ]
    assert merged[0].message == (
        "Systolic BP 186 mmHg ≥ 180 mmHg (critical); "
        "also ≥ baseline + 40 mmHg (124 → 164 mmHg) (warning)"
    )
    assert merged[1].message.endswith("; also ≥ 101 mmHg (warning)")
    assert one_per_parameter([]) == []


# --- Alarm tiers (hypotension, critical low tiers, apnoea, deep desaturation) ----------------


@pytest.mark.parametrize("protocol_id", sorted(SHIPPED))
@pytest.mark.parametrize(
    ("values", "base", "rule_id", "priority", "headline"),
    [
        ({"sbp": 90}, None, "sbp_low", "warning", "Hypotension"),
        ({"sbp": 79}, None, "sbp_low_critical", "critical", "Hypotension"),
        ({"sbp": 96}, {"sbp": 120}, "sbp_fall", "warning", "Hypotension"),
        ({"sbp": 84}, {"sbp": 120}, "sbp_fall_critical", "critical", "Hypotension"),
        ({"rr": 8}, None, "rr_low_critical", "critical", "Bradypnoea"),
        ({"rr": 3}, None, "rr_apnoea", "critical", "Apnoea"),
        ({"rr": 0}, None, "rr_apnoea", "critical", "Apnoea"),
        ({"hr": 40}, None, "hr_low_critical", "critical", "Bradycardia"),
        ({"hr": 131}, None, "hr_high_critical", "critical", "Tachycardia"),
        ({"spo2": 89}, None, "spo2_low_critical", "critical", "Desaturation"),
        ({"spo2": 74}, None, "spo2_severe", "critical", "Severe desaturation"),
        ({"spo2": 30}, None, "spo2_severe", "critical", "Severe desaturation"),
    ],
)
def test_each_tier_leads_its_single_alarm_at_its_edge(
    protocol_id: str, values: dict, base: dict | None, rule_id: str, priority: str, headline: str
) -> None:
    [finding] = one_per_parameter(evaluate(SHIPPED[protocol_id], values, base, True))
    assert (finding.rule_id, finding.priority) == (rule_id, priority)
    assert finding.message.startswith(f"{headline}: ")


@pytest.mark.parametrize("protocol_id", sorted(SHIPPED))
@pytest.mark.parametrize(
    ("values", "base", "tier"),
    [
        ({"sbp": 91}, None, None),
        ({"sbp": 80}, None, "warning"),
        ({"sbp": 97}, {"sbp": 120}, None),
        ({"sbp": 85}, {"sbp": 120}, "warning"),
        ({"rr": 9}, None, "warning"),
        ({"rr": 4}, None, "critical"),
        ({"hr": 41}, None, "warning"),
        ({"hr": 130}, None, "warning"),
        ({"spo2": 75}, None, "critical"),
        ({"spo2": 90}, None, "warning"),
    ],
)
def test_one_unit_inside_each_tier_is_the_tier_below(
    protocol_id: str, values: dict, base: dict | None, tier: str | None
) -> None:
    findings = one_per_parameter(evaluate(SHIPPED[protocol_id], values, base, True))
    assert highest(findings) == tier
    if tier == "critical":  # e.g. RR 4 is bradypnoea, not apnoea
        assert not findings[0].message.startswith("Apnoea")
        assert not findings[0].message.startswith("Severe")


def test_the_fall_limit_text_shows_the_numbers() -> None:
    rule = next(r for r in SHIPPED["esketamine-rems"].alarms if r.id == "sbp_fall")
    assert limit_text(rule, 120) == "≥ 20 % below baseline (120 → ≤ 96 mmHg)"
    assert limit_text(rule) == "≥ 20 % below baseline"
    [finding] = evaluate(SHIPPED["esketamine-rems"], {"sbp": 95}, {"sbp": 120}, True)
    assert finding.message == (
        "Hypotension: Systolic BP 95 mmHg ≥ 20 % below baseline (120 → ≤ 96 mmHg) (warning)"
    )


def test_a_fall_rule_is_parsed_and_refused_when_impossible() -> None:
    head = (
        'id = "x"\nname = "x"\nversion = 1\nsource = "s"\n'
        'session_limit_minutes = { value = 180, source = "s" }\n'
        'min_monitoring_minutes = { value = 60, source = "s" }\n'
        '[schedule]\noverdue_grace_minutes = { value = 5, source = "s" }\n'
        'before_discharge_window_minutes = { value = 15, source = "s" }\n'
        '[discharge]\nscore = "aldrete"\npass = 9\nsource = "s"\n'
    )
    rule = '[[alarms]]\nid = "f"\nparameter = "sbp"\npriority = "warning"\nsource = "s"\n'
    parsed = parse_protocol(head + rule + "fall_percent_at_least = 25\n", "t.toml")
    [loaded] = parsed.alarms
    assert (
        loaded.fall_percent_at_least == 25 and loaded.label == "Systolic BP ≥ 25 % below baseline"
    )
    assert Protocol.from_dict(parsed.to_dict()) == parsed
    for bad, reason in (("0", "must be above 0"), ("100", "cannot be measured")):
        with pytest.raises(ProtocolError, match=reason):
            parse_protocol(head + rule + f"fall_percent_at_least = {bad}\n", "t.toml")
