"""SIGKILL during a recorded session loses nothing acknowledged and leaves a sound, verifiable,
resumable file. CI runs a few dozen trials; ``python -m tests.crash_trials --trials 200`` is the
documented run (docs/performance.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.crash_trials import run

TRIALS = int(os.environ.get("KAPMONITOR_CRASH_TRIALS", "30"))


@pytest.mark.slow
def test_random_kills_lose_nothing_acknowledged(tmp_path: Path) -> None:
    summary, results = run(TRIALS, seed=20261127, folder=tmp_path, echo=False)
    failed = [
        (r.number, r.lost, r.integrity, r.verify_lines, r.resumed) for r in results if not r.ok
    ]
    assert failed == []
    assert summary.trials == TRIALS
    assert summary.kills >= TRIALS * 0.8  # nearly every trial really was killed mid-run
    assert summary.acknowledged > TRIALS * 10
    assert summary.lost == summary.integrity_failures == summary.verify_failures == 0
