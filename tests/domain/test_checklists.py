"""Which adverse events raise which alarm, which checklist an alarm shows, and the report's due
date: Qt-free, both ways. Also: every adverse-effect term names its source."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kapmonitor.domain import checklists
from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.protocol import DEFAULT_SERIOUS_REPORT_DAYS
from kapmonitor.domain.records import AdverseEvent
from kapmonitor.domain.reference import ReferenceDataError, default_reference
from kapmonitor.domain.validation import ValidationError
from kapmonitor.paths import resources_dir
from tests.factories import protocol

ONSET = datetime(2026, 3, 2, 9, 25, tzinfo=UTC)
RESPIRATORY = ("apnoea", "laryngospasm", "respiratory_depression", "aspiration")
NEW_TERMS = (
    "laryngospasm",
    "hypersalivation",
    "nystagmus",
    "diplopia",
    "panic",
    "hypotension",
    "bradycardia",
    "seizure",
    "chest_pain",
    "arrhythmia",
    "aspiration",
    "allergic_reaction",
    "suicidal_ideation",
    "psychosis",
)


@pytest.mark.parametrize("term", RESPIRATORY)
def test_a_respiratory_term_raises_the_critical_airway_alarm(term: str) -> None:
    [finding] = checklists.adverse_event_findings(term, term.title(), 1, False)
    assert (finding.rule_id, finding.parameter, finding.priority) == (
        "ae_respiratory",
        "airway",
        "critical",
    )
    assert finding.message.endswith("; airway checklist (critical)")


@pytest.mark.parametrize("grade", [1, 2, 3])
def test_a_non_respiratory_non_serious_event_raises_nothing(grade: int) -> None:
    assert checklists.adverse_event_findings("nausea", "Nausea", grade, False) == []
    assert checklists.adverse_event_findings("hypersalivation", "H", grade, False) == []


def test_a_serious_event_raises_the_escalation_alarm_whatever_its_grade() -> None:
    [finding] = checklists.adverse_event_findings(
        "panic", "Panic", 2, True, "Important medical event"
    )
    assert (finding.rule_id, finding.parameter, finding.priority) == (
        "ae_serious",
        "sae",
        "critical",
    )
    assert finding.message == (
        "Serious adverse event: Panic (grade 2; serious: Important medical event); "
        "escalation checklist (critical)"
    )
    both = checklists.adverse_event_findings("aspiration", "Aspiration", 4, True, "x")
    assert [f.rule_id for f in both] == ["ae_respiratory", "ae_serious"]


def test_each_alarm_shows_its_own_checklist_and_others_none() -> None:
    assert [c.id for c in checklists.for_alarm({"rule_id": "ae_respiratory"})] == ["airway"]
    assert [c.id for c in checklists.for_alarm({"rule_id": "ae_serious"})] == ["sae_escalation"]
    assert checklists.for_alarm({"rule_id": "sbp_high_critical"}) == []
    escalation = checklists.by_id("sae_escalation")
    assert escalation is not None
    assert escalation.codes() == ["stop_dosing", "call_for_help", "notify_prescriber", "report"]


def test_the_report_is_due_after_the_protocols_days_and_says_where() -> None:
    rems = protocol("esketamine-rems")
    clinic = protocol("clinic-ketamine")
    assert checklists.report_due(ONSET, rems) == datetime(2026, 3, 9, 9, 25, tzinfo=UTC)
    assert checklists.report_due(ONSET, clinic) == datetime(2026, 3, 17, 9, 25, tzinfo=UTC)
    assert checklists.report_due(ONSET, None).day == 2 + int(DEFAULT_SERIOUS_REPORT_DAYS)
    escalation = checklists.by_id("sae_escalation")
    assert escalation is not None
    report = escalation.step("report")
    assert report is not None
    text = checklists.step_text(report, rems, checklists.report_due(ONSET, rems))
    assert text == (
        "Report the serious adverse event: to the Spravato REMS (Patient Monitoring Form, "
        "www.SPRAVATOrems.com or fax) and FDA MedWatch (Form 3500), due by 2026-03-09"
    )


def test_a_checklist_file_without_sources_or_steps_is_refused(tmp_path: Path) -> None:
    shipped = json.loads((resources_dir() / "checklists.json").read_text("utf-8"))
    assert len(checklists.load_checklists(resources_dir() / "checklists.json")) == 2
    for damage, reason in (
        (lambda c: c.pop("source"), "needs a 'source'"),
        (lambda c: c.__setitem__("steps", []), "steps missing"),
        (lambda c: c["alarm"].__setitem__("priority", "urgent"), "unknown priority"),
    ):
        data = json.loads(json.dumps(shipped))
        damage(data["checklists"][0])
        path = tmp_path / "c.json"
        path.write_text(json.dumps(data), "utf-8")
        with pytest.raises(ReferenceDataError, match=reason):
            checklists.load_checklists(path)


def test_grade_4_and_5_are_refused_unless_serious_and_allowed_when_serious() -> None:
    ref = default_reference()
    now = FakeClock(ONSET).now()
    for grade in (4, 5):
        with pytest.raises(ValidationError, match=f"Grade {grade} is serious by definition"):
            AdverseEvent("seizure", grade, now).validate(ref, now)
        AdverseEvent("seizure", grade, now, serious=True, serious_criterion="death").validate(
            ref, now
        )
    AdverseEvent("seizure", 3, now).validate(ref, now)  # grade 3 may be non-serious


def test_every_adverse_effect_term_names_its_source_and_the_new_terms_are_there() -> None:
    terms = default_reference().choices("adverse_effects")
    assert all(t.source.strip() for t in terms), [t.code for t in terms if not t.source.strip()]
    codes = [t.code for t in terms]
    assert set(NEW_TERMS) <= set(codes)
    assert len(codes) == len(set(codes))
    assert codes[-1] == "other"
    for term in RESPIRATORY:
        assert term in codes  # every term that raises the airway alarm can be chosen
