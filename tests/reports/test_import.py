"""Import: byte-identical round trips, idempotence, plain refusals that write nothing."""

from __future__ import annotations

import copy
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kapmonitor.reports.session_export import (
    build_session_document,
    document_text,
    session_ids,
)
from kapmonitor.reports.session_import import (
    IMPORTED,
    PRESENT,
    REFUSED,
    check_document,
    import_documents,
    import_path,
    read_documents,
)
from kapmonitor.store import verify
from kapmonitor.store.database import StoreError, connect
from kapmonitor.store.session_store import SessionStore
from tests.reports import (
    TRICKY_NOTE,
    export,
    file_state,
    new_store,
    record_session,
    without_anchor,
)


@pytest.fixture
def exported(tmp_path: Path) -> tuple[Path, str, Path]:
    """A laptop's database with one recorded session, and its JSON export."""
    store, clock = new_store(tmp_path / "laptop.sqlite")
    sid = record_session(store, clock)
    out = export(store, "json", [sid], tmp_path / "session.json")[0]
    store.close()
    return tmp_path / "laptop.sqlite", sid, out


def fresh(path: Path) -> SessionStore:
    return SessionStore.open(path)


def test_export_import_export_is_byte_identical(exported, tmp_path: Path) -> None:
    _laptop, sid, out = exported
    store = fresh(tmp_path / "office.sqlite")
    report = import_path(store.db, out, "tester")
    assert [(o.session_id, o.status) for o in report.outcomes] == [(sid, IMPORTED)]
    again = document_text(build_session_document(store, sid))
    store.close()
    # The file carries the laptop's chain head (audit_anchor); everything else is byte-identical.
    assert again.encode("utf-8") == without_anchor(out.read_bytes())


def test_corrections_keep_their_references_after_import(exported, tmp_path: Path) -> None:
    _laptop, sid, out = exported
    office, clock = new_store(tmp_path / "office.sqlite")
    record_session(office, clock, seed=3, day=2)  # so local ids here differ from the laptop's
    import_path(office.db, out, "tester")
    log = office.load(sid)
    (fix,) = [r for r in log.rows["vitals"] if r["supersedes_id"] is not None]
    original = office.row("vitals", fix["supersedes_id"])
    assert original["session_id"] == sid and original["sbp"] == fix["sbp"] - 2
    assert fix["note"] == TRICKY_NOTE
    assert fix in log.current("vitals") and original not in log.current("vitals")
    voided = [r for r in log.rows["interventions"] if r["voided"]]
    assert len(voided) == 1
    assert all(r["id"] != voided[0]["supersedes_id"] for r in log.current("interventions"))
    scored = {r["vitals_id"] for r in log.current("vital_scores")}
    assert scored <= {r["id"] for r in log.rows["vitals"]}
    office.close()


def test_imported_rows_are_sealed_into_the_audit_trail(exported, tmp_path: Path) -> None:
    _laptop, _sid, out = exported
    target = tmp_path / "office.sqlite"
    store = fresh(target)
    import_path(store.db, out, "tester")
    actions = {r[0] for r in store.db.execute("SELECT DISTINCT action FROM audit")}
    store.close()
    assert "import" in actions
    result = verify.verify_database(target)
    assert result.ok, result.lines


def test_importing_twice_changes_nothing(exported, tmp_path: Path) -> None:
    _laptop, sid, out = exported
    target = tmp_path / "office.sqlite"
    store = fresh(target)
    import_path(store.db, out, "tester")
    before = file_state(target)
    report = import_path(store.db, out, "tester")
    store.close()
    assert [(o.session_id, o.status) for o in report.outcomes] == [(sid, PRESENT)]
    assert report.ok and "already present" in report.summary()
    assert file_state(target) == before


