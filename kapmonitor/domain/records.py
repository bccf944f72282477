"""The clinical entries a session is made of, as typed by a clinician and before storage.

Each record validates itself against the reference data, so the store refuses what the form
would refuse even when called from a script, and each knows the columns it fills. Times are
timezone-aware; the store adds ``recorded_at`` and the recorder.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from kapmonitor.domain.clock import to_iso
from kapmonitor.domain.dose_guards import DoseClearance
from kapmonitor.domain.reference import Reference
from kapmonitor.domain.rems import RemsStart
from kapmonitor.domain.validation import Collector, check_range, check_time
from kapmonitor.domain.vitals import VITAL_KEYS, VITAL_SIGNS

# CTCAE grade 4 (life-threatening) and 5 (death) meet the ICH E2A seriousness criteria
# "life-threatening" and "results in death" by their own definition.
SERIOUS_BY_DEFINITION = {4: "life_threatening", 5: "death"}
PATIENT_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$")
MIN_CLINICIANS = 2


def _fraction(value: float | None) -> bool:
    """A finite number with a fractional part (an integer vital typed as 35.5)."""
    return value is not None and math.isfinite(value) and value != int(value)


@dataclass(frozen=True)
class SessionStart:
    patient_code: str
    sex: str
    weight_kg: float
    indication: str
    clinicians: tuple[str, ...]
    started_at: datetime
    birth_year: int | None = None
    age_years: int | None = None
    indication_other: str = ""
    checklist: dict[str, bool] = field(default_factory=dict)
    concomitant: dict[str, bool] = field(default_factory=dict)
    # Esketamine REMS sessions: what the form needs and the log cannot derive, and the
    # contraindication screen (a "yes" or an unanswered item refuses the start).
    rems: RemsStart | None = None

    def effective_age(self) -> int | None:
        if self.age_years is not None:
            return self.age_years
        if self.birth_year is not None:
            return self.started_at.year - self.birth_year
        return None

    def validate(self, ref: Reference, now: datetime) -> None:
        errors = Collector()
        if not PATIENT_CODE.match(self.patient_code or ""):
            errors.add(
                "patient_code",
                "Patient code: 3–32 letters, digits, '-', '_' or '.', no spaces "
                "(use the clinic's pseudonymous code, never a name)",
            )
        if self.birth_year is None and self.age_years is None:
            errors.add("age", "Give the birth year or the age")
        if self.birth_year is not None and not 1900 <= self.birth_year <= self.started_at.year:
            errors.add("age", f"Birth year {self.birth_year} is not possible")
        else:
            check_range(errors, "age", self.effective_age(), ref.limits["age_years"])
        if self.sex not in ref.codes("sexes"):
            errors.add("sex", "Choose the sex")
        check_range(errors, "weight_kg", self.weight_kg, ref.limits["weight_kg"])
        if self.indication not in ref.codes("indications"):
            errors.add("indication", "Choose the indication")
        if self.indication == "other" and not self.indication_other.strip():
            errors.add("indication", "Indication 'Other': say what it is")
        names = [n.strip() for n in self.clinicians if n.strip()]
        if len({n.casefold() for n in names}) < MIN_CLINICIANS:
            errors.add(
                "clinicians",
                f"At least {MIN_CLINICIANS} different attending clinicians are required",
            )
        unknown = set(self.checklist) - ref.codes("eligibility_checklist")
        if unknown:
            errors.add("checklist", f"Unknown checklist items: {', '.join(sorted(unknown))}")
        missing = [
            c.label for c in ref.choices("eligibility_checklist") if not self.checklist.get(c.code)
        ]
        if missing:
            errors.add("checklist", "Eligibility and consent not confirmed: " + "; ".join(missing))
        unknown_meds = set(self.concomitant) - ref.codes("concomitant_medicines")
        if unknown_meds:
            errors.add("concomitant", f"Unknown medicines: {', '.join(sorted(unknown_meds))}")
        check_time(errors, "started_at", self.started_at, now)
        if self.rems is not None:
            errors.errors.extend(self.rems.problems())
        errors.raise_if_any()

    def session_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "patient_code": self.patient_code.strip(),
            "birth_year": self.birth_year,
            "age_years": self.effective_age(),
            "sex": self.sex,
            "weight_kg": float(self.weight_kg),
            "indication": self.indication,
            "indication_other": self.indication_other.strip() or None,
            "observed_at": to_iso(self.started_at),
        }
        for code, value in self.checklist.items():
            row[f"check_{code}"] = int(bool(value))
        for code, value in self.concomitant.items():
            row[f"med_{code}"] = int(bool(value))
        return row


class Entry:
    """A clinical entry that belongs to a session and lands in one table."""

    table: ClassVar[str]
    kind: ClassVar[str]
    observed_at: datetime

    def validate(self, ref: Reference, now: datetime) -> None:
        raise NotImplementedError

    def columns(self) -> dict[str, Any]:
        raise NotImplementedError

    def row(self) -> dict[str, Any]:
        return {**self.columns(), "observed_at": to_iso(self.observed_at)}


@dataclass(frozen=True)
class Dose(Entry):
    table: ClassVar[str] = "doses"
    kind: ClassVar[str] = "dose"
    drug: str
    route: str
    dose_mg: float
    observed_at: datetime
    lot_number: str = ""
    booster: bool = False
    drug_other: str = ""
    weight_kg: float | None = None  # from the session, to compute mg/kg at save time
    note: str = ""
    # What the clinicians documented for a dose the protocol questions (a BP decision or
    # override, the second clinician's confirmation): checked and audited by the store with the
    # dose, not a column of its own (see kapmonitor.domain.dose_guards).
    clearance: DoseClearance | None = field(default=None, compare=False)

    def mg_per_kg(self) -> float | None:
        if not self.weight_kg:
            return None
        return round(self.dose_mg / self.weight_kg, 3)

    def validate(self, ref: Reference, now: datetime) -> None:
        errors = Collector()
        if self.drug not in ref.codes("drugs"):
            errors.add("drug", "Choose the drug")
        if self.drug == "other" and not self.drug_other.strip():
            errors.add("drug", "Drug 'Other': name it")
        if self.route not in ref.codes("routes"):
            errors.add("route", "Choose the route")
        check_range(errors, "dose_mg", self.dose_mg, ref.limits["dose_mg"])
        check_time(errors, "observed_at", self.observed_at, now)
        errors.raise_if_any()

    def columns(self) -> dict[str, Any]:
        return {
            "drug": self.drug,
            "drug_other": self.drug_other.strip() or None,
            "route": self.route,
            "dose_mg": float(self.dose_mg),
            "dose_mg_per_kg": self.mg_per_kg(),
            "lot_number": self.lot_number.strip() or None,
            "is_booster": int(self.booster),
            "note": self.note.strip() or None,
        }


#: The record's vital-sign fields, from the registry (kapmonitor.domain.vitals), in its order.
VITAL_FIELDS: tuple[str, ...] = VITAL_KEYS


@dataclass(frozen=True)
class VitalSigns(Entry):
    """One set of vital signs. Every registry vital is a field; blank (None) is "not measured".

    ``etco2`` comes last so that the older positional order of the other fields still holds."""

    table: ClassVar[str] = "vitals"
    kind: ClassVar[str] = "vitals"
    observed_at: datetime
    hr: int | None = None
    sbp: int | None = None
    dbp: int | None = None
    spo2: int | None = None
    rr: int | None = None
    temp_c: float | None = None
    on_oxygen: bool = False
    note: str = ""
    etco2: int | None = None

    def validate(self, ref: Reference, now: datetime) -> None:
        errors = Collector()
        if all(getattr(self, f) is None for f in VITAL_FIELDS):
            errors.add("hr", "Enter at least one vital sign")
        if (self.sbp is None) != (self.dbp is None):
            errors.add("bp", "Blood pressure needs both systolic and diastolic, e.g. 120/80")
        for sign in VITAL_SIGNS:
            # Refused by the same plausibility range the form uses, under the form's field
            # (systolic and diastolic share the one "bp" entry).
            value = getattr(self, sign.key)
            check_range(errors, sign.field, value, ref.limits[sign.key])
            if sign.is_integer and _fraction(value):
                errors.add(sign.field, f"{sign.label}: whole numbers only (got {value:g})")
        if self.sbp is not None and self.dbp is not None and self.dbp >= self.sbp:
            errors.add("bp", f"Diastolic {self.dbp} must be below systolic {self.sbp}")
        check_time(errors, "observed_at", self.observed_at, now)
        errors.raise_if_any()

    def columns(self) -> dict[str, Any]:
        values: dict[str, Any] = {sign.key: getattr(self, sign.key) for sign in VITAL_SIGNS}
        return {**values, "on_oxygen": int(self.on_oxygen), "note": self.note.strip() or None}


@dataclass(frozen=True)
class Observation(Entry):
    table: ClassVar[str] = "observations"
    kind: ClassVar[str] = "observation"
    observed_at: datetime
    moaas: int | None = None
    rass: int | None = None
    dissociation: int | None = None
    features: tuple[str, ...] = ()
    cadss_total: int | None = None
    other_scores: dict[str, int] = field(default_factory=dict)
    note: str = ""

    def validate(self, ref: Reference, now: datetime) -> None:
        errors = Collector()
        scores = {"moaas": self.moaas, "rass": self.rass, "dissociation": self.dissociation}
        scores["cadss"] = self.cadss_total
        scores.update(self.other_scores)
        if all(v is None for v in scores.values()) and not self.features and not self.note.strip():
            errors.add("moaas", "Enter at least one score, feature or note")
        for scale_id, value in scores.items():
            if value is None:
                continue
            scale = ref.scales.get(scale_id)
            if scale is None:
                errors.add(scale_id, f"Unknown scale {scale_id!r}")
                continue
            try:
                scale.validate(int(value))
            except ValueError as exc:
                errors.add(scale_id, str(exc))
        known = {f.code for f in ref.scales["dissociation"].features}
        unknown = set(self.features) - known
        if unknown:
            errors.add("features", f"Unknown features: {', '.join(sorted(unknown))}")
        check_time(errors, "observed_at", self.observed_at, now)
        errors.raise_if_any()

    def columns(self) -> dict[str, Any]:
        return {
            "moaas": self.moaas,
            "rass": self.rass,
            "dissociation": self.dissociation,
            "features": json.dumps(sorted(self.features)),
            "cadss_total": self.cadss_total,
            "other_scores": json.dumps(self.other_scores, sort_keys=True),
            "note": self.note.strip() or None,
        }


@dataclass(frozen=True)
class AdverseEvent(Entry):
    table: ClassVar[str] = "adverse_events"
    kind: ClassVar[str] = "adverse_event"
    term: str
    grade: int
    observed_at: datetime  # onset
    verbatim: str = ""
    code: str = ""
    serious: bool = False
    serious_criterion: str = ""
    action: str = "none"
    action_detail: str = ""
    relatedness: str = "unknown"

    def label(self, ref: Reference) -> str:
        if self.term == "other":
            return self.verbatim.strip()
        return ref.label("adverse_effects", self.term)

    def validate(self, ref: Reference, now: datetime) -> None:
        errors = Collector()
        if self.term not in ref.codes("adverse_effects"):
            errors.add("term", "Choose the adverse effect from the list, or 'Other' with a term")
        if self.term == "other" and not self.verbatim.strip():
            errors.add("term", "Adverse effect 'Other': type the verbatim term")
        if str(self.grade) not in ref.codes("ctcae_grades"):
            errors.add("grade", "Grade must be 1–5 (CTCAE)")
        if self.grade in SERIOUS_BY_DEFINITION and not self.serious:
            errors.add(
                "serious",
                f"Grade {self.grade} is serious by definition (ICH E2A: life-threatening or "
                "fatal): mark the event serious and give its criterion",
            )
        if self.serious and self.serious_criterion not in ref.codes("seriousness_criteria"):
            errors.add("serious_criterion", "A serious event needs its seriousness criterion")
        if not self.serious and self.serious_criterion:
            errors.add(
                "serious_criterion", "A criterion was given but the event is not marked serious"
            )
        if self.action not in ref.codes("ae_actions"):
            errors.add("action", "Choose the action taken")
        if self.action == "other" and not self.action_detail.strip():
            errors.add("action", "Action 'Other': describe it")
        if self.relatedness not in ref.codes("ae_relatedness"):
            errors.add("relatedness", "Choose the relatedness")
        check_time(errors, "observed_at", self.observed_at, now)
        errors.raise_if_any()

    def columns(self) -> dict[str, Any]:
        return {
            "term": self.term,
            "verbatim": self.verbatim.strip() or None,
            "code": self.code.strip() or None,
            "grade": int(self.grade),
            "serious": int(self.serious),
            "serious_criterion": self.serious_criterion or None,
            "action": self.action,
            "action_detail": self.action_detail.strip() or None,
            "relatedness": self.relatedness,
        }


@dataclass(frozen=True)
class AdverseEventOutcome(Entry):
    table: ClassVar[str] = "adverse_event_outcomes"
    kind: ClassVar[str] = "adverse_event_outcome"
    adverse_event_id: int
    outcome: str
    observed_at: datetime
    note: str = ""

    def validate(self, ref: Reference, now: datetime) -> None:
        errors = Collector()
        if self.outcome not in ref.codes("ae_outcomes"):
            errors.add("outcome", "Choose the outcome")
        check_time(errors, "observed_at", self.observed_at, now)
        errors.raise_if_any()

    def columns(self) -> dict[str, Any]:
        return {
            "adverse_event_id": self.adverse_event_id,
            "outcome": self.outcome,
            "note": self.note.strip() or None,
        }


@dataclass(frozen=True)
class Intervention(Entry):
    table: ClassVar[str] = "interventions"
    kind: ClassVar[str] = "intervention"
    category: str
    observed_at: datetime
    detail: str = ""
    medication: str = ""

    def validate(self, ref: Reference, now: datetime) -> None:
        errors = Collector()
        if self.category not in ref.codes("intervention_kinds"):
            errors.add("category", "Choose what kind of intervention or note this is")
        if self.category == "medication" and not self.medication.strip():
            errors.add("medication", "Name the medication given (and its dose)")
        if self.category in ("other", "note") and not self.detail.strip():
            errors.add("detail", "Write the note")
        check_time(errors, "observed_at", self.observed_at, now)
        errors.raise_if_any()

    def columns(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "medication": self.medication.strip() or None,
            "detail": self.detail.strip() or None,
        }


@dataclass(frozen=True)
class PhaseChange(Entry):
    table: ClassVar[str] = "phase_changes"
    kind: ClassVar[str] = "phase"
    phase: str
    observed_at: datetime

    def validate(self, ref: Reference, now: datetime) -> None:
        errors = Collector()
        if self.phase not in ref.codes("phases"):
            errors.add("phase", f"Unknown phase {self.phase!r}")
        check_time(errors, "observed_at", self.observed_at, now)
        errors.raise_if_any()

    def columns(self) -> dict[str, Any]:
        return {"phase": self.phase}


@dataclass(frozen=True)
class SessionEnd(Entry):
    table: ClassVar[str] = "session_ends"
    kind: ClassVar[str] = "end"
    disposition: str
    observed_at: datetime
    escort: str = ""
    summary: str = ""
    disposition_other: str = ""

    def validate(self, ref: Reference, now: datetime) -> None:
        errors = Collector()
        if self.disposition not in ref.codes("dispositions"):
            errors.add("disposition", "Choose the discharge disposition")
        if self.disposition == "other" and not self.disposition_other.strip():
            errors.add("disposition", "Disposition 'Other': say where the patient went")
        if self.disposition == "home_with_escort" and not self.escort.strip():
            errors.add("escort", "Home with escort: name the escort (or their relation)")
        if not self.summary.strip():
            errors.add("summary", "Write a short summary of the session")
        check_time(errors, "observed_at", self.observed_at, now)
        errors.raise_if_any()

    def columns(self) -> dict[str, Any]:
        return {
            "disposition": self.disposition,
            "disposition_other": self.disposition_other.strip() or None,
            "escort": self.escort.strip() or None,
            "summary": self.summary.strip(),
        }


@dataclass(frozen=True)
class AlarmAcknowledgement(Entry):
    """A clinician saw an alarm and says what was done; the alarm stays until this exists."""

    table: ClassVar[str] = "alarm_acknowledgements"
    kind: ClassVar[str] = "alarm_ack"
    alarm_id: int
    response: str
    observed_at: datetime
    detail: str = ""
    symptoms: tuple[str, ...] = ()
    # The documented suicide risk assessment (method, outcome, actions, note) a suicidality
    # alarm needs; the store refuses that alarm's acknowledgement without it.
    risk_assessment: dict[str, Any] | None = None

    def validate(self, ref: Reference, now: datetime) -> None:
        errors = Collector()
        if self.response not in ref.codes("alarm_responses"):
            errors.add("response", "Choose the response taken")
        if self.response == "other" and not self.detail.strip():
            errors.add("detail", "Response 'Other': describe what was done")
        unknown = set(self.symptoms) - ref.codes("hypertension_symptoms")
        if unknown:
            errors.add("symptoms", f"Unknown symptoms: {', '.join(sorted(unknown))}")
        check_time(errors, "observed_at", self.observed_at, now)
        errors.raise_if_any()

    def columns(self) -> dict[str, Any]:
        return {
            "alarm_id": self.alarm_id,
            "response": self.response,
            "detail": self.detail.strip() or None,
            "symptoms": json.dumps(sorted(self.symptoms)),
            "risk_assessment": (
                json.dumps(self.risk_assessment, sort_keys=True, ensure_ascii=False)
                if self.risk_assessment
                else None
            ),
        }


@dataclass(frozen=True)
class Override(Entry):
    """A clinician overrode a protocol rule; the reason is part of the record."""

    table: ClassVar[str] = "overrides"
    kind: ClassVar[str] = "override"
    override: str
    reason: str
    observed_at: datetime

    def validate(self, ref: Reference, now: datetime) -> None:
        errors = Collector()
        if self.override not in ref.codes("override_kinds"):
            errors.add("override", f"Unknown override {self.override!r}")
        if not self.reason.strip():
            errors.add("reason", "An override needs a reason")
        check_time(errors, "observed_at", self.observed_at, now)
        errors.raise_if_any()

    def columns(self) -> dict[str, Any]:
        return {"kind": self.override, "reason": self.reason.strip()}


@dataclass(frozen=True)
class DischargeAssessment(Entry):
    table: ClassVar[str] = "discharge_assessments"
    kind: ClassVar[str] = "discharge_assessment"
    score_name: str
    total: int
    maximum: int
    pass_mark: int
    passed: bool
    items: tuple[dict[str, Any], ...]
    checklist: dict[str, bool]
    ready: bool
    reasons: tuple[str, ...]
    observed_at: datetime
    override_reason: str = ""

    def validate(self, ref: Reference, now: datetime) -> None:
        errors = Collector()
        if self.score_name not in ("aldrete", "padss"):
            errors.add("score_name", f"Unknown discharge score {self.score_name!r}")
        if not 0 <= self.total <= self.maximum:
            errors.add("total", f"Score {self.total} is outside 0–{self.maximum}")
        check_time(errors, "observed_at", self.observed_at, now)
        errors.raise_if_any()

    def columns(self) -> dict[str, Any]:
        return {
            "score_name": self.score_name,
            "total": self.total,
            "maximum": self.maximum,
            "pass_mark": self.pass_mark,
            "passed": int(self.passed),
            "items": json.dumps(list(self.items)),
            "checklist": json.dumps(self.checklist, sort_keys=True),
            "ready": int(self.ready),
            "reasons": json.dumps(list(self.reasons)),
            "override_reason": self.override_reason.strip() or None,
        }


@dataclass(frozen=True)
class QuestionnaireResponse(Entry):
    table: ClassVar[str] = "questionnaire_responses"
    kind: ClassVar[str] = "questionnaire"
    questionnaire_id: str
    timing: str
    answers: dict[str, Any]
    observed_at: datetime
    total: int | None = None
    band: str = ""
    safety_flags: tuple[str, ...] = ()

    def validate(self, ref: Reference, now: datetime) -> None:
        errors = Collector()
        if self.timing not in ("pre", "post", "follow_up"):
            errors.add("timing", f"Unknown timing {self.timing!r}")
        if not self.answers:
            errors.add("answers", "No answers were given")
        check_time(errors, "observed_at", self.observed_at, now)
        errors.raise_if_any()

    def columns(self) -> dict[str, Any]:
        return {
            "questionnaire_id": self.questionnaire_id,
            "timing": self.timing,
            "answers": json.dumps(self.answers, sort_keys=True, ensure_ascii=False),
            "total": self.total,
            "band": self.band or None,
            "safety_flags": json.dumps(list(self.safety_flags), ensure_ascii=False),
        }
