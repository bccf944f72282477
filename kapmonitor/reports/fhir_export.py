"""A session as a FHIR R4 (4.0.1) ``Bundle`` of type ``collection``, for a patient record.

The Patient is pseudonymous (the clinic's patient code, never a name). Every clinician named in the
session or recording a row is a Practitioner, and every resource says who did it (Observation
``performer``, MedicationAdministration ``performer``, AdverseEvent ``recorder``,
QuestionnaireResponse ``author``, Encounter ``participant``). Vital signs are coded with LOINC and
UCUM from the vital-sign registry (:data:`kapmonitor.domain.vitals.VITAL_SIGNS`; end-tidal CO₂ is
LOINC 19891-1 in mm[Hg]), as the HL7 FHIR R4 vital-signs profile names them where it has a profile,
one vital-signs panel per recorded set with its members.
The bedside scores (MOAA/S, RASS, dissociation, CADSS), NEWS2 (with its SpO₂ scale,
and "incomplete" instead of a band when a parameter was missing), the discharge score
(Aldrete/PADSS) and the questionnaire totals are survey Observations: LOINC where LOINC has the
code (PHQ-9 total 44261-6, GAD-7 total 70274-6), otherwise the project's own code system
``CODE_SYSTEM`` (see docs/exports.md). Each questionnaire is also a QuestionnaireResponse with every
answer. Doses are MedicationAdministrations coded with RxNorm and a SNOMED CT route; adverse effects
are AdverseEvents carrying the recorded code, with only doses given before the event as suspects.
Only what stands now is exported: a superseded row is replaced by its correction (status
``corrected``) and a voided row is left out. Every ``fullUrl`` is a ``urn:uuid:`` derived (UUID 5)
from the session id, the table and the row's ref, so the same session always gives the same bundle,
byte for byte.

A written Bundle also carries the exporting database's audit chain head in ``Bundle.meta`` as the
complex extension ``urn:kapmonitor:fhir:audit-chain-head`` (database, entry, mac, written_at;
``Bundle`` is a Resource, not a DomainResource, so it takes extensions only on its ``meta``), which
``kapmonitor verify --anchors`` reads back (:mod:`kapmonitor.store.anchors`). It is the head as of
the export's snapshot, so exporting an unchanged database twice still gives the same bytes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from typing import IO, Any

from sqlite_utils import Database

from kapmonitor.domain.reference import Reference, default_reference
from kapmonitor.domain.vitals import VITAL_SIGNS, VitalSign
from kapmonitor.reports.session_export import (
    Document,
    ExportTarget,
    Progress,
    Row,
    Source,
    as_database,
    build_session_document,
    current_rows,
    describe_tables,
)
from kapmonitor.store import anchors

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
CLINICIAN_SYSTEM = "urn:kapmonitor:clinician"
PROFILE = "http://hl7.org/fhir/StructureDefinition/"
# The project's own code system for scores that LOINC has no code for (documented in
# docs/exports.md): MOAA/S, RASS, dissociation level, CADSS total, NEWS2 total, Aldrete, PADSS,
# and the post-session questionnaire.
CODE_SYSTEM = "urn:kapmonitor:fhir:code"
QUESTIONNAIRE_SYSTEM = "urn:kapmonitor:questionnaire:"  # + questionnaire id, a canonical
ADVERSE_EFFECT_SYSTEM = "urn:kapmonitor:adverse-effect"  # the catalogue's own term codes
MEDDRA = "http://terminology.hl7.org/CodeSystem/mdr"  # the code field holds MedDRA, if licensed
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
# RxNorm ingredient concepts (RXCUI), U.S. National Library of Medicine RxNorm.
RXNORM_DRUGS = {"ketamine": ("6130", "ketamine"), "esketamine": ("2119365", "esketamine")}
# SNOMED CT route of administration concepts (the FHIR R4 route value set).
SNOMED_ROUTES = {
    "intranasal": ("46713006", "Nasal route"),
    "im": ("78421000", "Intramuscular route"),
    "sublingual": ("37839007", "Sublingual route"),
    "iv": ("47625008", "Intravenous route"),
    "oral": ("26643006", "Oral route"),
}
# Observation codes of the scores: (system, code, display).
SCORE_CODES: dict[str, tuple[str, str, str]] = {
    "moaas": (
        CODE_SYSTEM,
        "moaas",
        "Modified Observer's Assessment of Alertness/Sedation (MOAA/S)",
    ),
    "rass": (CODE_SYSTEM, "rass", "Richmond Agitation-Sedation Scale (RASS)"),
    "dissociation": (CODE_SYSTEM, "dissociation", "Dissociation level (clinician-rated, 0-4)"),
    "cadss": (CODE_SYSTEM, "cadss-total", "Clinician-Administered Dissociative States Scale total"),
    "news2": (CODE_SYSTEM, "news2-total", "National Early Warning Score 2 (NEWS2) total"),
    "aldrete": (CODE_SYSTEM, "aldrete-total", "Modified Aldrete score total"),
    "padss": (CODE_SYSTEM, "padss-total", "Post-Anesthetic Discharge Scoring System total"),
    "phq9": (LOINC, "44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score"),
    "gad7": (LOINC, "70274-6", "Generalized anxiety disorder 7 item (GAD-7) total score"),
    "post_session": (CODE_SYSTEM, "post-session-total", "Post-session questionnaire total"),
}

# Body weight is a session detail, not a vital sign of the registry.
WEIGHT = ("29463-7", "Body weight", "kg", "kg", "bodyweight")
# The vital-signs profile asks SpO₂ for both codes; the registry's own code comes first.
SPO2_CODES = (
    ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
    ("2708-6", "Oxygen saturation in Arterial blood"),
)
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")
# The member part of a vital's fullUrl where it is not the registry key, kept so bundles exported
# before the registry keep their resource ids.
URL_PARTS = {"temp_c": "temp"}
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

    def __init__(
        self,
        document: Document,
        reference: Reference,
        emit: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.doc = document
        self.ref = reference
        self.session: Row = document["session"]
        self.sid: str = self.session["id"]
        self.patient = full_url(self.sid, "patient")
        self.encounter = full_url(self.sid, "encounter")
        self.entries: list[dict[str, Any]] = []
        # Where each entry goes as it is made: the list, or straight to the file being written.
        self.emit = emit or self.entries.append
        self.practitioners: dict[str, str] = {}  # clinician name -> fullUrl

    def practitioner(self, name: str | None) -> dict[str, str]:
        """A reference to the Practitioner for ``name`` (the session's starter if unnamed)."""
        who = (name or self.session.get("recorded_by") or "unknown").strip()
        if who not in self.practitioners:
            self.practitioners[who] = full_url(self.sid, "practitioner", who)
        return {"reference": self.practitioners[who], "display": who}

    def practitioner_resources(self) -> None:
        """One Practitioner per clinician named or recording, identified by the name as shown
        in "Recording as" (the record's own attribution; no other identity is kept)."""
        for name, url in sorted(self.practitioners.items()):
            self.add(
                url,
                {
                    "resourceType": "Practitioner",
                    "identifier": [{"system": CLINICIAN_SYSTEM, "value": name}],
                    "name": [{"text": name}],
                },
            )

    def rows(self, table: str) -> list[Row]:
        return current_rows(self.doc["tables"].get(table, []))

    def add(self, url: str, resource: dict[str, Any]) -> None:
        self.emit({"fullUrl": url, "resource": resource})

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
            resource["participant"] = [
                {"individual": self.practitioner(c["name"])} for c in clinicians
            ]
        self.add(self.encounter, resource)

    # --- vital signs -----------------------------------------------------------------------

    def observation(
        self,
        code: dict[str, Any],
        profile: str,
        when: str,
        issued: str | None,
        corrected: bool = False,
        performer: str | None = None,
        category: tuple[str, str] = ("vital-signs", "Vital Signs"),
    ) -> dict[str, Any]:
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "corrected" if corrected else "final",
            "category": [
                {"coding": [_coding(OBS_CATEGORY, *category)], "text": category[1]},
            ],
            "code": code,
            "subject": _ref(self.patient),
            "encounter": _ref(self.encounter),
            "effectiveDateTime": when,
            "performer": [self.practitioner(performer)],
        }
        if profile:
            resource["meta"] = {"profile": [PROFILE + profile]}
        if issued:
            resource["issued"] = issued
        return resource

    def score_observation(
        self, kind: str, value: int | float, row: Row, **extra: Any
    ) -> dict[str, Any]:
        """A survey Observation holding one score of ``row``, coded per ``SCORE_CODES``."""
        system, code, display = SCORE_CODES[kind]
        resource = self.observation(
            {"coding": [_coding(system, code, display)], "text": display},
            "",
            row["observed_at"],
            row.get("recorded_at"),
            corrected=row.get("supersedes_id") is not None,
            performer=row.get("recorded_by"),
            category=("survey", "Survey"),
        )
        resource["valueInteger"] = int(value)
        resource.update(extra)
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
            performer=row.get("recorded_by"),
        )
        resource["valueQuantity"] = _quantity(value, unit, code)
        return resource

    def vital_observation(self, sign: VitalSign, row: Row) -> dict[str, Any]:
        """One vital sign of a recorded set, coded from the registry (LOINC, UCUM, profile)."""
        if sign.key == "spo2":
            code = {"coding": [_coding(LOINC, c, d) for c, d in SPO2_CODES], "text": sign.short}
        else:
            code = {
                "coding": [_coding(LOINC, sign.loinc, sign.loinc_display)],
                "text": sign.loinc_display,
            }
        resource = self.observation(
            code,
            sign.fhir_profile or "",
            row["observed_at"],
            row.get("recorded_at"),
            corrected=row.get("supersedes_id") is not None,
            performer=row.get("recorded_by"),
        )
        resource["valueQuantity"] = _quantity(row[sign.key], sign.unit, sign.ucum)
        return resource

    def blood_pressure(self, row: Row, parts: list[VitalSign]) -> dict[str, Any]:
        """Systolic and diastolic together, as the vital-signs BP profile wants them."""
        resource = self.observation(
            {"coding": [_coding(LOINC, *BP_PANEL)], "text": "Blood pressure"},
            "bp",
            row["observed_at"],
            row.get("recorded_at"),
            corrected=row.get("supersedes_id") is not None,
            performer=row.get("recorded_by"),
        )
        resource["component"] = [
            {
                "code": {
                    "coding": [_coding(LOINC, sign.loinc, sign.loinc_display)],
                    "text": sign.loinc_display,
                },
                "valueQuantity": _quantity(row[sign.key], sign.unit, sign.ucum),
            }
            for sign in parts
        ]
        return resource

    def vitals_members(self, row: Row) -> list[tuple[str, dict[str, Any]]]:
        """The set's members, one per recorded vital of the registry (blood pressure as one
        panel of both pressures, only when both were taken)."""
        members: list[tuple[str, dict[str, Any]]] = []

        def url(part: str) -> str:
            return full_url(self.sid, "vitals", row["ref"], part)

        pressures = [v for v in VITAL_SIGNS if v.field == "bp"]
        for sign in VITAL_SIGNS:
            if sign.field == "bp":
                if sign is pressures[0] and all(row.get(p.key) is not None for p in pressures):
                    members.append((url("bp"), self.blood_pressure(row, pressures)))
                continue
            if row.get(sign.key) is not None:
                part = URL_PARTS.get(sign.key, sign.key)
                members.append((url(part), self.vital_observation(sign, row)))
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
                performer=row.get("recorded_by"),
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
            "recorded_by": self.session.get("recorded_by"),
        }
        self.add(
            full_url(self.sid, "sessions", "weight"),
            self.simple(WEIGHT, self.session["weight_kg"], row),
        )

    # --- doses and adverse effects ---------------------------------------------------------

    # --- bedside scores, NEWS2, discharge and questionnaires -------------------------------

    def bedside_scores(self) -> None:
        """MOAA/S, RASS, dissociation level and CADSS total, one Observation each per entry."""
        for row in self.rows("observations"):
            for key, kind in (
                ("moaas", "moaas"),
                ("rass", "rass"),
                ("dissociation", "dissociation"),
                ("cadss_total", "cadss"),
            ):
                if row.get(key) is None:
                    continue
                resource = self.score_observation(kind, row[key], row)
                scale = self.ref.scales.get(kind)
                if scale is not None and kind != "cadss":
                    resource["note"] = [{"text": scale.describe(row[key])}]
                self.add(full_url(self.sid, "observations", row["ref"], kind), resource)

    def news2_scores(self) -> None:
        """NEWS2 for each current vitals set, derived from its panel: the band, or "incomplete"
        (no band, a partial total) when a parameter was not measured; Scale 2 is said."""
        current = {r["ref"] for r in self.rows("vitals")}
        for row in self.doc["tables"].get("vital_scores", []):
            if row.get("vitals_id") not in current:
                continue  # the score of a superseded or withdrawn reading
            parts = json.loads(row.get("news2_parts") or "{}")
            missing = json.loads(row.get("news2_missing") or "[]")
            scale = int(parts.pop("spo2_scale", 1))
            band = row.get("news2_band") or ""
            incomplete = band == "incomplete" or bool(missing)
            interpretation = (
                f"incomplete: no band (partial total; not measured: {', '.join(missing)})"
                if incomplete
                else f"{band} clinical risk band"
            )
            notes = [
                f"SpO₂ scale {scale}" + (" (hypercapnic respiratory failure)" if scale == 2 else "")
            ]
            resource = self.score_observation(
                "news2",
                row["news2_total"],
                row,
                interpretation=[{"text": interpretation}],
                derivedFrom=[_ref(full_url(self.sid, "vitals", row["vitals_id"]))],
                component=[
                    {
                        "code": {
                            "coding": [
                                _coding(CODE_SYSTEM, f"news2-{name}", f"NEWS2 {name} points")
                            ]
                        },
                        "valueInteger": int(points),
                    }
                    for name, points in parts.items()
                ],
            )
            resource["status"] = "preliminary" if incomplete else "final"
            resource["note"] = [{"text": n} for n in notes]
            self.add(full_url(self.sid, "vital_scores", row["ref"]), resource)

    def discharge_scores(self) -> None:
        for row in self.rows("discharge_assessments"):
            kind = row.get("score_name")
            if kind not in SCORE_CODES:
                continue
            items = json.loads(row.get("items") or "[]")
            passed = "passed" if row.get("passed") else "not passed"
            resource = self.score_observation(
                kind,
                row["total"],
                row,
                interpretation=[
                    {"text": f"{passed} (pass mark {row['pass_mark']} of {row['maximum']})"}
                ],
                component=[
                    {
                        "code": {
                            "coding": [
                                _coding(
                                    CODE_SYSTEM, f"{kind}-{i['code']}", i.get("label") or i["code"]
                                )
                            ]
                        },
                        "valueInteger": int(i["points"]),
                    }
                    for i in items
                    if isinstance(i, dict) and i.get("code") and i.get("points") is not None
                ],
            )
            if not resource["component"]:
                del resource["component"]
            self.add(full_url(self.sid, "discharge_assessments", row["ref"]), resource)

    def questionnaires(self) -> None:
        """Each questionnaire as a QuestionnaireResponse with every answer, and its total as an
        Observation derived from it (LOINC for PHQ-9 and GAD-7)."""
        for row in self.rows("questionnaire_responses"):
            qid = row["questionnaire_id"]
            answers = json.loads(row.get("answers") or "{}")
            response_url = full_url(self.sid, "questionnaire_responses", row["ref"])
            items = []
            for link_id, answer in answers.items():
                if isinstance(answer, bool) or answer is None:
                    continue
                value = (
                    {"valueInteger": int(answer)}
                    if isinstance(answer, int)
                    else {"valueString": str(answer)}
                )
                items.append({"linkId": str(link_id), "answer": [value]})
            response: dict[str, Any] = {
                "resourceType": "QuestionnaireResponse",
                "questionnaire": f"{QUESTIONNAIRE_SYSTEM}{qid}",
                "status": "completed",
                "subject": _ref(self.patient),
                "encounter": _ref(self.encounter),
                "authored": row["observed_at"],
                "author": self.practitioner(row.get("recorded_by")),
            }
            if items:
                response["item"] = items
            self.add(response_url, response)
            if row.get("total") is None or qid not in SCORE_CODES:
                continue
            extra: dict[str, Any] = {"derivedFrom": [_ref(response_url)]}
            if row.get("band"):
                extra["interpretation"] = [{"text": row["band"]}]
            flags = json.loads(row.get("safety_flags") or "[]")
            if flags:
                extra["note"] = [{"text": f} for f in flags]
            self.add(
                full_url(self.sid, "questionnaire_responses", row["ref"], "total"),
                self.score_observation(qid, row["total"], row, **extra),
            )

    # --- doses and adverse effects ---------------------------------------------------------

    def medication(self, row: Row) -> dict[str, Any]:
        drug = row.get("drug")
        text = (row.get("drug_other") if drug == "other" else None) or self.ref.label("drugs", drug)
        concept: dict[str, Any] = {"text": text}
        if drug in RXNORM_DRUGS:
            code, display = RXNORM_DRUGS[drug]
            concept["coding"] = [_coding(RXNORM, code, display)]
        return concept

    def route(self, row: Row) -> dict[str, Any]:
        route = row.get("route")
        concept: dict[str, Any] = {"text": self.ref.label("routes", route)}
        if route in SNOMED_ROUTES:
            code, display = SNOMED_ROUTES[route]
            concept["coding"] = [_coding(SNOMED, code, display)]
        return concept

    def doses(self) -> None:
        for row in self.rows("doses"):
            resource: dict[str, Any] = {
                "resourceType": "MedicationAdministration",
                "status": "completed",
                "medicationCodeableConcept": self.medication(row),
                "subject": _ref(self.patient),
                "context": _ref(self.encounter),
                "effectiveDateTime": row["observed_at"],
                "performer": [{"actor": self.practitioner(row.get("recorded_by"))}],
                "dosage": {
                    "route": self.route(row),
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
        doses = self.rows("doses")
        for row in self.rows("adverse_events"):
            resource = self.adverse_event(row)
            latest = [o for o in outcomes if o.get("adverse_event_id") == row["ref"]]
            if latest and latest[-1].get("outcome") in OUTCOMES:
                code = OUTCOMES[latest[-1]["outcome"]]
                resource["outcome"] = {
                    "coding": [{"system": AE_OUTCOME, "code": code}],
                    "text": self.ref.label("ae_outcomes", latest[-1]["outcome"]),
                }
            # Only a dose given before the event can have caused it.
            before = [d for d in doses if d["observed_at"] < row["observed_at"]]
            causality = {
                "assessment": {"text": self.ref.label("ae_relatedness", row.get("relatedness"))}
            }
            if before:
                resource["suspectEntity"] = [
                    {
                        "instance": _ref(full_url(self.sid, "doses", dose["ref"])),
                        "causality": [causality],
                    }
                    for dose in before
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
        coding = [{"system": ADVERSE_EFFECT_SYSTEM, "code": row.get("term"), "display": term}]
        if row.get("code"):
            coding.insert(0, {"system": MEDDRA, "code": str(row["code"]).strip()})
        return {
            "resourceType": "AdverseEvent",
            "actuality": "actual",
            "event": {"coding": coding, "text": text or term},
            "subject": _ref(self.patient),
            "encounter": _ref(self.encounter),
            "date": row["observed_at"],
            "recordedDate": row.get("recorded_at") or row["observed_at"],
            "recorder": self.practitioner(row.get("recorded_by")),
            "seriousness": {"coding": seriousness, "text": "Serious" if serious else "Non-serious"},
            "severity": {
                "coding": [{"system": SEVERITY, "code": SEVERITY_BY_GRADE.get(grade, "severe")}],
                "text": f"CTCAE grade {grade}",
            },
        }


def _build(builder: _Builder) -> None:
    builder.patient_resource()
    builder.encounter_resource()
    builder.weight()
    builder.vitals()
    builder.news2_scores()
    builder.bedside_scores()
    builder.questionnaires()
    builder.discharge_scores()
    builder.doses()
    builder.adverse_events()
    builder.practitioner_resources()  # last: every reference above has named its clinician


def bundle_id(session_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{session_id}/bundle"))


def bundle_meta(anchor: dict[str, Any]) -> dict[str, Any]:
    """``Bundle.meta`` holding the audit chain head as its one extension."""
    return {"extension": [anchors.fhir_extension(anchor)]}


def bundle_from_document(
    document: Document,
    reference: Reference | None = None,
    anchor: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The FHIR R4 collection Bundle for one exported session document (with the chain head in
    ``meta`` when ``anchor`` is given)."""
    builder = _Builder(document, reference or default_reference())
    _build(builder)
    bundle = {
        "resourceType": "Bundle",
        "id": bundle_id(document["session"]["id"]),
        "type": "collection",
        "entry": builder.entries,
    }
    if anchor is not None:
        bundle["meta"] = bundle_meta(anchor)
    return bundle


def build_bundle(source: Source, session_id: str) -> dict[str, Any]:
    """The FHIR R4 collection Bundle for one session of the store."""
    return bundle_from_document(build_session_document(source, session_id))


def bundle_text(bundle: dict[str, Any]) -> str:
    return json.dumps(bundle, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def stream_bundle(
    document: Document,
    out: IO[str],
    reference: Reference | None = None,
    anchor: dict[str, Any] | None = None,
) -> None:
    """Write the Bundle to ``out`` entry by entry as the builder makes them: the same bytes as
    ``bundle_text(bundle_from_document(document, reference, anchor))`` without the bundle held
    in memory."""
    first = True

    def emit(entry: dict[str, Any]) -> None:
        nonlocal first
        text = json.dumps(entry, sort_keys=True, indent=2, ensure_ascii=False)
        out.write("\n    " if first else ",\n    ")
        out.write(text.replace("\n", "\n    "))
        first = False

    out.write('{\n  "entry": [')
    _build(_Builder(document, reference or default_reference(), emit))
    out.write("]" if first else "\n  ]")
    sid = document["session"]["id"]
    out.write(f',\n  "id": {json.dumps(bundle_id(sid))},\n')
    if anchor is not None:
        meta = json.dumps(bundle_meta(anchor), sort_keys=True, indent=2, ensure_ascii=False)
        out.write(f'  "meta": {meta.replace(chr(10), chr(10) + "  ")},\n')
    out.write('  "resourceType": "Bundle",\n  "type": "collection"\n}\n')


def write_fhir_sessions(
    db: Database, session_ids: Sequence[str], target: ExportTarget, progress: Progress
) -> None:
    """The FHIR writer: one ``<session id>.fhir.json`` Bundle per session. One session's
    document is read at a time and its Bundle is streamed entry by entry, so memory does not grow
    with the number of sessions. Each Bundle carries the chain head as of the export's snapshot."""
    reference = default_reference()
    db = as_database(db)
    tables = describe_tables(db)
    anchor = anchors.embedded(db)
    for done, session_id in enumerate(session_ids, 1):
        document = build_session_document(db, session_id, tables)
        with target.open_text(f"{session_id}.fhir.json") as out:
            stream_bundle(document, out, reference, anchor)
        del document
        progress(done, len(session_ids))
