"""The printable PDF report: a real demo session written to PDF and read back with poppler.

Text is extracted with ``pdftotext`` and images listed with ``pdfimages`` (poppler-utils), so the
assertions are about what a reader of the PDF gets, not about our HTML. The ``qapp`` fixture makes
the QApplication first, so the report's own fallback (an offscreen QGuiApplication) never stands
in for it in later widget tests.
"""

from __future__ import annotations

import random
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kapmonitor.demo import record_demo
from kapmonitor.domain.clock import FakeClock, to_iso
from kapmonitor.domain.quality import QualityFlag, quality_flags
from kapmonitor.domain.records import Dose, SessionEnd, VitalSigns
from kapmonitor.reports.pdf_report import SUMMARY_ABOVE_ROWS, render_session_pdf, write_session_pdf
from kapmonitor.store.database import StoreError
from kapmonitor.store.schema import ENTRY_TABLES
from kapmonitor.store.session_store import SessionLog, SessionStore
from tests.factories import T0, open_store, protocol, session_start

POPPLER_TOOLS = ("pdftotext", "pdfimages")


@pytest.fixture(autouse=True)
def _poppler() -> None:
    """Without poppler these tests would prove nothing, so they fail instead of skipping:
    packaging/debian-packages.txt lists poppler-utils and CI installs that list."""
    missing = [tool for tool in POPPLER_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not found: install poppler-utils "
            "(listed in packaging/debian-packages.txt) to run the PDF tests"
        )


HEADINGS = (
    "Doses",
    "Trend chart",
    "Vital signs",
    "Observations",
    "Adverse effects",
    "Interventions and notes",
    "Alarms",
    "Discharge and session end",
    "Questionnaires",
    "Quality flags",
    "Review comments, addenda and signatures",
)
CORRECTION_REASON = "Transcribed from the wrong line of the monitor"


def pdf_text(path: Path) -> str:
    done = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    )
    return done.stdout


def pdf_words(path: Path) -> str:
    """The text in reading order cell by cell (``-raw``), spaces collapsed: a table cell that
    wraps over lines reads as one phrase, whatever the columns beside it."""
    done = subprocess.run(["pdftotext", "-raw", str(path), "-"], capture_output=True, text=True)
    done.check_returncode()
    return " ".join(done.stdout.split())


def pdf_images(path: Path) -> list[str]:
    done = subprocess.run(
        ["pdfimages", "-list", str(path)], capture_output=True, text=True, check=True
    )
    return [line for line in done.stdout.splitlines()[2:] if line.strip()]


def current(log: SessionLog) -> dict[str, list[dict]]:
    return {t: log.current(t) for t in log.rows if t in ENTRY_TABLES}


