"""The export registry: one writer signature, formats listed from one place, the audit entry
written once, writers that stream (memory flat in the number of sessions), and EtCO₂ in every
format through the vital-sign registry."""

from __future__ import annotations

import copy
import csv
import io
import json
import sqlite3
import tracemalloc
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import jsonschema
import pytest
from sqlite_utils import Database

from kapmonitor.cli import TerminalProgress, build_parser, main
from kapmonitor.domain.vitals import vital
from kapmonitor.reports.export_registry import (
    ExportTarget,
    Progress,
    export_formats,
    finish_export,
    register_export,
    run_export,
    unregister_export,
    write_export,
)
from kapmonitor.reports.fhir_export import build_bundle, bundle_text, stream_bundle
from kapmonitor.reports.session_export import (
    SCHEMA_FILE,
    build_session_document,
    document_text,
    session_ids,
    stream_session_document,
)
from kapmonitor.reports.session_import import import_documents, read_documents
from kapmonitor.store.database import StoreError, connect_readonly
from kapmonitor.store.session_store import SessionStore
from tests.reports import export, new_store, record_session, without_anchor

ETCO2 = vital("etco2")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SessionStore, str]]:
    store, clock = new_store(tmp_path_factory.mktemp("registry") / "clinic.sqlite")
    sid = record_session(store, clock)
    yield store, sid
    store.close()


def export_audits(db: Database) -> list[tuple[str, dict[str, str]]]:
    return [
        (sid, json.loads(detail))
        for sid, detail in db.execute(
            "SELECT session_id, detail FROM audit WHERE action = 'export' ORDER BY id"
        )
    ]


# --- streaming gives the same bytes as the document -------------------------------------------


def test_the_streamed_json_is_byte_for_byte_the_document(recorded) -> None:
    store, sid = recorded
    out = io.StringIO()
    stream_session_document(store.db, sid, out)
    assert out.getvalue() == document_text(build_session_document(store, sid))


def test_the_streamed_fhir_bundle_is_byte_for_byte_the_bundle(recorded) -> None:
    store, sid = recorded
    out = io.StringIO()
    stream_bundle(build_session_document(store, sid), out)
    assert out.getvalue() == bundle_text(build_bundle(store, sid))


# --- a new format is one registry entry plus its writer ----------------------------------------


def _plain_writer(
    db: Database, ids: Sequence[str], target: ExportTarget, progress: Progress
) -> None:
    """A throwaway format: each session's id and patient code, one text file each."""
    for done, sid in enumerate(ids, 1):
        (code,) = db.execute("SELECT patient_code FROM sessions WHERE id = ?", [sid]).fetchone()
        with target.open_text(f"{sid}.txt") as out:
            out.write(f"{sid} {code}\n")
        progress(done, len(ids))


@pytest.fixture
def plain_format() -> Iterator[str]:
    register_export("plain", "Plain text", ".txt", _plain_writer)
    yield "plain"
    unregister_export("plain")


