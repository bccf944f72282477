"""The archive a supervisor reviews: every session listed, filtered and summed up. No Qt here.

Everything reads only, from current rows: a row counts when no other row of its table names it in
``supersedes_id`` (it has not been corrected) and it is not ``voided`` (not withdrawn), exactly
as ``SessionLog.current`` decides for one session.

Speed. :func:`list_sessions` is one SQL statement built to list 10,000 sessions (~1.5 M rows) in
well under a quarter of a second without any new index. Corrections are rare, so the statement
first collects the few sessions that have any (through the partial ``*_supersedes`` indexes,
which hold correction rows only); every other session is counted straight off the
``(session_id, observed_at)`` indexes without looking at rows, and only the sessions with a
correction pay for the row-by-row current check. The quality flags of a session are not listed
(they need its whole log); the review window shows them for the selected session.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlite_utils import Database

from kapmonitor.domain.clock import from_iso, to_iso
from kapmonitor.domain.quality import quality_flags
from kapmonitor.domain.reference import Reference, default_reference
from kapmonitor.domain.rems import SubmissionStatus, submission_status
from kapmonitor.domain.session_rows import StoredRow, typed_row
from kapmonitor.store.schema import REMS_COPY

STATUSES = ("open", "ended", "signed", "unsigned")
STATUS_LABELS = {"open": "Open", "ended": "Ended — not signed", "signed": "Signed"}
# Tables whose counts the list shows: a correction in any of them sends its session down the
# exact (row-by-row) path.
COUNTED_TABLES = (
    "session_ends",
    "session_protocols",
    "doses",
    "vitals",
    "adverse_events",
    "alarms",
    "alarm_acknowledgements",
)
# Rows of the tables the missed-check count needs, fetched this many sessions at a time.
CHUNK = 400
_SEP = "\x1f"  # unit separator: never typed into a name


def current_sql(table: str, alias: str) -> str:
    """SQL condition: row ``alias`` of ``table`` is current (not superseded, not withdrawn)."""
    return (
        f"{alias}.voided = 0 AND NOT EXISTS "
        f"(SELECT 1 FROM {table} AS sup WHERE sup.supersedes_id = {alias}.id)"
    )


def current_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The current rows of one table's rows (any number of sessions), by clinical time."""
    rows = list(rows)
    superseded = {r["supersedes_id"] for r in rows if r.get("supersedes_id") is not None}
    live = [r for r in rows if r["id"] not in superseded and not r.get("voided")]
    return sorted(live, key=lambda r: (r["observed_at"], r["id"]))


def _fold(text: Any) -> str:
    return str(text or "").casefold()


def _register(db: Database) -> None:
    """SQLite's lower() knows ASCII only; names like "Zoë Ó Briain" need Python's casefold."""
    db.conn.create_function("kap_fold", 1, _fold, deterministic=True)