@dataclass
class Demo:
    path: Path
    session_id: str
    corrected_id: int
    correction_id: int
    clock: FakeClock


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo session, with one vital-signs set corrected after the fact."""
    path = tmp_path_factory.mktemp("pdf") / "demo.sqlite"
    clock = FakeClock(T0)
    store = open_store(path, clock)
    try:
        steps = list(record_demo(store, clock, T0 + timedelta(minutes=15), 0.0, random.Random(7)))
        session_id = str(steps[0][1])
        log = store.load(session_id)
        original = log.current("vitals")[5]
        fixed = VitalSigns(
            observed_at=datetime.fromisoformat(original["observed_at"].replace("Z", "+00:00")),
            sbp=131,
            dbp=84,
            hr=original["hr"],
            spo2=original["spo2"],
            rr=original["rr"],
        )
        clock.advance(minutes=5)
        correction = store.correct(
            session_id, original["id"], fixed, CORRECTION_REASON, "Dr. A. Rivera"
        ).primary_id
    finally:
        store.close()
    yield Demo(path, session_id, original["id"], correction, clock)


def render(demo: Demo, out: Path, flags: list[QualityFlag] | None = None) -> tuple[int, str]:
    store = SessionStore.open(demo.path, demo.clock)
    try:
        log = store.load(demo.session_id)
    finally:
        store.close()
    if flags is None:
        flags = quality_flags(log.session, current(log), log.protocol, demo.clock.now())
    pages = render_session_pdf(log, out, flags)
    return pages, pdf_text(out)


def test_the_report_has_every_section_the_chart_and_page_numbers(
    qapp, demo: Demo, tmp_path: Path
) -> None:
    out = tmp_path / "report.pdf"
    pages, text = render(demo, out)
    assert out.read_bytes().startswith(b"%PDF")
    assert pages >= 1
    assert text.count("\f") == pages  # pdftotext ends every page with a form feed
    store = SessionStore.open(demo.path)
    code = store.load(demo.session_id).session["patient_code"]
    store.close()
    assert text.count(code) >= pages  # in the body and the header line of every page
    for heading in HEADINGS:
        assert re.search(rf"^\s*{heading}\s*$", text, re.MULTILINE), heading
    for page in range(1, pages + 1):
        assert f"Page {page} of {pages}" in text
    # Labels come from the reference data, not codes.
    assert "Racemic ketamine" in text and "KX24-0917" in text
    assert "Treatment-resistant depression" in text and "Home with escort" in text
    assert "Repositioned (SpO₂ 97 % after)" in pdf_words(out)  # the alarm's acknowledgement
    assert "Resolved at" in text  # the adverse effect's outcome
    assert "Modified Aldrete 10/10" in text
    assert re.search(r"UTC[+−]\d\d:\d\d", text)
    assert len(pdf_images(out)) >= 1


def test_a_correction_is_printed_beside_what_it_corrected(qapp, demo: Demo, tmp_path: Path) -> None:
    _pages, text = render(demo, tmp_path / "report.pdf")
    flat = " ".join(text.split())
    assert f"superseded by #{demo.correction_id}" in flat
    assert CORRECTION_REASON in flat
    # The struck original, the line saying what replaced it and why, then the correction.
    assert re.search(
        rf"#{demo.corrected_id}\b.*superseded by #{demo.correction_id} .*{CORRECTION_REASON}"
        rf".*#{demo.correction_id}\b.*131/84",
        flat,
    )


def test_quality_flags_are_listed_in_their_words(qapp, demo: Demo, tmp_path: Path) -> None:
    flag = QualityFlag(
        "late_check",
        "info",
        "Vitals due at 0:40 after dose were recorded 12 min late",
        T0 + timedelta(minutes=67),
        "vitals",
        9,
    )
    _pages, text = render(demo, tmp_path / "report.pdf", [flag])
    flat = " ".join(text.split())
    assert "Vitals due at 0:40 after dose were recorded 12 min late" in flat
    assert "Scheduled vital-sign checks:" in flat
    _pages, clean = render(demo, tmp_path / "clean.pdf", [])
    assert "No quality flags" in clean


def test_an_unsigned_session_says_not_signed(qapp, demo: Demo, tmp_path: Path) -> None:
    _pages, text = render(demo, tmp_path / "report.pdf")
    assert "Not signed." in text


def test_a_signature_prints_name_meaning_and_time(qapp, demo: Demo, tmp_path: Path) -> None:
    signed = tmp_path / "signed.sqlite"
    shutil.copy(demo.path, signed)
    now = to_iso(T0 + timedelta(hours=5))
    raw = sqlite3.connect(signed)
    try:
        with raw:
            raw.execute(
                "INSERT INTO users (username, display_name, role, password_hash, active, "
                "observed_at, recorded_at, recorded_by) VALUES (?, ?, ?, ?, 1, ?, ?, ?)",
                ["lead", "Dr. L. Supervisor", "supervisor", "scrypt$test", now, now, "admin"],
            )
            raw.execute(
                "INSERT INTO signatures (session_id, observed_at, recorded_at, recorded_by, "
                "printed_name, role, meaning) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    demo.session_id,
                    now,
                    now,
                    "lead",
                    "Dr. L. Supervisor",
                    "supervisor",
                    "reviewed and approved",
                ],
            )
    finally:
        raw.close()
    out = tmp_path / "signed.pdf"
    write_session_pdf(signed, demo.session_id, out)
    text = pdf_text(out)
    flat = " ".join(text.split())
    assert "Dr. L. Supervisor" in flat and "reviewed and approved" in flat
    assert "Not signed" not in flat
    assert "Signed: Dr. L. Supervisor" in text  # the header line of every page


def test_write_session_pdf_opens_and_closes_the_database(qapp, demo: Demo, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "report.pdf"
    write_session_pdf(demo.path, demo.session_id, out)
    assert out.read_bytes().startswith(b"%PDF")
    # Closed: the file can be opened (and written) again at once.
    store = SessionStore.open(demo.path)
    store.close()
    with pytest.raises(StoreError, match="no database"):
        write_session_pdf(tmp_path / "none.sqlite", demo.session_id, out)
    with pytest.raises(StoreError, match="does not exist"):
        write_session_pdf(demo.path, "0" * 32, out)
    with pytest.raises(StoreError, match="Cannot write the PDF"):
        write_session_pdf(demo.path, demo.session_id, tmp_path)  # a folder, not a file


def test_a_three_hour_session_at_one_reading_per_second(qapp, tmp_path: Path) -> None:
    """10,800 vital-sign sets: the table is summarised, the chart keeps every reading."""
    path = tmp_path / "long.sqlite"
    clock = FakeClock(T0)
    store = open_store(path, clock)
    dose_at = T0 + timedelta(minutes=10)
    try:
        session_id = store.start_session(
            session_start(clock), "Dr A", protocol=protocol("clinic-ketamine")
        )
        clock.set(T0 + timedelta(minutes=2))
        store.add(
            session_id,
            VitalSigns(T0 + timedelta(minutes=2), sbp=120, dbp=75, hr=70, spo2=98, rr=14),
            "Dr A",
        )
        clock.set(dose_at)
        store.add(session_id, Dose("ketamine", "im", 50.0, dose_at), "Dr A")
    finally:
        store.close()
    readings = 3 * 3600
    rows = []
    for k in range(readings):
        at = to_iso(dose_at + timedelta(seconds=k + 1))
        spo2 = 88 if k == 4000 else 97  # one brief dip the chart must keep
        rows.append((session_id, at, at, "Dr A", 120 + k % 7, 75, 70 + k % 5, spo2, 14))
    raw = sqlite3.connect(path)
    try:
        with raw:
            raw.executemany(
                "INSERT INTO vitals (session_id, observed_at, recorded_at, recorded_by, sbp, dbp, "
                "hr, spo2, rr) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
    finally:
        raw.close()
    end_at = dose_at + timedelta(seconds=readings + 30)
    clock.set(end_at)
    store = open_store(path, clock)
    try:
        store.add(
            session_id,
            SessionEnd("stayed_for_observation", end_at, summary="Long monitoring run"),
            "Dr A",
        )
        log = store.load(session_id)
    finally:
        store.close()
    assert len(log.current("vitals")) == readings + 1 > SUMMARY_ABOVE_ROWS
    out = tmp_path / "long.pdf"
    pages = render_session_pdf(
        log, out, quality_flags(log.session, current(log), log.protocol, clock.now())
    )
    text = pdf_text(out)
    flat = " ".join(text.split())
    assert "Summarised:" in flat and "the full data are in the CSV/JSON export" in flat
    assert "lowest–highest" in flat
    assert "88–97" in flat  # the five minutes with the dip show it
    assert pages <= 8  # about 40 summary rows, not 10,800
    assert len(pdf_images(out)) >= 1


def test_times_are_local_with_their_offset(qapp, demo: Demo, tmp_path: Path) -> None:
    from datetime import timezone

    store = SessionStore.open(demo.path, demo.clock)
    try:
        log = store.load(demo.session_id)
    finally:
        store.close()
    out = tmp_path / "tz.pdf"
    plus_two = timezone(timedelta(hours=2))
    render_session_pdf(log, out, [], tz=plus_two, generated_at=datetime(2026, 3, 3, tzinfo=UTC))
    text = pdf_text(out)
    start = T0.astimezone(plus_two)
    assert f"{start:%Y-%m-%d %H:%M:%S} UTC+02:00" in text
    assert "printed 2026-03-03 02:00:00 UTC+02:00" in text


def test_an_open_session_without_protocol_or_dose_renders(qapp, tmp_path: Path) -> None:
    """Nothing optional is assumed: no protocol, no dose, no end, a withdrawn entry."""
    clock = FakeClock(T0)
    store = open_store(tmp_path / "open.sqlite", clock)
    try:
        session_id = store.start_session(session_start(clock), "Dr A")
        clock.advance(minutes=3)
        reading = VitalSigns(clock.now(), sbp=120, dbp=75, hr=70, spo2=98, rr=14)
        first = store.add(session_id, reading, "Dr A").primary_id
        clock.advance(minutes=1)
        store.correct(session_id, first, reading, "Wrong patient", "Dr A", void=True)
        log = store.load(session_id)
    finally:
        store.close()
    flags = quality_flags(log.session, current(log), log.protocol, clock.now())
    assert [f.code for f in flags] == ["no_protocol"]
    out = tmp_path / "open.pdf"
    assert render_session_pdf(log, out, flags, tz=UTC) >= 1
    flat = " ".join(pdf_text(out).split())
    assert "withdrawn as entered in error (Dr A, 09:04:00): Wrong patient" in flat
    assert "No dose recorded." in flat and "Not ended" in flat
    assert "No protocol stored with this session" in flat
    assert len(pdf_images(out)) >= 1


def test_every_page_prints_the_audit_chain_head(qapp, demo: Demo, tmp_path: Path) -> None:
    """The footer's "Audit chain head: #N MAC … (database …)" is read off each page as a reader
    of the printout would (pdftotext), and it is the file's newest entry."""
    out = tmp_path / "report.pdf"
    write_session_pdf(demo.path, demo.session_id, out)
    pages = pdf_text(out).split("\f")[:-1]  # pdftotext ends every page with a form feed
    assert len(pages) >= 2
    conn = sqlite3.connect(demo.path)
    entry, mac = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    (first,) = conn.execute("SELECT hash FROM audit ORDER BY id LIMIT 1").fetchone()
    conn.close()
    printed = f"Audit chain head: #{entry} MAC {mac[:16]} (database {first[:16]})"
    for number, page in enumerate(pages, 1):
        assert printed in " ".join(page.split()), f"page {number} of {len(pages)}"
