"""Export file names come only from valid session ids and never leave ``--out``.

The attack: a session whose id is a path (``../../x``), put in the file with SQL (an import now
refuses such an id; tests/reports/test_import_limits.py). ``kapmonitor export --all`` used to write
``<out>/../../x.json``; now the export is refused whole and nothing is written anywhere.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kapmonitor.cli import main
from kapmonitor.reports.export_registry import export_format
from kapmonitor.reports.session_export import ExportTarget
from kapmonitor.store.database import StoreError
from tests.reports import new_store, record_session

ESCAPE = "../../" + "escaped".ljust(26, "_")  # 32 characters: the CHECK on the id's length holds


def _plant_session(db_path: Path, new_id: str, like: str) -> None:
    """Copy a session's row under another id, as someone with SQLite could."""
    raw = sqlite3.connect(db_path)
    try:
        columns = [c[1] for c in raw.execute("PRAGMA table_info(sessions)") if c[1] != "id"]
        listed = ", ".join(f"[{c}]" for c in columns)
        raw.execute(
            f"INSERT INTO sessions (id, {listed}) SELECT ?, {listed} FROM sessions WHERE id = ?",
            [new_id, like],
        )
        raw.commit()
    finally:
        raw.close()


def _everything(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.fixture
def planted(tmp_path: Path) -> tuple[Path, str]:
    db = tmp_path / "work" / "clinic.sqlite"
    db.parent.mkdir()
    store, clock = new_store(db)
    good = record_session(store, clock)
    store.close()
    _plant_session(db, ESCAPE, good)
    return db, good


@pytest.mark.parametrize("fmt", ["json", "pdf", "fhir", "csv"])
def test_export_all_with_a_path_for_an_id_writes_nothing_anywhere(
    planted: tuple[Path, str], tmp_path: Path, fmt: str, capsys
) -> None:
    db, _good = planted
    out = tmp_path / "work" / "exports" / "deep"
    before = _everything(tmp_path)
    code = main(["export", "--db", str(db), "--all", "--format", fmt, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "is not a KAP Monitor session id" in err and "Nothing was written" in err
    assert "Traceback" not in err
    after = {p for p in _everything(tmp_path) if not p.name.startswith("clinic.sqlite")}
    assert after <= before, sorted(after - before)
    assert not out.exists()


def test_export_of_that_one_session_is_refused_too(
    planted: tuple[Path, str], tmp_path: Path, capsys
) -> None:
    db, _good = planted
    out = tmp_path / "work" / "one"
    out.mkdir()
    argv = ["export", "--db", str(db), "--session", ESCAPE, "--format", "json"]
    assert main([*argv, "--out", str(out)]) == 2
    assert "is not a KAP Monitor session id" in capsys.readouterr().err
    assert list(out.iterdir()) == []
    assert not [p for p in tmp_path.rglob("escaped*")]


def test_valid_sessions_still_export_into_out(tmp_path: Path, capsys) -> None:
    db = tmp_path / "clinic.sqlite"
    store, clock = new_store(db)
    good = record_session(store, clock)
    store.close()
    out = tmp_path / "out"
    assert main(["export", "--db", str(db), "--all", "--format", "json", "--out", str(out)]) == 0
    assert [p.name for p in out.iterdir()] == [f"{good}.json"]
    capsys.readouterr()


@pytest.mark.parametrize("name", ["../x.json", "a/b.json", "..", "", "/etc/x"])
def test_a_staged_export_takes_names_never_paths(tmp_path: Path, name: str) -> None:
    target = ExportTarget(tmp_path / "out", single=False)
    with pytest.raises(StoreError, match="cannot name an export file"):
        target.path(name)
    target.discard()
    assert not (tmp_path / "x.json").exists()


def test_a_format_names_files_from_valid_ids_only() -> None:
    assert export_format("json").file_name("0" * 32) == "0" * 32 + ".json"
    with pytest.raises(StoreError, match="not a KAP Monitor session id"):
        export_format("json").file_name(ESCAPE)
