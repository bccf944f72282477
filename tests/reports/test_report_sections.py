"""The report sections, without Qt: what the PDF prints and the review view shows, built once."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path

import pytest

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.quality import QualityFlag
from kapmonitor.domain.records import Dose, Intervention, VitalSigns
from kapmonitor.domain.reference import default_reference
from kapmonitor.domain.vitals import VITAL_SIGNS
from kapmonitor.reports.report_sections import (
    NO_FLAGS,
    Section,
    session_sections,
    vital_columns,
)
from kapmonitor.store.session_store import SessionLog
from tests.factories import T0, open_store, protocol, session_start

KEYS = [
    "doses",
    "vitals",
    "observations",
    "adverse_events",
    "interventions",
    "alarms",
    "discharge",
    "questionnaires",
    "quality",
    "review",
    "rems",
]


@pytest.fixture
def log(tmp_path: Path) -> Iterator[SessionLog]:
    """A session with capnography, a corrected reading, a withdrawn note and a dose."""
    clock = FakeClock(T0)
    store = open_store(tmp_path / "s.sqlite", clock)
    try:
        sid = store.start_session(
            session_start(clock), "Dr A", protocol=protocol("clinic-ketamine")
        )
        clock.advance(minutes=2)
        base = VitalSigns(clock.now(), sbp=122, dbp=78, hr=72, spo2=98, rr=14, etco2=38)
        store.add(sid, base, "Dr A")
        clock.advance(minutes=3)
        store.add(sid, Dose("ketamine", "im", 50.0, clock.now(), lot_number="L-1"), "Dr A")
        clock.advance(minutes=5)
        typo = VitalSigns(clock.now(), sbp=210, dbp=80, hr=70, spo2=97, rr=12, etco2=41)
        wrong = store.add(sid, typo, "Dr A").primary_id
        clock.advance(minutes=1)
        fixed = VitalSigns(typo.observed_at, sbp=120, dbp=80, hr=70, spo2=97, rr=12, etco2=41)
        store.correct(sid, wrong, fixed, "typed 210 for 120", "Dr A")
        note = Intervention("note", clock.now(), detail="wrong patient's note")
        noted = store.add(sid, note, "Dr A").primary_id
        store.correct(sid, noted, note, "other patient", "Dr A", void=True)
        yield store.load(sid)
    finally:
        store.close()


def build(log: SessionLog, flags: list[QualityFlag] | None = None) -> dict[str, Section]:
    now = T0 + timedelta(hours=1)
    sections = session_sections(log, default_reference(), flags or [], now, tz=UTC)
    assert [s.key for s in sections] == KEYS
    return {s.key: s for s in sections}


def test_vitals_have_a_column_per_registry_vital_with_etco2(log: SessionLog) -> None:
    vitals = build(log)["vitals"]
    for header, members in vital_columns():
        assert header in vitals.headers
        assert all(m in VITAL_SIGNS for m in members)
    assert "EtCO₂ mmHg" in vitals.headers and "BP" in vitals.headers
    assert len(vital_columns()) == len(VITAL_SIGNS) - 1  # systolic and diastolic share "BP"
    shown = [vitals.record(r) for r in vitals.shown()]
    assert [r["EtCO₂ mmHg"] for r in shown] == ["38", "41"]
    assert [r["BP"] for r in shown] == ["122/78", "120/80"]
    assert vitals.label == "Vitals (2)"


def test_a_correction_is_a_struck_row_the_review_leaves_to_its_timeline(log: SessionLog) -> None:
    vitals = build(log)["vitals"]
    replaced = [r for r in vitals.rows if r.state == "replaced"]
    assert len(replaced) == 1 and vitals.record(replaced[0])["BP"] == "210/80"
    assert "superseded by #" in replaced[0].note and "typed 210 for 120" in replaced[0].note
    assert replaced[0] not in vitals.shown()
    # In the PDF the struck original comes just before its correction.
    position = vitals.rows.index(replaced[0])
    assert vitals.record(vitals.rows[position + 1])["BP"] == "120/80"

    notes = build(log)["interventions"]
    (withdrawn,) = notes.rows
    assert withdrawn.state == "replaced" and "withdrawn as entered in error" in withdrawn.note
    assert notes.shown() == [] and notes.label == "Interventions (0)"
    # The quality section counts both: the corrected reading and the withdrawn note.
    assert (
        "2 corrections (each printed beside the entry it corrected)." in build(log)["quality"].notes
    )


def test_times_and_time_since_dose(log: SessionLog) -> None:
    doses = build(log)["doses"]
    first, total = doses.rows
    given = doses.record(first)
    assert (given["Time"], given["Since dose"]) == ("09:05:00", "0:00:00")
    summed = doses.record(total)
    assert total.state == "total" and summed["Time"] == "Total" and summed["mg"] == "50"
    vitals = build(log)["vitals"]
    baseline = vitals.record(vitals.shown()[0])
    assert (baseline["Time"], baseline["Since dose"]) == ("09:02:00", "−0:03:00")  # before dose


def test_quality_rows_warn_on_warnings_and_say_none_when_clean(log: SessionLog) -> None:
    clean = build(log)["quality"]
    assert [clean.record(r)["What"] for r in clean.rows] == [NO_FLAGS]
    assert clean.label == "Quality flags (0)"
    assert any(n.startswith("Scheduled vital-sign checks:") for n in clean.notes)
    flag = QualityFlag("missed_check", "warning", "No vitals between 0:10 and 0:35", T0)
    flagged = build(log, [flag])["quality"]
    (row,) = flagged.rows
    assert row.warn and flagged.record(row)["Flag"] == "Missed check"
    assert flagged.label == "Quality flags (1 ⚠)"


def test_an_unsigned_session_says_so(log: SessionLog) -> None:
    review = build(log)["review"]
    assert review.rows == () and review.notes == ("Not signed.",)


def test_the_sections_load_without_qt() -> None:
    """The review view and the PDF render them; the sections themselves must not need a display."""
    code = (
        "import sys, kapmonitor.reports.report_sections; "
        "sys.exit(any(m.split('.')[0] == 'PySide6' for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_counts_and_late_entries_from_the_lines_built(tmp_path: Path) -> None:
    """Tab counts are the entries in force (a corrected reading once, a withdrawn one not at
    all), counted from the lines rather than by sorting the table again; an entry typed more
    than ten minutes after its moment says so, one typed in the same minute does not."""
    clock = FakeClock(T0)
    store = open_store(tmp_path / "c.sqlite", clock)
    try:
        sid = store.start_session(session_start(clock), "Dr A")
        clock.advance(minutes=1)
        kept = store.add(sid, VitalSigns(clock.now(), hr=70), "Dr A").primary_id
        clock.advance(seconds=20)
        gone = store.add(sid, VitalSigns(clock.now(), hr=71), "Dr A").primary_id
        moment = clock.now() - timedelta(seconds=5)
        clock.advance(minutes=12)
        late = store.add(sid, VitalSigns(moment, hr=72), "Dr A").primary_id
        assert kept is not None and gone is not None and late is not None
        store.correct(sid, kept, VitalSigns(T0 + timedelta(minutes=1), hr=69), "typo", "Dr A")
        store.correct(sid, gone, VitalSigns(moment, hr=71), "wrong patient", "Dr A", void=True)
        log = store.load(sid)
    finally:
        store.close()
    vitals = build(log)["vitals"]
    assert vitals.label == f"Vitals ({len(log.current('vitals'))})" == "Vitals (2)"
    typed = {row.row_id: row.typed for row in vitals.rows}
    assert typed[late].startswith("typed ") and typed[kept] == ""
