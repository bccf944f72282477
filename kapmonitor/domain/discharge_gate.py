"""The discharge gate: what must hold, from the record, before a patient goes home.

A passing score is not enough. Discharge home is refused, with every reason listed, while
(Spravato label and REMS: monitor until sedation and dissociation have resolved; ASA 2018 sedation
guideline: discharge criteria met on current assessments):

- a critical alarm is unacknowledged;
- an adverse event of grade ≥ 3, or serious, is open (no resolved outcome);
- a positive PHQ-9 item 9 has no documented risk assessment;
- the latest sedation (MOAA/S) or dissociation observation is not back to baseline;
- a value the score uses is older than the protocol's freshness window
  (``[discharge] freshness_minutes``) or was measured before the last dose;
- no complete vitals set (BP, HR, SpO₂ and RR in one reading) was taken within that window after
  the last dose (an HR-only reading is not "vitals before discharge").

**Baseline** for sedation and dissociation is the patient's own pre-dose observation when one was
recorded (a patient who arrives with mild dissociation is not held to a 0 they never had), else the
scale's normal: MOAA/S 5 (responds readily to name) and dissociation 0. Back to baseline means
MOAA/S at or above it and dissociation at or below it.

The score (:mod:`kapmonitor.domain.discharge`) takes each measured item only from
:attr:`Gate.fresh`, i.e. from a value within the window and after the last dose; an older one
is shown with its age and scores as not measured. Qt-free: the dialog, the store (ending a
session "home") and the scenario runner call :func:`evaluate` and show the same words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kapmonitor.domain import suicidality
from kapmonitor.domain.clock import from_iso
from kapmonitor.domain.protocol import Protocol

Rows = Mapping[str, Sequence[Mapping[str, Any]]]

# The scale's normal, used when no pre-dose observation was recorded (MOAA/S: Chernik 1990;
# dissociation 0 = none on the observation form's 0–4 rating).
NORMAL_MOAAS = 5
NORMAL_DISSOCIATION = 0
# Outcomes that close an adverse event (the same set SessionLog.open_adverse_events uses).
CLOSED_OUTCOMES = ("resolved", "resolved_with_sequelae", "fatal")
COMPLETE_SET = ("sbp", "dbp", "hr", "spo2", "rr")
# The measured inputs each score uses (besides what a clinician judges at the bedside).
SCORE_INPUTS: dict[str, tuple[str, ...]] = {
    "aldrete": ("sbp", "spo2", "moaas"),
    "padss": ("sbp", "hr"),
}
LABELS = {
    "sbp": "SBP",
    "hr": "HR",
    "spo2": "SpO₂",
    "moaas": "MOAA/S",
    "dissociation": "Dissociation",
    "vitals_set": "Complete vitals set",
}
UNITS = {"sbp": " mmHg", "hr": " /min", "spo2": " %", "moaas": "", "dissociation": ""}


def vitals_set_reason(window: float) -> str:
    """The words for a missing complete set (shared with ``discharge.readiness``)."""
    return (
        f"No complete vitals set (BP, HR, SpO₂ and RR in one reading) in the last {window:g} min "
        "after the last dose: take a full set"
    )


@dataclass(frozen=True)
class InputValue:
    """One input of the discharge decision as the view shows it: value, age, usable or why not."""

    code: str
    label: str
    value: float | None
    text: str  # e.g. "132 mmHg", "128/80, HR 72, SpO₂ 98, RR 14", "not recorded"
    observed_at: datetime | None
    age_minutes: float | None
    usable: bool
    problem: str = ""  # why not usable, in words ("" when usable)


@dataclass(frozen=True)
class Gate:
    blockers: tuple[str, ...]  # every unmet condition, safety first
    inputs: tuple[InputValue, ...]
    fresh: dict[str, Any]  # the values the score may use (None when stale, pre-dose or absent)
    complete_vitals: bool
    last_dose: datetime | None
    window_minutes: float
    baseline: dict[str, int] = field(default_factory=dict)  # moaas / dissociation baseline

    @property
    def clear(self) -> bool:
        return not self.blockers


def _num(value: Any) -> str:
    return f"{float(value):g}"


def _age(now: datetime, iso: str) -> float:
    return max((now - from_iso(iso)).total_seconds() / 60, 0.0)


def _latest(rows: Sequence[Mapping[str, Any]], key: str) -> Mapping[str, Any] | None:
    return next((r for r in reversed(rows) if r.get(key) is not None), None)


def _input(
    code: str,
    row: Mapping[str, Any] | None,
    now: datetime,
    last_dose: datetime | None,
    window: float,
) -> InputValue:
    label = LABELS[code]
    if row is None:
        return InputValue(
            code, label, None, "not recorded", None, None, False, f"No {label} recorded"
        )
    value = row[code]
    when = from_iso(row["observed_at"])
    age = _age(now, row["observed_at"])
    text = f"{_num(value)}{UNITS.get(code, '')}"
    if last_dose is None or when < last_dose:
        problem = f"{label} {_num(value)} was measured before the last dose: measure it again"
    elif age > window:
        problem = (
            f"{label} {_num(value)} is {int(age)} min old (freshness window {window:g} min): "
            "measure it again"
        )
    else:
        problem = ""
    return InputValue(code, label, float(value), text, when, age, not problem, problem)


def _set_text(row: Mapping[str, Any]) -> str:
    return (
        f"BP {row['sbp']}/{row['dbp']}, HR {row['hr']}, SpO₂ {row['spo2']}, RR {row['rr']}"
        if all(row.get(k) is not None for k in COMPLETE_SET)
        else "incomplete"
    )


def _alarm_blockers(current: Rows, now: datetime) -> list[str]:
    acknowledged = {int(r["alarm_id"]) for r in current.get("alarm_acknowledgements", ())}
    return [
        f"Critical alarm not acknowledged ({int(_age(now, a['observed_at']))} min ago): "
        f"{a['message']}"
        for a in current.get("alarms", ())
        if a["priority"] == "critical" and int(a["id"]) not in acknowledged
    ]


def _adverse_event_blockers(current: Rows) -> list[str]:
    closed = {
        int(r["adverse_event_id"])
        for r in current.get("adverse_event_outcomes", ())
        if r["outcome"] in CLOSED_OUTCOMES
    }
    found = []
    for event in current.get("adverse_events", ()):
        if int(event["id"]) in closed or not (event["grade"] >= 3 or event["serious"]):
            continue
        serious = ", serious" if event["serious"] else ""
        term = event.get("verbatim") or event["term"]
        found.append(
            f"Open adverse event: {term} (grade {event['grade']}{serious}) has no resolved "
            "outcome: record its outcome first"
        )
    return found


def _suicidality_blockers(current: Rows) -> list[str]:
    return [
        "PHQ-9 item 9 positive with no documented risk assessment: acknowledge its alarm with "
        "the assessment (method, outcome, action)"
        if r["questionnaire_id"] == "phq9"
        else f"{r['questionnaire_id']}: a safety item is positive with no documented risk "
        "assessment"
        for r in suicidality.unassessed_responses(current)
    ]


def _baseline(pre_dose: Sequence[Mapping[str, Any]], key: str, normal: int) -> int:
    row = _latest(pre_dose, key)
    return int(row[key]) if row is not None else normal


def evaluate(protocol: Protocol, current: Rows, now: datetime) -> Gate:
    """The gate for a session's current rows (``SessionLog.current`` per table) at ``now``."""
    window = protocol.discharge_freshness_minutes
    doses = list(current.get("doses", ()))
    last_dose = max((from_iso(d["observed_at"]) for d in doses), default=None)
    vitals = list(current.get("vitals", ()))
    observations = list(current.get("observations", ()))

    blockers = _alarm_blockers(current, now)
    blockers += _adverse_event_blockers(current)
    blockers += _suicidality_blockers(current)

    # Sedation and dissociation back to the patient's baseline, on a fresh observation.
    first_dose = min((from_iso(d["observed_at"]) for d in doses), default=None)
    pre = [o for o in observations if first_dose is None or from_iso(o["observed_at"]) < first_dose]
    baseline = {
        "moaas": _baseline(pre, "moaas", NORMAL_MOAAS),
        "dissociation": _baseline(pre, "dissociation", NORMAL_DISSOCIATION),
    }
    inputs: dict[str, InputValue] = {}
    for code in ("moaas", "dissociation"):
        item = _input(code, _latest(observations, code), now, last_dose, window)
        inputs[code] = item
        if not item.usable:
            blockers.append(item.problem)
            continue
        assert item.value is not None
        worse = item.value < baseline[code] if code == "moaas" else item.value > baseline[code]
        if worse:
            word = "Sedation" if code == "moaas" else "Dissociation"
            blockers.append(
                f"{word} not back to baseline: latest {item.label} {_num(item.value)} "
                f"(baseline {baseline[code]})"
            )

    # The score's measured inputs: fresh and after the last dose, else not used.
    for code in ("sbp", "hr", "spo2"):
        inputs[code] = _input(code, _latest(vitals, code), now, last_dose, window)
    for code in SCORE_INPUTS.get(protocol.discharge_score, ()):
        if code in ("moaas",):
            continue  # already judged above, with the same words
        if not inputs[code].usable:
            blockers.append(inputs[code].problem)

    # A complete set in one reading, within the window and after the last dose.
    complete = next(
        (
            v
            for v in reversed(vitals)
            if all(v.get(k) is not None for k in COMPLETE_SET)
            and last_dose is not None
            and from_iso(v["observed_at"]) >= last_dose
            and _age(now, v["observed_at"]) <= window
        ),
        None,
    )
    if complete is None:
        blockers.append(vitals_set_reason(window))
        set_item = InputValue(
            "vitals_set",
            LABELS["vitals_set"],
            None,
            "none in the window",
            None,
            None,
            False,
            vitals_set_reason(window),
        )
    else:
        set_item = InputValue(
            "vitals_set",
            LABELS["vitals_set"],
            None,
            _set_text(complete),
            from_iso(complete["observed_at"]),
            _age(now, complete["observed_at"]),
            True,
        )

    fresh: dict[str, Any] = {
        code: (int(item.value) if item.usable and item.value is not None else None)
        for code, item in inputs.items()
    }
    spo2_row = _latest(vitals, "spo2")
    fresh["on_oxygen"] = bool(inputs["spo2"].usable and spo2_row and spo2_row.get("on_oxygen"))
    before = [v for v in vitals if first_dose is None or from_iso(v["observed_at"]) < first_dose]
    for code in ("sbp", "hr"):
        row = _latest(before, code)
        fresh[f"{code}_baseline"] = row[code] if row is not None else None
    ordered = (
        *(inputs[c] for c in ("sbp", "hr", "spo2", "moaas", "dissociation")),
        set_item,
    )
    return Gate(
        blockers=tuple(blockers),
        inputs=ordered,
        fresh=fresh,
        complete_vitals=complete is not None,
        last_dose=last_dose,
        window_minutes=window,
        baseline=baseline,
    )


