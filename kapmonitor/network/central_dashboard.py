"""The dashboard and a patient's series over the central archive, as the laptop computes them.

The laptop's review has two views across sessions besides the list: the **dashboard**
(:func:`kapmonitor.store.archive.dashboard`: adverse-effect incidence, first dose against the
systolic rise, alarms, missed and late checks per session over a period) and a **patient's
series** (:func:`kapmonitor.store.archive.patient_series`: one point per session of a patient's
course). Here both run over the central archive's mirror tables in PostgreSQL and return the
laptop's own types (:class:`~kapmonitor.store.archive.Dashboard`,
:class:`~kapmonitor.store.archive.SeriesPoint`), so the window draws them unchanged.

Same meaning as the laptop's, field by field: a row counts only when current (not withdrawn,
not superseded by a later row *of its laptop*: ids are per laptop, so every current-row test and
every join carries ``laptop_id``); a period is the laptop's (a ``date`` is a local calendar day,
both ends included); the patient's code is matched whole, ignoring case (codes are ASCII, where
PostgreSQL's ``lower`` is Python's ``casefold``). Sessions are keyed by laptop and session: a
session imported from one laptop's file into another's is sent by both and counted once per
laptop, as the central list shows it once per laptop. Order is the laptop's (start, then id),
with the laptop breaking a tie, and text is compared byte-wise (``COLLATE "C"``) as SQLite
compares it, whatever the server's locale.

What runs where: the sums and the per-session figures (term incidence, first dose, baseline and
peak systolic, alarms and unacknowledged alarms) are SQL on the server; the missed and late
checks need the protocol's schedule, so they are the domain's own ``quality_flags`` run here over
the rows fetched a chunk of sessions at a time (as the laptop does), and only for sessions whose
stored protocol copy can be read (the laptop skips the others too).

Read with a reviewer's role (``kap_reviewer``); a laptop's role sees its own sessions only
(row-level security). Qt-free; psycopg is imported when needed. Nothing is written.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

from kapmonitor.domain.clock import from_iso
from kapmonitor.domain.quality import quality_flags
from kapmonitor.domain.reference import Reference, default_reference
from kapmonitor.domain.session_rows import StoredRow, typed_row
from kapmonitor.network.connection import explain
from kapmonitor.store.archive import (
    _CHECK_COLUMNS,
    Dashboard,
    DoseResponse,
    SeriesPoint,
    SessionCount,
    TermIncidence,
    _as_datetime,
    _term_label,
    _utc_bound,
    current_rows,
)

CHUNK = 2000  # sessions whose rows the check counts fetch at a time
Key = tuple[str, str]  # (laptop id, session id)
_C = 'COLLATE "C"'  # byte-wise text comparison, as SQLite's


def _current(table: str, alias: str) -> str:
    """Row ``alias`` of ``kap.table`` is current (not withdrawn, not superseded on its laptop)."""
    return (
        f"{alias}.voided = 0 AND NOT EXISTS (SELECT 1 FROM kap.{table} sup "
        f"WHERE sup.laptop_id = {alias}.laptop_id AND sup.supersedes_id = {alias}.id)"
    )


def _of(alias: str) -> str:
    """Rows of ``alias`` belonging to the selected session ``sel``."""
    return f"{alias}.laptop_id = sel.laptop_id AND {alias}.session_id = sel.id"


class _Reader:
    """Read queries on a :class:`CentralArchive` (through its public ``query``, which says a
    failure in words) or on an open psycopg connection (its errors said the same way)."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.archive = hasattr(source, "query") and hasattr(source, "url")  # a CentralArchive
        if self.archive:
            parts = urlsplit(str(source.url))
            self.where = f"{parts.hostname}:{parts.port}{parts.path}?{parts.query}"
            self.url = str(source.url)
        else:
            info = getattr(source, "info", None)
            self.where = f"{info.host}:{info.port}/{info.dbname}" if info else ""
            self.url = f"postgresql://{self.where}"
        # ``where`` (server and database, no user, no password) keys the check-count cache:
        # the address given, and the one the server answers on with its database's name.
        found = self.rows("SELECT inet_server_addr()::text, inet_server_port(), current_database()")
        self.where += "|" + "|".join(str(v) for v in found[0])

    def rows(self, sql: str, values: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.archive:
            return list(self.source.query(sql, values))
        import psycopg

        try:
            return list(self.source.execute(sql, list(values)).fetchall())
        except psycopg.Error as exc:
            raise explain(exc, self.url) from exc


def _selection(
    since: datetime | date | None, until: datetime | date | None, laptop_id: str
) -> tuple[str, list[Any]]:
    """The sessions of the period (of one laptop, or all) as a ``sel`` CTE and its values."""
    terms, values = ["s.id IS NOT NULL", "s.observed_at IS NOT NULL"], []
    start, stop = _utc_bound(since, end=False), _utc_bound(until, end=True)
    if start is not None:
        terms.append(f"s.observed_at {_C} >= %s")
        values.append(start)
    if stop is not None:
        terms.append(f"s.observed_at {_C} < %s")
        values.append(stop)
    if laptop_id:
        terms.append("s.laptop_id = %s")
        values.append(laptop_id)
    cte = (
        "sel AS MATERIALIZED (SELECT s.laptop_id, s.id, s.patient_code, s.observed_at "
        f"FROM kap.sessions s WHERE {' AND '.join(terms)})"
    )
    return cte, values


_ORDER = f"sel.observed_at {_C}, sel.id {_C}, sel.laptop_id"

_DOSE_RESPONSE_SQL = f"""
WITH {{sel}},
first AS MATERIALIZED (
    SELECT DISTINCT ON (d.laptop_id, d.session_id) d.laptop_id, d.session_id,
        d.observed_at AS at, d.dose_mg, d.dose_mg_per_kg, d.drug
    FROM kap.doses d JOIN sel ON {_of("d")}
    WHERE {_current("doses", "d")}
    ORDER BY d.laptop_id, d.session_id, d.observed_at {_C}, d.id
)
SELECT sel.laptop_id, sel.id, sel.patient_code, sel.observed_at, f.dose_mg, f.dose_mg_per_kg,
    f.drug,
    (SELECT v.sbp FROM kap.vitals v WHERE {_of("v")} AND v.sbp IS NOT NULL
        AND v.observed_at {_C} <= f.at AND {_current("vitals", "v")}
        ORDER BY v.observed_at {_C} DESC, v.id DESC LIMIT 1) AS baseline_sbp,
    (SELECT max(v.sbp) FROM kap.vitals v WHERE {_of("v")} AND v.observed_at {_C} > f.at
        AND {_current("vitals", "v")}) AS peak_sbp
FROM sel JOIN first f ON f.laptop_id = sel.laptop_id AND f.session_id = sel.id
ORDER BY {_ORDER}
"""

_UNANSWERED = (
    "NOT EXISTS (SELECT 1 FROM kap.alarm_acknowledgements k WHERE k.laptop_id = a.laptop_id "
    f"AND k.alarm_id = a.id AND {_current('alarm_acknowledgements', 'k')})"
)
_ALARMS_SQL = f"""
WITH {{sel}}
SELECT a.laptop_id, a.session_id, count(*), count(*) FILTER (WHERE {_UNANSWERED})
FROM kap.alarms a JOIN sel ON {_of("a")}
WHERE {_current("alarms", "a")}
GROUP BY a.laptop_id, a.session_id
"""

_EVENTS_SQL = f"""
WITH {{sel}}
SELECT a.laptop_id, a.session_id, a.term, a.verbatim
FROM kap.adverse_events a JOIN sel ON {_of("a")}
WHERE {_current("adverse_events", "a")}
"""

# Rows of the sessions named by two parallel arrays (laptops, session ids).
_KEYS = "unnest(%s::text[], %s::text[]) AS k(laptop_id, session_id)"


def dashboard(
    source: Any,
    since: datetime | date | None = None,
    until: datetime | date | None = None,
    laptop_id: str = "",
    *,
    now: datetime | None = None,
    ref: Reference | None = None,
) -> Dashboard:
    """Patterns across the archive's sessions started in ``[since, until]`` (None: unbounded),
    of one laptop (``laptop_id``) or of every laptop: the laptop's
    :func:`~kapmonitor.store.archive.dashboard`, computed over the mirror tables.

    ``source`` is a :class:`~kapmonitor.network.central_archive.CentralArchive` or an open
    psycopg connection. ``now`` is the horizon for sessions still open (their checks are
    counted up to it). A failure is a plain :class:`NetworkError`."""
    default_ref = ref is None  # the cache holds counts made with the default reference only
    ref = ref or default_reference()
    pg = _Reader(source)
    sel, values = _selection(since, until, laptop_id)
    sessions: list[tuple[str, str, str, str]] = [
        (str(lap), str(sid), str(code), str(at))
        for lap, sid, code, at in pg.rows(
            f"WITH {sel} SELECT sel.laptop_id, sel.id, sel.patient_code, sel.observed_at "
            f"FROM sel ORDER BY {_ORDER}",
            values,
        )
    ]
    info = {(lap, sid): (code, from_iso(at)) for lap, sid, code, at in sessions}
    total = len(sessions)

    # Adverse-effect incidence: sessions with the term at least once / sessions.
    with_term: dict[str, set[Key]] = defaultdict(set)
    labels: dict[str, str] = {}
    with_any: set[Key] = set()
    for lap, sid, term, verbatim in pg.rows(_EVENTS_SQL.format(sel=sel), values):
        key, label = _term_label(term, verbatim, ref)
        with_term[key].add((lap, sid))
        labels.setdefault(key, label)
        with_any.add((lap, sid))
    incidence = sorted(
        (TermIncidence(k, labels[k], len(v), total) for k, v in with_term.items()),
        key=lambda t: (-t.sessions, t.label),
    )

    dose_points = [
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
        for _lap, sid, code, at, mg, per_kg, drug, baseline, peak in pg.rows(
            _DOSE_RESPONSE_SQL.format(sel=sel), values
        )
        if baseline is not None and peak is not None
    ]

    alarm_counts = {
        (str(lap), str(sid)): (int(n), int(open_n))
        for lap, sid, n, open_n in pg.rows(_ALARMS_SQL.format(sel=sel), values)
    }

    def per_session(value: dict[Key, int]) -> list[SessionCount]:
        return [
            SessionCount(sid, info[(lap, sid)][0], info[(lap, sid)][1], value.get((lap, sid), 0))
            for lap, sid, _code, _at in sessions
        ]

    keys = [(lap, sid) for lap, sid, _c, _a in sessions]
    missed, late = _check_counts(pg, keys, now, ref, _CACHE if default_ref else None)
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


# Missed/late check counts of ended sessions, by (server, laptop, session): (fingerprint of the
# rows they were computed from, missed, late). Process-wide, bounded, guarded by a lock (the
# window reads on a worker thread). Counting the checks is the domain's quality rules at ~1 ms a
# session; the fingerprint is one aggregate query on the server.
_CACHE: dict[tuple[str, str, str], tuple[Any, int, int]] = {}
_CACHE_LOCK = threading.Lock()
CACHE_SESSIONS = 200_000


def _remember(key: tuple[str, str, str], value: tuple[Any, int, int]) -> None:
    with _CACHE_LOCK:
        if len(_CACHE) >= CACHE_SESSIONS:
            _CACHE.clear()
        _CACHE[key] = value


def forget_cached_counts() -> None:
    """Drop every cached check count (tests; a reviewer's "refresh" need not call it)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _fingerprints(
    pg: _Reader, keys: list[Key], latest: dict[Key, dict[str, Any]]
) -> dict[Key, Any]:
    """What the check counts of each session were computed from: its current protocol copy
    (row and digest) and, per table the rules read, the newest server row id and the row
    count. Rows are append-only with ids rising per laptop, so any new row (a reading, a
    correction, a withdrawal, an end) changes it."""
    parts: dict[Key, dict[str, tuple[int, int]]] = defaultdict(dict)
    union = " UNION ALL ".join(
        f"SELECT t.laptop_id, t.session_id, '{table}', max(t.local_id), count(*) "
        f"FROM kap.{table} t JOIN {_KEYS} ON t.laptop_id = k.laptop_id "
        "AND t.session_id = k.session_id GROUP BY t.laptop_id, t.session_id"
        for table in _CHECK_COLUMNS
    )
    for lap, sid, table, newest, count in pg.rows(union, _keys(keys) * len(_CHECK_COLUMNS)):
        parts[(str(lap), str(sid))][str(table)] = (int(newest), int(count))
    return {
        key: (
            latest[key]["id"],
            latest[key]["digest"],
            tuple(parts[key].get(t, (0, 0)) for t in _CHECK_COLUMNS),
        )
        for key in keys
    }


def _keys(chunk: Sequence[Key]) -> list[list[str]]:
    return [[lap for lap, _sid in chunk], [sid for _lap, sid in chunk]]


def _check_counts(
    pg: _Reader,
    keys: list[Key],
    now: datetime | None,
    ref: Reference,
    cache: dict[tuple[str, str, str], tuple[Any, int, int]] | None,
) -> tuple[dict[Key, int], dict[Key, int]]:
    """Missed and late vital-sign checks per session, by the quality rules of each session's
    own protocol copy, as :func:`kapmonitor.store.archive._check_counts` counts them. Each
    distinct protocol copy (by its text's digest) is fetched and parsed once; the rows the
    rules read are fetched only for sessions whose copy could be read."""
    from kapmonitor.domain.protocol import Protocol, ProtocolError

    horizon = now or datetime.now(UTC)
    missed: dict[Key, int] = {}
    late: dict[Key, int] = {}
    parsed: dict[str, Protocol | None] = {}  # md5 of the copy -> protocol
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        grouped: dict[Key, list[dict[str, Any]]] = defaultdict(list)
        for lap, sid, row_id, at, supersedes, voided, digest in pg.rows(
            "SELECT p.laptop_id, p.session_id, p.id, p.observed_at, p.supersedes_id, p.voided, "
            f"md5(p.protocol_json) FROM kap.session_protocols p JOIN {_KEYS} "
            "ON p.laptop_id = k.laptop_id AND p.session_id = k.session_id",
            _keys(chunk),
        ):
            grouped[(lap, sid)].append(
                {
                    "id": row_id,
                    "observed_at": at,
                    "supersedes_id": supersedes,
                    "voided": voided,
                    "digest": digest,
                    "laptop_id": lap,
                }
            )
        # The session's latest current copy (the laptop keeps the last one by time, then id).
        latest = {key: live[-1] for key, rows in grouped.items() if (live := current_rows(rows))}
        wanted = {r["digest"]: r for r in latest.values() if r["digest"] not in parsed}
        if wanted:
            reps = list(wanted.values())
            for digest, text in pg.rows(
                "SELECT md5(p.protocol_json), p.protocol_json FROM kap.session_protocols p "
                "JOIN unnest(%s::text[], %s::bigint[]) AS k(laptop_id, id) "
                "ON p.laptop_id = k.laptop_id AND p.id = k.id",
                [[r["laptop_id"] for r in reps], [r["id"] for r in reps]],
            ):
                try:
                    parsed[digest] = Protocol.from_dict(json.loads(text))
                except (ProtocolError, ValueError, TypeError, KeyError):
                    parsed[digest] = None
        assessable = [k for k in chunk if k in latest and parsed.get(latest[k]["digest"])]
        if not assessable:
            continue
        # An ended session's counts depend on its rows alone (its end is the horizon, not
        # ``now``), and its rows only ever grow (append-only, ids rising per laptop): counts
        # computed before for the same rows are taken from the cache.
        prints = _fingerprints(pg, assessable, latest) if cache is not None else {}
        todo = []
        for key in assessable:
            known = cache.get((pg.where, *key)) if cache is not None else None
            if known is not None and prints.get(key) is not None and known[0] == prints[key]:
                missed[key], late[key] = known[1], known[2]
            else:
                todo.append(key)
        if not todo:
            continue
        sessions = {
            (str(lap), str(sid)): {
                "id": sid,
                "observed_at": at,
                "recorded_at": rec_at,
                "recorded_by": rec_by,
            }
            for lap, sid, at, rec_at, rec_by in pg.rows(
                "SELECT s.laptop_id, s.id, s.observed_at, s.recorded_at, s.recorded_by "
                f"FROM kap.sessions s JOIN {_KEYS} ON s.laptop_id = k.laptop_id "
                "AND s.id = k.session_id",
                _keys(todo),
            )
        }
        tables: dict[str, dict[Key, list[StoredRow]]] = {}
        for table, columns in _CHECK_COLUMNS.items():
            names = [c.strip() for c in columns.split(",")]
            listed = ", ".join(f"t.{c}" for c in names)
            rows_of: dict[Key, list[StoredRow]] = defaultdict(list)
            for found in pg.rows(
                f"SELECT t.laptop_id, {listed} FROM kap.{table} t JOIN {_KEYS} "
                "ON t.laptop_id = k.laptop_id AND t.session_id = k.session_id",
                _keys(todo),
            ):
                row = dict(zip(names, found[1:], strict=True))
                rows_of[(str(found[0]), str(row["session_id"]))].append(typed_row(table, row))
            tables[table] = rows_of
        for key in todo:
            protocol = parsed[latest[key]["digest"]]
            current = {t: current_rows(tables[t].get(key, [])) for t in _CHECK_COLUMNS}
            flags = quality_flags(sessions[key], current, protocol, horizon, ref=ref)
            missed[key] = sum(1 for f in flags if f.code == "missed_check")
            late[key] = sum(1 for f in flags if f.code == "late_check")
            if cache is not None and prints.get(key) is not None and current["session_ends"]:
                _remember((pg.where, *key), (prints[key], missed[key], late[key]))
    return missed, late


# --- a patient's course -------------------------------------------------------------------

# The rows a series point reads, per table (the laptop's patient_series reads these columns).
_SERIES_COLUMNS = {
    "doses": ("dose_mg", "dose_mg_per_kg"),
    "vitals": ("sbp",),
    "questionnaire_responses": ("questionnaire_id", "timing", "total", "band"),
    "adverse_events": ("term", "verbatim"),
    "session_ends": (),
}
_BASE = ("id", "session_id", "observed_at", "supersedes_id", "voided")


def patient_series(
    source: Any, patient_code: str, laptop_id: str = "", *, ref: Reference | None = None
) -> list[SeriesPoint]:
    """Every session of the patient with this code (whole code, ignoring case) across every
    laptop (or one), oldest first: the laptop's
    :func:`~kapmonitor.store.archive.patient_series` over the mirror tables. A patient seen in
    two rooms gets one course with both rooms' sessions. A session signed at the centre
    (``kap.central_reviews``) is "signed" here, as in the central list, even before its laptop
    has fetched that signature."""
    ref = ref or default_reference()
    pg = _Reader(source)
    terms, values = (
        ["s.id IS NOT NULL", "lower(s.patient_code) = %s"],
        [patient_code.strip().casefold()],
    )
    if laptop_id:
        terms.append("s.laptop_id = %s")
        values.append(laptop_id)
    sessions = pg.rows(
        "SELECT s.laptop_id, s.id, s.observed_at, s.weight_kg, "
        "EXISTS (SELECT 1 FROM kap.signatures g WHERE g.laptop_id = s.laptop_id "
        "AND g.session_id = s.id) OR EXISTS (SELECT 1 FROM kap.central_reviews c "
        "WHERE c.laptop_id = s.laptop_id AND c.session_id = s.id AND c.kind = 'signature') "
        f"FROM kap.sessions s WHERE {' AND '.join(terms)} "
        f"ORDER BY s.observed_at {_C}, s.id {_C}, s.laptop_id",
        values,
    )
    if not sessions:
        return []
    keys = [(str(lap), str(sid)) for lap, sid, *_rest in sessions]
    tables: dict[str, dict[Key, list[dict[str, Any]]]] = {}
    for table, extra in _SERIES_COLUMNS.items():
        names = [*_BASE, *extra]
        listed = ", ".join(f"t.{c}" for c in names)
        rows_of: dict[Key, list[dict[str, Any]]] = defaultdict(list)
        for found in pg.rows(
            f"SELECT t.laptop_id, {listed} FROM kap.{table} t JOIN {_KEYS} "
            "ON t.laptop_id = k.laptop_id AND t.session_id = k.session_id",
            _keys(keys),
        ):
            row = dict(zip(names, found[1:], strict=True))
            rows_of[(str(found[0]), str(row["session_id"]))].append(row)
        tables[table] = {key: current_rows(rows) for key, rows in rows_of.items()}
    points = []
    for lap, sid, started, weight, signed in sessions:
        key = (str(lap), str(sid))
        doses = tables["doses"].get(key, [])
        vitals = tables["vitals"].get(key, [])
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
            for q in tables["questionnaire_responses"].get(key, [])
            if q["questionnaire_id"] == "phq9" and q["timing"] == "pre"
        ]
        events = tables["adverse_events"].get(key, [])
        ended = bool(tables["session_ends"].get(key))
        total = sum(d["dose_mg"] for d in doses)
        first = doses[0] if doses else None
        first_per_kg = (
            (first["dose_mg_per_kg"] or round(first["dose_mg"] / weight, 3)) if first else None
        )
        points.append(
            SeriesPoint(
                session_id=sid,
                started_at=from_iso(started),
                status="signed" if signed else "ended" if ended else "open",
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


__all__ = ["dashboard", "patient_series"]