def test_a_conflicting_session_is_refused_with_a_reason(exported, tmp_path: Path) -> None:
    laptop, sid, out = exported
    document = json.loads(out.read_text(encoding="utf-8"))
    for row in document["tables"]["vitals"][:3]:
        row["hr"] += 1
    altered = tmp_path / "altered.json"
    altered.write_text(json.dumps(document), encoding="utf-8")
    before = file_state(laptop)
    store = fresh(laptop)
    report = import_path(store.db, altered, "tester")
    store.close()
    (outcome,) = report.outcomes
    assert outcome.status == REFUSED and not report.ok
    assert f"session {sid} differs from the one already here" in outcome.reason
    assert "3 vitals rows differ" in outcome.reason
    assert file_state(laptop) == before


def _import_and_expect(tmp_path: Path, source: Path, match: str) -> None:
    target = tmp_path / "office.sqlite"
    store = fresh(target)
    before = file_state(target)
    with pytest.raises(StoreError, match=match):
        import_path(store.db, source, "tester")
    store.close()
    assert file_state(target) == before


@pytest.mark.parametrize(
    "content",
    [
        b"patient,hr\nKAP-1,70\n",
        b"\x89PNG\r\n\x1a\n not a json",
        b'{"resourceType": "Bundle", "type": "collection"}',
        b"[1, 2, 3]",
        b'"just a string"',
        b"[]",
    ],
)
def test_a_file_that_is_not_an_export_is_refused(tmp_path: Path, content: bytes) -> None:
    source = tmp_path / "thing.json"
    source.write_bytes(content)
    _import_and_expect(tmp_path, source, "not a KAP Monitor export|holds no sessions")


@pytest.mark.parametrize("key", ["format_version", "schema_version"])
def test_a_newer_export_is_refused(exported, tmp_path: Path, key: str) -> None:
    _laptop, _sid, out = exported
    document = json.loads(out.read_text(encoding="utf-8"))
    document[key] += 1
    source = tmp_path / "newer.json"
    source.write_text(json.dumps(document), encoding="utf-8")
    _import_and_expect(tmp_path, source, "written by a newer KAP Monitor")


def test_unreadable_paths_are_refused(tmp_path: Path) -> None:
    _import_and_expect(tmp_path, tmp_path / "missing.json", "no such file")
    (tmp_path / "empty").mkdir()
    _import_and_expect(tmp_path, tmp_path / "empty", "holds no .json export files")


def _mutated(document: dict[str, Any], change: str) -> dict[str, Any]:
    doc = copy.deepcopy(document)
    vitals = doc["tables"]["vitals"]
    if change == "wrong type":
        vitals[4]["hr"] = "72"
    elif change == "boolean for a number":
        vitals[4]["hr"] = True
    elif change == "ref out of order":
        vitals[4]["ref"] = 9
    elif change == "dangling reference":
        doc["tables"]["vital_scores"][0]["vitals_id"] = len(vitals) + 1
    elif change == "forward correction":
        vitals[1]["supersedes_id"] = 2
    elif change == "unknown column":
        vitals[4]["pulse"] = 70
    elif change == "unknown table":
        doc["tables"]["billing"] = []
    elif change == "missing required":
        del doc["tables"]["doses"][0]["dose_mg"]
    elif change == "JSON column not JSON":
        doc["tables"]["observations"][0]["features"] = "[unterminated"
    elif change == "local id leaked":
        vitals[4]["id"] = 12
    elif change == "short session id":
        doc["session"]["id"] = "abc"
    elif change == "violates a CHECK":
        vitals[4]["dbp"] = vitals[4]["sbp"] + 10  # the database refuses dbp ≥ sbp
    return doc


CHANGES = [
    "wrong type",
    "boolean for a number",
    "ref out of order",
    "dangling reference",
    "forward correction",
    "unknown column",
    "unknown table",
    "missing required",
    "JSON column not JSON",
    "local id leaked",
    "short session id",
]


@pytest.mark.parametrize("change", CHANGES)
def test_schema_invalid_content_is_refused_and_nothing_written(
    exported, tmp_path: Path, change: str
) -> None:
    _laptop, _sid, out = exported
    document = _mutated(json.loads(out.read_text(encoding="utf-8")), change)
    source = tmp_path / "bad.json"
    source.write_text(json.dumps(document), encoding="utf-8")
    _import_and_expect(tmp_path, source, "not a valid KAP Monitor export")


