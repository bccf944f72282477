"""A session as a FHIR R4 (4.0.1) ``Bundle`` of type ``collection``, for a patient record.

The Patient is pseudonymous (the clinic's patient code, never a name). Vital signs are coded with
LOINC and UCUM as the HL7 FHIR R4 vital-signs profile names them, one vital-signs panel per recorded
set with its members; doses become MedicationAdministrations and adverse effects AdverseEvents. Only
what stands now is exported: a superseded row is replaced by its correction (status ``corrected``)
and a voided row is left out. Every ``fullUrl`` is a ``urn:uuid:`` derived (UUID 5) from the session
id, the table and the row's ref, so the same session always gives the same bundle, byte for byte.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kapmonitor.domain.reference import Reference, default_reference
from kapmonitor.reports.session_export import (
    Document,
    Row,
    Source,
    build_session_document,
    current_rows,
    session_ids,
    write_atomically,
    write_folder,
)

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:kapmonitor:fhir")
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SERIOUSNESS = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
SEVERITY = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
AE_OUTCOME = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome"
PATIENT_CODE_SYSTEM = "urn:kapmonitor:patient-code"
SESSION_ID_SYSTEM = "urn:kapmonitor:session-id"
PROFILE = "http://hl7.org/fhir/StructureDefinition/"

# LOINC code, display, UCUM unit code, unit as shown, vital-signs profile.
HR = ("8867-4", "Heart rate", "/min", "/min", "heartrate")
RR = ("9279-1", "Respiratory rate", "/min", "/min", "resprate")
TEMP = ("8310-5", "Body temperature", "Cel", "°C", "bodytemp")
WEIGHT = ("29463-7", "Body weight", "kg", "kg", "bodyweight")
SYSTOLIC = ("8480-6", "Systolic blood pressure", "mm[Hg]", "mmHg")
DIASTOLIC = ("8462-4", "Diastolic blood pressure", "mm[Hg]", "mmHg")
SPO2_CODES = (
    ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
    ("2708-6", "Oxygen saturation in Arterial blood"),
)
SEVERITY_BY_GRADE = {1: "mild", 2: "moderate"}  # CTCAE 3 and above: severe
SERIOUS_CRITERIA = {
    "death": "SeriousResultsInDeath",
    "life_threatening": "SeriousIsLifeThreatening",
    "hospitalisation": "SeriousResultsInHospitalization",
    "disability": "SeriousResultsInDisability",
    "congenital_anomaly": "SeriousIsBirthDefect",
    "important_medical_event": "SeriousRequiresPreventImpairment",
}
OUTCOMES = {
    "resolved": "resolved",
    "resolving": "recovering",
    "not_resolved": "ongoing",
    "resolved_with_sequelae": "resolvedWithSequelae",
    "fatal": "fatal",
}
GENDERS = {"female": "female", "male": "male", "other": "other", "unknown": "unknown"}


def full_url(session_id: str, *parts: object) -> str:
    """A deterministic ``urn:uuid:`` for one resource of one session."""
    name = "/".join([session_id, *(str(p) for p in parts)])
    return f"urn:uuid:{uuid.uuid5(NAMESPACE, name)}"


def _ref(url: str) -> dict[str, str]:
    return {"reference": url}


def _coding(system: str, code: str, display: str) -> dict[str, str]:
    return {"system": system, "code": code, "display": display}


def _quantity(value: float, unit: str, code: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": code}


class _Builder:
    """Collects the entries of one session's bundle."""

    def __init__(self, document: Document, reference: Reference) -> None:
        self.doc = document
        self.ref = reference
        self.session: Row = document["session"]
        self.sid: str = self.session["id"]
        self.patient = full_url(self.sid, "patient")
        self.encounter = full_url(self.sid, "encounter")
        self.entries: list[dict[str, Any]] = []

    def rows(self, table: str) -> list[Row]:
        return current_rows(self.doc["tables"].get(table, []))

    def add(self, url: str, resource: dict[str, Any]) -> None:
        self.entries.append({"fullUrl": url, "resource": resource})

    # --- subject and context ---------------------------------------------------------------

    def patient_resource(self) -> None:
        resource: dict[str, Any] = {
            "resourceType": "Patient",
            "identifier": [{"system": PATIENT_CODE_SYSTEM, "value": self.session["patient_code"]}],
        }
        if self.session.get("sex") in GENDERS:
            resource["gender"] = GENDERS[self.session["sex"]]
        if self.session.get("birth_year"):
            resource["birthDate"] = f"{int(self.session['birth_year']):04d}"
        self.add(self.patient, resource)

    def encounter_resource(self) -> None:
        ends = self.rows("session_ends")
        period = {"start": self.session["observed_at"]}
        if ends:
            period["end"] = ends[-1]["observed_at"]
        clinicians = sorted(
            self.doc["tables"].get("session_clinicians", []), key=lambda r: r.get("position", 0)
        )
        resource: dict[str, Any] = {
            "resourceType": "Encounter",
            "identifier": [{"system": SESSION_ID_SYSTEM, "value": self.sid}],
            "status": "finished" if ends else "in-progress",
            "class": _coding(ACT_CODE, "AMB", "ambulatory"),
            "type": [{"text": "Ketamine-assisted psychotherapy session"}],
            "subject": _ref(self.patient),
            "period": period,
        }
        if clinicians:
            resource["participant"] = [{"individual": {"display": c["name"]}} for c in clinicians]
        self.add(self.encounter, resource)

    # --- vital signs -----------------------------------------------------------------------

    def observation(
        self,
        code: dict[str, Any],
        profile: str,
        when: str,
        issued: str | None,
        corrected: bool = False,
    ) -> dict[str, Any]:
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "meta": {"profile": [PROFILE + profile]},
            "status": "corrected" if corrected else "final",
            "category": [
                {
                    "coding": [_coding(OBS_CATEGORY, "vital-signs", "Vital Signs")],
                    "text": "Vital Signs",
                }
            ],
            "code": code,
            "subject": _ref(self.patient),
            "encounter": _ref(self.encounter),
            "effectiveDateTime": when,
        }
        if issued:
            resource["issued"] = issued
        return resource

    def simple(
        self, spec: tuple[str, str, str, str, str], value: float, row: Row
    ) -> dict[str, Any]:
        loinc, display, code, unit, profile = spec
        resource = self.observation(
            {"coding": [_coding(LOINC, loinc, display)], "text": display},
            profile,
            row["observed_at"],
            row.get("recorded_at"),
            corrected=row.get("supersedes_id") is not None,
        )
        resource["valueQuantity"] = _quantity(value, unit, code)
        return resource

    def blood_pressure(self, row: Row) -> dict[str, Any]:
        resource = self.observation(
            {
                "coding": [
                    _coding(LOINC, "85354-9", "Blood pressure panel with all children optional")
                ],
                "text": "Blood pressure",
            },
            "bp",
            row["observed_at"],
            row.get("recorded_at"),
            corrected=row.get("supersedes_id") is not None,
        )
        resource["component"] = [
            {
                "code": {"coding": [_coding(LOINC, loinc, display)], "text": display},
                "valueQuantity": _quantity(row[key], unit, code),
            }
            for key, (loinc, display, code, unit) in (("sbp", SYSTOLIC), ("dbp", DIASTOLIC))
        ]
        return resource

    def spo2(self, row: Row) -> dict[str, Any]:
        resource = self.observation(
            {"coding": [_coding(LOINC, c, d) for c, d in SPO2_CODES], "text": "SpO₂"},
            "oxygensat",
            row["observed_at"],
            row.get("recorded_at"),
            corrected=row.get("supersedes_id") is not None,
        )
        resource["valueQuantity"] = _quantity(row["spo2"], "%", "%")
        return resource

    def vitals_members(self, row: Row) -> list[tuple[str, dict[str, Any]]]:
        members: list[tuple[str, dict[str, Any]]] = []

        def url(part: str) -> str:
            return full_url(self.sid, "vitals", row["ref"], part)

        if row.get("sbp") is not None and row.get("dbp") is not None:
            members.append((url("bp"), self.blood_pressure(row)))
        if row.get("hr") is not None:
            members.append((url("hr"), self.simple(HR, row["hr"], row)))
        if row.get("rr") is not None:
            members.append((url("rr"), self.simple(RR, row["rr"], row)))
        if row.get("spo2") is not None:
            members.append((url("spo2"), self.spo2(row)))
        if row.get("temp_c") is not None:
            members.append((url("temp"), self.simple(TEMP, row["temp_c"], row)))
        return members

    def vitals(self) -> None:
        for row in self.rows("vitals"):
            members = self.vitals_members(row)
            if not members:
                continue
            panel = self.observation(
                {
                    "coding": [_coding(LOINC, "85353-1", "Vital signs panel")],
                    "text": "Vital signs",
                },
                "vitalspanel",
                row["observed_at"],
                row.get("recorded_at"),
                corrected=row.get("supersedes_id") is not None,
            )
            panel["hasMember"] = [_ref(url) for url, _ in members]
            notes = [n for n in (row.get("note"),) if n]
            if row.get("on_oxygen"):
                notes.insert(0, "On supplemental oxygen")
            if notes:
                panel["note"] = [{"text": n} for n in notes]
            self.add(full_url(self.sid, "vitals", row["ref"]), panel)
            for url, member in members:
                self.add(url, member)

    def weight(self) -> None:
        if self.session.get("weight_kg") is None:
            return
        row = {
            "observed_at": self.session["observed_at"],
            "recorded_at": self.session.get("recorded_at"),
        }
        self.add(
            full_url(self.sid, "sessions", "weight"),
            self.simple(WEIGHT, self.session["weight_kg"], row),
        )

    # --- doses and adverse effects ---------------------------------------------------------

    def doses(self) -> None:
        for row in self.rows("doses"):
            drug = row.get("drug_other") if row.get("drug") == "other" else None
            medication = drug or self.ref.label("drugs", row.get("drug"))
            resource: dict[str, Any] = {
                "resourceType": "MedicationAdministration",
                "status": "completed",
                "medicationCodeableConcept": {"text": medication},
                "subject": _ref(self.patient),
                "context": _ref(self.encounter),
                "effectiveDateTime": row["observed_at"],
                "dosage": {
                    "route": {"text": self.ref.label("routes", row.get("route"))},
                    "dose": _quantity(row["dose_mg"], "mg", "mg"),
                },
            }
            notes = [f"Lot {row['lot_number']}" if row.get("lot_number") else None, row.get("note")]
            if row.get("is_booster"):
                notes.insert(0, "Booster dose")
            if any(notes):
                resource["note"] = [{"text": n} for n in notes if n]
            self.add(full_url(self.sid, "doses", row["ref"]), resource)

    def adverse_events(self) -> None:
        outcomes = self.rows("adverse_event_outcomes")
        first_dose = next(iter(self.rows("doses")), None)
        for row in self.rows("adverse_events"):
            resource = self.adverse_event(row)
            latest = [o for o in outcomes if o.get("adverse_event_id") == row["ref"]]
            if latest and latest[-1].get("outcome") in OUTCOMES:
                code = OUTCOMES[latest[-1]["outcome"]]
                resource["outcome"] = {
                    "coding": [{"system": AE_OUTCOME, "code": code}],
                    "text": self.ref.label("ae_outcomes", latest[-1]["outcome"]),
                }
            if first_dose is not None:
                resource["suspectEntity"] = [
                    {
                        "instance": _ref(full_url(self.sid, "doses", first_dose["ref"])),
                        "causality": [
                            {
                                "assessment": {
                                    "text": self.ref.label("ae_relatedness", row.get("relatedness"))
                                }
                            }
                        ],
                    }
                ]
            self.add(full_url(self.sid, "adverse_events", row["ref"]), resource)

    def adverse_event(self, row: Row) -> dict[str, Any]:
        term = self.ref.label("adverse_effects", row.get("term"))
        text = row.get("verbatim") if row.get("term") == "other" else term
        serious = bool(row.get("serious"))
        seriousness = [{"system": SERIOUSNESS, "code": "Serious" if serious else "Non-serious"}]
        if serious and row.get("serious_criterion") in SERIOUS_CRITERIA:
            seriousness.append(
                {"system": SERIOUSNESS, "code": SERIOUS_CRITERIA[row["serious_criterion"]]}
            )
        grade = int(row.get("grade") or 0)
        return {
            "resourceType": "AdverseEvent",
            "actuality": "actual",
            "event": {"text": text or term},
            "subject": _ref(self.patient),
            "encounter": _ref(self.encounter),
            "date": row["observed_at"],
            "recordedDate": row.get("recorded_at") or row["observed_at"],
            "seriousness": {"coding": seriousness, "text": "Serious" if serious else "Non-serious"},
            "severity": {
                "coding": [{"system": SEVERITY, "code": SEVERITY_BY_GRADE.get(grade, "severe")}],
                "text": f"CTCAE grade {grade}",
            },
        }


