"""The central archive's list: every laptop's sessions, filtered and paged, read as a reviewer.

The same filter and the same row as the laptop's archive (:mod:`kapmonitor.store.archive`): an
:class:`~kapmonitor.store.archive.ArchiveFilter` becomes a ``WHERE`` over ``kap.sessions`` here,
with the same meaning field by field (a date is a local calendar day, ``patient_code`` and
``clinician`` match any part ignoring case, ``status`` is open / ended / signed / unsigned, a row
counts only when current: not withdrawn and not superseded by a later row of its laptop), and each
session comes back as a :class:`CentralArchiveRow`, an ``ArchiveRow`` that also names its
laptop. So the command line and the review window render both archives alike.

Why paged: at 100,000 sessions from 20 laptops a whole listing is not something to move over a
network for every keystroke of a filter. :meth:`CentralArchive.page` returns one page (newest
first, 200 rows by default) and the number of sessions the filter selects; the page's counts
(doses, vitals, adverse events, alarms...) are computed for that page's sessions only, off the
per-table ``session_id`` indexes, and the current-row tests look corrections up by the partial
``(laptop_id, supersedes_id)`` indexes (server schema 0003). Nothing is precomputed, so there is
no summary to drift from the rows. The figures are in docs/network.md (``kapmonitor bench``).

Case folding exactly as the laptop's (Python's ``casefold``): patient codes are ASCII (the laptop
refuses any other), where PostgreSQL's ``lower`` is the same; clinician names are not, and
PostgreSQL has no ``casefold``, so the few hundred distinct names are folded here and the filter
asks for those names (:func:`matching_names`).

Read with a role in ``kap_reviewer`` (SELECT on every laptop's rows). The one thing it writes is
an export's audit entry (:meth:`CentralArchive.record_export`, ``kap.central_exports``). Qt-free;
psycopg is imported when a connection is made. One :class:`CentralArchive` per thread.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kapmonitor.network.central_session import CentralSession, materialise
from kapmonitor.network.connection import connect, explain, redact
from kapmonitor.store.archive import (
    STATUSES,
    ArchiveCounts,
    ArchiveFilter,
    ArchiveRow,
    _utc_bound,
)
from kapmonitor.store.errors import StoreError

PAGE_ROWS = 200
_SEP = "\x1f"


@dataclass(slots=True)
class CentralArchiveRow(ArchiveRow):
    """An archive row of the central archive: the laptop's row plus where it came from."""

    laptop_id: str = ""
    doses: int = 0  # current dose entries (the command line's column)


@dataclass(frozen=True)
class CentralPage:
    """One page of the list and how many sessions the filter selects in all."""

    rows: list[CentralArchiveRow]
    total: int
    offset: int
    limit: int

    @property
    def more(self) -> bool:
        return self.offset + len(self.rows) < self.total


def current(table: str, alias: str) -> str:
    """PostgreSQL condition: row ``alias`` of ``kap.table`` is current (ids are per laptop)."""
    return (
        f"{alias}.voided = 0 AND NOT EXISTS (SELECT 1 FROM kap.{table} sup "
        f"WHERE sup.laptop_id = {alias}.laptop_id AND sup.supersedes_id = {alias}.id)"
    )


def _of(alias: str) -> str:
    """Rows of ``alias`` belonging to the session ``s`` (its laptop and its global id)."""
    return f"{alias}.laptop_id = s.laptop_id AND {alias}.session_id = s.id"


