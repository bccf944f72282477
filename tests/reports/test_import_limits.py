"""What an import refuses (kapmonitor/reports/import_limits.py): each refusal is one plain
sentence, the command exits 2 without a traceback, and nothing of the file is stored."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kapmonitor.cli import main
from kapmonitor.paths import is_session_id
from kapmonitor.reports import import_limits
from kapmonitor.reports.session_export import build_session_document, document_text
from kapmonitor.reports.session_import import check_document, import_documents
from kapmonitor.store.database import StoreError, connect
from tests.reports import file_state, new_store, record_session


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One recorded session's JSON document (the demo, corrected)."""
    folder = tmp_path_factory.mktemp("laptop")
    store, clock = new_store(folder / "laptop.sqlite")
    sid = record_session(store, clock)
    doc = build_session_document(store, sid)
    store.close()
    return doc


@pytest.fixture
def office(tmp_path: Path) -> Path:
    """The importing database, with nothing in it yet."""
    path = tmp_path / "office.sqlite"
    connect(path).close()
    return path


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory):
    db = connect(tmp_path_factory.mktemp("scratch") / "scratch.sqlite")
    yield db
    db.close()


def _import(office: Path, tmp_path: Path, text: str, capsys) -> tuple[int, str]:
    source = tmp_path / "in.json"
    source.write_text(text, encoding="utf-8")
    before = file_state(office)
    code = main(["import", "--db", str(office), str(source)])
    err = capsys.readouterr().err
    assert file_state(office) == before, "a refused import stored something"
    assert "Traceback" not in err
    return code, err


def _edited(document: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> str:
    doc = copy.deepcopy(document)
    change(doc)
    return document_text(doc)


def _vitals(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["tables"]["vitals"][0]


def test_the_unchanged_document_imports(document, office: Path, tmp_path: Path, capsys) -> None:
    source = tmp_path / "ok.json"
    source.write_text(document_text(document), encoding="utf-8")
    assert main(["import", "--db", str(office), str(source)]) == 0
    assert "imported 1 session" in capsys.readouterr().out


def test_a_file_over_the_size_limit_is_not_read(office: Path, tmp_path: Path, capsys) -> None:
    source = tmp_path / "flood.json"
    with source.open("wb") as fh:
        fh.truncate(import_limits.MAX_IMPORT_BYTES + 1)  # sparse: no 32 MB written
    before = file_state(office)
    assert main(["import", "--db", str(office), str(source)]) == 2
    err = capsys.readouterr().err
    assert "more than an import reads (32 MB)" in err and "nothing was imported" in err
    assert file_state(office) == before


def test_a_note_over_the_length_limit_is_refused(
    document, office: Path, tmp_path: Path, capsys
) -> None:
    def long_note(doc: dict[str, Any]) -> None:
        row = next(r for r in doc["tables"]["interventions"] if r.get("detail"))
        row["detail"] = "x" * (import_limits.MAX_TEXT_CHARS + 1)

    code, err = _import(office, tmp_path, _edited(document, long_note), capsys)
    assert code == 2 and "detail is longer than 20,000 characters" in err


@pytest.mark.parametrize("number", ["1e400", "-1e400", "NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused(
    number: str, document, office: Path, tmp_path: Path, capsys
) -> None:
    text = document_text(document)
    weight = json.dumps(document["session"]["weight_kg"])
    assert f'"weight_kg": {weight}' in text
    code, err = _import(
        office,
        tmp_path,
        text.replace(f'"weight_kg": {weight}', f'"weight_kg": {number}', 1),
        capsys,
    )
    assert code == 2 and "not JSON text" in err


def test_a_non_finite_number_from_a_database_file_is_refused(document, scratch) -> None:
    doc = copy.deepcopy(document)
    doc["session"]["weight_kg"] = float("inf")  # as a database file could hold it
    with pytest.raises(StoreError, match="weight_kg is not a finite number"):
        check_document(scratch, doc)


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [("vitals", "hr", 1000), ("vitals", "spo2", 101), ("session", "weight_kg", 0.5)],
)
def test_values_outside_the_plausibility_ranges_are_refused(
    table: str, column: str, value: float, document, office: Path, tmp_path: Path, capsys
) -> None:
    def implausible(doc: dict[str, Any]) -> None:
        (doc["session"] if table == "session" else _vitals(doc))[column] = value

    code, err = _import(office, tmp_path, _edited(document, implausible), capsys)
    assert code == 2 and f"{column} is outside the plausible range" in err


@pytest.mark.parametrize(
    "session_id", ["../../../../tmp/x", "A" * 32, "0" * 31, "0" * 33, "g" * 32, "0" * 31 + "\n"]
)
def test_malformed_session_ids_are_refused(
    session_id: str, document, office: Path, tmp_path: Path, capsys
) -> None:
    def bad_id(doc: dict[str, Any]) -> None:
        doc["session"]["id"] = session_id

    code, err = _import(office, tmp_path, _edited(document, bad_id), capsys)
    assert code == 2 and "session id must be 32 lower-case hexadecimal" in err


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "recorded_by must be a name"),
        ("Dr A\nDr B", "recorded_by must be a name"),
        (" Dr A", "recorded_by must be a name"),
        ("x" * 201, "recorded_by must be a name"),
        (7, "recorded_by must be text"),
    ],
)
def test_recorded_by_must_be_a_plain_name(
    value: Any, why: str, document, office: Path, tmp_path: Path, capsys
) -> None:
    def bad_name(doc: dict[str, Any]) -> None:
        _vitals(doc)["recorded_by"] = value

    code, err = _import(office, tmp_path, _edited(document, bad_name), capsys)
    assert code == 2 and why in err


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("2026-03-02 09:00:00", "must be a UTC time like"),
        ("2026-02-30T09:00:00.000Z", "not a real date and time"),
        ("2999-01-01T00:00:00.000Z", "recorded_at is in the future"),
        ("2020-01-01T00:00:00.000Z", "recorded_at is before the time it records"),
    ],
)
def test_recorded_at_must_be_a_real_past_time_after_the_observation(
    value: str, why: str, document, office: Path, tmp_path: Path, capsys
) -> None:
    def bad_time(doc: dict[str, Any]) -> None:
        _vitals(doc)["recorded_at"] = value

    code, err = _import(office, tmp_path, _edited(document, bad_time), capsys)
    assert code == 2 and why in err


