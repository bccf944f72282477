"""A realistic simulated KAP session, recorded through the same store code the window uses.

Used to show the app, to fill screenshots, and by the crash test (which kills it mid-write): it
prints ``committed <kind> <id>`` only after each transaction has committed, so a line on stdout is
a promise that the row is on disk. Its clock is simulated and ends at the moment the demo starts,
so every entry is in the past and nothing is flagged as future-dated.

Stopped with Ctrl-C or SIGTERM, it ends the simulated session (disposition "other", saying the demo
was stopped) rather than leave an open session that the window would offer to resume. SIGKILL
cannot be caught: that is the crash test's business.
"""

from __future__ import annotations

import contextlib
import math
import random
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kapmonitor.domain import discharge, questionnaires
from kapmonitor.domain.clock import FakeClock, to_iso
from kapmonitor.domain.protocol import Protocol, load_protocols
from kapmonitor.domain.records import (
    AdverseEvent,
    AdverseEventOutcome,
    AlarmAcknowledgement,
    DischargeAssessment,
    Dose,
    Entry,
    Intervention,
    Observation,
    PhaseChange,
    QuestionnaireResponse,
    SessionEnd,
    SessionStart,
    VitalSigns,
)
from kapmonitor.domain.validation import ValidationError
from kapmonitor.paths import resources_dir
from kapmonitor.store.database import StoreError
from kapmonitor.store.session_store import SessionStore

CLINICIANS = ("Dr. A. Rivera", "N. Okafor, RN")
DEMO_PROTOCOL = "clinic-ketamine"
BASELINE = {"sbp": 124, "dbp": 78, "hr": 72, "spo2": 98, "rr": 14}
SESSION_MINUTES = 140
LEAD_IN_MINUTES = 15  # preparation before the dose


@dataclass(frozen=True)
class Step:
    minute: float  # relative to the dose
    entry: Entry | None  # None marks the session start


def bp_rise(minute: float) -> tuple[float, float]:
    """The typical transient rise: onset within minutes, peak near 40 min, settling by ~2 h."""
    if minute <= 0:
        return 0.0, 0.0
    frac = minute / 40 if minute <= 40 else max(0.0, 1 - (minute - 40) / 80)
    return 22 * frac, 13 * frac


def _vitals(at: datetime, minute: float, rng: random.Random, temp: bool = False) -> VitalSigns:
    d_sys, d_dia = bp_rise(minute)
    sedated = 15 <= minute <= 60
    if minute == 25:  # a brief desaturation while deeply dissociated: the alarm and its response
        return VitalSigns(
            observed_at=at,
            sbp=138,
            dbp=86,
            hr=84,
            spo2=91,
            rr=11,
            etco2=42,
            note="Chin lift, deep breaths",
        )
    return VitalSigns(
        observed_at=at,
        sbp=round(BASELINE["sbp"] + d_sys + rng.uniform(-4, 4)),
        dbp=round(BASELINE["dbp"] + d_dia + rng.uniform(-3, 3)),
        hr=round(BASELINE["hr"] + 0.6 * d_sys + rng.uniform(-4, 4)),
        spo2=min(100, round(BASELINE["spo2"] - (1 if sedated else 0) + rng.uniform(-1, 1))),
        rr=round(BASELINE["rr"] - (2 if sedated else 0) + rng.uniform(-1, 1)),
        temp_c=round(36.7 + rng.uniform(-0.2, 0.2), 1) if temp else None,
        etco2=_etco2(minute, sedated),
    )


def _etco2(minute: float, sedated: bool) -> int:
    """Capnography within 35–42 mmHg, a little higher while sedated (slower breathing). The
    wobble is a function of the minute, not a draw from ``rng``, so every other demo value stays
    what it was before EtCO₂ was added."""
    return round(37 + (3 if sedated else 0) + 2 * math.sin(minute))


def _observation(at: datetime, minute: float) -> Observation:
    if minute < 0:
        return Observation(at, moaas=5, rass=0, dissociation=0, features=("calm_pleasant",))
    if minute < 15:
        return Observation(at, moaas=4, rass=-1, dissociation=1, features=("detachment",))
    if minute < 50:
        return Observation(
            at,
            moaas=3,
            rass=-2,
            dissociation=2 if minute < 25 or minute > 45 else 3,
            features=("depersonalisation", "derealisation", "altered_perception"),
            cadss_total=34 if 35 <= minute <= 45 else None,
        )
    if minute < 80:
        return Observation(at, moaas=4, rass=-1, dissociation=1, features=("detachment",))
    return Observation(at, moaas=5, rass=0, dissociation=0, features=("calm_pleasant",))


