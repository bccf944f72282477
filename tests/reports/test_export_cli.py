"""`kapmonitor export`, `import` and `verify`: one-line summaries, plain refusals, no traceback."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import types
from pathlib import Path

import pytest

from kapmonitor.cli import main
from tests.reports import file_state, new_store, record_session, without_anchor


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kapmonitor", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def clinic(tmp_path: Path) -> tuple[Path, list[str], str]:
    """A database with two sessions; returns its path, the session ids and a patient code."""
    store, clock = new_store(tmp_path / "clinic.sqlite")
    ids = [record_session(store, clock, seed=1), record_session(store, clock, seed=2, day=1)]
    code = store.load(ids[0]).session["patient_code"]
    store.close()
    return tmp_path / "clinic.sqlite", ids, code


def test_round_trip_through_the_command_line_is_byte_identical(clinic, tmp_path: Path) -> None:
    db, ids, code = clinic
    first, office, again = tmp_path / "first.json", tmp_path / "office.sqlite", tmp_path / "2.json"
    done = run_cli(
        "export", "--db", str(db), "--session", ids[0], "--format", "json", "--out", str(first)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"exported 1 session to {first}\n" and code not in done.stdout
    done = run_cli("import", "--db", str(office), str(first))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"imported 1 session from {first}\n"
    done = run_cli(
        "export", "--db", str(office), "--session", ids[0], "--format", "json", "--out", str(again)
    )
    assert done.returncode == 0, done.stderr
    # Each file carries its own database's chain head; everything else is byte-identical.
    assert (
        json.loads(again.read_bytes())["audit_anchor"]
        != json.loads(first.read_bytes())["audit_anchor"]
    )
    assert without_anchor(again.read_bytes()) == without_anchor(first.read_bytes())


def test_all_sessions_round_trip_through_a_folder(clinic, tmp_path: Path, capsys) -> None:
    db, ids, _code = clinic
    out, office, back = tmp_path / "all", tmp_path / "office.sqlite", tmp_path / "back"
    assert main(["export", "--db", str(db), "--all", "--format", "json", "--out", str(out)]) == 0
    assert main(["import", "--db", str(office), str(out)]) == 0
    assert main(["import", "--db", str(office), str(out)]) == 0  # again: nothing changes
    assert (
        main(["export", "--db", str(office), "--all", "--format", "json", "--out", str(back)]) == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"exported 2 sessions to {out}",
        f"imported 2 sessions from {out}",
        f"imported 0 sessions, 2 already present from {out}",
        f"exported 2 sessions to {back}",
    ]
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s}.json" for s in ids)
    for path in out.iterdir():
        assert without_anchor((back / path.name).read_bytes()) == without_anchor(path.read_bytes())


def test_another_laptops_database_imports_from_the_command_line(
    clinic, tmp_path: Path, capsys
) -> None:
    db, ids, _code = clinic
    office = tmp_path / "office.sqlite"
    assert main(["import", "--db", str(office), str(db)]) == 0
    assert capsys.readouterr().out == f"imported 2 sessions from {db}\n"
    assert main(["sessions", "--db", str(office)]) == 0
    listing = capsys.readouterr().out
    assert all(sid in listing for sid in ids)


def test_csv_and_fhir_exports(clinic, tmp_path: Path, capsys) -> None:
    db, ids, code = clinic
    assert (
        main(
            [
                "export",
                "--db",
                str(db),
                "--session",
                ids[0],
                "--format",
                "csv",
                "--out",
                str(tmp_path / "csv"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "export",
                "--db",
                str(db),
                "--all",
                "--format",
                "fhir",
                "--out",
                str(tmp_path / "fhir"),
            ]
        )
        == 0
    )
    (tmp_path / "one").mkdir()
    assert (
        main(
            [
                "export",
                "--db",
                str(db),
                "--session",
                ids[1],
                "--format",
                "fhir",
                "--out",
                str(tmp_path / "one"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert code not in out and len(out.splitlines()) == 3
    assert (tmp_path / "csv" / "vitals.csv").exists()
    assert sorted(p.name for p in (tmp_path / "fhir").iterdir()) == sorted(
        f"{s}.fhir.json" for s in ids
    )
    bundle = json.loads((tmp_path / "one" / f"{ids[1]}.fhir.json").read_text(encoding="utf-8"))
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"


def test_exports_and_imports_are_recorded_in_the_audit_trail(clinic, tmp_path: Path) -> None:
    db, ids, _code = clinic
    office = tmp_path / "office.sqlite"
    assert (
        main(
            [
                "export",
                "--db",
                str(db),
                "--session",
                ids[0],
                "--format",
                "json",
                "--out",
                str(tmp_path / "s.json"),
            ]
        )
        == 0
    )
    assert main(["import", "--db", str(office), str(tmp_path / "s.json")]) == 0
    raw = sqlite3.connect(db)
    exports = raw.execute("SELECT session_id, detail FROM audit WHERE action = 'export'").fetchall()
    raw.close()
    assert [(sid, json.loads(detail)["format"]) for sid, detail in exports] == [(ids[0], "json")]
    raw = sqlite3.connect(office)
    imports = raw.execute("SELECT detail FROM audit WHERE action = 'import' AND table_name IS NULL")
    details = [json.loads(d) for (d,) in imports]
    raw.close()
    assert details == [{"source": "s.json", "imported": 1, "present": 0, "refused": 0}]


def test_an_unwritable_export_path_fails_plainly_and_writes_nothing(clinic, tmp_path: Path) -> None:
    db, ids, _code = clinic
    blocker = tmp_path / "a-file"
    blocker.write_text("keep")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    for fmt, which in (("json", ["--session", ids[0]]), ("csv", ["--all"])):
        done = run_cli(
            "export", "--db", str(db), *which, "--format", fmt, "--out", str(blocker / "x")
        )
        assert done.returncode == 2 and done.stdout == ""
        assert "nothing was written" in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.rglob("*") if "-wal" not in p.name) == [
        n for n in before if "-wal" not in n
    ]
    assert blocker.read_text() == "keep"


def test_a_non_export_is_refused_and_no_database_is_created(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("patient felt fine\n")
    office = tmp_path / "office.sqlite"
    done = run_cli("import", "--db", str(office), str(notes))
    assert done.returncode == 2 and done.stdout == ""
    assert "not a KAP Monitor export" in done.stderr and "Traceback" not in done.stderr
    assert not office.exists()
    done = run_cli("import", "--db", str(office), str(tmp_path / "missing.json"))
    assert done.returncode == 2 and "no such file" in done.stderr and not office.exists()


def test_an_invalid_export_creates_no_database(clinic, tmp_path: Path, capsys) -> None:
    db, ids, _code = clinic
    out = tmp_path / "s.json"
    assert (
        main(
            ["export", "--db", str(db), "--session", ids[0], "--format", "json", "--out", str(out)]
        )
        == 0
    )
    document = json.loads(out.read_text(encoding="utf-8"))
    document["tables"]["doses"][0]["dose_mg"] = "a lot"
    out.write_text(json.dumps(document), encoding="utf-8")
    office = tmp_path / "office.sqlite"
    assert main(["import", "--db", str(office), str(out)]) == 2
    assert "not a valid KAP Monitor export: doses row 1" in capsys.readouterr().err
    assert not office.exists()


def test_a_conflicting_import_exits_non_zero_and_says_why(clinic, tmp_path: Path, capsys) -> None:
    db, ids, _code = clinic
    out = tmp_path / "s.json"
    assert (
        main(
            ["export", "--db", str(db), "--session", ids[0], "--format", "json", "--out", str(out)]
        )
        == 0
    )
    document = json.loads(out.read_text(encoding="utf-8"))
    document["session"]["weight_kg"] = 80.0
    out.write_text(json.dumps(document), encoding="utf-8")
    before = file_state(db)
    capsys.readouterr()
    assert main(["import", "--db", str(db), str(out)]) == 2
    captured = capsys.readouterr()
    assert f"session {ids[0]} differs from the one already here" in captured.err
    assert "the session details differ" in captured.err
    assert captured.out == f"imported 0 sessions, 1 refused from {out}\n"
    after = file_state(db)
    new_audit = after.pop("audit")[len(before.pop("audit")) :]
    assert after == before  # no clinical row; the trail gained only the import event
    raw = sqlite3.connect(db)
    try:
        actions = [action for (action,) in raw.execute("SELECT action FROM audit ORDER BY rowid")]
    finally:
        raw.close()
    assert len(new_audit) == 1 and actions[-1] == "import"


def test_unknown_session_and_missing_database(clinic, tmp_path: Path, capsys) -> None:
    db, _ids, _code = clinic
    out = tmp_path / "x.json"
    assert (
        main(
            [
                "export",
                "--db",
                str(db),
                "--session",
                "f" * 32,
                "--format",
                "json",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "no session ffff" in capsys.readouterr().err and not out.exists()
    missing = tmp_path / "none.sqlite"
    assert (
        main(["export", "--db", str(missing), "--all", "--format", "json", "--out", str(out)]) == 2
    )
    assert "no database" in capsys.readouterr().err and not missing.exists()


def test_pdf_export_calls_the_pdf_report(clinic, tmp_path: Path, monkeypatch, capsys) -> None:
    db, ids, _code = clinic
    calls: list[tuple[Path, str, Path]] = []

    def write_session_pdf(db_path: Path, session_id: str, out: Path) -> None:
        calls.append((db_path, session_id, out))
        out.write_bytes(b"%PDF-1.7\n")

    fake = types.ModuleType("kapmonitor.reports.pdf_report")
    fake.write_session_pdf = write_session_pdf  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kapmonitor.reports.pdf_report", fake)
    assert (
        main(
            [
                "export",
                "--db",
                str(db),
                "--session",
                ids[0],
                "--format",
                "pdf",
                "--out",
                str(tmp_path / "s.pdf"),
            ]
        )
        == 0
    )
    assert (
        main(
            ["export", "--db", str(db), "--all", "--format", "pdf", "--out", str(tmp_path / "pdfs")]
        )
        == 0
    )
    # The report is written to a staged file, moved into place once the export is audited.
    assert [(path, sid) for path, sid, _out in calls] == [(db, ids[0]), (db, ids[0]), (db, ids[1])]
    assert (tmp_path / "s.pdf").read_bytes() == b"%PDF-1.7\n"
    assert sorted(p.name for p in (tmp_path / "pdfs").iterdir()) == sorted(
        f"{sid}.pdf" for sid in ids
    )
    assert not any(out.exists() for _path, _sid, out in calls)  # no staged file left
    assert capsys.readouterr().out.splitlines()[-1] == f"exported 2 sessions to {tmp_path / 'pdfs'}"


def test_verify_prints_its_lines_and_exits_by_the_result(clinic, capsys) -> None:
    db, _ids, _code = clinic
    assert main(["verify", "--db", str(db)]) == 0
    assert capsys.readouterr().out.startswith("OK")
    raw = sqlite3.connect(db)  # a row written behind the app's back has no audit entry
    raw.execute(
        "INSERT INTO interventions (session_id, observed_at, recorded_at, recorded_by, category, "
        "detail) SELECT id, observed_at, recorded_at, 'intruder', 'note', 'x' FROM sessions LIMIT 1"
    )
    raw.commit()
    raw.close()
    assert main(["verify", "--db", str(db)]) == 1
    assert capsys.readouterr().out.startswith("FAILED")
