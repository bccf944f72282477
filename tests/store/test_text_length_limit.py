"""Free text is limited where it is written, so every record the app makes can be re-imported."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import Intervention
from kapmonitor.domain.validation import MAX_TEXT_CHARS, ValidationError, check_text_lengths
from kapmonitor.reports import import_limits
from tests.factories import open_store, session_start

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def test_a_note_at_the_limit_is_accepted_and_one_character_more_is_refused_by_name() -> None:
    check_text_lengths(Intervention(category="note", observed_at=NOW, detail="x" * MAX_TEXT_CHARS))
    with pytest.raises(ValidationError) as refused:
        check_text_lengths(
            Intervention(category="note", observed_at=NOW, detail="x" * (MAX_TEXT_CHARS + 1))
        )
    message = refused.value.for_field("detail")
    assert message is not None and "20,001 characters" in message and "20,000" in message


def test_the_import_refuses_exactly_what_the_forms_refuse() -> None:
    assert import_limits.MAX_TEXT_CHARS == MAX_TEXT_CHARS


@given(st.integers(min_value=0, max_value=3 * MAX_TEXT_CHARS))
def test_only_lengths_over_the_limit_are_refused(length: int) -> None:
    entry = Intervention(category="note", observed_at=NOW, detail="n" * length)
    if length <= MAX_TEXT_CHARS:
        check_text_lengths(entry)
    else:
        with pytest.raises(ValidationError):
            check_text_lengths(entry)


def test_the_store_refuses_an_over_long_note_and_stores_nothing(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    store = open_store(tmp_path / "k.sqlite", clock)
    session_id = store.start_session(session_start(clock), recorded_by="A. Therapist")
    before = store.db.execute("SELECT count(*) FROM interventions").fetchone()[0]
    too_long = Intervention(category="note", observed_at=NOW, detail="p" * (MAX_TEXT_CHARS + 1))
    with pytest.raises(ValidationError):
        store.add(session_id, too_long, "A. Therapist")
    assert store.db.execute("SELECT count(*) FROM interventions").fetchone()[0] == before
    store.close()


def test_a_correction_reason_is_limited_alike(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    store = open_store(tmp_path / "k.sqlite", clock)
    session_id = store.start_session(session_start(clock), recorded_by="A. Therapist")
    changes = store.add(
        session_id, Intervention(category="note", observed_at=NOW, detail="calm"), "A. Therapist"
    )
    with pytest.raises(ValidationError) as refused:
        store.correct(
            session_id,
            changes.primary_id,
            Intervention(category="note", observed_at=NOW, detail="calm, talking"),
            "r" * (MAX_TEXT_CHARS + 1),
            "A. Therapist",
        )
    assert refused.value.for_field("reason") is not None
    store.close()
