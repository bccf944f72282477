"""The review shows an imported signature as "signed elsewhere", never as signed here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from kapmonitor.reports.session_export import build_session_document
from kapmonitor.reports.session_import import IMPORTED, import_documents
from tests.reports import new_store, record_session
from tests.store.test_archive import Known, build_known_archive
from tests.ui.test_review_window import open_review, open_session


@pytest.fixture
def known(tmp_path: Path) -> Iterator[Known]:
    built = build_known_archive(tmp_path / "archive.sqlite")
    yield built
    built.store.close()


def test_an_imported_signature_shows_as_signed_elsewhere_and_locks_nothing(
    qtbot: QtBot, known: Known, tmp_path: Path
) -> None:
    laptop, clock = new_store(tmp_path / "laptop.sqlite")
    session_id = record_session(laptop, clock, seed=11, day=-3)
    document = build_session_document(laptop.db, session_id)
    laptop.close()
    document["tables"]["signatures"] = [  # hand-written: the supervisor never typed anything
        {
            "ref": 1,
            "observed_at": "2026-02-28T12:00:00.000Z",
            "recorded_at": "2026-02-28T12:00:00.000Z",
            "recorded_by": "chen",
            "printed_name": "Dr M. Chen",
            "role": "supervisor",
            "meaning": "reviewed and approved",
        }
    ]
    (outcome,) = import_documents(known.store.db, [document], "admin", known.clock).outcomes
    assert outcome.status == IMPORTED

    window = open_review(qtbot, known, "chen", tmp_path)
    open_session(qtbot, window, session_id)
    header = window.detail.signature_label.text()
    assert header.startswith("Status: Ended — not signed · Not signed · ")
    assert "Signed elsewhere, by Dr M. Chen, supervisor" in header
    assert "NOT verified: it carries no cryptographic signature" in header
    assert "not a signature made here" in header
    # Not locked: the supervisor here may still review and sign it.
    assert window.actions_by_name["sign"].isEnabled()
    assert window.actions_by_name["comment"].isEnabled()
    window.close()


def test_the_review_shows_who_attested_the_record(
    qtbot: QtBot, known: Known, tmp_path: Path
) -> None:
    from kapmonitor.store.signoff import Review

    Review(known.store).attest(known.a, "adams", "amber-lattice-5")
    window = open_review(qtbot, known, "chen", tmp_path)
    open_session(qtbot, window, known.a)
    header = window.detail.signature_label.text()
    assert header == "Status: Ended — not signed · Not signed · Attested at the end by Dr Zoë Adams"
    window.close()