def _utc_bound(value: date | datetime | None, *, end: bool) -> str | None:
    """A filter bound as stored UTC text. A date is a local calendar day: ``from`` is its first
    instant, ``to`` includes the whole day (the bound is the next local midnight, exclusive)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: give a timezone-aware time or a local date")
        return to_iso(value)
    day = value + timedelta(days=1) if end else value
    local_midnight = datetime.combine(day, time.min).astimezone()  # local time zone
    return to_iso(local_midnight.astimezone(UTC))


@dataclass(frozen=True)
class ArchiveFilter:
    """What the supervisor narrows the archive to; every field empty means everything.

    ``date_from``/``date_to`` bound the session start: a ``date`` is a local calendar day (both
    ends included), a ``datetime`` an exact instant (``date_to`` exclusive). ``patient_code``
    and ``clinician`` match any part, ignoring case. ``status`` is one of :data:`STATUSES`:
    ``open`` (not ended), ``ended`` (ended, signed or not), ``signed``, ``unsigned`` (not
    signed, open or ended).
    """

    date_from: date | datetime | None = None
    date_to: date | datetime | None = None
    patient_code: str = ""
    clinician: str = ""
    protocol_id: str = ""
    status: str = ""
    has_adverse_effects: bool = False
    has_alarms: bool = False
    unsigned_only: bool = False

    def where(self) -> tuple[list[str], list[Any]]:
        """SQL conditions on ``sessions s`` (with :data:`SIGNED_JOINS` joined) and their values."""
        if self.status and self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}; expected one of {STATUSES}")
        terms: list[str] = []
        values: list[Any] = []
        start, stop = _utc_bound(self.date_from, end=False), _utc_bound(self.date_to, end=True)
        if start is not None:
            terms.append("s.observed_at >= ?")
            values.append(start)
        if stop is not None:
            terms.append("s.observed_at < ?")
            values.append(stop)
        if self.patient_code.strip():
            terms.append("instr(kap_fold(s.patient_code), ?) > 0")
            values.append(_fold(self.patient_code.strip()))
        if self.clinician.strip():
            terms.append(
                "EXISTS (SELECT 1 FROM session_clinicians c WHERE c.session_id = s.id "
                "AND instr(kap_fold(c.name), ?) > 0)"
            )
            values.append(_fold(self.clinician.strip()))
        if self.protocol_id:
            terms.append(
                "EXISTS (SELECT 1 FROM session_protocols p WHERE p.session_id = s.id "
                f"AND p.protocol_id = ? AND {current_sql('session_protocols', 'p')})"
            )
            values.append(self.protocol_id)
        ended = (
            "EXISTS (SELECT 1 FROM session_ends e WHERE e.session_id = s.id "
            f"AND {current_sql('session_ends', 'e')})"
        )
        if self.status == "open":
            terms.append(f"NOT {ended}")
        elif self.status == "ended":
            terms.append(ended)
        elif self.status == "signed":
            terms.append(SIGNED)
        if self.status == "unsigned" or self.unsigned_only:
            terms.append(f"NOT {SIGNED}")
        if self.has_adverse_effects:
            terms.append(
                "EXISTS (SELECT 1 FROM adverse_events a WHERE a.session_id = s.id "
                f"AND {current_sql('adverse_events', 'a')})"
            )
        if self.has_alarms:
            terms.append(
                "EXISTS (SELECT 1 FROM alarms a WHERE a.session_id = s.id "
                f"AND {current_sql('alarms', 'a')})"
            )
        return terms, values


@dataclass(slots=True)
class ArchiveRow:
    """One session as the archive lists it (read it, do not change it: a plain, fast class,
    since ten thousand are built per listing)."""

    session_id: str
    patient_code: str
    started_at: datetime
    ended_at: datetime | None
    status: str  # open, ended (not signed) or signed
    protocol_id: str
    protocol_name: str
    clinician_list: str  # packed as stored; read ``clinicians``
    weight_kg: float
    dose_mg: float  # cumulative, current doses
    vitals: int
    adverse_events: int
    alarms: int
    unacknowledged_alarms: int
    signed_by: str = ""  # printed name
    signed_role: str = ""
    signed_at: datetime | None = None
    meaning: str = ""
    # Esketamine REMS sessions only: the form's treatment time and its first submission.
    rems: bool = False
    rems_treated_at: datetime | None = None
    rems_submitted_by: str = ""
    rems_submitted_at: datetime | None = None

    def rems_status(self, today: date) -> SubmissionStatus | None:
        """Due date (7 days, an editable default) and who submitted the form, when; None for a
        session the REMS form does not apply to."""
        if not self.rems or self.rems_treated_at is None:
            return None
        submitted = (
            [
                {
                    "id": 0,
                    "observed_at": to_iso(self.rems_submitted_at),
                    "submitted_by": self.rems_submitted_by,
                }
            ]
            if self.rems_submitted_at is not None
            else []
        )
        return submission_status(self.rems_treated_at, submitted, today)

    @property
    def clinicians(self) -> tuple[str, ...]:
        """The attending clinicians, in the order given at the start."""
        return _names(self.clinician_list)

    @property
    def dose_mg_per_kg(self) -> float | None:
        return round(self.dose_mg / self.weight_kg, 3) if self.dose_mg else None

    @property
    def signed(self) -> bool:
        return self.status == "signed"

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]


# A session is signed by its own signature or by a sign-off made at the centre that this laptop
# verified against its own rows (migration 0015; it closes the session as a local one does).
SIGNED_JOINS = (
    "LEFT JOIN signatures g ON g.session_id = s.id "
    "LEFT JOIN central_reviews gc ON gc.session_id = s.id AND gc.kind = 'signature' "
    "AND gc.status = 'verified'"
)
SIGNED = "(g.id IS NOT NULL OR gc.id IS NOT NULL)"


def _two_paths(exact: str, fast: str) -> str:
    """Sessions with a correction are counted row by row; all others off the index."""
    return f"(CASE WHEN dirty.session_id IS NULL THEN {fast} ELSE {exact} END)"


def _list_sql(where: Sequence[str]) -> str:
    dirty = " UNION ".join(
        f"SELECT session_id FROM {t} WHERE supersedes_id IS NOT NULL" for t in COUNTED_TABLES
    )
    cur = current_sql
    ended = _two_paths(
        f"(SELECT max(e.observed_at) FROM session_ends e WHERE e.session_id = s.id "
        f"AND {cur('session_ends', 'e')})",
        "(SELECT max(e.observed_at) FROM session_ends e WHERE e.session_id = s.id)",
    )
    protocol = _two_paths(
        f"(SELECT p.protocol_id || char(31) || p.protocol_name FROM session_protocols p "
        f"WHERE p.session_id = s.id AND {cur('session_protocols', 'p')} "
        "ORDER BY p.observed_at DESC, p.id DESC LIMIT 1)",
        "(SELECT p.protocol_id || char(31) || p.protocol_name FROM session_protocols p "
        "WHERE p.session_id = s.id ORDER BY p.id DESC LIMIT 1)",
    )
    dose = _two_paths(
        f"(SELECT total(d.dose_mg) FROM doses d WHERE d.session_id = s.id AND {cur('doses', 'd')})",
        "(SELECT total(d.dose_mg) FROM doses d WHERE d.session_id = s.id)",
    )

    def count(table: str, alias: str, extra: str = "", extra_fast: str = "") -> str:
        base = f"SELECT count(*) FROM {table} {alias} WHERE {alias}.session_id = s.id"
        return _two_paths(
            f"({base} AND {cur(table, alias)}{extra})", f"({base}{extra_fast or extra})"
        )

    unanswered_exact = (
        " AND NOT EXISTS (SELECT 1 FROM alarm_acknowledgements k WHERE k.alarm_id = a.id "
        f"AND {cur('alarm_acknowledgements', 'k')})"
    )
    unanswered_fast = (
        " AND NOT EXISTS (SELECT 1 FROM alarm_acknowledgements k WHERE k.alarm_id = a.id)"
    )
    conditions = f"WHERE {' AND '.join(where)}" if where else ""
    # Vitals are the one large table: even a corrected session is counted off the index, less
    # what its corrections take away (each correction replaces one row; a withdrawal removes
    # the row and itself, unless the withdrawal was corrected in turn).
    vitals = (
        "((SELECT count(*) FROM vitals v WHERE v.session_id = s.id) "
        "- coalesce(vitals_adjust.adjust, 0))"
    )
    return f"""
