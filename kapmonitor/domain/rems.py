"""The Spravato REMS Patient Monitoring Form, filled from the session log (esketamine).

The form must be completed after every esketamine session; the log should be able to fill every
field, and where it cannot, the summary says exactly why rather than leaving a silent blank or a
guess. Each answer carries what it was based on (which reading, at which minute after the first
dose), so the clinician can check it before copying it to the REMS portal.

Conventions: minutes are counted from the first dose (esketamine if any, else the first dose of any
drug) and rounded down, so monitoring time is never overstated; "vitals acceptable" means the BP
reading used for the BP field crossed none of the KAP Monitor default alarm set (a private
simplification of the protocol's alarms, named in the answer); the treatment date is the local
calendar date of the first dose (of the session start without a dose).

INTERFACE (stable; implementation owned by the scores helper):
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kapmonitor.domain.clock import from_iso


@dataclass(frozen=True)
class RemsField:
    key: str
    label: str
    value: str  # what the form would say; "" when the log cannot fill it
    filled: bool
    why_missing: str = ""  # e.g. "no BP recorded within 10 min of minute 40"


Row = dict[str, Any]

_MEDICINES: tuple[tuple[str, str], ...] = (
    ("benzodiazepines", "Benzodiazepines"),
    ("sedative_hypnotics", "Other sedative-hypnotics"),
    ("psychostimulants", "Psychostimulants"),
    ("maois", "MAOIs"),
    ("opioids", "Opioids"),
)
_STANDARD_DOSES_MG = (56, 84)
_PEAK_MINUTE = 40
_PEAK_WINDOW_MINUTES = 10

# The KAP Monitor default alarm set, as a plain "acceptable" range per parameter.
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
    session: Row, current: dict[str, list[Row]], monitoring_end: datetime | None
) -> _Log:
    def rows(table: str) -> list[Row]:
        return sorted(current.get(table, []), key=lambda r: (r["observed_at"], r.get("id", 0)))

    doses = rows("doses")
    anchor_doses = _esketamine(doses) or doses
    ends = rows("session_ends")
    end = monitoring_end or (_at(ends[-1]) if ends else None)
    return _Log(
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


def _setting_field(setting: str) -> RemsField:
    key, label = "setting", "Setting"
    if not setting.strip():
        return _missing(
            key, label, "the treatment setting is not recorded in the session log; enter it"
        )
    return _filled(key, label, setting.strip())


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


def _ready_field(log: _Log, ready_to_leave_at: datetime | None) -> RemsField:
    key, label = "minutes_until_ready", "Minutes until ready to leave (without the 2-hour rule)"
    if log.first_dose is None:
        return _missing(key, label, "no dose recorded")
    if ready_to_leave_at is None:
        return _missing(
            key, label, "no time recorded when the patient would have been ready to leave"
        )
    return _filled(key, label, f"{_minute(ready_to_leave_at, log.first_dose)} min")


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
    target = log.first_dose + timedelta(minutes=_PEAK_MINUTE)
    window = timedelta(minutes=_PEAK_WINDOW_MINUTES)
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


def _vitals_ok_field(key: str, label: str, row: Row | None, when: str, why: str) -> RemsField:
    if row is None:
        return _missing(key, label, why)
    return _filled(key, label, _acceptable(row, when))


def _bp_field(key: str, label: str, row: Row | None, when: str, why: str) -> RemsField:
    if row is None:
        return _missing(key, label, why)
    return _filled(key, label, f"{_bp_text(row)} {when}")


def _vitals_and_bp_fields(log: _Log) -> list[RemsField]:
    pre, peak, last = _bp_before_dosing(log), _bp_at_peak(log), _bp_before_end(log)
    pre_why, end_why = _before_dosing_why(log), _before_end_why(log)
    pre_when = _pre_when(log, pre)
    end_when = _end_when(log, last)
    peak_why = (
        "no dose recorded"
        if log.first_dose is None
        else f"no BP recorded within {_PEAK_WINDOW_MINUTES} min of minute {_PEAK_MINUTE}"
    )
    return [
        _vitals_ok_field(
            "vitals_ok_before_dosing", "Vitals acceptable before dosing", pre, pre_when, pre_why
        ),
        _vitals_ok_field(
            "vitals_ok_before_end", "Vitals acceptable before the end", last, end_when, end_why
        ),
        _bp_field("bp_before_dosing", "BP before dosing", pre, pre_when, pre_why),
        _bp_field(
            "bp_at_40_min",
            "BP at ~40 min",
            peak,
            "" if peak is None else log.when_text(peak),
            peak_why,
        ),
        _bp_field("bp_before_end", "BP before the end of monitoring", last, end_when, end_why),
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
    hits = [
        _hit(log, r, f"MOAA/S {r['moaas']}")
        for r in log.observations
        if r.get("moaas") is not None and r["moaas"] <= 3
    ]
    hits += [
        _hit(log, r, f"RASS {r['rass']}")
        for r in log.observations
        if r.get("rass") is not None and r["rass"] <= -2
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
        "MOAA/S ≤ 3 or RASS ≤ −2, or a sedation/somnolence adverse effect",
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
    current: dict[str, list[dict[str, Any]]],
    ready_to_leave_at: datetime | None,
    monitoring_end: datetime | None,
    setting: str = "",
) -> list[RemsField]:
    """Every field of the form, in its order: concomitant medicines (each yes/no), monitoring
    clinician, setting, treatment date, dose (56 mg, 84 mg, other) and lot number, total minutes
    from first administration to end of monitoring, minutes until ready to leave, vitals
    acceptable before dosing and before the end, BP before dosing / at ~40 min / before the end,
    sedation, dissociation, respiratory depression (yes/no), serious adverse event (yes/no).
    ``current`` maps table name to its current rows (SessionLog.current)."""
    log = _build_log(session, current, monitoring_end)
    return [
        *_medicine_fields(session),
        _clinician_field(clinicians),
        _setting_field(setting),
        _date_field(log),
        _dose_field(log),
        _lot_field(log),
        _total_minutes_field(log),
        _ready_field(log, ready_to_leave_at),
        *_vitals_and_bp_fields(log),
        _sedation_field(log),
        _dissociation_field(log),
        _respiratory_field(log),
        _serious_field(log),
    ]
