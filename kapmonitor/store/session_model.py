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
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from kapmonitor.domain.changes import Changes
from kapmonitor.domain.chart_picture import ChartPicture, picture_of
from kapmonitor.domain.clock import from_iso
from kapmonitor.domain.reference import Reference
from kapmonitor.domain.session_rows import StoredRow, VitalScoreRow, typed_row
from kapmonitor.domain.vitals import VITAL_KEYS
from kapmonitor.store.session_store import SessionLog, SessionStore

Listener = Callable[[Changes], None]
# NEWS2 rows are shown, not kept: a device feed would hold 10,800 of them; only the latest is.
SHOWN_NOT_KEPT = frozenset({"vital_scores"})


class SessionModel(SessionLog):
    """One session's record, kept current by :meth:`apply`; see the module docstring."""

    def __init__(
        self,
        session: dict[str, Any],
        clinicians: list[str],
        rows: dict[str, list[Any]] | None = None,
    ) -> None:
        super().__init__(session, clinicians, rows or {})
        self.listeners: list[Listener] = []
        self._current: dict[str, list[Any]] = {}
        self._vitals_times: list[datetime] | None = None
        self._latest_news2: VitalScoreRow | None = None
        for table in SHOWN_NOT_KEPT:
            kept = self.rows.get(table, [])
            scores = [r for r in kept if isinstance(r, VitalScoreRow)]
            self._latest_news2 = max(scores, key=_score_order, default=None)
            self.rows[table] = []

    @classmethod
    def load(cls, store: SessionStore, session_id: str) -> SessionModel:
        """Read the session once, every row typed."""
        return cls.from_log(store.load(session_id))

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
        if table in SHOWN_NOT_KEPT:
            if isinstance(row, VitalScoreRow) and (
                self._latest_news2 is None or _score_order(row) >= _score_order(self._latest_news2)
            ):
                self._latest_news2 = row
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
            if times is not None and plain and (not times or times[-1] <= at):
                times.append(at)
            else:
                self._vitals_times = None

    # --- current values ---------------------------------------------------------------------

    def current(self, table: str) -> list[dict[str, Any]]:
        """As :meth:`SessionLog.current`, kept between writes (a three-hour record is not
        re-sorted on every tick)."""
        cached = self._current.get(table)
        if cached is None:
            cached = super().current(table)
            self._current[table] = cached
        return list(cached)

    def vitals_times(self) -> list[datetime]:
        if self._vitals_times is None:
            self._vitals_times = [from_iso(r["observed_at"]) for r in self.current("vitals")]
        return list(self._vitals_times)

    def latest_news2(self) -> VitalScoreRow | None:
        """The newest NEWS2 score (of the newest reading it scores)."""
        return self._latest_news2

    def latest_values(self) -> dict[str, tuple[Any, str]]:
        """The latest value of each vital of the registry, with its time: the big numbers."""
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
