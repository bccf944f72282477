"""Per-session quality flags: what a supervisor should look at before signing a session.

Plain Python, no Qt: computed from the stored rows of one session (as ``SessionLog.current``
returns them), the session's own protocol copy and ``now``. Nothing here reads the system clock,
so every edge is testable in milliseconds.

The flags, each in plain clinical words and sorted by time:

``missed_check`` / ``late_check`` / ``overdue_check`` (vital-sign checks against the protocol)
    Worked out by :func:`check_outcomes`, a pure function of the protocol, the session start, the
    first dose, the vitals times and the end, using the same rules as the live schedule
    (``kapmonitor.domain.schedule``, ``docs/protocols.md``):

    * **Baseline**: due at the session start. Missed when the first dose was given with no vitals
      at or before it; late (information only) when the first pre-dose set was taken more than
      the protocol's overdue grace after the start.
    * **Interval checks**: after the first dose, each check falls due ``every_minutes`` (of the
      interval that applies at that minute) after the latest reading, as the live countdown does.
      A check is **late** when it was satisfied *after* its due time + grace (exactly at the
      grace is on time), and **missed** when no reading came before the *next* check would have
      fallen due (counted from the missed due time) or before the session ended. A check that
      fell due less than the grace before the end (or before ``now`` in an open session) is not
      counted: it was never overdue. In an open session a check past its grace with no reading
      yet is ``overdue_check``.
    * **Checkpoints** (e.g. the ~40 min BP peak): done by a reading within ± the window, missed
      otherwise, exactly as ``compute_schedule`` records them in its history.
    * **Vitals before discharge**: once the session has ended, the latest reading must be at most
      ``before_discharge_window_minutes`` older than the end.

``unanswered_alarm``
    An out-of-range value (an ``alarms`` row) with no ``alarm_acknowledgements`` row for it.

``late_entry``
    An entry typed more than ``late_entry_minutes`` (default :data:`LATE_ENTRY_MINUTES`, 10 min,
    the same limit the timeline marks; ALCOA+ "contemporaneous") after the time it records.
    Every clinical table present in ``current`` is checked, and the session start itself. Rows
    the app derives from another entry in the same transaction (NEWS2 scores, alarms, the
    protocol copy, the automatic "dosing" phase) are not flagged twice, and corrections are not
    flagged: they are late by nature, carry a reason, and the report shows them beside what they
    corrected.

``unresolved_adverse_event``
    An adverse effect with no ``adverse_event_outcomes`` row closing it (resolved, resolved with
    sequelae, or fatal: the same rule as ``SessionLog.open_adverse_events``).

``override`` (every row of ``overrides``, and the audited ones)
    A clinician overrode a protocol rule (dosing without a baseline, discharge before the
    criteria, and any kind the store records later): the kind, when, who and the reason. A dose
    given under a baseline override is also a ``missed_check``, annotated with the reason: the
    check was missed *and* a clinician chose to go ahead, two things the supervisor confirms.
    Safety settings set aside during the session are kept in the audit trail rather than in a
    clinical table (the critical-alarm sound turned off, with its reason): audit rows passed
    as ``current["audit"]`` whose action is in :data:`AUDITED_OVERRIDES` are flagged the same
    way.

``discharge_override`` (a discharge assessment saved with an override reason)
    The patient was let go although the assessment found them not ready. When the first dose
    was less than the protocol's ``min_monitoring_minutes`` before the discharge (the session
    end, or the override itself while the session is open) it is an **early discharge**, and the
    flag says the minutes reached against the minutes required ("19 of the 120 min"); otherwise
    it is a discharge although not ready. Either way it lists what was not met, the reason and
    who gave it.

``large_correction``
    A correction that changed a dose (mg) or a vital sign by **more than** the protocol's
    ``correction_review_factor`` (default 2), either way: 700 mg corrected to 70 mg is 10×, HR
    60 to 160 is 2.7×; exactly the factor is not flagged. Each step of a chain of corrections is
    compared with the version it replaced *and* with the value first recorded, so 70 → 140 →
    280 cannot slip through in twofold steps. A zero on one side counts as beyond any factor. A
    dose or vital-signs set withdrawn as entered in error loses its values entirely and is
    flagged too. The flag names the old and new values, who corrected and the reason. It needs
    the superseded rows (``history``); without them corrections cannot be compared.

``no_protocol``
    The session has no stored protocol, so its checks could not be assessed (information).

Each flag has a :attr:`QualityFlag.key`; the sign-off stores the keys a supervisor confirmed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from kapmonitor.domain.clock import from_iso, to_iso
from kapmonitor.domain.protocol import DEFAULT_CORRECTION_REVIEW_FACTOR, Interval, Protocol
from kapmonitor.domain.reference import Reference, default_reference
from kapmonitor.domain.schedule import compute_schedule
from kapmonitor.domain.session_rows import (
    AdverseEventOutcomeRow,
    AdverseEventRow,
    AlarmAcknowledgementRow,
    AlarmRow,
    DischargeAssessmentRow,
    OverrideRow,
    StoredRow,
    VitalsRow,
    rows_as,
)
from kapmonitor.domain.timeline import KIND_LABELS, LATE_ENTRY_MINUTES
from kapmonitor.domain.vital_alerts import vital_readings
from kapmonitor.domain.vitals import VITAL_SIGNS

__all__ = [
    "AUDITED_OVERRIDES",
    "CLOSING_OUTCOMES",
    "LATE_ENTRY_MINUTES",
    "CheckOutcome",
    "QualityFlag",
    "change_factor",
    "check_outcomes",
    "quality_flags",
]

Severity = Literal["info", "warning"]
OutcomeStatus = Literal["on_time", "late", "missed", "overdue"]

# Audit actions that set a safety rule aside during a session, and how a flag names them.
AUDITED_OVERRIDES: dict[str, str] = {
    "alarm_sound_off": "Critical alarm sound turned off on the bedside laptop",
    # kapmonitor.domain.dose_guards: decisions written with the dose they cleared.
    "dose_bp_proceed": "Dose given although the BP before it was above the protocol's caution line",
    "dose_bp_override": "Dose given although the BP before it was at the protocol's hard limit",
    "dose_two_person_check": (
        "Dose outside the protocol's dose guards, confirmed by the second attending clinician"
    ),
}

# Outcomes that close an adverse effect (as SessionLog.open_adverse_events counts them).
CLOSING_OUTCOMES = ("resolved", "resolved_with_sequelae", "fatal")

# Rows written by the app in the same transaction as another entry: their times are that
# entry's times, so a late entry is flagged once, on the entry a clinician typed.
_DERIVED_TABLES = frozenset({"vital_scores", "alarms", "session_protocols"})
# Review records, not clinical entries: a review comment's observed_at is the moment of the
# session it is about, typed (by design) long after.
_REVIEW_TABLES = frozenset({"signatures", "addenda", "review_comments", "audit"})
# The order in which tables claim a (observed_at, recorded_at) pair before derived phase rows.
_PRIMARY_FIRST = ("sessions", "doses")

_SEVERITY: dict[str, Severity] = {
    "missed_check": "warning",
    "overdue_check": "warning",
    "late_check": "info",
    "unanswered_alarm": "warning",
    "override": "warning",
    "discharge_override": "warning",
    "large_correction": "warning",
    "late_entry": "info",
    "unresolved_adverse_event": "warning",
    "no_protocol": "info",
}


@dataclass(frozen=True)
class QualityFlag:
    code: str  # missed_check, late_check, overdue_check, unanswered_alarm, late_entry, ...
    severity: Severity
    message: str  # plain clinical words
    observed_at: datetime | None  # the clinical time it is about (None: the whole session)
    table: str | None = None  # the row it points at, when it points at one
    row_id: int | None = None

    @property
    def key(self) -> str:
        """The flag as the supervisor saw it, to record what a signature confirmed.

        The words are part of it: a flag whose message changed (the record was corrected after
        the dialog opened) is a different flag and must be confirmed again."""
        at = to_iso(self.observed_at) if self.observed_at is not None else ""
        row = "" if self.row_id is None else str(self.row_id)
        return "|".join((self.code, self.table or "", row, at, self.message))

    def as_record(self) -> dict[str, Any]:
        """What is stored with a signature for each confirmed flag (JSON-ready)."""
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "observed_at": to_iso(self.observed_at) if self.observed_at is not None else None,
            "table": self.table,
            "row_id": self.row_id,
        }


@dataclass(frozen=True)
class CheckOutcome:
    """How one scheduled vital-signs check went."""

    kind: Literal["baseline", "interval", "checkpoint", "before_discharge"]
    label: str
    due_at: datetime
    status: OutcomeStatus
    satisfied_at: datetime | None = None  # the reading that satisfied it (late or on time)
    grace: timedelta = timedelta(0)  # the protocol's overdue grace
    window: timedelta = timedelta(0)  # a checkpoint's ± window; the before-discharge window


# --- Checks against the protocol: a pure function of times ------------------------------------


def _minutes(value: float) -> timedelta:
    return timedelta(minutes=value)


def _every_label(every: float) -> str:
    number = str(int(every)) if every == int(every) else f"{every:g}"
    return f"Vitals (every {number} min)"


def _next_due(
    intervals: Sequence[Interval], first_dose: datetime, anchor: datetime
) -> tuple[datetime, float] | None:
    """When the cadence check after a reading at ``anchor`` falls due, and its cadence: the
    rule of ``schedule._interval_check`` (the interval at the anchor's minute since dose; in a
    gap, the next interval's start; after the last interval, none)."""
    minute = (anchor - first_dose).total_seconds() / 60
    for interval in intervals:
        if interval.from_minute <= minute < interval.to_minute:
            return anchor + _minutes(interval.every_minutes), interval.every_minutes
    later = next((i for i in intervals if i.from_minute > minute), None)
    if later is None:
        return None
    return first_dose + _minutes(later.from_minute), later.every_minutes


def _baseline_outcome(
    session_start: datetime,
    first_dose: datetime | None,
    readings: list[datetime],
    horizon: datetime,
    ended: bool,
    grace: timedelta,
) -> CheckOutcome | None:
    label = "Baseline vitals"
    pre = [t for t in readings if first_dose is None or t <= first_dose]
    if pre:
        first = pre[0]
        status: OutcomeStatus = "late" if first > session_start + grace else "on_time"
        return CheckOutcome("baseline", label, session_start, status, first, grace)
    if first_dose is not None:
        return CheckOutcome("baseline", label, session_start, "missed", None, grace)
    if not ended and horizon > session_start + grace:
        return CheckOutcome("baseline", label, session_start, "overdue", None, grace)
    return None


def _interval_outcomes(
    protocol: Protocol,
    first_dose: datetime,
    readings: list[datetime],
    horizon: datetime,
    ended: bool,
    grace: timedelta,
) -> list[CheckOutcome]:
    intervals = sorted(protocol.intervals, key=lambda i: i.from_minute)
    post = [t for t in readings if first_dose <= t <= horizon]
    outcomes: list[CheckOutcome] = []
    anchor = first_dose
    index = 0  # the first reading after the anchor
    while True:
        while index < len(post) and post[index] <= anchor:
            index += 1
        due = _next_due(intervals, first_dose, anchor)
        if due is None or due[0] >= horizon:
            break
        due_at, every = due
        label = _every_label(every)
        following = _next_due(intervals, first_dose, due_at)
        limit = following[0] if following is not None else None
        reading = post[index] if index < len(post) else None
        if reading is not None and (limit is None or reading < limit):
            status: OutcomeStatus = "on_time" if reading <= due_at + grace else "late"
            outcomes.append(CheckOutcome("interval", label, due_at, status, reading, grace))
            anchor = reading
            continue
        if limit is None or limit > horizon:
            # The session ended (or it is now) before the next check would have fallen due.
            if horizon > due_at + grace:
                missed: OutcomeStatus = "missed" if ended else "overdue"
                outcomes.append(CheckOutcome("interval", label, due_at, missed, None, grace))
            break
        outcomes.append(CheckOutcome("interval", label, due_at, "missed", None, grace))
        anchor = due_at  # the cadence continues from the missed due time
    return outcomes


def _checkpoint_outcomes(
    protocol: Protocol,
    session_start: datetime,
    first_dose: datetime,
    readings: list[datetime],
    horizon: datetime,
    ended: bool,
    grace: timedelta,
    vitals_rows: Sequence[StoredRow] = (),
) -> list[CheckOutcome]:
    """Read from the live schedule's own history, so the report and the window agree."""
    state = compute_schedule(
        protocol,
        session_start,
        first_dose,
        readings,
        horizon,
        "ended" if ended else "monitoring",
        horizon if ended else None,
        # Per-vital readings, so a checkpoint that names vitals (the ~40 min BP check) is met
        # only by a reading containing them, as in the bedside window.
        vital_readings=vital_readings(vitals_rows, (), ()),
    )
    windows = {p.label: _minutes(p.window_minutes) for p in protocol.checkpoints}
    outcomes = []
    for check in state.history:
        if check.kind != "checkpoint":
            continue
        status: OutcomeStatus = "on_time" if check.status == "done" else "missed"
        outcomes.append(
            CheckOutcome(
                "checkpoint",
                check.label,
                check.due_at,
                status,
                check.satisfied_at,
                grace,
                windows.get(check.label, timedelta(0)),
            )
        )
    return outcomes


def _before_discharge_outcome(
    protocol: Protocol, readings: list[datetime], end: datetime
) -> CheckOutcome:
    """Due ``before_discharge_window_minutes`` before the end: the latest reading at or before
    the end must be no older than that (exactly the window old is on time)."""
    window = _minutes(protocol.before_discharge_window_minutes)
    before = [t for t in readings if t <= end]
    due_at = end - window
    latest = before[-1] if before else None
    status: OutcomeStatus = "on_time" if latest is not None and latest >= due_at else "missed"
    return CheckOutcome(
        "before_discharge", "Vitals before discharge", due_at, status, latest, window=window
    )


def check_outcomes(
    protocol: Protocol,
    session_start: datetime,
    first_dose: datetime | None,
    vitals_times: Iterable[datetime],
    ended_at: datetime | None,
    now: datetime,
    vitals_rows: Sequence[StoredRow] = (),
) -> list[CheckOutcome]:
    """Every scheduled check of the session and how it went, in order of due time.

    ``vitals_rows`` (the current vitals rows), when given, let a checkpoint that names vitals
    be met only by a reading that contains them (an HR-only set is no ~40 min BP check).

    ``ended_at`` is the session end (None while it is open; then ``now`` is the horizon). All
    times must be timezone-aware. See the module docstring for the rules and their edges.
    """
    for name, value in (("session_start", session_start), ("now", now)):
        if value.tzinfo is None:
            raise ValueError(f"{name} must be a timezone-aware datetime (UTC)")
    readings = sorted(vitals_times)
    grace = _minutes(protocol.overdue_grace_minutes)
    ended = ended_at is not None
    horizon = ended_at if ended_at is not None else now
    outcomes: list[CheckOutcome] = []
    baseline = _baseline_outcome(session_start, first_dose, readings, horizon, ended, grace)
    if baseline is not None:
        outcomes.append(baseline)
    if first_dose is not None:
        outcomes += _checkpoint_outcomes(
            protocol, session_start, first_dose, readings, horizon, ended, grace, vitals_rows
        )
        outcomes += _interval_outcomes(protocol, first_dose, readings, horizon, ended, grace)
        if ended_at is not None:
            outcomes.append(_before_discharge_outcome(protocol, readings, ended_at))
    return sorted(outcomes, key=lambda o: o.due_at)


# --- Words ------------------------------------------------------------------------------------


def _clock(delta: timedelta) -> str:
    """``h:mm`` (``h:mm:ss`` when the seconds matter) of a non-negative span."""
    total = round(abs(delta).total_seconds())
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if seconds else f"{hours}:{minutes:02d}"


def _span(delta: timedelta) -> str:
    """A duration in words: ``12 min``, ``10 min 1 s``, ``1 h 05 min``, ``40 s``."""
    total = round(abs(delta).total_seconds())
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes and seconds:
        return f"{minutes} min {seconds} s"
    return f"{minutes} min" if minutes else f"{seconds} s"


class _Words:
    """Clinical times relative to the dose (or the session start before any dose)."""

    def __init__(self, session_start: datetime, first_dose: datetime | None) -> None:
        self.start = session_start
        self.dose = first_dose

    def when(self, t: datetime) -> str:
        if self.dose is None:
            return f"{_clock(t - self.start)} after the session started"
        if t < self.dose:
            return f"{_clock(self.dose - t)} before dose"
        return f"{_clock(t - self.dose)} after dose"


def _check_flag(
    outcome: CheckOutcome, words: _Words, rows_at: Mapping[datetime, int]
) -> QualityFlag:
    def flag(
        code: str, message: str, at: datetime | None, reading: datetime | None = None
    ) -> QualityFlag:
        row_id = rows_at.get(reading) if reading is not None else None
        table = "vitals" if row_id is not None else None
        return QualityFlag(code, _SEVERITY[code], message, at, table, row_id)

    taken = outcome.satisfied_at
    if outcome.kind == "baseline":
        if outcome.status == "late":
            assert taken is not None
            return flag(
                "late_check",
                f"Baseline vitals were taken {_span(taken - outcome.due_at)} after the session "
                f"started (due within {_span(outcome.grace)})",
                taken,
                taken,
            )
        if outcome.status == "missed":
            return flag(
                "missed_check", "The first dose was given without baseline vitals", words.dose
            )
        return flag(
            "overdue_check",
            "Baseline vitals are overdue: none recorded since the session started",
            outcome.due_at,
        )
    if outcome.kind == "before_discharge":
        latest = f"the latest were at {words.when(taken)}" if taken else "none were recorded"
        end = outcome.due_at + outcome.window
        return flag(
            "missed_check",
            f"No vitals in the {_span(outcome.window)} before the session ended ({latest})",
            end,
            taken,
        )
    due = f"{outcome.label} due at {words.when(outcome.due_at)}"
    if outcome.kind == "checkpoint":
        return flag(
            "missed_check",
            f"{due}: no reading within ± {_span(outcome.window)}",
            outcome.due_at,
        )
    if outcome.status == "late":
        assert taken is not None
        return flag(
            "late_check", f"{due} were recorded {_span(taken - outcome.due_at)} late", taken, taken
        )
    if outcome.status == "overdue":
        return flag("overdue_check", f"{due} are overdue: not yet recorded", outcome.due_at)
    return flag("missed_check", f"{due} were not recorded", outcome.due_at)


# --- The flags --------------------------------------------------------------------------------


def _times(rows: Iterable[StoredRow]) -> list[datetime]:
    return [from_iso(r.observed_at) for r in rows]


def _protocol_flags(
    session: Mapping[str, Any],
    current: Mapping[str, list[dict[str, Any]]],
    protocol: Protocol | None,
    now: datetime,
    words: _Words,
) -> list[QualityFlag]:
    if protocol is None:
        return [
            QualityFlag(
                "no_protocol",
                _SEVERITY["no_protocol"],
                "No protocol is stored with this session: its checks could not be assessed",
                None,
            )
        ]
    vitals = rows_as(VitalsRow, current.get("vitals", []))
    rows_at = {from_iso(r.observed_at): r.id for r in vitals}
    ends = current.get("session_ends", [])
    ended_at = from_iso(ends[-1].observed_at) if ends else None
    outcomes = check_outcomes(
        protocol, from_iso(session["observed_at"]), words.dose, rows_at, ended_at, now, vitals
    )
    flags = [_check_flag(o, words, rows_at) for o in outcomes if o.status != "on_time"]
    overrides = [
        r
        for r in rows_as(OverrideRow, current.get("overrides", []))
        if r.kind == "dose_without_baseline"
    ]
    if overrides:
        reason = overrides[-1].reason
        flags = [
            QualityFlag(
                f.code,
                f.severity,
                f"{f.message} (overridden: {reason})",
                f.observed_at,
                "overrides",
                overrides[-1].id,
            )
            if f.code == "missed_check" and f.message.startswith("The first dose")
            else f
            for f in flags
        ]
    return flags


def _alarm_flags(current: Mapping[str, Sequence[StoredRow]], words: _Words) -> list[QualityFlag]:
    acknowledgements = rows_as(AlarmAcknowledgementRow, current.get("alarm_acknowledgements", []))
    answered = {r.alarm_id for r in acknowledgements}
    sources: dict[str, set[int]] = {
        table: {r.id for r in current[table]}
        for table in ("vitals", "observations")
        if table in current
    }
    flags = []
    for alarm in rows_as(AlarmRow, current.get("alarms", [])):
        if alarm.id in answered:
            continue
        at = from_iso(alarm.observed_at)
        live = sources.get(alarm.source_table)
        corrected = (
            " (the reading was later corrected)"
            if live is not None and (alarm.source_id not in live)
            else ""
        )
        flags.append(
            QualityFlag(
                "unanswered_alarm",
                _SEVERITY["unanswered_alarm"],
                f"No documented response to the alarm at {words.when(at)}: "
                f"{alarm.message}{corrected}",
                at,
                "alarms",
                alarm.id,
            )
        )
    return flags


def _late_entry_flags(
    session: Mapping[str, Any],
    current: Mapping[str, list[dict[str, Any]]],
    words: _Words,
    late_after: timedelta,
) -> list[QualityFlag]:
    tables: list[tuple[str, list[Mapping[str, Any]]]] = [("sessions", [session])]
    primary = [t for t in _PRIMARY_FIRST if t in current]
    skip = _DERIVED_TABLES | _REVIEW_TABLES
    rest = [t for t in current if t not in primary and t not in skip]
    tables += [(t, list(current[t])) for t in (*primary, *rest)]
    claimed: set[tuple[str, str]] = set()
    flags = []
    for table, rows in tables:
        for row in rows:
            if row.get("supersedes_id") is not None:
                continue  # a correction: late by nature, shown with its reason
            pair = (row["observed_at"], row["recorded_at"])
            if table == "phase_changes" and pair in claimed:
                continue  # written by the app with the session start or the first dose
            claimed.add(pair)
            observed, recorded = from_iso(pair[0]), from_iso(pair[1])
            delay = recorded - observed
            if delay <= late_after:
                continue
            kind = "Session start" if table == "sessions" else KIND_LABELS.get(table, table)
            who = f" by {row['recorded_by']}" if row.get("recorded_by") else ""
            flags.append(
                QualityFlag(
                    "late_entry",
                    _SEVERITY["late_entry"],
                    f"{kind} observed {words.when(observed)} was entered {_span(delay)} later{who}",
                    observed,
                    table,
                    row.get("id") if table != "sessions" else None,
                )
            )
    return flags


def _adverse_event_flags(
    current: Mapping[str, Sequence[StoredRow]], words: _Words, ref: Reference
) -> list[QualityFlag]:
    outcomes: dict[int, list[AdverseEventOutcomeRow]] = {}
    for row in rows_as(AdverseEventOutcomeRow, current.get("adverse_event_outcomes", [])):
        outcomes.setdefault(row.adverse_event_id, []).append(row)
    flags = []
    for event in rows_as(AdverseEventRow, current.get("adverse_events", [])):
        recorded = outcomes.get(event.id, [])
        if any(r.outcome in CLOSING_OUTCOMES for r in recorded):
            continue
        term = (
            event.verbatim or "other"
            if event.term == "other"
            else ref.label("adverse_effects", event.term)
        )
        at = from_iso(event.observed_at)
        latest = (
            f"latest outcome: {ref.label('ae_outcomes', recorded[-1].outcome).lower()}"
            if recorded
            else "no outcome recorded"
        )
        flags.append(
            QualityFlag(
                "unresolved_adverse_event",
                _SEVERITY["unresolved_adverse_event"],
                f"Adverse effect not marked resolved: {term} (grade {event.grade}), "
                f"onset {words.when(at)}; {latest}",
                at,
                "adverse_events",
                event.id,
            )
        )
    return flags


def _by(row: StoredRow) -> str:
    return f" by {row.recorded_by}" if row.recorded_by else ""


def _override_flags(
    current: Mapping[str, Sequence[StoredRow]], words: _Words, ref: Reference
) -> list[QualityFlag]:
    """One flag per override row, whatever its kind: an override is a decision to set a rule
    aside, and the supervisor must see every one, with its reason."""
    flags = []
    for row in rows_as(OverrideRow, current.get("overrides", [])):
        at = from_iso(row.observed_at)
        label = ref.label("override_kinds", row.kind)
        flags.append(
            QualityFlag(
                "override",
                _SEVERITY["override"],
                f"Override {words.when(at)}{_by(row)}: {label}. Reason: {row.reason}",
                at,
                "overrides",
                row.id,
            )
        )
    return flags


def _audited_override_flags(
    current: Mapping[str, list[dict[str, Any]]], words: _Words
) -> list[QualityFlag]:
    """Audit rows of the session whose action sets a safety rule aside (the reason is in the
    row's JSON detail, the person is its actor)."""
    flags = []
    for row in current.get("audit", []):
        label = AUDITED_OVERRIDES.get(row.get("action", ""))
        if label is None:
            continue
        try:
            detail = json.loads(row.get("detail") or "{}")
        except (TypeError, ValueError):
            detail = {}
        reason = str(detail.get("reason", "")).strip() if isinstance(detail, dict) else ""
        at = from_iso(row["at"])
        flags.append(
            QualityFlag(
                "override",
                _SEVERITY["override"],
                f"Override {words.when(at)} by {row.get('actor') or 'unknown'}: {label}. "
                f"Reason: {reason or 'none recorded'}",
                at,
                "audit",
                row.get("id"),
            )
        )
    return flags


def _unmet(row: DischargeAssessmentRow) -> list[str]:
    try:
        reasons = json.loads(row.reasons or "[]")
    except (TypeError, ValueError):
        return []
    return [str(r) for r in reasons] if isinstance(reasons, list) else []


def _discharge_override_flags(
    current: Mapping[str, Sequence[StoredRow]], protocol: Protocol | None, words: _Words
) -> list[QualityFlag]:
    """A discharge assessment saved with an override reason: the patient left although not
    ready. The minutes are counted to the discharge itself (the session end when it came after
    the override), so an override at 19 min and a session that ran to 130 min is a discharge
    although not ready, not an early discharge."""
    ends = current.get("session_ends", [])
    ended_at = from_iso(ends[-1].observed_at) if ends else None
    flags = []
    for row in rows_as(DischargeAssessmentRow, current.get("discharge_assessments", [])):
        reason = (row.override_reason or "").strip()
        if not reason:
            continue
        at = from_iso(row.observed_at)
        left = ended_at if ended_at is not None and ended_at >= at else at
        when = f"overridden {words.when(at)}"
        if left != at:
            when += f", session ended {words.when(left)}"
        required = protocol.min_monitoring_minutes if protocol is not None else None
        reached = (left - words.dose).total_seconds() / 60 if words.dose is not None else None
        if required is not None and reached is not None and reached < required:
            # Whole minutes rounded down, as the discharge check shows them: 119.6 is not 120.
            shown = max(int(reached), 0)
            head = (
                f"Early discharge: {shown} of the {required} min of monitoring the protocol "
                f"requires since the first dose ({when})"
            )
        elif required is not None and reached is None:
            head = f"Discharge with no dose recorded to count the {required} min from ({when})"
        else:
            head = f"Discharge although not ready ({when})"
        unmet = _unmet(row)
        not_met = f". Not met: {'; '.join(unmet)}" if unmet else ""
        flags.append(
            QualityFlag(
                "discharge_override",
                _SEVERITY["discharge_override"],
                f"{head}{not_met}. Override reason{_by(row)}: {reason}",
                at,
                "discharge_assessments",
                row.id,
            )
        )
    return flags


# What a correction is judged on: the dose amount and each registry vital sign (rates by their
# short names, HR and RR, as the rest of the review page writes them).
_CORRECTED_VALUES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "doses": (("dose_mg", "Dose", " mg"),),
    "vitals": tuple(
        (v.key, v.short if v.unit == "/min" else v.alarm_name, f" {v.unit}") for v in VITAL_SIGNS
    ),
}


