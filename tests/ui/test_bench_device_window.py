"""The window's device figure is produced (numbers, not judged: no timed assertion)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kapmonitor.bench_device_window import measure_window_latency, window_device_rows


def test_the_window_figure_times_every_message_through_the_real_window(tmp_path: Path) -> None:
    figure = measure_window_latency(tmp_path, seconds=120, count=4, rate_hz=0)
    times = figure["times"]
    assert isinstance(times, list) and len(times) == 4
    assert all(t > 0 for t in times)


def test_the_window_rows_are_in_the_bench_tables_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kapmonitor.bench_device_window as bench

    monkeypatch.setattr(
        bench,
        "measure_window_latency",
        lambda folder, seconds, count: measure_window_latency(folder, seconds, 3, rate_hz=0),
    )
    rows = window_device_rows(tmp_path, 120, quick=True)
    assert [r.target for r in rows] == ["", "≤ 16 ms"]
    assert "charted in the window" in rows[0].name and "2-min record" in rows[0].name
    assert all(r.value is not None and r.value > 0 for r in rows)
    assert len(rows[0].cells()) == 6
