"""What one committed write did to a session, as a value: the answer every store write returns.

Before this, the window learnt what a save had done by reading the store again (the row it had
just written, then the NEWS2 score and the alarms derived with it, then, after a first dose, the
whole session for the phase change the store adds). That was most of a save's cost with a
three-hour record on screen. The store knows exactly what its transaction wrote, so it says so:
the entry, the rows derived with it (NEWS2, alarms, acknowledgements, the dosing phase), and the
facts the schedule and the header follow. Anki's ``OpChanges`` is the model: an operation returns
what changed and each view updates only what it shows.

The rows are in the order they were written, the caller's entry first. A value is built only
after the commit returned, so whoever receives one may show it as saved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from kapmonitor.domain.clock import from_iso
from kapmonitor.domain.session_rows import (
    AlarmAcknowledgementRow,
    AlarmRow,
    DoseRow,
    PhaseChangeRow,
    StoredRow,
    VitalScoreRow,
)


@dataclass(frozen=True)
class Changes:
    """One transaction's committed rows and what they mean for the views."""

    session_id: str
    #: What the caller asked for: "insert", "correction", "dose_deferred", "signature", ...
    action: str
    #: Every row the transaction inserted, as ``(table, row)``, in write order, the entry first.
    rows: tuple[tuple[str, StoredRow], ...] = ()
    #: Audit-only happenings written with it (a dose deferral, a guard's clearance).
    audit_actions: tuple[str, ...] = field(default=())

    # --- the entry the caller wrote ---------------------------------------------------------

    @property
    def primary(self) -> tuple[str, StoredRow] | None:
        return self.rows[0] if self.rows else None

    @property
    def primary_table(self) -> str | None:
        return self.rows[0][0] if self.rows else None

    @property
    def primary_id(self) -> int | None:
        """The row id a form's save returned before there was a change object."""
        return self.rows[0][1].id if self.rows else None

    @property
    def primary_row(self) -> StoredRow | None:
        return self.rows[0][1] if self.rows else None

    @property
    def derived(self) -> tuple[tuple[str, StoredRow], ...]:
        """What the store wrote beside the entry (NEWS2, alarms, a phase change, an override)."""
        return self.rows[1:]

    # --- by kind ----------------------------------------------------------------------------

    def of(self, table: str) -> tuple[StoredRow, ...]:
        return tuple(row for t, row in self.rows if t == table)

    def tables(self) -> set[str]:
        return {t for t, _row in self.rows}

    @property
    def scores(self) -> tuple[VitalScoreRow, ...]:
        return tuple(r for r in self.of("vital_scores") if isinstance(r, VitalScoreRow))

    @property
    def alarms_raised(self) -> tuple[AlarmRow, ...]:
        return tuple(r for r in self.of("alarms") if isinstance(r, AlarmRow))

    @property
    def acknowledgements(self) -> tuple[AlarmAcknowledgementRow, ...]:
        rows = self.of("alarm_acknowledgements")
        return tuple(r for r in rows if isinstance(r, AlarmAcknowledgementRow))

    @property
    def alarms_cleared(self) -> frozenset[int]:
        """Alarm ids this write acknowledged (an acknowledged alarm leaves the banner)."""
        return frozenset(r.alarm_id for r in self.acknowledgements if not r.voided)

    @property
    def device_readings(self) -> tuple[StoredRow, ...]:
        """Device readings this write stored (issue 13), pending or confirmed with it."""
        return self.of("device_readings")

    @property
    def pending_readings(self) -> tuple[StoredRow, ...]:
        """The device readings stored here that still await a clinician (no decision written
        with them): what a view charts lighter, apart from the confirmed vitals."""
        decided = {r["device_reading_id"] for r in self.of("device_reading_reviews")}
        return tuple(r for r in self.device_readings if r.id not in decided)

    @property
    def phase_changes(self) -> tuple[PhaseChangeRow, ...]:
        return tuple(r for r in self.of("phase_changes") if isinstance(r, PhaseChangeRow))

    # --- facts the schedule and the header follow -------------------------------------------

    @property
    def phase(self) -> str | None:
        """The phase this write moved the session to, if it moved it."""
        if self.of("session_ends") and not self.rows[0][1].supersedes_id:
            return "ended"
        changes = [r for r in self.phase_changes if not r.voided]
        return changes[-1].phase if changes else None

    @property
    def dose_times(self) -> tuple[datetime, ...]:
        return tuple(from_iso(r.observed_at) for r in self.of("doses") if isinstance(r, DoseRow))

    @property
    def vitals_times(self) -> tuple[datetime, ...]:
        return tuple(from_iso(r.observed_at) for r in self.of("vitals"))

    @property
    def corrects(self) -> int | None:
        """The row id the entry supersedes, when this write was a correction."""
        row = self.primary_row
        return row.supersedes_id if row is not None else None

    @property
    def latest_recorded_at(self) -> datetime | None:
        stamps = [row.recorded_at for _t, row in self.rows]
        return from_iso(max(stamps)) if stamps else None

    def __bool__(self) -> bool:
        return bool(self.rows or self.audit_actions)