def where(
    flt: ArchiveFilter | None, laptop_id: str = "", clinician_names: Sequence[str] = ()
) -> tuple[list[str], list[Any]]:
    """``flt`` (and a laptop) as PostgreSQL conditions on ``kap.session_summary m`` and their
    values: :meth:`ArchiveFilter.where`'s meaning, written for the archive. The status and
    "has" filters read the session's summary row (current rows counted by the server's
    triggers, schema 0003); protocol and clinician look in their tables. ``clinician_names``
    are the stored names :func:`matching_names` found for ``flt.clinician``."""
    flt = flt or ArchiveFilter()
    if flt.status and flt.status not in STATUSES:
        raise ValueError(f"unknown status {flt.status!r}; expected one of {STATUSES}")
    terms: list[str] = ["m.started_at IS NOT NULL"]  # the session's own row has arrived
    values: list[Any] = []
    if laptop_id:
        terms.append("m.laptop_id = %s")
        values.append(laptop_id)
    start, stop = _utc_bound(flt.date_from, end=False), _utc_bound(flt.date_to, end=True)
    if start is not None:
        terms.append("m.started_at >= %s")
        values.append(start)
    if stop is not None:
        terms.append("m.started_at < %s")
        values.append(stop)
    if flt.patient_code.strip():
        # Codes are ASCII (the laptop refuses any other), where lower() is casefold().
        terms.append("strpos(lower(m.patient_code), %s) > 0")
        values.append(flt.patient_code.strip().casefold())
    of_m = "laptop_id = m.laptop_id AND {0}.session_id = m.session_id"
    if flt.clinician.strip():
        terms.append(
            f"EXISTS (SELECT 1 FROM kap.session_clinicians c WHERE c.{of_m.format('c')} "
            "AND c.name = ANY(%s))"
        )
        values.append(list(clinician_names))
    if flt.protocol_id:
        terms.append(
            f"EXISTS (SELECT 1 FROM kap.session_protocols p WHERE p.{of_m.format('p')} "
            f"AND p.protocol_id = %s AND {current('session_protocols', 'p')})"
        )
        values.append(flt.protocol_id)
    if flt.status == "open":
        terms.append("m.ended_rows = 0")
    elif flt.status == "ended":
        terms.append("m.ended_rows > 0")
    elif flt.status == "signed":
        terms.append("m.signature_rows > 0")
    if flt.status == "unsigned" or flt.unsigned_only:
        terms.append("m.signature_rows = 0")
    if flt.has_adverse_effects:
        terms.append("m.adverse_event_rows > 0")
    if flt.has_alarms:
        terms.append("m.alarm_rows > 0")
    return terms, values


def matching_names(names: Sequence[str], part: str) -> list[str]:
    """The ``names`` containing ``part``, ignoring case exactly as the laptop does (Python's
    ``casefold``, which PostgreSQL has no equivalent of): the archive holds a few hundred
    distinct clinician names, so they are folded here rather than row by row on the server."""
    wanted = part.strip().casefold()
    return [name for name in names if wanted in (name or "").casefold()]


def _count(table: str, alias: str, extra: str = "") -> str:
    return (
        f"(SELECT count(*) FROM kap.{table} {alias} WHERE {_of(alias)} "
        f"AND {current(table, alias)}{extra})"
    )


_UNANSWERED = (
    " AND NOT EXISTS (SELECT 1 FROM kap.alarm_acknowledgements k WHERE k.laptop_id = a.laptop_id "
    f"AND k.alarm_id = a.id AND {current('alarm_acknowledgements', 'k')})"
)

# One page: the sessions off the newest-first index, then each one's figures (correlated
# subqueries on the page's rows only). REMS as the laptop finds it: a stored protocol copy with
# "rems": true, the first esketamine dose (or the start), the first submission of the form.
# The page's sessions, then their rows. When the filter selects many sessions, the page is the
# first matches down the summary's newest-first index (a short walk); when it selects few, the
# walk would read most of the index to find them, so they are selected first and sorted.
_PAGE_WALK = """
WITH m AS MATERIALIZED (
    SELECT m.laptop_id, m.session_id FROM kap.session_summary m
    WHERE {where}
    ORDER BY m.started_at DESC, m.laptop_id, m.session_id
    LIMIT %s OFFSET %s
),"""
_PAGE_SORT = """
WITH f AS MATERIALIZED (
    SELECT m.laptop_id, m.session_id, m.started_at FROM kap.session_summary m WHERE {where}
),
m AS MATERIALIZED (
    SELECT f.laptop_id, f.session_id FROM f
    ORDER BY f.started_at DESC, f.laptop_id, f.session_id
    LIMIT %s OFFSET %s
),"""
WALK_FROM = 5000  # sessions selected: at or above this, walk the index for the page
_PAGE_HEAD = """
s AS MATERIALIZED (
    SELECT s.laptop_id, s.id, s.patient_code, s.observed_at, s.weight_kg, NULL::bigint AS total
    FROM m JOIN kap.sessions s ON s.laptop_id = m.laptop_id AND s.id = m.session_id
)"""
_PAGE_SQL = f"""
SELECT s.total, s.laptop_id, s.id, s.patient_code, s.observed_at, s.weight_kg,
    (SELECT string_agg(c.position || chr(30) || c.name, chr(31) ORDER BY c.position)
     FROM kap.session_clinicians c WHERE {_of("c")}) AS clinicians,
    (SELECT max(e.observed_at) FROM kap.session_ends e WHERE {_of("e")}
     AND {current("session_ends", "e")}) AS ended_at,
    (SELECT p.protocol_id || chr(31) || p.protocol_name FROM kap.session_protocols p
     WHERE {_of("p")} AND {current("session_protocols", "p")}
     ORDER BY p.observed_at DESC, p.id DESC LIMIT 1) AS protocol,
    (SELECT coalesce(sum(d.dose_mg), 0) FROM kap.doses d WHERE {_of("d")}
     AND {current("doses", "d")}) AS dose_mg,
    {_count("vitals", "v")} AS vitals,
    {_count("adverse_events", "a")} AS adverse_events,
    {_count("alarms", "a")} AS alarms,
    {_count("alarms", "a", _UNANSWERED)} AS unacknowledged_alarms,
    g.printed_name, g.role, g.observed_at, g.meaning,
    {_count("doses", "d")} AS doses,
    EXISTS (SELECT 1 FROM kap.session_protocols p WHERE {_of("p")}
            AND strpos(p.protocol_json, '"rems": true') > 0) AS rems,
    coalesce((SELECT min(d.observed_at) FROM kap.doses d WHERE {_of("d")}
              AND d.drug = 'esketamine' AND d.voided = 0), s.observed_at) AS rems_treated,
    (SELECT r.submitted_by || chr(31) || r.observed_at FROM kap.rems_submissions r
     WHERE {_of("r")} ORDER BY r.observed_at, r.id LIMIT 1) AS rems_submitted
FROM s
LEFT JOIN LATERAL (
    SELECT x.printed_name, x.role, x.observed_at, x.meaning FROM (
        SELECT g.printed_name, g.role, g.observed_at, g.meaning, 0 AS here, g.local_id AS k
        FROM kap.signatures g WHERE {_of("g")}
        UNION ALL  -- a sign-off at the centre (schema 5 counts it in the summary too)
        SELECT c.printed_name, c.role_title, c.written_at, c.meaning, 1, c.id
        FROM kap.central_reviews c WHERE {_of("c")} AND c.kind = 'signature'
    ) x ORDER BY x.here, x.k LIMIT 1) g ON true
ORDER BY s.observed_at DESC, s.laptop_id, s.id
"""