WITH dirty_sessions AS MATERIALIZED ({dirty}),
vitals_adjust AS MATERIALIZED (
    SELECT c.session_id, count(*) + sum(c.voided) - sum(c.voided AND EXISTS (
        SELECT 1 FROM vitals y WHERE y.supersedes_id = c.id)) AS adjust
    FROM vitals c WHERE c.supersedes_id IS NOT NULL
    GROUP BY +c.session_id
),
clinician_names AS MATERIALIZED (
    SELECT session_id, group_concat(position || char(30) || name, char(31)) AS names
    FROM session_clinicians GROUP BY session_id
)
SELECT s.id, s.patient_code, s.observed_at, s.weight_kg,
    cn.names AS clinicians,
    {ended} AS ended_at,
    {protocol} AS protocol,
    {dose} AS dose_mg,
    {vitals} AS vitals,
    {count("adverse_events", "a")} AS adverse_events,
    {count("alarms", "a")} AS alarms,
    {count("alarms", "a", unanswered_exact, unanswered_fast)} AS unacknowledged_alarms,
    coalesce(g.printed_name, gc.printed_name), coalesce(g.role, gc.role),
    coalesce(g.observed_at, gc.written_at) AS signed_at, coalesce(g.meaning, gc.meaning)
FROM sessions s
{SIGNED_JOINS}
LEFT JOIN dirty_sessions dirty ON dirty.session_id = s.id
LEFT JOIN clinician_names cn ON cn.session_id = s.id
LEFT JOIN vitals_adjust ON vitals_adjust.session_id = s.id
{conditions}
ORDER BY s.observed_at DESC, s.id
"""


def _names(packed: str | None) -> tuple[str, ...]:
    """Clinician names in the order given at the start (``position``), from "pos\x1ename" parts."""
    if not packed:
        return ()
    pairs = [part.split("\x1e", 1) for part in packed.split(_SEP)]
    if any(int(pos) != index for index, (pos, _name) in enumerate(pairs)):
        pairs.sort(key=lambda p: int(p[0]))
    return tuple(name for _pos, name in pairs)


_parse = datetime.fromisoformat  # stored UTC text ends in "Z": Python 3.11 reads it as UTC


def _archive_row(found: Sequence[Any]) -> ArchiveRow:
    (
        session_id,
        patient_code,
        started,
        weight,
        clinicians,
        ended,
        protocol,
        dose_mg,
        vitals,
        adverse_events,
        alarms,
        unanswered,
        signed_by,
        signed_role,
        signed_at,
        meaning,
    ) = found
    protocol_id, _sep, protocol_name = (protocol or "").partition(_SEP)
    status = "signed" if signed_by else "ended" if ended else "open"
    return ArchiveRow(
        session_id=session_id,
        patient_code=patient_code,
        started_at=_parse(started),
        ended_at=_parse(ended) if ended else None,
        status=status,
        protocol_id=protocol_id,
        protocol_name=protocol_name,
        clinician_list=clinicians or "",
        weight_kg=float(weight),
        dose_mg=float(dose_mg or 0.0),
        vitals=int(vitals),
        adverse_events=int(adverse_events),
        alarms=int(alarms),
        unacknowledged_alarms=int(unanswered),
        signed_by=signed_by or "",
        signed_role=signed_role or "",
        signed_at=_parse(signed_at) if signed_at else None,
        meaning=meaning or "",
    )


def list_sessions(db: Database, flt: ArchiveFilter | None = None) -> list[ArchiveRow]:
    """The sessions ``flt`` selects, newest first, each with its counts and signature."""
    _register(db)
    where, values = (flt or ArchiveFilter()).where()
    rows = [_archive_row(r) for r in db.execute(_list_sql(where), values).fetchall()]
    _add_rems(db, rows)
    return rows


# The REMS sessions, found by their stored protocol copy (``to_dict`` writes sorted JSON, so a
# plain text search is exact and avoids parsing every copy), with the first esketamine dose (or
# the session start) and the first submission of the form.
_REMS_SQL = f"""
SELECT p.session_id,
    coalesce((SELECT min(d.observed_at) FROM doses d WHERE d.session_id = p.session_id
              AND d.drug = 'esketamine' AND d.voided = 0), s.observed_at),
    (SELECT r.submitted_by || char(31) || r.observed_at FROM rems_submissions r
     WHERE r.session_id = p.session_id ORDER BY r.observed_at, r.id LIMIT 1)
