"""Dose guards and the blood pressure before a dose: what a protocol lets a clinician give.

Two rule sets, both read from the protocol file (every number labelled with its source):

* ``[[dose_guards]]``: per drug and route, the mg/kg range, the most per dose and per session, and
  the device step (esketamine comes in 28 mg nasal devices). A route with no guard for a drug
  that has guards is not allowed (esketamine is intranasal only). A dose outside a guard is refused
  unless the **second attending clinician** confirms it (a two-person check: someone other than
  the recorder, signed in with their password where accounts exist).
* ``[bp_before_dosing]``: the latest blood pressure before the dose above the caution line
  (Spravato label: > 140/90) needs a documented decision (proceed with a reason, or defer); at or
  above the hard limit (180/110 by default) the dose is refused without an override with a reason.

Plain functions of the protocol, the session's current rows and the proposed dose: the bedside
window asks them before it saves (to know what to ask the clinician), the store asks them again
before it commits (no caller can skip them) and the scenario runner asks them for a ``dose`` step,
so all three refuse the same dose with the same words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from kapmonitor.domain.clock import from_iso

Row = Mapping[str, Any]
BpLevel = Literal["ok", "caution", "hard_limit"]

# Audit actions: each is a clinician's decision, written in the dose's own transaction (or, for a
# deferral, on its own) into the append-only, hash-chained audit trail with names and reason.
BP_PROCEED = "dose_bp_proceed"
BP_OVERRIDE = "dose_bp_override"
BP_DEFER = "dose_bp_deferred"
GUARD_CONFIRMED = "dose_two_person_check"

_DRUG_WORDS = {"ketamine": "Racemic ketamine", "esketamine": "Esketamine"}
_ROUTE_WORDS = {
    "im": "intramuscular",
    "iv": "intravenous",
    "sublingual": "sublingual",
    "intranasal": "intranasal",
    "oral": "oral",
}


def _num(value: float) -> str:
    return f"{value:g}"


def drug_word(drug: str) -> str:
    return _DRUG_WORDS.get(drug, drug)


def route_word(route: str) -> str:
    return _ROUTE_WORDS.get(route, route)


# --- What the protocol file says -----------------------------------------------------------------


@dataclass(frozen=True)
class DoseGuard:
    """The dose range for one drug by one route; ``None`` means the protocol sets no such limit."""

    drug: str
    route: str
    source: str
    mg_per_kg_min: float | None = None
    mg_per_kg_max: float | None = None
    max_dose_mg: float | None = None
    max_session_mg: float | None = None
    device_mg: float | None = None  # each dose a whole number of devices

    def to_dict(self) -> dict[str, Any]:
        return {
            "drug": self.drug,
            "route": self.route,
            "source": self.source,
            "mg_per_kg_min": self.mg_per_kg_min,
            "mg_per_kg_max": self.mg_per_kg_max,
            "max_dose_mg": self.max_dose_mg,
            "max_session_mg": self.max_session_mg,
            "device_mg": self.device_mg,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DoseGuard:
        def opt(key: str) -> float | None:
            return None if d.get(key) is None else float(d[key])

        return cls(
            drug=str(d["drug"]),
            route=str(d["route"]),
            source=str(d["source"]),
            mg_per_kg_min=opt("mg_per_kg_min"),
            mg_per_kg_max=opt("mg_per_kg_max"),
            max_dose_mg=opt("max_dose_mg"),
            max_session_mg=opt("max_session_mg"),
            device_mg=opt("device_mg"),
        )


@dataclass(frozen=True)
class BpLimits:
    """Blood pressure before a dose: above ``caution`` asks for a decision; at or above
    ``hard`` refuses without an override."""

    caution_sbp: float
    caution_dbp: float
    caution_source: str
    hard_sbp: float
    hard_dbp: float
    hard_source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "caution_sbp": self.caution_sbp,
            "caution_dbp": self.caution_dbp,
            "caution_source": self.caution_source,
            "hard_sbp": self.hard_sbp,
            "hard_dbp": self.hard_dbp,
            "hard_source": self.hard_source,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BpLimits:
        return cls(
            float(d["caution_sbp"]),
            float(d["caution_dbp"]),
            str(d["caution_source"]),
            float(d["hard_sbp"]),
            float(d["hard_dbp"]),
            str(d["hard_source"]),
        )


_GUARD_KEYS = (
    "drug",
    "route",
    "source",
    "mg_per_kg_min",
    "mg_per_kg_max",
    "max_dose_mg",
    "max_session_mg",
    "device_mg",
)
_BP_KEYS = ("caution_sbp", "caution_dbp", "hard_sbp", "hard_dbp")


def parse_dose_guards(tables: Sequence[Any]) -> tuple[DoseGuard, ...]:
    """``[[dose_guards]]`` tables (protocol._Table objects) into guards; one per drug and route."""
    guards: list[DoseGuard] = []
    seen: set[tuple[str, str]] = set()
    for t in tables:
        t.only(_GUARD_KEYS)
        drug, route = t.ident("drug"), t.ident("route")
        if (drug, route) in seen:
            t.fail("route", f"{drug} by {route} already has a guard")
        seen.add((drug, route))
        numbers = {
            key: (None if not t.has(key) else t.number(key, above=0)) for key in _GUARD_KEYS[3:]
        }
        low, high = numbers["mg_per_kg_min"], numbers["mg_per_kg_max"]
        if low is not None and high is not None and low > high:
            t.fail("mg_per_kg_min", f"{_num(low)} is above mg_per_kg_max {_num(high)}")
        guards.append(DoseGuard(drug, route, t.source(), **numbers))
    return tuple(guards)


def parse_bp_limits(t: Any, sources: dict[str, str]) -> BpLimits:
    """``[bp_before_dosing]``: four sourced numbers (caution and hard limit, SBP and DBP)."""
    t.only(_BP_KEYS)
    values: dict[str, float] = {}
    for key in _BP_KEYS:
        values[key], sources[t.where(key)] = t.sourced(key, above=0)
    for part in ("sbp", "dbp"):
        if values[f"hard_{part}"] <= values[f"caution_{part}"]:
            t.fail(
                f"hard_{part}", f"must be above caution_{part} ({_num(values[f'caution_{part}'])})"
            )
    return BpLimits(
        values["caution_sbp"],
        values["caution_dbp"],
        sources[t.where("caution_sbp")],
        values["hard_sbp"],
        values["hard_dbp"],
        sources[t.where("hard_sbp")],
    )


# --- The proposed dose and what a clinician may add to it ---------------------------------------


@dataclass(frozen=True)
class DoseClearance:
    """What the clinicians documented for this dose, committed with it and audited.

    ``bp_reason``: why the dose goes ahead although the BP before it is above the caution line
    (a decision to proceed) or at the hard limit (an override). ``confirmed_by``: the second
    attending clinician who confirmed a dose outside the protocol's guards (not the recorder);
    ``signed_in`` says whether they typed their password (accounts) or were named and confirmed
    explicitly (no accounts configured); ``confirm_reason`` is why the dose is outside the range.
    """

    bp_reason: str = ""
    confirmed_by: str = ""
    confirm_reason: str = ""
    signed_in: bool = False


@dataclass(frozen=True)
class BpFinding:
    level: BpLevel
    sbp: float
    dbp: float
    observed_at: datetime
    message: str


@dataclass(frozen=True)
class DoseReview:
    """Everything the protocol says about one proposed dose before it is given."""

    bp: BpFinding | None  # None: the protocol has no BP limits, or no BP is on record
    guard_problems: tuple[str, ...]

    def needs_bp_decision(self) -> bool:
        return self.bp is not None and self.bp.level == "caution"

    def needs_bp_override(self) -> bool:
        return self.bp is not None and self.bp.level == "hard_limit"

    def needs_second_clinician(self) -> bool:
        return bool(self.guard_problems)

    def refusals(self, clearance: DoseClearance | None, recorder: str) -> list[str]:
        """The reasons this dose may not be committed with this clearance (empty: it may)."""
        clearance = clearance or DoseClearance()
        reasons: list[str] = []
        if self.bp is not None and self.bp.level != "ok" and not clearance.bp_reason.strip():
            reasons.append(self.bp.message)
        if self.guard_problems:
            second = clearance.confirmed_by.strip()
            if not second or not clearance.confirm_reason.strip():
                reasons.extend(
                    f"{p}: refused unless the second attending clinician confirms it, with a reason"
                    for p in self.guard_problems
                )
            elif second.casefold() == recorder.strip().casefold():
                reasons.append(
                    "The two-person check needs a second clinician: "
                    f"{second} is recording this dose"
                )
        return reasons


def latest_bp(vitals: Sequence[Row], at: datetime) -> Row | None:
    """The newest reading with both SBP and DBP at or before ``at`` (an HR-only set is no BP)."""
    found = [
        v
        for v in vitals
        if v.get("sbp") is not None
        and v.get("dbp") is not None
        and from_iso(v["observed_at"]) <= at
    ]
    return max(found, key=lambda v: from_iso(v["observed_at"])) if found else None


def bp_finding(limits: BpLimits | None, vitals: Sequence[Row], at: datetime) -> BpFinding | None:
    """How the latest BP before ``at`` compares with the protocol's pre-dose limits."""
    row = latest_bp(vitals, at)
    if limits is None or row is None:
        return None
    sbp, dbp = float(row["sbp"]), float(row["dbp"])
    bp = f"BP {_num(sbp)}/{_num(dbp)} mmHg before dosing"
    when = from_iso(row["observed_at"])
    if sbp >= limits.hard_sbp or dbp >= limits.hard_dbp:
        limit = f"{_num(limits.hard_sbp)}/{_num(limits.hard_dbp)}"
        text = (
            f"{bp} is at or above the protocol's hard limit {limit}: dosing is refused without "
            "an override with a reason"
        )
        return BpFinding("hard_limit", sbp, dbp, when, text)
    if sbp > limits.caution_sbp or dbp > limits.caution_dbp:
        limit = f"{_num(limits.caution_sbp)}/{_num(limits.caution_dbp)}"
        text = (
            f"{bp} is above {limit}: document a decision (proceed with a reason, or defer the dose)"
        )
        return BpFinding("caution", sbp, dbp, when, text)
    return BpFinding("ok", sbp, dbp, when, f"{bp}: within the protocol's limits")


