"""The PDF of a session with a very long note stays bounded: the note is cut at
``CELL_TEXT_LIMIT`` characters with a pointer to the full text in the JSON export.

Before: a 100 MB imported note made the session's PDF run past 120 s. Notes are now limited to
``MAX_TEXT_CHARS`` (20,000) wherever they are written, ten times what a PDF cell prints, so this
test records the longest note the store accepts.
"""

from __future__ import annotations

import json
from pathlib import Path

from kapmonitor.domain.records import Intervention
from kapmonitor.domain.validation import MAX_TEXT_CHARS
from kapmonitor.reports.pdf_report import CELL_TEXT_LIMIT, write_session_pdf
from kapmonitor.reports.session_export import build_session_document
from tests.factories import session_start
from tests.reports import new_store
from tests.reports.test_pdf_report import pdf_words

LONGEST = MAX_TEXT_CHARS


def test_the_longest_note_prints_its_start_and_where_the_rest_is(qapp, tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    store, clock = new_store(db)
    session_id = store.start_session(session_start(clock), "Dr A")
    store.add(session_id, Intervention("note", clock.now(), detail="calm, talking"), "Dr A")
    words = "Patient describes the session at length, calmly, with pauses. "
    note = ("START " + words * (LONGEST // len(words) + 1))[: LONGEST - 4] + " END"
    clock.advance(minutes=1)
    store.add(session_id, Intervention("note", clock.now(), detail=note), "Dr A")
    document = build_session_document(store, session_id)
    store.close()

    out = tmp_path / "report.pdf"
    write_session_pdf(db, session_id, out)

    assert out.stat().st_size < 300_000, out.stat().st_size
    text = pdf_words(out)
    assert "START Patient describes" in text and " END" not in text
    more = f"{LONGEST - CELL_TEXT_LIMIT:,}"
    rows = document["tables"]["interventions"]
    ref = next(r["ref"] for r in rows if r["detail"] == note)
    assert ref == 2
    assert (
        f"[{more} more characters not printed: full text in the JSON export, "
        f"interventions entry #{ref}]" in text
    ), text[-2000:]
    # The pointer is true: that entry of the JSON export holds the whole note.
    assert json.loads(json.dumps(rows[ref - 1]))["detail"] == note


def test_a_note_at_the_limit_prints_whole(qapp, tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    store, clock = new_store(db)
    session_id = store.start_session(session_start(clock), "Dr A")
    note = ("word " * CELL_TEXT_LIMIT)[: CELL_TEXT_LIMIT - 3] + "END"
    store.add(session_id, Intervention("note", clock.now(), detail=note), "Dr A")
    store.close()
    out = tmp_path / "report.pdf"
    write_session_pdf(db, session_id, out)
    text = pdf_words(out)
    assert "END" in text and "not printed" not in text