NOT_ASSESSED_READY = (
    "No discharge assessment found the patient ready: run the discharge check (or override it "
    "there with a reason)"
)


def home_refusals(protocol: Protocol, current: Rows, now: datetime) -> tuple[str, ...]:
    """Why ending the session with a "home" disposition is refused now (empty: allowed).

    Allowed when the latest discharge assessment was overridden with a reason within the
    freshness window (the override is in the record and the audit trail), or when it found the
    patient ready and the gate is still clear now (nothing new since: no alarm, no stale value).
    """
    assessments = list(current.get("discharge_assessments", ()))
    latest = assessments[-1] if assessments else None
    window = protocol.discharge_freshness_minutes
    if latest is not None and latest.get("override_reason"):
        if _age(now, latest["observed_at"]) <= window:
            return ()
        return (
            f"The discharge override is more than {window:g} min old: run the discharge check "
            "again",
        )
    reasons = list(evaluate(protocol, current, now).blockers)
    if latest is None or not latest.get("ready"):
        reasons.insert(0, NOT_ASSESSED_READY)
    return tuple(reasons)


__all__ = [
    "NORMAL_DISSOCIATION",
    "NORMAL_MOAAS",
    "Gate",
    "InputValue",
    "evaluate",
    "home_refusals",
    "vitals_set_reason",
]
