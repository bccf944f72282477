"""The discharge check as a whole: facts from the record, the score, the readiness verdict.

The bedside discharge dialog and the scenario runner must reach the same verdict with the same
words, so everything between "the session's rows" and "ready, or these blockers" lives here,
Qt-free: :func:`discharge_facts` reads what the log already knows (BP change, MOAA/S, SpO₂,
whether a recent vitals set exists), :func:`compute_score` scores it with the items a clinician
judged at the bedside, and :func:`assess` lists every unmet condition exactly as the dialog shows
them. The dialog only collects the clinician's answers and displays the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from kapmonitor.domain import discharge, discharge_gate
from kapmonitor.domain.clock import from_iso
from kapmonitor.domain.discharge import AldreteInputs, PadssInputs, Readiness, ScoreResult
from kapmonitor.domain.protocol import Protocol
from kapmonitor.domain.records import DischargeAssessment
from kapmonitor.domain.session_rows import ObservationRow, StoredRow, VitalsRow, rows_as

# The items a clinician judges, per score: code -> (label, ((points, meaning), ...)).
CLINICIAN_ITEMS: dict[str, dict[str, tuple[str, tuple[tuple[int, str], ...]]]] = {
    "aldrete": {
        "activity": (
            "Activity",
            ((2, "moves 4 limbs"), (1, "moves 2 limbs"), (0, "moves no limbs")),
        ),
        "respiration": (
            "Respiration",
            (
                (2, "breathes deeply and coughs freely"),
                (1, "dyspnoea or limited breathing"),
                (0, "apnoeic"),
            ),
        ),
    },
    "padss": {
        "ambulation": (
            "Ambulation",
            ((2, "steady gait, no dizziness"), (1, "walks with help"), (0, "unable or dizzy")),
        ),
        "nausea_vomiting": (
            "Nausea and vomiting",
            ((2, "minimal"), (1, "moderate, treated"), (0, "severe")),
        ),
    },
}
PAIN_CODE = "pain"
PAIN_LABEL = "Pain"
NO_SCORE_REASON = "No discharge score recorded"  # discharge.readiness's words for score=None


@dataclass(frozen=True)
class DischargeFacts:
    """What the session log already knows at the moment of the assessment."""

    first_dose: datetime | None
    sbp_now: int | None
    sbp_baseline: int | None
    hr_now: int | None
    hr_baseline: int | None
    moaas: int | None
    spo2: int | None
    on_oxygen: bool
    recent_vitals: bool  # a complete vitals set within the freshness window after the last dose
    # The discharge gate (blockers, each input's value and age); None without a protocol.
    gate: discharge_gate.Gate | None = None


def discharge_facts(
    protocol: Protocol | None, current: Mapping[str, Sequence[StoredRow]], now: datetime
) -> DischargeFacts:
    """The facts from the session's current typed rows (``SessionLog.current`` per table)."""
    doses = list(current.get("doses", ()))
    dose = from_iso(doses[0].observed_at) if doses else None
    vitals = rows_as(VitalsRow, current.get("vitals", ()))
    before = [v for v in vitals if dose is None or from_iso(v.observed_at) < dose]
    after = [v for v in vitals if dose is not None and from_iso(v.observed_at) >= dose]
    observations = rows_as(ObservationRow, current.get("observations", ()))
    latest = after or vitals
    recent = bool(vitals) and (now - from_iso(vitals[-1].observed_at)).total_seconds() <= (
        protocol.before_discharge_window_minutes * 60 if protocol else 0
    )
    if protocol is not None:
        # Each measured item only from a value within the freshness window and after the last
        # dose (discharge_gate); an older one scores as not measured and is listed with its age.
        gate = discharge_gate.evaluate(protocol, current, now)
        fresh = gate.fresh
        return DischargeFacts(
            first_dose=dose,
            sbp_now=fresh["sbp"],
            sbp_baseline=fresh["sbp_baseline"],
            hr_now=fresh["hr"],
            hr_baseline=fresh["hr_baseline"],
            moaas=fresh["moaas"],
            spo2=fresh["spo2"],
            on_oxygen=fresh["on_oxygen"],
            recent_vitals=gate.complete_vitals,
            gate=gate,
        )
    return DischargeFacts(
        first_dose=dose,
        sbp_now=_last(v.sbp for v in latest),
        sbp_baseline=_last(v.sbp for v in before),
        hr_now=_last(v.hr for v in latest),
        hr_baseline=_last(v.hr for v in before),
        moaas=_last(o.moaas for o in observations),
        spo2=_last(v.spo2 for v in latest),
        on_oxygen=bool(latest and latest[-1].on_oxygen),
        recent_vitals=recent,
    )


def _last(values: Iterable[int | None]) -> int | None:
    """The last recorded (not None) of ``values``, in order."""
    found = None
    for value in values:
        if value is not None:
            found = value
    return found