def test_a_row_the_database_refuses_rolls_back_the_whole_session(exported, tmp_path: Path) -> None:
    _laptop, sid, out = exported
    document = _mutated(json.loads(out.read_text(encoding="utf-8")), "violates a CHECK")
    target = tmp_path / "office.sqlite"
    store = fresh(target)
    before = file_state(target)
    report = import_documents(store.db, [document], "tester")
    store.close()
    (outcome,) = report.outcomes
    assert outcome.status == REFUSED and "nothing of it was written" in outcome.reason
    assert "CHECK constraint" in outcome.reason and sid in outcome.reason
    assert file_state(target) == before


def test_one_bad_document_in_a_folder_refuses_the_whole_folder(tmp_path: Path) -> None:
    store, clock = new_store(tmp_path / "laptop.sqlite")
    record_session(store, clock, seed=1)
    record_session(store, clock, seed=2, day=1)
    folder = tmp_path / "exports"
    _first, second = export(store, "json", session_ids(store), folder, folder=True)
    store.close()
    document = json.loads(second.read_text(encoding="utf-8"))
    document["tables"]["vitals"][0]["hr"] = "fast"
    second.write_text(json.dumps(document), encoding="utf-8")
    _import_and_expect(tmp_path, folder, "not a valid KAP Monitor export")


def test_another_laptops_database_file_is_imported(tmp_path: Path) -> None:
    laptop_path = tmp_path / "laptop.sqlite"
    laptop, clock = new_store(laptop_path)
    shared = record_session(laptop, clock, seed=1)
    only_there = record_session(laptop, clock, seed=2, day=1)
    expected = {s: document_text(build_session_document(laptop, s)) for s in (shared, only_there)}
    office_path = tmp_path / "office.sqlite"
    office = fresh(office_path)
    import_documents(office.db, [build_session_document(laptop, shared)], "tester")
    laptop.close()
    before = laptop_path.read_bytes()

    report = import_path(office.db, laptop_path, "tester")

    statuses = {o.session_id: o.status for o in report.outcomes}
    assert statuses == {shared: PRESENT, only_there: IMPORTED}
    for sid, text in expected.items():
        assert document_text(build_session_document(office, sid)) == text
    office.close()
    assert laptop_path.read_bytes() == before  # read only


def test_a_database_file_of_a_newer_version_is_refused(tmp_path: Path) -> None:
    newer = tmp_path / "newer.sqlite"
    raw = sqlite3.connect(newer)
    raw.execute("CREATE TABLE sessions (id TEXT PRIMARY KEY)")
    raw.execute("PRAGMA user_version = 99")
    raw.commit()
    raw.close()
    _import_and_expect(tmp_path, newer, "written by a newer KAP Monitor")


def test_a_database_file_that_is_not_kap_monitor_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    raw = sqlite3.connect(other)
    raw.execute("CREATE TABLE recipes (name TEXT)")
    raw.commit()
    raw.close()
    _import_and_expect(tmp_path, other, "not a KAP Monitor database")


