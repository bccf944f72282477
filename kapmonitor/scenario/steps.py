"""What each scenario step kind does: one small function per kind, registered by ``@step``.

Each function makes the same store and domain calls the bedside window makes for that action
(the window's form builds the same record; the window's gate is asked first where it has one),
so a step refused here is refused there, with the same words. A function may raise the store's
``ValidationError`` or ``StoreError``: the runner turns either into a ``refused`` line with the
messages the window would show. It returns ``None``, or a dict of extra output keys (the
discharge check adds ``ready`` and ``blockers``).

To add a step kind, add one function here:

    @step("bp_decision", Fields({"decision": OneOf("proceed", "defer"), "reason": Text()},
                               required=("decision",)))
    def bp_decision(ctx: Context, payload: dict[str, Any]) -> StepResult:
        ctx.add(SomeRecord(..., observed_at=ctx.now()))
        return None

and describe it in docs/scenarios.md. The ``Fields`` description is what the format check uses
to refuse a malformed step before anything runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kapmonitor.domain import checklists, discharge_check, dose_gate, dose_guards
from kapmonitor.domain import questionnaires as questionnaire_data
from kapmonitor.domain.discharge import CHECKLIST
from kapmonitor.domain.protocol import Protocol
from kapmonitor.domain.records import (
    AdverseEvent,
    AdverseEventOutcome,
    AlarmAcknowledgement,
    DischargeAssessment,
    Dose,
    Entry,
    Intervention,
    Observation,
    Override,
    PhaseChange,
    QuestionnaireResponse,
    SessionEnd,
    SessionStart,
    VitalSigns,
)
from kapmonitor.domain.reference import default_reference
from kapmonitor.domain.rems import RemsStart, default_rems_defaults
from kapmonitor.domain.validation import FieldError, ValidationError
from kapmonitor.domain.vitals import VITAL_SIGNS
from kapmonitor.scenario.format import (
    Boolean,
    Either,
    Fields,
    Integer,
    ListOf,
    MapOf,
    Number,
    OneOf,
    Scenario,
    Spec,
    Text,
)
from kapmonitor.store.session_store import SessionLog, SessionStore

StepResult = dict[str, Any] | None


@dataclass
class Context:
    """What a step function works with: the store, the session, the clock and who records."""

    store: SessionStore
    session_id: str
    protocol: Protocol
    by: str
    questionnaires: dict[str, questionnaire_data.Questionnaire]
    scenario: Scenario | None = None  # the patient and clinicians the session starts with

    def now(self) -> datetime:
        return self.store.clock.now()

    def log(self) -> SessionLog:
        return self.store.load(self.session_id)

    def add(self, entry: Entry) -> int:
        """Commit one entry as the window's save does; raises the store's refusal."""
        return self.store.add(self.session_id, entry, self.by).primary_id


@dataclass(frozen=True)
class StepKind:
    name: str
    spec: Spec
    run: Callable[[Context, Any], StepResult]


KINDS: dict[str, StepKind] = {}


def step(name: str, spec: Spec) -> Callable[[Callable[[Context, Any], StepResult]], Any]:
    """Register ``function`` as the handler of step kind ``name``, accepting ``spec``."""

    def register(function: Callable[[Context, Any], StepResult]) -> Any:
        if name in KINDS:
            raise ValueError(f"step kind {name!r} is registered twice")
        KINDS[name] = StepKind(name, spec, function)
        return function

    return register


def refuse(message: str, field_name: str = "step") -> ValidationError:
    """A refusal in the store's own shape, for a gate the window applies before the store."""
    return ValidationError(FieldError(field_name, message))


# --- starting --------------------------------------------------------------------------------

# What a scenario's REMS start details are when it names none: a plausible, complete form with
# every contraindication answered "no" (the start dialog asks these for a REMS protocol).
REMS_DEFAULTS: dict[str, Any] = {
    "first_treatment": False,
    "clinician_phone": "+1 555 0100",
    "clinician_email": "monitoring@clinic.example",
    "setting_name": "Scenario clinic",
    "setting_address": "1 Example Street",
}