def change_factor(old: float, new: float) -> float:
    """How many times larger the larger value is than the smaller (1 when equal; infinite when
    exactly one of them is zero), so 700 → 70 and 70 → 700 are both 10."""
    low, high = sorted((abs(old), abs(new)))
    if high == low:
        return 1.0
    return math.inf if low == 0 else high / low


def _times_text(factor: float) -> str:
    if math.isinf(factor):
        return "from or to zero"
    return f"{factor:.1f}".rstrip("0").rstrip(".") + "×"


def _value(value: Any, unit: str) -> str:
    number = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{number}{unit}"


def _chain_start(row: StoredRow, by_id: Mapping[int, StoredRow]) -> StoredRow:
    """The version first recorded, following ``supersedes_id`` back (guarding against loops)."""
    seen = {row.id}
    while row.supersedes_id in by_id and row.supersedes_id not in seen:
        row = by_id[row.supersedes_id]
        seen.add(row.id)
    return row


def _correction_flags(
    history: Mapping[str, Sequence[StoredRow]], factor: float, words: _Words
) -> list[QualityFlag]:
    flags = []
    for table, fields in _CORRECTED_VALUES.items():
        rows = history.get(table, [])
        by_id = {r.id: r for r in rows}
        for row in rows:
            prior = row.supersedes_id
            before = by_id.get(prior) if prior is not None else None
            if before is None:
                continue  # not a correction, or the version it replaced was not given
            at = from_iso(row.observed_at)
            kind = KIND_LABELS.get(table, table)
            reason = row.correction_reason or ""
            # The compared values are fields named in _CORRECTED_VALUES (the registry's keys).
            if row.voided:
                values = ", ".join(
                    f"{label} {_value(getattr(before, key), unit)}"
                    for key, label, unit in fields
                    if getattr(before, key) is not None
                )
                flags.append(
                    QualityFlag(
                        "large_correction",
                        _SEVERITY["large_correction"],
                        f"{kind} {words.when(at)} ({values or 'no values'}) withdrawn as entered "
                        f"in error{_by(row)}. Reason: {reason}",
                        at,
                        table,
                        row.id,
                    )
                )
                continue
            first = _chain_start(before, by_id)
            changes = []
            for key, label, unit in fields:
                old, new, original = getattr(before, key), getattr(row, key), getattr(first, key)
                if old is None or new is None:
                    continue
                step = change_factor(old, new)
                overall = change_factor(original, new) if original is not None else 1.0
                if max(step, overall) <= factor:
                    continue
                text = f"{label} {_value(old, unit)} → {_value(new, unit)} ({_times_text(step)})"
                if original is not None and original != old:
                    text += f", first recorded as {_value(original, unit)}"
                changes.append(text)
            if changes:
                flags.append(
                    QualityFlag(
                        "large_correction",
                        _SEVERITY["large_correction"],
                        f"{kind} {words.when(at)} corrected{_by(row)}: {'; '.join(changes)}, "
                        f"more than the protocol's {factor:g}× review factor. Reason: {reason}",
                        at,
                        table,
                        row.id,
                    )
                )
    return flags


