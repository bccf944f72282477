"""Monitoring protocols as data: schedule, alarm limits, discharge rules, questionnaires.

A protocol is a TOML file in ``resources/protocols/`` (shipped) or the clinic's config folder
(``protocols/*.toml``). Every number carries a ``source`` label, because a clinician reading an
alarm must be able to see where its limit came from and a clinic must be able to change it without
a new build. A malformed file is refused with its path, the field and the reason; the app then
falls back to the last good protocol and says so. The chosen protocol is copied into the session
when it starts (``to_dict``), so later edits never change a past session.

The file format is documented in ``docs/protocols.md``.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal, NoReturn, cast

from kapmonitor.domain.dose_guards import BpLimits, DoseGuard, parse_bp_limits, parse_dose_guards
from kapmonitor.domain.vitals import VITAL_KEYS, VITAL_SIGNS

Priority = Literal["advisory", "warning", "critical"]
PRIORITIES: tuple[Priority, ...] = ("advisory", "warning", "critical")
# What a protocol may set alarm limits on: every registry vital that takes alarms, then the two
# observation scores (sedation depth), which are not vital signs.
OBSERVATION_ALARM_PARAMETERS: tuple[str, ...] = ("moaas", "rass")
ALARM_PARAMETERS: tuple[str, ...] = (
    *(v.key for v in VITAL_SIGNS if v.alarm),
    *OBSERVATION_ALARM_PARAMETERS,
)

_QUESTIONNAIRE_IDS = ("phq9", "gad7", "post_session")
_QUESTIONNAIRE_WHEN = ("pre", "post", "follow_up")
_RULE_PHASES = ("any", "pre_dose", "post_dose")
_LIMIT_KINDS = ("at_or_above", "at_or_below", "rise_at_least", "fall_percent_at_least")
_DISCHARGE_SCORES = ("aldrete", "padss")
_DISCHARGE_MAXIMUM = 10  # both modified Aldrete and PADSS total 10 (Aldrete 1995; Chung 1995)
# Used when a protocol file or a stored copy predates the key: an early re-check after a
# critical reading is safer than none. Shipped files set it, with its source.
DEFAULT_CRITICAL_RECHECK_MINUTES = 5.0
# Used when a protocol file or a stored copy predates ``[discharge] freshness_minutes``: the
# discharge score and gate use only values measured this recently (and after the last dose).
# Shipped files set it, with its source.
DEFAULT_DISCHARGE_FRESHNESS_MINUTES = 15.0
# Used when a protocol file or a stored copy predates ``[review]``: a correction that changes a
# dose or a vital sign more than twofold (700 mg -> 70 mg, HR 60 -> 160) is flagged for the
# supervisor. Shipped files set it, with its source.
DEFAULT_CORRECTION_REVIEW_FACTOR = 2.0
# Used when a protocol file or a stored copy predates ``[schedule] baseline_vitals``: the pre-dose
# baseline holds BP, HR and SpO₂ (Spravato label §5.6: BP before each dose; Spravato REMS: pulse
# oximetry every session). Shipped files set it, with its source.
DEFAULT_BASELINE_VITALS: tuple[str, ...] = ("bp", "hr", "spo2")
# Used when a protocol file or a stored copy predates ``[adverse_events]``: a serious adverse
# event is reported within 7 days (the Spravato REMS Patient Monitoring Form's deadline, the
# shortest a KAP clinic meets). Shipped files set it, with its source.
DEFAULT_SERIOUS_REPORT_DAYS = 7.0
DEFAULT_SERIOUS_REPORT_TO = "the clinic's pharmacovigilance route (FDA MedWatch Form 3500)"
# Used when a protocol file or a stored copy predates ``[devices] no_data_*_s``: a device silent
# (no valued reading) this many seconds shows a warning, then an alarm, in the connection
# indicator. Shipped files set them, with their source.
DEFAULT_NO_DATA_WARNING_S = 30.0
DEFAULT_NO_DATA_ALARM_S = 120.0
_DICT_FORMAT = 1  # bump when to_dict's shape changes; from_dict reads older shapes
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TOML_POSITION = re.compile(
    r"^(?P<msg>.*?)\s*\(at (?P<where>line \d+, column \d+|end of document)\)$"
)


class ProtocolError(ValueError):
    """A protocol file is malformed; the message names the file, the field and the reason."""


@dataclass(frozen=True)
class Interval:
    """Vitals every ``every_minutes`` while ``from_minute <= minutes since dose < to_minute``."""

    from_minute: float
    to_minute: float
    every_minutes: float
    source: str


@dataclass(frozen=True)
class Checkpoint:
    """A fixed check at ``minute`` after the first dose (e.g. the ~40 min BP peak)."""

    id: str
    label: str
    minute: float
    window_minutes: float  # a reading within ± this of the minute satisfies it
    source: str
    # Vitals a reading must contain to satisfy it (e.g. ("bp",): an HR-only set is no BP check);
    # empty: any reading does.
    vitals: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlarmRule:
    """One limit. Exactly one of ``at_or_above``, ``at_or_below``, ``rise_at_least`` is set.

    ``rise_at_least`` is relative to the pre-dose baseline (value - baseline >= rise);
    ``fall_percent_at_least`` too, as a fall in per cent of the baseline (a fall of 20 % from
    120 fires at 96). A value exactly at the limit fires; one unit inside does not. ``phase``
    limits the rule to readings ``"pre_dose"`` or ``"post_dose"``, or ``"any"``. ``headline``
    (optional) names the event the alarm message starts with, e.g. "Apnoea".
    """

    id: str
    parameter: str
    priority: Priority
    source: str
    label: str
    at_or_above: float | None = None
    at_or_below: float | None = None
    rise_at_least: float | None = None
    phase: Literal["any", "pre_dose", "post_dose"] = "any"
    fall_percent_at_least: float | None = None
    headline: str = ""


@dataclass(frozen=True)
class QuestionnaireDue:
    questionnaire_id: str
    when: Literal["pre", "post", "follow_up"]
    source: str


@dataclass(frozen=True)
class Protocol:
    id: str
    name: str
    version: int
    drugs: tuple[str, ...]
    description: str
    source: str
    session_limit_minutes: int
    min_monitoring_minutes: int  # from the first dose, before discharge is allowed
    baseline_required: bool
    overdue_grace_minutes: float  # a due check becomes "overdue" after this grace
    intervals: tuple[Interval, ...]
    checkpoints: tuple[Checkpoint, ...]
    before_discharge_window_minutes: float  # a reading this recent is needed before discharge
    alarms: tuple[AlarmRule, ...]
    discharge_score: Literal["aldrete", "padss"]
    discharge_pass: int
    questionnaires: tuple[QuestionnaireDue, ...] = ()
    rems: bool = False  # an esketamine REMS protocol: the REMS summary applies
    # After a critical reading, that vital is due again this soon (sooner than the cadence).
    critical_recheck_minutes: float = DEFAULT_CRITICAL_RECHECK_MINUTES
    # A correction changing a dose or a vital sign by more than this factor is a quality flag.
    correction_review_factor: float = DEFAULT_CORRECTION_REVIEW_FACTOR
    # The discharge score and gate use only values this recent and after the last dose.
    discharge_freshness_minutes: float = DEFAULT_DISCHARGE_FRESHNESS_MINUTES
    # A serious adverse event is reported to ``serious_report_to`` within this many days.
    serious_report_days: float = DEFAULT_SERIOUS_REPORT_DAYS
    serious_report_to: str = DEFAULT_SERIOUS_REPORT_TO
    # The pre-dose baseline must contain these vitals (keys of vital_alerts.VITALS).
    baseline_vitals: tuple[str, ...] = DEFAULT_BASELINE_VITALS
    # BP before a dose: above caution needs a decision, at the hard limit an override (or None).
    bp_before_dosing: BpLimits | None = None
    # Per drug and route: mg/kg range, most per dose and per session, device step.
    dose_guards: tuple[DoseGuard, ...] = ()
    # Device readings of these vitals become part of the record as they arrive, without a
    # clinician's click (a flagged reading never does); none by default ([devices] auto_confirm).
    auto_confirm: tuple[str, ...] = ()
    # A connected device with no valued reading this long: a warning, then an alarm (seconds).
    no_data_warning_s: float = DEFAULT_NO_DATA_WARNING_S
    no_data_alarm_s: float = DEFAULT_NO_DATA_ALARM_S
    sources: dict[str, str] = field(default_factory=dict)  # field path -> source label
    origin: str = ""  # the file it was loaded from

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy, stored with the session."""
        return {
            "format": _DICT_FORMAT,
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "drugs": list(self.drugs),
            "description": self.description,
            "source": self.source,
            "session_limit_minutes": self.session_limit_minutes,
            "min_monitoring_minutes": self.min_monitoring_minutes,
            "baseline_required": self.baseline_required,
            "overdue_grace_minutes": self.overdue_grace_minutes,
            "intervals": [_interval_dict(i) for i in self.intervals],
            "checkpoints": [_checkpoint_dict(c) for c in self.checkpoints],
            "before_discharge_window_minutes": self.before_discharge_window_minutes,
            "critical_recheck_minutes": self.critical_recheck_minutes,
            "alarms": [_alarm_dict(a) for a in self.alarms],
            "discharge_score": self.discharge_score,
            "discharge_pass": self.discharge_pass,
            "discharge_freshness_minutes": self.discharge_freshness_minutes,
            "correction_review_factor": self.correction_review_factor,
            "serious_report_days": self.serious_report_days,
            "serious_report_to": self.serious_report_to,
            "questionnaires": [_questionnaire_dict(q) for q in self.questionnaires],
            "rems": self.rems,
            "baseline_vitals": list(self.baseline_vitals),
            "bp_before_dosing": (
                self.bp_before_dosing.to_dict() if self.bp_before_dosing is not None else None
            ),
            "dose_guards": [g.to_dict() for g in self.dose_guards],
            "auto_confirm": list(self.auto_confirm),
            "no_data_warning_s": self.no_data_warning_s,
            "no_data_alarm_s": self.no_data_alarm_s,
            "sources": dict(self.sources),
            "origin": self.origin,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Protocol:
        """Inverse of ``to_dict`` (used to read a session's stored copy).

        A stored copy is not re-validated against today's rules: it is what the session ran
        under, and a stricter validator must never make an old session unreadable.
        """
        try:
            return _protocol_from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProtocolError(f"stored protocol copy: unreadable ({exc!r})") from exc


def _interval_dict(i: Interval) -> dict[str, Any]:
    return {
        "from_minute": i.from_minute,
        "to_minute": i.to_minute,
        "every_minutes": i.every_minutes,
        "source": i.source,
    }


def _checkpoint_dict(c: Checkpoint) -> dict[str, Any]:
    return {
        "id": c.id,
        "label": c.label,
        "minute": c.minute,
        "window_minutes": c.window_minutes,
        "source": c.source,
        "vitals": list(c.vitals),
    }


def _alarm_dict(a: AlarmRule) -> dict[str, Any]:
    return {
        "id": a.id,
        "parameter": a.parameter,
        "priority": a.priority,
        "source": a.source,
        "label": a.label,
        "at_or_above": a.at_or_above,
        "at_or_below": a.at_or_below,
        "rise_at_least": a.rise_at_least,
        "phase": a.phase,
        "fall_percent_at_least": a.fall_percent_at_least,
        "headline": a.headline,
    }


def _questionnaire_dict(q: QuestionnaireDue) -> dict[str, Any]:
    return {"questionnaire_id": q.questionnaire_id, "when": q.when, "source": q.source}


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _protocol_from_dict(d: dict[str, Any]) -> Protocol:
    return Protocol(
        id=str(d["id"]),
        name=str(d["name"]),
        version=int(d["version"]),
        drugs=tuple(str(x) for x in d["drugs"]),
        description=str(d["description"]),
        source=str(d["source"]),
        session_limit_minutes=int(d["session_limit_minutes"]),
        min_monitoring_minutes=int(d["min_monitoring_minutes"]),
        baseline_required=bool(d["baseline_required"]),
        overdue_grace_minutes=float(d["overdue_grace_minutes"]),
        intervals=tuple(
            Interval(
                float(i["from_minute"]),
                float(i["to_minute"]),
                float(i["every_minutes"]),
                str(i["source"]),
            )
            for i in d["intervals"]
        ),
        checkpoints=tuple(
            Checkpoint(
                str(c["id"]),
                str(c["label"]),
                float(c["minute"]),
                float(c["window_minutes"]),
                str(c["source"]),
                tuple(str(v) for v in c.get("vitals", ())),
            )
            for c in d["checkpoints"]
        ),
        before_discharge_window_minutes=float(d["before_discharge_window_minutes"]),
        critical_recheck_minutes=float(
            d.get("critical_recheck_minutes", DEFAULT_CRITICAL_RECHECK_MINUTES)
        ),
        alarms=tuple(
            AlarmRule(
                id=str(a["id"]),
                parameter=str(a["parameter"]),
                priority=a["priority"],
                source=str(a["source"]),
                label=str(a["label"]),
                at_or_above=_optional_float(a.get("at_or_above")),
                at_or_below=_optional_float(a.get("at_or_below")),
                rise_at_least=_optional_float(a.get("rise_at_least")),
                phase=a.get("phase", "any"),
                fall_percent_at_least=_optional_float(a.get("fall_percent_at_least")),
                headline=str(a.get("headline", "")),
            )
            for a in d["alarms"]
        ),
        discharge_score=d["discharge_score"],
        discharge_pass=int(d["discharge_pass"]),
        discharge_freshness_minutes=float(
            d.get("discharge_freshness_minutes", DEFAULT_DISCHARGE_FRESHNESS_MINUTES)
        ),
        correction_review_factor=float(
            d.get("correction_review_factor", DEFAULT_CORRECTION_REVIEW_FACTOR)
        ),
        questionnaires=tuple(
            QuestionnaireDue(str(q["questionnaire_id"]), q["when"], str(q["source"]))
            for q in d.get("questionnaires", [])
        ),
        rems=bool(d.get("rems", False)),
        baseline_vitals=tuple(str(v) for v in d.get("baseline_vitals", DEFAULT_BASELINE_VITALS)),
        bp_before_dosing=(
            BpLimits.from_dict(d["bp_before_dosing"]) if d.get("bp_before_dosing") else None
        ),
        dose_guards=tuple(DoseGuard.from_dict(g) for g in d.get("dose_guards", ())),
        auto_confirm=tuple(str(v) for v in d.get("auto_confirm", ())),
        no_data_warning_s=float(d.get("no_data_warning_s", DEFAULT_NO_DATA_WARNING_S)),
        no_data_alarm_s=float(d.get("no_data_alarm_s", DEFAULT_NO_DATA_ALARM_S)),
        serious_report_days=float(d.get("serious_report_days", DEFAULT_SERIOUS_REPORT_DAYS)),
        serious_report_to=str(d.get("serious_report_to", DEFAULT_SERIOUS_REPORT_TO)),
        sources={str(k): str(v) for k, v in d.get("sources", {}).items()},
        origin=str(d.get("origin", "")),
    )


# --- Reading TOML tables with field paths in every message ------------------------------------


class _Table:
    """One TOML table plus where it sits, so every refusal names file and field path."""

    def __init__(self, data: dict[str, Any], origin: str, path: str) -> None:
        self.data = data
        self.origin = origin
        self.path = path

    def where(self, key: str | None = None) -> str:
        if key is None:
            return self.path or "(top level)"
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str | None, reason: str) -> NoReturn:
        raise ProtocolError(f"{self.origin}: {self.where(key)}: {reason}")

    def only(self, allowed: tuple[str, ...]) -> None:
        """Refuse unknown keys: a misspelt key would otherwise silently fall back to a default."""
        for key in self.data:
            if key not in allowed:
                self.fail(key, f"unknown key {key!r}; expected one of {', '.join(allowed)}")

    def has(self, key: str) -> bool:
        return key in self.data

    def _get(self, key: str) -> Any:
        if key not in self.data:
            self.fail(key, "missing")
        return self.data[key]

    def text(self, key: str, default: str | None = None, what: str = "text") -> str:
        if key not in self.data and default is not None:
            return default
        value = self._get(key)
        if not isinstance(value, str) or not (value.strip() or default == ""):
            self.fail(key, f"needs a non-empty {what}, not {value!r}")
        return value.strip()

    def source(self, key: str = "source") -> str:
        if key not in self.data:
            self.fail(key, "missing source label (say where the number comes from)")
        return self.text(key, what="source label")

    def ident(self, key: str) -> str:
        value = self.text(key)
        if not _ID_PATTERN.match(value):
            self.fail(key, f"{value!r} is not a valid id (letters, digits, '_', '-', '.')")
        return value

    def choice(
        self, key: str, allowed: tuple[str, ...], noun: str, default: str | None = None
    ) -> str:
        value = self.text(key, default=default)
        if value not in allowed:
            self.fail(key, f"unknown {noun} {value!r}; use one of {', '.join(allowed)}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self.fail(key, f"needs true or false, not {value!r}")
        return value

    def number(self, key: str, minimum: float | None = None, above: float | None = None) -> float:
        return _check_number(self, key, self._get(key), minimum, above)

    def optional_number(self, key: str) -> float | None:
        return None if key not in self.data else self.number(key)

    def integer(self, key: str, minimum: int | None = None) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"needs a whole number, not {value!r}")
        if minimum is not None and value < minimum:
            self.fail(key, f"must be at least {minimum}, not {value}")
        return value

    def sourced(
        self, key: str, minimum: float | None = None, above: float | None = None
    ) -> tuple[float, str]:
        """A number written as ``{ value = 5, source = "…" }``."""
        raw = self._get(key)
        if not isinstance(raw, dict):
            self.fail(key, f'needs a source label: write {{ value = {raw!r}, source = "…" }}')
        inner = _Table(raw, self.origin, self.where(key))
        inner.only(("value", "source"))
        source = inner.source()
        return inner.number("value", minimum, above), source

    def sourced_int(self, key: str, minimum: int) -> tuple[int, str]:
        value, source = self.sourced(key, minimum=minimum)
        if value != int(value):
            self.fail(f"{key}.value", f"needs a whole number of minutes, not {value!r}")
        return int(value), source

    def table(self, key: str) -> _Table:
        value = self._get(key)
        if not isinstance(value, dict):
            self.fail(key, "needs a table")
        return _Table(value, self.origin, self.where(key))

    def tables(self, key: str) -> list[_Table]:
        """An array of tables (``[[key]]``); entries are numbered from 1 as in the file."""
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.fail(key, f"needs a list of [[{self.where(key)}]] tables")
        return [
            _Table(item, self.origin, f"{self.where(key)}[{n}]")
            for n, item in enumerate(value, start=1)
        ]

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self.fail(key, f"needs a list of names, not {value!r}")
        return tuple(v.strip() for v in value)


