"""Replay a scenario: a scripted session on a fake clock, in a throw-away database.

The session is started the way the bedside window starts one (the protocol chosen from the same
catalogue, the shipped protocols and the clinic's own, passed to ``SessionStore.start_session``),
and each step makes the calls the window makes (kapmonitor/scenario/steps.py). What the app did is
read back from the store: whether the step was committed or refused and why (the same
``ValidationError`` / ``StoreError`` texts the window shows), the alarm rows written with it and
the NEWS2 of a vitals set. Nothing touches the clinic's database: each run has its own file in a
temporary folder, removed afterwards.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kapmonitor.domain import questionnaires as questionnaire_data
from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.protocol import ProtocolCatalogue, load_protocols, protocol_folders
from kapmonitor.domain.reference import default_reference
from kapmonitor.domain.validation import ValidationError
from kapmonitor.paths import resources_dir, user_config_dir
from kapmonitor.scenario import expect as expectations
from kapmonitor.scenario.format import Scenario, ScenarioError, Step
from kapmonitor.scenario.steps import KINDS, Context
from kapmonitor.store.database import StoreError
from kapmonitor.store.session_store import SessionStore

# Minute 0 of every scenario (the first dose, by convention): a fixed, ordinary weekday morning,
# so runs are reproducible.
REFERENCE_TIME = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


@dataclass
class Run:
    """The output of one scenario: one line per step, and whether every expectation held."""

    scenario: Scenario
    lines: list[dict[str, Any]] = field(default_factory=list)
    setup_error: str = ""  # the session could not even be started

    @property
    def ok(self) -> bool:
        return not self.setup_error and all(
            str(line.get("expect", "met")) == "met" for line in self.lines
        )

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if str(line.get("expect", "met")) != "met"]


def load_catalogue(extra: list[Path] | None = None) -> ProtocolCatalogue:
    """The protocols the window offers (``ui/bedside/protocol_support.py`` loads the same),
    then any ``extra`` folders, which override by id: a draft protocol tried before it is
    installed."""
    return load_protocols([*protocol_folders(), *(extra or [])])


def load_questionnaire_set() -> dict[str, questionnaire_data.Questionnaire]:
    """The questionnaires the window offers: the shipped ones and the clinic's own."""
    return questionnaire_data.load_questionnaires(
        [resources_dir() / "questionnaires", user_config_dir() / "questionnaires"]
    )


def at_time(minutes: float) -> datetime:
    return REFERENCE_TIME + timedelta(minutes=minutes)


def run(scenario: Scenario, catalogue: ProtocolCatalogue | None = None) -> Run:
    """Replay ``scenario`` in a throw-away database and return what happened at each step."""
    return Run(scenario, *_replay(scenario, catalogue or load_catalogue()))


def _replay(scenario: Scenario, catalogue: ProtocolCatalogue) -> tuple[list[dict[str, Any]], str]:
    protocol = catalogue.protocols.get(scenario.protocol)
    if protocol is None:
        return [], f"protocol {scenario.protocol!r} is not known"
    clock = FakeClock(at_time(scenario.session_start))
    with tempfile.TemporaryDirectory(prefix="kapmonitor-scenario-") as folder:
        store = SessionStore.open(Path(folder) / "scenario.sqlite", clock, default_reference())
        try:
            context = Context(
                store, "", protocol, scenario.clinicians[0], load_questionnaire_set(), scenario
            )
            if scenario.steps[0].kind != "start":
                # No start step: the session starts as the start dialog would, with defaults.
                try:
                    KINDS["start"].run(context, {})
                except (ValidationError, StoreError) as exc:
                    return [], f"the session could not be started: {'; '.join(_reasons(exc))}"
            return list(_steps(scenario, context, clock)), ""
        finally:
            store.close()


def _steps(scenario: Scenario, ctx: Context, clock: FakeClock) -> Iterator[dict[str, Any]]:
    for step in scenario.steps:
        clock.set(at_time(step.at))
        ctx.by = step.by
        yield {"scenario": scenario.name, **run_step(step, ctx)}


def run_step(step: Step, ctx: Context) -> dict[str, Any]:
    """Run one step and describe what the app did, in the output line's shape."""
    store, sid = ctx.store, ctx.session_id
    last_alarm = _last_id(store, "alarms", sid)
    last_score = _last_id(store, "vital_scores", sid)
    extra: dict[str, Any] = {}
    try:
        if not sid and step.kind != "start":
            raise StoreError("The session was not started (its start step was refused)")
        extra = KINDS[step.kind].run(ctx, step.payload) or {}
        result, reasons = "committed", []
    except (ValidationError, StoreError) as exc:
        result, reasons = "refused", _reasons(exc)
        extra = getattr(exc, "scenario_extra", {})
    alarms = [
        {"parameter": a["parameter"], "priority": a["priority"], "rule": a["rule_id"]}
        for a in store.rows_after(sid, "alarms", last_alarm)
    ]
    scores = store.rows_after(sid, "vital_scores", last_score)
    line: dict[str, Any] = {
        "at": int(step.at) if step.at.is_integer() else step.at,
        "step": step.kind,
        "result": result,
        "reasons": reasons,
        "alarms": alarms,
        "news2": _news2(scores[-1]) if scores else None,
        **extra,
    }
    if step.expect:
        failures = expectations.check_all(line, step.expect)
        line["expect"] = "met" if not failures else "failed: " + "; ".join(failures)
    return line


def _last_id(store: SessionStore, table: str, session_id: str) -> int:
    found = store.db.execute(
        f"SELECT max(id) FROM {table} WHERE session_id = ?", [session_id]
    ).fetchone()
    return int(found[0] or 0)


def _news2(row: dict[str, Any]) -> dict[str, Any]:
    """A stored NEWS2 row as output: total, band ("incomplete" when a parameter is missing, as
    the store records it) and the parameters missing."""
    out: dict[str, Any] = {"total": row["news2_total"], "band": row["news2_band"] or "incomplete"}
    missing = json.loads(row.get("news2_missing") or "[]")
    if missing:
        out["missing"] = missing
    return out


def _reasons(exc: ValidationError | StoreError) -> list[str]:
    if isinstance(exc, ValidationError):
        return [e.message for e in exc.errors]
    return [str(exc)]


__all__ = ["REFERENCE_TIME", "Run", "ScenarioError", "load_catalogue", "run", "run_step"]