_COUNTS_SQL = """
SELECT count(*),
    count(*) FILTER (WHERE m.adverse_event_rows > 0),
    count(*) FILTER (WHERE m.alarm_rows > 0),
    count(*) FILTER (WHERE m.signature_rows = 0),
    count(*) FILTER (WHERE m.ended_rows = 0)
FROM kap.session_summary m WHERE {where}
"""

# Every distinct clinician name, off the name index (a few hundred in a large archive).
_NAMES_SQL = "SELECT DISTINCT name FROM kap.session_clinicians WHERE name IS NOT NULL"

_parse = datetime.fromisoformat


def _row(found: Sequence[Any]) -> CentralArchiveRow:
    (
        _total,
        laptop_id,
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
        doses,
        rems,
        rems_treated,
        rems_submitted,
    ) = found
    protocol_id, _sep, protocol_name = (protocol or "").partition(_SEP)
    row = CentralArchiveRow(
        session_id=session_id,
        patient_code=patient_code,
        started_at=_parse(started),
        ended_at=_parse(ended) if ended else None,
        status="signed" if signed_by else "ended" if ended else "open",
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
        laptop_id=laptop_id,
        doses=int(doses),
    )
    if rems:
        row.rems = True
        row.rems_treated_at = _parse(rems_treated)
        if rems_submitted:
            who, _sep, when = str(rems_submitted).partition(_SEP)
            row.rems_submitted_by, row.rems_submitted_at = who, _parse(when)
    return row


