"""The sections of one session's report, built once for the PDF and for the review view.

Why one module: the PDF and the review window used to build the same tables twice, in two shapes
(HTML strings in one, lists of strings in the other), and the two had drifted (different columns,
different words for the same outcome). Here every section is plain data: a title, column headers,
rows of strings and notes. The PDF prints every row, a corrected entry struck through beside its
correction; the review view shows the current rows (its timeline shows the corrections). No Qt
here, so the rules are tested without a display.

Vital-sign columns loop over :data:`kapmonitor.domain.vitals.VITAL_SIGNS`, so a vital sign added
to the registry appears in both the PDF and the review view without an edit here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import partial
from typing import Any, Literal

from kapmonitor.domain.clock import format_duration, from_iso
from kapmonitor.domain.protocol import Protocol
from kapmonitor.domain.quality import QualityFlag, check_outcomes
from kapmonitor.domain.reference import Reference
from kapmonitor.domain.rems import RemsField, SubmissionStatus, count_text, value_text
from kapmonitor.domain.session_rows import (
    AddendumRow,
    AdverseEventOutcomeRow,
    AdverseEventRow,
    AlarmAcknowledgementRow,
    AlarmRow,
    DischargeAssessmentRow,
    DoseRow,
    InterventionRow,
    ObservationRow,
    OverrideRow,
    QuestionnaireResponseRow,
    ReviewCommentRow,
    SessionEndRow,
    SignatureRow,
    StoredRow,
    VitalScoreRow,
    VitalsRow,
)
from kapmonitor.domain.timeline import LATE_ENTRY_MINUTES, PRIORITY_MARKS, describe
from kapmonitor.domain.vitals import VITAL_SIGNS, VitalSign
from kapmonitor.store.session_store import SessionLog

__all__ = [
    "ADDENDUM",
    "FLAG_NAMES",
    "SEVERITY_MARKS",
    "RemsForm",
    "Section",
    "SectionRow",
    "Times",
    "rems_section",
    "review_text",
    "session_sections",
    "signature_text",
    "vital_columns",
]

ADDENDUM = "ADDENDUM"
REVIEW_KINDS = {"review_comments": "Review comment", "addenda": ADDENDUM, "signatures": "Signature"}
FLAG_NAMES = {
    "missed_check": "Missed check",
    "late_check": "Late check",
    "overdue_check": "Overdue check",
    "unanswered_alarm": "Unanswered alarm",
    "late_entry": "Late entry",
    "unresolved_adverse_event": "Unresolved adverse effect",
    "no_protocol": "No protocol",
    "override": "Override",
    "discharge_override": "Discharge override",
    "large_correction": "Large correction",
}
SEVERITY_MARKS = {"warning": "⚠ Warning", "info": "ℹ Information"}
TIMINGS = {"pre": "before", "post": "after", "follow_up": "follow-up"}
NO_FLAGS = "No quality flags: every check and alarm answered"
_STATUS_WORDS = {"on_time": "on time", "late": "late", "missed": "missed", "overdue": "overdue"}

RowState = Literal["current", "replaced", "total"]
#: The REMS form of an esketamine session as the store fills it, and its submission status.
RemsForm = tuple[list[RemsField], SubmissionStatus]
REMS_NOT_APPLICABLE = "Applies to esketamine REMS sessions only"


class SectionRow:
    """One line of a section's table.

    ``state``: "current" (in force), "replaced" (a later entry corrects or withdraws it; the PDF
    prints it struck through with ``note`` saying what, who, when and why; the review view leaves
    it to its timeline) or "total" (a summary line such as the dose total, not an entry).

    ``cells`` may be given as a function (``make``) that writes them when first read: a device
    feed has 10,800 vitals sets and as many observations in three hours, and the PDF prints a
    summary of them plus the corrected and notable lines only, so formatting every line up
    front took most of its time (0.6 of 1.4 s). Read-only, compared by value like the frozen
    record it replaces."""

    __slots__ = ("_cells", "_make", "note", "row_id", "state", "typed", "warn")

    def __init__(
        self,
        cells: Iterable[str] = (),
        row_id: int | None = None,
        state: RowState = "current",
        note: str = "",
        warn: bool = False,  # needs a reader's attention: bold (and coloured on screen)
        typed: str = "",  # "typed 10:12:00" when the entry was written long after the moment
        *,
        make: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        set_ = object.__setattr__
        set_(self, "_cells", tuple(cells))
        set_(self, "_make", make)
        set_(self, "row_id", row_id)
        set_(self, "state", state)
        set_(self, "note", note)
        set_(self, "warn", warn)
        set_(self, "typed", typed)

    @property
    def cells(self) -> tuple[str, ...]:
        make = self._make
        if make is not None:
            object.__setattr__(self, "_cells", tuple(make()))
            object.__setattr__(self, "_make", None)
        return self._cells

    def _key(self) -> tuple[object, ...]:
        return (self.cells, self.row_id, self.state, self.note, self.warn, self.typed)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"SectionRow is read-only ({name})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SectionRow) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        cells, row_id, state, note, warn, typed = self._key()
        return (
            f"SectionRow(cells={cells!r}, row_id={row_id!r}, state={state!r}, note={note!r}, "
            f"warn={warn!r}, typed={typed!r})"
        )


@dataclass(frozen=True)
class Section:
    """One topic of the report: what the PDF prints under a heading and the review shows in a
    tab. ``label`` is the tab's title with its count ("Alarms (2, ⚠ 2 unanswered)")."""

    key: str
    title: str
    headers: tuple[str, ...]
    rows: tuple[SectionRow, ...]
    empty: str
    label: str
    notes: tuple[str, ...] = ()
    parts: tuple[Section, ...] = ()  # sub-tables the PDF prints after the table

    def shown(self) -> list[SectionRow]:
        """The rows the review view shows: current entries and totals."""
        return [r for r in self.rows if r.state != "replaced"]

    def record(self, row: SectionRow) -> dict[str, str]:
        """``row``'s cells keyed by this section's column headers ("BP", "Since dose"), so a
        reader names the column it means instead of counting to it."""
        return dict(zip(self.headers, row.cells, strict=True))


