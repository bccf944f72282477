"""The PDF and the review view show the same sections and the same rows for one session.

Both render :mod:`kapmonitor.reports.report_sections`; this reads what each actually shows (the
review tabs' cells, the PDF's text through poppler's ``pdftotext``) and compares them.
"""

from __future__ import annotations

import random
import re
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from kapmonitor.demo import record_demo
from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import VitalSigns
from kapmonitor.reports.pdf_report import write_session_pdf
from kapmonitor.reports.report_sections import session_sections
from kapmonitor.ui.review.session_review_view import SECTION_OF_TAB, TABS, SessionReviewView
from tests.factories import T0, open_store, protocol


def pdf_text(path: Path, mode: str) -> str:
    done = subprocess.run(["pdftotext", mode, str(path), "-"], capture_output=True, text=True)
    done.check_returncode()
    return done.stdout


@pytest.mark.parametrize("protocol_id", ["clinic-demo", "esketamine-rems"])
def test_the_pdf_and_the_review_view_show_the_same_sections_and_rows(
    qtbot: QtBot, tmp_path: Path, protocol_id: str
) -> None:
    path = tmp_path / "demo.sqlite"
    clock = FakeClock(T0)
    store = open_store(path, clock)
    chosen = None if protocol_id == "clinic-demo" else protocol(protocol_id)
    dose_at = T0 + timedelta(minutes=15)
    steps = list(record_demo(store, clock, dose_at, 0.0, random.Random(7), chosen))
    session_id = str(steps[0][1])
    original = store.load(session_id).current("vitals")[3]
    at = datetime.fromisoformat(original["observed_at"].replace("Z", "+00:00"))
    fixed = VitalSigns(at, sbp=133, dbp=85, hr=original["hr"], spo2=original["spo2"], rr=16)
    clock.advance(minutes=5)
    store.correct(session_id, original["id"], fixed, "Read from the wrong monitor", "Dr A")

    view = SessionReviewView(store, clock)
    qtbot.addWidget(view)
    log = view.show_session(session_id)
    out = tmp_path / "report.pdf"
    write_session_pdf(path, session_id, out, now=clock.now())  # printed when the view looks
    layout = pdf_text(out, "-layout")
    # Cell by cell in reading order; spaces dropped, as a wrapped cell breaks lines anywhere.
    words = "".join(pdf_text(out, "-raw").split())

    rems = view.rems_form()
    assert (rems is not None) == (protocol_id == "esketamine-rems")
    sections = {
        s.key: s
        for s in session_sections(log, store.ref, view.quality_flags(), clock.now(), rems=rems)
    }
    assert set(SECTION_OF_TAB.values()) == set(sections), "every section has its tab"
    assert [t for t in TABS if t not in SECTION_OF_TAB] == ["Timeline"]
    for tab, key in SECTION_OF_TAB.items():
        section = sections[key]
        if key == "rems" and rems is None:  # not a REMS session: said in the tab, not printed
            assert view.tab_rows(tab) == [["REMS form", "Applies to esketamine REMS sessions only"]]
            assert "REMS" not in layout
            continue
        assert re.search(rf"^\s*{re.escape(section.title)}\s*$", layout, re.MULTILINE), tab
        shown = view.tab_rows(tab)
        assert view.tables[tab].columnCount() == len(section.headers)
        assert shown == [list(r.cells) for r in section.shown()], tab
        # The same row in the PDF: its first two cells together (the time and time since dose),
        # then each cell, whole or (when long) its start and its end: a cell that breaks across
        # pages is printed in two overlapping parts.
        for row in shown:
            start = "".join("".join(row[:2]).split())[:40]
            assert start in words, f"{tab}: {row!r} is not in the PDF"
            for cell in ("".join(c.split()) for c in row):
                pieces = [cell] if len(cell) <= 40 else [cell[:20], cell[-20:]]
                assert all(p in words for p in pieces), f"{tab}: {cell!r} is not in the PDF"
    vitals = view.tab_records("Vitals")
    assert any(row["BP"] == "133/85" for row in vitals), "the correction, not the original"
    assert "Readfromthewrongmonitor" in words  # the PDF also prints what was corrected
    assert any(row["EtCO₂ mmHg"] for row in vitals), "the demo's capnography is shown"
    store.close()
