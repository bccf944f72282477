"""Reading a scenario file: JSON in, a checked :class:`Scenario` out, or one sentence naming the
problem.

The checking rules live beside what they check: the small type descriptions and the file's own
fields in ``format.py``, each step kind's in ``steps.py``, each expectation's in ``expect.py``.
This module brings the three together, so none of them imports another in a circle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kapmonitor.scenario import expect as expect_keys
from kapmonitor.scenario import steps as step_kinds
from kapmonitor.scenario.format import (
    DEFAULT_CLINICIANS,
    DEFAULT_PATIENT,
    STEP_COMMON,
    TOP,
    Number,
    Scenario,
    ScenarioError,
    Step,
    Text,
)

__all__ = ["known_protocols", "parse", "read"]


def read(path: Path, protocols: set[str] | None = None) -> Scenario:
    """Load and check one scenario file; raises :class:`ScenarioError` naming the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise ScenarioError(f"cannot be read ({exc.strerror or exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    return parse(data, str(path), protocols)


def parse(data: Any, source: str = "scenario", protocols: set[str] | None = None) -> Scenario:
    """Check a scenario already read from JSON. ``protocols`` are the known protocol ids (the
    shipped ones and the clinic's own, as the window loads them) when not given."""
    if not isinstance(data, dict):
        raise ScenarioError("the file must hold one JSON object")
    steps_raw = data.get("steps")
    shallow = {k: v for k, v in data.items() if k != "steps"}
    if isinstance(steps_raw, list):
        shallow["steps"] = []
    elif "steps" in data:
        shallow["steps"] = steps_raw
    found = TOP.problem(shallow, "scenario")
    if found:
        raise ScenarioError(found.removeprefix("scenario."))
    if protocols is None:
        protocols = known_protocols()
    if data["protocol"] not in protocols:
        raise ScenarioError(
            f"protocol {data['protocol']!r} is not known (known: {', '.join(sorted(protocols))})"
        )
    if not steps_raw:
        raise ScenarioError("steps must list at least one step")
    patient = {**DEFAULT_PATIENT, **data.get("patient", {})}
    clinicians = tuple(data.get("clinicians", DEFAULT_CLINICIANS))
    steps: list[Step] = []
    previous: float | None = None
    for index, raw in enumerate(steps_raw, start=1):
        step = _step(index, raw, clinicians, previous, step_kinds.KINDS, expect_keys.EXPECT)
        previous = step.at
        steps.append(step)
    start = data.get("session_start", steps[0].at)
    if start > steps[0].at:
        raise ScenarioError(
            f"session_start {start:g} is after step 1 (at {steps[0].at:g}): the session must "
            "start before its first step"
        )
    return Scenario(
        name=data.get("name", Path(source).stem),
        description=data.get("description", ""),
        protocol=data["protocol"],
        patient=patient,
        clinicians=clinicians,
        session_start=float(start),
        steps=tuple(steps),
        source=source,
    )


def _step(
    number: int,
    raw: Any,
    clinicians: tuple[str, ...],
    previous: float | None,
    kinds: Mapping[str, Any],
    expectations: Mapping[str, Any],
) -> Step:
    at = raw.get("at") if isinstance(raw, dict) else None
    label = f"step {number}" + (
        f" (at {at:g})" if isinstance(at, int | float) and not isinstance(at, bool) else ""
    )

    def fail(problem: str) -> ScenarioError:
        return ScenarioError(f"{label}: {problem}")

    if not isinstance(raw, dict):
        raise fail('must be an object such as {"at": 0, "vitals": {...}}')
    if "at" not in raw:
        raise fail("at is missing (minutes from the first dose)")
    problem = Number().problem(at, "at")
    if problem:
        raise fail(problem)
    if previous is not None and at < previous:
        raise fail(f"steps out of order: at {at:g} comes after a step at {previous:g}")
    named = [k for k in raw if k not in STEP_COMMON]
    if not named and "note" in raw:
        named = ["note"]
    unknown = [k for k in named if k not in kinds]
    if unknown:
        raise fail(f"unknown step kind {unknown[0]!r} (known: {', '.join(sorted(kinds))})")
    if len(named) != 1:
        what = ", ".join(named) if named else "none"
        raise fail(f"a step has exactly one kind, such as vitals or dose (found: {what})")
    kind = named[0]
    for comment in ("note", "comment"):
        if comment in raw and comment != kind:
            problem = Text().problem(raw[comment], comment)
            if problem:
                raise fail(problem)
    if kind == "start" and number != 1:
        raise fail("start must be the first step (the session starts once)")
    problem = kinds[kind].spec.problem(raw[kind], kind)
    if problem:
        raise fail(problem)
    by = raw.get("by", clinicians[0])
    problem = Text().problem(by, "by")
    if problem:
        raise fail(problem)
    if by not in clinicians:
        raise fail(f"by {by!r} is not one of the scenario's clinicians ({', '.join(clinicians)})")
    expect = raw.get("expect", {})
    if not isinstance(expect, dict):
        raise fail("expect must be an object")
    for key, value in expect.items():
        if key not in expectations:
            raise fail(
                f"expect.{key} is not a known expectation (known: {', '.join(expectations)})"
            )
        problem = expectations[key].spec.problem(value, f"expect.{key}")
        if problem:
            raise fail(problem)
    return Step(number, float(at), kind, raw[kind], by, dict(expect))


def known_protocols() -> set[str]:
    """The protocol ids the window offers: the shipped ones and the clinic's own."""
    from kapmonitor.domain.protocol import load_protocols, protocol_folders

    return set(load_protocols(protocol_folders()).protocols)