@step(
    "start",
    Fields(
        {
            "rems": Fields(
                {
                    "first_treatment": Boolean(),
                    "clinician_phone": Text(),
                    "clinician_email": Text(),
                    "setting_name": Text(),
                    "setting_address": Text(),
                    "contraindications": MapOf(Either(Boolean(), OneOf(None))),
                }
            )
        }
    ),
)
def start(ctx: Context, payload: dict[str, Any]) -> StepResult:
    """Start the session as the start dialog does: the scenario's patient and clinicians, the
    eligibility checklist confirmed, the protocol from the window's catalogue, and for a REMS
    protocol the REMS start details and contraindication screen (``rems`` overrides the
    defaults: e.g. ``{"contraindications": {"avm": true}}``). Implicit, with defaults, when a
    scenario's first step is not ``start``."""
    scenario = ctx.scenario
    if scenario is None:
        raise ValueError("the start step needs the scenario")
    patient = scenario.patient
    ref = default_reference()
    rems = None
    if ctx.protocol.rems:
        given = payload.get("rems", {})
        screen = {c.code: False for c in default_rems_defaults().contraindications}
        screen.update(given.get("contraindications", {}))
        rems = RemsStart(
            **{**REMS_DEFAULTS, **{k: v for k, v in given.items() if k != "contraindications"}},
            contraindications=screen,
        )
    elif "rems" in payload:
        raise refuse(
            f"Protocol {ctx.protocol.id!r} is not a REMS protocol: no REMS details", "rems"
        )
    record = SessionStart(
        patient_code=str(patient["code"]),
        sex=str(patient["sex"]),
        weight_kg=float(patient["weight_kg"]),
        indication=str(patient["indication"]),
        clinicians=scenario.clinicians,
        started_at=ctx.now(),
        birth_year=int(patient["birth_year"]),
        checklist={c.code: True for c in ref.choices("eligibility_checklist")},
        rems=rems,
    )
    ctx.session_id = ctx.store.start_session(record, ctx.by, protocol=ctx.protocol)
    return None


# --- recording -------------------------------------------------------------------------------


@step(
    "vitals",
    Fields(
        {
            **{v.key: Integer() if v.is_integer else Number() for v in VITAL_SIGNS},
            "on_oxygen": Boolean(),
            "note": Text(),
        }
    ),
)
def vitals(ctx: Context, payload: dict[str, Any]) -> StepResult:
    """A vitals set, as the vitals form saves it; NEWS2 and alarms are derived by the store.
    Every registry vital may be given (EtCO₂ as ``etco2``); whole-number vitals stay integers."""
    values = {
        v.key: (int(payload[v.key]) if v.is_integer else payload[v.key])
        for v in VITAL_SIGNS
        if payload.get(v.key) is not None
    }
    ctx.add(
        VitalSigns(
            observed_at=ctx.now(),
            on_oxygen=payload.get("on_oxygen", False),
            note=payload.get("note", ""),
            **values,
        )
    )
    return None


@step(
    "dose",
    Fields(
        {
            "drug": Text(),
            "route": Text(),
            "mg": Number(),
            "lot": Text(),
            "booster": Boolean(),
            "drug_other": Text(),
            "note": Text(),
            # What the dose form asks when the protocol questions the dose (dose_guards):
            "bp_decision": Fields(
                {"decision": OneOf("proceed", "override"), "reason": Text()},
                required=("decision", "reason"),
            ),
            "confirmed_by": Text(),
            "confirm_reason": Text(),
            "signed_in": Boolean(),
        },
        required=("drug", "route", "mg"),
    ),
)
def dose(ctx: Context, payload: dict[str, Any]) -> StepResult:
    """A dose: the window's gate first (protocol_support.dose_allowed asks the same
    domain function before it opens the form), then the dose form's record, with what the form
    asked: a BP decision (proceed) or override with a reason, and the second clinician's
    confirmation (``confirmed_by``, ``confirm_reason``) for a dose outside the guards."""
    log = ctx.log()
    blocks = dose_gate.dose_blocks(ctx.protocol, log.current_rows())
    if blocks:
        raise ValidationError([FieldError("dose_mg", b.message) for b in blocks])
    ctx.add(
        Dose(
            drug=payload["drug"],
            route=payload["route"],
            dose_mg=float(payload["mg"]),
            observed_at=ctx.now(),
            lot_number=payload.get("lot", ""),
            booster=payload.get("booster", False),
            drug_other=payload.get("drug_other", ""),
            weight_kg=log.session["weight_kg"],
            note=payload.get("note", ""),
            clearance=dose_guards.DoseClearance(
                bp_reason=payload.get("bp_decision", {}).get("reason", ""),
                confirmed_by=payload.get("confirmed_by", ""),
                confirm_reason=payload.get("confirm_reason", ""),
                signed_in=payload.get("signed_in", False),
            ),
        )
    )
    return None