def quality_flags(
    session: Mapping[str, Any],
    current: Mapping[str, Sequence[Any]],
    protocol: Protocol | None,
    now: datetime,
    *,
    late_entry_minutes: float = LATE_ENTRY_MINUTES,
    ref: Reference | None = None,
    history: Mapping[str, Sequence[StoredRow]] | None = None,
) -> list[QualityFlag]:
    """The session's quality flags, sorted by time (flags about the whole session last).

    ``session`` is the ``sessions`` row; ``current`` maps a table name to its current typed rows
    (``SessionLog.current(table)``; a plain mapping for a clinical table is refused);
    ``protocol`` is the session's stored copy (None: checks are not assessed); ``now`` is the
    horizon of an open session. An entry is late when it was recorded *more than*
    ``late_entry_minutes`` after it was observed (exactly at the limit is not late). ``ref``
    supplies clinical labels (the shipped reference data by default).
    ``history`` is every stored row of each table, superseded and withdrawn ones included
    (``SessionLog.rows``): corrections are judged against the versions they replaced, which
    ``current`` no longer holds. Without it (None) only ``current`` is searched, so a correction
    whose original is not there cannot be judged. ``current["audit"]``, when given, holds the
    session's audit rows; those in :data:`AUDITED_OVERRIDES` are overrides too.
    """
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime (UTC)")
    ref = ref or default_reference()
    doses = _times(current.get("doses", []))
    words = _Words(from_iso(session["observed_at"]), min(doses) if doses else None)
    flags = [
        *_protocol_flags(session, current, protocol, now, words),
        *_alarm_flags(current, words),
        *_late_entry_flags(session, current, words, _minutes(late_entry_minutes)),
        *_adverse_event_flags(current, words, ref),
        *_override_flags(current, words, ref),
        *_audited_override_flags(current, words),
        *_discharge_override_flags(current, protocol, words),
        *_correction_flags(
            history if history is not None else current,
            protocol.correction_review_factor
            if protocol is not None
            else DEFAULT_CORRECTION_REVIEW_FACTOR,
            words,
        ),
    ]
    order = list(_SEVERITY)
    return sorted(
        flags,
        key=lambda f: (
            f.observed_at is None,
            f.observed_at or now,
            order.index(f.code) if f.code in order else len(order),
            f.message,
        ),
    )
