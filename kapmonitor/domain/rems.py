"""The Spravato REMS Patient Monitoring Form, filled from the session log (esketamine).

The form must be completed after every esketamine session; the log should be able to fill every
field, and where it cannot, the summary says exactly why rather than leaving a silent blank or a
guess. Each answer carries what it was based on (which reading, at which minute after the first
dose), so the clinician can check it before copying it to the REMS portal.

Conventions: minutes are counted from the first dose (esketamine if any, else the first dose of any
drug) and rounded down, so monitoring time is never overstated; the treatment date is the local
calendar date of the first dose (of the session start without a dose).

The answers follow the label and the form, not a private rule: "vitals acceptable before dosing"
is No above the label's 140/90 guide unless a clinician documented the decision to proceed;
"ready to leave" is the first discharge assessment that met every criterion but the 2-hour
minimum (reported apart from that minimum); sedation is any MOAA/S below 5 after dosing; the
"~40 min" BP is a BP reading within the protocol's checkpoint window; a "before the end" BP older
than the protocol's freshness window is flagged. The numbers are editable defaults in
``resources/rems.json`` (each with its source), the windows come from the session's protocol copy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kapmonitor.domain.clock import from_iso
from kapmonitor.domain.validation import FieldError

if TYPE_CHECKING:
    from kapmonitor.domain.protocol import Protocol


@dataclass(frozen=True)
class RemsField:
    key: str
    label: str
    value: str  # what the form would say; "" when the log cannot fill it
    filled: bool
    why_missing: str = ""  # e.g. "no BP recorded within 5 min of minute 40"
    flag: str = ""  # a filled answer the clinician must look at, e.g. a stale BP


# --- editable defaults (resources/rems.json) ---------------------------------------------------


@dataclass(frozen=True)
class Contraindication:
    code: str
    label: str
    source: str


@dataclass(frozen=True)
class RemsDefaults:
    """The REMS numbers and the contraindication list, each with where it comes from."""

    pre_dose_sbp_above: float
    pre_dose_dbp_above: float
    pre_dose_source: str
    sedation_moaas_below: int
    sedation_source: str
    submission_due_days: int
    submission_source: str
    contraindications: tuple[Contraindication, ...]
    # Used only when a session's protocol copy has no ~40 min checkpoint or freshness window.
    peak_minute: float = 40.0
    peak_window_minutes: float = 5.0
    freshness_minutes: float = 15.0

    def guide_text(self) -> str:
        return f"{_number(self.pre_dose_sbp_above)}/{_number(self.pre_dose_dbp_above)}"


class RemsDefaultsError(ValueError):
    """resources/rems.json (or the clinic's copy) is malformed; the message names the key."""


def parse_rems_defaults(data: Mapping[str, Any], origin: str) -> RemsDefaults:
    """Read the defaults, refusing a missing number or source by name."""

    def fail(key: str, why: str) -> RemsDefaultsError:
        return RemsDefaultsError(f"{origin}: {key}: {why}")

    def sourced(key: str) -> tuple[float, str]:
        item = data.get(key)
        if not isinstance(item, Mapping) or not str(item.get("source", "")).strip():
            raise fail(key, "needs { value, source }")
        value = item.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise fail(key, f"needs a positive number, not {value!r}")
        return float(value), str(item["source"])

    bp = data.get("pre_dose_bp")
    if not isinstance(bp, Mapping) or not str(bp.get("source", "")).strip():
        raise fail("pre_dose_bp", "needs sbp_above, dbp_above and source")
    for key in ("sbp_above", "dbp_above"):
        if isinstance(bp.get(key), bool) or not isinstance(bp.get(key), int | float):
            raise fail(f"pre_dose_bp.{key}", f"needs a number, not {bp.get(key)!r}")
    moaas, moaas_source = sourced("sedation_moaas_below")
    days, days_source = sourced("submission_due_days")
    items = data.get("contraindications")
    if not isinstance(items, list) or not items:
        raise fail("contraindications", "needs a list of { code, label, source }")
    contraindications = []
    for n, item in enumerate(items, start=1):
        if not isinstance(item, Mapping) or not all(
            str(item.get(k, "")).strip() for k in ("code", "label", "source")
        ):
            raise fail(f"contraindications[{n}]", "needs code, label and source")
        contraindications.append(
            Contraindication(str(item["code"]), str(item["label"]), str(item["source"]))
        )
    return RemsDefaults(
        pre_dose_sbp_above=float(bp["sbp_above"]),
        pre_dose_dbp_above=float(bp["dbp_above"]),
        pre_dose_source=str(bp["source"]),
        sedation_moaas_below=int(moaas),
        sedation_source=moaas_source,
        submission_due_days=int(days),
        submission_source=days_source,
        contraindications=tuple(contraindications),
    )


def load_rems_defaults(path: Path) -> RemsDefaults:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RemsDefaultsError(f"{path}: cannot be read ({exc})") from exc
    if not isinstance(data, Mapping):
        raise RemsDefaultsError(f"{path}: needs a JSON object")
    return parse_rems_defaults(data, str(path))


@cache
def default_rems_defaults() -> RemsDefaults:
    """The clinic's ``rems.json`` in its config folder if present, else the shipped one."""
    from kapmonitor.paths import resources_dir, user_config_dir

    clinic = user_config_dir() / "rems.json"
    return load_rems_defaults(clinic if clinic.is_file() else resources_dir() / "rems.json")


# --- what is recorded at the start of an esketamine session ------------------------------------

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class RemsStart:
    """The REMS fields a session log cannot derive, asked when an esketamine session starts.

    ``contraindications`` maps each screen item's code to the clinician's answer (True = the
    patient has it, None = not answered). A "yes" refuses the session: the label lists these as
    contraindications, so there is no override here.
    """

    first_treatment: bool | None
    clinician_phone: str
    clinician_email: str
    setting_name: str
    setting_address: str
    contraindications: dict[str, bool | None] = field(default_factory=dict)

    def problems(self, defaults: RemsDefaults | None = None) -> list[FieldError]:
        """Every reason the session may not start, each naming its field."""
        defaults = defaults or default_rems_defaults()
        out: list[FieldError] = []
        known = {c.code for c in defaults.contraindications}
        unknown = sorted(set(self.contraindications) - known)
        if unknown:
            out.append(
                FieldError("rems_contraindications", f"Unknown screen items: {', '.join(unknown)}")
            )
        present = [
            c for c in defaults.contraindications if self.contraindications.get(c.code) is True
        ]
        for item in present:
            out.append(
                FieldError(
                    "rems_contraindications",
                    f"Esketamine is contraindicated: {item.label} ({item.source}); "
                    "the esketamine session cannot start",
                )
            )
        unanswered = [
            c.label
            for c in defaults.contraindications
            if self.contraindications.get(c.code) is None
        ]
        if unanswered:
            out.append(
                FieldError(
                    "rems_contraindications",
                    "Contraindication screen: answer every item (not answered: "
                    + "; ".join(unanswered)
                    + ")",
                )
            )
        if self.first_treatment is None:
            out.append(
                FieldError(
                    "rems_first_treatment",
                    "REMS: say whether this is the patient's first treatment (newly enrolled)",
                )
            )
        if not self.clinician_phone.strip():
            out.append(FieldError("rems_phone", "REMS: the monitoring clinician's phone"))
        if not _EMAIL.match(self.clinician_email.strip()):
            out.append(
                FieldError("rems_email", "REMS: the monitoring clinician's e-mail (name@domain)")
            )
        if not self.setting_name.strip():
            out.append(FieldError("rems_setting", "REMS: the treatment setting's name"))
        if not self.setting_address.strip():
            out.append(FieldError("rems_address", "REMS: the treatment setting's address"))
        return out

    def row(self) -> dict[str, Any]:
        """The stored columns (rems_session_details)."""
        return {
            "first_treatment": None if self.first_treatment is None else int(self.first_treatment),
            "clinician_phone": self.clinician_phone.strip(),
            "clinician_email": self.clinician_email.strip(),
            "setting_name": self.setting_name.strip(),
            "setting_address": self.setting_address.strip(),
            "contraindications": json.dumps(
                {k: v for k, v in self.contraindications.items()}, sort_keys=True
            ),
        }


# --- the 7-day submission -----------------------------------------------------------------------


@dataclass(frozen=True)
class SubmissionStatus:
    due: date
    submitted_by: str | None
    submitted_on: date | None
    overdue: bool
    source: str

    def text(self) -> str:
        """E.g. "REMS due 2026-12-04 / submitted by Dr A on 2026-12-01", or "… — OVERDUE"."""
        if self.submitted_by is not None and self.submitted_on is not None:
            late = " (late)" if self.submitted_on > self.due else ""
            return (
                f"REMS due {self.due.isoformat()} / submitted by {self.submitted_by} on "
                f"{self.submitted_on.isoformat()}{late}"
            )
        if self.overdue:
            return f"REMS due {self.due.isoformat()} — OVERDUE, not submitted"
        return f"REMS due {self.due.isoformat()} — not submitted"


def submission_due(treatment_day: date, defaults: RemsDefaults | None = None) -> date:
    """The form's due date: the treatment day plus the REMS's 7 days (an editable default)."""
    defaults = defaults or default_rems_defaults()
    return treatment_day + timedelta(days=defaults.submission_due_days)


def submission_status(
    treatment_at: datetime,
    submissions: list[Row],
    today: date,
    defaults: RemsDefaults | None = None,
) -> SubmissionStatus:
    """Due date and the first recorded submission (rows of rems_submissions, current only).

    ``treatment_at`` is the first dose (or the session start); the day is its local date, as on
    the form. Overdue: not submitted and today is past the due date.
    """
    defaults = defaults or default_rems_defaults()
    due = submission_due(treatment_at.astimezone().date(), defaults)
    live = sorted(
        (r for r in submissions if not r.get("voided")), key=lambda r: (r["observed_at"], r["id"])
    )
    if live:
        first = live[0]
        return SubmissionStatus(
            due,
            str(first["submitted_by"]),
            from_iso(first["observed_at"]).astimezone().date(),
            False,
            defaults.submission_source,
        )
    return SubmissionStatus(due, None, None, today > due, defaults.submission_source)


Row = dict[str, Any]

_MEDICINES: tuple[tuple[str, str], ...] = (
    ("benzodiazepines", "Benzodiazepines"),
    ("sedative_hypnotics", "Other sedative-hypnotics"),
    ("psychostimulants", "Psychostimulants"),
    ("maois", "MAOIs"),
    ("opioids", "Opioids"),
)
_STANDARD_DOSES_MG = (56, 84)
PEAK_CHECKPOINT = "rems_40"  # the protocol checkpoint that is the form's "~40 min" BP
# A discharge reason that is only the minimum monitoring time (kapmonitor.domain.discharge).
_MINIMUM_TIME_REASON = re.compile(r"^Monitored .* of the required .* min")

# Used only without a protocol copy: the KAP Monitor default alarm set as acceptable ranges.
_ACCEPTABLE: tuple[tuple[str, str, Callable[[float], bool], str], ...] = (
    ("sbp", "SBP", lambda v: v < 180, "< 180"),
    ("dbp", "DBP", lambda v: v < 110, "< 110"),
    ("hr", "HR", lambda v: 50 <= v <= 110, "50–110"),
    ("spo2", "SpO₂", lambda v: v >= 92, "≥ 92"),
    ("rr", "RR", lambda v: 10 <= v <= 24, "10–24"),
)
_ACCEPTABLE_RULE = "default alarm set: SBP < 180, DBP < 110, HR 50–110, SpO₂ ≥ 92, RR 10–24"

_SEDATION_TERMS = ("sedation", "somnolence")
_DISSOCIATION_TERMS = ("dissociation",)
_RESPIRATORY_TERMS = ("respiratory_depression", "apnoea", "spo2_decreased")


def _filled(key: str, label: str, value: str) -> RemsField:
    return RemsField(key, label, value, True)


def _missing(key: str, label: str, why: str) -> RemsField:
    return RemsField(key, label, "", False, why)


def _yes_no(flag: bool) -> str:
    return "Yes" if flag else "No"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _at(row: Row) -> datetime:
    return from_iso(row["observed_at"])


def _minute(when: datetime, anchor: datetime) -> int:
    """Whole minutes from ``anchor``, rounded down (negative before it)."""
    return int((when - anchor).total_seconds() // 60)


def _bp_text(row: Row) -> str:
    return f"{row['sbp']}/{row['dbp']} mmHg"


# --- context -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Log:
    session: Row
    doses: list[Row]
    vitals: list[Row]
    observations: list[Row]
    adverse_events: list[Row]
    first_dose: datetime | None
    end: datetime | None
    defaults: RemsDefaults
    protocol: Protocol | None = None
    details: Row | None = None  # rems_session_details: what was asked at the start
    assessments: list[Row] = field(default_factory=list)
    bp_decisions: list[Row] = field(default_factory=list)

    def peak(self) -> tuple[float, float, str]:
        """The "~40 min" check: (minute, ± window, where it comes from)."""
        if self.protocol is not None:
            for check in self.protocol.checkpoints:
                if check.id == PEAK_CHECKPOINT:
                    return check.minute, check.window_minutes, check.source
        d = self.defaults
        return d.peak_minute, d.peak_window_minutes, "KAP Monitor default (no protocol checkpoint)"

    def freshness(self) -> float:
        """The protocol's freshness window (the discharge one where the protocol has it)."""
        if self.protocol is not None:
            return float(
                getattr(
                    self.protocol,
                    "discharge_freshness_minutes",
                    self.protocol.before_discharge_window_minutes,
                )
            )
        return self.defaults.freshness_minutes

    def minute(self, when: datetime) -> int | None:
        return None if self.first_dose is None else _minute(when, self.first_dose)

    def when_text(self, row: Row) -> str:
        minute = self.minute(_at(row))
        return "before any dose" if minute is None else f"at minute {minute}"

    def bp_rows(self) -> list[Row]:
        return [r for r in self.vitals if r.get("sbp") is not None and r.get("dbp") is not None]

    def after_dose(self, rows: list[Row]) -> list[Row]:
        if self.first_dose is None:
            return rows
        return [r for r in rows if _at(r) >= self.first_dose]


def _esketamine(doses: list[Row]) -> list[Row]:
    return [d for d in doses if d.get("drug") == "esketamine"]


def _build_log(
    session: Row,
    current: Mapping[str, list[Row]],
    monitoring_end: datetime | None,
    protocol: Protocol | None,
    defaults: RemsDefaults,
) -> _Log:
    def rows(table: str) -> list[Row]:
        return sorted(current.get(table, []), key=lambda r: (r["observed_at"], r.get("id", 0)))

    doses = rows("doses")
    anchor_doses = _esketamine(doses) or doses
    ends = rows("session_ends")
    end = monitoring_end or (_at(ends[-1]) if ends else None)
    details = [r for r in rows("rems_session_details") if not r.get("voided")]
    return _Log(
        defaults=defaults,
        protocol=protocol,
        details=details[-1] if details else None,
        assessments=rows("discharge_assessments"),
        bp_decisions=rows("bp_decisions"),
        session=session,
        doses=doses,
        vitals=rows("vitals"),
        observations=rows("observations"),
        adverse_events=rows("adverse_events"),
        first_dose=_at(anchor_doses[0]) if anchor_doses else None,
        end=end,
    )


# --- fields --------------------------------------------------------------------------------


def _medicine_fields(session: Row) -> list[RemsField]:
    raw = session.get("concomitant_medicines")
    try:
        recorded = json.loads(raw) if raw else {}
    except (TypeError, ValueError):
        recorded = None
    out: list[RemsField] = []
    for code, name in _MEDICINES:
        key, label = f"concomitant_{code}", f"Concomitant medicine: {name}"
        if not isinstance(recorded, dict):
            out.append(_missing(key, label, "the session's medicine list could not be read"))
        elif not isinstance(recorded.get(code), bool):
            out.append(_missing(key, label, "not recorded when the session started"))
        else:
            out.append(_filled(key, label, _yes_no(recorded[code])))
    return out


def _clinician_field(clinicians: list[str]) -> RemsField:
    key, label = "monitoring_clinician", "Monitoring clinician"
    names = [n.strip() for n in clinicians if n and n.strip()]
    if not names:
        return _missing(key, label, "no clinician is named in the session")
    return _filled(key, label, ", ".join(names))


_NOT_AT_START = "not recorded when the esketamine session started"


def _detail_text(log: _Log, column: str, key: str, label: str, fallback: str = "") -> RemsField:
    value = str((log.details or {}).get(column) or "").strip() or fallback.strip()
    if not value:
        return _missing(key, label, _NOT_AT_START)
    return _filled(key, label, value)


def _first_treatment_field(log: _Log) -> RemsField:
    key, label = "first_treatment", "First treatment (patient newly enrolled)"
    answer = (log.details or {}).get("first_treatment")
    if answer is None:
        return _missing(key, label, _NOT_AT_START)
    return _filled(key, label, _yes_no(bool(answer)))


def _setting_fields(log: _Log, setting: str) -> list[RemsField]:
    """The setting's name (the session's own, else the laptop's older free-text value) and its
    address, both per session."""
    name = _detail_text(log, "setting_name", "setting", "Setting", setting)
    if not name.filled:
        name = _missing(
            "setting", "Setting", "the treatment setting is not recorded in the session log"
        )
    return [name, _detail_text(log, "setting_address", "setting_address", "Setting address")]


def _date_field(log: _Log) -> RemsField:
    key, label = "treatment_date", "Treatment date"
    when = log.first_dose
    if when is None:
        started = log.session.get("observed_at")
        if not started:
            return _missing(key, label, "neither a dose nor the session start is recorded")
        when = from_iso(started)
    return _filled(key, label, when.astimezone().date().isoformat())


def _dose_field(log: _Log) -> RemsField:
    key, label = "dose", "Dose"
    esketamine = _esketamine(log.doses)
    if not esketamine:
        others = sorted({str(d.get("drug")) for d in log.doses})
        why = "no esketamine dose recorded"
        return _missing(
            key, label, f"{why} (doses recorded: {', '.join(others)})" if others else why
        )
    total = sum(float(d["dose_mg"]) for d in esketamine)
    value = f"{_number(total)} mg"
    if total not in _STANDARD_DOSES_MG:
        value = f"Other: {value}"
    return _filled(key, label, value)


def _lot_field(log: _Log) -> RemsField:
    key, label = "lot_number", "Lot number"
    esketamine = _esketamine(log.doses)
    if not esketamine:
        return _missing(key, label, "no esketamine dose recorded")
    lots = [str(d.get("lot_number") or "").strip() for d in esketamine]
    known = list(dict.fromkeys(lot for lot in lots if lot))
    unknown = lots.count("")
    if unknown:
        seen = f" (lots recorded: {', '.join(known)})" if known else ""
        return _missing(
            key, label, f"{unknown} of {len(lots)} esketamine doses have no lot number{seen}"
        )
    return _filled(key, label, ", ".join(known))


def _total_minutes_field(log: _Log) -> RemsField:
    key, label = "total_minutes", "Total minutes from first administration to end of monitoring"
    if log.first_dose is None:
        return _missing(key, label, "no dose recorded")
    if log.end is None:
        return _missing(key, label, "monitoring has not ended (no end time recorded)")
    return _filled(key, label, f"{_minute(log.end, log.first_dose)} min")


def fit_apart_from_minimum(assessment: Row) -> bool:
    """A discharge assessment that met every criterion, or every one but the minimum time."""
    if assessment.get("ready"):
        return True
    try:
        reasons = json.loads(assessment.get("reasons") or "[]")
    except (TypeError, ValueError):
        return False
    return bool(reasons) and all(_MINIMUM_TIME_REASON.match(str(r)) for r in reasons)


def first_fit_at(assessments: list[Row], after: datetime | None = None) -> datetime | None:
    """When the patient first met every discharge criterion but the 2-hour minimum."""
    for row in sorted(assessments, key=lambda r: (r["observed_at"], r.get("id", 0))):
        if row.get("voided") or (after is not None and _at(row) < after):
            continue
        if fit_apart_from_minimum(row):
            return _at(row)
    return None


def _ready_field(log: _Log, ready_to_leave_at: datetime | None) -> RemsField:
    key, label = "minutes_until_ready", "Minutes until ready to leave (without the 2-hour rule)"
    if log.first_dose is None:
        return _missing(key, label, "no dose recorded")
    fit = first_fit_at(log.assessments, log.first_dose)
    if fit is None and not log.assessments:
        fit = ready_to_leave_at
    if fit is None:
        return _missing(
            key,
            label,
            "no discharge assessment met the criteria (apart from the 2-hour minimum)",
        )
    return _filled(
        key,
        label,
        f"{_minute(fit, log.first_dose)} min (first discharge assessment meeting every "
        "criterion but the 2-hour minimum)",
    )


def _minimum_stay_field(log: _Log) -> RemsField:
    """The 2-hour minimum, reported apart from when the patient was ready."""
    key, label = "minimum_stay_met", "Observed for the minimum time after administration"
    if log.first_dose is None:
        return _missing(key, label, "no dose recorded")
    if log.end is None:
        return _missing(key, label, "monitoring has not ended (no end time recorded)")
    minimum = log.protocol.min_monitoring_minutes if log.protocol is not None else 120
    source = (log.protocol.sources.get("min_monitoring_minutes", "") if log.protocol else "") or (
        "Spravato REMS: observe for at least 2 hours"
    )
    monitored = _minute(log.end, log.first_dose)
    return _filled(
        key,
        label,
        f"{_yes_no(monitored >= minimum)} — {monitored} min of the minimum {minimum} min "
        f"({source})",
    )


def _bp_before_dosing(log: _Log) -> Row | None:
    if log.first_dose is None:
        return None
    before = [r for r in log.bp_rows() if _at(r) < log.first_dose]
    return before[-1] if before else None


def _bp_before_end(log: _Log) -> Row | None:
    if log.end is None:
        return None
    end = log.end
    readings = [r for r in log.after_dose(log.bp_rows()) if _at(r) <= end]
    return readings[-1] if readings else None


def _bp_at_peak(log: _Log) -> Row | None:
    if log.first_dose is None:
        return None
    minute, plus_minus, _source = log.peak()
    target = log.first_dose + timedelta(minutes=minute)
    window = timedelta(minutes=plus_minus)
    near = [r for r in log.bp_rows() if abs(_at(r) - target) <= window]
    # Closest first; on a tie the earlier reading (stable sort keeps clinical order).
    return min(near, key=lambda r: abs(_at(r) - target)) if near else None


def _before_dosing_why(log: _Log) -> str:
    if log.first_dose is None:
        return "no dose recorded"
    return "no BP recorded before the first dose"


def _before_end_why(log: _Log) -> str:
    if log.first_dose is None:
        return "no dose recorded"
    if log.end is None:
        return "monitoring has not ended (no end time recorded)"
    return "no BP recorded after the first dose and before the end of monitoring"


def _protocol_crossings(log: _Log, row: Row, after_dose: bool, skip: tuple[str, ...]) -> list[str]:
    """The protocol's warning and critical limits this reading crosses (advisories are not
    "unacceptable"), as "SBP 185 mmHg ≥ 180 mmHg (critical)"."""
    from kapmonitor.domain.alarm_rules import evaluate, one_per_parameter

    assert log.protocol is not None
    baseline = _bp_before_dosing(log) if after_dose else None
    found = one_per_parameter(evaluate(log.protocol, row, baseline, after_dose))
    return [
        f.message.split("; also")[0]
        for f in found
        if f.priority in ("warning", "critical") and f.parameter not in skip
    ]


def _shown(row: Row) -> str:
    return ", ".join(
        f"{name} {_number(row[key])}" for key, name, _, _ in _ACCEPTABLE if row.get(key) is not None
    )


def _pre_dose_decision(log: _Log, reading: Row) -> Row | None:
    """A documented decision to proceed despite the pre-dose BP, recorded before the first dose
    (rows of bp_decisions, when that record exists)."""
    for decision in reversed(log.bp_decisions):
        if decision.get("voided"):
            continue
        if str(decision.get("decision", "")).lower() not in ("proceed", "override"):
            continue
        on = decision.get("bp_observed_at")
        if on:  # the dose form names the reading it decided on
            if from_iso_any(str(on)) == _at(reading):
                return decision
            continue
        if log.first_dose is not None and _at(decision) > log.first_dose:
            continue
        if _at(decision) >= _at(reading):
            return decision
    return None


def from_iso_any(text: str) -> datetime:
    """A stored UTC time, or an ISO time with an offset (as an audit detail writes it)."""
    try:
        return from_iso(text)
    except ValueError:
        return datetime.fromisoformat(text)


def _pre_dose_acceptable(log: _Log, row: Row, when: str) -> str:
    """BP against the label's 140/90 guide (Yes only after a documented decision above it); the
    other vital signs against the protocol's warning and critical limits."""
    d = log.defaults
    guide = d.guide_text()
    above = float(row["sbp"]) > d.pre_dose_sbp_above or float(row["dbp"]) > d.pre_dose_dbp_above
    others = (
        _protocol_crossings(log, row, False, ("sbp", "dbp"))
        if log.protocol is not None
        else [
            f"{name} {_number(row[key])} outside {limit}"
            for key, name, ok, limit in _ACCEPTABLE
            if key not in ("sbp", "dbp") and row.get(key) is not None and not ok(float(row[key]))
        ]
    )
    basis = (
        f"reading {when}: {_shown(row)}; label guide: BP above {guide} mmHg ({d.pre_dose_source})"
    )
    if others:
        return f"No — {'; '.join(others)} ({basis})"
    if above:
        decision = _pre_dose_decision(log, row)
        if decision is None:
            return (
                f"No — BP {_bp_text(row)} is above {guide} and no decision to proceed is "
                f"documented ({basis})"
            )
        reason = str(decision.get("reason") or "").strip()
        return (
            f"Yes — acceptable after clinician decision: BP {_bp_text(row)} above {guide}; "
            f"{decision.get('recorded_by', 'a clinician')} decided to proceed "
            f"{log.when_text(decision)}" + (f": {reason}" if reason else "") + f" ({basis})"
        )
    return f"Yes — BP {_bp_text(row)} not above {guide} ({basis})"


def _end_acceptable(log: _Log, row: Row, when: str) -> str:
    if log.protocol is None:
        return _acceptable(row, when)
    crossed = _protocol_crossings(log, row, True, ())
    basis = f"reading {when}: {_shown(row)}; the session protocol's warning and critical limits"
    if crossed:
        return f"No — {'; '.join(crossed)} ({basis})"
    return f"Yes ({basis})"


def _acceptable(row: Row, when: str) -> str:
    """Yes/No with the reading it judged and the rule, e.g. "No — HR 118 outside 50–110 …"."""
    crossed = [
        f"{name} {_number(row[key])} outside {limit}"
        for key, name, ok, limit in _ACCEPTABLE
        if row.get(key) is not None and not ok(float(row[key]))
    ]
    shown = [
        f"{name} {_number(row[key])}" for key, name, _, _ in _ACCEPTABLE if row.get(key) is not None
    ]
    unmeasured = [name for key, name, _, _ in _ACCEPTABLE if row.get(key) is None]
    basis = f"reading {when}: {', '.join(shown)}; {_ACCEPTABLE_RULE}"
    if unmeasured:
        basis += f"; not measured: {', '.join(unmeasured)}"
    if crossed:
        return f"No — {'; '.join(crossed)} ({basis})"
    return f"Yes ({basis})"


def _bp_field(key: str, label: str, row: Row | None, when: str, why: str) -> RemsField:
    if row is None:
        return _missing(key, label, why)
    return _filled(key, label, f"{_bp_text(row)} {when}")


def stale_end_flag(log: _Log, row: Row | None) -> str:
    """Why the "before the end" BP needs a look: older than the freshness window at the end."""
    if row is None or log.end is None:
        return ""
    age = (log.end - _at(row)).total_seconds() / 60
    window = log.freshness()
    if age <= window:
        return ""
    return (
        f"⚠ taken {int(age)} min before the end of monitoring, older than the "
        f"{_number(window)}-min freshness window: take a BP before the end"
    )


def _vitals_and_bp_fields(log: _Log) -> list[RemsField]:
    pre, peak, last = _bp_before_dosing(log), _bp_at_peak(log), _bp_before_end(log)
    pre_why, end_why = _before_dosing_why(log), _before_end_why(log)
    pre_when = _pre_when(log, pre)
    end_when = _end_when(log, last)
    minute, plus_minus, peak_source = log.peak()
    peak_why = (
        "no dose recorded"
        if log.first_dose is None
        else f"no BP recorded within {_number(plus_minus)} min of minute {_number(minute)} "
        f"({peak_source})"
    )
    stale = stale_end_flag(log, last)
    ok_pre = (
        _missing("vitals_ok_before_dosing", "Vitals acceptable before dosing", pre_why)
        if pre is None
        else _filled(
            "vitals_ok_before_dosing",
            "Vitals acceptable before dosing",
            _pre_dose_acceptable(log, pre, pre_when),
        )
    )
    ok_end = (
        _missing("vitals_ok_before_end", "Vitals acceptable before the end", end_why)
        if last is None
        else RemsField(
            "vitals_ok_before_end",
            "Vitals acceptable before the end",
            _end_acceptable(log, last, end_when),
            True,
            flag=stale,
        )
    )
    bp_end = _bp_field("bp_before_end", "BP before the end of monitoring", last, end_when, end_why)
    if stale:
        bp_end = RemsField(bp_end.key, bp_end.label, bp_end.value, True, flag=stale)
    return [
        ok_pre,
        ok_end,
        _bp_field("bp_before_dosing", "BP before dosing", pre, pre_when, pre_why),
        _bp_field(
            "bp_at_40_min",
            "BP at ~40 min",
            peak,
            "" if peak is None else log.when_text(peak),
            peak_why,
        ),
        bp_end,
    ]


def _pre_when(log: _Log, row: Row | None) -> str:
    if row is None or log.first_dose is None:
        return ""
    return f"{_minute(log.first_dose, _at(row))} min before the first dose"


def _end_when(log: _Log, row: Row | None) -> str:
    if row is None or log.end is None:
        return ""
    return f"{log.when_text(row)}, {_minute(log.end, _at(row))} min before the end of monitoring"


# --- yes/no findings -------------------------------------------------------------------------


Hit = tuple[str, str]  # (observed_at, what was found), sorted into clinical order
_HITS_SHOWN = 3


def _hit(log: _Log, row: Row, text: str) -> Hit:
    return row["observed_at"], f"{text} {log.when_text(row)}"


def _ae_hits(log: _Log, terms: tuple[str, ...]) -> list[Hit]:
    return [
        _hit(log, ae, f"adverse effect '{ae['term']}'")
        for ae in log.adverse_events
        if ae.get("term") in terms
    ]


def _hits_text(hits: list[Hit]) -> str:
    """The first few findings in clinical order, and how many more there were."""
    ordered = [text for _, text in sorted(hits)]
    shown = "; ".join(ordered[:_HITS_SHOWN])
    more = len(ordered) - _HITS_SHOWN
    return f"{shown}; and {more} more" if more > 0 else shown


def _finding(
    key: str,
    label: str,
    hits: list[Hit],
    evidence: list[Row],
    summary: Callable[[list[Row]], str],
    rule: str,
    nothing: str,
) -> RemsField:
    """Yes when anything hit; No only when there is evidence to say so; else not filled."""
    if hits:
        return _filled(key, label, f"Yes — {_hits_text(hits)} (rule: {rule})")
    if not evidence:
        return _missing(key, label, nothing)
    return _filled(key, label, f"No — {summary(evidence)} (rule: {rule})")


def _lowest(rows: list[Row], column: str) -> int | None:
    values = [r[column] for r in rows if r.get(column) is not None]
    return min(values) if values else None


def _sedation_field(log: _Log) -> RemsField:
    below = log.defaults.sedation_moaas_below
    after = log.after_dose(log.observations)
    hits = [
        _hit(log, r, f"MOAA/S {r['moaas']}")
        for r in after
        if r.get("moaas") is not None and r["moaas"] < below
    ]
    hits += [
        _hit(log, r, f"RASS {r['rass']}")
        for r in after
        if r.get("rass") is not None and r["rass"] < 0
    ]
    hits += _ae_hits(log, _SEDATION_TERMS)
    evidence = [
        r
        for r in log.after_dose(log.observations)
        if r.get("moaas") is not None or r.get("rass") is not None
    ]

    def summary(rows: list[Row]) -> str:
        parts = [
            f"lowest {name} {value}"
            for name, value in (("MOAA/S", _lowest(rows, "moaas")), ("RASS", _lowest(rows, "rass")))
            if value is not None
        ]
        return f"{', '.join(parts)} in {len(rows)} observations; no sedation adverse effect"

    return _finding(
        "sedation",
        "Sedation",
        hits,
        evidence,
        summary,
        f"MOAA/S below {below} or RASS below 0 at any time after dosing, or a "
        f"sedation/somnolence adverse effect; {log.defaults.sedation_source}",
        "no MOAA/S or RASS recorded after the first dose",
    )


def _dissociation_field(log: _Log) -> RemsField:
    hits = [
        _hit(log, r, f"dissociation {r['dissociation']}")
        for r in log.observations
        if r.get("dissociation") is not None and r["dissociation"] >= 1
    ]
    hits += _ae_hits(log, _DISSOCIATION_TERMS)
    evidence = [r for r in log.after_dose(log.observations) if r.get("dissociation") is not None]

    def summary(rows: list[Row]) -> str:
        return f"dissociation 0 in {len(rows)} observations; no dissociation adverse effect"

    return _finding(
        "dissociation",
        "Dissociation",
        hits,
        evidence,
        summary,
        "dissociation rating ≥ 1, or a dissociation adverse effect",
        "no dissociation rating recorded after the first dose",
    )


def _respiratory_field(log: _Log) -> RemsField:
    hits = [
        _hit(log, r, f"RR {r['rr']}")
        for r in log.vitals
        if r.get("rr") is not None and r["rr"] <= 9
    ]
    hits += [
        _hit(log, r, f"SpO₂ {r['spo2']} %")
        for r in log.vitals
        if r.get("spo2") is not None and r["spo2"] <= 89
    ]
    hits += _ae_hits(log, _RESPIRATORY_TERMS)
    evidence = [
        r
        for r in log.after_dose(log.vitals)
        if r.get("rr") is not None or r.get("spo2") is not None
    ]

    def summary(rows: list[Row]) -> str:
        parts = [
            text
            for text, value in (
                (f"lowest RR {_lowest(rows, 'rr')}", _lowest(rows, "rr")),
                (f"lowest SpO₂ {_lowest(rows, 'spo2')} %", _lowest(rows, "spo2")),
            )
            if value is not None
        ]
        return f"{', '.join(parts)} in {len(rows)} vitals sets; no respiratory adverse effect"

    return _finding(
        "respiratory_depression",
        "Respiratory depression",
        hits,
        evidence,
        summary,
        "RR ≤ 9 or SpO₂ ≤ 89 %, or a respiratory depression, apnoea or SpO₂-decreased "
        "adverse effect",
        "no RR or SpO₂ recorded after the first dose",
    )


def _serious_field(log: _Log) -> RemsField:
    key, label = "serious_adverse_event", "Serious adverse event"
    serious = [ae for ae in log.adverse_events if ae.get("serious")]
    if serious:
        described = [
            f"{ae.get('verbatim') or ae['term']} ({ae.get('serious_criterion') or 'serious'}) "
            f"{log.when_text(ae)}"
            for ae in serious
        ]
        return _filled(key, label, f"Yes — {'; '.join(described)}")
    count = len(log.adverse_events)
    if count == 0:
        return _filled(key, label, "No — no adverse effect recorded")
    noun = "adverse effect" if count == 1 else "adverse effects"
    return _filled(key, label, f"No — {count} {noun} recorded, none serious")


def rems_summary(
    session: dict[str, Any],
    clinicians: list[str],
    current: Mapping[str, list[dict[str, Any]]],
    ready_to_leave_at: datetime | None,
    monitoring_end: datetime | None,
    setting: str = "",
    *,
    protocol: Protocol | None = None,
    defaults: RemsDefaults | None = None,
) -> list[RemsField]:
    """Every field of the form, in its order: concomitant medicines (each yes/no), monitoring
    clinician, setting, treatment date, dose (56 mg, 84 mg, other) and lot number, total minutes
    from first administration to end of monitoring, minutes until ready to leave, vitals
    acceptable before dosing and before the end, BP before dosing / at ~40 min / before the end,
    sedation, dissociation, respiratory depression (yes/no), serious adverse event (yes/no).
    ``current`` maps table name to its current rows (SessionLog.current), including
    discharge_assessments (for "ready to leave"), rems_session_details (what was asked at the
    start) and bp_decisions (a documented pre-dose BP decision) when present. ``protocol`` is the
    session's protocol copy (the ~40 min window, the freshness window, the alarm limits);
    ``ready_to_leave_at`` is used only when the log has no discharge assessment; ``setting`` only
    when the session has no setting of its own (sessions started before it was asked)."""
    log = _build_log(
        session, current, monitoring_end, protocol, defaults or default_rems_defaults()
    )
    return [
        _first_treatment_field(log),
        *_medicine_fields(session),
        _clinician_field(clinicians),
        _detail_text(log, "clinician_phone", "clinician_phone", "Monitoring clinician's phone"),
        _detail_text(log, "clinician_email", "clinician_email", "Monitoring clinician's e-mail"),
        *_setting_fields(log, setting),
        _date_field(log),
        _dose_field(log),
        _lot_field(log),
        _total_minutes_field(log),
        _ready_field(log, ready_to_leave_at),
        _minimum_stay_field(log),
        *_vitals_and_bp_fields(log),
        _sedation_field(log),
        _dissociation_field(log),
        _respiratory_field(log),
        _serious_field(log),
    ]


# --- the form in words (the REMS dialog, the review tab and the PDF say it the same way) ---

MISSING_PREFIX = "⚠ Not in the log"


def missing_text(field: RemsField) -> str:
    """What an unfilled field shows: word and symbol, then why."""
    return f"{MISSING_PREFIX} — {field.why_missing}" if field.why_missing else MISSING_PREFIX


def value_text(field: RemsField) -> str:
    """What a field shows: its value and any flag, or the gap in words."""
    if not field.filled:
        return missing_text(field)
    return f"{field.value}  {field.flag}" if field.flag else field.value


def count_text(fields: list[RemsField]) -> str:
    missing = sum(1 for f in fields if not f.filled)
    flagged = sum(1 for f in fields if f.filled and f.flag)
    check = f"; ⚠ {flagged} to check before submitting" if flagged else ""
    if missing == 0:
        return f"✔ Every field is filled from the log{check}"
    if missing == 1:
        return f"⚠ 1 field needs completing by hand{check}"
    return f"⚠ {missing} fields need completing by hand{check}"
