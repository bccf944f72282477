"""Every shipped scenario runs and meets every expectation: the rules proved both ways.

Parametrized over resources/scenarios/*.json, so a scenario added there (by anyone, for any rule)
is part of the suite without touching this file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kapmonitor.paths import resources_dir
from kapmonitor.scenario import runner
from kapmonitor.scenario.reader import read

SCENARIOS = sorted((resources_dir() / "scenarios").glob("*.json"))


def test_scenarios_are_shipped() -> None:
    assert len(SCENARIOS) >= 6


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_shipped_scenario_meets_its_expectations(path: Path) -> None:
    scenario = read(path)
    result = runner.run(scenario)
    assert not result.setup_error, result.setup_error
    assert len(result.lines) == len(scenario.steps)
    assert any("expect" in line for line in result.lines), "a scenario must expect something"
    failed = [f"at {line['at']:g} {line['step']}: {line['expect']}" for line in result.failures]
    assert not failed, "\n".join(failed)


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_shipped_scenario_says_why(path: Path) -> None:
    """A clinic reads these as examples: each has a name and a description of the rule."""
    scenario = read(path)
    assert scenario.name.strip() and scenario.name != path.stem
    assert len(scenario.description) > 40
