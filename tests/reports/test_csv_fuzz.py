"""CSV export quoting, fuzzed: any free text a clinician can save comes back from a spreadsheet
reader exactly as it was stored (commas, quotes, new lines, non-ASCII), 1,000 examples; text that
a spreadsheet would run as a formula comes back with the one ``'`` in front that neutralises it
(issue 12; tests/reports/test_csv_injection.py)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import Intervention
from kapmonitor.domain.validation import ValidationError
from kapmonitor.reports.csv_export import neutralise, table_header, write_table
from kapmonitor.reports.session_export import SessionRows, describe_tables
from kapmonitor.store.session_store import SessionStore
from tests.factories import T0, open_store, session_start

TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=60,
) | st.sampled_from(["a,b", '"quoted"', "line\nbreak", "cr\r\nlf", ";", "=1+1", "SpO₂ 97 %"])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SessionStore, FakeClock]]:
    clock = FakeClock(T0)
    opened = open_store(tmp_path_factory.mktemp("csv") / "csv.sqlite", clock)
    yield opened, clock
    opened.close()


@settings(
    max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    detail=TEXT,
    code=st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-", min_size=3, max_size=12),
)
def test_free_text_survives_a_csv_round_trip(
    store: tuple[SessionStore, FakeClock], detail: str, code: str
) -> None:
    opened, clock = store
    session_id = opened.start_session(session_start(clock, patient_code=f"P-{code}"), "Dr A")
    try:
        opened.add(session_id, Intervention("note", clock.now(), detail=detail), "Dr A")
    except ValidationError:
        return  # refused with a reason (e.g. an empty note): nothing to export
    tables = describe_tables(opened.db)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(table_header("interventions", tables["interventions"]))
    reader = SessionRows(opened.db, session_id, tables)
    write_table(writer, reader, "interventions", tables["interventions"])
    text = buffer.getvalue()
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == 1
    stored = opened.load(session_id).current("interventions")[0]["detail"]
    assert rows[0]["detail"] == neutralise(stored)
    assert rows[0]["session_id"] == session_id