FROM session_protocols p JOIN sessions s ON s.id = p.session_id
WHERE {REMS_COPY}
"""  # the partial index session_protocols_rems's own expression: SQLite reads the index


def _add_rems(db: Database, rows: list[ArchiveRow]) -> None:
    if not rows or "rems_submissions" not in db.table_names():
        return
    found = {sid: (treated, sub) for sid, treated, sub in db.execute(_REMS_SQL).fetchall()}
    for row in rows:
        if row.session_id not in found:
            continue
        treated, submitted = found[row.session_id]
        row.rems = True
        row.rems_treated_at = _parse(treated)
        if submitted:
            who, _sep, when = submitted.partition(_SEP)
            row.rems_submitted_by, row.rems_submitted_at = who, _parse(when)


@dataclass(frozen=True)
class ArchiveCounts:
    sessions: int = 0
    with_adverse_effects: int = 0
    with_alarms: int = 0
    unsigned: int = 0
    open: int = 0

    @classmethod
    def of(cls, rows: Iterable[ArchiveRow]) -> ArchiveCounts:
        """The same counts from rows already listed (no second query)."""
        rows = list(rows)
        return cls(
            sessions=len(rows),
            with_adverse_effects=sum(1 for r in rows if r.adverse_events),
            with_alarms=sum(1 for r in rows if r.alarms),
            unsigned=sum(1 for r in rows if not r.signed),
            open=sum(1 for r in rows if r.status == "open"),
        )

    def summary(self) -> str:
        """The summary line: "124 sessions · 18 with adverse effects · 9 unsigned"."""
        noun = "session" if self.sessions == 1 else "sessions"
        parts = [
            f"{self.sessions} {noun}",
            f"{self.with_adverse_effects} with adverse effects",
            f"{self.with_alarms} with alarms",
            f"{self.unsigned} unsigned",
        ]
        if self.open:
            parts.append(f"{self.open} still open")
        return " · ".join(parts)


def counts(db: Database, flt: ArchiveFilter | None = None) -> ArchiveCounts:
    """How many sessions ``flt`` selects, and how many of those have adverse effects, alarms,
    no signature, no end: one short query, without the per-session counts of the list."""
    _register(db)
    where, values = (flt or ArchiveFilter()).where()
    conditions = f"WHERE {' AND '.join(where)}" if where else ""
    found = db.execute(
        f"""
        SELECT count(*),
          coalesce(sum(EXISTS (SELECT 1 FROM adverse_events a WHERE a.session_id = s.id
              AND {current_sql("adverse_events", "a")})), 0),
          coalesce(sum(EXISTS (SELECT 1 FROM alarms a WHERE a.session_id = s.id
              AND {current_sql("alarms", "a")})), 0),
          coalesce(sum(NOT {SIGNED}), 0),
          coalesce(sum(NOT EXISTS (SELECT 1 FROM session_ends e WHERE e.session_id = s.id
              AND {current_sql("session_ends", "e")})), 0)
        FROM sessions s {SIGNED_JOINS}
        {conditions}
        """,
        values,
    ).fetchone()
    return ArchiveCounts(*(int(v) for v in found))


def protocols_in_use(db: Database) -> list[tuple[str, str]]:
    """(protocol id, latest name) of every protocol any session was run under."""
    rows = db.execute(
        "SELECT protocol_id, protocol_name FROM session_protocols "
        "WHERE id IN (SELECT max(id) FROM session_protocols GROUP BY protocol_id) "
        "ORDER BY protocol_name"
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


# --- the dashboard ------------------------------------------------------------------------


@dataclass(frozen=True)
class TermIncidence:
    """How many sessions had this adverse effect at least once."""

    term: str  # catalogue code; "other: <verbatim>" for a verbatim term
    label: str
    sessions: int
    total: int  # sessions in the period

    @property
    def percent(self) -> float:
        return 100.0 * self.sessions / self.total if self.total else 0.0


@dataclass(frozen=True)
class DoseResponse:
    """One session's first dose against its peak post-dose systolic rise."""

    session_id: str
    patient_code: str
    started_at: datetime
    first_dose_mg: float
    first_dose_mg_per_kg: float
    baseline_sbp: int  # latest pre-dose systolic (at or before the first dose)
    peak_sbp: int  # highest systolic after the first dose
    drug: str = ""

    @property
    def rise(self) -> int:
        return self.peak_sbp - self.baseline_sbp


