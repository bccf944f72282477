"""What check is due next, computed from stored times only.

Pure function of the protocol, the session's stored UTC times and ``now``: a laptop that slept or
changed time zone cannot corrupt it, and a three-hour protocol runs in a test in milliseconds.
Nothing here reads the system clock or keeps a counter.

If the clock went backwards (``now`` earlier than the latest vitals), the next check is simply
computed from the latest vitals and reported as ``upcoming``: the schedule never invents a
negative wait or a check that is overdue from the future.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from kapmonitor.domain.clock import from_iso
from kapmonitor.domain.protocol import Interval, Protocol
from kapmonitor.domain.reading_times import ReadingTimes
from kapmonitor.domain.session_rows import StoredRow, VitalsRow, rows_as
from kapmonitor.domain.vital_alerts import VITAL_NAMES, VITALS, VitalReading, latest_by_vital

CheckKind = Literal["baseline", "interval", "checkpoint", "before_discharge", "critical_recheck"]
CheckStatus = Literal["upcoming", "due", "overdue", "done", "missed"]

_NO_BASELINE_PHASES = ("recovery", "ended")
# When two checks fall due at the same moment, the more specific one is shown.
_KIND_ORDER: dict[str, int] = {
    "critical_recheck": -1,  # a value at a critical limit outranks any routine check
    "baseline": 0,
    "before_discharge": 1,
    "checkpoint": 2,
    "interval": 3,
}


@dataclass(frozen=True)
class Check:
    kind: CheckKind
    label: str  # e.g. "Baseline vitals", "Vitals (every 10 min)", "Re-check BP (critical)"
    due_at: datetime
    status: CheckStatus
    satisfied_at: datetime | None = None  # the vitals time that satisfied it


@dataclass(frozen=True)
class ScheduleState:
    next_check: Check | None  # None when nothing more is due (e.g. session ended)
    status: Literal["upcoming", "due", "overdue", "none"]
    seconds_to_due: float  # negative once due; 0 when no next check
    history: tuple[Check, ...]  # past checkpoints and the baseline, with done/missed
    dosing_blocked: bool  # baseline required and not yet taken


def _require_aware(**times: datetime | None) -> None:
    for name, value in times.items():
        if value is not None and value.tzinfo is None:
            raise ValueError(f"{name} must be a timezone-aware datetime (UTC), got {value!r}")


def _first_naive(times: Iterable[datetime]) -> datetime | None:
    """The first time without a time zone, if any (checked on every save over a 1 Hz record:
    one pass, no call per time)."""
    return next((t for t in times if t.tzinfo is None), None)


def _minutes(value: float) -> timedelta:
    return timedelta(minutes=value)


def _status(due_at: datetime, now: datetime, grace: timedelta) -> CheckStatus:
    """``due`` from due_at, ``overdue`` from due_at + grace; ``upcoming`` before."""
    if now < due_at:
        return "upcoming"
    if now < due_at + grace:
        return "due"
    return "overdue"


def _every_label(every: float) -> str:
    number = str(int(every)) if every == int(every) else f"{every:g}"
    return f"Vitals (every {number} min)"


# --- Baseline ---------------------------------------------------------------------------------


def _pre_dose(readings: Sequence[datetime], first_dose: datetime | None) -> Sequence[datetime]:
    """Readings that can serve as the baseline: any before (or at) the first dose. (``readings``
    are in time order: a 1 Hz record is searched, not scanned, on every save.)"""
    return readings if first_dose is None else readings[: bisect_right(readings, first_dose)]


def baseline_missing(
    vitals: Sequence[StoredRow], first_dose: datetime | None, required: Sequence[str]
) -> tuple[str, ...]:
    """The baseline vitals (keys of ``VITALS``, e.g. ``bp``, ``hr``, ``spo2``) that no reading
    before the first dose (any reading while no dose is recorded) contains, in ``required``'s
    order; empty when the baseline is complete. An SpO₂-only set is no baseline: BP needs both
    SBP and DBP."""
    readings = rows_as(VitalsRow, vitals)
    pre = [v for v in readings if first_dose is None or from_iso(v.observed_at) < first_dose]
    return tuple(
        name
        for name in required
        if not any(all(v.value(p) is not None for p in VITALS[name][1]) for v in pre)
    )


def baseline_missing_text(missing: Sequence[str]) -> str:
    return ", ".join(VITAL_NAMES.get(m, m) for m in missing)


def _baseline_checks(
    session_start: datetime,
    first_dose: datetime | None,
    readings: Sequence[datetime],
    now: datetime,
    phase: str,
    grace: timedelta,
) -> tuple[Check | None, Check | None]:
    """(the pending baseline check, its history entry): at most one of them is set."""
    label = "Baseline vitals"
    pre = _pre_dose(readings, first_dose)
    if pre:
        return None, Check("baseline", label, session_start, "done", satisfied_at=pre[-1])
    if first_dose is not None:
        return None, Check("baseline", label, session_start, "missed")
    if phase in _NO_BASELINE_PHASES:
        return None, None
    return Check("baseline", label, session_start, _status(session_start, now, grace)), None


# --- After the dose: interval cadence and fixed checkpoints -----------------------------------


def _interval_at(intervals: list[Interval], minute: float) -> Interval | None:
    return next((i for i in intervals if i.from_minute <= minute < i.to_minute), None)


def _interval_check(
    protocol: Protocol,
    first_dose: datetime,
    readings: Sequence[datetime],
    now: datetime,
    grace: timedelta,
) -> Check | None:
    """Due ``every_minutes`` after the latest post-dose reading (or the dose), using the interval
    that applies at that reading's minute since dose. In a gap between intervals the next one
    starts the cadence; after the last interval there is no cadence check."""
    anchor = readings[-1] if readings and readings[-1] >= first_dose else first_dose
    minute = (anchor - first_dose).total_seconds() / 60
    intervals = sorted(protocol.intervals, key=lambda i: i.from_minute)
    current = _interval_at(intervals, minute)
    if current is not None:
        due_at = anchor + _minutes(current.every_minutes)
    else:
        current = next((i for i in intervals if i.from_minute > minute), None)
        if current is None:
            return None
        due_at = first_dose + _minutes(current.from_minute)
    label = _every_label(current.every_minutes)
    return Check("interval", label, due_at, _status(due_at, now, grace))


def _closest(readings: Sequence[datetime], target: datetime) -> datetime:
    return min(readings, key=lambda t: (abs((t - target).total_seconds()), t))


def _checkpoint_checks(
    protocol: Protocol,
    first_dose: datetime,
    readings: Sequence[datetime],
    now: datetime,
    end: datetime | None,
    grace: timedelta,
    measured: Callable[[tuple[str, ...]], list[datetime]] | None = None,
) -> tuple[list[Check], list[Check]]:
    """(pending checkpoints, history). A checkpoint is done by a post-dose reading within its
    window, missed once the window has closed (or the session ended after its minute without
    one); after the end, checkpoints that were never reached are left out. A checkpoint that
    names ``vitals`` is satisfied only by a reading containing them (``measured``): the ~40 min
    BP check is not met by an HR-only set."""
    pending: list[Check] = []
    history: list[Check] = []
    for point in protocol.checkpoints:
        due_at = first_dose + _minutes(point.minute)
        window = _minutes(point.window_minutes)
        eligible = measured(point.vitals) if point.vitals and measured else readings
        # ``eligible`` is in time order: the window is found by bisection, not a scan.
        low = max(first_dose, due_at - window)
        inside = eligible[bisect_left(eligible, low) : bisect_right(eligible, due_at + window)]
        if inside:
            history.append(
                Check("checkpoint", point.label, due_at, "done", _closest(inside, due_at))
            )
        elif end is not None:
            if due_at <= end:
                history.append(Check("checkpoint", point.label, due_at, "missed"))
        elif now > due_at + window:
            history.append(Check("checkpoint", point.label, due_at, "missed"))
        else:
            pending.append(Check("checkpoint", point.label, due_at, _status(due_at, now, grace)))
    return pending, history


# --- Recovery: a recent set before discharge --------------------------------------------------


def _before_discharge_check(
    protocol: Protocol,
    session_start: datetime,
    first_dose: datetime | None,
    readings: Sequence[datetime],
    now: datetime,
    grace: timedelta,
) -> Check:
    """Due once the latest reading is older than the window (so ``upcoming`` while a recent
    reading exists); with no reading at all it has been due since the dose or the start."""
    if readings:
        due_at = readings[-1] + _minutes(protocol.before_discharge_window_minutes)
    else:
        due_at = first_dose or session_start
    return Check("before_discharge", "Vitals before discharge", due_at, _status(due_at, now, grace))


# --- After a critical value: an early re-check of that vital --------------------------------


def _critical_recheck(
    protocol: Protocol, vital_readings: Sequence[VitalReading], now: datetime, grace: timedelta
) -> Check | None:
    """Due ``critical_recheck_minutes`` after the latest reading of a vital when that reading
    was critical; any later reading of the vital satisfies it (and, if critical again, starts a
    new one). Acknowledging the alarm does not: the patient may still be there. Several vitals
    pending at once share one check, named in the order they fall due."""
    wait = _minutes(protocol.critical_recheck_minutes)
    pending = sorted(
        (reading.observed_at + wait, reading.vital)
        for reading in latest_by_vital(vital_readings).values()
        if reading.critical
    )
    if not pending:
        return None
    due_at = pending[0][0]
    names = ", ".join(VITAL_NAMES.get(vital, vital) for _due, vital in pending)
    return Check(
        "critical_recheck", f"Re-check {names} (critical)", due_at, _status(due_at, now, grace)
    )


def _measured_times(
    vital_readings: Sequence[VitalReading],
) -> Callable[[tuple[str, ...]], list[datetime]]:
    """Times of the readings that contain every one of the given vitals."""

    def times(vitals: tuple[str, ...]) -> list[datetime]:
        by_time: dict[datetime, set[str]] = {}
        for reading in vital_readings:
            by_time.setdefault(reading.observed_at, set()).add(reading.vital)
        return sorted(t for t, found in by_time.items() if set(vitals) <= found)

    return times


def _complete_baseline_times(
    vital_readings: Sequence[VitalReading], first_dose: datetime | None, required: Sequence[str]
) -> list[datetime]:
    """Pre-dose reading times from the moment every required vital had been measured."""
    seen: set[str] = set()
    times: list[datetime] = []
    for reading in sorted(vital_readings, key=lambda r: r.observed_at):
        if first_dose is not None and reading.observed_at > first_dose:
            break
        seen.add(reading.vital)
        if set(required) <= seen:
            times.append(reading.observed_at)
    return times


def _sort_key(check: Check) -> tuple[datetime, int]:
    return check.due_at, _KIND_ORDER[check.kind]


def compute_schedule(
    protocol: Protocol,
    session_start: datetime,
    first_dose: datetime | None,
    vitals_times: Sequence[datetime],
    now: datetime,
    phase: str,
    ended_at: datetime | None = None,
    vital_readings: Sequence[VitalReading] = (),
) -> ScheduleState:
    """The next check and its state.

    Rules: before the first dose, a baseline set is due at session start (``due`` at once, and
    ``overdue`` after the grace). After the dose, the next interval check is due ``every_minutes``
    (of the interval that applies at that minute since dose) after the latest vitals (or the dose
    if none since); a checkpoint is due at its minute and is satisfied by a reading within its
    window; the earliest unsatisfied one is next. In the recovery phase a ``before_discharge``
    check is due unless a reading exists within ``before_discharge_window_minutes`` of now.
    ``due`` from due_at, ``overdue`` from due_at + overdue_grace_minutes. After the session has
    ended nothing is due.

    ``vital_readings`` (see :func:`kapmonitor.domain.vital_alerts.vital_readings`) adds a
    ``critical_recheck``: when the latest reading of a vital was critical, that vital is due
    again ``critical_recheck_minutes`` after it, in any phase, until a later reading of it.

    Any vitals time at or before the first dose (or any at all before a dose) is a baseline.
    ``dosing_blocked`` is true while the protocol requires a baseline and none is complete (with
    ``vital_readings``: the protocol's ``baseline_vitals`` all measured before the dose).
    """
    _require_aware(session_start=session_start, first_dose=first_dose, now=now, ended_at=ended_at)
    # A ReadingTimes is aware and in order by construction: a 1 Hz record is neither checked
    # nor copied on every save.
    readings: Sequence[datetime]
    if isinstance(vitals_times, ReadingTimes):
        readings = vitals_times
    else:
        _require_aware(vitals_time=_first_naive(vitals_times))
        readings = sorted(vitals_times)
    _require_aware(vital_reading=_first_naive(r.observed_at for r in vital_readings))
    grace = _minutes(protocol.overdue_grace_minutes)
    ended = ended_at is not None or phase == "ended"
    end = (ended_at or now) if ended else None

    pending: list[Check] = []
    history: list[Check] = []
    # With per-vital readings, only readings that complete the protocol's baseline vitals (BP,
    # HR and SpO₂ by default) count: an SpO₂-only set leaves the baseline due.
    baseline_readings = (
        _complete_baseline_times(vital_readings, first_dose, protocol.baseline_vitals)
        if vital_readings
        else readings
    )
    baseline_due, baseline_done = _baseline_checks(
        session_start, first_dose, baseline_readings, now, phase, grace
    )
    pending.extend([baseline_due] if baseline_due else [])
    history.extend([baseline_done] if baseline_done else [])
    if first_dose is not None:
        points_pending, points_history = _checkpoint_checks(
            protocol,
            first_dose,
            readings,
            now,
            end,
            grace,
            # Without per-vital readings (an older caller), any reading counts as before.
            _measured_times(vital_readings) if vital_readings else None,
        )
        pending.extend(points_pending)
        history.extend(points_history)
        cadence = _interval_check(protocol, first_dose, readings, now, grace)
        pending.extend([cadence] if cadence else [])
    recheck = _critical_recheck(protocol, vital_readings, now, grace)
    pending.extend([recheck] if recheck else [])
    if phase == "recovery":
        pending.append(
            _before_discharge_check(protocol, session_start, first_dose, readings, now, grace)
        )

    next_check = None if ended or not pending else min(pending, key=_sort_key)
    return ScheduleState(
        next_check=next_check,
        status=next_check.status if next_check else "none",
        seconds_to_due=(next_check.due_at - now).total_seconds() if next_check else 0.0,
        history=tuple(sorted(history, key=_sort_key)),
        dosing_blocked=protocol.baseline_required
        and not (baseline_readings if first_dose is None else readings),
    )