@step(
    "bp_decision",
    Fields(
        {
            "decision": OneOf("defer"),
            "reason": Text(),
            "drug": Text(),
            "route": Text(),
            "mg": Number(),
        },
        required=("decision", "reason"),
    ),
)
def bp_decision(ctx: Context, payload: dict[str, Any]) -> StepResult:
    """The dose form's "Defer the dose" answer: recorded (audited) when the BP before dosing
    asks for a decision; refused when it does not (nothing to defer for)."""
    log = ctx.log()
    review = dose_guards.review_dose(
        ctx.protocol,
        log.current_rows(("vitals", "doses")),
        payload.get("drug", ""),
        payload.get("route", ""),
        float(payload.get("mg", 0)),
        log.session["weight_kg"],
        ctx.now(),
    )
    if review.bp is None or review.bp.level == "ok":
        raise refuse("The BP before dosing asks for no decision", "decision")
    ctx.store.record_dose_deferral(ctx.session_id, review.bp, payload["reason"], ctx.by)
    return None


@step(
    "override",
    Fields({"kind": Text(), "reason": Text()}, required=("kind", "reason")),
)
def override(ctx: Context, payload: dict[str, Any]) -> StepResult:
    """A clinician overrides a protocol rule with a reason (e.g. dose_without_baseline)."""
    ctx.add(Override(payload["kind"], payload["reason"], ctx.now()))
    return None


@step(
    "observation",
    Fields(
        {
            "moaas": Integer(),
            "rass": Integer(),
            "dissociation": Integer(),
            "cadss": Integer(),
            "features": ListOf(Text()),
            "other_scores": MapOf(Integer()),
            "note": Text(),
        }
    ),
)
def observation(ctx: Context, payload: dict[str, Any]) -> StepResult:
    """Sedation and dissociation scores, as the observation form saves them."""
    ctx.add(
        Observation(
            observed_at=ctx.now(),
            moaas=payload.get("moaas"),
            rass=payload.get("rass"),
            dissociation=payload.get("dissociation"),
            cadss_total=payload.get("cadss"),
            features=tuple(payload.get("features", ())),
            other_scores={k: int(v) for k, v in payload.get("other_scores", {}).items()},
            note=payload.get("note", ""),
        )
    )
    return None


@step(
    "adverse_event",
    Fields(
        {
            "term": Text(),
            "grade": Integer(),
            "verbatim": Text(),
            "code": Text(),
            "serious": Boolean(),
            "serious_criterion": Text(),
            "action": Text(),
            "action_detail": Text(),
            "relatedness": Text(),
        },
        required=("term", "grade"),
    ),
)
def adverse_event(ctx: Context, payload: dict[str, Any]) -> StepResult:
    """An adverse effect, as the adverse-event form saves it (onset now)."""
    ctx.add(
        AdverseEvent(
            term=payload["term"],
            grade=int(payload["grade"]),
            observed_at=ctx.now(),
            verbatim=payload.get("verbatim", ""),
            code=payload.get("code", ""),
            serious=payload.get("serious", False),
            serious_criterion=payload.get("serious_criterion", ""),
            action=payload.get("action", "none"),
            action_detail=payload.get("action_detail", ""),
            relatedness=payload.get("relatedness", "unknown"),
        )
    )
    return None


