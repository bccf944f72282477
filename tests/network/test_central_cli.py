"""``kapmonitor sessions --server`` and ``kapmonitor export --server`` end to end, against a real
PostgreSQL with two synced laptops."""

from __future__ import annotations

from pathlib import Path

import pytest

from kapmonitor import cli
from kapmonitor.network.local_server import free_port
from kapmonitor.reports.export_registry import write_export
from kapmonitor.store import archive as local_archive
from kapmonitor.store.database import connect_readonly
from tests.network.test_central_archive import two_laptops  # noqa: F401 (the fixture)


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_sessions_lists_every_laptops_sessions_with_the_laptop(two_laptops, capsys) -> None:  # noqa: F811
    _archive, laptops, reviewer = two_laptops
    assert cli.main(["sessions", "--server", reviewer]) == 0
    lines = _lines(capsys.readouterr().out)
    assert lines[0].split()[:3] == ["session", "laptop", "patient"]
    rows = lines[1:]
    assert len(rows) == 8
    assert sum(" room-1 " in r for r in rows) == 4 and sum(" room-2 " in r for r in rows) == 4
    for laptop in laptops.values():
        db = connect_readonly(laptop.path, laptop.keys)
        try:
            for row in local_archive.list_sessions(db):
                assert any(r.startswith(row.session_id) and row.patient_code in r for r in rows)
        finally:
            db.close()
    assert sum(r.endswith("Zoë Ó Briain, Dr Lars Øvergaard") for r in rows) == 2


def test_sessions_filters_and_the_saved_connection(
    two_laptops,  # noqa: F811
    capsys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _archive, laptops, reviewer = two_laptops
    monkeypatch.setenv("KAPMONITOR_SERVER", reviewer)
    assert cli.main(["sessions", "--server", "--laptop", "room-1", "--status", "signed"]) == 0
    rows = _lines(capsys.readouterr().out)[1:]
    db = connect_readonly(laptops["room-1"].path, laptops["room-1"].keys)
    try:
        signed = local_archive.list_sessions(db, local_archive.ArchiveFilter(status="signed"))
    finally:
        db.close()
    assert [r.split()[0] for r in rows] == [s.session_id for s in signed] and signed
    assert cli.main(["sessions", "--server", "--clinician", "øvergaard", "--status", "open"]) == 0
    rows = _lines(capsys.readouterr().out)[1:]
    assert len(rows) == 2 and all(" open " in r for r in rows)
    assert cli.main(["sessions", "--server", "--patient", "no-such-patient"]) == 0
    assert capsys.readouterr().out.strip() == "No sessions."


def test_a_filter_without_server_is_refused_in_words(tmp_path: Path, capsys) -> None:
    code = cli.main(["sessions", "--db", str(tmp_path / "x.sqlite"), "--status", "signed"])
    assert code == cli.EXIT_STORE
    err = capsys.readouterr().err
    assert "--status filters the central archive: add --server" in err
    assert not (tmp_path / "x.sqlite").exists()


def test_export_one_session_from_the_archive_gives_the_laptops_bytes_and_is_audited(
    two_laptops,  # noqa: F811
    tmp_path: Path,
    capsys,
) -> None:
    archive, laptops, reviewer = two_laptops
    laptop = laptops["room-2"]
    db = connect_readonly(laptop.path, laptop.keys)
    try:
        sid = local_archive.list_sessions(db)[-1].session_id
        write_export("json", db, [sid], tmp_path / "laptop.json").commit()
    finally:
        db.close()
    out = tmp_path / "central.json"
    args = ["export", "--server", reviewer, "--session", sid, "--format", "json"]
    assert cli.main([*args, "--out", str(out)]) == 0
    assert "exported 1 session from the central archive" in capsys.readouterr().out
    assert out.read_bytes() == (tmp_path / "laptop.json").read_bytes()
    assert (out.stat().st_mode & 0o777) == 0o600
    (entry,) = archive.query("SELECT format, destination, sessions FROM kap.central_exports")
    assert entry == ("json", str(out), [f"room-2/{sid}"])
    pdf = tmp_path / "central.pdf"
    args = ["export", "--server", reviewer, "--session", sid, "--format", "pdf"]
    assert cli.main([*args, "--out", str(pdf)]) == 0
    assert pdf.read_bytes().startswith(b"%PDF")
    assert len(archive.query("SELECT 1 FROM kap.central_exports")) == 2


def test_export_all_streams_the_filtered_sessions_laptop_by_laptop(
    two_laptops,  # noqa: F811
    tmp_path: Path,
    capsys,
) -> None:
    archive, _laptops, reviewer = two_laptops
    out = tmp_path / "all"
    args = ["export", "--server", reviewer, "--all", "--format", "csv", "--status", "ended"]
    assert cli.main([*args, "--out", str(out)]) == 0
    assert "exported 6 sessions" in capsys.readouterr().out
    folders = sorted(p.relative_to(out) for p in out.glob("*/*"))
    assert len(folders) == 6 and {f.parts[0] for f in folders} == {"room-1", "room-2"}
    for folder in folders:
        assert (out / folder / "sessions.csv").is_file()
    (entry,) = archive.query("SELECT format, cardinality(sessions) FROM kap.central_exports")
    assert entry == ("csv", 6)
    json_out = tmp_path / "json"
    args = ["export", "--server", reviewer, "--all", "--format", "json", "--laptop", "room-1"]
    assert cli.main([*args, "--out", str(json_out)]) == 0
    assert len(list((json_out / "room-1").glob("*.json"))) == 4


def test_a_session_not_in_the_archive_writes_nothing(two_laptops, tmp_path: Path, capsys) -> None:  # noqa: F811
    archive, _laptops, reviewer = two_laptops
    out = tmp_path / "x.json"
    args = ["export", "--server", reviewer, "--session", "0" * 32, "--format", "json"]
    assert cli.main([*args, "--out", str(out)]) == cli.EXIT_STORE
    assert "There is no session" in capsys.readouterr().err
    assert not out.exists() and not archive.query("SELECT 1 FROM kap.central_exports")


def test_an_unreachable_archive_is_said_plainly(tmp_path: Path, capsys) -> None:
    url = f"postgresql://rev:hunter2-secret@127.0.0.1:{free_port()}/kap?connect_timeout=2"
    assert cli.main(["sessions", "--server", url]) == cli.EXIT_STORE
    err = capsys.readouterr().err
    assert "cannot be reached" in err and "Traceback" not in err and "hunter2" not in err
    out = tmp_path / "x.json"
    args = ["export", "--server", url, "--session", "a" * 32, "--format", "json"]
    assert cli.main([*args, "--out", str(out)]) == cli.EXIT_STORE
    assert "cannot be reached" in capsys.readouterr().err and not out.exists()