def test_a_signature_in_the_file_arrives_as_signed_elsewhere(exported, tmp_path: Path) -> None:
    """A signature in an imported file is never stored as a signature made here (issue 12): it
    arrives as "signed elsewhere, by …" (here unsealed: written without a key), the session is
    not locked by it, and importing it again finds the session already present."""
    laptop, sid, _out = exported
    db = connect(laptop)
    supervisor = {
        "username": "drsup",
        "display_name": "Dr Sup",
        "role": "supervisor",
        "password_hash": "scrypt$placeholder",
        "observed_at": "2026-03-02T08:00:00.000Z",
        "recorded_at": "2026-03-02T08:00:00.000Z",
        "recorded_by": "admin",
    }
    with db.atomic():
        db["users"].insert(supervisor)
        db["signatures"].insert(
            {
                "session_id": sid,
                "observed_at": "2026-03-02T12:00:00.000Z",
                "recorded_at": "2026-03-02T12:00:00.000Z",
                "recorded_by": "drsup",
                "printed_name": "Dr Sup",
                "role": "supervisor",
                "meaning": "reviewed",
            }
        )
    document = build_session_document(db, sid)
    db.close()

    office = connect(tmp_path / "office.sqlite")
    (done,) = import_documents(office, [document], "tester").outcomes
    assert done.status == IMPORTED
    assert office.execute("SELECT count(*) FROM signatures").fetchone()[0] == 0
    (row,) = office.query("SELECT printed_name, status, recorded_by FROM imported_signatures")
    assert row == {"printed_name": "Dr Sup", "status": "unsealed", "recorded_by": "tester"}
    (again,) = import_documents(office, [document], "tester").outcomes
    assert again.status == PRESENT
    office.close()


# --- hypothesis: malformed documents never crash and never leave half a session --------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def malformed(draw: st.DrawFn, base: dict[str, Any]) -> Any:
    """A valid export with a few values replaced, or an arbitrary JSON object."""
    if draw(st.booleans()):
        return draw(st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=6))
    doc = copy.deepcopy(base)
    doc["session"]["id"] = draw(st.sampled_from(["a" * 32, "b" * 32, base["session"]["id"]]))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        table = draw(st.sampled_from(sorted(t for t, rows in doc["tables"].items() if rows)))
        rows = doc["tables"][table]
        row = rows[draw(st.integers(min_value=0, max_value=len(rows) - 1))]
        key = draw(st.sampled_from(sorted(row)))
        action = draw(st.sampled_from(["replace", "delete", "drop-row"]))
        if action == "replace":
            row[key] = draw(JSON_VALUES)
        elif action == "delete":
            del row[key]
        else:
            rows.remove(row)
    return doc


@pytest.fixture(scope="module")
def base_document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    store, clock = new_store(tmp_path_factory.mktemp("base") / "base.sqlite")
    sid = record_session(store, clock)
    document = build_session_document(store, sid)
    store.close()
    return document


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory):
    store = fresh(tmp_path_factory.mktemp("target") / "target.sqlite")
    yield store
    store.close()


def same_values(given: dict[str, Any], stored: dict[str, Any]) -> bool:
    """Every value given is stored; a column left out was stored empty or as its default."""
    return all(stored[k] == v for k, v in given.items())


def test_malformed_documents_never_crash_or_write_half_a_session(base_document, target) -> None:
    @settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
    @given(document=malformed(base_document))
    def check(document: Any) -> None:
        before = file_state(target.path)
        try:
            report = import_documents(target.db, [document], "fuzz")
        except StoreError as exc:
            assert str(exc) and "Traceback" not in str(exc)
            assert file_state(target.path) == before
            return
        (outcome,) = report.outcomes
        if outcome.status == IMPORTED:  # then all of it, exactly as given
            stored = build_session_document(target, outcome.session_id)
            assert same_values(document["session"], stored["session"])
            for table, rows in document["tables"].items():
                assert len(stored["tables"][table]) == len(rows)
                assert all(map(same_values, rows, stored["tables"][table]))
        else:
            assert file_state(target.path) == before

    check()


def test_read_documents_accepts_a_list_of_exports(exported, tmp_path: Path) -> None:
    _laptop, sid, out = exported
    bundle = tmp_path / "two.json"
    document = json.loads(out.read_text(encoding="utf-8"))
    bundle.write_text(json.dumps([document, document]), encoding="utf-8")
    documents = read_documents(bundle)
    assert len(documents) == 2
    store = fresh(tmp_path / "office.sqlite")
    assert check_document(store.db, documents[0]) == sid
    report = import_documents(store.db, documents, "tester")
    store.close()
    assert [o.status for o in report.outcomes] == [IMPORTED, PRESENT]
