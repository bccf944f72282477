"""Dose guards and BP before dosing, proved both ways without Qt: the domain rules on rows, and
the store refusing (or committing and auditing) the same dose whoever calls it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from kapmonitor.domain import dose_gate, dose_guards
from kapmonitor.domain.clock import FakeClock, from_iso, to_iso
from kapmonitor.domain.dose_guards import DoseClearance, review_dose
from kapmonitor.domain.records import Dose, VitalSigns
from kapmonitor.domain.schedule import baseline_missing, compute_schedule
from kapmonitor.domain.session_rows import StoredRow
from kapmonitor.domain.validation import ValidationError
from kapmonitor.domain.vital_alerts import vital_readings
from kapmonitor.store import audit
from tests.factories import T0, open_store, protocol, session_start, stored_row

ESK = protocol("esketamine-rems")
KET = protocol("clinic-ketamine")


def vitals(minute: float, **values: float) -> StoredRow:
    return stored_row("vitals", to_iso(T0 + timedelta(minutes=minute)), **values)


def review(proto, rows, drug, route, mg, weight=70.0, doses=()):
    return review_dose(proto, {"vitals": rows, "doses": list(doses)}, drug, route, mg, weight, T0)


# --- the protocol files say it, with sources -----------------------------------------------------


def test_guards_and_bp_limits_are_labelled_protocol_defaults() -> None:
    assert ESK.bp_before_dosing is not None
    assert (ESK.bp_before_dosing.caution_sbp, ESK.bp_before_dosing.caution_dbp) == (140, 90)
    assert (ESK.bp_before_dosing.hard_sbp, ESK.bp_before_dosing.hard_dbp) == (180, 110)
    assert "Spravato" in ESK.sources["bp_before_dosing.caution_sbp"]
    [esk] = ESK.dose_guards
    assert (esk.route, esk.device_mg, esk.max_dose_mg) == ("intranasal", 28, 84)
    assert "Spravato" in esk.source
    assert {g.route for g in KET.dose_guards} == {"im", "iv", "sublingual"}
    assert all(g.source for g in KET.dose_guards)
    assert ESK.baseline_vitals == ("bp", "hr", "spo2")
    # The stored copy of a session keeps them.
    copy = type(ESK).from_dict(ESK.to_dict())
    assert copy.dose_guards == ESK.dose_guards and copy.bp_before_dosing == ESK.bp_before_dosing


# --- baseline ---------------------------------------------------------------------------------


def test_an_spo2_only_baseline_does_not_count() -> None:
    rows = [vitals(-5, spo2=98)]
    assert baseline_missing(rows, None, ESK.baseline_vitals) == ("bp", "hr")
    blocks = dose_gate.dose_blocks(ESK, {"vitals": rows, "doses": [], "overrides": []})
    assert [b.code for b in blocks] == ["baseline_missing"]
    assert "lacks BP, HR" in blocks[0].message


def test_a_baseline_with_bp_hr_and_spo2_allows_dosing() -> None:
    rows = [vitals(-5, sbp=128, dbp=80, hr=72, spo2=98)]
    assert baseline_missing(rows, None, ESK.baseline_vitals) == ()
    assert dose_gate.dose_blocks(ESK, {"vitals": rows, "doses": [], "overrides": []}) == []


# --- BP before dosing -------------------------------------------------------------------------


def test_bp_above_140_90_needs_a_decision() -> None:
    found = review(
        ESK, [vitals(-5, sbp=150, dbp=85, hr=70, spo2=98)], "esketamine", "intranasal", 56
    )
    assert found.needs_bp_decision() and not found.needs_bp_override()
    assert found.refusals(None, "Dr A") == [found.bp.message]
    assert "above 140/90" in found.bp.message
    assert found.refusals(DoseClearance(bp_reason="BP stable for months"), "Dr A") == []


def test_bp_at_140_90_needs_nothing() -> None:
    found = review(ESK, [vitals(-5, sbp=140, dbp=90)], "esketamine", "intranasal", 56)
    assert found.bp.level == "ok" and found.refusals(None, "Dr A") == []


def test_84_mg_at_190_115_is_refused_without_an_override() -> None:
    found = review(ESK, [vitals(-5, sbp=190, dbp=115)], "esketamine", "intranasal", 84)
    assert found.needs_bp_override()
    [reason] = found.refusals(None, "Dr A")
    assert "hard limit 180/110" in reason
    assert found.refusals(DoseClearance(bp_reason="Prescriber: proceed"), "Dr A") == []


def test_an_hr_only_reading_is_not_the_bp_before_dosing() -> None:
    rows = [vitals(-20, sbp=190, dbp=115), vitals(-5, hr=70)]
    assert review(ESK, rows, "esketamine", "intranasal", 56).bp.sbp == 190


def test_the_clinic_protocol_has_no_bp_limits_of_this_kind() -> None:
    assert review(KET, [vitals(-5, sbp=190, dbp=115)], "ketamine", "im", 50).bp is None


# --- dose guards ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mg", "route", "words"),
    [
        (168, "intranasal", "84 mg per dose"),
        (56, "im", "not in the protocol (allowed: intranasal)"),
        (42, "intranasal", "whole number of 28 mg devices"),
    ],
)
def test_esketamine_outside_the_label_is_refused(mg: float, route: str, words: str) -> None:
    found = review(ESK, [], "esketamine", route, mg)
    assert any(words in p for p in found.guard_problems), found.guard_problems
    assert found.refusals(None, "Dr A")


@pytest.mark.parametrize("mg", [56, 84, 28])
def test_esketamine_by_the_label_is_allowed(mg: float) -> None:
    assert review(ESK, [], "esketamine", "intranasal", mg).guard_problems == ()


def test_a_second_esketamine_dose_beyond_84_mg_a_session_is_refused() -> None:
    earlier = [{"drug": "esketamine", "dose_mg": 56.0}]
    found = review(ESK, [], "esketamine", "intranasal", 56, doses=earlier)
    assert any("112 mg of Esketamine this session" in p for p in found.guard_problems)
    assert review(ESK, [], "esketamine", "intranasal", 28, doses=earlier).guard_problems == ()


def test_700_mg_im_for_70_kg_is_refused_unless_a_second_clinician_confirms() -> None:
    found = review(KET, [], "ketamine", "im", 700, weight=70)
    assert any("10.00 mg/kg, above the protocol's 1 mg/kg" in p for p in found.guard_problems)
    assert found.refusals(None, "Dr A")
    # The recorder cannot confirm their own dose.
    self_check = DoseClearance(confirmed_by="Dr A", confirm_reason="sure")
    assert any("second clinician" in r for r in found.refusals(self_check, "Dr A"))
    # A reason is part of the check.
    assert found.refusals(DoseClearance(confirmed_by="Nurse B"), "Dr A")
    ok = DoseClearance(confirmed_by="Nurse B", confirm_reason="Prescribed; checked twice")
    assert found.refusals(ok, "Dr A") == []


def test_70_mg_im_for_70_kg_is_within_the_guard() -> None:
    assert review(KET, [], "ketamine", "im", 70, weight=70).guard_problems == ()


# --- the 40-minute BP check -------------------------------------------------------------------


def _checkpoint(rows: list[StoredRow]) -> str:
    dose = T0
    rows = [replace(row, id=n) for n, row in enumerate(rows, 1)]
    state = compute_schedule(
        ESK,
        T0 - timedelta(minutes=15),
        dose,
        [T0 + timedelta(minutes=m) for m in (-5,)] + [from_iso(r.observed_at) for r in rows],
        T0 + timedelta(minutes=60),
        "monitoring",
        vital_readings=vital_readings(rows, [], []),
    )
    [check] = [c for c in state.history if c.kind == "checkpoint"]
    return check.status


def test_only_a_bp_reading_within_five_minutes_satisfies_the_40_minute_check() -> None:
    assert _checkpoint([vitals(40, hr=80)]) == "missed"  # HR only
    assert _checkpoint([vitals(49, sbp=130, dbp=80)]) == "missed"  # outside ± 5
    assert _checkpoint([vitals(44, sbp=130, dbp=80)]) == "done"


# --- the store: the same refusal, and the audit names both clinicians --------------------------


def _esketamine_session(tmp_path: Path, sbp: int, dbp: int):
    clock = FakeClock(T0)
    store = open_store(tmp_path / "s.sqlite", clock)
    sid = store.start_session(session_start(clock), "Dr A", protocol=ESK)
    clock.advance(minutes=5)
    store.add(sid, VitalSigns(clock.now(), hr=72, sbp=sbp, dbp=dbp, spo2=98, rr=14), "Dr A")
    clock.advance(minutes=5)
    return store, sid, clock


def test_store_refuses_84_mg_at_190_115_and_commits_with_an_audited_override(
    tmp_path: Path,
) -> None:
    store, sid, clock = _esketamine_session(tmp_path, 190, 115)
    dose = Dose("esketamine", "intranasal", 84, clock.now(), weight_kg=70)
    with pytest.raises(ValidationError, match="hard limit 180/110"):
        store.add(sid, dose, "Dr A")
    assert store.load(sid).current("doses") == []
    cleared = Dose(
        "esketamine",
        "intranasal",
        84,
        clock.now(),
        weight_kg=70,
        clearance=DoseClearance(bp_reason="Prescriber reviewed; proceed"),
    )
    store.add(sid, cleared, "Dr A")
    entries = [e for e in audit.entries(store.db) if e["action"] == dose_guards.BP_OVERRIDE]
    assert len(entries) == 1 and "Prescriber reviewed" in entries[0]["detail"]
    store.close()


def test_store_two_person_check_names_both_clinicians(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    store = open_store(tmp_path / "k.sqlite", clock)
    sid = store.start_session(session_start(clock), "Dr A", protocol=KET)
    clock.advance(minutes=5)
    store.add(sid, VitalSigns(clock.now(), hr=72, sbp=120, dbp=80, spo2=98, rr=14), "Dr A")
    clock.advance(minutes=5)
    with pytest.raises(ValidationError, match=r"10\.00 mg/kg"):
        store.add(sid, Dose("ketamine", "im", 700, clock.now(), weight_kg=70), "Dr A")
    confirmed = Dose(
        "ketamine",
        "im",
        700,
        clock.now(),
        weight_kg=70,
        clearance=DoseClearance(
            confirmed_by="Nurse B", confirm_reason="Prescriber's order", signed_in=False
        ),
    )
    store.add(sid, confirmed, "Dr A")
    [entry] = [e for e in audit.entries(store.db) if e["action"] == dose_guards.GUARD_CONFIRMED]
    assert entry["actor"] == "Dr A"
    assert "Nurse B" in entry["detail"] and "Prescriber's order" in entry["detail"]
    store.close()


def test_store_records_a_deferral(tmp_path: Path) -> None:
    store, sid, clock = _esketamine_session(tmp_path, 150, 92)
    log = store.load(sid)
    found = review_dose(
        ESK,
        log.current_rows(("vitals", "doses")),
        "esketamine",
        "intranasal",
        56,
        70,
        clock.now(),
    )
    assert found.needs_bp_decision()
    store.record_dose_deferral(sid, found.bp, "Recheck in 15 min after rest", "Dr A")
    [entry] = [e for e in audit.entries(store.db) if e["action"] == dose_guards.BP_DEFER]
    assert "Recheck in 15 min" in entry["detail"]
    store.close()


def test_below_the_mg_per_kg_minimum_is_questioned_for_the_first_dose_only() -> None:
    found = review(KET, [], "ketamine", "im", 20, weight=70)
    assert any("below the protocol's 0.5 mg/kg" in p for p in found.guard_problems)
    booster = review(KET, [], "ketamine", "im", 20, doses=[{"drug": "ketamine", "dose_mg": 50.0}])
    assert booster.guard_problems == ()


def test_the_supervisor_sees_each_cleared_dose_as_an_override() -> None:
    from kapmonitor.domain.quality import AUDITED_OVERRIDES

    for action in (dose_guards.BP_PROCEED, dose_guards.BP_OVERRIDE, dose_guards.GUARD_CONFIRMED):
        assert action in AUDITED_OVERRIDES
