"""The central archive's figures of ``kapmonitor bench`` measure real reads of a seeded archive."""

from __future__ import annotations

from pathlib import Path

import pytest

from kapmonitor.bench_central_archive import QUICK_SESSIONS, archive_rows, seed
from kapmonitor.bench_sync import SERVER_ENV
from kapmonitor.network.central_archive import CentralArchive
from kapmonitor.store.archive import ArchiveFilter
from tests.network.conftest import Archive
from tests.network.test_central_archive import add_reviewer


def test_the_bench_measures_list_filter_and_open_on_a_real_archive(
    archive: Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SERVER_ENV, archive.admin_url)
    rows = archive_rows(tmp_path, quick=True)
    names = [r.name for r in rows]
    assert len(rows) == 8 and "--quick: scaled down" in names[0]
    assert all(r.unit == "ms" and r.value and r.value > 0 for r in rows)
    assert archive.query("SELECT count(*) FROM kap.sessions")[0][0] == QUICK_SESSIONS
    assert archive.query("SELECT count(DISTINCT laptop_id) FROM kap.sessions")[0][0] == 20
    assert "sessions match" in rows[2].note and not rows[2].note.startswith("0 ")
    assert "rows" in rows[6].note  # the opened session is a real, recorded one


def test_the_seeded_sessions_read_back_as_the_archive_lists_them(archive: Archive) -> None:
    seed(archive.admin_url, 300, laptops=3, prefix="t")
    with CentralArchive(add_reviewer(archive)) as central:
        page = central.page(limit=300)
        assert page.total == 300 and {r.laptop_id for r in page.rows} == {"t-00", "t-01", "t-02"}
        assert all(r.vitals == 24 and r.doses in (2, 3) for r in page.rows)
        signed = central.counts(ArchiveFilter(status="signed")).sessions
        assert 0 < signed < 300
        assert central.counts().unsigned == 300 - signed