def bundle_from_document(document: Document, reference: Reference | None = None) -> dict[str, Any]:
    """The FHIR R4 collection Bundle for one exported session document."""
    builder = _Builder(document, reference or default_reference())
    builder.patient_resource()
    builder.encounter_resource()
    builder.weight()
    builder.vitals()
    builder.doses()
    builder.adverse_events()
    sid = document["session"]["id"]
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid5(NAMESPACE, f"{sid}/bundle")),
        "type": "collection",
        "entry": builder.entries,
    }


def build_bundle(source: Source, session_id: str) -> dict[str, Any]:
    """The FHIR R4 collection Bundle for one session of the store."""
    return bundle_from_document(build_session_document(source, session_id))


def bundle_text(bundle: dict[str, Any]) -> str:
    return json.dumps(bundle, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def write_fhir(source: Source, session_id: str, out: Path) -> Path:
    """Write one session's Bundle to the file ``out``."""
    write_atomically(Path(out), bundle_text(build_bundle(source, session_id)).encode("utf-8"))
    return Path(out)


def fhir_file_name(session_id: str) -> str:
    return f"{session_id}.fhir.json"


def write_fhir_all(source: Source, folder: Path, ids: Sequence[str] | None = None) -> list[Path]:
    """One ``<session id>.fhir.json`` Bundle per session, into ``folder``."""
    chosen = list(ids) if ids is not None else session_ids(source)
    files = {
        fhir_file_name(sid): bundle_text(build_bundle(source, sid)).encode("utf-8")
        for sid in chosen
    }
    return write_folder(Path(folder), files)
