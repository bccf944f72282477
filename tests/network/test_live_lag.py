"""The live-view lag figure of ``kapmonitor bench`` measures real commits seen at the centre
through a real server (no timing asserted: only that each commit was seen and measured)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kapmonitor.bench_live_lag import SERVER_ENV, live_lag_rows
from tests.network.conftest import Archive


def test_the_bench_sees_every_commit_at_the_centre_and_reports_median_and_p99(
    archive: Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SERVER_ENV, archive.admin_url)
    median, p99 = live_lag_rows(tmp_path, quick=True)
    assert median.unit == "ms" and median.value is not None and median.value > 0
    assert median.note == "20 commits"  # none lost
    assert p99.unit == "ms" and p99.value is not None and p99.value >= median.value
    # the commits really went through the server: one vitals row each, plus the baseline
    assert archive.query("SELECT count(*) FROM kap.vitals")[0][0] == 21