def build_script(dose_at: datetime, weight_kg: float, rng: random.Random) -> list[Step]:
    """The whole session as timed entries, in clinical order."""

    def at(minute: float) -> datetime:
        return dose_at + timedelta(minutes=minute)

    steps: list[Step] = [Step(-LEAD_IN_MINUTES, None)]
    steps.append(Step(-13, QuestionnaireResponse("phq9", "pre", PHQ9_ANSWERS, at(-13))))
    steps.append(Step(-10, _vitals(at(-10), -10, rng, temp=True)))
    steps.append(Step(-8, _observation(at(-8), -8)))
    steps.append(
        Step(-2, Intervention("music_mask", at(-2), detail="Eye mask on, playlist started"))
    )
    steps.append(
        Step(0, Dose("ketamine", "im", round(0.75 * weight_kg), at(0), lot_number="KX24-0917"))
    )
    steps.append(Step(2, PhaseChange("monitoring", at(2))))
    end_minute = SESSION_MINUTES - LEAD_IN_MINUTES
    for minute in range(5, end_minute - 4, 5):
        steps.append(Step(minute, _vitals(at(minute), minute, rng, temp=minute % 60 == 0)))
        if minute % 10 == 0 or minute == 45:
            steps.append(Step(minute + 1, _observation(at(minute + 1), minute)))
    steps.append(
        Step(
            55,
            AdverseEvent(
                "nausea",
                2,
                at(55),
                action="antiemetic",
                relatedness="related",
            ),
        )
    )
    steps.append(Step(56, Intervention("medication", at(56), medication="Ondansetron 4 mg SL")))
    steps.append(
        Step(57, Intervention("support", at(57), detail="Reassurance; repositioned upright"))
    )
    steps.append(
        Step(26, AlarmAcknowledgement(0, "repositioned", at(26), detail="SpO₂ 97 % after"))
    )
    steps.append(Step(75, _ae_outcome_marker(at(75))))
    steps.append(Step(90, PhaseChange("recovery", at(90))))
    steps.append(Step(95, Intervention("music_mask", at(95), detail="Eye mask off, music faded")))
    steps.append(Step(end_minute - 2, _vitals(at(end_minute - 2), end_minute - 2, rng)))
    steps.append(Step(end_minute - 1.5, DISCHARGE_CHECK))
    steps.append(
        Step(
            end_minute - 1,
            QuestionnaireResponse("post_session", "post", POST_ANSWERS, at(end_minute - 1)),
        )
    )
    steps.append(
        Step(
            end_minute - 3,
            Intervention(
                "note", at(end_minute - 3), detail="Oriented, walking steadily, drinking water"
            ),
        )
    )
    steps.append(
        Step(
            end_minute,
            SessionEnd(
                "home_with_escort",
                at(end_minute),
                escort="Partner",
                summary="Uneventful session; transient BP rise peaking near 40 min; "
                "nausea treated with ondansetron and resolved. "
                "Discharged with written instructions.",
            ),
        )
    )
    steps.sort(key=lambda s: s.minute)
    return steps


PHQ9_ANSWERS = {f"q{i}": v for i, v in enumerate([2, 2, 1, 2, 1, 1, 2, 1, 0], start=1)}
POST_ANSWERS: dict[str, int | str] = {
    "intensity": 7,
    "distress": 2,
    "nausea": 4,
    "dizziness": 2,
    "safe": 9,
    "comments": "Felt far away, then calm. Music helped.",
}
# A discharge assessment is scored from the log at the time it runs (see _discharge).
DISCHARGE_CHECK = Intervention("note", datetime(2000, 1, 1, tzinfo=UTC), detail="discharge")


def _discharge(store: SessionStore, session_id: str, at: datetime) -> DischargeAssessment:
    """Score the protocol's discharge assessment from the log, as the dialog would."""
    log = store.load(session_id)
    protocol = log.protocol
    assert protocol is not None
    vitals = log.current("vitals")
    dose = log.first_dose_at()
    before = [v for v in vitals if dose is not None and v["observed_at"] < to_iso(dose)]
    inputs = discharge.AldreteInputs(
        activity=2,
        respiration=2,
        sbp_now=vitals[-1]["sbp"],
        sbp_baseline=before[-1]["sbp"] if before else None,
        moaas=log.current("observations")[-1]["moaas"],
        spo2=vitals[-1]["spo2"],
        on_oxygen=False,
    )
    score = discharge.aldrete(inputs, protocol.discharge_pass)
    checklist = {code: True for code, _label in discharge.CHECKLIST}
    ready = discharge.readiness(score, checklist, dose, at, protocol.min_monitoring_minutes, True)
    return DischargeAssessment(
        score_name=score.name,
        total=score.total,
        maximum=score.maximum,
        pass_mark=score.pass_mark,
        passed=score.passed,
        items=tuple(
            {"code": i.code, "label": i.label, "points": i.points, "basis": i.basis}
            for i in score.items
        ),
        checklist=checklist,
        ready=ready.ready,
        reasons=ready.reasons,
        observed_at=at,
    )


def _scored(response: QuestionnaireResponse) -> QuestionnaireResponse:
    """Fill total, band and safety flags as the patient-facing window does."""
    found = questionnaires.load_questionnaires([resources_dir() / "questionnaires"])
    questionnaire = found[response.questionnaire_id]
    total = questionnaire.total(response.answers) if questionnaire.scored else None
    return QuestionnaireResponse(
        response.questionnaire_id,
        response.timing,
        response.answers,
        response.observed_at,
        total=total,
        band=questionnaire.band_for(total) if total is not None else "",
        safety_flags=tuple(questionnaires.safety_flags(questionnaire, response.answers)),
    )