def guard_problems(
    guards: Sequence[DoseGuard],
    drug: str,
    route: str,
    dose_mg: float,
    weight_kg: float | None,
    earlier_doses: Sequence[Row],
) -> tuple[str, ...]:
    """Each way this dose falls outside the protocol's guards for its drug and route.

    A drug with no guard at all is not judged here (the protocol sets no range for it); a drug
    with guards for other routes only is refused by route."""
    mine = [g for g in guards if g.drug == drug]
    if not mine:
        return ()
    name = drug_word(drug)
    guard = next((g for g in mine if g.route == route), None)
    if guard is None:
        allowed = ", ".join(route_word(g.route) for g in mine)
        return (
            f"{name} by the {route_word(route)} route is not in the protocol (allowed: {allowed})",
        )
    problems: list[str] = []
    per_kg = dose_mg / weight_kg if weight_kg else None
    if (
        per_kg is not None
        and guard.mg_per_kg_max is not None
        and per_kg > guard.mg_per_kg_max + 1e-9
    ):
        problems.append(
            f"{_num(dose_mg)} mg is {per_kg:.2f} mg/kg, above the protocol's "
            f"{_num(guard.mg_per_kg_max)} mg/kg for {name} {route_word(route)}"
        )
    # The minimum applies to the session's first dose of the drug: a booster tops it up.
    first = not any(d.get("drug") == drug for d in earlier_doses)
    if (
        first
        and per_kg is not None
        and guard.mg_per_kg_min is not None
        and per_kg < guard.mg_per_kg_min - 1e-9
    ):
        problems.append(
            f"{_num(dose_mg)} mg is {per_kg:.2f} mg/kg, below the protocol's "
            f"{_num(guard.mg_per_kg_min)} mg/kg for {name} {route_word(route)}"
        )
    if guard.max_dose_mg is not None and dose_mg > guard.max_dose_mg:
        problems.append(
            f"{_num(dose_mg)} mg is above the protocol's {_num(guard.max_dose_mg)} mg per dose "
            f"for {name}"
        )
    if (
        guard.device_mg is not None
        and abs(dose_mg / guard.device_mg - round(dose_mg / guard.device_mg)) > 1e-9
    ):
        problems.append(
            f"{_num(dose_mg)} mg is not a whole number of {_num(guard.device_mg)} mg devices"
        )
    if guard.max_session_mg is not None:
        before = sum(float(d["dose_mg"]) for d in earlier_doses if d.get("drug") == drug)
        total = before + dose_mg
        if total > guard.max_session_mg:
            problems.append(
                f"{_num(total)} mg of {name} this session is above the protocol's "
                f"{_num(guard.max_session_mg)} mg per session"
            )
    return tuple(problems)


