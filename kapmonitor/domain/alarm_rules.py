"""Which protocol limits a reading crosses, and how urgently.

The limits themselves live in the protocol file; this module only compares. A limit fires exactly
at its value (``≥ 180`` fires at 180, not at 179), and a rise from baseline is computed in decimal
arithmetic so that a reading typed as 37.3 against a baseline of 36.7 really is a rise of 0.6, not
0.59999… (binary floating point would otherwise silently miss the limit by a hair). Messages are
plain clinical words with units, because they are read at the bedside under pressure.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from decimal import Decimal
from numbers import Real
from typing import Any

from kapmonitor.domain.protocol import _PARAMETER_WORDS, PRIORITIES, AlarmRule, Priority, Protocol
from kapmonitor.domain.vitals import VITAL_SIGNS

_DECIMALS = {v.key: v.decimals for v in VITAL_SIGNS}


@dataclass(frozen=True)
class AlarmFinding:
    rule_id: str
    parameter: str  # a registry vital (sbp, hr, etco2, temp_c…) or a score (moaas, rass)
    value: float
    priority: Priority
    limit_text: str  # e.g. "≥ 180 mmHg", "≥ baseline + 40 mmHg (118 → 158 mmHg)"
    message: str  # e.g. "Systolic BP 185 mmHg ≥ 180 mmHg (critical)"
    source: str


def _decimal(value: float) -> Decimal:
    """The number as typed: ``repr`` of a float is its shortest round-tripping decimal."""
    return Decimal(repr(float(value)))


def crosses(rule: AlarmRule, value: float, baseline: float | None) -> bool:
    """True exactly when ``value`` is at or beyond the rule's limit (relative rules need a
    baseline; without one they never fire)."""
    if not _usable(value):
        return False
    if rule.at_or_above is not None:
        return value >= rule.at_or_above
    if rule.at_or_below is not None:
        return value <= rule.at_or_below
    if rule.rise_at_least is not None and _usable(baseline):
        assert baseline is not None
        return _decimal(value) - _decimal(baseline) >= _decimal(rule.rise_at_least)
    if rule.fall_percent_at_least is not None and _usable(baseline):
        assert baseline is not None
        if baseline <= 0:
            return False
        return _fall_limit(rule.fall_percent_at_least, baseline) >= _decimal(value)
    return False


def _fall_limit(percent: float, baseline: float) -> Decimal:
    """The value at which a fall of ``percent`` % from ``baseline`` is reached (120, 20 % → 96),
    in decimal arithmetic so that the edge is exact."""
    return _decimal(baseline) * (Decimal(100) - _decimal(percent)) / Decimal(100)


def _usable(value: Any) -> bool:
    """A measured number: not None, not a bool, not NaN or infinite."""
    if value is None:  # the usual case (a vital not measured): no abstract-class check
        return False
    if type(value) is float or type(value) is int:  # exact types: a bool is neither
        return math.isfinite(value)
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _applies(rule: AlarmRule, after_dose: bool) -> bool:
    if rule.phase == "pre_dose":
        return not after_dose
    if rule.phase == "post_dose":
        return after_dose
    return True


def _format(parameter: str, value: float) -> str:
    """A value as a clinician writes it: 185, 38.0 °C, RASS +2 / −3. A vital entered with
    decimals (the registry says how many) keeps them, so 38 °C reads as 38.0."""
    decimals = _DECIMALS.get(parameter, 0)
    if decimals:
        text = f"{value:.{decimals}f}" if round(value, decimals) == value else repr(float(value))
    elif value == int(value):
        text = str(int(value))
    else:
        text = repr(float(value))
    if parameter == "rass" and value > 0:
        text = f"+{text}"
    return text.replace("-", "−")


def _with_unit(parameter: str, value: float) -> str:
    unit = _PARAMETER_WORDS[parameter][1]
    number = _format(parameter, value)
    return f"{number} {unit}" if unit else number


def value_words(parameter: str, value: float) -> str:
    """ "SpO₂ 84 %": the vital's alarm name and the value with its unit, as a message says it
    (the banner's folded device alarm, issue 13, reads the same as the alarm it continues)."""
    return f"{_PARAMETER_WORDS[parameter][0]} {_with_unit(parameter, value)}"


def limit_text(rule: AlarmRule, baseline: float | None = None) -> str:
    """The limit in words, e.g. "≥ 180 mmHg" or "≥ baseline + 40 mmHg (118 → 158 mmHg)"."""
    p = rule.parameter
    if rule.at_or_above is not None:
        return f"≥ {_with_unit(p, rule.at_or_above)}"
    if rule.at_or_below is not None:
        return f"≤ {_with_unit(p, rule.at_or_below)}"
    if rule.fall_percent_at_least is not None:
        percent = rule.fall_percent_at_least
        text = f"≥ {_format(p, percent)} % below baseline"
        if _usable(baseline) and baseline is not None and baseline > 0:
            limit = float(_fall_limit(percent, baseline))
            text += f" ({_format(p, baseline)} → ≤ {_with_unit(p, round(limit, 1))})"
        return text
    rise = rule.rise_at_least if rule.rise_at_least is not None else 0.0
    text = f"≥ baseline + {_with_unit(p, rise)}"
    if _usable(baseline):
        assert baseline is not None
        limit = float(_decimal(baseline) + _decimal(rise))
        text += f" ({_format(p, baseline)} → {_with_unit(p, limit)})"
    return text


def _finding(rule: AlarmRule, value: float, baseline: float | None) -> AlarmFinding:
    name = _PARAMETER_WORDS[rule.parameter][0]
    limit = limit_text(rule, baseline)
    # A named event ("Apnoea", "Hypotension") leads, so the banner says what is happening.
    headline = f"{rule.headline}: " if rule.headline else ""
    return AlarmFinding(
        rule_id=rule.id,
        parameter=rule.parameter,
        value=float(value),
        priority=rule.priority,
        limit_text=limit,
        message=f"{headline}{name} {_with_unit(rule.parameter, value)} {limit} ({rule.priority})",
        source=rule.source,
    )


def _lookup(values: dict[str, Any] | None, parameter: str) -> float | None:
    if not values:
        return None
    value = values.get(parameter)
    return float(value) if _usable(value) else None


def evaluate(
    protocol: Protocol,
    values: dict[str, Any],
    baseline: dict[str, Any] | None,
    after_dose: bool,
) -> list[AlarmFinding]:
    """Every rule the reading crosses, highest priority first. ``values`` holds any of the
    alarm parameters (None or missing = not measured); ``baseline`` the pre-dose values.
    Rules of the same priority keep the protocol's order."""
    findings = []
    for rule in protocol.alarms:
        if values.get(rule.parameter) is None:
            continue  # not measured: most rules, for most readings (a 1 Hz SpO2/HR feed)
        if not _applies(rule, after_dose):
            continue
        value = _lookup(values, rule.parameter)
        if value is None:
            continue
        base = _lookup(baseline, rule.parameter)
        if crosses(rule, value, base):
            findings.append(_finding(rule, value, base))
    findings.sort(key=lambda f: -PRIORITIES.index(f.priority))
    return findings


def one_per_parameter(findings: list[AlarmFinding]) -> list[AlarmFinding]:
    """One alarm per vital sign and reading: the most urgent rule, naming the others it crossed.

    A single SBP of 186 crosses both "≥ 180" and "≥ baseline + 40"; two banners and two
    acknowledgements for one number is how alarm fatigue starts in a dim room. The other limits
    are kept in the message, so nothing the protocol said is lost. ``findings`` come from
    :func:`evaluate` (highest priority first), and that order is kept.
    """
    kept: dict[str, AlarmFinding] = {}
    also: dict[str, list[str]] = {}
    for finding in findings:
        if finding.parameter not in kept:
            kept[finding.parameter] = finding
            also[finding.parameter] = []
        else:
            also[finding.parameter].append(f"{finding.limit_text} ({finding.priority})")
    merged = []
    for parameter, finding in kept.items():
        extra = also[parameter]
        if extra:
            finding = dataclasses.replace(
                finding, message=f"{finding.message}; also {'; '.join(extra)}"
            )
        merged.append(finding)
    return merged


def highest(findings: list[AlarmFinding]) -> Priority | None:
    """The most urgent priority among the findings; None when there are none."""
    if not findings:
        return None
    return max((f.priority for f in findings), key=PRIORITIES.index)
