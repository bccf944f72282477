"""The printable session report: one A4 PDF per session, readable on paper, from stored rows only.

Built with QtGui alone (QTextDocument laid out from HTML, QPdfWriter, QPainter), never widgets, so
it runs from the command line with no display (an offscreen QGuiApplication is created when none
exists). Every page carries a header line (patient code, session date) and "Page n of N".

What it contains, in order (``docs/reports.md``): the session (patient, clinicians, protocol,
times, phases, end), doses, the trend chart (an image of every reading), then the sections the
review view shows too (:mod:`kapmonitor.reports.report_sections`, built once for both): vital
signs (every set, or a five-minute summary above :data:`SUMMARY_ABOVE_ROWS` sets), observations,
adverse effects with their outcomes, interventions and notes, alarms with their
acknowledgements, discharge checks, overrides and the session end, questionnaires, quality flags,
and review comments, addenda and signatures. A corrected entry is printed struck through beside
its correction, with the reason.

Times are local (with the UTC offset stated in the header and the session block) and, in the
tables, also as time since the first dose.
"""

from __future__ import annotations

import contextlib
import json
import os
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
from kapmonitor.domain.quality import QualityFlag
from kapmonitor.domain.reference import Reference, default_reference
from kapmonitor.domain.vitals import VITAL_SIGNS, VitalSign
from kapmonitor.reports.chart_image import ensure_gui_application, render_chart
from kapmonitor.reports.report_sections import RemsForm, Section, SectionRow, session_sections
from kapmonitor.store import anchors, rems_store
from kapmonitor.store.database import StoreError, connect_readonly
from kapmonitor.store.file_modes import open_private, private_folder
from kapmonitor.store.read_only_media import on_read_only_media
from kapmonitor.store.session_store import SessionLog, SessionStore
from kapmonitor.store.signoff import session_quality_flags

__all__ = [
    "SUMMARY_ABOVE_ROWS",
    "SUMMARY_BIN_MINUTES",
    "render_session_pdf",
    "write_session_pdf",
]

#: The longest free text a PDF table cell prints, in characters: a longer note is cut here with a
#: pointer to the full text in the JSON export (a 1 MB note made a report that never finished).
CELL_TEXT_LIMIT = 2000
#: Sections whose rows come from a table of another name (for the JSON export's entry number).
_SECTION_TABLES = {
    "discharge": "discharge_assessments",
    "questionnaires": "questionnaire_responses",
}
#: With more vital-sign sets than this, the vitals table is summarised (the chart still uses all).
SUMMARY_ABOVE_ROWS = 200
#: The summary's interval: one row per this many minutes since the first dose.
SUMMARY_BIN_MINUTES = 5

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


def write_session_pdf(
    db_path: Path, session_id: str, out: Path, *, now: datetime | None = None
) -> None:
    """Open the database, write the report of one session to ``out``, close the database.

    ``now`` (the present by default) is the printing time: the footer's, and the moment the
    quality flags and the REMS deadline are judged at."""
    db_path = Path(db_path)
    if not db_path.exists():
        raise StoreError(f"There is no database at {db_path}.", "missing")
    if on_read_only_media(db_path):  # read, never migrated, where nothing can be written
        store = SessionStore(connect_readonly(db_path), db_path)
    else:
        store = SessionStore.open(db_path)
    try:
        log = store.load(session_id)  # the clinical rows and the review's (signatures...)
        printed = now or datetime.now(UTC)
        flags = session_quality_flags(store, log, printed)  # as the review window shows them
        ref = store.ref
        rems: RemsForm | None = None
        if log.protocol is not None and log.protocol.rems:
            today = printed.astimezone().date()
            rems = rems_store.form_fields(store.db, log), rems_store.status(store.db, log.id, today)
        chain_head = anchors.head_line(store.db)  # printed: a later file is held against it
    finally:
        store.close()
    render_session_pdf(
        log, Path(out), flags, ref=ref, generated_at=printed, rems=rems, chain_head=chain_head
    )


