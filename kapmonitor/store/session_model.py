"""The open session as the views see it: loaded once, then kept current by each write's change.

The bedside window used to keep a :class:`SessionLog` of stored dicts and patch it after each
save by reading the store again. A :class:`SessionModel` is loaded once (typed rows,
:mod:`kapmonitor.domain.session_rows`) and then only *applies* the :class:`Changes` each write
returns: no second read after a commit. It answers the current values the screen shows (the
latest of each vital from the registry, the latest NEWS2, the active alarms, the phase, the first
dose, the times the schedule works from), and tells its listeners what changed, with the change
itself, so each view redraws only its part. It has no Qt: the window adapts the listener list.

It is still a :class:`SessionLog` (``current()``, ``phase()``, ``active_alarms()`` …), so the
domain rules that take a log keep working unchanged.

**Readings are not held.** A device feed writes a vitals row every second (10,800 in three hours);
holding each as a typed row cost about 340 B a reading, most of what the window grew by in the
third hour. The model built by :meth:`SessionModel.load` keeps, of the *streamed* tables
(``vitals``, ``observations``), only what the screen and the rules ask on every save or tick: the
latest value and time of each vital, the times of the vitals (the schedule's missed-check scan),
the latest row of each table, and the newest commit time. Everything else about those tables
(``current()``, ``live()``, ``all_rows()``, ``row()``, hence ``current_rows()``,
``has_baseline()``, the chart picture), and the NEWS2 rows beyond the latest, are read from
SQLite when asked: those are rare (opening
a session, a correction, a dose, a discharge check) and always as current as the store. A
correction or an out-of-order reading re-reads the kept summary from SQLite (bounded queries). A
model built :meth:`from_log` (no store to ask) holds the rows it was given, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from kapmonitor.domain.changes import Changes
from kapmonitor.domain.chart_picture import ChartPicture, picture_of
from kapmonitor.domain.clock import from_iso
from kapmonitor.domain.reading_times import ReadingTimes
from kapmonitor.domain.reference import Reference
from kapmonitor.domain.session_rows import StoredRow, VitalScoreRow, row_reader, typed_row
from kapmonitor.domain.vitals import VITAL_KEYS
from kapmonitor.store.session_store import SessionLog, SessionStore

Listener = Callable[[Changes], None]
# NEWS2 rows are shown, not kept: a device feed would hold 10,800 of them; only the latest is.
SHOWN_NOT_KEPT = frozenset({"vital_scores"})
# One row per reading at up to 1 Hz: summarised in memory, read from SQLite when asked.
STREAMED = ("vitals", "observations")
# What the model reads from SQLite when asked rather than holding (with a store to ask).
READ_WHEN_ASKED = (*STREAMED, *sorted(SHOWN_NOT_KEPT))
# Device readings (issue 13) at up to 1 Hz: only the latest pending value of each vital is kept.
DEVICE_TABLES = ("device_readings", "device_reading_reviews")
_CURRENT = (
    "voided = 0 AND id NOT IN (SELECT supersedes_id FROM {t} WHERE supersedes_id IS NOT NULL)"
)


class SessionModel(SessionLog):
    """One session's record, kept current by :meth:`apply`; see the module docstring."""

    def __init__(
        self,
        session: dict[str, Any],
        clinicians: list[str],
        rows: dict[str, list[Any]] | None = None,
        db: Database | None = None,
    ) -> None:
        super().__init__(session, clinicians, rows or {})
        self.listeners: list[Listener] = []
        self._db = db  # where the streamed tables are read when asked (None: held in rows)
        self._current: dict[str, list[Any]] = {}
        # Inside read_once(): each streamed table's rows, read from SQLite once for the block.
        self._once: dict[str, list[StoredRow]] | None = None
        self._vitals_times: ReadingTimes | None = None
        self._latest_news2: VitalScoreRow | None = None
        # The streamed tables' summary (kept only when they are read from ``db``).
        self._latest: dict[str, tuple[Any, str, tuple[str, int]]] = {}
        self._last_row: dict[str, StoredRow | None] = {}
        self._streamed_recorded_at = ""
        # The newest still-pending device reading of each vital (not part of the record yet).
        self._pending: dict[str, StoredRow] = {}
        for table in SHOWN_NOT_KEPT:
            kept = self.rows.get(table, [])
            scores = [r for r in kept if isinstance(r, VitalScoreRow)]
            self._latest_news2 = max(scores, key=_score_order, default=None)
            self.rows[table] = []
        if db is not None:
            for table in STREAMED:
                held = self.rows.pop(table, [])
                stamps = [r.recorded_at for r in held]
                self._streamed_recorded_at = max([self._streamed_recorded_at, *stamps])
            self._resummarise()
            self._read_pending(db)

    def _read_pending(self, db: Database) -> None:
        """The newest undecided device reading of each vital, from SQLite (bounded: one row
        per vital)."""
        cursor = db.execute(
            "SELECT r.* FROM device_readings r WHERE r.session_id = ? AND r.value IS NOT NULL "
            "AND r.id NOT IN (SELECT device_reading_id FROM device_reading_reviews "
            "WHERE session_id = ?) AND r.id = (SELECT id FROM device_readings x WHERE "
            "x.session_id = r.session_id AND x.vital = r.vital AND x.value IS NOT NULL AND x.id "
            "NOT IN (SELECT device_reading_id FROM device_reading_reviews WHERE session_id = ?) "
            "ORDER BY x.observed_at DESC, x.id DESC LIMIT 1)",
            [self.id, self.id, self.id],
        )
        make = row_reader("device_readings", [d[0] for d in cursor.description])
        self._pending = {row["vital"]: row for row in map(make, cursor)}

    @classmethod
    def load(cls, store: SessionStore, session_id: str) -> SessionModel:
        """Read the session once, every row typed; the streamed tables are summarised, then
        read from the store when asked (see the module docstring)."""
        log = store.load(session_id)
        return cls(log.session, log.clinicians, log.rows, db=store.db)

    @classmethod
    def from_log(cls, log: SessionLog) -> SessionModel:
        rows = {
            table: [typed_row(table, r) for r in table_rows]
            for table, table_rows in log.rows.items()
        }
        return cls(log.session, log.clinicians, rows)

    # --- applying what a write did ----------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """``listener(changes)`` runs after each applied change (the Qt side adapts it)."""
        self.listeners.append(listener)

    def apply(self, changes: Changes) -> None:
        """Fold one committed write in, then tell the listeners. A change of another session
        is refused: showing it here would put a reading on the wrong patient."""
        if changes.session_id != self.id:
            raise ValueError("That change belongs to another session")
        for table, row in changes.rows:
            self._add(table, row)
        for listener in list(self.listeners):
            listener(changes)

    def _add(self, table: str, row: StoredRow) -> None:
        if table in DEVICE_TABLES:
            self._add_device(table, row)
            return
        if table in SHOWN_NOT_KEPT:
            if isinstance(row, VitalScoreRow) and (
                self._latest_news2 is None or _score_order(row) >= _score_order(self._latest_news2)
            ):
                self._latest_news2 = row
            return
        if self._db is not None and table in STREAMED:
            self._add_streamed(table, row)
            return
        self.rows.setdefault(table, []).append(row)
        cached = self._current.get(table)
        plain = row.supersedes_id is None and not row.voided
        if cached is not None and plain and (not cached or _order(cached[-1]) <= _order(row)):
            cached.append(row)  # the usual case: a new reading, the latest in time
        else:
            self._current.pop(table, None)
        if table == "vitals":
            times = self._vitals_times
            at = from_iso(row.observed_at)
            if times is not None and plain and times.can_append(at):
                times.append(at)
            else:
                self._vitals_times = None

    def _add_device(self, table: str, row: StoredRow) -> None:
        """A device reading is pending until a review row decides it; only the newest pending
        value of each vital is kept (the rows are in SQLite)."""
        if table == "device_readings":
            kept = self._pending.get(row["vital"])
            if row["value"] is not None and (kept is None or _order(kept) <= _order(row)):
                self._pending[row["vital"]] = row
            return
        decided = row["device_reading_id"]
        for vital, kept in list(self._pending.items()):
            if kept.id == decided:
                del self._pending[vital]

    def pending_values(self) -> dict[str, tuple[Any, str]]:
        """The newest device value of each vital still awaiting a clinician, with its time:
        shown apart from (lighter than) :meth:`latest_values`, which are part of the record."""
        return {
            key: (self._pending[key]["value"], self._pending[key].observed_at)
            for key in VITAL_KEYS
            if key in self._pending
        }

    def pending_readings(self) -> dict[str, StoredRow]:
        """The newest pending device reading of each vital, whole (its id, device, message):
        what the window shows lighter and the readings its confirm key names to the store."""
        return {key: self._pending[key] for key in VITAL_KEYS if key in self._pending}

    def _add_streamed(self, table: str, row: StoredRow) -> None:
        """Fold one reading into the summary; a correction, a voiding or a reading older than
        the newest re-reads the summary from SQLite (it may change any of it)."""
        self._streamed_recorded_at = max(self._streamed_recorded_at, row.recorded_at)
        last = self._last_row.get(table)
        plain = row.supersedes_id is None and not row.voided
        if not plain or (last is not None and _order(row) < _order(last)):
            self._resummarise()
            return
        self._last_row[table] = row
        if table == "vitals":
            self._fold_vitals(row)
            times = self._vitals_times
            at = from_iso(row.observed_at)
            if times is not None and times.can_append(at):
                times.append(at)
            else:
                self._vitals_times = None

    def _fold_vitals(self, row: StoredRow) -> None:
        order = _order(row)
        for key in VITAL_KEYS:
            value = row[key]
            if value is not None:
                self._latest[key] = (value, row.observed_at, order)

    def _resummarise(self) -> None:
        """Rebuild the streamed tables' summary from SQLite: bounded queries (the newest row of
        each table and of each vital), and the vitals' times as one column."""
        db = self._db
        assert db is not None
        for table in STREAMED:
            found = self._query(table, "ORDER BY observed_at DESC, id DESC LIMIT 1")
            self._last_row[table] = found[0] if found else None
        self._latest = {}
        for key in VITAL_KEYS:
            found_row = db.execute(
                f"SELECT {key}, observed_at, id FROM vitals WHERE session_id = ? "
                f"AND {key} IS NOT NULL AND {_CURRENT.format(t='vitals')} "
                "ORDER BY observed_at DESC, id DESC LIMIT 1",
                [self.id],
            ).fetchone()
            if found_row is not None:
                value, at, row_id = found_row
                self._latest[key] = (value, at, (at, row_id))
        self._vitals_times = ReadingTimes(
            from_iso(at)
            for (at,) in db.execute(
                f"SELECT observed_at FROM vitals WHERE session_id = ? "
                f"AND {_CURRENT.format(t='vitals')} ORDER BY observed_at, id",
                [self.id],
            )
        )

    def _query(self, table: str, order: str, current: bool = True) -> list[StoredRow]:
        """Typed rows of a streamed table of this session, read from SQLite."""
        assert self._db is not None
        where = f"AND {_CURRENT.format(t=table)}" if current else ""
        cursor = self._db.execute(
            f"SELECT * FROM {table} WHERE session_id = ? {where} {order}", [self.id]
        )
        make = row_reader(table, [d[0] for d in cursor.description])
        return [make(r) for r in cursor]

    def _reads(self, table: str) -> bool:
        return self._db is not None and table in READ_WHEN_ASKED

    @contextmanager
    def read_once(self) -> Iterator[None]:
        """Within the block, each streamed table is read from SQLite once (every row,
        corrections included) and ``current()``, ``live()`` and ``all_rows()`` are worked out
        from it; after it, nothing is held. Opening a three-hour 1 Hz record asked for the
        same 21,600 rows four times (the chart and big numbers, the timeline, the alarm
        levels): a third of opening the session."""
        outer = self._once is not None
        if not outer:
            self._once = {}
        try:
            yield
        finally:
            if not outer:
                self._once = None

    def _every_row(self, table: str) -> list[StoredRow]:
        """Every row of a streamed table, corrections included, in clinical order."""
        if self._once is None:
            return self._query(table, "ORDER BY observed_at, id", current=False)
        rows = self._once.get(table)
        if rows is None:
            rows = self._once[table] = self._query(table, "ORDER BY observed_at, id", False)
        return rows

    def _in_force(self, table: str) -> list[StoredRow]:
        """The current rows of a streamed table, as the ``_CURRENT`` condition selects them,
        from the rows read once."""
        rows = self._every_row(table)
        superseded = {r.supersedes_id for r in rows if r.supersedes_id is not None}
        return [r for r in rows if r.id not in superseded and not r.voided]

    # --- current values ---------------------------------------------------------------------

    def all_rows(self) -> dict[str, list[StoredRow]]:
        """Every row of every table, corrections included (what ``rows`` was before readings
        were summarised; NEWS2 rows stay out, as they were): the streamed tables read from
        SQLite. For a full redraw (the timeline), not for each save."""
        rows = dict(self.rows)
        if self._db is not None:
            for table in STREAMED:
                rows[table] = list(self._every_row(table))
        return rows

    def row(self, table: str, row_id: int) -> StoredRow:
        """One row of this session by id: the newest of a streamed table is at hand, any
        other is read from SQLite (a held table is searched)."""
        if self._reads(table):
            last = self._last_row.get(table)
            if last is not None and last.id == row_id:
                return last
            found = self._query(table, f"AND id = {int(row_id)}", current=False)
            if not found:
                raise KeyError(f"{table} row {row_id} is not in this session")
            return found[0]
        return next(r for r in reversed(self.rows.get(table, [])) if r["id"] == row_id)

    def live(self, table: str) -> list[dict[str, Any]]:
        if self._reads(table):
            if self._once is not None and table in STREAMED:  # clinical order: a live scan
                return self._in_force(table)  # type: ignore[return-value]  # orders for itself
            return self._query(table, "")  # type: ignore[return-value]
        return super().live(table)

    def current_rows(
        self, tables: tuple[str, ...] | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """As :meth:`SessionLog.current_rows`; with no ``tables``, the streamed tables too
        (read from SQLite), so a rule sees every table a fresh load would give it."""
        if tables is None and self._db is not None:
            tables = (*self.rows, *(t for t in READ_WHEN_ASKED if t not in self.rows))
        return super().current_rows(tables)

    def latest_recorded_at(self) -> datetime:
        newest = super().latest_recorded_at()
        if self._streamed_recorded_at:
            return max(newest, from_iso(self._streamed_recorded_at))
        return newest

    def current(self, table: str) -> list[dict[str, Any]]:
        """As :meth:`SessionLog.current`, kept between writes (a three-hour record is not
        re-sorted on every tick). A streamed table is read from SQLite each time (all its
        current rows, ordered by clinical time): a full redraw or a rule over the whole
        record asks it, never a save."""
        if self._reads(table):
            if self._once is not None and table in STREAMED:
                return self._in_force(table)  # type: ignore[return-value]
            return self._query(table, "ORDER BY observed_at, id")  # type: ignore[return-value]
        cached = self._current.get(table)
        if cached is None:
            cached = super().current(table)
            self._current[table] = cached
        return list(cached)

    def vitals_times(self) -> ReadingTimes:
        """The current readings' times in order: a snapshot sharing the model's storage, so the
        schedule asks about a three-hour 1 Hz record after every save without a copy."""
        if self._vitals_times is None:
            self._vitals_times = ReadingTimes(
                sorted(from_iso(r["observed_at"]) for r in self.current("vitals"))
            )
        return self._vitals_times.snapshot()

    def latest_news2(self) -> VitalScoreRow | None:
        """The newest NEWS2 score (of the newest reading it scores)."""
        return self._latest_news2

    def latest_values(self) -> dict[str, tuple[Any, str]]:
        """The latest value of each vital of the registry, with its time: the big numbers."""
        if self._db is not None:
            kept = self._latest
            return {key: kept[key][:2] for key in VITAL_KEYS if key in kept}
        latest: dict[str, tuple[Any, str]] = {}
        for row in reversed(self._current_vitals()):
            for key in VITAL_KEYS:
                if key not in latest and row[key] is not None:
                    latest[key] = (row[key], row["observed_at"])
            if len(latest) == len(VITAL_KEYS):
                break
        return {key: latest[key] for key in VITAL_KEYS if key in latest}

    def last_vitals(self) -> dict[str, tuple[Any, str]]:
        return self.latest_values()

    def chart_picture(self, ref: Reference) -> ChartPicture:
        """The session's chart picture (:mod:`kapmonitor.domain.chart_picture`): what the live
        chart, the review chart and the PDF draw; a change adds to it with ``chart_delta``."""
        return picture_of(self, ref)

    def _current_vitals(self) -> list[Any]:
        cached = self._current.get("vitals")
        return cached if cached is not None else self.current("vitals")

    def news2_for(self, vitals_id: int) -> dict[str, Any] | None:
        latest = self._latest_news2
        if latest is not None and latest.vitals_id == vitals_id:
            return latest  # type: ignore[return-value]  # a mapping view of the stored row
        return None


def _order(row: Any) -> tuple[str, int]:
    return (row["observed_at"], row["id"])


def _score_order(row: VitalScoreRow) -> tuple[str, int]:
    return (row.observed_at, row.id)