def review_dose(
    protocol: Any,
    current: Mapping[str, Sequence[Row]],
    drug: str,
    route: str,
    dose_mg: float,
    weight_kg: float | None,
    at: datetime,
) -> DoseReview:
    """What the protocol says about giving ``dose_mg`` of ``drug`` by ``route`` at ``at``.

    ``current`` is the session's current rows per table (``SessionLog.current_rows``)."""
    if protocol is None:
        return DoseReview(None, ())
    vitals = current.get("vitals", ())
    bp = bp_finding(getattr(protocol, "bp_before_dosing", None), vitals, at)
    problems = guard_problems(
        getattr(protocol, "dose_guards", ()),
        drug,
        route,
        dose_mg,
        weight_kg,
        current.get("doses", ()),
    )
    return DoseReview(bp, problems)


def clearance_events(
    review: DoseReview, clearance: DoseClearance | None, recorder: str, dose: Mapping[str, Any]
) -> list[tuple[str, dict[str, Any]]]:
    """The audit entries (action, detail) a committed dose's clearance writes: who decided what,
    on which reading, and why; the two-person check names both clinicians."""
    if clearance is None:
        return []
    events: list[tuple[str, dict[str, Any]]] = []
    if review.bp is not None and review.bp.level != "ok" and clearance.bp_reason.strip():
        action = BP_OVERRIDE if review.bp.level == "hard_limit" else BP_PROCEED
        events.append(
            (
                action,
                {
                    "decision": "override" if review.bp.level == "hard_limit" else "proceed",
                    "reason": clearance.bp_reason.strip(),
                    "sbp": review.bp.sbp,
                    "dbp": review.bp.dbp,
                    "bp_observed_at": review.bp.observed_at.isoformat(),
                    "finding": review.bp.message,
                    "dose": dict(dose),
                    "recorded_by": recorder,
                },
            )
        )
    if review.guard_problems and clearance.confirmed_by.strip():
        events.append(
            (
                GUARD_CONFIRMED,
                {
                    "recorded_by": recorder,
                    "confirmed_by": clearance.confirmed_by.strip(),
                    "signed_in": clearance.signed_in,
                    "reason": clearance.confirm_reason.strip(),
                    "outside": list(review.guard_problems),
                    "dose": dict(dose),
                },
            )
        )
    return events


def deferral_detail(finding: BpFinding, reason: str, recorder: str) -> dict[str, Any]:
    """The audit detail of a decision to defer a dose because of the BP before it."""
    return {
        "decision": "defer",
        "reason": reason.strip(),
        "sbp": finding.sbp,
        "dbp": finding.dbp,
        "bp_observed_at": finding.observed_at.isoformat(),
        "finding": finding.message,
        "recorded_by": recorder,
    }