def render_session_pdf(
    log: SessionLog,
    out: Path,
    quality: list[QualityFlag],
    *,
    ref: Reference | None = None,
    tz: tzinfo | None = None,
    generated_at: datetime | None = None,
    rems: RemsForm | None = None,
    chain_head: str = "",
) -> int:
    """Write the report of ``log`` to ``out`` (A4 PDF); returns the number of pages.

    ``chain_head`` (:func:`kapmonitor.store.anchors.head_line`) is printed under the footer of
    every page and kept in the PDF's metadata, where ``kapmonitor verify --anchors`` reads it.

    ``quality`` are the session's flags (:func:`kapmonitor.store.signoff.session_quality_flags`);
    ``tz`` the time zone times are shown in (the computer's local zone by default); ``rems`` the
    REMS form and its submission status for a REMS session (printed as its last section).
    Signatures, addenda and review comments are read from ``log.rows``.
    """
    ensure_gui_application()
    ref = ref or default_reference()
    generated = generated_at or datetime.now(UTC)
    report = _Report(log, ref, quality, tz, generated, rems)
    if chain_head:
        report.footer = f"{report.footer}\n{chain_head}"
    final = Path(out)
    # Drawn into a partial file beside the target and moved into place only when complete, so a
    # failure never leaves half a report or destroys an earlier one.
    out = final.with_name(final.name + ".partial")
    try:
        if final.is_dir():
            raise IsADirectoryError(21, "it is a folder, not a file")
        private_folder(final.parent)
        with open_private(out, "wb"):
            pass  # fail here, in plain words, rather than inside Qt; 0600 before Qt writes
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
    writer.setCreator(" · ".join([f"KAP Monitor {__version__}", *report.footer.split("\n")[1:]]))
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
    painter.drawText(  # two lines: the second, the audit chain head, may run into the margin
        foot,
        Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextDontClip,
        report.footer,
    )
    painter.drawText(
        foot, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop, f"Page {page} of {pages}"
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


class _Report:
    """The report's HTML and page bands, from one session's rows."""

    def __init__(
        self,
        log: SessionLog,
        ref: Reference,
        quality: list[QualityFlag],
        tz: tzinfo | None,
        generated: datetime,
        rems: RemsForm | None = None,
    ) -> None:
        self.log = log
        self.ref = ref
        self.start = log.started_at()
        self.tz = tz or self.start.astimezone().tzinfo
        self.local_start = self.start.astimezone(self.tz)
        self.offset = _offset_text(self.local_start)
        self.dose = log.first_dose_at()
        self.end = log.ended_at()
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
        # The same sections the review view shows, in the zone this report states.
        self.sections = session_sections(log, ref, quality, generated, tz=self.tz, rems=rems)
        if rems is None:  # the review says "not applicable" in its REMS tab; paper need not
            self.sections = [s for s in self.sections if s.key != "rems"]

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

    # Sections -------------------------------------------------------------------------------

    def table(self, section: Section, rows: list[SectionRow] | None = None) -> str:
        """A section's table: every entry in clinical order, a corrected one struck through just
        above its correction with who corrected it, when and why; totals and warnings bold."""
        shown = list(section.rows) if rows is None else rows
        if not shown:
            return f"<p class='none'>{_e(section.empty)}</p>" if section.empty else ""
        head = "".join(f"<th>{_e(h)}</th>" for h in ("#", *section.headers))
        body = []
        for row in shown:

            def clip(value: Any, row: SectionRow = row) -> str:
                return _e(self.clipped(value, section.key, row.row_id))

            cells = [_e(f"#{row.row_id}" if row.row_id else ""), *(clip(c) for c in row.cells)]
            if row.typed:
                cells[-1] += f"<br/><i>{clip(row.typed)}</i>"
            if row.state == "replaced":
                body.append("<tr class='old'>" + "".join(f"<td><s>{c}</s></td>" for c in cells))
                body.append(
                    f"</tr><tr class='old'><td></td><td colspan='{len(cells) - 1}' "
                    f"class='note'>{clip(row.note)}</td></tr>"
                )
            elif row.warn or row.state == "total":
                body.append("<tr>" + "".join(f"<td><b>{c}</b></td>" for c in cells) + "</tr>")
            else:
                body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        return (
            "<table class='grid' width='100%' cellspacing='0' cellpadding='2'>"
            f"<thead><tr>{head}</tr></thead>{''.join(body)}</table>"
        )

    def clipped(self, value: Any, key: str, row_id: int | None) -> Any:
        """``value`` if short; else its first :data:`CELL_TEXT_LIMIT` characters and where the
        whole text is: the session's JSON export, that table's entry number (its ``ref``)."""
        if not isinstance(value, str) or len(value) <= CELL_TEXT_LIMIT:
            return value
        table = _SECTION_TABLES.get(key, key)
        ids = sorted(r["id"] for r in self.log.rows.get(table, ()))
        where = (
            f"{table} entry #{ids.index(row_id) + 1}"
            if row_id in ids
            else f"the entry numbered #{row_id} in this report"
        )
        more = len(value) - CELL_TEXT_LIMIT
        return (
            f"{value[:CELL_TEXT_LIMIT]}… [{more:,} more characters not printed: full text in "
            f"the JSON export, {where}]"
        )

    def render(self, section: Section) -> str:
        """A section under its heading: the table (or its summary), its notes, its sub-tables."""
        if section.key == "vitals" and len(self.log.current("vitals")) > SUMMARY_ABOVE_ROWS:
            body = self.vitals_summary(section)
        elif section.key == "observations" and len(section.rows) > SUMMARY_ABOVE_ROWS:
            body = self.observations_summary(section)
        else:
            body = self.table(section)
        body += "".join(f"<p class='small'>{_e(n)}</p>" for n in section.notes)
        for part in section.parts:
            body += f"<h3>{_e(part.title)}</h3>" + self.table(part)
        return self.section(section.title, body)

    # The document ---------------------------------------------------------------------------

    def html(self, chart_width: int, chart_height: int) -> str:
        first, *rest = self.sections
        parts = [
            _STYLE,
            "<h1>KAP session report</h1>",
            self.session_block(),
            self.render(first),
            self.section(
                "Trend chart",
                f"<p><img src='{_CHART_URL}' width='{chart_width}' height='{chart_height}'/></p>"
                "<p class='small'>Every reading is drawn; where readings are denser than the "
                "print, each column keeps its lowest and highest value. Lines, symbols and "
                "marker shapes (not colour alone) tell the series apart.</p>",
            ),
            *(self.render(s) for s in rest),
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

    # Long tables ----------------------------------------------------------------------------

    def vitals_summary(self, section: Section) -> str:
        """Over :data:`SUMMARY_ABOVE_ROWS` sets (a device feed): one row per
        :data:`SUMMARY_BIN_MINUTES` minutes with each vital's lowest–highest, then every
        corrected set in full."""
        current = self.log.current("vitals")
        origin = self.dose or self.start
        stamps = np.array([r["observed_at"][:-1] for r in current], dtype="datetime64[ms]")
        origin64 = np.datetime64(origin.astimezone(UTC).replace(tzinfo=None), "ms")
        minutes = (stamps - origin64).astype(np.float64) / 60_000.0
        bins = np.floor(minutes / SUMMARY_BIN_MINUTES).astype(np.int64)
        starts = np.flatnonzero(np.concatenate(([True], bins[1:] != bins[:-1])))
        counts = np.diff(np.concatenate((starts, [len(bins)])))
        scores = {r["vitals_id"]: r for r in self.log.current("vital_scores")}
        news = np.array(
            [scores[r["id"]]["news2_total"] if r["id"] in scores else np.nan for r in current],
            dtype=np.float64,
        )
        values = {
            v.key: np.array(
                [np.nan if r[v.key] is None else r[v.key] for r in current], dtype=np.float64
            )
            for v in VITAL_SIGNS
        }
        lows = {k: np.fmin.reduceat(v, starts) for k, v in values.items()}
        highs = {k: np.fmax.reduceat(v, starts) for k, v in values.items()}
        news_high = np.fmax.reduceat(news, starts)
        oxygen = np.maximum.reduceat(np.array([r["on_oxygen"] for r in current]), starts)

        def rng(sign: VitalSign, i: int) -> str:
            lo, hi = lows[sign.key][i], highs[sign.key][i]
            if np.isnan(lo):
                return "—"
            digits = sign.decimals
            return _num(lo, digits) if lo == hi else f"{_num(lo, digits)}–{_num(hi, digits)}"

        label = "dose" if self.dose is not None else "start"
        header = (
            f"<tr><th>Minutes since {label}</th><th>From</th><th>Sets</th>"
            + "".join(f"<th>{_e(v.short)} {_e(v.unit)}</th>" for v in VITAL_SIGNS)
            + "<th>NEWS2 max</th></tr>"
        )
        body = []
        for i, start in enumerate(starts):
            b = int(bins[start])
            first = current[int(start)]["observed_at"]
            cells = [
                _e(rng(v, i) + (" (O₂)" if v.key == "spo2" and oxygen[i] else ""))
                for v in VITAL_SIGNS
            ]
            body.append(
                f"<tr><td>{b * SUMMARY_BIN_MINUTES} to {(b + 1) * SUMMARY_BIN_MINUTES}</td>"
                f"<td>{_e(self.clock(first))}</td><td>{int(counts[i])}</td>"
                + "".join(f"<td>{c}</td>" for c in cells)
                + f"<td>{_e(_num(news_high[i]))}</td></tr>"
            )
        corrected = [r for r in section.rows if r.state == "replaced"]
        corrections = ""
        if corrected:
            replaced = {r.row_id for r in corrected}
            successors = {
                r["id"] for r in self.log.rows["vitals"] if r.get("supersedes_id") in replaced
            }
            chain_rows = [r for r in section.rows if r.row_id in replaced | successors]
            corrections = "<h3>Corrections to vital signs</h3>" + self.table(section, chain_rows)
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

    def observations_summary(self, section: Section) -> str:
        """A device feed scores every second: summarise the scores, print the rest in full."""
        rows = self.log.rows.get("observations", [])
        corrected = {r["supersedes_id"] for r in rows if r.get("supersedes_id") is not None}
        notable = {
            r["id"]
            for r in rows
            if r["note"]
            or r["cadss_total"] is not None
            or _json(r["features"], [])
            or _json(r["other_scores"], {})
            or r.get("supersedes_id") is not None
            or r["id"] in corrected
        }
        listed = [r for r in section.rows if r.row_id in notable]
        shown = listed[:SUMMARY_ABOVE_ROWS]
        more = len(listed) - len(shown)
        return (
            self.scores_summary(self.log.current("observations"))
            + "<h3>Observations with features, notes or corrections</h3>"
            + (self.table(section, shown) if shown else "<p class='none'>None.</p>")
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