@dataclass(frozen=True)
class SessionCount:
    """A number per session (alarms, missed checks), for bars over time."""

    session_id: str
    patient_code: str
    started_at: datetime
    value: int


@dataclass(frozen=True)
class Dashboard:
    since: datetime | None
    until: datetime | None
    sessions: int
    adverse_effects: list[TermIncidence] = field(default_factory=list)
    dose_response: list[DoseResponse] = field(default_factory=list)
    alarms: list[SessionCount] = field(default_factory=list)
    unacknowledged_alarms: list[SessionCount] = field(default_factory=list)
    missed_checks: list[SessionCount] = field(default_factory=list)
    late_checks: list[SessionCount] = field(default_factory=list)
    sessions_with_adverse_effects: int = 0

    def mean(self, series: str) -> float:
        values = [c.value for c in getattr(self, series)]
        return sum(values) / len(values) if values else 0.0


def _period(since: datetime | date | None, until: datetime | date | None) -> tuple[str, list[Any]]:
    terms, values = [], []
    start, stop = _utc_bound(since, end=False), _utc_bound(until, end=True)
    if start is not None:
        terms.append("observed_at >= ?")
        values.append(start)
    if stop is not None:
        terms.append("observed_at < ?")
        values.append(stop)
    return (f"WHERE {' AND '.join(terms)}" if terms else ""), values


