"""One readable line per stored entry, for the timeline and (later) reports.

Kept free of Qt so reports and tests describe entries exactly as the window does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kapmonitor.domain.clock import from_iso
from kapmonitor.domain.reference import Reference
from kapmonitor.domain.session_rows import (
    AdverseEventOutcomeRow,
    AdverseEventRow,
    AlarmAcknowledgementRow,
    AlarmChecklistStepRow,
    AlarmRow,
    DischargeAssessmentRow,
    DoseRow,
    InterventionRow,
    News2ScaleChoiceRow,
    ObservationRow,
    OverrideRow,
    PhaseChangeRow,
    QuestionnaireResponseRow,
    SessionEndRow,
    SessionProtocolRow,
    StoredRow,
    VitalsRow,
    typed_row,
)
from kapmonitor.domain.vitals import VITAL_SIGNS

# An entry typed this long after it was observed is flagged (ALCOA+: contemporaneous).
LATE_ENTRY_MINUTES = 10

KIND_LABELS = {
    "phase_changes": "Phase",
    "doses": "Dose",
    "vitals": "Vitals",
    "observations": "Observation",
    "adverse_events": "Adverse effect",
    "adverse_event_outcomes": "AE outcome",
    "interventions": "Intervention",
    "session_ends": "Session end",
    "session_protocols": "Protocol",
    "alarms": "ALARM",
    "alarm_acknowledgements": "Alarm acknowledged",
    "alarm_checklist_steps": "Checklist step",
    "overrides": "Override",
    "discharge_assessments": "Discharge check",
    "questionnaire_responses": "Questionnaire",
    "news2_scale_choices": "NEWS2 scale",
}
# Derived rows shown elsewhere (NEWS2 sits with the vitals it scores).
HIDDEN_TABLES = {"vital_scores"}
PRIORITY_MARKS = {"critical": "▲ CRITICAL", "warning": "● WARNING", "advisory": "○ ADVISORY"}


@dataclass(frozen=True)
class TimelineItem:
    table: str
    row_id: int
    observed_at: datetime
    recorded_at: datetime
    recorded_by: str
    kind: str
    summary: str
    supersedes_id: int | None
    correction_reason: str | None
    voided: bool

    @property
    def late(self) -> bool:
        return (self.recorded_at - self.observed_at).total_seconds() > LATE_ENTRY_MINUTES * 60


# The timeline's shorthand, as a clinician writes it in the notes: "HR 72, SpO₂ 97%, RR 14".
_TIMELINE_NAME = {"temp_c": "T"}


def _timeline_unit(unit: str) -> str:
    """Rates go without their unit (HR 72, RR 14), a percentage sticks to its number."""
    if unit == "/min":
        return ""
    return unit if unit == "%" else f" {unit}"


def describe(table: str, row: StoredRow | Mapping[str, Any], ref: Reference) -> str:
    """A short clinical summary of one row, in the words a clinician would write. A plain
    mapping (a test's literal, an imported record) is typed first, so both read the same."""
    row = typed_row(table, row)
    if isinstance(row, VitalsRow):
        parts = []
        for sign in VITAL_SIGNS:
            value = row.value(sign.key)
            if value is None or sign.key == "dbp":
                continue
            if sign.key == "sbp":
                parts.append(f"BP {value}/{row.dbp}")
                continue
            name = _TIMELINE_NAME.get(sign.key, sign.short)
            parts.append(f"{name} {sign.format(value)}{_timeline_unit(sign.unit)}")
        if row.on_oxygen:
            parts.append("on O₂")
        return _with_note(", ".join(parts), row.note)
    if isinstance(row, DoseRow):
        drug = row.drug_other or ref.label("drugs", row.drug)
        per_kg = f" ({row.dose_mg_per_kg:.2f} mg/kg)" if row.dose_mg_per_kg else ""
        lot = f", lot {row.lot_number}" if row.lot_number else ""
        booster = " booster" if row.is_booster else ""
        route = ref.label("routes", row.route).split(" (")[0]
        return _with_note(f"{drug} {row.dose_mg:g} mg {route}{per_kg}{booster}{lot}", row.note)
    if isinstance(row, ObservationRow):
        parts = []
        for key, level in (
            ("moaas", row.moaas),
            ("rass", row.rass),
            ("dissociation", row.dissociation),
        ):
            if level is not None:
                scale = ref.scales[key]
                parts.append(f"{scale.name} {scale.describe(level)}")
        if row.cadss_total is not None:
            parts.append(f"CADSS {row.cadss_total}")
        for scale_id, value in json.loads(row.other_scores or "{}").items():
            scale = ref.scales.get(scale_id)
            parts.append(f"{scale.name if scale else scale_id} {value}")
        features = json.loads(row.features or "[]")
        if features:
            labels = {f.code: f.label for f in ref.scales["dissociation"].features}
            parts.append("features: " + ", ".join(labels.get(f, f).lower() for f in features))
        return _with_note("; ".join(parts), row.note)
    if isinstance(row, AdverseEventRow):
        term = row.verbatim if row.term == "other" else ref.label("adverse_effects", row.term)
        serious = (
            f", SERIOUS ({ref.label('seriousness_criteria', row.serious_criterion)})"
            if row.serious
            else ""
        )
        action = ref.label("ae_actions", row.action)
        detail = f" ({row.action_detail})" if row.action_detail else ""
        return f"{term}, grade {row.grade}{serious}; action: {action}{detail}"
    if isinstance(row, AdverseEventOutcomeRow):
        return _with_note(
            f"Adverse effect #{row.adverse_event_id}: {ref.label('ae_outcomes', row.outcome)}",
            row.note,
        )
    if isinstance(row, InterventionRow):
        what = ref.label("intervention_kinds", row.category)
        bits = [b for b in (row.medication, row.detail) if b]
        return f"{what}: {' — '.join(bits)}" if bits else what
    if isinstance(row, PhaseChangeRow):
        return f"Phase: {ref.label('phases', row.phase)}"
    if isinstance(row, SessionProtocolRow):
        return f"Protocol: {row.protocol_name} (version {row.protocol_version})"
    if isinstance(row, AlarmRow):
        return f"{PRIORITY_MARKS.get(row.priority, row.priority)}: {row.message}"
    if isinstance(row, AlarmAcknowledgementRow):
        response = ref.label("alarm_responses", row.response)
        symptoms = json.loads(row.symptoms or "[]")
        extra = f"; symptoms: {', '.join(ref.label('hypertension_symptoms', s) for s in symptoms)}"
        detail = f" ({row.detail})" if row.detail else ""
        return f"Alarm #{row.alarm_id}: {response}{detail}{extra if symptoms else ''}"
    if isinstance(row, AlarmChecklistStepRow):
        return _checklist_step(row)
    if isinstance(row, OverrideRow):
        return f"{ref.label('override_kinds', row.kind)}. Reason: {row.reason}"
    if isinstance(row, DischargeAssessmentRow):
        verdict = "READY" if row.ready else "not ready"
        name = "Modified Aldrete" if row.score_name == "aldrete" else "PADSS"
        override = f"; OVERRIDE: {row.override_reason}" if row.override_reason else ""
        return f"{name} {row.total}/{row.maximum} (pass {row.pass_mark}): {verdict}{override}"
    if isinstance(row, QuestionnaireResponseRow):
        total = f" total {row.total}" if row.total is not None else ""
        band = f" ({row.band})" if row.band else ""
        flags = json.loads(row.safety_flags or "[]")
        flag = f" — ⚠ {'; '.join(flags)}" if flags else ""
        return f"{row.questionnaire_id.upper()} ({row.timing}-session){total}{band}{flag}"
    if isinstance(row, News2ScaleChoiceRow):
        return f"NEWS2 SpO₂ Scale {row.scale} chosen — {row.reason}"
    if isinstance(row, SessionEndRow):
        where = row.disposition_other or ref.label("dispositions", row.disposition)
        escort = f", escort: {row.escort}" if row.escort else ""
        return f"Ended — {where}{escort}. {row.summary}"
    return ""


def _with_note(text: str, note: str | None) -> str:
    return f"{text} — {note}" if note else text


def _checklist_step(row: AlarmChecklistStepRow) -> str:
    """A ticked step as the file words it, e.g. 'Alarm #12: Escalation checklist — Notify the
    prescriber ✓' (the part of the label before its first colon)."""
    from kapmonitor.domain import checklists

    found = checklists.by_id(row.checklist)
    step = found.step(row.step) if found is not None else None
    title = found.title if found is not None else row.checklist
    label = step.label.split(":")[0] if step is not None else row.step
    return _with_note(f"Alarm #{row.alarm_id}: {title} — {label} ✓", row.note)


def timeline_item(table: str, row: StoredRow | Mapping[str, Any], ref: Reference) -> TimelineItem:
    row = typed_row(table, row)
    return TimelineItem(
        table=table,
        row_id=row.id,
        observed_at=from_iso(row.observed_at),
        recorded_at=from_iso(row.recorded_at),
        recorded_by=row.recorded_by,
        kind=KIND_LABELS.get(table, table),
        summary=describe(table, row, ref),
        supersedes_id=row.supersedes_id,
        correction_reason=row.correction_reason,
        voided=bool(row.voided),
    )


def timeline(rows: Mapping[str, Sequence[StoredRow]], ref: Reference) -> list[TimelineItem]:
    """Every row, corrections included, in clinical order."""
    items = [
        timeline_item(t, r, ref)
        for t, table_rows in rows.items()
        if t not in HIDDEN_TABLES
        for r in table_rows
    ]
    return sorted(items, key=lambda i: (i.observed_at, i.recorded_at))
