"""``kapmonitor scenario run``: one JSON object per step and line, readable lines without
--json, and exit codes 0 (all expectations met), 1 (one failed), 2 (malformed: nothing ran)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from kapmonitor.paths import resources_dir

SHIPPED = resources_dir() / "scenarios"
LINE_KEYS = {"at", "step", "result", "reasons", "alarms", "news2"}


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kapmonitor", "scenario", "run", *map(str, args)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )


def write(folder: Path, name: str, data: Any) -> Path:
    path = folder / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def scenario(expect_result: str) -> dict[str, Any]:
    return {
        "name": "Dose without baseline",
        "protocol": "esketamine-rems",
        "session_start": -5,
        "steps": [
            {"at": 0, "dose": {"drug": "esketamine", "route": "intranasal", "mg": 56},
             "expect": {"result": expect_result}},
            {"at": 1, "vitals": {"sbp": 120, "dbp": 80, "hr": 70, "spo2": 98, "rr": 14}},
        ],
    }  # fmt: skip


def test_json_lines_and_exit_0_when_every_expectation_is_met(tmp_path: Path) -> None:
    done = run_cli(write(tmp_path, "ok.json", scenario("refused")), "--json")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 2
    for line in lines:
        assert set(line) >= LINE_KEYS
        assert line["result"] in ("committed", "refused")
        assert isinstance(line["reasons"], list) and isinstance(line["alarms"], list)
    assert lines[0]["step"] == "dose" and lines[0]["expect"] == "met"
    assert lines[0]["at"] == 0 and lines[1]["news2"]["total"] >= 0
    assert "expect" not in lines[1]
    assert done.stderr == ""


def test_exit_1_and_a_cross_when_an_expectation_fails(tmp_path: Path) -> None:
    path = write(tmp_path, "fails.json", scenario("committed"))
    done = run_cli(path)
    assert done.returncode == 1, done.stderr
    assert "✗ at 0 dose: refused" in done.stdout
    assert "failed: result refused, expected committed" in done.stdout
    assert "FAILED: 0 of 1 expectations met" in done.stdout
    as_json = run_cli(path, "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout.splitlines()[0])["expect"].startswith("failed: ")


def test_exit_2_and_nothing_runs_when_any_file_is_malformed(tmp_path: Path) -> None:
    good = write(tmp_path, "good.json", scenario("refused"))
    bad_data = scenario("refused")
    bad_data["steps"][1]["vitals"]["sbp"] = "high"
    bad = write(tmp_path, "bad.json", bad_data)
    done = run_cli(good, bad, "--json")
    assert done.returncode == 2
    assert done.stdout == ""  # the good file did not run either
    assert f"{bad}: step 2 (at 1): vitals.sbp must be a number" in done.stderr
    assert "Traceback" not in done.stderr
    missing = run_cli(tmp_path / "nowhere.json")
    assert missing.returncode == 2
    assert f"FILE: {tmp_path / 'nowhere.json'} does not exist" in missing.stderr


def test_a_folder_runs_every_scenario_in_it() -> None:
    done = run_cli(SHIPPED, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    names = {json.loads(line)["scenario"] for line in done.stdout.splitlines()}
    assert len(names) == len(list(SHIPPED.glob("*.json")))


def test_readable_output_marks_each_step() -> None:
    done = run_cli(SHIPPED / "baseline-before-dosing-refused.json")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Dosing is refused until a baseline")
    assert lines[1].startswith("  ✓ at 0 dose: refused (Dosing is blocked")
    assert lines[-1] == "  PASSED: 1 of 1 expectations met"


def test_a_draft_protocol_shows_which_rule_changed(tmp_path: Path) -> None:
    """A clinic raises its critical SBP limit to 200 in a draft: the shipped 180 scenario now
    fails (exit 1, saying what differed), before the draft is installed anywhere."""
    shipped = (resources_dir() / "protocols" / "esketamine-rems.toml").read_text(encoding="utf-8")
    head, rule, tail = shipped.partition('id = "sbp_high_critical"')
    assert rule, "the shipped protocol names its critical SBP rule"
    tail = tail.replace("at_or_above = 180", "at_or_above = 200", 1)
    drafts = tmp_path / "drafts"
    drafts.mkdir()
    (drafts / "esketamine-rems.toml").write_text(head + rule + tail, encoding="utf-8")
    target = SHIPPED / "sbp-180-critical-alarm.json"
    assert run_cli(target).returncode == 0
    done = run_cli(target, "--protocols", drafts)
    assert done.returncode == 1, done.stderr
    assert "failed: no sbp critical alarm was raised" in done.stdout
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.toml").write_text("id = ", encoding="utf-8")
    refused = run_cli(target, "--protocols", broken)
    assert refused.returncode == 2
    assert "kapmonitor: --protocols: " in refused.stderr and "x.toml" in refused.stderr
    missing = run_cli(target, "--protocols", tmp_path / "nowhere")
    assert missing.returncode == 2 and "--protocols: " in missing.stderr