def _term_label(term: str, verbatim: str | None, ref: Reference) -> tuple[str, str]:
    if term == "other":
        text = (verbatim or "").strip() or "other"
        return f"other: {text.casefold()}", text[:1].upper() + text[1:]
    return term, ref.label("adverse_effects", term)


def _dose_response_sql(period: str) -> str:
    cur = current_sql
    return f"""
WITH ses AS MATERIALIZED (SELECT id, patient_code, observed_at FROM sessions {period}),
first AS MATERIALIZED (
    SELECT d.session_id, min(d.observed_at) AS at, d.dose_mg, d.dose_mg_per_kg, d.drug
    FROM doses d JOIN ses ON ses.id = d.session_id
    WHERE {cur("doses", "d")}
    GROUP BY d.session_id
)
SELECT ses.id, ses.patient_code, ses.observed_at, f.dose_mg, f.dose_mg_per_kg, f.drug,
    (SELECT v.sbp FROM vitals v WHERE v.session_id = ses.id AND v.sbp IS NOT NULL
        AND v.observed_at <= f.at AND {cur("vitals", "v")}
        ORDER BY v.observed_at DESC, v.id DESC LIMIT 1) AS baseline_sbp,
    (SELECT max(v.sbp) FROM vitals v WHERE v.session_id = ses.id AND v.observed_at > f.at
        AND {cur("vitals", "v")}) AS peak_sbp
FROM ses JOIN first f ON f.session_id = ses.id
ORDER BY ses.observed_at
"""


def dashboard(
    db: Database,
    since: datetime | date | None = None,
    until: datetime | date | None = None,
    *,
    now: datetime | None = None,
    ref: Reference | None = None,
) -> Dashboard:
    """Patterns across the sessions started in ``[since, until]`` (None: unbounded).

    ``now`` is the horizon for sessions still open (their checks are counted up to it).
    """
    ref = ref or default_reference()
    period, values = _period(since, until)
    sessions = db.execute(
        f"SELECT id, patient_code, observed_at FROM sessions {period} ORDER BY observed_at, id",
        values,
    ).fetchall()
    info = {sid: (code, from_iso(at)) for sid, code, at in sessions}
    total = len(sessions)

    # Adverse-effect incidence: sessions with the term at least once / sessions.
    with_term: dict[str, set[str]] = defaultdict(set)
    labels: dict[str, str] = {}
    with_any: set[str] = set()
    for sid, term, verbatim in db.execute(
        f"SELECT a.session_id, a.term, a.verbatim FROM adverse_events a "
        f"WHERE a.session_id IN (SELECT id FROM sessions {period}) "
        f"AND {current_sql('adverse_events', 'a')}",
        values,
    ):
        key, label = _term_label(term, verbatim, ref)
        with_term[key].add(sid)
        labels.setdefault(key, label)
        with_any.add(sid)
    incidence = sorted(
        (TermIncidence(k, labels[k], len(v), total) for k, v in with_term.items()),
        key=lambda t: (-t.sessions, t.label),
    )

    dose_points = []
    for sid, code, at, mg, per_kg, drug, baseline, peak in db.execute(
        _dose_response_sql(period), values
    ):
        if baseline is None or peak is None:
            continue
        dose_points.append(
            DoseResponse(
                session_id=sid,
                patient_code=code,
                started_at=from_iso(at),
                first_dose_mg=float(mg),
                first_dose_mg_per_kg=float(per_kg) if per_kg is not None else 0.0,
                baseline_sbp=int(baseline),
                peak_sbp=int(peak),
                drug=drug or "",
            )
        )

    alarm_counts: dict[str, tuple[int, int]] = {
        sid: (int(n), int(open_n))
        for sid, n, open_n in db.execute(
            f"""
            SELECT a.session_id, count(*), sum(NOT EXISTS (
                SELECT 1 FROM alarm_acknowledgements k WHERE k.alarm_id = a.id
                AND {current_sql("alarm_acknowledgements", "k")}))
            FROM alarms a WHERE a.session_id IN (SELECT id FROM sessions {period})
            AND {current_sql("alarms", "a")} GROUP BY a.session_id
            """,
            values,
        )
    }

    def per_session(value: dict[str, int]) -> list[SessionCount]:
        return [
            SessionCount(sid, info[sid][0], info[sid][1], value.get(sid, 0))
            for sid, _code, _at in sessions
        ]

    missed, late = _check_counts(db, [s[0] for s in sessions], now, ref)
    return Dashboard(
        since=_as_datetime(since, end=False),
        until=_as_datetime(until, end=True),
        sessions=total,
        adverse_effects=incidence,
        dose_response=dose_points,
        alarms=per_session({k: v[0] for k, v in alarm_counts.items()}),
        unacknowledged_alarms=per_session({k: v[1] for k, v in alarm_counts.items()}),
        missed_checks=per_session(missed),
        late_checks=per_session(late),
        sessions_with_adverse_effects=len(with_any),
    )


