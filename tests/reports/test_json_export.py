"""The JSON export: the whole session, refs instead of local ids, deterministic bytes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from kapmonitor.reports.session_export import (
    FORMAT,
    SCHEMA_FILE,
    ExportTarget,
    build_session_document,
    current_rows,
    describe_tables,
    document_text,
    json_schema,
    no_progress,
    session_ids,
    write_json_sessions,
)
from kapmonitor.store.database import StoreError, connect
from kapmonitor.store.schema import SCHEMA_VERSION
from tests.reports import TRICKY_NOTE, export, new_store, record_session


@pytest.fixture
def recorded(tmp_path: Path):
    store, clock = new_store(tmp_path / "clinic.sqlite")
    record_session(store, clock, seed=3)  # an earlier session, so local ids are not refs
    session_id = record_session(store, clock, day=1)
    yield store, session_id
    store.close()


def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def test_export_validates_against_the_json_schema(recorded) -> None:
    store, sid = recorded
    jsonschema.Draft202012Validator.check_schema(schema())
    document = json.loads(document_text(build_session_document(store, sid)))
    jsonschema.Draft202012Validator(schema()).validate(document)


def test_the_schema_rejects_what_is_not_an_export(recorded) -> None:
    store, sid = recorded
    validator = jsonschema.Draft202012Validator(schema())
    document = build_session_document(store, sid)
    document["tables"]["vitals"][0]["hr"] = "seventy"
    assert not validator.is_valid(document)
    document = build_session_document(store, sid)
    document["tables"]["vitals"][0]["id"] = 5  # local ids never appear
    assert not validator.is_valid(document)
    assert not validator.is_valid({"format": "something-else"})


def test_schema_file_is_in_step_with_the_database(tmp_path: Path) -> None:
    db = connect(tmp_path / "fresh.sqlite")
    try:
        expected = json_schema(db)
    finally:
        db.close()
    assert schema() == expected, (
        "resources/schemas/session-export.schema.json is out of date: regenerate it with "
        '.venv/bin/python -c "from kapmonitor.reports.session_export import write_json_schema; '
        'write_json_schema()" and describe the change in docs/json-format.md'
    )


def test_document_envelope_and_every_session_table(recorded) -> None:
    store, sid = recorded
    document = build_session_document(store, sid)
    assert document["format"] == FORMAT and document["format_version"] == 1
    assert document["schema_version"] == SCHEMA_VERSION
    assert document["session"]["id"] == sid
    assert set(document["tables"]) == set(describe_tables(store.db))
    assert {"audit", "users", "sessions"}.isdisjoint(document["tables"])
    for name, rows in document["tables"].items():
        assert [r["ref"] for r in rows] == list(range(1, len(rows) + 1)), name
        assert all("id" not in r and "session_id" not in r for r in rows), name
    assert len(document["tables"]["vitals"]) == len(local_ids(store, sid, "vitals"))
    assert local_ids(store, sid, "vitals")[0] > 1  # so refs are not the local ids


def local_ids(store, sid: str, table: str, column: str = "id") -> list[Any]:
    """One column of a session's rows in id order, as stored (local ids)."""
    sql = f"SELECT {column} FROM {table} WHERE session_id = ? ORDER BY id"
    return [r[0] for r in store.db.execute(sql, [sid])]


def test_references_become_refs_of_the_right_rows(recorded) -> None:
    store, sid = recorded
    tables = build_session_document(store, sid)["tables"]
    vitals_ids = local_ids(store, sid, "vitals")
    scored = local_ids(store, sid, "vital_scores", "vitals_id")
    assert [vitals_ids[s["vitals_id"] - 1] for s in tables["vital_scores"]] == scored
    (alarm,) = tables["alarms"]
    assert alarm["source_table"] == "vitals"
    assert vitals_ids[alarm["source_id"] - 1] == local_ids(store, sid, "alarms", "source_id")[0]
    assert tables["vitals"][alarm["source_id"] - 1]["spo2"] == 91
    (ack,) = tables["alarm_acknowledgements"]
    assert ack["alarm_id"] == alarm["ref"]
    (outcome,) = tables["adverse_event_outcomes"]
    assert tables["adverse_events"][outcome["adverse_event_id"] - 1]["term"] == "nausea"


def test_corrections_name_the_ref_they_supersede(recorded) -> None:
    store, sid = recorded
    tables = build_session_document(store, sid)["tables"]
    (fix,) = [r for r in tables["vitals"] if r["supersedes_id"] is not None]
    original = tables["vitals"][fix["supersedes_id"] - 1]
    assert fix["note"] == TRICKY_NOTE and fix["sbp"] == original["sbp"] + 2
    assert fix["correction_reason"] == "Typo: transposed digits"
    assert original not in current_rows(tables["vitals"]) and fix in current_rows(tables["vitals"])
    (void,) = [r for r in tables["interventions"] if r["voided"]]
    withdrawn = tables["interventions"][void["supersedes_id"] - 1]
    assert withdrawn not in current_rows(tables["interventions"])
    assert void not in current_rows(tables["interventions"])