def _ae_outcome_marker(at: datetime) -> AdverseEventOutcome:
    # The id is filled in once the adverse event is committed (see record_demo).
    return AdverseEventOutcome(0, "resolved", at, note="Nausea settled after ondansetron")


def demo_protocol() -> Protocol:
    """The shipped protocol the demo session follows (never a clinic's edited copy)."""
    return load_protocols([resources_dir() / "protocols"]).protocols[DEMO_PROTOCOL]


def record_demo(
    store: SessionStore,
    clock: FakeClock,
    dose_at: datetime,
    pace: float,
    rng: random.Random,
    protocol: Protocol | None = None,
) -> Iterator[tuple[str, str | int]]:
    """Write the session step by step; yields (kind, id) after each commit.

    The script acknowledges an alarm and scores a discharge, so it always runs on a protocol:
    the shipped demo protocol unless one is given.
    """
    protocol = protocol or demo_protocol()
    session_id = ""
    last_ae = 0
    weight = 74.0
    for index, step in enumerate(build_script(dose_at, weight, rng)):
        clock.set(dose_at + timedelta(minutes=step.minute, seconds=20))
        if pace and index:
            time.sleep(pace)
        recorder = CLINICIANS[index % 2]
        if step.entry is None:
            start = SessionStart(
                patient_code=f"KAP-{rng.randint(1000, 9999)}",
                sex="female",
                weight_kg=weight,
                indication="trd",
                clinicians=CLINICIANS,
                started_at=dose_at - timedelta(minutes=LEAD_IN_MINUTES),
                birth_year=1984,
                checklist={
                    "diagnosis_confirmed": True,
                    "age_in_range": True,
                    "no_active_substance_abuse": True,
                    "history_reviewed": True,
                    "consent_signed": True,
                },
                concomitant={"benzodiazepines": False},
            )
            session_id = store.start_session(start, CLINICIANS[0], protocol=protocol)
            yield "session", session_id
            continue
        entry = step.entry
        if entry is DISCHARGE_CHECK:
            entry = _discharge(store, session_id, clock.now() - timedelta(seconds=20))
        elif isinstance(entry, AlarmAcknowledgement):
            alarm = store.load(session_id).active_alarms()[0]
            entry = AlarmAcknowledgement(
                alarm["id"], entry.response, entry.observed_at, detail=entry.detail
            )
        if isinstance(entry, QuestionnaireResponse):
            entry = _scored(entry)
        if isinstance(entry, AdverseEventOutcome):
            entry = AdverseEventOutcome(last_ae, entry.outcome, entry.observed_at, entry.note)
        row_id = store.add(session_id, entry, recorder).primary_id
        if isinstance(entry, AdverseEvent):
            last_ae = row_id
        yield entry.kind, row_id


def run_demo(db_path: Path, pace: float = 0.0, seed: int | None = None) -> int:
    """Record the demo session into ``db_path``; 130 when stopped (the session is then ended)."""
    if not (pace >= 0 and pace != float("inf")):  # the command line checks; this is for callers
        raise ValueError(f"pace must be a finite number of seconds >= 0, not {pace!r}")
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    dose_at = now - timedelta(minutes=SESSION_MINUTES - LEAD_IN_MINUTES + 1)
    clock = FakeClock(dose_at)
    store = SessionStore.open(db_path, clock)
    session_id = ""
    try:
        with _sigterm_as_interrupt():
            for kind, row_id in record_demo(store, clock, dose_at, pace, rng):
                if kind == "session":
                    session_id = str(row_id)
                print(f"committed {kind} {row_id}", flush=True)
    except KeyboardInterrupt:
        stopped = _end_stopped(store, session_id, clock)
        print(f"demo stopped; {stopped}", file=sys.stderr)
        return 130
    finally:
        store.close()
    print(f"demo session recorded in {db_path}", file=sys.stderr)
    return 0


STOPPED_SUMMARY = "Simulated session from kapmonitor demo, stopped before its end."


def _end_stopped(store: SessionStore, session_id: str, clock: FakeClock) -> str:
    """End the half-recorded simulated session, so nothing is left open to resume."""
    if not session_id:
        return "no session was started"
    end = SessionEnd(
        "other",
        clock.now(),
        summary=STOPPED_SUMMARY,
        disposition_other="demo stopped",
    )
    with _sigterm_as_interrupt():
        try:
            row_id = store.add(session_id, end, CLINICIANS[0]).primary_id
        except (StoreError, ValidationError) as exc:  # e.g. it had just ended by itself
            return f"the session was left as it was ({exc})"
        except KeyboardInterrupt:
            return "stopped again: the session was left open"
    print(f"committed end {row_id}", flush=True)
    return "the simulated session was ended"


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (``timeout``, a closed terminal's shutdown) like Ctrl-C meanwhile."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