def _as_datetime(value: datetime | date | None, *, end: bool) -> datetime | None:
    bound = _utc_bound(value, end=end)
    return from_iso(bound) if bound is not None else None


# Columns the protocol checks need, per table (quality_flags reads these).
_CHECK_COLUMNS = {
    "vitals": "id, session_id, observed_at, recorded_at, recorded_by, supersedes_id, voided",
    "doses": "id, session_id, observed_at, recorded_at, recorded_by, supersedes_id, voided",
    "session_ends": "id, session_id, observed_at, recorded_at, recorded_by, supersedes_id, voided",
    "overrides": "id, session_id, observed_at, recorded_at, recorded_by, supersedes_id, voided, "
    "kind, reason",
}


def _check_counts(
    db: Database, session_ids: list[str], now: datetime | None, ref: Reference
) -> tuple[dict[str, int], dict[str, int]]:
    """Missed and late vital-sign checks per session, by the quality rules of each session's own
    protocol copy. Sessions are read a chunk at a time, and each distinct protocol copy is
    parsed once."""
    from kapmonitor.domain.protocol import Protocol, ProtocolError

    horizon = now or datetime.now(UTC)
    missed: dict[str, int] = {}
    late: dict[str, int] = {}
    parsed: dict[int, Protocol | None] = {}
    for start in range(0, len(session_ids), CHUNK):
        chunk = session_ids[start : start + CHUNK]
        marks = ", ".join("?" * len(chunk))
        sessions = {
            r["id"]: r
            for r in db.query(
                f"SELECT id, observed_at, recorded_at, recorded_by FROM sessions "
                f"WHERE id IN ({marks})",
                chunk,
            )
        }
        tables: dict[str, dict[str, list[StoredRow]]] = {}
        for table, columns in _CHECK_COLUMNS.items():
            grouped: dict[str, list[StoredRow]] = defaultdict(list)
            for row in db.query(
                f"SELECT {columns} FROM {table} WHERE session_id IN ({marks})", chunk
            ):
                # Typed as the rules read them; a column not selected keeps its default (a
                # vital not read is None: these counts need only the times).
                grouped[row["session_id"]].append(typed_row(table, row))
            tables[table] = grouped
        # The protocol copy is large: SQLite groups identical copies, each is parsed once.
        protocol_rows = {
            r["session_id"]: r
            for r in current_rows(
                db.query(
                    "SELECT id, session_id, observed_at, supersedes_id, voided "
                    f"FROM session_protocols WHERE session_id IN ({marks})",
                    chunk,
                )
            )
        }
        wanted = [r["id"] for r in protocol_rows.values() if r["id"] not in parsed]
        if wanted:
            for first_id, ids in db.execute(
                "SELECT min(id), group_concat(id) FROM session_protocols "
                f"WHERE id IN ({', '.join('?' * len(wanted))}) GROUP BY protocol_json",
                wanted,
            ).fetchall():
                text = db.execute(
                    "SELECT protocol_json FROM session_protocols WHERE id = ?", [first_id]
                ).fetchone()[0]
                try:
                    protocol: Protocol | None = Protocol.from_dict(json.loads(text))
                except (ProtocolError, ValueError):
                    protocol = None
                for row_id in str(ids).split(","):
                    parsed[int(row_id)] = protocol
        for sid in chunk:
            proto_row = protocol_rows.get(sid)
            protocol = parsed.get(proto_row["id"]) if proto_row else None
            if protocol is None:
                continue  # no protocol: its checks cannot be assessed
            current = {t: current_rows(tables[t].get(sid, [])) for t in _CHECK_COLUMNS}
            flags = quality_flags(sessions[sid], current, protocol, horizon, ref=ref)
            missed[sid] = sum(1 for f in flags if f.code == "missed_check")
            late[sid] = sum(1 for f in flags if f.code == "late_check")
    return missed, late


