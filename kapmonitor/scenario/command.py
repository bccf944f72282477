"""``kapmonitor scenario run FILE [FILE...] [--json]``: run scenarios and say what happened.

Every file is read and checked first; if any is malformed, nothing runs (exit 2) and each problem
is one line on stderr naming the file and the step. Then each scenario runs in its own throw-away
database. Without ``--json`` a readable line per step (✓ an expectation met, ✗ failed, · no
expectation); with ``--json`` exactly one JSON object per step and line. Exit 0 when every
expectation is met, 1 when one failed. The output holds only the scenario's own made-up content.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from kapmonitor.scenario import runner
from kapmonitor.scenario.format import Scenario, ScenarioError
from kapmonitor.scenario.reader import read

EXIT_MET = 0
EXIT_FAILED = 1
EXIT_MALFORMED = 2


def scenario_files(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """The files named, a folder standing for every ``*.json`` in it; and the problems."""
    files: list[Path] = []
    problems: list[str] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.json"))
            if not found:
                problems.append(f"FILE: {path} is a folder with no .json scenario in it")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(f"FILE: {path} does not exist")
    return files, problems


def run_command(
    paths: list[Path],
    as_json: bool = False,
    protocols: Path | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``protocols``: a folder of protocol files tried on top of the installed ones (a draft
    the clinic has not installed yet); a file in it that is refused makes the run malformed."""
    out = out or sys.stdout
    err = err or sys.stderr
    files, problems = scenario_files(paths)
    extra = [protocols] if protocols is not None else []
    if protocols is not None and not protocols.is_dir():
        problems.append(f"--protocols: {protocols} is not a folder")
        extra = []
    catalogue = runner.load_catalogue(extra)
    if protocols is not None:
        problems += [f"--protocols: {p}" for p in catalogue.problems if str(protocols) in str(p)]
    known = set(catalogue.protocols)
    scenarios: list[Scenario] = []
    for path in files:
        try:
            scenarios.append(read(path, known))
        except ScenarioError as exc:
            problems.append(f"{path}: {exc}")
    if problems:
        for problem in problems:
            print(f"kapmonitor: {problem}", file=err)
        print(
            "kapmonitor: nothing was run: fix the scenario files above (docs/scenarios.md)",
            file=err,
        )
        return EXIT_MALFORMED
    malformed = False
    failed = False
    for scenario in scenarios:
        result = runner.run(scenario, catalogue)
        if result.setup_error:
            print(f"kapmonitor: {scenario.source}: {result.setup_error}", file=err)
            malformed = True
            continue
        failed = failed or not result.ok
        try:
            if as_json:
                for line in result.lines:
                    print(json.dumps(line, ensure_ascii=False), file=out)
            else:
                _print_readable(result, out)
            out.flush()
        except BrokenPipeError:  # the reader went away (e.g. piped into head): stop quietly
            # Python flushes stdout again at exit: point it at nowhere so that is quiet too.
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, out.fileno())
            except (OSError, ValueError, AttributeError):
                pass  # not a real file (a test's StringIO): nothing is flushed at exit
            finally:
                os.close(devnull)
            return EXIT_FAILED if failed else EXIT_MET
    if malformed:
        return EXIT_MALFORMED
    return EXIT_FAILED if failed else EXIT_MET


def _print_readable(result: runner.Run, out: TextIO) -> None:
    scenario = result.scenario
    print(f"{scenario.name}  ({scenario.source})", file=out)
    for line in result.lines:
        expect = line.get("expect")
        mark = "·" if expect is None else ("✓" if expect == "met" else "✗")
        print(f"  {mark} {_describe(line)}", file=out)
        if expect not in (None, "met"):
            print(f"      {expect}", file=out)
    expected = [line for line in result.lines if "expect" in line]
    met = len(expected) - len(result.failures)
    verdict = "PASSED" if result.ok else "FAILED"
    print(f"  {verdict}: {met} of {len(expected)} expectations met", file=out)


def _describe(line: dict[str, Any]) -> str:
    text = f"at {line['at']:g} {line['step']}: {line['result']}"
    if line["reasons"]:
        text += f" ({'; '.join(line['reasons'])})"
    if line["alarms"]:
        text += "; alarms " + ", ".join(f"{a['parameter']} {a['priority']}" for a in line["alarms"])
    news2 = line.get("news2")
    if isinstance(news2, dict):
        text += f"; NEWS2 {news2.get('total')} {news2.get('band')}"
    if "ready" in line:
        text += "; ready" if line["ready"] else "; not ready"
        if line.get("blockers"):
            text += ": " + "; ".join(line["blockers"])
    return text