def test_json_text_columns_stay_as_the_stored_text(recorded) -> None:
    store, sid = recorded
    document = build_session_document(store, sid)
    stored = local_ids(store, sid, "observations", "features")
    assert [r["features"] for r in document["tables"]["observations"]] == stored
    assert isinstance(document["session"]["eligibility"], str)
    assert json.loads(document["session"]["eligibility"])


def test_text_is_deterministic_and_carries_no_export_time(recorded, tmp_path: Path) -> None:
    store, sid = recorded
    first = export(store, "json", [sid], tmp_path / "a.json")[0].read_bytes()
    store.clock.advance(days=3)
    second = export(store, "json", [sid], tmp_path / "b.json")[0].read_bytes()
    assert first == second and first.endswith(b"}\n")
    text = first.decode("utf-8")
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert "°C" in text  # written as UTF-8, not \\u escapes


def test_a_table_added_later_is_exported_with_its_references(recorded) -> None:
    store, sid = recorded
    store.db.execute(
        "CREATE TABLE bedside_photos (id INTEGER PRIMARY KEY, "
        "session_id TEXT NOT NULL REFERENCES sessions(id), "
        "vitals_id INTEGER REFERENCES vitals(id), caption TEXT) STRICT"
    )
    last_vitals = store.db.execute("SELECT max(id) FROM vitals").fetchone()[0]
    store.db.execute(
        "INSERT INTO bedside_photos (session_id, vitals_id, caption) VALUES (?, ?, 'monitor')",
        [sid, last_vitals],
    )
    tables = build_session_document(store, sid)["tables"]
    assert tables["bedside_photos"] == [
        {"ref": 1, "vitals_id": len(tables["vitals"]), "caption": "monitor"}
    ]


def test_unknown_session_is_refused_plainly(recorded, tmp_path: Path) -> None:
    store, _sid = recorded
    with pytest.raises(StoreError, match="no session 0123"):
        export(store, "json", ["0123" * 8], tmp_path / "x.json")[0]
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("where", ["missing_folder", "folder_in_the_way", "file_as_folder"])
def test_unwritable_path_leaves_nothing(recorded, tmp_path: Path, where: str) -> None:
    store, sid = recorded
    (tmp_path / "folder_in_the_way").mkdir()
    (tmp_path / "a_file").write_text("keep me")
    out = {
        "missing_folder": tmp_path / "nowhere" / "s.json",
        "folder_in_the_way": tmp_path / "folder_in_the_way",
        "file_as_folder": tmp_path / "a_file" / "s.json",
    }[where]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    # The target itself, as the registry makes it for one session's file (the registry would put
    # the file inside an existing folder, as the CLI documents).
    target = ExportTarget(out, single=True)
    with pytest.raises(StoreError, match="nothing was written"):
        write_json_sessions(store.db, [sid], target, no_progress)
        target.commit()
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert (tmp_path / "a_file").read_text() == "keep me"


def test_all_sessions_one_file_each(tmp_path: Path) -> None:
    store, clock = new_store(tmp_path / "clinic.sqlite")
    first = record_session(store, clock, seed=1)
    second = record_session(store, clock, seed=2, day=1)
    written = export(store, "json", session_ids(store), tmp_path / "out", folder=True)
    store.close()
    assert sorted(p.name for p in written) == sorted([f"{first}.json", f"{second}.json"])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in written)
    for path in written:
        document = json.loads(path.read_text(encoding="utf-8"))
        assert document["session"]["id"] == path.stem
        # refs restart at 1 in every session, whatever the local ids
        assert [r["ref"] for r in document["tables"]["vitals"]][:2] == [1, 2]


def test_the_format_document_names_every_json_text_and_reference_column(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "json-format.md").read_text("utf-8")
    db = connect(tmp_path / "fresh.sqlite")
    try:
        tables = describe_tables(db)
    finally:
        db.close()
    for name, info in tables.items():
        for column in info.columns:
            if column.json_text:
                assert f"| `{name}` |" in doc and f"`{column.name}`" in doc, (name, column.name)
        for link in info.links:
            if link.column != "supersedes_id":
                assert f"| `{name}` | `{link.column}` |" in doc, (name, link.column)


def test_the_export_and_import_modules_never_load_qt() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import kapmonitor.reports.session_export, kapmonitor.reports.csv_export\n"
        "import kapmonitor.reports.fhir_export, kapmonitor.reports.session_import\n"
        "import kapmonitor.cli\n"
        "qt = sorted(m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph')))\n"
        "assert not qt, qt\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