class CentralArchive:
    """A reviewer's connection to the central archive: list, count, open, export's audit.

    Open it with the archive's URL (a ``kap_reviewer`` member's role; the password from
    ``~/.pgpass`` or ``PGPASSWORD``); every failure is a plain
    :class:`~kapmonitor.network.connection.NetworkError` (unreachable, refused) or
    :class:`StoreError`. Use it from one thread; :meth:`close` when done (or ``with``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pg: Any = None

    # -- the connection ---------------------------------------------------------------------

    @property
    def where(self) -> str:
        """The server, without its password (for titles and messages)."""
        return redact(self.url)

    def _conn(self) -> Any:
        if self._pg is None:
            self._pg = connect(self.url, autocommit=True)
        return self._pg

    def query(self, sql: str, values: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read query on this connection (the reviewer's role: it can only read),
        a failure said in words: how a window reads what this class has no method for."""
        return self._run(sql, values)

    def _run(self, sql: str, values: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            return list(self._conn().execute(sql, list(values)).fetchall())
        except psycopg.Error as exc:
            self._drop()
            raise explain(exc, self.url) from exc

    def _drop(self) -> None:
        """Forget a connection that failed: the next call makes a new one."""
        if self._pg is not None:
            try:
                self._pg.close()
            finally:
                self._pg = None

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> CentralArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------------

    def _where(self, flt: ArchiveFilter | None, laptop_id: str) -> tuple[str, list[Any]]:
        names: list[str] = []
        if flt is not None and flt.clinician.strip():
            stored = [str(r[0]) for r in self._run(_NAMES_SQL)]
            names = matching_names(stored, flt.clinician)
        terms, values = where(flt, laptop_id, names)
        return " AND ".join(terms), values

    def page(
        self,
        flt: ArchiveFilter | None = None,
        *,
        laptop_id: str = "",
        offset: int = 0,
        limit: int = PAGE_ROWS,
    ) -> CentralPage:
        """One page of the sessions ``flt`` selects (of one laptop, or all), newest first,
        with the total the filter selects."""
        clause, values = self._where(flt, laptop_id)
        offset, limit = max(0, int(offset)), max(1, int(limit))
        total = int(
            self._run(f"SELECT count(*) FROM kap.session_summary m WHERE {clause}", values)[0][0]
        )
        head = _PAGE_WALK if total >= WALK_FROM else _PAGE_SORT
        found = self._run(
            head.format(where=clause) + _PAGE_HEAD + _PAGE_SQL, [*values, limit, offset]
        )
        return CentralPage([_row(r) for r in found], total, offset, limit)

    def list_sessions(
        self, flt: ArchiveFilter | None = None, *, laptop_id: str = ""
    ) -> Iterator[CentralArchiveRow]:
        """Every session ``flt`` selects, newest first, a page at a time (the CLI's listing)."""
        offset = 0
        while True:
            found = self.page(flt, laptop_id=laptop_id, offset=offset, limit=1000)
            yield from found.rows
            if not found.more or not found.rows:
                return
            offset += len(found.rows)

    def counts(self, flt: ArchiveFilter | None = None, *, laptop_id: str = "") -> ArchiveCounts:
        """The archive's summary line's figures for ``flt`` (as :func:`store.archive.counts`)."""
        clause, values = self._where(flt, laptop_id)
        found = self._run(_COUNTS_SQL.format(where=clause), values)[0]
        return ArchiveCounts(*(int(v) for v in found))

    def session_keys(
        self, flt: ArchiveFilter | None = None, *, laptop_id: str = ""
    ) -> list[tuple[str, str]]:
        """(laptop, session id) of every session ``flt`` selects, oldest first (the order an
        export of several writes them in)."""
        clause, values = self._where(flt, laptop_id)
        return [
            (str(a), str(b))
            for a, b in self._run(
                f"SELECT m.laptop_id, m.session_id FROM kap.session_summary m WHERE {clause} "
                "ORDER BY m.started_at, m.laptop_id, m.session_id",
                values,
            )
        ]

    def laptops(self) -> list[str]:
        """The laptops registered with the archive."""
        return [str(r[0]) for r in self._run("SELECT laptop_id FROM kap.laptops ORDER BY 1")]

    def protocols_in_use(self) -> list[tuple[str, str]]:
        """(protocol id, latest name) of every protocol any session was run under."""
        found = self._run(
            "SELECT DISTINCT ON (protocol_id) protocol_id, protocol_name "
            "FROM kap.session_protocols ORDER BY protocol_id, server_received_at DESC, local_id "
            "DESC"
        )
        return sorted(((str(a), str(b)) for a, b in found), key=lambda p: p[1])

    def open_session(self, session_id: str, laptop_id: str | None = None) -> CentralSession:
        """One session materialised for the review and the exports (read-only, in memory)."""
        import psycopg

        try:
            return materialise(self._conn(), session_id, laptop_id)
        except psycopg.Error as exc:
            self._drop()
            raise explain(exc, self.url) from exc

    # -- the one write: an export's audit entry ---------------------------------------------

    def record_export(
        self, actor: str, fmt: str, destination: Path, sessions: Sequence[tuple[str, str]]
    ) -> None:
        """Record an export from the archive in ``kap.central_exports`` (who: the signed-in
        role, filled in by the server; ``actor``: the operating-system account), before its
        files are moved into place: no export leaves without its entry."""
        if not sessions:
            raise StoreError("There are no sessions to export.", "empty")
        self._run(
            "INSERT INTO kap.central_exports (actor, format, destination, sessions) "
            "VALUES (%s, %s, %s, %s) RETURNING id",
            [actor, fmt, str(destination), [f"{lap}/{sid}" for lap, sid in sessions]],
        )


__all__ = [
    "PAGE_ROWS",
    "CentralArchive",
    "CentralArchiveRow",
    "CentralPage",
    "where",
]
