"""docs/scenarios.md stays true: its example file is a valid scenario whose expectations hold,
and it documents every step kind and every expectation the runner knows."""

from __future__ import annotations

import json
import re
from pathlib import Path

from kapmonitor.scenario import runner
from kapmonitor.scenario.expect import EXPECT
from kapmonitor.scenario.reader import parse
from kapmonitor.scenario.steps import KINDS

DOC = Path(__file__).resolve().parents[2] / "docs" / "scenarios.md"


def test_the_documented_example_runs_and_meets_its_expectations() -> None:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    example = next(json.loads(b) for b in blocks if '"steps"' in b)
    result = runner.run(parse(example, "docs/scenarios.md"))
    assert not result.setup_error
    assert result.ok, [line["expect"] for line in result.failures]


def test_every_step_kind_and_expectation_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    undocumented = [k for k in [*KINDS, *EXPECT] if f"| `{k}` |" not in text]
    assert not undocumented, f"add these to docs/scenarios.md: {undocumented}"