def test_a_registered_format_is_a_cli_choice_and_is_audited_per_session(
    plain_format: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, clock = new_store(tmp_path / "clinic.sqlite")
    ids = [record_session(store, clock, seed=1), record_session(store, clock, seed=2, day=1)]
    store.close()
    parser = build_parser()
    export_parser = parser._subparsers._group_actions[0].choices["export"]  # type: ignore[union-attr]
    (fmt,) = [a for a in export_parser._actions if a.dest == "format"]
    assert list(fmt.choices) == [f.name for f in export_formats()]
    assert "plain" in fmt.choices
    db = tmp_path / "clinic.sqlite"
    out = tmp_path / "plain"
    assert main(["export", "--db", str(db), "--all", "--format", "plain", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{sid}.txt" for sid in ids)
    assert capsys.readouterr().out == f"exported 2 sessions to {out}\n"
    reopened = SessionStore.open(db)
    try:
        audits = export_audits(reopened.db)
    finally:
        reopened.close()
    assert audits == [(sid, {"format": "plain", "file": str(out)}) for sid in ids]


def test_an_unknown_format_is_refused_by_the_cli(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["export", "--db", str(tmp_path / "x.sqlite"), "--all", "--format", "xls"])
    assert "invalid choice: 'xls'" in capsys.readouterr().err


def test_a_failed_audit_entry_leaves_no_file(recorded, tmp_path: Path) -> None:
    """Nothing leaves unaudited: when the entry cannot be written, the staged file goes."""
    store, sid = recorded
    target = write_export("json", store, [sid], tmp_path / "s.json")
    reader = connect_readonly(store.path)  # cannot write: the audit entry fails
    try:
        with pytest.raises(StoreError, match="cannot be written"):  # plain words (issue 12)
            finish_export(reader, target, "json", [sid], "tester", store.clock.now())
    finally:
        reader.close()
    assert list(tmp_path.iterdir()) == []


def test_the_terminal_progress_bar_shows_counts_only(
    plain_format: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, clock = new_store(tmp_path / "clinic.sqlite")
    ids = [record_session(store, clock, seed=1), record_session(store, clock, seed=2, day=1)]
    code = store.load(ids[0]).session["patient_code"]
    store.close()
    db, out = tmp_path / "clinic.sqlite", tmp_path / "json"
    assert main(["export", "--db", str(db), "--all", "--format", "json", "--out", str(out)]) == 0
    assert capsys.readouterr().err == ""  # not a terminal, no flag: no bar
    args = ["export", "--db", str(db), "--all", "--format", "json", "--out", str(out), "--progress"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "1/2 sessions  50%" in err and err.endswith("2/2 sessions 100%\n")
    assert code not in err and not any(sid in err for sid in ids)


def test_the_progress_bar_redraws_only_when_the_percentage_moves() -> None:
    stream = io.StringIO()
    bar = TerminalProgress(stream)
    for done in range(1, 1001):
        bar(done, 1000)
    assert stream.getvalue().count("\r") == 101  # 0 %, then each percent up to 100


# --- memory stays flat whatever the number of sessions -----------------------------------------


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SessionStore, list[str]]]:
    """Fifteen copies of one recorded session (new ids), imported through the store."""
    store, clock = new_store(tmp_path_factory.mktemp("many") / "clinic.sqlite")
    original = record_session(store, clock)
    document = build_session_document(store, original)
    copies = []
    for _ in range(14):
        twin = copy.deepcopy(document)
        twin["session"]["id"] = uuid.uuid4().hex
        copies.append(twin)
    report = import_documents(store.db, copies, "tester")
    assert report.ok
    yield store, session_ids(store)
    store.close()


def _peak(store: SessionStore, fmt: str, ids: list[str], out: Path) -> int:
    tracemalloc.start()
    try:
        write_export(fmt, store, ids, out, folder=True).commit()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("fmt", ["json", "csv", "fhir"])
def test_export_memory_does_not_grow_with_the_number_of_sessions(
    many, tmp_path: Path, fmt: str
) -> None:
    store, ids = many
    assert len(ids) == 15
    export(store, fmt, ids[:1], tmp_path / "warm", folder=True)  # imports and caches
    few = _peak(store, fmt, ids[:3], tmp_path / "few")
    five_times = _peak(store, fmt, ids, tmp_path / "many")
    # Holding every file (as before) grows the peak about fivefold; streaming keeps it flat.
    print(f"{fmt}: peak {few} B for 3 sessions, {five_times} B for 15")
    assert five_times <= few * 1.25 + 64 * 1024, (fmt, few, five_times)
    written = sorted((tmp_path / "many").iterdir())
    assert len(written) == (len(list((tmp_path / "few").iterdir())) if fmt == "csv" else 15)


# --- EtCO2 in every format, from the vital-sign registry ----------------------------------------


def test_etco2_in_csv_json_and_fhir(recorded, tmp_path: Path) -> None:
    store, sid = recorded
    stored = [r["etco2"] for r in store.load(sid).current("vitals")]
    assert any(v is not None for v in stored), "the demo records EtCO2"

    (folder,) = {p.parent for p in export(store, "csv", [sid], tmp_path / "csv")}
    with (folder / "vitals.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["status"] == "current"]
    exported = [int(r["etco2"]) if r["etco2"] else None for r in rows]
    assert sorted(exported, key=str) == sorted(stored, key=str)  # CSV rows are in id order

    (path,) = export(store, "json", [sid], tmp_path / "s.json")
    document = json.loads(path.read_text(encoding="utf-8"))
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.validate(document, schema)
    assert schema["$defs"]["vitals"]["properties"]["etco2"]["type"] == ["integer", "null"]
    assert [r["etco2"] for r in document["tables"]["vitals"] if r["etco2"] is not None]

    (path,) = export(store, "fhir", [sid], tmp_path / "s.fhir.json")
    bundle = json.loads(path.read_text(encoding="utf-8"))
    etco2 = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
        and e["resource"]["code"]["coding"][0]["code"] == "19891-1"
    ]
    assert len(etco2) == sum(1 for v in stored if v is not None)
    for resource in etco2:
        assert resource["code"]["coding"][0]["system"] == "http://loinc.org"
        quantity = resource["valueQuantity"]
        assert quantity["system"] == "http://unitsofmeasure.org"
        assert quantity["code"] == ETCO2.ucum == "mm[Hg]" and quantity["unit"] == "mmHg"
        assert resource["category"][0]["coding"][0]["code"] == "vital-signs"
        assert "meta" not in resource  # no FHIR vital-signs profile for EtCO2
    panels = [
        e
        for e in bundle["entry"]
        if e["resource"].get("code", {}).get("coding", [{}])[0].get("code") == "85353-1"
    ]
    members = {m["reference"] for p in panels for m in p["resource"]["hasMember"]}
    assert {e["fullUrl"] for e in bundle["entry"] if e["resource"] in etco2} <= members


def test_etco2_round_trips_through_a_json_import(recorded, tmp_path: Path) -> None:
    store, sid = recorded
    (path,) = export(store, "json", [sid], tmp_path / "s.json")
    office, _clock = new_store(tmp_path / "office.sqlite")
    try:
        report = import_documents(office.db, read_documents(path), "tester")
        assert report.ok and report.count("imported") == 1
        theirs = [r["etco2"] for r in office.load(sid).current("vitals")]
        assert theirs == [r["etco2"] for r in store.load(sid).current("vitals")]
        assert any(v is not None for v in theirs)
        again = export(office, "json", [sid], tmp_path / "again.json")[0]
        assert without_anchor(again.read_bytes()) == without_anchor(path.read_bytes())
    finally:
        office.close()


# --- the one read-only connection helper ------------------------------------------------------


def test_connect_readonly_reads_beside_a_writer_and_never_writes(recorded, tmp_path: Path) -> None:
    store, sid = recorded
    writer = sqlite3.connect(store.path)
    writer.execute("BEGIN IMMEDIATE")  # a session being recorded holds the write lock
    reader = connect_readonly(store.path)
    try:
        assert sid in session_ids(reader)
        out = io.StringIO()
        stream_session_document(reader, sid, out)
        assert json.loads(out.getvalue())["session"]["id"] == sid
        with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only|query_only"):
            reader.execute("INSERT INTO audit (id) VALUES (NULL)")
    finally:
        reader.close()
        writer.rollback()
        writer.close()
    with pytest.raises(StoreError, match="no database"):
        connect_readonly(tmp_path / "nowhere.sqlite")
    assert not (tmp_path / "nowhere.sqlite").exists()


def test_run_export_writes_audits_and_commits(recorded, tmp_path: Path) -> None:
    store, sid = recorded
    before = len(export_audits(store.db))
    out = run_export(store.db, "json", [sid], tmp_path / "s.json", "tester", store.clock.now())
    assert out == tmp_path / "s.json" and out.exists()
    assert export_audits(store.db)[before:] == [(sid, {"format": "json", "file": str(out)})]


def test_the_memory_check_catches_a_writer_that_holds_every_file(many, tmp_path: Path) -> None:
    """The bound above can fail: a writer building every file before writing (as the exports
    did) breaks it."""
    store, ids = many

    def hoarding(db: Database, chosen: Sequence[str], target: ExportTarget, progress: Progress):
        texts = {sid: document_text(build_session_document(db, sid)) for sid in chosen}
        for done, (sid, text) in enumerate(texts.items(), 1):
            with target.open_text(f"{sid}.json") as out:
                out.write(text)
            progress(done, len(chosen))

    register_export("hoard", "Hoarded JSON", ".json", hoarding)
    try:
        export(store, "hoard", ids[:1], tmp_path / "warm", folder=True)
        few = _peak(store, "hoard", ids[:3], tmp_path / "few")
        five_times = _peak(store, "hoard", ids, tmp_path / "many")
    finally:
        unregister_export("hoard")
    assert five_times > few * 1.25 + 64 * 1024, (few, five_times)