class Times:
    """How the sections write a moment: local clock time, and time since the first dose.

    ``tz`` None means the computer's zone at each moment (the review window); the PDF passes the
    zone it states in its header. A moment on another day than the session start carries its date.
    """

    def __init__(self, log: SessionLog, tz: tzinfo | None = None) -> None:
        self.tz = tz
        self.dose = log.first_dose_at()
        self.start_day = self.local(log.started_at()).date()

    def local(self, when: datetime | str) -> datetime:
        moment = from_iso(when) if isinstance(when, str) else when
        return moment.astimezone(self.tz) if self.tz is not None else moment.astimezone()

    def time(self, when: datetime | str) -> str:
        local = self.local(when)
        text = local.strftime("%H:%M:%S")
        return text if local.date() == self.start_day else local.strftime("%d %b ") + text

    def datetime(self, when: datetime | str) -> str:
        return self.local(when).strftime("%Y-%m-%d %H:%M")

    def since(self, when: datetime | str) -> str:
        """h:mm:ss after the first dose (signed before it); empty when there was no dose."""
        if self.dose is None:
            return ""
        moment = from_iso(when) if isinstance(when, str) else when
        return format_duration((moment - self.dose).total_seconds())


def signature_text(signature: SignatureRow | None, times: Times | None = None) -> str:
    """ "Signed by Dr M. Chen, supervisor, 2026-03-03 09:12 — reviewed and approved"."""
    if signature is None:
        return "Not signed"
    moment = from_iso(signature.observed_at)
    when = times.datetime(moment) if times else moment.astimezone().strftime("%Y-%m-%d %H:%M")
    return f"Signed by {signature.printed_name}, {signature.role}, {when} — {signature.meaning}"