@step(
    "ae_outcome",
    Fields({"term": Text(), "outcome": Text(), "note": Text()}, required=("outcome",)),
)
def ae_outcome(ctx: Context, payload: dict[str, Any]) -> StepResult:
    """The outcome of an open adverse event: the latest open one, or the latest of ``term``."""
    open_events = ctx.log().open_adverse_events()
    if "term" in payload:
        open_events = [r for r in open_events if r["term"] == payload["term"]]
    if not open_events:
        what = f" {payload['term']!r}" if "term" in payload else ""
        raise refuse(f"No open adverse event{what} to record an outcome for", "adverse_event_id")
    ctx.add(
        AdverseEventOutcome(
            open_events[-1]["id"], payload["outcome"], ctx.now(), note=payload.get("note", "")
        )
    )
    return None


@step(
    "questionnaire",
    Fields(
        {
            "id": Text(),
            "answers": Either(ListOf(Either(Integer(), Text())), MapOf(Either(Integer(), Text()))),
            "timing": OneOf("pre", "post", "follow_up"),
        },
        required=("id", "answers"),
    ),
)
def questionnaire(ctx: Context, payload: dict[str, Any]) -> StepResult:
    """A questionnaire the patient answered, scored and flagged as the questionnaire window
    saves it. ``answers`` is a list in item order, or an object by item id."""
    found = ctx.questionnaires.get(payload["id"])
    if found is None:
        known = ", ".join(sorted(ctx.questionnaires))
        raise refuse(f"Unknown questionnaire {payload['id']!r} (known: {known})", "questionnaire")
    raw = payload["answers"]
    if isinstance(raw, list):
        if len(raw) > len(found.items):
            raise refuse(
                f"{found.title} has {len(found.items)} items; {len(raw)} answers were given",
                "answers",
            )
        answers = {item.id: value for item, value in zip(found.items, raw, strict=False)}
    else:
        answers = dict(raw)
    try:
        total = found.total(answers)
        band = found.band_for(total) if total is not None else None
    except ValueError as exc:
        raise refuse(str(exc), "answers") from exc
    timing = payload.get("timing") or ("pre" if ctx.log().first_dose_at() is None else "post")
    ctx.add(
        QuestionnaireResponse(
            found.id,
            timing,
            answers,
            ctx.now(),
            total=total,
            band=band or "",
            safety_flags=tuple(questionnaire_data.safety_flags(found, answers)),
        )
    )
    return None


RISK_ASSESSMENT = Fields(
    {"method": Text(), "outcome": Text(), "actions": ListOf(Text()), "note": Text()}
)


@step(
    "acknowledge",
    Either(
        OneOf("all"),
        Fields(
            {
                "parameter": Text(),
                "alarm": Text(),
                "response": Text(),
                "detail": Text(),
                "symptoms": ListOf(Text()),
                "risk_assessment": RISK_ASSESSMENT,
            }
        ),
    ),
)
def acknowledge(ctx: Context, payload: str | dict[str, Any]) -> StepResult:
    """Acknowledge active alarms, as the alarm dialog saves each: ``"all"``, or those of one
    ``parameter`` or one rule id (``alarm``), with a response (default: rechecked) and, for a
    suicidality alarm, the documented ``risk_assessment``. Each alarm is acknowledged in turn,
    as the window does one at a time; if any is refused the step is refused with every reason
    (the others stay acknowledged, as they would at the bedside)."""
    options = payload if isinstance(payload, dict) else {}
    active = ctx.log().active_alarms()
    if "parameter" in options:
        active = [a for a in active if a["parameter"] == options["parameter"]]
    if "alarm" in options:
        active = [a for a in active if a["rule_id"] == options["alarm"]]
    if not active:
        raise refuse("No active alarm to acknowledge", "response")
    refusals: list[FieldError] = []
    for alarm in active:
        try:
            ctx.add(
                AlarmAcknowledgement(
                    alarm["id"],
                    options.get("response", "rechecked"),
                    ctx.now(),
                    detail=options.get("detail", ""),
                    symptoms=tuple(options.get("symptoms", ())),
                    risk_assessment=options.get("risk_assessment"),
                )
            )
        except ValidationError as exc:
            refusals += [e for e in exc.errors if e not in refusals]
    if refusals:
        raise ValidationError(refusals)
    return None


