"""Suicidality: a positive PHQ-9 item 9 is a critical alarm, a risk assessment, and a dosing hold.

A patient who answers the self-harm item above "Not at all" must be assessed by a clinician before
anything else happens (PHQ-9 item 9 follow-up; the C-SSRS screener is a common tool). So the answer
raises a critical alarm written with the questionnaire, the alarm is acknowledged only with a
documented assessment (method, outcome and at least one action, from the editable catalogue in
``resources/suicide_risk_assessment.json``), dosing is held until then, and discharge home is
blocked while a positive answer has no assessment. The threshold is the questionnaire file's own
``alert_if_at_least`` (``resources/questionnaires/phq9.json``), not a number in code.

Qt-free: the store writes the alarm and refuses an acknowledgement without the assessment; the
window and the scenario runner call :func:`dose_hold` before a dose.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from kapmonitor.domain.questionnaires import Questionnaire

RULE_ID = "suicidality_item"  # alarms.rule_id of a questionnaire safety-item alarm
SOURCE_TABLE = "questionnaire_responses"
CATALOGUE_FILE = Path(__file__).resolve().parents[2] / "resources" / "suicide_risk_assessment.json"


@dataclass(frozen=True)
class Choice:
    code: str
    label: str


@dataclass(frozen=True)
class RiskCatalogue:
    title: str
    source: str
    methods: tuple[Choice, ...]
    outcomes: tuple[Choice, ...]
    actions: tuple[Choice, ...]

    def label(self, kind: str, code: str) -> str:
        found = {c.code: c.label for c in getattr(self, kind)}
        return found.get(code, code)


@cache
def catalogue(path: Path = CATALOGUE_FILE) -> RiskCatalogue:
    """The shipped catalogue of methods, outcomes and actions (editable labelled defaults)."""
    data = json.loads(path.read_text(encoding="utf-8"))

    def choices(key: str) -> tuple[Choice, ...]:
        return tuple(Choice(str(c["code"]), str(c["label"])) for c in data[key])

    return RiskCatalogue(
        str(data["title"]),
        str(data["source"]),
        choices("methods"),
        choices("outcomes"),
        choices("actions"),
    )


@dataclass(frozen=True)
class SafetyAlarm:
    """One critical alarm row's content for a safety item answered at or above its alert value."""

    parameter: str  # e.g. "phq9_q9"
    value: int
    limit_text: str
    message: str
    source: str


def safety_alarms(questionnaire: Questionnaire, answers: Mapping[str, Any]) -> list[SafetyAlarm]:
    """A critical alarm per safety item (``alert_if_at_least``) answered at or above its value."""
    found: list[SafetyAlarm] = []
    for number, item in enumerate(questionnaire.items, start=1):
        limit = item.alert_if_at_least
        answer = answers.get(item.id)
        if limit is None or isinstance(answer, bool) or not isinstance(answer, int):
            continue
        if answer < limit:
            continue
        title = questionnaire.title.split(" (")[-1].rstrip(")") or questionnaire.id
        found.append(
            SafetyAlarm(
                parameter=f"{questionnaire.id}_{item.id}",
                value=answer,
                limit_text=f"≥ {limit}",
                message=(
                    f"{title} item {number} (thoughts of being better off dead or of self-harm) "
                    f"answered {answer}: suicide risk assessment needed now; dosing is held"
                ),
                source=f"{questionnaire.id}.json item {item.id} alert_if_at_least; "
                + catalogue().source,
            )
        )
    return found


def assessment_problems(assessment: Mapping[str, Any] | None) -> list[str]:
    """What is missing or unknown in a documented risk assessment (empty when complete)."""
    cat = catalogue()
    if not assessment:
        return ["Document the suicide risk assessment: method, outcome and action taken"]
    problems: list[str] = []
    if assessment.get("method") not in {c.code for c in cat.methods}:
        problems.append("Choose how the risk was assessed (e.g. C-SSRS screener)")
    if assessment.get("outcome") not in {c.code for c in cat.outcomes}:
        problems.append("Choose the risk assessment's outcome (low, moderate or high risk)")
    actions = assessment.get("actions")
    codes = {c.code for c in cat.actions}
    if not isinstance(actions, (list, tuple)) or not actions:
        problems.append("Tick at least one action taken (e.g. safety plan, crisis team)")
    elif any(a not in codes for a in actions):
        problems.append(f"Unknown action: {', '.join(a for a in actions if a not in codes)}")
    return problems


def is_safety_alarm(alarm: Mapping[str, Any]) -> bool:
    return alarm.get("rule_id") == RULE_ID and alarm.get("source_table") == SOURCE_TABLE


def _assessed_alarm_ids(current: Mapping[str, Sequence[Mapping[str, Any]]]) -> set[int]:
    return {
        int(ack["alarm_id"])
        for ack in current.get("alarm_acknowledgements", ())
        if ack.get("risk_assessment")
    }


def unassessed_alarms(
    current: Mapping[str, Sequence[Mapping[str, Any]]],
) -> list[Mapping[str, Any]]:
    """Safety-item alarms with no acknowledgement carrying a risk assessment."""
    assessed = _assessed_alarm_ids(current)
    return [
        a for a in current.get("alarms", ()) if is_safety_alarm(a) and int(a["id"]) not in assessed
    ]


def _flags(row: Mapping[str, Any]) -> list[Any]:
    flags = row.get("safety_flags") or []
    if isinstance(flags, str):
        try:
            flags = json.loads(flags)
        except ValueError:
            return [flags]
    return list(flags)


def unassessed_responses(
    current: Mapping[str, Sequence[Mapping[str, Any]]],
) -> list[Mapping[str, Any]]:
    """Questionnaires with a positive safety item and no documented risk assessment.

    Assessed means: the safety alarm written with that questionnaire was acknowledged with an
    assessment. A positive response without such an alarm (recorded before the alarm existed)
    stays unassessed, the cautious side."""
    assessed = _assessed_alarm_ids(current)
    alarms = [a for a in current.get("alarms", ()) if is_safety_alarm(a)]
    alarmed = {int(a["source_id"]) for a in alarms}
    done = {int(a["source_id"]) for a in alarms if int(a["id"]) in assessed}
    return [
        r
        for r in current.get("questionnaire_responses", ())
        if (_flags(r) or int(r["id"]) in alarmed) and int(r["id"]) not in done
    ]


def hold_reason(current: Mapping[str, Sequence[Mapping[str, Any]]]) -> str | None:
    """Why dosing is held, or None: a safety alarm not yet acknowledged with its assessment."""
    waiting = unassessed_alarms(current)
    if not waiting:
        return None
    alarm = waiting[0]
    item = str(alarm["message"]).split(" (")[0]  # e.g. "PHQ-9 item 9"
    return (
        f"Dosing is held: {item} was answered {float(alarm['value']):g}; acknowledge the "
        "suicidality alarm with a documented risk assessment first"
    )


def dose_hold(current: Mapping[str, Sequence[Mapping[str, Any]]]) -> str | None:
    """The dosing check the window and the scenario runner call (same words as the store)."""
    return hold_reason(current)


__all__ = [
    "RULE_ID",
    "RiskCatalogue",
    "SafetyAlarm",
    "assessment_problems",
    "catalogue",
    "dose_hold",
    "hold_reason",
    "is_safety_alarm",
    "safety_alarms",
    "unassessed_alarms",
    "unassessed_responses",
]
