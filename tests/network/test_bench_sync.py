"""The sync figures of ``kapmonitor bench`` measure a real pass against a real server."""

from __future__ import annotations

from pathlib import Path

import pytest

from kapmonitor.bench_sync import SERVER_ENV, sync_rows
from tests.network.conftest import Archive


def test_the_bench_measures_rows_per_second_to_a_real_server(
    archive: Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SERVER_ENV, archive.admin_url)
    throughput, idle = sync_rows(tmp_path, quick=True)
    assert throughput.unit == "rows/s" and throughput.value and throughput.value > 0
    sent = archive.query("SELECT count(*) FROM kap.vitals")[0][0]
    assert sent > 0 and f"{5} sessions" in throughput.note
    assert idle.unit == "ms" and idle.value and idle.value > 0