def review_text(row: StoredRow) -> str:
    """The words of a review comment or an addendum (a signature is :func:`signature_text`)."""
    if isinstance(row, ReviewCommentRow | AddendumRow):
        return row.text
    raise TypeError(f"{type(row).__name__} is not a review comment or an addendum")


def session_sections(
    log: SessionLog,
    ref: Reference,
    quality: Sequence[QualityFlag],
    now: datetime,
    *,
    tz: tzinfo | None = None,
    rems: RemsForm | None = None,
) -> list[Section]:
    """Every section of the report of ``log``, in reading order.

    ``quality`` are the session's flags (as :func:`kapmonitor.store.signoff.session_quality_flags`
    gives them); ``now`` is when the scheduled checks are judged (an open session's next check is
    not missed yet); ``rems`` the REMS form and its submission status when the session's
    protocol is a REMS protocol (:mod:`kapmonitor.store.rems_store` fills it)."""
    build = _Builder(log, ref, Times(log, tz))
    return [
        build.doses(),
        build.vitals(),
        build.observations(),
        build.adverse_events(),
        build.interventions(),
        build.alarms(),
        build.discharge(),
        build.questionnaires(),
        build.quality(quality, now),
        build.review(),
        rems_section(rems),
    ]


def rems_section(rems: RemsForm | None) -> Section:
    """The REMS Patient Monitoring Form: a count of the gaps, then each field as the log fills it
    (a gap or a value to check is a warning), then whether it was submitted in time."""
    if rems is None:
        row = SectionRow(("REMS form", REMS_NOT_APPLICABLE), state="total")
        return Section("rems", "REMS", ("Field", "Value"), (row,), REMS_NOT_APPLICABLE, "REMS")
    fields, status = rems
    rows = [SectionRow(("Summary", count_text(fields)), state="total")]
    rows += [
        SectionRow((f.label, value_text(f)), warn=not f.filled or bool(f.flag)) for f in fields
    ]
    rows.append(SectionRow(("REMS submission", status.text()), state="total", warn=status.overdue))
    missing = sum(1 for f in fields if not f.filled)
    return Section(
        "rems",
        "REMS Patient Monitoring Form",
        ("Field", "Value"),
        tuple(rows),
        "",
        f"REMS ({missing} missing)" if missing else "REMS ✔",
    )


def vital_columns() -> list[tuple[str, tuple[VitalSign, ...]]]:
    """The vital-sign columns, in registry order: one per entry field, so systolic and diastolic
    share "BP" (120/80) and every other vital sign has its own ("EtCO₂ mmHg")."""
    columns: list[tuple[str, tuple[VitalSign, ...]]] = []
    seen: set[str] = set()
    for sign in VITAL_SIGNS:
        if sign.field in seen:
            continue
        seen.add(sign.field)
        members = tuple(v for v in VITAL_SIGNS if v.field == sign.field)
        header = "BP" if sign.field == "bp" else f"{sign.short} {sign.unit}"
        columns.append((header, members))
    return columns


def vital_cell(row: VitalsRow, members: tuple[VitalSign, ...]) -> str:
    """One vital's value as printed ("" when not measured); BP as "120/80"."""
    if len(members) == 1:  # the usual case, kept quick: a 1 Hz feed has 10,800 rows an hour
        value = row.value(members[0].key)
        return "" if value is None else members[0].format(value)
    values = [row.value(v.key) for v in members]
    if all(x is None for x in values):
        return ""
    return "/".join("—" if x is None else v.format(x) for v, x in zip(members, values, strict=True))


# --- building -----------------------------------------------------------------------------------

# A section's cells take the row type of its table; ``Any`` here as each section's is its own.
Cells = Callable[[Any], list[str]]
Chain = list[StoredRow]


def _chains(rows: Iterable[StoredRow]) -> list[Chain]:
    """Each entry followed by what corrected it, in clinical order (by the time in force)."""
    rows = list(rows)
    successor = {r.supersedes_id: r for r in rows if r.supersedes_id is not None}
    chains = []
    for head in (r for r in rows if r.supersedes_id is None):
        chain = [head]
        while chain[-1].id in successor:
            chain.append(successor[chain[-1].id])
        chains.append(chain)
    chains.sort(key=_chain_key)
    return chains