@step(
    "checklist_step",
    Fields({"alarm": Text(), "step": Text(), "note": Text()}, required=("alarm", "step")),
)
def checklist_step(ctx: Context, payload: dict[str, Any]) -> StepResult:
    """Tick one step of the checklist an alarm shows (airway, escalation), as ticking it in the
    alarm dialog saves it: on the newest alarm of rule ``alarm`` (e.g. ae_serious), now, by the
    step's clinician. The store refuses an unknown step or one already ticked."""
    alarms = [a for a in ctx.log().current("alarms") if a["rule_id"] == payload["alarm"]]
    if not alarms:
        raise refuse(f"No alarm {payload['alarm']!r} in this session", "step")
    alarm = alarms[-1]
    found = checklists.for_alarm(alarm)
    if not found:
        raise refuse(f"Alarm {payload['alarm']!r} has no checklist", "step")
    owner = next((c for c in found if c.step(payload["step"]) is not None), found[0])
    ctx.add(
        checklists.AlarmChecklistStep(
            alarm["id"], owner.id, payload["step"], ctx.now(), note=payload.get("note", "")
        )
    )
    return None


@step("phase", Text())
def phase(ctx: Context, payload: str) -> StepResult:
    """Move the session to a phase (monitoring, recovery...), as the phase button does."""
    ctx.add(PhaseChange(payload, ctx.now()))
    return None


@step("note", Text())
def note(ctx: Context, payload: str) -> StepResult:
    """A free-text note, as the note button saves it."""
    ctx.add(Intervention("note", ctx.now(), detail=payload))
    return None


@step(
    "intervention",
    Fields({"category": Text(), "detail": Text(), "medication": Text()}, required=("category",)),
)
def intervention(ctx: Context, payload: dict[str, Any]) -> StepResult:
    """An intervention (medication, support, music/mask...), as the intervention form saves it."""
    ctx.add(
        Intervention(
            payload["category"],
            ctx.now(),
            detail=payload.get("detail", ""),
            medication=payload.get("medication", ""),
        )
    )
    return None


@step(
    "discharge_check",
    Fields(
        {
            "assessment": MapOf(Integer()),
            "checklist": Either(OneOf("all"), MapOf(Boolean())),
            "override": Text(),
            "record": Boolean(),
        }
    ),
)
def discharge_check_step(ctx: Context, payload: dict[str, Any]) -> StepResult:
    """The discharge check, computed by the same domain code as the discharge dialog.

    ``assessment`` gives the items a clinician judges (Aldrete activity/respiration; PADSS
    ambulation, nausea_vomiting, pain); unnamed ones are judged at their best, so the verdict
    turns on what the record holds. ``checklist`` is "all" (the default) or the items ticked.
    Then the assessment is recorded as "Record assessment" does, with ``override`` as the
    reason for "Discharge anyway" when not ready; ``"record": false`` only computes."""
    protocol = ctx.protocol
    log = ctx.log()
    now = ctx.now()
    facts = discharge_check.discharge_facts(protocol, log.current_rows(), now)
    judged: dict[str, int | None] = {
        code: discharge_check.best_points(protocol.discharge_score, code)
        for code in discharge_check.judged_codes(protocol.discharge_score)
    }
    assessment = payload.get("assessment", {})
    unknown = sorted(set(assessment) - set(judged))
    if unknown:
        raise refuse(
            f"{unknown[0]!r} is not an item the clinician judges in the "
            f"{protocol.discharge_score} score (judged: {', '.join(judged)})",
            "assessment",
        )
    judged.update(assessment)
    ticks = payload.get("checklist", "all")
    checklist = {code: True for code, _ in CHECKLIST} if ticks == "all" else dict(ticks)
    unknown = sorted(set(checklist) - {code for code, _ in CHECKLIST})
    if unknown:
        codes = ", ".join(code for code, _ in CHECKLIST)
        raise refuse(f"{unknown[0]!r} is not a checklist item (items: {codes})", "checklist")
    try:
        check = discharge_check.assess(protocol, facts, judged, checklist, now)
    except ValueError as exc:
        raise refuse(str(exc), "assessment") from exc
    out: dict[str, Any] = {"ready": check.ready, "blockers": list(check.reasons)}
    reason = payload.get("override", "") if not check.ready else ""
    if payload.get("record", True):
        if check.problem:
            raise _with(refuse(check.problem, "score"), out)
        if check.score is None:
            raise _with(refuse("The discharge score is incomplete", "score"), out)
        ctx.add(
            discharge_check.assessment_record(check.score, checklist, check.readiness, now, reason)
        )
    out["cleared"] = check.ready or bool(reason)
    return out


