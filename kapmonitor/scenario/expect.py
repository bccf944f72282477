"""What a step may ``expect``, and how each expectation is checked against the step's output.

One function per key, registered by ``@expectation`` with the shape it accepts (checked before
anything runs). A function returns ``None`` when met, else a short sentence saying what differed;
the runner reports the first failure per step as ``"expect": "failed: <what>"``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kapmonitor.scenario.format import (
    Boolean,
    Either,
    Fields,
    Integer,
    ListOf,
    MapOf,
    OneOf,
    Spec,
    Text,
)

Check = Callable[[dict[str, Any], Any], str | None]


@dataclass(frozen=True)
class Expectation:
    key: str
    spec: Spec
    check: Check


EXPECT: dict[str, Expectation] = {}


def expectation(key: str, spec: Spec) -> Callable[[Check], Check]:
    def register(function: Check) -> Check:
        if key in EXPECT:
            raise ValueError(f"expectation {key!r} is registered twice")
        EXPECT[key] = Expectation(key, spec, function)
        return function

    return register


def check_all(line: dict[str, Any], expect: dict[str, Any]) -> list[str]:
    """Every unmet expectation of one step, in the order written."""
    failures = []
    for key, wanted in expect.items():
        found = EXPECT[key].check(line, wanted)
        if found:
            failures.append(found)
    return failures


def _missing(texts: list[str], within: list[str], what: str) -> str | None:
    for text in texts:
        if not any(text.casefold() in item.casefold() for item in within):
            shown = "; ".join(within) if within else "none"
            return f"no {what} contains {text!r} (got: {shown})"
    return None


@expectation("result", OneOf("committed", "refused"))
def result(line: dict[str, Any], wanted: str) -> str | None:
    if line["result"] == wanted:
        return None
    why = f" ({'; '.join(line['reasons'])})" if line["reasons"] else ""
    return f"result {line['result']}, expected {wanted}{why}"


@expectation("reasons", ListOf(Text(), non_empty=True))
def reasons(line: dict[str, Any], wanted: list[str]) -> str | None:
    return _missing(wanted, line["reasons"], "reason")


ALARM = Fields({"parameter": Text(), "priority": Text(), "rule": Text()}, required=("parameter",))


def _alarm_text(alarm: dict[str, Any]) -> str:
    return f"{alarm['parameter']} {alarm['priority']}"


@expectation("alarms", ListOf(ALARM, non_empty=True))
def alarms(line: dict[str, Any], wanted: list[dict[str, Any]]) -> str | None:
    raised = line["alarms"]
    for want in wanted:
        if not any(all(alarm.get(k) == v for k, v in want.items()) for alarm in raised):
            got = ", ".join(_alarm_text(a) for a in raised) or "none"
            need = " ".join(str(v) for v in want.values())
            return f"no {need} alarm was raised (raised: {got})"
    return None


ALARM_FILTER = Fields({"parameter": Text(), "priority": Text(), "rule": Text()})


@expectation("no_alarms", Either(OneOf(True), ListOf(ALARM_FILTER, non_empty=True)))
def no_alarms(line: dict[str, Any], wanted: bool | list[dict[str, Any]]) -> str | None:
    """``true``: the step raised no alarm at all; a list: none matching any of these."""
    raised = line["alarms"]
    if wanted is True:
        matching = raised
    else:
        assert isinstance(wanted, list)
        matching = [
            alarm
            for alarm in raised
            if any(all(alarm.get(k) == v for k, v in want.items()) for want in wanted)
        ]
    if matching:
        return f"expected no such alarm, raised: {', '.join(_alarm_text(a) for a in matching)}"
    return None


@expectation("ready", Boolean())
def ready(line: dict[str, Any], wanted: bool) -> str | None:
    if "ready" not in line:
        return "this step gives no readiness (only discharge_check does)"
    if line["ready"] == wanted:
        return None
    why = f" (blockers: {'; '.join(line['blockers'])})" if line.get("blockers") else ""
    return f"ready is {str(line['ready']).lower()}, expected {str(wanted).lower()}{why}"


@expectation("blockers", ListOf(Text(), non_empty=True))
def blockers(line: dict[str, Any], wanted: list[str]) -> str | None:
    if "blockers" not in line:
        return "this step gives no blockers (only discharge_check does)"
    return _missing(wanted, line["blockers"], "blocker")


@expectation(
    "news2",
    Either(OneOf("incomplete"), Fields({"total": Integer(), "band": Text()})),
)
def news2(line: dict[str, Any], wanted: str | dict[str, Any]) -> str | None:
    got = line["news2"]
    if got is None:
        return "no NEWS2 was computed by this step"
    if wanted == "incomplete":
        wanted = {"band": "incomplete"}
    assert isinstance(wanted, dict)
    if all(got.get(k) == v for k, v in wanted.items()):
        return None
    return f"NEWS2 is {_news2_text(got)}, expected {_news2_text(wanted)}"


@expectation("rems", MapOf(Either(Text(), OneOf(None))))
def rems(line: dict[str, Any], wanted: dict[str, str | None]) -> str | None:
    """REMS form answers (a ``rems_form`` step): each field's answer starts with the text given
    ("Yes", "60 min", "REMS due 2026-…"), or ``null`` for a field the log cannot fill."""
    if "rems" not in line:
        return "this step gives no REMS form (only rems_form does)"
    for key, text in wanted.items():
        if key not in line["rems"]:
            return f"the REMS form has no field {key!r} (fields: {', '.join(line['rems'])})"
        got = line["rems"][key]
        if text is None:
            if key not in line.get("rems_missing", []):
                return f"REMS {key} is {got!r}, expected it not filled"
        elif not got.startswith(text):
            return f"REMS {key} is {got!r}, expected it to start with {text!r}"
    return None


@expectation("rems_flagged", ListOf(Text(), non_empty=True))
def rems_flagged(line: dict[str, Any], wanted: list[str]) -> str | None:
    """REMS answers flagged for a look before submitting (e.g. ``bp_before_end`` when stale)."""
    flags = line.get("rems_flags", {})
    for key in wanted:
        if key not in flags:
            return f"REMS {key} is not flagged (flagged: {', '.join(flags) or 'none'})"
    return None


def _news2_text(value: Any) -> str:
    if not isinstance(value, dict):
        return str(value)
    return " ".join(f"{k} {value[k]}" for k in ("total", "band") if k in value)
