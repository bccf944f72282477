"""FHIR R4: a collection Bundle that the R4 models accept, coded per the vital-signs profile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fhir.resources as fhir
import pytest
from fhir.resources import get_fhir_model_class
from fhir.resources.bundle import Bundle

from kapmonitor.reports.fhir_export import build_bundle, write_fhir
from kapmonitor.reports.session_export import build_session_document, current_rows
from tests.reports import new_store, record_session

UCUM = "http://unitsofmeasure.org"


@pytest.fixture
def session(tmp_path: Path):
    store, clock = new_store(tmp_path / "clinic.sqlite")
    sid = record_session(store, clock)
    yield store, sid
    store.close()


def resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def observations(bundle: dict[str, Any], loinc: str) -> list[dict[str, Any]]:
    return [
        r
        for r in resources(bundle, "Observation")
        if any(c["code"] == loinc for c in r["code"]["coding"])
    ]


def test_the_models_are_fhir_r4() -> None:
    assert fhir.__fhir_version__ == "4.0.1"


def test_bundle_and_every_resource_validate(session) -> None:
    store, sid = session
    bundle = build_bundle(store, sid)
    parsed = Bundle.parse_obj(bundle)
    assert parsed.type == "collection" and len(parsed.entry) == len(bundle["entry"])
    for entry in bundle["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).parse_obj(resource)
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert kinds == {
        "Patient",
        "Encounter",
        "Observation",
        "MedicationAdministration",
        "AdverseEvent",
    }


def test_the_validator_would_notice_a_broken_resource(session) -> None:
    store, sid = session
    bundle = build_bundle(store, sid)
    del resources(bundle, "Observation")[0]["code"]
    with pytest.raises(ValueError, match="code"):
        Bundle.parse_obj(bundle)


def test_full_urls_are_deterministic_unique_and_resolve(session) -> None:
    store, sid = session
    bundle = build_bundle(store, sid)
    assert bundle == build_bundle(store, sid)
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert all(u.startswith("urn:uuid:") for u in urls) and len(set(urls)) == len(urls)
    for reference in set(_references(bundle)):
        assert reference in urls, reference


def _references(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return found + [r for v in value.values() for r in _references(v)]
    if isinstance(value, list):
        return [r for v in value for r in _references(v)]
    return []


def test_patient_is_pseudonymous_and_encounter_spans_the_session(session) -> None:
    store, sid = session
    bundle = build_bundle(store, sid)
    document = build_session_document(store, sid)
    (patient,) = resources(bundle, "Patient")
    assert patient["identifier"][0]["value"] == document["session"]["patient_code"]
    assert "name" not in patient and "telecom" not in patient and "address" not in patient
    (encounter,) = resources(bundle, "Encounter")
    (end,) = document["tables"]["session_ends"]
    assert encounter["period"] == {
        "start": document["session"]["observed_at"],
        "end": end["observed_at"],
    }
    assert encounter["status"] == "finished"
    assert encounter["identifier"][0]["value"] == sid  # traceable to the KAP Monitor session


def test_vital_signs_use_the_loinc_and_ucum_codes(session) -> None:
    store, sid = session
    bundle = build_bundle(store, sid)
    current = current_rows(build_session_document(store, sid)["tables"]["vitals"])
    for obs in resources(bundle, "Observation"):
        (category,) = obs["category"]
        assert category["coding"][0]["code"] == "vital-signs"
        assert category["coding"][0]["system"].endswith("/observation-category")
    bp = observations(bundle, "85354-9")
    assert len(bp) == len(current) and "valueQuantity" not in bp[0]
    systolic, diastolic = bp[0]["component"]
    assert systolic["code"]["coding"][0]["code"] == "8480-6"
    assert diastolic["code"]["coding"][0]["code"] == "8462-4"
    assert systolic["valueQuantity"]["code"] == "mm[Hg]"
    assert systolic["valueQuantity"]["system"] == UCUM
    for loinc, unit in (("8867-4", "/min"), ("9279-1", "/min"), ("2708-6", "%"), ("8310-5", "Cel")):
        found = observations(bundle, loinc)
        assert found, loinc
        assert {o["valueQuantity"]["code"] for o in found} == {unit}
        assert {o["valueQuantity"]["system"] for o in found} == {UCUM}
    spo2_codes = [c["code"] for c in observations(bundle, "2708-6")[0]["code"]["coding"]]
    assert spo2_codes == ["59408-5", "2708-6"]
    (weight,) = observations(bundle, "29463-7")
    assert weight["valueQuantity"] == {"value": 74.0, "unit": "kg", "system": UCUM, "code": "kg"}
    panels = observations(bundle, "85353-1")
    assert len(panels) == len(current) and all(p["hasMember"] for p in panels)


def test_only_current_rows_are_exported(session) -> None:
    store, sid = session
    bundle = build_bundle(store, sid)
    vitals = build_session_document(store, sid)["tables"]["vitals"]
    (fix,) = [r for r in vitals if r["supersedes_id"] is not None]
    original = vitals[fix["supersedes_id"] - 1]
    times = [o["effectiveDateTime"] for o in observations(bundle, "85354-9")]
    assert times.count(original["observed_at"]) == 1  # the correction, not both
    (bp,) = [o for o in observations(bundle, "85354-9") if o["status"] == "corrected"]
    assert bp["component"][0]["valueQuantity"]["value"] == fix["sbp"] == original["sbp"] + 2
    assert all(o["status"] in ("final", "corrected") for o in resources(bundle, "Observation"))


def test_doses_and_adverse_events(session) -> None:
    store, sid = session
    bundle = build_bundle(store, sid)
    (dose,) = resources(bundle, "MedicationAdministration")
    assert dose["medicationCodeableConcept"] == {"text": "Racemic ketamine"}
    assert dose["dosage"]["dose"] == {"value": 56.0, "unit": "mg", "system": UCUM, "code": "mg"}
    assert dose["dosage"]["route"]["text"].startswith("IM")
    assert dose["status"] == "completed"
    (event,) = resources(bundle, "AdverseEvent")
    assert event["actuality"] == "actual" and event["event"]["text"] == "Nausea"
    assert event["seriousness"]["coding"][0]["code"] == "Non-serious"
    assert event["severity"]["coding"][0]["code"] == "moderate"
    assert event["outcome"]["coding"][0]["code"] == "resolved"
    assert event["date"] < event["recordedDate"]


def test_write_fhir_writes_the_same_bytes_each_time(session, tmp_path: Path) -> None:
    store, sid = session
    first = write_fhir(store, sid, tmp_path / "a.fhir.json").read_bytes()
    store.clock.advance(days=1)
    assert write_fhir(store, sid, tmp_path / "b.fhir.json").read_bytes() == first
    assert json.loads(first)["resourceType"] == "Bundle"
