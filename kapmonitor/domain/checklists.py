"""Checklists attached to critical alarms, and the adverse events that raise those alarms.

A respiratory adverse event (apnoea, laryngospasm, respiratory depression, aspiration) needs the
airway steps in front of the clinician now, and a serious adverse event needs escalation: stop
dosing, call for help, notify the prescriber, report by a due date. Both are data in
``resources/checklists.json`` (steps, the terms that raise the alarm, and their sources), so a
clinic can reword a step without a new build. This module only decides which alarms an adverse
event raises and which checklist an alarm shows; the window and the scenario runner share it.

Plain Python (no Qt, no store).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, cast

from kapmonitor.domain.alarm_rules import AlarmFinding
from kapmonitor.domain.protocol import (
    DEFAULT_SERIOUS_REPORT_DAYS,
    DEFAULT_SERIOUS_REPORT_TO,
    PRIORITIES,
    Priority,
    Protocol,
)
from kapmonitor.domain.records import Entry
from kapmonitor.domain.reference import Reference, ReferenceDataError, _read_json
from kapmonitor.domain.validation import Collector, check_time


@dataclass(frozen=True)
class ChecklistStep:
    code: str
    label: str  # may hold {report_to} and {report_due}


@dataclass(frozen=True)
class Checklist:
    """One checklist and the alarm it belongs to (``rule_id`` of the alarm row)."""

    id: str
    title: str
    intro: str
    source: str
    rule_id: str
    parameter: str
    priority: Priority
    headline: str
    steps: tuple[ChecklistStep, ...]
    raised_by_terms: frozenset[str] = frozenset()
    raised_by_serious: bool = False

    def step(self, code: str) -> ChecklistStep | None:
        return next((s for s in self.steps if s.code == code), None)

    def codes(self) -> list[str]:
        return [s.code for s in self.steps]


def _checklist(item: Any, origin: str) -> Checklist:
    if not isinstance(item, dict):
        raise ReferenceDataError(f"{origin}: each checklist must be a JSON object")
    try:
        alarm = item["alarm"]
        priority = str(alarm["priority"])
        if priority not in PRIORITIES:
            raise ReferenceDataError(f"{origin}: {item['id']}: unknown priority {priority!r}")
        if not str(item.get("source", "")).strip():
            raise ReferenceDataError(f"{origin}: {item['id']}: every checklist needs a 'source'")
        steps = tuple(ChecklistStep(str(s["code"]), str(s["label"])) for s in item["steps"])
        if not steps or len({s.code for s in steps}) != len(steps):
            raise ReferenceDataError(f"{origin}: {item['id']}: steps missing or codes repeated")
        return Checklist(
            id=str(item["id"]),
            title=str(item["title"]),
            intro=str(item.get("intro", "")),
            source=str(item["source"]),
            rule_id=str(alarm["rule_id"]),
            parameter=str(alarm["parameter"]),
            priority=cast(Priority, priority),
            headline=str(alarm["headline"]),
            steps=steps,
            raised_by_terms=frozenset(str(t) for t in alarm.get("raised_by_terms", [])),
            raised_by_serious=bool(alarm.get("raised_by_serious", False)),
        )
    except KeyError as exc:
        raise ReferenceDataError(f"{origin}: missing field {exc.args[0]!r}") from exc
    except TypeError as exc:
        raise ReferenceDataError(f"{origin}: {exc}") from exc


def load_checklists(path: Path) -> tuple[Checklist, ...]:
    """Every checklist of the file, refusing one a dialog could not show safely."""
    data = _read_json(path)
    items = data.get("checklists") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ReferenceDataError(f"{path}: needs a 'checklists' list")
    checklists = tuple(_checklist(item, str(path)) for item in items)
    if len({c.id for c in checklists}) != len(checklists):
        raise ReferenceDataError(f"{path}: two checklists share an id")
    return checklists


@cache
def default_checklists() -> tuple[Checklist, ...]:
    """The shipped checklists, loaded once per process."""
    from kapmonitor.paths import resources_dir

    return load_checklists(resources_dir() / "checklists.json")


def by_id(checklist_id: str, checklists: tuple[Checklist, ...] | None = None) -> Checklist | None:
    found = checklists if checklists is not None else default_checklists()
    return next((c for c in found if c.id == checklist_id), None)


def for_alarm(
    alarm: Mapping[str, Any], checklists: tuple[Checklist, ...] | None = None
) -> list[Checklist]:
    """The checklists an alarm's acknowledgement shows (matched on the alarm's rule)."""
    found = checklists if checklists is not None else default_checklists()
    return [c for c in found if c.rule_id == alarm.get("rule_id")]


def adverse_event_findings(
    term: str,
    term_label: str,
    grade: int,
    serious: bool,
    serious_label: str = "",
    checklists: tuple[Checklist, ...] | None = None,
) -> list[AlarmFinding]:
    """The alarms an adverse event raises: one per checklist whose condition it meets.

    A laryngospasm that is also serious raises both the airway alarm and the escalation alarm:
    they are different things to do, each acknowledged with its own steps.
    """
    found = checklists if checklists is not None else default_checklists()
    findings = []
    for checklist in found:
        by_term = term in checklist.raised_by_terms
        by_serious = checklist.raised_by_serious and serious
        if not (by_term or by_serious):
            continue
        why = f"serious: {serious_label}" if by_serious and serious_label else ""
        detail = f"{term_label} (grade {grade}{'; ' + why if why else ''})"
        findings.append(
            AlarmFinding(
                rule_id=checklist.rule_id,
                parameter=checklist.parameter,
                value=float(grade),
                priority=checklist.priority,
                limit_text="serious adverse event" if by_serious else "respiratory adverse event",
                message=f"{checklist.headline}: {detail}; {checklist.title.lower()} "
                f"({checklist.priority})",
                source=checklist.source,
            )
        )
    return findings


def report_due(onset: datetime, protocol: Protocol | None) -> datetime:
    """When a serious adverse event's report is due: onset plus the protocol's days."""
    days = protocol.serious_report_days if protocol is not None else DEFAULT_SERIOUS_REPORT_DAYS
    return onset + timedelta(days=days)


def step_text(
    step: ChecklistStep, protocol: Protocol | None, due: datetime | None, due_text: str = ""
) -> str:
    """The step as shown: the report step names where to and by when (from the protocol)."""
    to = protocol.serious_report_to if protocol is not None else DEFAULT_SERIOUS_REPORT_TO
    when = due_text or (due.strftime("%Y-%m-%d") if due is not None else "the protocol's date")
    return step.label.replace("{report_to}", to).replace("{report_due}", when)


def done_steps(
    rows: list[Mapping[str, Any]], alarm_id: int, checklist_id: str
) -> dict[str, Mapping[str, Any]]:
    """The recorded ticks of one alarm's checklist: step code -> its (first current) row."""
    done: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        if row["alarm_id"] == alarm_id and row["checklist"] == checklist_id:
            done.setdefault(str(row["step"]), row)
    return done


@dataclass(frozen=True)
class AlarmChecklistStep(Entry):
    """One checklist step ticked for one alarm: when it was done and by whom (the recorder).

    Append-only like every clinical row: a step ticked is never unticked; a mistaken tick is
    corrected (voided) with a reason, and both stay on record.
    """

    table: ClassVar[str] = "alarm_checklist_steps"
    kind: ClassVar[str] = "alarm_checklist_step"
    alarm_id: int
    checklist: str
    step: str
    observed_at: datetime
    note: str = ""

    def validate(self, ref: Reference, now: datetime) -> None:
        errors = Collector()
        found = by_id(self.checklist)
        if found is None:
            errors.add("checklist", f"Unknown checklist {self.checklist!r}")
        elif found.step(self.step) is None:
            errors.add(
                "step",
                f"{found.title}: unknown step {self.step!r} (one of {', '.join(found.codes())})",
            )
        check_time(errors, "observed_at", self.observed_at, now)
        errors.raise_if_any()

    def columns(self) -> dict[str, Any]:
        return {
            "alarm_id": int(self.alarm_id),
            "checklist": self.checklist,
            "step": self.step,
            "note": self.note.strip() or None,
        }
