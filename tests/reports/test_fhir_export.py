"""FHIR R4: a collection Bundle that the R4 models accept, coded per the vital-signs profile, with
Practitioners and who-did-it on every resource, the bedside scores, NEWS2, questionnaires and the
discharge score, RxNorm and SNOMED CT for the medicine and route, and adverse events that carry
their code and suspect only doses given before them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fhir.resources as fhir
import pytest
from fhir.resources import get_fhir_model_class
from fhir.resources.bundle import Bundle

from kapmonitor.reports.fhir_export import (
    CODE_SYSTEM,
    build_bundle,
    bundle_from_document,
    full_url,
)
from kapmonitor.reports.session_export import build_session_document, current_rows
from tests.reports import export, new_store, record_session

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
MEDDRA = "http://terminology.hl7.org/CodeSystem/mdr"


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
        "Practitioner",
        "Observation",
        "QuestionnaireResponse",
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
    vital_codes = {"85353-1", "85354-9", "8867-4", "9279-1", "2708-6", "59408-5", "8310-5"}
    vital_codes.add("29463-7")
    for obs in resources(bundle, "Observation"):
        if not {c["code"] for c in obs["code"]["coding"]} & vital_codes:
            continue
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
    assert all(
        o["status"] in ("final", "corrected")
        for o in resources(bundle, "Observation")
        if o["code"]["coding"][0]["code"] != "news2-total"
    )
    # NEWS2 of an incomplete set is only preliminary: a partial total, no band.
    assert {o["status"] for o in observations(bundle, "news2-total")} == {"final", "preliminary"}


def test_doses_and_adverse_events(session) -> None:
    store, sid = session
    bundle = build_bundle(store, sid)
    (dose,) = resources(bundle, "MedicationAdministration")
    assert dose["medicationCodeableConcept"] == {
        "text": "Racemic ketamine",
        "coding": [{"system": RXNORM, "code": "6130", "display": "ketamine"}],
    }
    assert dose["dosage"]["route"]["coding"] == [
        {"system": SNOMED, "code": "78421000", "display": "Intramuscular route"}
    ]
    assert dose["dosage"]["dose"] == {"value": 56.0, "unit": "mg", "system": UCUM, "code": "mg"}
    assert dose["dosage"]["route"]["text"].startswith("IM")
    assert dose["status"] == "completed"
    (event,) = resources(bundle, "AdverseEvent")
    assert event["actuality"] == "actual" and event["event"]["text"] == "Nausea"
    assert event["event"]["coding"][-1]["code"] == "nausea"  # the catalogue term, always
    (suspect,) = event["suspectEntity"]  # the dose at 09:20 came before the nausea at 10:15
    assert suspect["instance"]["reference"] == full_url(sid, "doses", 1)
    assert event["seriousness"]["coding"][0]["code"] == "Non-serious"
    assert event["severity"]["coding"][0]["code"] == "moderate"
    assert event["outcome"]["coding"][0]["code"] == "resolved"
    assert event["date"] < event["recordedDate"]


def test_write_fhir_writes_the_same_bytes_each_time(session, tmp_path: Path) -> None:
    store, sid = session
    first = export(store, "fhir", [sid], tmp_path / "a.fhir.json")[0].read_bytes()
    store.clock.advance(days=1)
    assert export(store, "fhir", [sid], tmp_path / "b.fhir.json")[0].read_bytes() == first
    assert json.loads(first)["resourceType"] == "Bundle"


def coded(bundle: dict[str, Any], system: str, code: str) -> list[dict[str, Any]]:
    return [
        r
        for r in resources(bundle, "Observation")
        if any(c["system"] == system and c["code"] == code for c in r["code"]["coding"])
    ]


def test_every_clinician_is_a_practitioner_and_every_resource_says_who(session) -> None:
    store, sid = session
    bundle = build_bundle(store, sid)
    document = build_session_document(store, sid)
    practitioners = {
        e["fullUrl"]: e["resource"]["name"][0]["text"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Practitioner"
    }
    recorders = {
        r["recorded_by"] for rows in document["tables"].values() for r in rows if "recorded_by" in r
    }
    assert set(practitioners.values()) == recorders | {
        c["name"] for c in document["tables"]["session_clinicians"]
    }

    def who(reference: dict[str, str]) -> str:
        assert reference["reference"] in practitioners, reference
        return practitioners[reference["reference"]]

    for resource in resources(bundle, "Observation"):
        (performer,) = resource["performer"]
        who(performer)
    for dose in resources(bundle, "MedicationAdministration"):
        assert (
            who(dose["performer"][0]["actor"])
            == current_rows(document["tables"]["doses"])[0]["recorded_by"]
        )
    for event in resources(bundle, "AdverseEvent"):
        who(event["recorder"])
    for response in resources(bundle, "QuestionnaireResponse"):
        who(response["author"])
    (encounter,) = resources(bundle, "Encounter")
    assert [who(p["individual"]) for p in encounter["participant"]] == [
        c["name"] for c in document["tables"]["session_clinicians"]
    ]
    # The vitals are attributed to the clinician who recorded each set.
    tables = document["tables"]
    first = current_rows(tables["vitals"])[0]
    (panel,) = [
        o for o in coded(bundle, LOINC, "85353-1") if o["effectiveDateTime"] == first["observed_at"]
    ]
    assert who(panel["performer"][0]) == first["recorded_by"]


def test_bedside_scores_news2_questionnaires_and_discharge_are_observations(session) -> None:
    store, sid = session
    bundle = build_bundle(store, sid)
    tables = build_session_document(store, sid)["tables"]
    observations_rows = current_rows(tables["observations"])
    for key, code in (("moaas", "moaas"), ("rass", "rass"), ("dissociation", "dissociation")):
        expected = [r[key] for r in observations_rows if r[key] is not None]
        found = coded(bundle, CODE_SYSTEM, code)
        assert [o["valueInteger"] for o in found] == expected, key
        assert all(o["category"][0]["coding"][0]["code"] == "survey" for o in found)
    cadss = [r["cadss_total"] for r in observations_rows if r["cadss_total"] is not None]
    assert [o["valueInteger"] for o in coded(bundle, CODE_SYSTEM, "cadss-total")] == cadss

    # NEWS2: one per current vitals set; an incomplete set has no band, only a partial total.
    news = coded(bundle, CODE_SYSTEM, "news2-total")
    assert len(news) == len(current_rows(tables["vitals"]))
    scores = {r["observed_at"]: r for r in tables["vital_scores"]}
    incomplete = [o for o in news if o["status"] == "preliminary"]
    complete = [o for o in news if o["status"] == "final"]
    assert incomplete and complete
    for obs in incomplete:
        (interpretation,) = obs["interpretation"]
        assert interpretation["text"].startswith("incomplete: no band")
        assert scores[obs["effectiveDateTime"]]["news2_band"] == "incomplete"
    for obs in complete:
        band = scores[obs["effectiveDateTime"]]["news2_band"]
        assert obs["interpretation"][0]["text"] == f"{band} clinical risk band"
        assert obs["valueInteger"] == scores[obs["effectiveDateTime"]]["news2_total"]
        assert obs["derivedFrom"][0]["reference"].startswith("urn:uuid:")
        assert obs["note"] == [{"text": "SpO₂ scale 1"}]

    # PHQ-9: the answers as a QuestionnaireResponse, the total under its LOINC code.
    (phq_row,) = [r for r in tables["questionnaire_responses"] if r["questionnaire_id"] == "phq9"]
    (phq_total,) = coded(bundle, LOINC, "44261-6")
    assert phq_total["valueInteger"] == phq_row["total"] == 12
    (derived,) = phq_total["derivedFrom"]
    (response,) = [e["resource"] for e in bundle["entry"] if e["fullUrl"] == derived["reference"]]
    assert response["resourceType"] == "QuestionnaireResponse"
    assert response["questionnaire"].endswith("phq9") and response["status"] == "completed"
    answers = json.loads(phq_row["answers"])
    assert {i["linkId"]: i["answer"][0]["valueInteger"] for i in response["item"]} == answers

    # The discharge score (modified Aldrete in the demo) with its items and verdict.
    (aldrete,) = coded(bundle, CODE_SYSTEM, "aldrete-total")
    (assessment,) = current_rows(tables["discharge_assessments"])
    assert aldrete["valueInteger"] == assessment["total"]
    assert aldrete["interpretation"][0]["text"].startswith("passed")
    assert sum(c["valueInteger"] for c in aldrete["component"]) == assessment["total"]


def test_gad7_total_is_coded_70274_6(session) -> None:
    store, sid = session
    document = build_session_document(store, sid)
    gad = {
        **document["tables"]["questionnaire_responses"][0],
        "ref": 99,
        "questionnaire_id": "gad7",
        "answers": json.dumps({f"q{i}": 1 for i in range(1, 8)}),
        "total": 7,
        "band": "mild anxiety",
    }
    document["tables"]["questionnaire_responses"].append(gad)
    bundle = bundle_from_document(document)
    (total,) = coded(bundle, LOINC, "70274-6")
    assert total["valueInteger"] == 7
    Bundle.parse_obj(bundle)


@pytest.fixture
def esketamine_session(tmp_path: Path):
    """A short esketamine session without a protocol: a pre-dose adverse event, a dose, a coded
    event after it, a second dose after that, CADSS, and NEWS2 on SpO₂ Scale 2."""

    from kapmonitor.domain.news2 import ScaleChoice
    from kapmonitor.domain.records import AdverseEvent, Dose, Observation, VitalSigns
    from tests.factories import session_start

    store, clock = new_store(tmp_path / "esk.sqlite")
    sid = store.start_session(session_start(clock), "Dr A")
    clock.advance(minutes=2)
    store.add(
        sid, ScaleChoice(2, "Hypercapnic respiratory failure, target 88-92 %", clock.now()), "Dr A"
    )
    store.add(sid, Observation(clock.now(), moaas=5, dissociation=0, cadss_total=3), "Nurse B")
    store.add(
        sid,
        VitalSigns(clock.now(), sbp=128, dbp=80, hr=72, spo2=89, rr=14, temp_c=36.8),
        "Nurse B",
    )
    clock.advance(minutes=1)
    base = {"grade": 1, "serious": False, "action": "none", "relatedness": "unrelated"}
    store.add(
        sid, AdverseEvent(term="anxiety", observed_at=clock.now(), **base), "Nurse B"
    )  # before any dose
    clock.advance(minutes=5)
    store.add(sid, Dose("esketamine", "intranasal", 56, clock.now()), "Dr A")
    clock.advance(minutes=30)
    store.add(
        sid,
        AdverseEvent(term="nausea", observed_at=clock.now(), code="10028813", **base),
        "Nurse B",
    )  # coded, after the first dose
    clock.advance(minutes=10)
    store.add(sid, Dose("esketamine", "intranasal", 28, clock.now(), booster=True), "Dr A")
    yield store, sid, clock
    store.close()


def test_medication_route_codes_and_suspects_only_earlier_doses(esketamine_session) -> None:
    store, sid, _clock = esketamine_session
    bundle = build_bundle(store, sid)
    Bundle.parse_obj(bundle)
    first, booster = resources(bundle, "MedicationAdministration")
    for dose in (first, booster):
        assert dose["medicationCodeableConcept"]["coding"] == [
            {"system": RXNORM, "code": "2119365", "display": "esketamine"}
        ]
        assert dose["dosage"]["route"]["coding"] == [
            {"system": SNOMED, "code": "46713006", "display": "Nasal route"}
        ]
    before, after = resources(bundle, "AdverseEvent")
    assert before["event"]["text"] == "Anxiety"
    assert "suspectEntity" not in before  # no dose had been given: nothing to suspect
    assert after["event"]["coding"][0] == {"system": MEDDRA, "code": "10028813"}
    (suspect,) = after["suspectEntity"]  # the first dose, not the booster given later
    assert suspect["instance"]["reference"] == full_url(sid, "doses", 1)
    (cadss,) = coded(bundle, CODE_SYSTEM, "cadss-total")
    assert cadss["valueInteger"] == 3
    (news,) = coded(bundle, CODE_SYSTEM, "news2-total")
    assert news["note"] == [{"text": "SpO₂ scale 2 (hypercapnic respiratory failure)"}]
    assert news["status"] == "final" and news["valueInteger"] == 0
    spo2_points = [c for c in news["component"] if c["code"]["coding"][0]["code"] == "news2-spo2"]
    assert spo2_points[0]["valueInteger"] == 0  # 89 % on Scale 2 (it would be 3 on Scale 1)


def test_the_demo_command_exports_a_valid_bundle_with_the_new_resources(tmp_path: Path) -> None:
    """`kapmonitor demo`, then `kapmonitor export --format fhir`, as a clinic would run them."""
    import subprocess
    import sys

    db, out = tmp_path / "demo.sqlite", tmp_path / "fhir"

    def cli(*args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "kapmonitor", "--db", str(db), *args],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr

    cli("demo", "--seed", "3")
    cli("export", "--all", "--format", "fhir", "--out", str(out))
    (path,) = out.glob("*.fhir.json")
    bundle = json.loads(path.read_text(encoding="utf-8"))
    Bundle.parse_obj(bundle)
    for entry in bundle["entry"]:
        get_fhir_model_class(entry["resource"]["resourceType"]).parse_obj(entry["resource"])
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Practitioner", "QuestionnaireResponse"} <= kinds
    for system, code in (
        (CODE_SYSTEM, "moaas"),
        (CODE_SYSTEM, "rass"),
        (CODE_SYSTEM, "news2-total"),
        (CODE_SYSTEM, "aldrete-total"),
        (LOINC, "44261-6"),
        (LOINC, "19891-1"),  # end-tidal CO2, from the vital-sign registry, validated above
    ):
        assert coded(bundle, system, code), code
    (dose,) = resources(bundle, "MedicationAdministration")
    assert dose["medicationCodeableConcept"]["coding"][0]["system"] == RXNORM
    assert dose["dosage"]["route"]["coding"][0]["system"] == SNOMED
    assert all(r.get("performer") for r in resources(bundle, "Observation"))


def test_a_written_bundle_carries_the_chain_head_and_is_valid_r4(session, tmp_path: Path) -> None:
    store, sid = session
    (path,) = export(store, "fhir", [sid], tmp_path / "s.fhir.json")
    bundle = json.loads(path.read_text(encoding="utf-8"))
    parsed = Bundle.parse_obj(bundle)
    (extension,) = parsed.meta.extension
    assert extension.url == "urn:kapmonitor:fhir:audit-chain-head"
    parts = {e.url: e for e in extension.extension}
    newest = store.db.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    assert (parts["entry"].valueUnsignedInt, parts["mac"].valueString) == tuple(newest)
