"""``kapmonitor bench --quick`` runs end to end and prints every figure beside its floor.

No time is asserted here (timed assertions are flaky on shared machines): the test proves the
benchmark measures what docs/performance.md reports, not how fast this machine is.
"""

from __future__ import annotations

import re

import pytest

from kapmonitor.cli import main

FIGURES = (
    "save vitals → committed → chart",
    "… p99",
    "full chart redraw (7 series",
    "after a resize (every cached picture redrawn)",
    "PDF report of the 3-hour session",
    "open the review list",
    "apply a filter (patient code)",
    "open one session",
    "verify (",
    "resident memory after the simulated session",
    "growth over its last third",
    "JSON: peak memory",
    "CSV: peak memory",
    "FHIR: peak memory",
    "MLLP message → stored (pending/auto-confirmed), 1 Hz",
    "MLLP listener → real store, sustained",
    "memory growth over the last third of a 1 Hz feed",
    "→ charted in the window, 1 Hz",
    "sync throughput, encrypted laptop → local PostgreSQL",
    "save latency, sync runner asked after every save: server down",
    "save latency, sync runner asked after every save: server slow",
    "save latency, sync runner asked after every save: server up",
    "live view: commit → sync → NOTIFY → visible at the centre",
    "central archive list, first page of 200 + total",
    "… filter, selective (patient code part)",
    "… filter, broad (a year, unsigned)",
    "… open one session (materialised for the review)",
)


@pytest.mark.slow
@pytest.mark.qt_log_ignore(r"^This plugin does not support propagateSizeHints")
def test_quick_bench_prints_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("figure") :]
    for figure in FIGURES:
        line = next((ln for ln in table.splitlines() if figure in ln), None)
        assert line is not None, f"missing: {figure}"
        assert re.search(r"\d", line.split(figure, 1)[1]), f"no number for: {figure}"
    assert "one bare committed SQLite insert" in table
    assert "intact" in table
    assert "no PostgreSQL to measure against" not in table  # CI installs it: every row measured