def judged_codes(score_name: str) -> tuple[str, ...]:
    """The items of ``score_name`` a clinician judges at the bedside, in the dialog's order."""
    codes = tuple(CLINICIAN_ITEMS.get(score_name, {}))
    return (*codes, PAIN_CODE) if score_name == "padss" else codes


def item_label(score_name: str, code: str) -> str:
    clinician = CLINICIAN_ITEMS.get(score_name, {})
    return clinician[code][0] if code in clinician else PAIN_LABEL


def compute_score(
    protocol: Protocol,
    facts: DischargeFacts,
    judged: Mapping[str, int | None],
    default_zero: bool,
) -> ScoreResult:
    """The protocol's score from the facts and the judged items.

    An unjudged item (absent or None) raises ``LookupError``, or counts 0 with ``default_zero``
    (the dialog's live preview); a pass mark the score cannot reach raises ``ValueError``.
    """

    def value(code: str) -> int:
        found = judged.get(code)
        if found is not None:
            return int(found)
        if default_zero:
            return 0
        raise LookupError(code)

    pass_mark = protocol.discharge_pass
    if protocol.discharge_score == "padss":
        return discharge.padss(
            PadssInputs(
                vitals_now={"sbp": facts.sbp_now, "hr": facts.hr_now},
                vitals_baseline={"sbp": facts.sbp_baseline, "hr": facts.hr_baseline},
                ambulation=value("ambulation"),
                nausea_vomiting=value("nausea_vomiting"),
                pain_vas=value(PAIN_CODE),
            ),
            pass_mark,
        )
    return discharge.aldrete(
        AldreteInputs(
            activity=value("activity"),
            respiration=value("respiration"),
            sbp_now=facts.sbp_now,
            sbp_baseline=facts.sbp_baseline,
            moaas=facts.moaas,
            spo2=facts.spo2,
            on_oxygen=facts.on_oxygen,
        ),
        pass_mark,
    )


@dataclass(frozen=True)
class DischargeCheck:
    """One evaluation of the discharge check, as the dialog shows it."""

    preview: ScoreResult | None  # unjudged items as 0: what the score rows show meanwhile
    score: ScoreResult | None  # None until every judged item is answered
    unassessed: tuple[str, ...]  # labels of the judged items not yet answered
    problem: str  # the protocol's score cannot be used (e.g. a pass mark above the maximum)
    readiness: Readiness
    ready: bool
    reasons: tuple[str, ...]  # every unmet condition, in the dialog's words and order


def assess(
    protocol: Protocol,
    facts: DischargeFacts,
    judged: Mapping[str, int | None],
    checklist: Mapping[str, bool],
    now: datetime,
) -> DischargeCheck:
    """Score, readiness and the full list of unmet conditions."""
    problem = ""
    try:
        preview: ScoreResult | None = compute_score(protocol, facts, judged, default_zero=True)
    except ValueError as exc:
        preview = None
        problem = f"The protocol's discharge score cannot be used: {exc}"
    missing = tuple(
        item_label(protocol.discharge_score, code)
        for code in judged_codes(protocol.discharge_score)
        if judged.get(code) is None
    )
    score = None if missing else preview
    state = discharge.readiness(
        score,
        dict(checklist),
        facts.first_dose,
        now,
        protocol.min_monitoring_minutes,
        facts.recent_vitals,
        facts.gate.blockers if facts.gate is not None else (),
    )
    reasons = list(state.reasons)
    if missing:  # say what is missing rather than "no score"
        incomplete = f"Score incomplete: assess {', '.join(missing)}"
        reasons = [incomplete if r == NO_SCORE_REASON else r for r in reasons]
        if incomplete not in reasons:
            reasons.insert(0, incomplete)
    if problem:
        reasons.insert(0, problem)
    return DischargeCheck(
        preview=preview,
        score=score,
        unassessed=missing,
        problem=problem,
        readiness=state,
        ready=state.ready and not problem,
        reasons=tuple(reasons),
    )


def best_points(score_name: str, code: str) -> int:
    """The best answer of a judged item (2 points; pain VAS 0): what a scenario assumes for an
    item it does not name, so its verdict turns on what the record holds."""
    return 0 if code == PAIN_CODE else max(p for p, _ in CLINICIAN_ITEMS[score_name][code][1])


def assessment_record(
    score: ScoreResult,
    checklist: Mapping[str, bool],
    state: Readiness,
    now: datetime,
    override: str | None = "",
) -> DischargeAssessment:
    """The stored record of an assessment, as "Record assessment" saves it (``override``: the
    reason for discharging although not ready)."""
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
        checklist=dict(checklist),
        ready=state.ready,
        reasons=tuple(state.reasons),
        observed_at=now,
        override_reason=override or "",
    )