def _in_force(rows: Iterable[SectionRow]) -> int:
    """How many entries stand (the table's current rows): each chain's last line, unless it
    was withdrawn. Counted from the lines built, not by sorting the table again."""
    return sum(1 for row in rows if row.state == "current")


def _maybe_late(observed_at: str, recorded_at: str) -> bool:
    """Whether an entry was written more than :data:`LATE_ENTRY_MINUTES` after its moment.

    Two UTC stamps in the same minute are not (a device feed's 21,600 rows are all such):
    answered without parsing either, which was a fifth of building the sections."""
    if observed_at[:16] == recorded_at[:16] and observed_at[-1:] == recorded_at[-1:] == "Z":
        return False
    delay = from_iso(recorded_at) - from_iso(observed_at)
    return delay.total_seconds() > LATE_ENTRY_MINUTES * 60


def _chain_key(chain: Chain) -> tuple[str, int]:
    in_force = chain[0] if chain[-1].voided else chain[-1]
    return in_force.observed_at, chain[0].id


def _duration(seconds: float) -> str:
    total = round(seconds / 60)
    hours, minutes = divmod(total, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def _text(value: Any) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _json(text: str | None, default: Any) -> Any:
    try:
        return json.loads(text) if text else default
    except (TypeError, ValueError):
        return default


def adverse_effect_term(row: AdverseEventRow, ref: Reference) -> str:
    """The effect's name, the patient's words when they differ, and its MedDRA code if coded."""
    if row.term == "other":
        name = row.verbatim or "Other"
    else:
        name = ref.label("adverse_effects", row.term)
        if row.verbatim:
            name += f" (“{row.verbatim}”)"
    return name + (f" [{row.code}]" if row.code else "")


class _Builder:
    def __init__(self, log: SessionLog, ref: Reference, times: Times) -> None:
        self.log = log
        self.ref = ref
        self.t = times

    def when(self, row: StoredRow) -> list[str]:
        moment = from_iso(row.observed_at)
        return [self.t.time(moment), self.t.since(moment)]

    def entries(
        self,
        table: str,
        cells: Cells,
        warn: Callable[[Any], bool] | None = None,
        rows: Iterable[StoredRow] | None = None,
    ) -> list[tuple[tuple[str, int], list[SectionRow]]]:
        """The rows of ``table`` chain by chain (an entry, then what replaced it), each with its
        sort key so sections merging several tables keep clinical order."""
        grouped = []
        for chain in _chains(self.log.rows.get(table, []) if rows is None else rows):
            lines = []
            for position, row in enumerate(chain):
                later = chain[position + 1] if position + 1 < len(chain) else None
                if row.voided and later is None:
                    continue  # a withdrawal: said on the struck entry it withdraws
                lines.append(self.line(table, row, later, cells, warn))
            grouped.append((_chain_key(chain), lines))
        return grouped

    def line(
        self,
        table: str,
        row: StoredRow,
        later: StoredRow | None,
        cells: Cells,
        warn: Callable[[Any], bool] | None,
    ) -> SectionRow:
        typed = ""
        if row.supersedes_id is None and _maybe_late(row.observed_at, row.recorded_at):
            typed = f"{'raised' if table == 'alarms' else 'typed'} {self.t.time(row.recorded_at)}"
        # The cells are written when first read (most lines of a device feed never are).
        make = partial(cells, row)
        if later is None:
            return SectionRow(row_id=row.id, warn=bool(warn and warn(row)), typed=typed, make=make)
        action = "withdrawn as entered in error" if later.voided else f"superseded by #{later.id}"
        note = (
            f"↳ {action} ({later.recorded_by}, {self.t.time(later.recorded_at)}): "
            f"{later.correction_reason}"
        )
        return SectionRow(row_id=row.id, state="replaced", note=note, typed=typed, make=make)

    @staticmethod
    def flat(grouped: list[tuple[tuple[str, int], list[SectionRow]]]) -> list[SectionRow]:
        return [line for _key, lines in sorted(grouped, key=lambda g: g[0]) for line in lines]

    # --- the sections -----------------------------------------------------------------------

    def doses(self) -> Section:
        ref, weight = self.ref, self.log.session["weight_kg"]

        def cells(r: DoseRow) -> list[str]:
            per_kg = r.dose_mg_per_kg or r.dose_mg / weight
            return [
                *self.when(r),
                r.drug_other or ref.label("drugs", r.drug),
                ref.label("routes", r.route),
                f"{r.dose_mg:g}",
                f"{per_kg:.2f}",
                "booster" if r.is_booster else "first",
                r.lot_number or "",
                r.note or "",
                r.recorded_by,
            ]

        rows = self.flat(self.entries("doses", cells))
        count = len(self.log.current("doses"))
        if count:
            total = self.log.cumulative_dose_mg()
            rows.append(
                SectionRow(
                    ("Total", "", "", "", f"{total:g}", f"{total / weight:.2f}", "", "", "", ""),
                    state="total",
                )
            )
        headers = ("Time", "Since dose", "Drug", "Route", "mg", "mg/kg", "Dose", "Lot", "Note")
        return Section(
            "doses",
            "Doses",
            (*headers, "By"),
            tuple(rows),
            "No dose recorded.",
            f"Doses ({count})",
        )

    def vitals(self) -> Section:
        scores = {r.vitals_id: r for r in self.log.current_of(VitalScoreRow)}
        columns = vital_columns()

        def news2(r: VitalsRow) -> str:
            score = scores.get(r.id)
            if score is None:
                return ""
            star = "*" if _json(score.news2_missing, []) else ""
            return f"{score.news2_total}{star} ({score.news2_band})"

        def cells(r: VitalsRow) -> list[str]:
            return [
                *self.when(r),
                *(vital_cell(r, members) for _h, members in columns),
                "on O₂" if r.on_oxygen else "",
                news2(r),
                r.note or "",
                r.recorded_by,
            ]

        headers = ("Time", "Since dose", *(h for h, _m in columns), "O₂", "NEWS2 (info)", "Note")
        rows = tuple(self.flat(self.entries("vitals", cells)))
        return Section(
            "vitals",
            "Vital signs",
            (*headers, "By"),
            rows,
            "No vital signs recorded.",
            f"Vitals ({_in_force(rows)})",
            notes=(
                "NEWS2 is shown for information only; the protocol's alarm limits, not NEWS2, "
                "raise alarms in a KAP session. * marks a score with a parameter not measured.",
            ),
        )

    def observations(self) -> Section:
        scales = self.ref.scales

        def cells(r: ObservationRow) -> list[str]:
            return [
                *self.when(r),
                scales["moaas"].describe(r.moaas),
                scales["rass"].describe(r.rass),
                scales["dissociation"].describe(r.dissociation),
                describe("observations", r, self.ref),
                r.recorded_by,
            ]

        headers = ("Time", "Since dose", "MOAA/S", "RASS", "Dissociation", "Details", "By")
        rows = tuple(self.flat(self.entries("observations", cells)))
        return Section(
            "observations",
            "Observations",
            headers,
            rows,
            "No observations recorded.",
            f"Observations ({_in_force(rows)})",
        )

    def adverse_events(self) -> Section:
        ref = self.ref
        outcomes: dict[int, list[AdverseEventOutcomeRow]] = {}
        for o in self.log.current_of(AdverseEventOutcomeRow):
            outcomes.setdefault(o.adverse_event_id, []).append(o)
        open_ids = {r.id for r in self.log.open_adverse_events()}

        def outcome(r: AdverseEventRow) -> str:
            found = outcomes.get(r.id, [])
            text = (
                "; ".join(
                    f"{ref.label('ae_outcomes', o.outcome)} at {self.t.time(o.observed_at)}"
                    f" ({o.recorded_by})" + (f": {o.note}" if o.note else "")
                    for o in found
                )
                or "no outcome recorded"
            )
            return f"⚠ {text}" if r.id in open_ids else text

        def cells(r: AdverseEventRow) -> list[str]:
            action = ref.label("ae_actions", r.action)
            if r.action_detail:
                action += f" ({r.action_detail})"
            serious = (
                f"SERIOUS: {ref.label('seriousness_criteria', r.serious_criterion)}"
                if r.serious
                else "no"
            )
            return [
                *self.when(r),
                adverse_effect_term(r, ref),
                str(r.grade),
                serious,
                action,
                ref.label("ae_relatedness", r.relatedness),
                outcome(r),
                r.recorded_by,
            ]

        def outcome_cells(r: AdverseEventOutcomeRow) -> list[str]:
            return [
                *self.when(r),
                f"#{r.adverse_event_id}",
                ref.label("ae_outcomes", r.outcome),
                r.note or "",
                r.recorded_by,
            ]

        parts: tuple[Section, ...] = ()
        if any(r.supersedes_id for r in self.log.rows.get("adverse_event_outcomes", [])):
            rows = self.flat(self.entries("adverse_event_outcomes", outcome_cells))
            parts = (
                Section(
                    "adverse_event_outcomes",
                    "Corrections to adverse-effect outcomes",
                    ("Time", "Since dose", "Adverse effect", "Outcome", "Note", "By"),
                    tuple(rows),
                    "",
                    "",
                ),
            )
        headers = ("Onset", "Since dose", "Adverse effect", "Grade", "Serious", "Action")
        return Section(
            "adverse_events",
            "Adverse effects",
            (*headers, "Relatedness", "Outcome", "By"),
            tuple(self.flat(self.entries("adverse_events", cells, lambda r: r.id in open_ids))),
            "No adverse effects recorded.",
            f"Adverse effects ({len(self.log.current('adverse_events'))})",
            parts=parts,
        )

    def interventions(self) -> Section:
        ref = self.ref

        def cells(r: InterventionRow) -> list[str]:
            return [
                *self.when(r),
                ref.label("intervention_kinds", r.category),
                " — ".join(b for b in (r.medication, r.detail) if b),
                r.recorded_by,
            ]

        return Section(
            "interventions",
            "Interventions and notes",
            ("Time", "Since dose", "Kind", "Medication / detail", "By"),
            tuple(self.flat(self.entries("interventions", cells))),
            "No interventions or notes recorded.",
            f"Interventions ({len(self.log.current('interventions'))})",
        )

    def alarms(self) -> Section:
        ref = self.ref
        acks: dict[int, list[AlarmAcknowledgementRow]] = {}
        for a in self.log.current_of(AlarmAcknowledgementRow):
            acks.setdefault(a.alarm_id, []).append(a)

        def response(a: AlarmAcknowledgementRow) -> str:
            text = ref.label("alarm_responses", a.response)
            if a.detail:
                text += f" ({a.detail})"
            symptoms = _json(a.symptoms, [])
            if symptoms:
                text += "; symptoms: " + ", ".join(
                    ref.label("hypertension_symptoms", s) for s in symptoms
                )
            return text

        def by(r: AlarmRow, a: AlarmAcknowledgementRow) -> str:
            delay = (from_iso(a.observed_at) - from_iso(r.observed_at)).total_seconds()
            return (
                f"{a.recorded_by} at {self.t.time(a.observed_at)} "
                f"({_duration(max(0.0, delay))} after)"
            )

        def cells(r: AlarmRow) -> list[str]:
            found = acks.get(r.id, [])
            return [
                *self.when(r),
                PRIORITY_MARKS.get(r.priority, r.priority),
                r.message,
                f"{r.value:g}",
                r.limit_text,
                "; ".join(response(a) for a in found) or "⚠ NOT ACKNOWLEDGED",
                "; ".join(by(r, a) for a in found),
                r.rule_source or "",
            ]

        rows = self.flat(self.entries("alarms", cells, lambda r: r.id not in acks))
        unanswered = sum(1 for r in rows if r.warn)
        count = len(self.log.current("alarms"))
        headers = ("Time", "Since dose", "Priority", "Alarm", "Value", "Limit", "Response")
        return Section(
            "alarms",
            "Alarms",
            (*headers, "Acknowledged by", "Rule"),
            tuple(rows),
            "No alarms.",
            f"Alarms ({count}{f', ⚠ {unanswered} unanswered' if unanswered else ''})",
        )

    def discharge(self) -> Section:
        log, ref = self.log, self.ref

        def check(r: DischargeAssessmentRow) -> list[str]:
            details = "; ".join(_json(r.reasons, [])) or "all conditions met"
            if r.override_reason:
                details = f"OVERRIDE: {r.override_reason}; {details}"
            checklist = _json(r.checklist, {})
            if checklist:
                done = sum(1 for v in checklist.values() if v)
                details += f"; checklist {done}/{len(checklist)} confirmed"
            result = describe("discharge_assessments", r, ref)
            return [*self.when(r), "Discharge check", result, details, r.recorded_by]

        def override(r: OverrideRow) -> list[str]:
            kind = ref.label("override_kinds", r.kind)
            return [*self.when(r), "Override", kind, r.reason, r.recorded_by]

        def end(r: SessionEndRow) -> list[str]:
            where = r.disposition_other or ref.label("dispositions", r.disposition)
            escort = f"escort: {r.escort}" if r.escort else "no escort named"
            return [
                *self.when(r),
                "Session end",
                f"{where}; {escort}",
                r.summary,
                r.recorded_by,
            ]

        rows = self.flat(
            self.entries("discharge_assessments", check)
            + self.entries("overrides", override)
            + self.entries("session_ends", end)
        )
        if rows:
            ready = log.first_ready_at()
            first = self.t.time(ready) if ready else "never recorded as ready"
            since = self.t.since(ready) if ready else ""
            rows.append(SectionRow(("", since, "First ready", first, "", ""), state="total"))
        return Section(
            "discharge",
            "Discharge and session end",
            ("Time", "Since dose", "What", "Result", "Details", "By"),
            tuple(rows),
            "No discharge assessment, override or session end recorded.",
            "Discharge",
        )

    def questionnaires(self) -> Section:
        def flags(r: QuestionnaireResponseRow) -> list[str]:
            return list(_json(r.safety_flags, []))

        def cells(r: QuestionnaireResponseRow) -> list[str]:
            found = flags(r)
            return [
                *self.when(r),
                r.questionnaire_id.upper(),
                TIMINGS.get(r.timing, r.timing),
                _text(r.total),
                r.band or "",
                "⚠ " + "; ".join(found) if found else "",
                r.recorded_by,
            ]

        headers = ("Time", "Since dose", "Questionnaire", "Timing", "Total", "Band", "Safety")
        rows = self.flat(self.entries("questionnaire_responses", cells, lambda r: bool(flags(r))))
        return Section(
            "questionnaires",
            "Questionnaires",
            (*headers, "By"),
            tuple(rows),
            "No questionnaires.",
            f"Questionnaires ({len(self.log.current('questionnaire_responses'))})",
        )

    def quality(self, flags: Sequence[QualityFlag], now: datetime) -> Section:
        rows = []
        for flag in flags:
            when = flag.observed_at
            rows.append(
                SectionRow(
                    (
                        SEVERITY_MARKS.get(flag.severity, flag.severity),
                        self.t.time(when) if when is not None else "whole session",
                        self.t.since(when) if when is not None else "",
                        FLAG_NAMES.get(flag.code, flag.code),
                        flag.message,
                    ),
                    flag.row_id,
                    warn=flag.severity == "warning",
                )
            )
        warned = any(r.warn for r in rows)
        if not rows:
            rows.append(SectionRow(("✔", "", "", "None", NO_FLAGS), state="total"))
        notes = [self.schedule_note(self.log.protocol, now)] if self.log.protocol else []
        corrections = sum(
            1 for rows_of in self.log.rows.values() for r in rows_of if r.supersedes_id is not None
        )
        notes.append(
            f"{corrections} correction{'s' if corrections != 1 else ''} (each printed beside "
            "the entry it corrected)."
        )
        return Section(
            "quality",
            "Quality flags",
            ("Severity", "Time", "Since dose", "Flag", "What"),
            tuple(rows),
            NO_FLAGS,
            f"Quality flags ({len(flags)}{' ⚠' if warned else ''})",
            notes=tuple(notes),
        )

    def schedule_note(self, protocol: Protocol, now: datetime) -> str:
        log = self.log
        outcomes = check_outcomes(
            protocol,
            log.started_at(),
            log.first_dose_at(),
            log.vitals_times(),
            log.ended_at(),
            now,
            log.current("vitals"),
        )
        counts = {s: sum(1 for o in outcomes if o.status == s) for s in _STATUS_WORDS}
        said = ", ".join(
            f"{n} {_STATUS_WORDS[s]}" for s, n in counts.items() if n or s == "on_time"
        )
        return f"Scheduled vital-sign checks: {said}."

    def _central_entries(self) -> list[tuple[str, SectionRow]]:
        """What the clinic's archive sent back (a sign-off, comments, addenda), each with this
        laptop's verdict on it: a sign-off that is not verified is said to sign nothing."""
        entries: list[tuple[str, SectionRow]] = []
        for c in self.log.central_reviews:
            kind = {
                "signature": "Signature at the centre",
                "comment": "Review comment at the centre",
            }.get(c["kind"], "Addendum at the centre")
            at = c["observed_at"] if c["kind"] == "comment" and c.get("observed_at") else None
            if c["kind"] == "signature":
                text = f"{c['meaning']} — {c['status_words']}"
                if c["status"] != "verified":
                    text += " — the session is NOT signed by it"
            else:
                text = str(c.get("text") or "")
            cells = (
                kind,
                self.t.datetime(at or c["written_at"]),
                self.t.since(at) if at else "",
                f"{c['printed_name']}, {c['role']}",
                self.t.datetime(c["recorded_at"]),
                text,
            )
            warn = c["kind"] == "addendum" or (
                c["kind"] == "signature" and c["status"] != "verified"
            )
            entries.append((at or c["written_at"], SectionRow(cells, None, warn=warn)))
        return entries

    def review(self) -> Section:
        log = self.log
        entries: list[tuple[str, SectionRow]] = []
        for table, kind in REVIEW_KINDS.items():
            for r in log.rows.get(table, []):
                if isinstance(r, SignatureRow):
                    text, author = signature_text(r, self.t), r.printed_name
                else:
                    text, author = review_text(r), r.recorded_by
                cells = (
                    kind,
                    self.t.datetime(r.observed_at),
                    self.t.since(r.observed_at) if table == "review_comments" else "",
                    author,
                    self.t.datetime(r.recorded_at),
                    text,
                )
                entries.append((r.observed_at, SectionRow(cells, r.id, warn=kind == ADDENDUM)))
        entries.extend(self._central_entries())
        entries.sort(key=lambda pair: pair[0])
        rows = tuple(r for _t, r in entries)
        counted = sum(1 for r in rows if not r.cells[0].startswith("Signature"))
        signed = bool(log.rows.get("signatures")) or any(
            c["kind"] == "signature" and c["status"] == "verified" for c in log.central_reviews
        )
        return Section(
            "review",
            "Review comments, addenda and signatures",
            ("Kind", "At", "Since dose", "Author", "Written", "Text"),
            rows,
            "No review comments, addenda or signatures.",
            f"Comments & addenda ({counted})",
            notes=(
                "A signed session is locked: later additions are addenda."
                if signed
                else "Not signed.",
            ),
        )