def _with(error: ValidationError, extra: dict[str, Any]) -> ValidationError:
    """Attach output keys to a refusal, so a refused discharge check still says why."""
    error.scenario_extra = extra  # type: ignore[attr-defined]
    return error


@step(
    "end",
    Fields(
        {
            "disposition": Text(),
            "escort": Text(),
            "summary": Text(),
            "disposition_other": Text(),
        },
        required=("disposition",),
    ),
)
def end(ctx: Context, payload: dict[str, Any]) -> StepResult:
    """End the session with a disposition, as the end form saves it (the store refuses
    discharge home without a cleared discharge check)."""
    disposition = payload["disposition"]
    escort = payload.get("escort", "Escort (scenario)" if disposition == "home_with_escort" else "")
    ctx.add(
        SessionEnd(
            disposition,
            ctx.now(),
            escort=escort,
            summary=payload.get("summary", "Scenario run"),
            disposition_other=payload.get("disposition_other", ""),
        )
    )
    return None


# --- the REMS form --------------------------------------------------------------------------


def _rems_session(ctx: Context) -> None:
    if not ctx.protocol.rems:
        raise refuse(f"Protocol {ctx.protocol.id!r} is not a REMS protocol: no REMS form", "rems")


@step("rems_form", Fields({}))
def rems_form(ctx: Context, payload: dict[str, Any]) -> StepResult:
    """The REMS Patient Monitoring Form as the REMS summary and the review fill it from the
    record (``rems_store.form_fields``): each field's answer by key ("" when the log cannot fill
    it), plus ``submission`` (due date, who submitted it, when); ``rems_missing`` lists the
    unfilled fields, ``rems_flags`` the answers to check (e.g. a stale before-the-end BP)."""
    from kapmonitor.store import rems_store

    _rems_session(ctx)
    fields = rems_store.form_fields(ctx.store.db, ctx.log())
    status = rems_store.status(ctx.store.db, ctx.session_id, ctx.now().astimezone().date())
    return {
        "rems": {**{f.key: f.value for f in fields}, "submission": status.text()},
        "rems_missing": [f.key for f in fields if not f.filled],
        "rems_flags": {f.key: f.flag for f in fields if f.flag},
    }


@step(
    "rems_submitted",
    Fields({"by": Text(), "reference": Text(), "note": Text()}, required=("by",)),
)
def rems_submitted(ctx: Context, payload: dict[str, Any]) -> StepResult:
    """The review window's "Mark REMS form submitted…": who submitted it, now (append-only,
    audited; a second mark is refused)."""
    from kapmonitor.store import rems_store

    rems_store.mark_submitted(
        ctx.store.db,
        ctx.session_id,
        payload["by"],
        ctx.now(),
        ctx.by,
        ctx.store.clock,
        reference=payload.get("reference", ""),
        note=payload.get("note", ""),
    )
    return None


@step(
    "news2_scale",
    Fields({"scale": Integer(), "reason": Text()}, required=("scale",)),
)
def news2_scale(ctx: Context, payload: dict[str, Any]) -> StepResult:
    """View → NEWS2 SpO₂ scale…: a clinician chooses Scale 2 (or 1) for the patient with the
    reason; without a reason the store refuses it, as the form does. Readings from then on are
    scored on that scale."""
    from kapmonitor.domain.news2 import ScaleChoice

    ctx.add(ScaleChoice(int(payload["scale"]), payload.get("reason", ""), ctx.now()))
    return None


