"""The printable session report: one A4 PDF per session, readable on paper, from stored rows only.

Built with QtGui alone (QTextDocument laid out from HTML, QPdfWriter, QPainter), never widgets, so
it runs from the command line with no display (an offscreen QGuiApplication is created when none
exists). Every page carries a header line (patient code, session date) and "Page n of N".

What it contains, in order (``docs/reports.md``): the session (patient, clinicians, protocol,
times, phases, end), doses, the trend chart (an image of every reading), vital signs (every set, or
a five-minute summary above :data:`SUMMARY_ABOVE_ROWS` sets), observations, adverse effects with
their outcomes, interventions and notes, alarms with their acknowledgements, overrides, discharge
assessments, questionnaires, quality flags, review comments, addenda and signatures. A corrected
entry is printed struck through beside its correction, with the reason.

Times are local (with the UTC offset stated in the header and the session block) and, in the
tables, also as time since the first dose.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QMarginsF, QRectF, QSizeF, Qt, QUrl
from PySide6.QtGui import (
    QColor,
    QFont,
    QPageLayout,
    QPageSize,
    QPainter,
    QPdfWriter,
    QPen,
    QTextDocument,
)

from kapmonitor import __version__
from kapmonitor.domain.chart_picture import picture_of
from kapmonitor.domain.clock import from_iso
from kapmonitor.domain.quality import QualityFlag, check_outcomes
from kapmonitor.domain.reference import Reference, default_reference
from kapmonitor.domain.timeline import LATE_ENTRY_MINUTES
from kapmonitor.reports.chart_image import ensure_gui_application, render_chart
from kapmonitor.store.database import StoreError
from kapmonitor.store.session_store import SessionLog, SessionStore
from kapmonitor.store.signoff import session_quality_flags

__all__ = [
    "SUMMARY_ABOVE_ROWS",
    "SUMMARY_BIN_MINUTES",
    "render_session_pdf",
    "write_session_pdf",
]

#: With more vital-sign sets than this, the vitals table is summarised (the chart still uses all).
SUMMARY_ABOVE_ROWS = 200
#: The summary's interval: one row per this many minutes since the first dose.
SUMMARY_BIN_MINUTES = 5

REVIEW_TABLES = ("signatures", "addenda", "review_comments")

_RESOLUTION_DPI = 300
_CHART_DPI = 200
_CHART_ASPECT = 0.64  # height / width of the chart image
_CHART_URL = "kap-chart.png"
_MARGIN_MM = (14.0, 12.0, 14.0, 12.0)  # left, top, right, bottom
_BAND_MM = 8.0  # the header and footer bands inside the margins
_BASE_PT = 8.5
_MM_PER_INCH = 25.4
_CSS_DPI = 96  # HTML image sizes are CSS pixels


# --- Entry points -----------------------------------------------------------------------------


def write_session_pdf(db_path: Path, session_id: str, out: Path) -> None:
    """Open the database, write the report of one session to ``out``, close the database."""
    db_path = Path(db_path)
    if not db_path.exists():
        raise StoreError(f"There is no database at {db_path}.", "missing")
    store = SessionStore.open(db_path)
    try:
        log = store.load(session_id)
        _load_review_rows(store, log)
        flags = session_quality_flags(store, log)  # as the review window shows them
        ref = store.ref
    finally:
        store.close()
    render_session_pdf(log, Path(out), flags, ref=ref)


def render_session_pdf(
    log: SessionLog,
    out: Path,
    quality: list[QualityFlag],
    *,
    ref: Reference | None = None,
    tz: tzinfo | None = None,
    generated_at: datetime | None = None,
) -> int:
    """Write the report of ``log`` to ``out`` (A4 PDF); returns the number of pages.

    ``quality`` are the session's flags (:func:`kapmonitor.store.signoff.session_quality_flags`);
    ``tz`` the time zone times are shown in (the computer's local zone by default).
    Signatures, addenda and review comments are read from ``log.rows`` when present.
    """
    ensure_gui_application()
    ref = ref or default_reference()
    generated = generated_at or datetime.now(UTC)
    report = _Report(log, ref, quality, tz, generated)
    final = Path(out)
    # Drawn into a partial file beside the target and moved into place only when complete, so a
    # failure never leaves half a report or destroys an earlier one.
    out = final.with_name(final.name + ".partial")
    try:
        if final.is_dir():
            raise IsADirectoryError(21, "it is a folder, not a file")
        final.parent.mkdir(parents=True, exist_ok=True)
        with out.open("wb"):
            pass  # fail here, in plain words, rather than inside Qt
    except OSError as exc:
        raise StoreError(
            f"Cannot write the PDF to {final} ({exc.strerror}).", "unwritable"
        ) from exc
    try:
        pages = _paint(writer_for(out, log, report), log, report, ref, final)
        os.replace(out, final)
    except BaseException:
        with contextlib.suppress(OSError):
            out.unlink()
        raise
    return pages


def writer_for(out: Path, log: SessionLog, report: _Report) -> QPdfWriter:
    writer = QPdfWriter(str(out))
    writer.setResolution(_RESOLUTION_DPI)
    writer.setPageSize(QPageSize(QPageSize.PageSizeId.A4))
    left, top, right, bottom = _MARGIN_MM
    writer.setPageMargins(QMarginsF(left, top, right, bottom), QPageLayout.Unit.Millimeter)
    writer.setTitle(f"KAP session report {log.session['patient_code']} {report.session_date}")
    writer.setCreator(f"KAP Monitor {__version__}")
    return writer


def _paint(writer: QPdfWriter, log: SessionLog, report: _Report, ref: Reference, out: Path) -> int:
    page = writer.pageLayout().paintRectPixels(_RESOLUTION_DPI)
    band = _mm_to_px(_BAND_MM)
    body = QSizeF(page.width(), page.height() - 2 * band)

    doc = QTextDocument()
    doc.documentLayout().setPaintDevice(writer)
    doc.setUseDesignMetrics(True)
    doc.setDocumentMargin(0)
    doc.setDefaultFont(_font(_BASE_PT))
    doc.setPageSize(body)

    # The chart spans the text width; drawn at _CHART_DPI, placed in CSS pixels.
    width_in = page.width() / _RESOLUTION_DPI
    height_in = width_in * _CHART_ASPECT
    chart = render_chart(
        picture_of(log, ref),
        round(width_in * _CHART_DPI),
        round(height_in * _CHART_DPI),
        _CHART_DPI,
    )
    doc.addResource(QTextDocument.ResourceType.ImageResource, QUrl(_CHART_URL), chart)
    doc.setHtml(report.html(round(width_in * _CSS_DPI), round(height_in * _CSS_DPI)))
    pages = max(1, doc.pageCount())

    painter = QPainter()
    if not painter.begin(writer):
        raise StoreError(
            f"Cannot write the PDF to {out} (is the folder writable, or the file open elsewhere?).",
            "unwritable",
        )
    try:
        painter.setRenderHint(QPainter.RenderHint.LosslessImageRendering)  # a chart, not a photo
        for index in range(pages):
            if index:
                writer.newPage()
            painter.save()
            painter.translate(0, band - index * body.height())
            doc.drawContents(painter, QRectF(0, index * body.height(), body.width(), body.height()))
            painter.restore()
            _draw_bands(painter, report, index + 1, pages, page.width(), page.height(), band)
    finally:
        painter.end()
    return pages


def _font(size_pt: float) -> QFont:
    """The report font: ligatures off, so "fi" and "ff" stay searchable, copyable letters."""
    font = QFont()
    font.setPointSizeF(size_pt)
    for tag in ("liga", "clig", "dlig"):
        font.setFeature(QFont.Tag(tag), 0)
    return font


def _mm_to_px(mm: float) -> float:
    return mm / _MM_PER_INCH * _RESOLUTION_DPI


def _draw_bands(
    painter: QPainter,
    report: _Report,
    page: int,
    pages: int,
    width: float,
    height: float,
    band: float,
) -> None:
    painter.setFont(_font(7.5))
    painter.setPen(QPen(QColor("#9AA0A6"), _mm_to_px(0.2)))
    painter.drawLine(0, round(band * 0.8), round(width), round(band * 0.8))
    painter.drawLine(0, round(height - band * 0.8), round(width), round(height - band * 0.8))
    painter.setPen(QColor("#1F2328"))
    top = QRectF(0, 0, width, band * 0.7)
    painter.drawText(
        top, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom, report.header_left
    )
    painter.drawText(
        top, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom, report.signed_status
    )
    foot = QRectF(0, height - band * 0.7, width, band * 0.7)
    painter.drawText(foot, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, report.footer)
    painter.drawText(
        foot, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop, f"Page {page} of {pages}"
    )


def _load_review_rows(store: SessionStore, log: SessionLog) -> None:
    """Signatures, addenda and review comments, when the database has them and the store did
    not already load them."""
    tables = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    for table in REVIEW_TABLES:
        if table in tables and table not in log.rows:
            log.rows[table] = list(
                store.db.query(
                    f"SELECT * FROM {table} WHERE session_id = ? ORDER BY observed_at, id",
                    [log.id],
                )
            )


# --- Words and times --------------------------------------------------------------------------


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _offset_text(when: datetime) -> str:
    offset = when.utcoffset()
    minutes = round(offset.total_seconds() / 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "−"
    hours, mins = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{mins:02d}"


def _span(seconds: float) -> str:
    """``h:mm`` of a span, with a sign before the dose."""
    sign = "−" if seconds < 0 else "+"
    total = round(abs(seconds) / 60)
    hours, minutes = divmod(total, 60)
    return f"{sign}{hours}:{minutes:02d}"


def _duration(seconds: float) -> str:
    total = round(seconds / 60)
    hours, minutes = divmod(total, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def _json(text: str | None, default: Any) -> Any:
    try:
        return json.loads(text) if text else default
    except (TypeError, ValueError):
        return default


def _num(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "—"
    return f"{value:.{digits}f}" if digits else f"{value:g}"


Column = tuple[str, Callable[[dict[str, Any]], str]]  # header, cell HTML from a row


class _Report:
    """The report's HTML and page bands, from one session's rows."""

    def __init__(
        self,
        log: SessionLog,
        ref: Reference,
        quality: list[QualityFlag],
        tz: tzinfo | None,
        generated: datetime,
    ) -> None:
        self.log = log
        self.ref = ref
        self.quality = quality
        self.start = log.started_at()
        self.tz = tz or self.start.astimezone().tzinfo
        self.local_start = self.start.astimezone(self.tz)
        self.offset = _offset_text(self.local_start)
        self.dose = log.first_dose_at()
        self.end = log.ended_at()
        self.generated = generated
        self.session_date = self.local_start.strftime("%Y-%m-%d")
        code = log.session["patient_code"]
        self.header_left = (
            f"KAP session report · {code} · session of {self.session_date} (times {self.offset})"
        )
        self.signatures = log.rows.get("signatures", [])
        self.signed_status = (
            "Signed: " + "; ".join(str(s.get("printed_name", "")) for s in self.signatures)
            if self.signatures
            else "Not signed"
        )
        self.footer = (
            f"KAP Monitor {__version__} · session {log.id} · printed "
            f"{self.datetime_text(generated)}"
        )

    # Times ----------------------------------------------------------------------------------

    def local(self, when: datetime | str) -> datetime:
        return (from_iso(when) if isinstance(when, str) else when).astimezone(self.tz)

    def clock(self, when: datetime | str) -> str:
        """``HH:MM`` local, with the offset only when it differs from the session start's."""
        local = self.local(when)
        text = local.strftime("%H:%M")
        if local.date() != self.local_start.date():
            text = local.strftime("%d %b ") + text
        offset = _offset_text(local)
        return text if offset == self.offset else f"{text} ({offset})"

    def datetime_text(self, when: datetime | str) -> str:
        local = self.local(when)
        return f"{local.strftime('%Y-%m-%d %H:%M:%S')} {_offset_text(local)}"

    def since_dose(self, when: datetime | str) -> str:
        t = from_iso(when) if isinstance(when, str) else when
        if self.dose is None:
            return "—"
        return _span((t - self.dose).total_seconds())

    def when_cells(self, row: dict[str, Any]) -> tuple[str, str]:
        return self.clock(row["observed_at"]), self.since_dose(row["observed_at"])

    # Tables ---------------------------------------------------------------------------------

    def entry_table(
        self,
        table: str,
        columns: list[Column],
        empty: str,
        rows: list[dict[str, Any]] | None = None,
    ) -> str:
        """Every entry of a table in clinical order; a corrected entry is printed struck
        through just above its correction, with who corrected it, when and why."""
        all_rows = self.log.rows.get(table, []) if rows is None else rows
        if not all_rows:
            return f"<p class='none'>{_e(empty)}</p>"
        successor = {r["supersedes_id"]: r for r in all_rows if r.get("supersedes_id") is not None}
        heads = [r for r in all_rows if r.get("supersedes_id") is None]
        chains = []
        for head in heads:
            chain = [head]
            while chain[-1]["id"] in successor:
                chain.append(successor[chain[-1]["id"]])
            chains.append(chain)
        chains.sort(
            key=lambda c: (
                c[0]["observed_at"] if c[-1]["voided"] else c[-1]["observed_at"],
                c[0]["id"],
            )
        )
        head_html = "".join(f"<th>{_e(h)}</th>" for h in ("#", "Time", "Since dose"))
        head_html += "".join(f"<th>{_e(h)}</th>" for h, _f in columns)
        head_html += "<th>Recorded by</th>"
        body = []
        for chain in chains:
            for position, row in enumerate(chain):
                later = chain[position + 1] if position + 1 < len(chain) else None
                body.append(self._entry_row(table, row, later, columns))
        return (
            "<table class='grid' width='100%' cellspacing='0' cellpadding='2'>"
            f"<thead><tr>{head_html}</tr></thead>{''.join(body)}</table>"
        )

    def _entry_row(
        self,
        table: str,
        row: dict[str, Any],
        later: dict[str, Any] | None,
        columns: list[Column],
    ) -> str:
        """One entry; a replaced one struck through, with a line saying what replaced it."""
        if row.get("voided") and later is None:
            return ""  # a withdrawal: described on the struck original it withdraws
        cells = [_e(c) for c in (f"#{row['id']}", *self.when_cells(row))]
        cells += [f(row) for _h, f in columns]
        who = _e(row.get("recorded_by"))
        if self.late(row):
            verb = "raised" if table == "alarms" else "typed"
            who += f"<br/><i>{verb} {_e(self.clock(row['recorded_at']))}</i>"
        if later is None:
            return "<tr>" + "".join(f"<td>{c}</td>" for c in [*cells, who]) + "</tr>"
        struck = "".join(f"<td><s>{c}</s></td>" for c in cells) + f"<td>{who}</td>"
        if later.get("voided"):
            action = "withdrawn as entered in error"
        else:
            action = f"superseded by #{later['id']}"
        note = (
            f"↳ {action} ({_e(later['recorded_by'])}, {_e(self.clock(later['recorded_at']))}): "
            f"{_e(later['correction_reason'])}"
        )
        span = len(cells)
        return (
            f"<tr class='old'>{struck}</tr>"
            f"<tr class='old'><td></td><td colspan='{span}' class='note'>{note}</td></tr>"
        )

    def late(self, row: dict[str, Any]) -> bool:
        delay = from_iso(row["recorded_at"]) - from_iso(row["observed_at"])
        late = delay.total_seconds() > LATE_ENTRY_MINUTES * 60
        return late and row.get("supersedes_id") is None

    # The document ---------------------------------------------------------------------------

    def html(self, chart_width: int, chart_height: int) -> str:
        parts = [
            _STYLE,
            "<h1>KAP session report</h1>",
            self.session_block(),
            self.section("Doses", self.doses()),
            self.section(
                "Trend chart",
                f"<p><img src='{_CHART_URL}' width='{chart_width}' height='{chart_height}'/></p>"
                "<p class='small'>Every reading is drawn; where readings are denser than the "
                "print, each column keeps its lowest and highest value. Lines, symbols and "
                "marker shapes (not colour alone) tell the series apart.</p>",
            ),
            self.section("Vital signs", self.vitals()),
            self.section("Observations", self.observations()),
            self.section("Adverse effects", self.adverse_events()),
            self.section("Interventions and notes", self.interventions()),
            self.section("Alarms", self.alarms()),
            self.section("Overrides", self.overrides()),
            self.section("Discharge assessments", self.discharge()),
            self.section("Session end", self.session_end()),
            self.section("Questionnaires", self.questionnaires()),
            self.section("Quality flags", self.quality_section()),
            self.section("Review comments", self.review_comments()),
            self.section("Addenda", self.addenda()),
            self.section("Signatures", self.signatures_section()),
        ]
        return "".join(parts)

    @staticmethod
    def section(title: str, body: str) -> str:
        return f"<h2>{_e(title)}</h2>{body}"

    def session_block(self) -> str:
        s = self.log.session
        ref = self.ref
        indication = s.get("indication_other") or ref.label("indications", s["indication"])
        age = f"{s['age_years']} years" if s.get("age_years") is not None else "age not given"
        born = f" (born {s['birth_year']})" if s.get("birth_year") else ""
        protocol_rows = self.log.current("session_protocols")
        if protocol_rows:
            p = protocol_rows[-1]
            protocol = (
                f"{_e(p['protocol_name'])} — version {_e(p['protocol_version'])} "
                f"(<i>{_e(p['protocol_id'])}</i>)"
            )
        else:
            protocol = "No protocol stored with this session"
        if self.end is not None:
            ended = _e(self.datetime_text(self.end))
            length = _duration((self.end - self.start).total_seconds())
            if self.dose is not None:
                length += f"; {_duration((self.end - self.dose).total_seconds())} from first dose"
        else:
            ended = "<b>Not ended</b> (the session was still open when this was printed)"
            length = "—"
        phases = " · ".join(
            f"{_e(self.ref.label('phases', r['phase']))} {_e(self.clock(r['observed_at']))}"
            for r in self.log.current("phase_changes")
        )
        facts = [
            ("Patient code", f"<b>{_e(s['patient_code'])}</b>"),
            (
                "Age / sex / weight",
                f"{_e(age)}{_e(born)} / {_e(ref.label('sexes', s['sex']))} / "
                f"{_e(_num(s['weight_kg']))} kg",
            ),
            ("Indication", _e(indication)),
            ("Clinicians", _e(", ".join(self.log.clinicians))),
            ("Protocol", protocol),
            ("Started", _e(self.datetime_text(self.start)) + f" (by {_e(s['recorded_by'])})"),
            ("First dose", _e(self.datetime_text(self.dose)) if self.dose else "No dose given"),
            ("Ended", ended),
            ("Duration", _e(length)),
            ("Phases", phases or "—"),
            ("Status", _e(self.signed_status)),
            (
                "Times",
                f"Local time, {_e(self.offset)}. “Since dose” is h:mm after (+) or before (−) "
                "the first dose.",
            ),
        ]
        rows = "".join(f"<tr><td class='key'>{_e(k)}</td><td>{v}</td></tr>" for k, v in facts)
        return f"<table class='facts' cellspacing='0' cellpadding='2'>{rows}</table>"

    def doses(self) -> str:
        ref = self.ref

        def drug(r: dict[str, Any]) -> str:
            name = r["drug_other"] or ref.label("drugs", r["drug"])
            return _e(name) + (" (booster)" if r["is_booster"] else "")

        columns: list[Column] = [
            ("Drug", drug),
            ("Route", lambda r: _e(ref.label("routes", r["route"]))),
            ("mg", lambda r: _e(_num(r["dose_mg"]))),
            ("mg/kg", lambda r: _e(_num(r["dose_mg_per_kg"], 2))),
            ("Lot", lambda r: _e(r["lot_number"] or "—")),
            ("Note", lambda r: _e(r["note"] or "")),
        ]
        total = self.log.cumulative_dose_mg()
        table = self.entry_table("doses", columns, "No dose recorded.")
        return table + (f"<p>Total: {_e(_num(total))} mg.</p>" if total else "")

    # Vital signs ----------------------------------------------------------------------------

    def news2(self) -> dict[int, dict[str, Any]]:
        return {r["vitals_id"]: r for r in self.log.current("vital_scores")}

    def vitals(self) -> str:
        current = self.log.current("vitals")
        if len(current) > SUMMARY_ABOVE_ROWS:
            return self.vitals_summary(current)
        scores = self.news2()

        def bp(r: dict[str, Any]) -> str:
            return f"{r['sbp']}/{r['dbp']}" if r["sbp"] is not None else "—"

        def spo2(r: dict[str, Any]) -> str:
            return _e(_num(r["spo2"])) + (" on O₂" if r["on_oxygen"] else "")

        def news(r: dict[str, Any]) -> str:
            score = scores.get(r["id"])
            return f"{score['news2_total']} {_e(score['news2_band'])}" if score else "—"

        columns: list[Column] = [
            ("BP", bp),
            ("HR", lambda r: _e(_num(r["hr"]))),
            ("SpO₂ %", spo2),
            ("RR", lambda r: _e(_num(r["rr"]))),
            ("Temp °C", lambda r: _e(_num(r["temp_c"], 1))),
            ("NEWS2", news),
            ("Note", lambda r: _e(r["note"] or "")),
        ]
        return self.entry_table("vitals", columns, "No vital signs recorded.") + (
            "<p class='small'>NEWS2 is shown for information only; the protocol's alarm "
            "limits, not NEWS2, raise alarms in a KAP session.</p>"
        )

    def vitals_summary(self, current: list[dict[str, Any]]) -> str:
        origin = self.dose or self.start
        stamps = np.array([r["observed_at"][:-1] for r in current], dtype="datetime64[ms]")
        origin64 = np.datetime64(origin.astimezone(UTC).replace(tzinfo=None), "ms")
        minutes = (stamps - origin64).astype(np.float64) / 60_000.0
        bins = np.floor(minutes / SUMMARY_BIN_MINUTES).astype(np.int64)
        starts = np.flatnonzero(np.concatenate(([True], bins[1:] != bins[:-1])))
        counts = np.diff(np.concatenate((starts, [len(bins)])))
        scores = self.news2()
        news = np.array(
            [scores[r["id"]]["news2_total"] if r["id"] in scores else np.nan for r in current],
            dtype=np.float64,
        )
        values = {
            key: np.array([r[key] for r in current], dtype=np.float64)
            for key in ("sbp", "dbp", "hr", "spo2", "rr", "temp_c")
        }
        lows = {k: np.fmin.reduceat(v, starts) for k, v in values.items()}
        highs = {k: np.fmax.reduceat(v, starts) for k, v in values.items()}
        news_high = np.fmax.reduceat(news, starts)
        oxygen = np.maximum.reduceat(np.array([r["on_oxygen"] for r in current]), starts)

        def rng(key: str, i: int, digits: int = 0) -> str:
            lo, hi = lows[key][i], highs[key][i]
            if np.isnan(lo):
                return "—"
            return _num(lo, digits) if lo == hi else f"{_num(lo, digits)}–{_num(hi, digits)}"

        label = "dose" if self.dose is not None else "start"
        header = (
            f"<tr><th>Minutes since {label}</th><th>From</th><th>Sets</th><th>SBP</th>"
            "<th>DBP</th><th>HR</th><th>SpO₂ %</th><th>RR</th><th>Temp °C</th>"
            "<th>NEWS2 max</th></tr>"
        )
        body = []
        for i, start in enumerate(starts):
            b = int(bins[start])
            first = current[int(start)]["observed_at"]
            spo2 = rng("spo2", i) + (" (O₂)" if oxygen[i] else "")
            body.append(
                f"<tr><td>{b * SUMMARY_BIN_MINUTES} to {(b + 1) * SUMMARY_BIN_MINUTES}</td>"
                f"<td>{_e(self.clock(first))}</td><td>{int(counts[i])}</td>"
                f"<td>{rng('sbp', i)}</td><td>{rng('dbp', i)}</td><td>{rng('hr', i)}</td>"
                f"<td>{_e(spo2)}</td><td>{rng('rr', i)}</td><td>{rng('temp_c', i, 1)}</td>"
                f"<td>{_e(_num(news_high[i]))}</td></tr>"
            )
        corrected = [
            r for r in self.log.rows.get("vitals", []) if r.get("supersedes_id") is not None
        ]
        corrections = ""
        if corrected:
            ids = {r["supersedes_id"] for r in corrected} | {r["id"] for r in corrected}
            chain_rows = [r for r in self.log.rows["vitals"] if r["id"] in ids]
            corrections = "<h3>Corrections to vital signs</h3>" + self.entry_table(
                "vitals",
                [
                    (
                        "Values",
                        lambda r: _e(
                            f"BP {r['sbp']}/{r['dbp']}, HR {r['hr']}, SpO₂ {r['spo2']}, "
                            f"RR {r['rr']}"
                        ),
                    )
                ],
                "",
                rows=chain_rows,
            )
        return (
            f"<p><b>Summarised:</b> {len(current)} vital-sign sets, too many to print one per "
            f"line. Each row covers {SUMMARY_BIN_MINUTES} minutes since the {label} and shows "
            "the <b>lowest–highest</b> value of each vital in those minutes (one number when "
            "they are equal), the number of sets and the highest NEWS2. The chart above draws "
            "every reading; <b>the full data are in the CSV/JSON export</b> "
            "(<i>kapmonitor export --format csv</i>).</p>"
            "<table class='grid' width='100%' cellspacing='0' cellpadding='2'>"
            f"<thead>{header}</thead>{''.join(body)}</table>{corrections}"
        )

    # Other clinical tables ------------------------------------------------------------------

    def observations(self) -> str:
        scales = self.ref.scales

        def scale(key: str) -> Callable[[dict[str, Any]], str]:
            def cell(r: dict[str, Any]) -> str:
                value = r[key]
                if value is None:
                    return "—"
                text = scales[key].describe(value) if key in scales else str(value)
                if not any(ch.isdigit() for ch in text[:3]):
                    text = f"{value} {text.lower()}"  # e.g. dissociation "2 moderate"
                return _e(text)

            return cell

        features = (
            {f.code: f.label for f in scales["dissociation"].features}
            if ("dissociation" in scales)
            else {}
        )

        def feature_cell(r: dict[str, Any]) -> str:
            codes = _json(r["features"], [])
            return _e(", ".join(features.get(c, c) for c in codes))

        def other(r: dict[str, Any]) -> str:
            bits = []
            if r["cadss_total"] is not None:
                bits.append(f"CADSS {r['cadss_total']}")
            for sid, value in _json(r["other_scores"], {}).items():
                bits.append(f"{scales[sid].name if sid in scales else sid} {value}")
            if r["note"]:
                bits.append(r["note"])
            return _e("; ".join(bits))

        columns: list[Column] = [
            ("MOAA/S", scale("moaas")),
            ("RASS", scale("rass")),
            ("Dissociation", scale("dissociation")),
            ("Features", feature_cell),
            ("Other scores, note", other),
        ]
        rows = self.log.rows.get("observations", [])
        if len(rows) <= SUMMARY_ABOVE_ROWS:
            return self.entry_table("observations", columns, "No observations recorded.")
        # A device feed scores every second: summarise the scores, print the rest in full.
        corrected = {r["supersedes_id"] for r in rows if r.get("supersedes_id") is not None}
        notable = [
            r
            for r in rows
            if r["note"]
            or r["cadss_total"] is not None
            or _json(r["features"], [])
            or _json(r["other_scores"], {})
            or r.get("supersedes_id") is not None
            or r["id"] in corrected
        ]
        shown = notable[:SUMMARY_ABOVE_ROWS]
        more = len(notable) - len(shown)
        return (
            self.scores_summary(self.log.current("observations"))
            + "<h3>Observations with features, notes or corrections</h3>"
            + self.entry_table("observations", columns, "None.", rows=shown)
            + (f"<p class='small'>… and {more} more in the CSV/JSON export.</p>" if more else "")
        )

    def scores_summary(self, current: list[dict[str, Any]]) -> str:
        origin = self.dose or self.start
        bins: dict[int, list[dict[str, Any]]] = {}
        for r in current:
            minutes = (from_iso(r["observed_at"]) - origin).total_seconds() / 60
            bins.setdefault(int(minutes // SUMMARY_BIN_MINUTES), []).append(r)

        def span(found: list[dict[str, Any]], key: str) -> str:
            values = [r[key] for r in found if r[key] is not None]
            if not values:
                return "—"
            lo, hi = min(values), max(values)
            return str(lo) if lo == hi else f"{lo}–{hi}"

        label = "dose" if self.dose is not None else "start"
        body = "".join(
            f"<tr><td>{b * SUMMARY_BIN_MINUTES} to {(b + 1) * SUMMARY_BIN_MINUTES}</td>"
            f"<td>{len(found)}</td><td>{span(found, 'moaas')}</td><td>{span(found, 'rass')}</td>"
            f"<td>{span(found, 'dissociation')}</td></tr>"
            for b, found in sorted(bins.items())
        )
        return (
            f"<p><b>Summarised:</b> {len(current)} observations. Each row covers "
            f"{SUMMARY_BIN_MINUTES} minutes since the {label} and shows the lowest–highest "
            "score; the full data are in the CSV/JSON export.</p>"
            "<table class='grid' width='100%' cellspacing='0' cellpadding='2'>"
            f"<thead><tr><th>Minutes since {label}</th><th>Observations</th><th>MOAA/S</th>"
            f"<th>RASS</th><th>Dissociation</th></tr></thead>{body}</table>"
        )

    def adverse_events(self) -> str:
        ref = self.ref
        outcomes: dict[int, list[dict[str, Any]]] = {}
        for r in self.log.current("adverse_event_outcomes"):
            outcomes.setdefault(r["adverse_event_id"], []).append(r)

        def term(r: dict[str, Any]) -> str:
            name = (
                r["verbatim"] if r["term"] == "other" else ref.label("adverse_effects", r["term"])
            )
            verbatim = f" (“{r['verbatim']}”)" if r["verbatim"] and r["term"] != "other" else ""
            code = f" [{r['code']}]" if r["code"] else ""
            return _e(f"{name}{verbatim}{code}")

        def serious(r: dict[str, Any]) -> str:
            if not r["serious"]:
                return "No"
            return "<b>SERIOUS</b>: " + _e(
                ref.label("seriousness_criteria", r["serious_criterion"])
            )

        def action(r: dict[str, Any]) -> str:
            detail = f" ({r['action_detail']})" if r["action_detail"] else ""
            return _e(ref.label("ae_actions", r["action"]) + detail)

        def outcome(r: dict[str, Any]) -> str:
            found = outcomes.get(r["id"], [])
            if not found:
                return "<b>No outcome recorded</b>"
            return "<br/>".join(
                _e(
                    f"{ref.label('ae_outcomes', o['outcome'])} at {self.clock(o['observed_at'])}"
                    f" ({o['recorded_by']})" + (f": {o['note']}" if o["note"] else "")
                )
                for o in found
            )

        columns: list[Column] = [
            ("Effect", term),
            ("Grade", lambda r: _e(r["grade"])),
            ("Serious", serious),
            ("Action", action),
            ("Relatedness", lambda r: _e(ref.label("ae_relatedness", r["relatedness"]))),
            ("Outcome", outcome),
        ]
        table = self.entry_table("adverse_events", columns, "No adverse effects recorded.")
        corrected = [
            r for r in self.log.rows.get("adverse_event_outcomes", []) if r.get("supersedes_id")
        ]
        if corrected:
            table += "<h3>Corrections to adverse-effect outcomes</h3>" + self.entry_table(
                "adverse_event_outcomes",
                [
                    ("Adverse effect", lambda r: f"#{r['adverse_event_id']}"),
                    ("Outcome", lambda r: _e(ref.label("ae_outcomes", r["outcome"]))),
                    ("Note", lambda r: _e(r["note"] or "")),
                ],
                "",
            )
        return table

    def interventions(self) -> str:
        ref = self.ref
        columns: list[Column] = [
            ("Kind", lambda r: _e(ref.label("intervention_kinds", r["category"]))),
            (
                "Medication / detail",
                lambda r: _e(" — ".join(b for b in (r["medication"], r["detail"]) if b)),
            ),
        ]
        return self.entry_table("interventions", columns, "No interventions or notes recorded.")

    def alarms(self) -> str:
        ref = self.ref
        acks: dict[int, list[dict[str, Any]]] = {}
        for r in self.log.current("alarm_acknowledgements"):
            acks.setdefault(r["alarm_id"], []).append(r)
        marks = {"critical": "▲ CRITICAL", "warning": "● WARNING", "advisory": "○ ADVISORY"}

        def response(r: dict[str, Any]) -> str:
            found = acks.get(r["id"], [])
            if not found:
                return "<b>No response documented</b>"
            out = []
            for a in found:
                delay = from_iso(a["observed_at"]) - from_iso(r["observed_at"])
                symptoms = _json(a["symptoms"], [])
                text = ref.label("alarm_responses", a["response"])
                if a["detail"]:
                    text += f" ({a['detail']})"
                if symptoms:
                    text += "; symptoms: " + ", ".join(
                        ref.label("hypertension_symptoms", s) for s in symptoms
                    )
                text += (
                    f" — {a['recorded_by']} at {self.clock(a['observed_at'])}"
                    f" ({_duration(max(0.0, delay.total_seconds()))} after)"
                )
                out.append(_e(text))
            return "<br/>".join(out)

        columns: list[Column] = [
            ("Priority", lambda r: _e(marks.get(r["priority"], r["priority"]))),
            ("Alarm", lambda r: _e(r["message"]) + f"<br/><i>{_e(r['rule_source'])}</i>"),
            ("Response (who, when)", response),
        ]
        return self.entry_table("alarms", columns, "No alarms.")

    def overrides(self) -> str:
        columns: list[Column] = [
            ("Override", lambda r: _e(self.ref.label("override_kinds", r["kind"]))),
            ("Reason", lambda r: _e(r["reason"])),
        ]
        return self.entry_table("overrides", columns, "No protocol overrides.")

    def discharge(self) -> str:
        def score(r: dict[str, Any]) -> str:
            name = "Modified Aldrete" if r["score_name"] == "aldrete" else "PADSS"
            items = _json(r["items"], [])
            parts = ", ".join(
                f"{i.get('label', i.get('code'))} "
                f"{'n/a' if i.get('points') is None else i.get('points')}"
                for i in items
            )
            return (
                f"<b>{_e(name)} {_e(r['total'])}/{_e(r['maximum'])}</b> "
                f"(pass {_e(r['pass_mark'])}: {'passed' if r['passed'] else 'not passed'})"
                + (f"<br/><span class='small'>{_e(parts)}</span>" if parts else "")
            )

        def ready(r: dict[str, Any]) -> str:
            if r["ready"]:
                return "<b>Ready</b>"
            reasons = _json(r["reasons"], [])
            return "Not ready" + (": " + _e("; ".join(reasons)) if reasons else "")

        def checklist(r: dict[str, Any]) -> str:
            items = _json(r["checklist"], {})
            done = sum(1 for v in items.values() if v)
            return f"{done}/{len(items)} confirmed" if items else "—"

        def override(r: dict[str, Any]) -> str:
            return f"<b>OVERRIDE</b>: {_e(r['override_reason'])}" if r["override_reason"] else ""

        columns: list[Column] = [
            ("Score", score),
            ("Ready to leave", ready),
            ("Checklist", checklist),
            ("Override", override),
        ]
        first = self.log.first_ready_at()
        note = (
            f"<p>First found ready at {_e(self.clock(first))} ({_e(self.since_dose(first))} "
            "since dose).</p>"
            if first
            else ""
        )
        return self.entry_table("discharge_assessments", columns, "No discharge assessment.") + note

    def session_end(self) -> str:
        ref = self.ref
        columns: list[Column] = [
            (
                "Disposition",
                lambda r: _e(r["disposition_other"] or ref.label("dispositions", r["disposition"])),
            ),
            ("Escort", lambda r: _e(r["escort"] or "—")),
            ("Summary", lambda r: _e(r["summary"])),
        ]
        return self.entry_table("session_ends", columns, "The session has not been ended.")

    def questionnaires(self) -> str:
        titles = _questionnaire_titles()

        def name(r: dict[str, Any]) -> str:
            timing = {"pre": "before", "post": "after", "follow_up": "follow-up"}
            title = titles.get(r["questionnaire_id"]) or r["questionnaire_id"].upper()
            return _e(f"{title} ({timing.get(r['timing'], r['timing'])} the session)")

        def flags(r: dict[str, Any]) -> str:
            found = _json(r["safety_flags"], [])
            return "<b>⚠ " + _e("; ".join(found)) + "</b>" if found else ""

        columns: list[Column] = [
            ("Questionnaire", name),
            ("Total", lambda r: _e(_num(r["total"]))),
            ("Band", lambda r: _e(r["band"] or "—")),
            ("Safety flags", flags),
        ]
        return self.entry_table("questionnaire_responses", columns, "No questionnaires.")

    # Review ---------------------------------------------------------------------------------

    def quality_section(self) -> str:
        summary = ""
        protocol = self.log.protocol
        if protocol is not None:
            outcomes = check_outcomes(
                protocol,
                self.start,
                self.dose,
                self.log.vitals_times(),
                self.end,
                self.generated,
                self.log.current("vitals"),
            )
            counts = {s: sum(1 for o in outcomes if o.status == s) for s in _STATUS_WORDS}
            summary = (
                "<p>Scheduled vital-sign checks: "
                + ", ".join(
                    f"{n} {_STATUS_WORDS[s]}" for s, n in counts.items() if n or s == "on_time"
                )
                + ".</p>"
            )
        corrections = sum(
            1
            for rows in self.log.rows.values()
            for r in rows
            if isinstance(r, dict) and r.get("supersedes_id") is not None
        )
        summary += (
            f"<p>{corrections} correction{'s' if corrections != 1 else ''} "
            "(each printed beside the entry it corrected).</p>"
        )
        if not self.quality:
            return summary + "<p class='none'>No quality flags.</p>"
        rows = []
        for flag in self.quality:
            level = "<b>⚠ Warning</b>" if flag.severity == "warning" else "Information"
            where = f" <i>({_e(flag.table)} #{flag.row_id})</i>" if flag.row_id else ""
            when = self.clock(flag.observed_at) if flag.observed_at else "—"
            since = self.since_dose(flag.observed_at) if flag.observed_at else ""
            rows.append(
                f"<tr><td>{_e(when)}</td><td>{_e(since)}</td><td>{level}</td>"
                f"<td>{_e(flag.message)}{where}</td></tr>"
            )
        return (
            summary + "<table class='grid' width='100%' cellspacing='0' cellpadding='2'><thead><tr>"
            "<th>Time</th><th>Since dose</th><th>Level</th><th>Flag</th></tr></thead>"
            + "".join(rows)
            + "</table>"
        )

    def _notes(self, table: str, empty: str, moment: str) -> str:
        rows = self.log.rows.get(table, [])
        if not rows:
            return f"<p class='none'>{_e(empty)}</p>"
        body = "".join(
            f"<tr><td>{_e(self.clock(r['observed_at']))}</td>"
            f"<td>{_e(self.since_dose(r['observed_at']))}</td>"
            f"<td>{_e(r.get('text', ''))}</td>"
            f"<td>{_e(r.get('recorded_by'))}<br/>{_e(self.datetime_text(r['recorded_at']))}</td>"
            "</tr>"
            for r in rows
        )
        return (
            "<table class='grid' width='100%' cellspacing='0' cellpadding='2'><thead><tr>"
            f"<th>{_e(moment)}</th><th>Since dose</th><th>Text</th><th>By, written</th>"
            f"</tr></thead>{body}</table>"
        )

    def review_comments(self) -> str:
        return self._notes("review_comments", "No review comments.", "About")

    def addenda(self) -> str:
        return self._notes("addenda", "No addenda.", "Time")

    def signatures_section(self) -> str:
        if not self.signatures:
            return "<p><b>Not signed.</b></p>"
        rows = "".join(
            f"<tr><td><b>{_e(s.get('printed_name'))}</b> ({_e(s.get('recorded_by'))})</td>"
            f"<td>{_e(s.get('role'))}</td><td>{_e(s.get('meaning'))}</td>"
            f"<td>{_e(self.datetime_text(s['observed_at']))}</td></tr>"
            for s in self.signatures
        )
        return (
            "<table class='grid' width='100%' cellspacing='0' cellpadding='3'><thead><tr>"
            "<th>Signed by (user name)</th><th>Role</th><th>Meaning</th><th>Signed at</th>"
            f"</tr></thead>{rows}</table>"
            "<p class='small'>A signed session is locked: later additions are addenda.</p>"
        )


def _questionnaire_titles() -> dict[str, str]:
    """Titles of the shipped and the clinic's questionnaires (ids alone if they cannot load)."""
    from kapmonitor.domain.questionnaires import QuestionnaireError, load_questionnaires
    from kapmonitor.paths import resources_dir, user_config_dir

    try:
        found = load_questionnaires(
            [resources_dir() / "questionnaires", user_config_dir() / "questionnaires"]
        )
    except (QuestionnaireError, OSError):
        return {}
    return {q.id: q.title for q in found.values() if q.title}


_STATUS_WORDS = {"on_time": "on time", "late": "late", "missed": "missed", "overdue": "overdue"}

_STYLE = """
<style>
h1 { font-size: 15pt; font-weight: bold; margin-bottom: 4pt; }
h2 { font-size: 11pt; font-weight: bold; margin-top: 10pt; margin-bottom: 3pt;
     color: #1F2328; }
h3 { font-size: 9pt; font-weight: bold; margin-top: 6pt; margin-bottom: 2pt; }
p { margin-top: 2pt; margin-bottom: 2pt; }
table.grid { border-collapse: collapse; border-color: #9AA0A6; border-style: solid;
             border-width: 0.5px; }
table.grid th { background-color: #E8EAED; font-weight: bold; text-align: left;
                border: 0.5px solid #9AA0A6; font-size: 7.5pt; }
table.grid td { border: 0.5px solid #C4C7CC; font-size: 7.5pt; vertical-align: top; }
table.facts td { font-size: 8.5pt; vertical-align: top; }
td.key { font-weight: bold; color: #3A4048; }
tr.old td { color: #6B7280; }
td.note { font-style: italic; }
.small { font-size: 7pt; color: #3A4048; }
.none { color: #3A4048; font-style: italic; }
</style>
"""