def test_the_limits_are_the_documented_ones() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "json-format.md").read_text()
    for figure in ("32 MB", "20,000 characters", "1,000,000 characters", "200 characters"):
        assert figure in doc, figure
    assert import_limits.MAX_IMPORT_BYTES == 32 * 1024 * 1024
    assert import_limits.MAX_TEXT_CHARS == 20_000


# --- the validator on arbitrary JSON values ----------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from(["../../x", "0" * 32, "2026-03-02T09:00:00.000Z", "Dr A"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=JSON)
def test_any_json_value_is_refused_plainly(scratch, value: Any) -> None:
    with pytest.raises(StoreError):
        check_document(scratch, value)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(doc, dict):
        return [p for k, v in doc.items() for p in _paths(v, (*prefix, k))] + [prefix]
    if isinstance(doc, list):
        return [p for i, v in enumerate(doc) for p in _paths(v, (*prefix, i))] + [prefix]
    return [prefix]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), value=JSON)
def test_a_document_with_any_one_value_replaced_is_checked_or_refused_plainly(
    document, scratch, data, value: Any
) -> None:
    """Replace one value anywhere in a real document by any JSON value: the import either
    refuses it with a StoreError before writing, or the checked document obeys every limit."""
    doc = copy.deepcopy(document)
    where = data.draw(st.sampled_from([p for p in _paths(doc) if p]))
    holder = doc
    for key in where[:-1]:
        holder = holder[key]
    holder[where[-1]] = value
    try:
        session_id = check_document(scratch, doc)
    except StoreError:
        return
    assert is_session_id(session_id)
    for rows in doc["tables"].values():
        for row in rows:
            for cell in row.values():
                if isinstance(cell, float):
                    assert cell == cell and abs(cell) != float("inf")
                if isinstance(cell, str):
                    assert len(cell) <= import_limits.MAX_JSON_TEXT_CHARS


def test_import_documents_never_writes_a_refused_file(document, office: Path) -> None:
    bad = copy.deepcopy(document)
    _vitals(bad)["hr"] = 1000
    db = connect(office)
    before = file_state(office)
    with pytest.raises(StoreError):
        import_documents(db, [copy.deepcopy(document), bad], "tester")  # the good one too
    db.close()
    assert file_state(office) == before