# --- a patient's course -------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesPoint:
    """One session of a patient's course."""

    session_id: str
    started_at: datetime
    status: str
    dose_mg: float  # cumulative
    dose_mg_per_kg: float | None
    first_dose_mg_per_kg: float | None
    phq9_before: int | None  # PHQ-9 total answered before the session ("pre")
    phq9_band: str
    baseline_sbp: int | None
    peak_sbp: int | None
    adverse_effects: tuple[str, ...]  # labels, in onset order

    @property
    def sbp_rise(self) -> int | None:
        if self.baseline_sbp is None or self.peak_sbp is None:
            return None
        return self.peak_sbp - self.baseline_sbp


def _session_rows(db: Database, table: str, session_id: str) -> list[dict[str, Any]]:
    return current_rows(db.query(f"SELECT * FROM {table} WHERE session_id = ?", [session_id]))


def patient_series(
    db: Database, patient_code: str, ref: Reference | None = None
) -> list[SeriesPoint]:
    """Every session of the patient with this code (ignoring case), oldest first: dose, PHQ-9
    before the session, blood pressure peak and adverse effects, to follow a course."""
    ref = ref or default_reference()
    _register(db)
    sessions = db.execute(
        "SELECT s.id, s.observed_at, s.weight_kg, coalesce(g.id, gc.id) FROM sessions s "
        f"{SIGNED_JOINS} "
        "WHERE kap_fold(s.patient_code) = ? ORDER BY s.observed_at, s.id",
        [_fold(patient_code.strip())],
    ).fetchall()
    points = []
    for sid, started, weight, signature in sessions:
        doses = _session_rows(db, "doses", sid)
        vitals = _session_rows(db, "vitals", sid)
        first_at = doses[0]["observed_at"] if doses else None
        baseline = [
            v["sbp"]
            for v in vitals
            if v["sbp"] is not None and first_at is not None and v["observed_at"] <= first_at
        ]
        after = [
            v["sbp"]
            for v in vitals
            if v["sbp"] is not None and first_at is not None and v["observed_at"] > first_at
        ]
        phq9 = [
            q
            for q in _session_rows(db, "questionnaire_responses", sid)
            if q["questionnaire_id"] == "phq9" and q["timing"] == "pre"
        ]
        events = _session_rows(db, "adverse_events", sid)
        ended = bool(_session_rows(db, "session_ends", sid))
        total = sum(d["dose_mg"] for d in doses)
        first = doses[0] if doses else None
        first_per_kg = (
            (first["dose_mg_per_kg"] or round(first["dose_mg"] / weight, 3)) if first else None
        )
        points.append(
            SeriesPoint(
                session_id=sid,
                started_at=from_iso(started),
                status="signed" if signature else "ended" if ended else "open",
                dose_mg=float(total),
                dose_mg_per_kg=round(total / weight, 3) if total else None,
                first_dose_mg_per_kg=first_per_kg,
                phq9_before=phq9[-1]["total"] if phq9 else None,
                phq9_band=(phq9[-1]["band"] or "") if phq9 else "",
                baseline_sbp=baseline[-1] if baseline else None,
                peak_sbp=max(after) if after else None,
                adverse_effects=tuple(
                    _term_label(e["term"], e["verbatim"], ref)[1] for e in events
                ),
            )
        )
    return points


def open_read_only(path: Any) -> Database:
    """A read-only connection to the database at ``path``, for a worker thread.

    It never migrates or writes, so it may run beside the window's own connection (WAL lets
    readers and the writer proceed together). Memory-mapped reads make archive-wide scans
    cheaper.
    """
    import sqlite3

    from kapmonitor.store.database import connect_readonly, explain

    db = connect_readonly(path)
    try:
        db.execute("PRAGMA mmap_size = 268435456")
        db.execute("PRAGMA cache_size = -32768")
    except sqlite3.Error as exc:
        db.close()
        raise explain(exc, path) from exc
    return db
