"""CSV: one tidy file per table that a spreadsheet opens, tricky text intact."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from kapmonitor.reports.session_export import describe_tables
from kapmonitor.store.database import StoreError
from tests.reports import TRICKY_NOTE, export, new_store, record_session


@pytest.fixture
def two_sessions(tmp_path: Path):
    store, clock = new_store(tmp_path / "clinic.sqlite")
    first = record_session(store, clock, seed=1)
    second = record_session(store, clock, seed=2, day=1)
    yield store, [first, second]
    store.close()


def read(path: Path) -> list[dict[str, str]]:
    assert path.read_bytes().startswith("\ufeff".encode()), "no BOM: Excel would garble µ and ₂"
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_one_file_per_table_with_session_and_patient(two_sessions, tmp_path: Path) -> None:
    store, ids = two_sessions
    written = export(store, "csv", ids, tmp_path / "csv")
    names = {p.name for p in written}
    tables = {"sessions.csv"} | {f"{t}.csv" for t in describe_tables(store.db)}
    assert names == tables | {"audit_chain_head.csv"}  # the chain head: its own table
    assert {p.name for p in (tmp_path / "csv").iterdir()} == names  # nothing else left
    sessions = read(tmp_path / "csv" / "sessions.csv")
    assert [r["session_id"] for r in sessions] == ids
    assert all(r["patient_code"].startswith("KAP-") and r["clinicians"] for r in sessions)
    (head,) = read(tmp_path / "csv" / "audit_chain_head.csv")
    newest = store.db.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    assert (int(head["entry"]), head["mac"]) == (newest[0], newest[1])
    for name in tables - {"sessions.csv"}:
        with (tmp_path / "csv" / name).open(encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh))
        assert header[:4] == ["session_id", "patient_code", "ref", "status"], name
    doses = read(tmp_path / "csv" / "doses.csv")
    assert {d["session_id"] for d in doses} == set(ids)
    assert all(d["dose_mg"] and d["route"] == "im" for d in doses)


def test_tricky_free_text_survives_csv_reader(two_sessions, tmp_path: Path) -> None:
    store, ids = two_sessions
    export(store, "csv", ids[:1], tmp_path / "csv")
    vitals = read(tmp_path / "csv" / "vitals.csv")
    (fixed,) = [v for v in vitals if v["supersedes_id"]]
    assert fixed["note"] == TRICKY_NOTE  # comma, quotes, newline, µ ° ₂
    assert fixed["status"] == "current"
    assert vitals[int(fixed["supersedes_id"]) - 1]["status"] == "superseded"
    interventions = read(tmp_path / "csv" / "interventions.csv")
    assert [r["status"] for r in interventions].count("voided") == 1


def test_vitals_carry_news2_and_the_alarms_they_raised(two_sessions, tmp_path: Path) -> None:
    store, ids = two_sessions
    export(store, "csv", ids[:1], tmp_path / "csv")
    vitals = read(tmp_path / "csv" / "vitals.csv")
    assert all(v["news2_total"] != "" for v in vitals if v["status"] == "current")
    (dipped,) = [v for v in vitals if v["spo2"] == "91"]
    assert dipped["alarms"] == "warning spo2" and dipped["alarm_count"] == "1"
    assert all(v["alarms"] == "" for v in vitals if v["spo2"] != "91")
    assert all(v["observed_at"].endswith("Z") for v in vitals)


def test_a_folder_that_cannot_be_written_leaves_nothing(two_sessions, tmp_path: Path) -> None:
    store, ids = two_sessions
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("keep")
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(StoreError, match="nothing was written"):
        export(store, "csv", ids, blocker / "csv")
    assert blocker.read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_disk_filling_up_midway_leaves_no_partial_export(
    two_sessions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, ids = two_sessions
    out = tmp_path / "csv"
    out.mkdir()
    (out / "vitals.csv").write_text("an earlier export")
    real_fsync = os.fsync
    calls = []

    def failing_fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(StoreError, match=r"no space left on device.*nothing was written"):
        export(store, "csv", ids, out)
    assert [p.name for p in out.iterdir()] == ["vitals.csv"]
    assert (out / "vitals.csv").read_text() == "an earlier export"
