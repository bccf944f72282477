"""The check schedule on a full three-hour esketamine protocol, on given times, in milliseconds.

Times are built from one fixed start; nothing reads the system clock, so the whole session (and a
clock that jumps backwards) can be replayed exactly.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta

import pytest

from kapmonitor.domain.clock import to_iso
from kapmonitor.domain.protocol import (
    DEFAULT_CRITICAL_RECHECK_MINUTES,
    Interval,
    Protocol,
    ProtocolError,
    load_protocols,
    parse_protocol,
)
from kapmonitor.domain.schedule import ScheduleState, compute_schedule
from kapmonitor.domain.session_rows import AlarmRow, StoredRow
from kapmonitor.domain.vital_alerts import (
    Level,
    VitalReading,
    current_levels,
    latest_by_vital,
    vital_readings,
)
from kapmonitor.paths import resources_dir
from tests.factories import stored_row

START = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
DOSE = START + timedelta(minutes=10)
MS = timedelta(milliseconds=1)


def at(minutes: float) -> datetime:
    """A time ``minutes`` after the session start."""
    return START + timedelta(minutes=minutes)


def after_dose(minutes: float) -> datetime:
    return DOSE + timedelta(minutes=minutes)


@pytest.fixture(scope="module")
def rems() -> Protocol:
    return load_protocols([resources_dir() / "protocols"]).protocols["esketamine-rems"]


def schedule(
    protocol: Protocol,
    vitals: list[datetime],
    now: datetime,
    phase: str = "monitoring",
    first_dose: datetime | None = DOSE,
    ended_at: datetime | None = None,
) -> ScheduleState:
    return compute_schedule(protocol, START, first_dose, vitals, now, phase, ended_at)


# --- Before the dose --------------------------------------------------------------------------


def test_baseline_is_due_at_start_then_overdue_after_the_grace(rems: Protocol) -> None:
    assert rems.overdue_grace_minutes == 5
    state = schedule(rems, [], START, phase="preparation", first_dose=None)
    assert state.next_check is not None
    assert state.next_check.kind == "baseline"
    assert state.next_check.due_at == START
    assert (state.status, state.seconds_to_due) == ("due", 0.0)
    assert state.dosing_blocked
    almost = schedule(rems, [], at(5) - MS, phase="preparation", first_dose=None)
    assert almost.status == "due"
    assert almost.seconds_to_due == pytest.approx(-(5 * 60 - 0.001))
    late = schedule(rems, [], at(5), phase="dosing", first_dose=None)
    assert late.status == "overdue"
    assert late.dosing_blocked


def test_dosing_is_blocked_until_a_baseline_exists(rems: Protocol) -> None:
    state = schedule(rems, [at(3)], at(4), phase="preparation", first_dose=None)
    assert not state.dosing_blocked
    assert state.next_check is None and state.status == "none" and state.seconds_to_due == 0
    [baseline] = state.history
    assert (baseline.kind, baseline.status, baseline.satisfied_at) == ("baseline", "done", at(3))


def test_a_protocol_without_a_required_baseline_never_blocks(rems: Protocol) -> None:
    relaxed = dataclasses.replace(rems, baseline_required=False)
    state = schedule(relaxed, [], at(1), phase="preparation", first_dose=None)
    assert not state.dosing_blocked
    assert state.next_check is not None and state.next_check.kind == "baseline"


def test_a_dose_without_baseline_records_it_missed(rems: Protocol) -> None:
    state = schedule(rems, [], after_dose(1))
    assert [(c.kind, c.status) for c in state.history] == [("baseline", "missed")]
    assert state.dosing_blocked  # no vitals at all: take a set before any top-up


def test_latest_pre_dose_reading_is_the_baseline(rems: Protocol) -> None:
    state = schedule(rems, [at(2), at(8), after_dose(5)], after_dose(6))
    assert state.history[0].satisfied_at == at(8)


# --- After the dose: the 10-min cadence and the 40-min checkpoint -----------------------------


def test_interval_comes_due_and_goes_overdue_at_the_exact_minutes(rems: Protocol) -> None:
    vitals = [at(3)]
    assert schedule(rems, vitals, after_dose(10) - MS).status == "upcoming"
    due = schedule(rems, vitals, after_dose(10))
    assert due.next_check is not None
    assert (due.next_check.kind, due.next_check.label) == ("interval", "Vitals (every 10 min)")
    assert due.next_check.due_at == after_dose(10)
    assert (due.status, due.seconds_to_due) == ("due", 0.0)
    assert schedule(rems, vitals, after_dose(15) - MS).status == "due"
    assert schedule(rems, vitals, after_dose(15)).status == "overdue"
    # A reading restarts the cadence from the reading, not from the missed due time.
    later = schedule(rems, [*vitals, after_dose(17)], after_dose(17))
    assert later.next_check is not None and later.next_check.due_at == after_dose(27)
    assert later.status == "upcoming" and later.seconds_to_due == 600


def test_checkpoint_is_due_at_40_and_satisfied_within_its_window(rems: Protocol) -> None:
    vitals = [at(3), after_dose(10), after_dose(20), after_dose(30)]
    state = schedule(rems, vitals, after_dose(40))
    assert state.next_check is not None
    assert state.next_check.kind == "checkpoint"  # wins the tie with the 10-min interval
    assert state.next_check.label == "REMS BP check (~40 min)"
    assert (state.next_check.due_at, state.status) == (after_dose(40), "due")
    assert schedule(rems, vitals, after_dose(45)).status == "overdue"

    early = schedule(rems, [*vitals, after_dose(37)], after_dose(38))
    checkpoint = [c for c in early.history if c.kind == "checkpoint"]
    assert [(c.status, c.satisfied_at) for c in checkpoint] == [("done", after_dose(37))]
    assert early.next_check is not None
    assert (early.next_check.kind, early.next_check.due_at) == ("interval", after_dose(47))

    edge = schedule(rems, [*vitals, after_dose(45)], after_dose(45))
    assert [c.status for c in edge.history if c.kind == "checkpoint"] == ["done"]
    outside = schedule(rems, [*vitals, after_dose(45) + MS], after_dose(46))
    assert [c.status for c in outside.history if c.kind == "checkpoint"] == ["missed"]


def test_a_checkpoint_whose_window_closed_is_missed(rems: Protocol) -> None:
    assert rems.checkpoints[0].window_minutes == 5
    vitals = [at(3), after_dose(30)]
    open_window = schedule(rems, vitals, after_dose(45))
    assert open_window.next_check is not None
    assert open_window.next_check.kind == "checkpoint"  # ties with the interval at 40
    assert open_window.status == "overdue"
    closed = schedule(rems, vitals, after_dose(45) + MS)
    assert [(c.kind, c.status) for c in closed.history] == [
        ("baseline", "done"),
        ("checkpoint", "missed"),
    ]
    assert closed.next_check is not None and closed.next_check.kind == "interval"


def test_cadence_changes_to_15_min_after_minute_90(rems: Protocol) -> None:
    before = schedule(rems, [at(3), after_dose(85)], after_dose(86))
    assert before.next_check is not None and before.next_check.due_at == after_dose(95)
    after = schedule(rems, [at(3), after_dose(90)], after_dose(91))
    assert after.next_check is not None
    assert after.next_check.due_at == after_dose(105)
    assert after.next_check.label == "Vitals (every 15 min)"


def test_gap_between_intervals_and_after_the_last(rems: Protocol) -> None:
    gappy = dataclasses.replace(
        rems,
        intervals=(Interval(0, 30, 10, "a"), Interval(60, 120, 20, "b")),
        checkpoints=(),
    )
    in_gap = schedule(gappy, [at(3), after_dose(35)], after_dose(36))
    assert in_gap.next_check is not None and in_gap.next_check.due_at == after_dose(60)
    beyond = schedule(gappy, [at(3), after_dose(125)], after_dose(126))
    assert beyond.next_check is None and beyond.status == "none"


# --- Recovery, the end, and clocks that jump --------------------------------------------------


def test_recovery_needs_a_recent_set_before_discharge(rems: Protocol) -> None:
    vitals = [at(3), after_dose(40), after_dose(120)]
    recent = schedule(rems, vitals, after_dose(130), phase="recovery")
    assert recent.next_check is not None
    assert recent.next_check.kind == "before_discharge"
    assert recent.next_check.label == "Vitals before discharge"
    assert (recent.next_check.due_at, recent.status) == (after_dose(135), "upcoming")
    stale = schedule(rems, vitals, after_dose(136), phase="recovery")
    assert stale.next_check is not None and stale.next_check.kind == "before_discharge"
    assert stale.status == "due"
    assert schedule(rems, vitals, after_dose(140), phase="recovery").status == "overdue"
    fresh = schedule(rems, [*vitals, after_dose(141)], after_dose(142), phase="recovery")
    assert fresh.status == "upcoming"
    assert fresh.next_check is not None and fresh.next_check.due_at == after_dose(156)


def test_no_before_discharge_check_outside_recovery(rems: Protocol) -> None:
    state = schedule(rems, [at(3), after_dose(120)], after_dose(160))
    assert state.next_check is not None and state.next_check.kind == "interval"


def test_nothing_is_due_after_the_end(rems: Protocol) -> None:
    vitals = [at(3), after_dose(40), after_dose(120)]
    for state in (
        schedule(rems, vitals, after_dose(200), phase="ended", ended_at=after_dose(125)),
        schedule(rems, vitals, after_dose(200), phase="ended"),
        schedule(rems, vitals, after_dose(200), phase="recovery", ended_at=after_dose(125)),
    ):
        assert state.next_check is None
        assert (state.status, state.seconds_to_due) == ("none", 0.0)
        assert [(c.kind, c.status) for c in state.history] == [
            ("baseline", "done"),
            ("checkpoint", "done"),
        ]


def test_a_session_stopped_before_the_checkpoint_does_not_list_it(rems: Protocol) -> None:
    state = schedule(rems, [at(3)], after_dose(30), phase="ended", ended_at=after_dose(20))
    assert [c.kind for c in state.history] == ["baseline"]
    missed = schedule(rems, [at(3)], after_dose(60), phase="ended", ended_at=after_dose(45))
    assert [(c.kind, c.status) for c in missed.history][-1] == ("checkpoint", "missed")


def test_clock_jumped_backwards_reports_the_check_as_upcoming(rems: Protocol) -> None:
    vitals = [at(3), after_dose(60)]
    state = schedule(rems, vitals, after_dose(55))  # now is earlier than the last vitals
    assert state.next_check is not None
    assert state.next_check.due_at == after_dose(70)
    assert state.status == "upcoming"
    assert state.seconds_to_due == 15 * 60
    before_start = schedule(rems, [], at(-30), phase="preparation", first_dose=None)
    assert before_start.status == "upcoming" and before_start.seconds_to_due == 30 * 60
    before_dose = schedule(rems, [at(3)], at(5))  # the dose time is after now
    assert before_dose.status == "upcoming"
    assert before_dose.next_check is not None and before_dose.next_check.due_at == after_dose(10)
    recovery = schedule(rems, vitals, after_dose(55), phase="recovery")
    assert recovery.status == "upcoming"


def test_unsorted_and_duplicate_times_are_fine(rems: Protocol) -> None:
    vitals = [after_dose(20), at(3), after_dose(10), after_dose(20)]
    state = schedule(rems, vitals, after_dose(21))
    assert state.next_check is not None and state.next_check.due_at == after_dose(30)


def test_naive_times_are_refused(rems: Protocol) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        compute_schedule(rems, START.replace(tzinfo=None), None, [], START, "preparation")
    with pytest.raises(ValueError, match="vitals_time"):
        compute_schedule(rems, START, None, [at(1).replace(tzinfo=None)], START, "preparation")


def test_full_three_hour_session_in_milliseconds(rems: Protocol) -> None:
    """A nurse who takes vitals the moment each check falls due, minute by minute for 3 h."""
    started = time.perf_counter()
    vitals: list[datetime] = []
    first_dose: datetime | None = None
    seen: list[tuple[float, str]] = []
    for minute in range(0, 181):
        now = at(minute)
        phase = "preparation" if first_dose is None else "monitoring"
        if minute >= 150:
            phase = "recovery"
        state = compute_schedule(rems, START, first_dose, vitals, now, phase)
        assert state.status != "overdue"
        if minute == 10:
            assert not state.dosing_blocked
            first_dose = now
            continue
        if state.status == "due":
            assert state.next_check is not None
            vitals.append(now)
            seen.append((minute, state.next_check.kind))
    ended = compute_schedule(rems, START, first_dose, vitals, at(181), "ended", at(181))
    elapsed = time.perf_counter() - started

    since_dose = [m - 10 for m, _ in seen[1:]]
    assert seen[0] == (0, "baseline")
    assert since_dose == [10, 20, 30, 40, 50, 60, 70, 80, 90, 105, 120, 135, 150, 165]
    assert dict(seen)[50] == "checkpoint"
    assert dict(seen)[160] == "before_discharge"  # ties with the interval: the specific one
    assert ended.next_check is None
    assert [c.status for c in ended.history] == ["done", "done"]
    assert elapsed < 1.0


# --- After a critical value: an early re-check (issue 9, part 4) ------------------------------


def bp(minute: float, level: Level = "normal") -> VitalReading:
    """A blood-pressure reading ``minute`` after the dose, at an alarm level."""
    return VitalReading("bp", after_dose(minute), level)


def with_readings(
    protocol: Protocol, readings: list[VitalReading], now: datetime, phase: str = "monitoring"
) -> ScheduleState:
    times = [at(3), *sorted({r.observed_at for r in readings})]
    return compute_schedule(protocol, START, DOSE, times, now, phase, None, vital_readings=readings)


def test_shipped_protocols_recheck_a_critical_value_after_five_minutes() -> None:
    for protocol in load_protocols([resources_dir() / "protocols"]).protocols.values():
        assert protocol.critical_recheck_minutes == 5, protocol.id
        source = protocol.sources["schedule.critical_recheck_minutes"]
        assert "clinic to confirm" in source and "5" in source


def test_a_critical_reading_brings_the_next_check_forward(rems: Protocol) -> None:
    readings = [bp(20, "critical")]
    state = with_readings(rems, readings, after_dose(20))
    assert state.next_check is not None
    assert state.next_check.kind == "critical_recheck"
    assert state.next_check.label == "Re-check BP (critical)"
    assert state.next_check.due_at == after_dose(25)  # not the cadence's +30
    assert (state.status, state.seconds_to_due) == ("upcoming", 5 * 60)
    # It comes due and goes overdue like any other check.
    assert with_readings(rems, readings, after_dose(25)).status == "due"
    assert with_readings(rems, readings, after_dose(30) - MS).status == "due"
    assert with_readings(rems, readings, after_dose(30)).status == "overdue"


def test_a_normal_or_warning_reading_keeps_the_regular_interval(rems: Protocol) -> None:
    for level in ("normal", "advisory", "warning"):
        state = with_readings(rems, [bp(20, level)], after_dose(20))
        assert state.next_check is not None
        assert (state.next_check.kind, state.next_check.due_at) == ("interval", after_dose(30))


def test_the_next_reading_of_that_vital_satisfies_the_recheck(rems: Protocol) -> None:
    settled = [bp(20, "critical"), bp(24)]
    state = with_readings(rems, settled, after_dose(24))
    assert state.next_check is not None
    assert (state.next_check.kind, state.next_check.due_at) == ("interval", after_dose(34))
    # Still critical at the re-check: another re-check from that reading.
    again = with_readings(rems, [bp(20, "critical"), bp(25, "critical")], after_dose(25))
    assert again.next_check is not None
    assert (again.next_check.kind, again.next_check.due_at) == ("critical_recheck", after_dose(30))


def test_a_reading_of_another_vital_does_not_satisfy_it(rems: Protocol) -> None:
    readings = [bp(20, "critical"), VitalReading("spo2", after_dose(22), "normal")]
    state = with_readings(rems, readings, after_dose(22))
    assert state.next_check is not None
    assert (state.next_check.label, state.next_check.due_at) == (
        "Re-check BP (critical)",
        after_dose(25),
    )


def test_several_critical_vitals_share_one_recheck_named_in_due_order(rems: Protocol) -> None:
    readings = [
        VitalReading("spo2", after_dose(20), "critical"),
        bp(21, "critical"),
    ]
    state = with_readings(rems, readings, after_dose(21))
    assert state.next_check is not None
    assert state.next_check.label == "Re-check SpO₂, BP (critical)"
    assert state.next_check.due_at == after_dose(25)


def test_a_critical_baseline_is_rechecked_before_the_dose_too(rems: Protocol) -> None:
    # A complete baseline (BP, HR and SpO₂) whose BP was critical.
    readings = [
        VitalReading("bp", at(2), "critical"),
        VitalReading("hr", at(2), "normal"),
        VitalReading("spo2", at(2), "normal"),
    ]
    state = compute_schedule(
        rems, START, None, [at(2)], at(3), "preparation", vital_readings=readings
    )
    assert state.next_check is not None
    assert (state.next_check.kind, state.next_check.due_at) == ("critical_recheck", at(7))


def test_an_spo2_only_reading_leaves_the_baseline_due_and_dosing_blocked(rems: Protocol) -> None:
    readings = [VitalReading("spo2", at(2), "normal")]
    state = compute_schedule(
        rems, START, None, [at(2)], at(3), "preparation", vital_readings=readings
    )
    assert state.next_check is not None and state.next_check.kind == "baseline"
    assert state.dosing_blocked
    complete = [*readings, VitalReading("bp", at(4), "normal"), VitalReading("hr", at(4), "normal")]
    state = compute_schedule(
        rems, START, None, [at(2), at(4)], at(5), "preparation", vital_readings=complete
    )
    assert not state.dosing_blocked
    assert [(c.kind, c.satisfied_at) for c in state.history] == [("baseline", at(4))]


def test_nothing_is_rechecked_after_the_end(rems: Protocol) -> None:
    state = compute_schedule(
        rems,
        START,
        DOSE,
        [at(3), after_dose(20)],
        after_dose(21),
        "ended",
        after_dose(21),
        vital_readings=[bp(20, "critical")],
    )
    assert state.next_check is None and state.status == "none"


def test_the_recheck_minutes_come_from_the_protocol(rems: Protocol) -> None:
    slower = dataclasses.replace(rems, critical_recheck_minutes=3)
    state = with_readings(slower, [bp(20, "critical")], after_dose(20))
    assert state.next_check is not None and state.next_check.due_at == after_dose(23)
    # A re-check later than the cadence never hides the earlier routine check.
    later = dataclasses.replace(rems, critical_recheck_minutes=15)
    routine = with_readings(later, [bp(20, "critical")], after_dose(20))
    assert routine.next_check is not None and routine.next_check.kind == "interval"


def test_naive_reading_times_are_refused(rems: Protocol) -> None:
    naive = VitalReading("bp", after_dose(20).replace(tzinfo=None), "critical")
    with pytest.raises(ValueError, match="vital_reading"):
        compute_schedule(
            rems, START, DOSE, [], after_dose(21), "monitoring", vital_readings=[naive]
        )


SHIPPED = (resources_dir() / "protocols" / "esketamine-rems.toml").read_text(encoding="utf-8")
RECHECK_LINE = next(
    line for line in SHIPPED.splitlines() if line.startswith("critical_recheck_minutes")
)


def test_a_protocol_file_without_the_key_gets_the_named_default() -> None:
    older = parse_protocol(SHIPPED.replace(RECHECK_LINE, ""), "older.toml")
    assert older.critical_recheck_minutes == DEFAULT_CRITICAL_RECHECK_MINUTES
    assert "not set in this file" in older.sources["schedule.critical_recheck_minutes"]
    changed = parse_protocol(
        SHIPPED.replace(
            RECHECK_LINE, 'critical_recheck_minutes = { value = 3, source = "our policy" }'
        ),
        "clinic.toml",
    )
    assert changed.critical_recheck_minutes == 3
    assert changed.sources["schedule.critical_recheck_minutes"] == "our policy"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('critical_recheck_minutes = { value = 0, source = "x" }', "must be above 0"),
        ("critical_recheck_minutes = 5", "needs a source label"),
        ("critical_recheck_minutes = { value = 5 }", "missing source label"),
    ],
)
def test_a_bad_recheck_value_is_refused_with_its_field(line: str, reason: str) -> None:
    with pytest.raises(ProtocolError, match=f"schedule.critical_recheck_minutes.*{reason}"):
        parse_protocol(SHIPPED.replace(RECHECK_LINE, line), "clinic.toml")


def test_a_stored_copy_keeps_the_recheck_and_an_older_copy_gets_the_default(
    rems: Protocol,
) -> None:
    stored = dataclasses.replace(rems, critical_recheck_minutes=7).to_dict()
    assert Protocol.from_dict(stored).critical_recheck_minutes == 7
    del stored["critical_recheck_minutes"]  # a session started before the key existed
    assert Protocol.from_dict(stored).critical_recheck_minutes == DEFAULT_CRITICAL_RECHECK_MINUTES


# --- Which reading stands: stored rows to levels --------------------------------------------


def _vitals_row(row_id: int, minute: float, **values: float) -> StoredRow:
    return stored_row("vitals", to_iso(after_dose(minute)), id=row_id, **values)


def _alarm(source_id: int, parameter: str, priority: str, table: str = "vitals") -> AlarmRow:
    return AlarmRow(
        id=source_id,
        session_id="s1",
        observed_at=to_iso(after_dose(0)),
        recorded_at=to_iso(after_dose(0)),
        recorded_by="Dr A",
        source_table=table,
        source_id=source_id,
        parameter=parameter,
        priority=priority,
    )


def test_stored_rows_give_each_vital_the_level_of_its_latest_reading() -> None:
    vitals = [
        _vitals_row(1, 20, sbp=185, dbp=100, hr=92, spo2=97),
        _vitals_row(2, 22, spo2=88),  # SpO₂ only: BP stays as it was
        _vitals_row(3, 24, hr=115),
    ]
    alarms = [
        _alarm(1, "sbp", "critical"),
        _alarm(1, "dbp", "warning"),
        _alarm(2, "spo2", "critical"),
        _alarm(3, "hr", "warning"),
    ]
    readings = vital_readings(vitals, [], alarms)
    assert current_levels(readings) == {
        "bp": "critical",  # the more urgent of the systolic and diastolic alarms
        "hr": "warning",
        "spo2": "critical",
    }
    vitals.append(_vitals_row(4, 25, sbp=150, dbp=90, spo2=95))
    assert current_levels(vital_readings(vitals, [], alarms)) == {
        "bp": "normal",
        "hr": "warning",
        "spo2": "normal",
    }


def test_observations_carry_moaas_and_a_corrected_reading_loses_its_alarm() -> None:
    observations = [stored_row("observations", to_iso(after_dose(20)), id=7, moaas=2)]
    alarms = [_alarm(7, "moaas", "critical", "observations"), _alarm(1, "sbp", "critical")]
    # Vitals row 1 was corrected to row 2: only the current row is passed in.
    vitals = [_vitals_row(2, 20, sbp=130, dbp=80)]
    assert current_levels(vital_readings(vitals, observations, alarms)) == {
        "moaas": "critical",
        "bp": "normal",
    }


def test_a_back_timed_reading_does_not_replace_a_newer_one() -> None:
    readings = [bp(30, "critical"), bp(25)]  # entered later, observed earlier
    assert latest_by_vital(readings)["bp"].level == "critical"


def test_latest_readings_agree_with_every_reading_scanned() -> None:
    """The one-pass scan the window uses gives each vital the level of its latest reading,
    as the full scan does, back-timed rows and ties included."""
    from kapmonitor.domain.vital_alerts import current_levels, latest_readings, vital_readings

    vitals = [
        stored_row("vitals", "2026-01-01T10:00:00+00:00", id=1, sbp=190, dbp=100, hr=80),
        stored_row("vitals", "2026-01-01T10:05:00+00:00", id=2, hr=140),
        stored_row("vitals", "2026-01-01T09:59:00+00:00", id=3, sbp=120, dbp=80),
        stored_row("vitals", "2026-01-01T10:05:00+00:00", id=4, spo2=85),
    ]
    observations = [stored_row("observations", "2026-01-01T10:01:00+00:00", id=1, moaas=2)]
    alarms = [
        _alarm(1, "sbp", "critical"),
        _alarm(2, "hr", "warning"),
        _alarm(4, "spo2", "critical"),
        _alarm(1, "moaas", "warning", "observations"),
    ]
    fast = current_levels(latest_readings(vitals, observations, alarms))
    full = current_levels(vital_readings(vitals, observations, alarms))
    assert fast == full
    assert fast == {"bp": "critical", "hr": "warning", "spo2": "critical", "moaas": "warning"}