def _check_number(
    table: _Table, key: str, value: Any, minimum: float | None, above: float | None
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        table.fail(key, f"needs a number, not {value!r}")
    number = float(value)
    if not math.isfinite(number):
        table.fail(key, f"needs a finite number, not {value!r}")
    if minimum is not None and number < minimum:
        table.fail(key, f"must be at least {_num(minimum)}, not {_num(number)}")
    if above is not None and number <= above:
        table.fail(key, f"must be above {_num(above)}, not {_num(number)}")
    return number


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


# --- Parsing the parts of a protocol file -----------------------------------------------------

_TOP_KEYS = (
    "id",
    "name",
    "version",
    "drugs",
    "description",
    "source",
    "rems",
    "session_limit_minutes",
    "min_monitoring_minutes",
    "schedule",
    "discharge",
    "review",
    "adverse_events",
    "alarms",
    "questionnaires",
    "bp_before_dosing",
    "dose_guards",
    "devices",
)
_SCHEDULE_KEYS = (
    "baseline_required",
    "baseline_vitals",
    "baseline_vitals_source",
    "overdue_grace_minutes",
    "before_discharge_window_minutes",
    "critical_recheck_minutes",
    "intervals",
    "checkpoints",
)
_INTERVAL_KEYS = ("from_minute", "to_minute", "every_minutes", "source")
_CHECKPOINT_KEYS = ("id", "label", "minute", "window_minutes", "source", "vitals")
# The vitals a baseline or a checkpoint may ask for, as the form enters them ("bp" is one entry).
_BASELINE_VITALS: tuple[str, ...] = tuple(dict.fromkeys(v.field for v in VITAL_SIGNS))
_ALARM_KEYS = (
    "id",
    "parameter",
    "priority",
    "label",
    "phase",
    "source",
    "headline",
    *_LIMIT_KINDS,
)
_DISCHARGE_KEYS = ("score", "pass", "source", "freshness_minutes")
_REVIEW_KEYS = ("correction_review_factor",)
_ADVERSE_EVENT_KEYS = ("serious_report_days", "serious_report_to")
_QUESTIONNAIRE_KEYS = ("id", "when", "source")

# Each alarm parameter's name and unit as alarm messages and default labels print them.
_PARAMETER_WORDS: dict[str, tuple[str, str]] = {
    **{v.key: (v.alarm_name, v.unit) for v in VITAL_SIGNS if v.alarm},
    "moaas": ("MOAA/S", ""),
    "rass": ("RASS", ""),
}


def _parse_interval(t: _Table) -> Interval:
    t.only(_INTERVAL_KEYS)
    start = t.number("from_minute", minimum=0)
    end = t.number("to_minute")
    if end <= start:
        t.fail("to_minute", f"{_num(end)} must be after from_minute {_num(start)}")
    every = t.number("every_minutes", above=0)
    return Interval(start, end, every, t.source())


def _check_intervals_apart(intervals: list[Interval], tables: list[_Table]) -> None:
    """Two intervals covering the same minute would make the cadence ambiguous."""
    ordered = sorted(zip(intervals, tables, strict=True), key=lambda pair: pair[0].from_minute)
    for (earlier, first), (later, second) in pairwise(ordered):
        if later.from_minute < earlier.to_minute:
            second.fail(
                "from_minute",
                f"overlaps {first.where()} ({_num(earlier.from_minute)}–"
                f"{_num(earlier.to_minute)} min)",
            )


def _parse_checkpoint(t: _Table) -> Checkpoint:
    t.only(_CHECKPOINT_KEYS)
    return Checkpoint(
        id=t.ident("id"),
        label=t.text("label"),
        minute=t.number("minute", minimum=0),
        window_minutes=t.number("window_minutes", above=0),
        source=t.source(),
        vitals=_vital_names(t, "vitals"),
    )


def _vital_names(t: _Table, key: str) -> tuple[str, ...]:
    names = t.strings(key)
    for name in names:
        if name not in _BASELINE_VITALS:
            t.fail(key, f"unknown vital {name!r}; use one of {', '.join(_BASELINE_VITALS)}")
    return names


def _baseline_vitals(t: _Table, sources: dict[str, str]) -> tuple[str, ...]:
    """What a pre-dose baseline must contain; optional (older files), the default named so."""
    if not t.has("baseline_vitals"):
        sources[t.where("baseline_vitals")] = "KAP Monitor default (not set in this file)"
        return DEFAULT_BASELINE_VITALS
    sources[t.where("baseline_vitals")] = t.source("baseline_vitals_source")
    return _vital_names(t, "baseline_vitals")


def _parse_schedule(t: _Table, sources: dict[str, str]) -> dict[str, Any]:
    t.only(_SCHEDULE_KEYS)
    grace, sources[t.where("overdue_grace_minutes")] = t.sourced("overdue_grace_minutes", 0)
    window, sources[t.where("before_discharge_window_minutes")] = t.sourced(
        "before_discharge_window_minutes", above=0
    )
    recheck, sources[t.where("critical_recheck_minutes")] = _critical_recheck(t)
    interval_tables = t.tables("intervals")
    intervals = [_parse_interval(i) for i in interval_tables]
    _check_intervals_apart(intervals, interval_tables)
    checkpoint_tables = t.tables("checkpoints")
    checkpoints = [_parse_checkpoint(c) for c in checkpoint_tables]
    _check_unique([c.id for c in checkpoints], checkpoint_tables)
    return {
        "baseline_required": t.boolean("baseline_required", True),
        "baseline_vitals": _baseline_vitals(t, sources),
        "overdue_grace_minutes": grace,
        "before_discharge_window_minutes": window,
        "critical_recheck_minutes": recheck,
        "intervals": tuple(sorted(intervals, key=lambda i: i.from_minute)),
        "checkpoints": tuple(sorted(checkpoints, key=lambda c: c.minute)),
    }


def _critical_recheck(t: _Table) -> tuple[float, str]:
    """Optional, so a clinic file written before the key still loads; the fallback is named
    as such in the sources, so nobody mistakes it for a number the clinic chose."""
    if not t.has("critical_recheck_minutes"):
        return DEFAULT_CRITICAL_RECHECK_MINUTES, "KAP Monitor default (not set in this file)"
    return t.sourced("critical_recheck_minutes", above=0)


def _check_unique(ids: list[str], tables: list[_Table]) -> None:
    seen: set[str] = set()
    for ident, table in zip(ids, tables, strict=True):
        if ident in seen:
            table.fail("id", f"{ident!r} is used twice")
        seen.add(ident)


def _default_label(parameter: str, kind: str, limit: float) -> str:
    name, unit = _PARAMETER_WORDS[parameter]
    unit_text = f" {unit}" if unit else ""
    if kind == "rise_at_least":
        return f"{name} ≥ baseline + {_num(limit)}{unit_text}"
    if kind == "fall_percent_at_least":
        return f"{name} ≥ {_num(limit)} % below baseline"
    sign = "≥" if kind == "at_or_above" else "≤"
    return f"{name} {sign} {_num(limit)}{unit_text}"


def _parse_alarm(t: _Table) -> AlarmRule:
    t.only(_ALARM_KEYS)
    ident = t.ident("id")
    parameter = t.text("parameter")
    if parameter not in ALARM_PARAMETERS:
        t.fail(
            "parameter", f"unknown vital {parameter!r}; use one of {', '.join(ALARM_PARAMETERS)}"
        )
    priority = cast(Priority, t.choice("priority", PRIORITIES, "priority"))
    kinds = [k for k in _LIMIT_KINDS if t.has(k)]
    if len(kinds) != 1:
        found = " and ".join(kinds) if kinds else "none"
        t.fail(None, f"needs exactly one of {', '.join(_LIMIT_KINDS)} (found {found})")
    kind = kinds[0]
    if kind == "fall_percent_at_least":
        limit = t.number(kind, above=0)
        if limit >= 100:
            t.fail(kind, f"a fall of {_num(limit)} % or more cannot be measured")
    else:
        limit = t.number(kind, above=0) if kind == "rise_at_least" else t.number(kind)
    phase = t.choice("phase", _RULE_PHASES, "phase", default="any")
    return AlarmRule(
        id=ident,
        parameter=parameter,
        priority=priority,
        source=t.source(),
        label=t.text("label", default=_default_label(parameter, kind, limit)),
        phase=cast(Literal["any", "pre_dose", "post_dose"], phase),
        headline=t.text("headline", default=""),
        **{kind: limit},
    )


def _phases_overlap(a: str, b: str) -> bool:
    return a == "any" or b == "any" or a == b


def _check_low_below_high(rules: list[AlarmRule], tables: list[_Table]) -> None:
    """A low limit at or above a high limit for the same vital would alarm on every reading
    in between; two lows (or two highs) of different priority are fine."""
    pairs = list(zip(rules, tables, strict=True))
    for low, low_table in pairs:
        if low.at_or_below is None:
            continue
        for high, high_table in pairs:
            if (
                high.at_or_above is not None
                and high.parameter == low.parameter
                and _phases_overlap(low.phase, high.phase)
                and low.at_or_below >= high.at_or_above
            ):
                low_table.fail(
                    "at_or_below",
                    f"low limit {_num(low.at_or_below)} is not below the high limit "
                    f"{_num(high.at_or_above)} of {high_table.where()} ({low.parameter})",
                )


def _parse_alarms(top: _Table) -> tuple[AlarmRule, ...]:
    tables = top.tables("alarms")
    rules = [_parse_alarm(t) for t in tables]
    _check_unique([r.id for r in rules], tables)
    _check_low_below_high(rules, tables)
    return tuple(rules)


def _parse_discharge(t: _Table, sources: dict[str, str]) -> tuple[str, int, float]:
    t.only(_DISCHARGE_KEYS)
    score = t.choice("score", _DISCHARGE_SCORES, "discharge score")
    pass_mark = t.integer("pass", minimum=0)
    if pass_mark > _DISCHARGE_MAXIMUM:
        t.fail("pass", f"must be at most {_DISCHARGE_MAXIMUM} (the score's total), not {pass_mark}")
    sources[t.where()] = t.source()
    # Optional, so a clinic file written before it still loads; the fallback is named as such.
    if t.has("freshness_minutes"):
        fresh, sources[t.where("freshness_minutes")] = t.sourced("freshness_minutes", above=0)
    else:
        fresh = DEFAULT_DISCHARGE_FRESHNESS_MINUTES
        sources[t.where("freshness_minutes")] = "KAP Monitor default (not set in this file)"
    return score, pass_mark, fresh


def _parse_review(top: _Table, sources: dict[str, str]) -> float:
    """``[review]``: what a supervisor is shown before signing. Optional, so a clinic file
    written before it still loads; the fallback is named as such in the sources, so nobody
    mistakes it for a number the clinic chose. A factor of 1 flags every changed value."""
    key = "correction_review_factor"
    if not top.has("review"):
        sources[f"review.{key}"] = "KAP Monitor default (not set in this file)"
        return DEFAULT_CORRECTION_REVIEW_FACTOR
    t = top.table("review")
    t.only(_REVIEW_KEYS)
    if not t.has(key):
        sources[t.where(key)] = "KAP Monitor default (not set in this file)"
        return DEFAULT_CORRECTION_REVIEW_FACTOR
    factor, sources[t.where(key)] = t.sourced(key, minimum=1)
    return factor


def _parse_adverse_events(top: _Table, sources: dict[str, str]) -> tuple[float, str]:
    """``[adverse_events]``: where and how soon a serious adverse event is reported (the
    escalation checklist shows the due date). Optional, so a clinic file written before it
    still loads; the fallback is named as such in the sources."""
    key = "serious_report_days"
    if not top.has("adverse_events"):
        sources[f"adverse_events.{key}"] = "KAP Monitor default (not set in this file)"
        return DEFAULT_SERIOUS_REPORT_DAYS, DEFAULT_SERIOUS_REPORT_TO
    t = top.table("adverse_events")
    t.only(_ADVERSE_EVENT_KEYS)
    days, sources[t.where(key)] = t.sourced(key, above=0)
    return days, t.text("serious_report_to", default=DEFAULT_SERIOUS_REPORT_TO)


def _parse_questionnaire(t: _Table) -> QuestionnaireDue:
    t.only(_QUESTIONNAIRE_KEYS)
    ident = t.choice("id", _QUESTIONNAIRE_IDS, "questionnaire")
    when = t.choice("when", _QUESTIONNAIRE_WHEN, "time")
    return QuestionnaireDue(ident, cast(Literal["pre", "post", "follow_up"], when), t.source())


def _parse_questionnaires(top: _Table) -> tuple[QuestionnaireDue, ...]:
    tables = top.tables("questionnaires")
    items = [_parse_questionnaire(t) for t in tables]
    seen: set[tuple[str, str]] = set()
    for item, table in zip(items, tables, strict=True):
        key = (item.questionnaire_id, item.when)
        if key in seen:
            table.fail("when", f"{item.questionnaire_id} is already due {item.when!r}")
        seen.add(key)
    return tuple(items)


def _parse_devices(top: _Table, sources: dict[str, str]) -> dict[str, Any]:
    """``[devices]``: ``auto_confirm``, registry vitals whose device readings need no click (the
    1 Hz SpO2/HR trend, say; not set: nothing is confirmed automatically), and the connection
    indicator's ``no_data_warning_s`` / ``no_data_alarm_s`` (labelled; defaults when absent)."""
    if not top.has("devices"):
        return {"auto_confirm": ()}
    t = top.table("devices")
    t.only(("auto_confirm", "source", "no_data_warning_s", "no_data_alarm_s"))
    keys = t.strings("auto_confirm")
    for key in keys:
        if key not in VITAL_KEYS:
            t.fail("auto_confirm", f"{key!r} is not a vital sign ({', '.join(VITAL_KEYS)})")
    if keys:
        sources["devices.auto_confirm"] = t.source()
    found: dict[str, Any] = {"auto_confirm": keys}
    for key in ("no_data_warning_s", "no_data_alarm_s"):
        if t.has(key):
            found[key], sources[f"devices.{key}"] = t.sourced(key, above=0)
    warning = found.get("no_data_warning_s", DEFAULT_NO_DATA_WARNING_S)
    if found.get("no_data_alarm_s", DEFAULT_NO_DATA_ALARM_S) <= warning:
        t.fail("no_data_alarm_s", f"must be longer than no_data_warning_s ({warning:g} s)")
    return found


def _decode(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_POSITION.match(str(exc))
        if found:
            raise ProtocolError(
                f"{origin}: {found['where'].replace('end of document', 'end of file')}: "
                f"not valid TOML ({found['msg']})"
            ) from exc
        raise ProtocolError(f"{origin}: not valid TOML ({exc})") from exc
    except RecursionError as exc:
        raise ProtocolError(f"{origin}: not valid TOML (nested too deeply)") from exc


def parse_protocol(text: str, origin: str) -> Protocol:
    """Parse and validate one TOML protocol; raise ProtocolError naming origin, field, reason."""
    top = _Table(_decode(text, origin), origin, "")
    top.only(_TOP_KEYS)
    head = {
        "id": top.ident("id"),
        "name": top.text("name"),
        "version": top.integer("version", minimum=1),
        "drugs": top.strings("drugs"),
        "description": top.text("description", default=""),
        "source": top.source(),
        "rems": top.boolean("rems", False),
    }
    sources: dict[str, str] = {}
    limit, sources["session_limit_minutes"] = top.sourced_int("session_limit_minutes", 1)
    minimum, sources["min_monitoring_minutes"] = top.sourced_int("min_monitoring_minutes", 0)
    if minimum > limit:
        top.fail(
            "min_monitoring_minutes.value",
            f"{minimum} min is longer than the session limit of {limit} min",
        )
    schedule = _parse_schedule(top.table("schedule"), sources)
    score, pass_mark, freshness = _parse_discharge(top.table("discharge"), sources)
    report_days, report_to = _parse_adverse_events(top, sources)
    return Protocol(
        **head,
        session_limit_minutes=limit,
        min_monitoring_minutes=minimum,
        alarms=_parse_alarms(top),
        discharge_score=cast(Literal["aldrete", "padss"], score),
        discharge_pass=pass_mark,
        discharge_freshness_minutes=freshness,
        correction_review_factor=_parse_review(top, sources),
        serious_report_days=report_days,
        serious_report_to=report_to,
        questionnaires=_parse_questionnaires(top),
        bp_before_dosing=(
            parse_bp_limits(top.table("bp_before_dosing"), sources)
            if top.has("bp_before_dosing")
            else None
        ),
        dose_guards=parse_dose_guards(top.tables("dose_guards")),
        **_parse_devices(top, sources),
        sources=sources,
        origin=origin,
        **schedule,
    )


@dataclass
class ProtocolCatalogue:
    protocols: dict[str, Protocol]
    problems: list[str]  # one plain message per refused file (shown to the user)


def _read_protocol(path: Path) -> Protocol:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise ProtocolError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return parse_protocol(text, str(path))


def load_protocols(folders: list[Path]) -> ProtocolCatalogue:
    """Every ``*.toml`` in the folders, later folders overriding earlier ids; bad files are
    listed in ``problems`` and skipped (so the last good protocol of that id stays)."""
    protocols: dict[str, Protocol] = {}
    problems: list[str] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        defined_here: dict[str, Path] = {}
        for path in sorted(folder.glob("*.toml")):
            try:
                protocol = _read_protocol(path)
            except ProtocolError as exc:
                problems.append(str(exc))
                continue
            if protocol.id in defined_here:
                problems.append(
                    f"{path}: id: {protocol.id!r} is already defined by "
                    f"{defined_here[protocol.id].name} in the same folder; file skipped"
                )
                continue
            defined_here[protocol.id] = path
            protocols[protocol.id] = protocol
    return ProtocolCatalogue(protocols, problems)


def protocol_folders() -> list[Path]:
    """The shipped protocols, then the clinic's own (``<config>/protocols``), which override."""
    from kapmonitor.paths import resources_dir, user_config_dir

    return [resources_dir() / "protocols", user_config_dir() / "protocols"]


@lru_cache(maxsize=16)
def stored_protocol(text: str) -> Protocol:
    """A session's stored protocol copy (its JSON text), parsed once per text.

    The copy is frozen, and the views and the writers ask for it at every save and device
    message; a parse was about 0.5 ms each time."""
    return Protocol.from_dict(json.loads(text))
