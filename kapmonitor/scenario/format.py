"""Reading a scenario file, and refusing a malformed one before anything runs.

A scenario is a test a clinic writes for its own protocol (docs/scenarios.md). A typo in it must
never turn into a run that "passes" because a step silently did nothing, and must never end in a
traceback: every problem is one sentence naming the step, e.g.
``step 4 (at 40): vitals.sbp must be a number``. What each step kind and each ``expect`` key accepts
is declared beside its handler (kapmonitor/scenario/steps.py, expect.py) with the small type
descriptions below, so adding a kind there is enough for it to be checked here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_PATIENT: dict[str, Any] = {
    "code": "SCN-1",
    "weight_kg": 70,
    "sex": "female",
    "birth_year": 1980,
    "indication": "trd",
}
DEFAULT_CLINICIANS: tuple[str, ...] = ("Dr A", "Nurse B")
# Keys a step may carry besides its one kind.
STEP_COMMON = ("at", "by", "expect", "note", "comment")


class ScenarioError(ValueError):
    """A malformed scenario: the message names the file part or step at fault."""


# --- type descriptions ---------------------------------------------------------------------


class Spec:
    """What a value must be; ``problem`` says why a value is not that, or None."""

    text = "a value"

    def problem(self, value: Any, where: str) -> str | None:
        raise NotImplementedError


class Number(Spec):
    """A finite number (not true/false); ``minimum`` if given."""

    text = "a number"

    def __init__(self, minimum: float | None = None) -> None:
        self.minimum = minimum

    def problem(self, value: Any, where: str) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{where} must be {self.text}"
        if not math.isfinite(value):
            return f"{where} must be a finite number"
        if self.minimum is not None and value < self.minimum:
            return f"{where} must be at least {self.minimum:g}"
        return None


class Integer(Number):
    text = "a number"

    def problem(self, value: Any, where: str) -> str | None:
        found = super().problem(value, where)
        if found is None and float(value) != int(value):
            return f"{where} must be a whole number"
        return found


class Text(Spec):
    text = "text"

    def problem(self, value: Any, where: str) -> str | None:
        if not isinstance(value, str):
            return f"{where} must be text"
        if not value.strip():
            return f"{where} must not be empty"
        return None


class Boolean(Spec):
    text = "true or false"

    def problem(self, value: Any, where: str) -> str | None:
        return None if isinstance(value, bool) else f"{where} must be true or false"


class OneOf(Spec):
    """One of a few fixed values (compared exactly)."""

    def __init__(self, *values: Any) -> None:
        self.values = values
        self.text = "one of " + ", ".join(json.dumps(v) for v in values)

    def problem(self, value: Any, where: str) -> str | None:
        ok = any(type(value) is type(v) and value == v for v in self.values)
        return None if ok else f"{where} must be {self.text}"


class ListOf(Spec):
    def __init__(self, item: Spec, non_empty: bool = False, text: str = "") -> None:
        self.item = item
        self.non_empty = non_empty
        self.text = text or f"a list of {item.text}"

    def problem(self, value: Any, where: str) -> str | None:
        if not isinstance(value, list):
            return f"{where} must be {self.text}"
        if self.non_empty and not value:
            return f"{where} must not be empty"
        for index, item in enumerate(value):
            found = self.item.problem(item, f"{where}[{index}]")
            if found:
                return found
        return None


class MapOf(Spec):
    """An object whose keys are free text and whose values are all one kind."""

    def __init__(self, value: Spec) -> None:
        self.value = value
        self.text = f"an object of {value.text}"

    def problem(self, value: Any, where: str) -> str | None:
        if not isinstance(value, dict):
            return f"{where} must be {self.text}"
        for key, item in value.items():
            found = self.value.problem(item, f"{where}.{key}")
            if found:
                return found
        return None


class Fields(Spec):
    """An object with known keys; unknown keys are refused (a typo must not pass silently)."""

    text = "an object"

    def __init__(self, fields: Mapping[str, Spec], required: tuple[str, ...] = ()) -> None:
        self.fields = dict(fields)
        self.required = required

    def problem(self, value: Any, where: str) -> str | None:
        if not isinstance(value, dict):
            return f"{where} must be {self.text}"
        for key in value:
            if key not in self.fields:
                known = ", ".join(self.fields) or "none"
                return f"{where}.{key} is not a known field (known: {known})"
        for key in self.required:
            if key not in value:
                return f"{where}.{key} is missing"
        for key, item in value.items():
            found = self.fields[key].problem(item, f"{where}.{key}")
            if found:
                return found
        return None


class Either(Spec):
    """Any one of several shapes, e.g. ``"all"`` or an object."""

    def __init__(self, *options: Spec) -> None:
        self.options = options
        self.text = " or ".join(o.text for o in options)

    def problem(self, value: Any, where: str) -> str | None:
        problems = [o.problem(value, where) for o in self.options]
        if any(p is None for p in problems):
            return None
        # The object's own problem is more use than "must be X or Y" when an object was given.
        for option, found in zip(self.options, problems, strict=True):
            if isinstance(option, Fields) and isinstance(value, dict):
                return found
        return f"{where} must be {self.text}"


# --- the scenario ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    number: int  # 1-based, as the messages name it
    at: float  # minutes from the reference time (the first dose, by convention)
    kind: str
    payload: Any
    by: str
    expect: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        return f"step {self.number} (at {self.at:g})"


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    protocol: str
    patient: dict[str, Any]
    clinicians: tuple[str, ...]
    session_start: float
    steps: tuple[Step, ...]
    source: str  # the file it came from, for messages


PATIENT = Fields(
    {
        "code": Text(),
        "weight_kg": Number(),
        "sex": Text(),
        "birth_year": Integer(),
        "indication": Text(),
    }
)
TOP = Fields(
    {
        "name": Text(),
        "description": Text(),
        "protocol": Text(),
        "patient": PATIENT,
        "clinicians": ListOf(Text(), non_empty=True),
        "session_start": Number(),
        "steps": ListOf(Fields({}), text="a list of steps"),
        "comment": Text(),
    },
    required=("protocol", "steps"),
)
