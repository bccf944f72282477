"""The command line: demo, sessions, smoke test, and plain errors with non-zero exits."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from kapmonitor.cli import main
from kapmonitor.store.schema import CLINICAL_TABLES


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kapmonitor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    done = run_cli("demo", "--db", str(path), "--seed", "7")
    assert done.returncode == 0, done.stderr
    return path, done.stdout.splitlines()


def test_demo_prints_each_commit(demo_db: tuple[Path, list[str]]) -> None:
    _path, lines = demo_db
    kinds = [line.split()[1] for line in lines]
    assert all(line.startswith("committed ") for line in lines)
    assert kinds[0] == "session" and kinds[-1] == "end"
    assert {"dose", "vitals", "observation", "adverse_event", "adverse_event_outcome"} <= set(kinds)
    assert kinds.count("vitals") >= 20


def test_demo_database_is_wal_append_only_and_attributed(demo_db: tuple[Path, list[str]]) -> None:
    path, _lines = demo_db
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        for table in CLINICAL_TABLES:
            count, missing = raw.execute(
                f"SELECT count(*), sum(observed_at IS NULL OR recorded_at IS NULL "
                f"OR trim(coalesce(recorded_by, '')) = '') FROM {table}"
            ).fetchone()
            # A realistic demo needs no protocol override; every other table has rows.
            if table == "overrides" and count == 0:
                continue  # checked with rows in tests/store/test_append_only.py
            assert count > 0, f"demo wrote no {table}"
            assert missing == 0
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                raw.execute(f"UPDATE {table} SET recorded_by = 'x'")
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                raw.execute(f"DELETE FROM {table}")
    finally:
        raw.close()


def test_demo_has_the_bp_rise_near_40_minutes(demo_db: tuple[Path, list[str]]) -> None:
    path, _lines = demo_db
    raw = sqlite3.connect(path)
    dose_at = raw.execute("SELECT julianday(observed_at) FROM doses").fetchone()[0]
    rows = raw.execute("SELECT (julianday(observed_at) - ?) * 1440, sbp FROM vitals", [dose_at])
    by_minute = {round(m): s for m, s in rows}
    raw.close()
    baseline = by_minute[-10]
    peak_minute = max((m for m in by_minute if m >= 0), key=lambda m: by_minute[m])
    assert 25 <= peak_minute <= 55
    assert by_minute[peak_minute] - baseline >= 10


def test_sessions_lists_the_demo(demo_db: tuple[Path, list[str]], capsys) -> None:
    path, _lines = demo_db
    assert main(["sessions", "--db", str(path)]) == 0
    out = capsys.readouterr().out
    assert "ended" in out and "KAP-" in out


def test_bad_database_exits_non_zero_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_text("not a database")
    done = run_cli("sessions", "--db", str(bad))
    assert done.returncode == 2
    assert "not a KAP Monitor database" in done.stderr and str(bad) in done.stderr
    assert "Traceback" not in done.stderr
    done = run_cli("demo", "--db", str(bad))
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_missing_database_for_listing(tmp_path: Path) -> None:
    done = run_cli("sessions", "--db", str(tmp_path / "none.sqlite"))
    assert done.returncode == 2 and "no database" in done.stderr


def test_env_var_selects_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kapmonitor.paths import resolve_db_path

    monkeypatch.setenv("KAPMONITOR_DB", str(tmp_path / "env.sqlite"))
    assert resolve_db_path(None) == tmp_path / "env.sqlite"
    assert resolve_db_path(str(tmp_path / "cli.sqlite")) == tmp_path / "cli.sqlite"


def test_smoke_test_prints_smoke_ok(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path)}
    done = run_cli("--smoke-test", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "SMOKE OK"


def test_demo_scores_news2_and_records_alarms_per_vitals_set(
    demo_db: tuple[Path, list[str]],
) -> None:
    """Each vital-signs set carries its NEWS2 total and the alarms it raised (issue: protocol)."""
    path, _lines = demo_db
    raw = sqlite3.connect(path)
    raw.row_factory = sqlite3.Row
    rows = raw.execute(
        """
        SELECT v.id, v.spo2, s.news2_total, s.news2_band,
          (SELECT group_concat(a.priority || ':' || a.parameter) FROM alarms a
            WHERE a.source_table = 'vitals' AND a.source_id = v.id) AS alarms
        FROM vitals v LEFT JOIN vital_scores s ON s.vitals_id = v.id ORDER BY v.observed_at
        """
    ).fetchall()
    raw.close()
    assert rows and all(r["news2_total"] is not None for r in rows)
    dipped = [r for r in rows if r["spo2"] == 91]
    assert len(dipped) == 1 and dipped[0]["alarms"] == "warning:spo2"
    assert all(r["alarms"] is None for r in rows if r["spo2"] >= 92)


def test_backup_and_restore_on_the_command_line(
    demo_db: tuple[Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, _lines = demo_db
    db = tmp_path / "copy.sqlite"
    db.write_bytes(source.read_bytes())
    assert main(["backup", "--db", str(db), "--out", str(tmp_path / "b")]) == 0
    assert "backed up to" in capsys.readouterr().out
    db.write_bytes(b"\0" * 4096)  # the file is damaged
    assert main(["sessions", "--db", str(db)]) == 2
    assert "not a KAP Monitor database" in capsys.readouterr().err
    (copy,) = (tmp_path / "b").glob("*.sqlite")
    assert main(["restore", "--db", str(db), str(copy)]) == 0
    assert "the file it replaced is kept as" in capsys.readouterr().out
    assert main(["sessions", "--db", str(db)]) == 0
    assert main(["restore", "--db", str(db), str(tmp_path / "none.sqlite")]) == 2


def test_building_the_parser_imports_no_device_code() -> None:
    """Every start builds the whole parser, the window's too: the device commands' arguments
    are declared without importing the device layer, asyncio or the store's device path."""
    import subprocess
    import sys

    code = (
        "import sys; from kapmonitor.cli import build_parser; build_parser(); "
        "print(sorted(m for m in sys.modules if m.startswith(('kapmonitor.devices', "
        "'kapmonitor.capture', 'kapmonitor.store.device_store', 'asyncio'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_the_device_commands_declare_what_the_devices_accept() -> None:
    from kapmonitor import device_commands
    from kapmonitor.devices.mllp_listener import MATCH_KINDS
    from kapmonitor.devices.simulator import PROFILES

    assert device_commands.PROFILES == PROFILES
    assert device_commands.MATCH_KINDS == MATCH_KINDS
