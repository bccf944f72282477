"""A malformed scenario is refused before anything runs, with a message naming the step.

Property tests: random mutations known to break a valid scenario (unknown step kind, unknown
protocol, a value of the wrong type, steps out of order, a missing field, a misspelt field) are
refused with a ``ScenarioError`` naming the step; random values planted anywhere are either
accepted or refused that way, never with a traceback; random well-formed scenarios load.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kapmonitor.scenario.format import ScenarioError
from kapmonitor.scenario.reader import parse, read

PROTOCOLS = {"esketamine-rems", "clinic-ketamine"}

VALID: dict[str, Any] = {
    "name": "Example",
    "protocol": "esketamine-rems",
    "patient": {"code": "T-1", "weight_kg": 70, "sex": "female", "birth_year": 1980},
    "clinicians": ["Dr A", "Nurse B"],
    "steps": [
        {"at": -10, "vitals": {"sbp": 128, "dbp": 80, "hr": 72, "spo2": 98, "rr": 14}},
        {"at": 0, "dose": {"drug": "esketamine", "route": "intranasal", "mg": 56}},
        {"at": 20, "observation": {"moaas": 4, "dissociation": 2}},
        {"at": 40, "vitals": {"sbp": 150, "dbp": 92}},
        {"at": 45, "adverse_event": {"term": "nausea", "grade": 1}},
        {"at": 50, "questionnaire": {"id": "phq9", "answers": [1, 1, 1, 1, 1, 1, 1, 1, 2]}},
        {"at": 60, "acknowledge": "all", "by": "Nurse B"},
        {"at": 125, "discharge_check": {}, "expect": {"ready": True}},
    ],
}
# Per step: a numeric field of its payload, a required field, where a wrong type can be planted.
NUMERIC = {0: ("vitals", "sbp"), 1: ("dose", "mg"), 2: ("observation", "moaas"),
           3: ("vitals", "dbp"), 4: ("adverse_event", "grade")}  # fmt: skip
REQUIRED = {1: ("dose", "drug"), 4: ("adverse_event", "term"), 5: ("questionnaire", "id")}
NOT_A_NUMBER = st.one_of(
    st.text(max_size=5), st.booleans(), st.none(), st.lists(st.integers(), max_size=2)
)


def load(data: Any) -> Any:
    return parse(data, "test.json", PROTOCOLS)


def refused(data: Any) -> str:
    with pytest.raises(ScenarioError) as caught:
        load(data)
    return str(caught.value)


def names_step(message: str, index: int, data: dict[str, Any]) -> bool:
    """The message starts "step N (at X):" for the step at 0-based ``index``."""
    step = data["steps"][index]
    at = step.get("at") if isinstance(step, dict) else None
    label = f"step {index + 1}"
    return (
        message.startswith(f"{label} (at {at:g}): ")
        if isinstance(at, int | float) and not (isinstance(at, bool))
        else message.startswith(f"{label}")
    )


def test_the_issue_s_example_loads() -> None:
    scenario = load(VALID)
    assert [s.kind for s in scenario.steps][:3] == ["vitals", "dose", "observation"]
    assert scenario.steps[6].by == "Nurse B" and scenario.steps[0].by == "Dr A"
    assert scenario.session_start == -10


def test_the_message_names_the_step_and_the_field() -> None:
    data = copy.deepcopy(VALID)
    data["steps"][3]["vitals"]["sbp"] = "high"
    assert refused(data) == "step 4 (at 40): vitals.sbp must be a number"


def test_known_refusals_read_plainly() -> None:
    data = copy.deepcopy(VALID)
    data["steps"][2] = {"at": 20, "vitalz": {}}
    assert refused(data).startswith("step 3 (at 20): unknown step kind 'vitalz' (known: ")
    data = copy.deepcopy(VALID)
    data["protocol"] = "nope"
    assert refused(data).startswith("protocol 'nope' is not known")
    data = copy.deepcopy(VALID)
    data["steps"][4]["at"] = 10
    assert refused(data) == "step 5 (at 10): steps out of order: at 10 comes after a step at 40"
    data = copy.deepcopy(VALID)
    del data["steps"][1]["dose"]["mg"]
    assert refused(data) == "step 2 (at 0): dose.mg is missing"


@st.composite
def mutation(draw: st.DrawFn) -> tuple[dict[str, Any], int | None]:
    """A copy of VALID broken in one way; returns it and the 0-based step at fault (None for
    the file as a whole)."""
    data = copy.deepcopy(VALID)
    steps = data["steps"]
    how = draw(
        st.sampled_from(
            ["kind", "protocol", "type", "order", "missing", "unknown_field", "not_object",
             "two_kinds", "no_at", "by", "expect"]
        )
    )  # fmt: skip
    if how == "protocol":
        data["protocol"] = draw(st.text(min_size=1, max_size=12).filter(lambda t: t.strip()
                                and t not in PROTOCOLS))  # fmt: skip
        return data, None
    if how == "type":
        index = draw(st.sampled_from(sorted(NUMERIC)))
        kind, key = NUMERIC[index]
        steps[index][kind][key] = draw(NOT_A_NUMBER)
        return data, index
    if how == "order":
        index = draw(st.integers(1, len(steps) - 1))
        steps[index]["at"] = steps[index - 1]["at"] - draw(st.integers(1, 500))
        return data, index
    if how == "missing":
        index = draw(st.sampled_from(sorted(REQUIRED)))
        kind, key = REQUIRED[index]
        del steps[index][kind][key]
        return data, index
    index = draw(st.integers(0, len(steps) - 1))
    step = steps[index]
    kind = next(k for k in step if k not in ("at", "by", "expect"))
    if how == "kind":
        step[draw(st.sampled_from(["vital", "dosing", "Vitals", "alarm", "sleep"]))] = step.pop(
            kind
        )
    elif how == "unknown_field":
        if isinstance(step[kind], dict):
            step[kind]["zz_" + draw(st.text("abc", min_size=1, max_size=4))] = 1
        else:
            step[kind] = {"zz": 1} if kind == "phase" else 12
    elif how == "not_object":
        steps[index] = draw(st.one_of(st.integers(), st.text(max_size=4), st.lists(st.none())))
    elif how == "two_kinds":
        step["note" if kind != "note" else "phase"] = "extra"
        step["intervention"] = {"category": "support"}
    elif how == "no_at":
        del step["at"]
    elif how == "by":
        step["by"] = draw(st.sampled_from(["Dr Z", "", 3]))
    else:
        step["expect"] = draw(
            st.sampled_from([{"ready": "yes"}, {"bogus": 1}, {"result": "ok"}, [], {"alarms": []}])
        )
    return data, index


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutation())
def test_malformed_scenarios_are_refused_naming_the_step(
    case: tuple[dict[str, Any], int | None],
) -> None:
    data, index = case
    message = refused(data)
    assert message and "\n" not in message
    if index is not None:
        assert names_step(message, index, data), message
    else:
        assert message.startswith("protocol "), message


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.floats(allow_nan=True)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=6,
)  # fmt: skip


@st.composite
def planted(draw: st.DrawFn) -> dict[str, Any]:
    """VALID with one value anywhere replaced by random JSON."""
    data: Any = copy.deepcopy(VALID)
    node = data
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, dict | list) and child and draw(st.booleans()):
            node = child
            continue
        node[key] = draw(JSON)
        break
    return data


@settings(max_examples=300, deadline=None)
@given(planted())
def test_random_values_anywhere_never_raise_anything_else(data: dict[str, Any]) -> None:
    try:
        load(data)
    except ScenarioError as exc:
        assert str(exc).strip()


VITAL = st.fixed_dictionaries(
    {}, optional={"sbp": st.integers(60, 250), "hr": st.integers(20, 220),
                  "spo2": st.integers(50, 100), "rr": st.integers(0, 60),
                  "temp_c": st.floats(34, 42)}
)  # fmt: skip
STEP_BODY = st.one_of(
    VITAL.map(lambda v: {"vitals": v}),
    st.text(min_size=1, max_size=20).filter(str.strip).map(lambda t: {"note": t}),
    st.sampled_from(["monitoring", "recovery"]).map(lambda p: {"phase": p}),
    st.just({"acknowledge": "all"}),
    st.just({"discharge_check": {}, "expect": {"ready": False}}),
    st.integers(1, 5).map(lambda g: {"adverse_event": {"term": "nausea", "grade": g}}),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-60, 300, allow_nan=False), STEP_BODY), min_size=1, max_size=12),
    st.sampled_from(sorted(PROTOCOLS)),
)
def test_well_formed_scenarios_load(steps: list[tuple[float, dict[str, Any]]], proto: str) -> None:
    ordered = [{"at": at, **body} for at, body in sorted(steps, key=lambda s: s[0])]
    scenario = load({"protocol": proto, "steps": ordered})
    assert len(scenario.steps) == len(ordered)
    assert scenario.steps[0].at == scenario.session_start


def test_a_file_that_is_not_json_is_refused_plainly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"protocol": "esketamine-rems", "steps": [', encoding="utf-8")
    with pytest.raises(ScenarioError, match="not JSON"):
        read(bad, PROTOCOLS)
    bad.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ScenarioError, match="not UTF-8"):
        read(bad, PROTOCOLS)
    bad.write_text(json.dumps([1, 2]), encoding="utf-8")
    with pytest.raises(ScenarioError, match="one JSON object"):
        read(bad, PROTOCOLS)


def test_start_may_only_be_the_first_step() -> None:
    data = copy.deepcopy(VALID)
    data["steps"].insert(1, {"at": -10, "start": {}})
    assert (
        refused(data) == "step 2 (at -10): start must be the first step (the session starts once)"
    )
    data["steps"] = data["steps"][1:]
    assert load(data).steps[0].kind == "start"