__all__ = ["KINDS", "Context", "DischargeAssessment", "StepKind", "StepResult", "step"]


@step("checkpoint", Fields({"id": Text()}, required=("id",)))
def checkpoint(ctx: Context, payload: dict[str, Any]) -> StepResult:
    """Whether a fixed check of the protocol (e.g. the ~40 min BP check ``rems_40``) is met by
    now, judged as the window's schedule panel judges it: ``committed`` when a reading with the
    vitals it names fell within its window, ``refused`` (saying why) when it was missed or is
    still open. Records nothing."""
    from kapmonitor.domain.schedule import compute_schedule
    from kapmonitor.domain.vital_alerts import VITAL_NAMES, vital_readings

    point = next((c for c in ctx.protocol.checkpoints if c.id == payload["id"]), None)
    if point is None:
        raise refuse(f"The protocol has no checkpoint {payload['id']!r}", "id")
    log = ctx.log()
    state = compute_schedule(
        ctx.protocol,
        log.started_at(),
        log.first_dose_at(),
        log.vitals_times(),
        ctx.now(),
        log.phase(),
        log.ended_at(),
        vital_readings=vital_readings(
            log.current("vitals"), log.current("observations"), log.current("alarms")
        ),
    )
    found = next(
        (c for c in state.history if c.kind == "checkpoint" and c.label == point.label), None
    )
    if found is not None and found.status == "done":
        return None
    needs = " and ".join(VITAL_NAMES.get(v, v) for v in point.vitals) or "vitals"
    status = found.status if found is not None else "not met yet"
    raise refuse(
        f"{point.label} {status}: no reading with {needs} within ± {point.window_minutes:g} min "
        f"of minute {point.minute:g}",
        "checkpoint",
    )


# --- device feeds (issue 13) -----------------------------------------------------------------

_DEVICE_VITALS = ("spo2", "hr", "rr", "sbp", "dbp", "etco2", "temp_c")


@step(
    "device",
    Fields(
        {
            **{key: Number() for key in _DEVICE_VITALS},
            "seconds": Integer(),
            "flags": ListOf(OneOf("probe_off", "artefact", "preliminary", "out_of_range")),
            "device": Text(),
        }
    ),
)
def device(ctx: Context, payload: dict[str, Any]) -> StepResult:
    """A bedside monitor's messages, stored as the device listener stores them (pending; the
    protocol's automatic confirmations and alarms derived by the store in the same write): one
    message a second for ``seconds`` (default 1) carrying the values given, from ``device``
    (default "SCENARIO^MON"), each value flagged with ``flags`` if given. The clock advances a
    second per message, so a step ``at`` 30 with ``seconds`` 120 runs to 32."""
    from kapmonitor.devices.reading import DeviceReading, ReadingFlag
    from kapmonitor.store import device_store

    values = {key: payload[key] for key in _DEVICE_VITALS if key in payload}
    if not values:
        raise refuse("A device step names at least one value (spo2, hr, ...)", "device")
    flags = frozenset(ReadingFlag(f) for f in payload.get("flags", ()))
    source = str(payload.get("device", "SCENARIO^MON"))
    clock = ctx.store.clock
    for index in range(max(1, int(payload.get("seconds", 1)))):
        if index:
            clock.advance(seconds=1)  # type: ignore[attr-defined]  # the runner's FakeClock
        now = ctx.now()
        readings = [
            DeviceReading(
                device_id=source,
                source="mllp",  # as a monitor on the network sends it (the store takes three)
                message_id=f"{now:%Y%m%d%H%M%S}-{index}",
                received_at=now,
                observed_at=now,
                vital=vital,
                value=float(value),
                unit="",
                flags=flags,
            )
            for vital, value in values.items()
        ]
        device_store.add_device_readings(ctx.store, ctx.session_id, readings)
    return None
