"""Stored session rows with their types: one frozen value per table the bedside shows.

A row read back from SQLite used to be a ``dict[str, Any]`` indexed by string everywhere; a typo
in a column name was found only when that line ran. These values name their columns as fields
(``row.sbp``), so a type checker sees them. They also answer ``row["sbp"]``, ``row.get()``,
``keys()`` and ``dict(row)`` for the domain rules that still take mappings, so a rule moves to
attributes one at a time instead of all at once.

A column the value does not declare (a migration newer than this module) is kept in ``extra``
rather than dropped: the record must never lose a stored field on its way to the screen.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar, cast

from kapmonitor.domain.vitals import VITAL_KEYS

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class StoredRow:
    """The columns every clinical table shares: who, when, and whether it was corrected."""

    TABLE: ClassVar[str] = ""

    id: int
    session_id: str
    observed_at: str
    recorded_at: str
    recorded_by: str
    supersedes_id: int | None = None
    correction_reason: str | None = None
    voided: int = 0
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, compare=False, repr=False)

    # --- the mapping view the dict-based rules read ----------------------------------------

    def __getitem__(self, key: str) -> Any:
        if key != "extra" and key in self._columns():
            return getattr(self, key)
        return self.extra[key]

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (key in self._columns() or key in self.extra)

    def keys(self) -> list[str]:
        return [*self._columns(), *self.extra]

    def items(self) -> Iterator[tuple[str, Any]]:
        return ((key, self[key]) for key in self.keys())

    def as_dict(self) -> dict[str, Any]:
        return dict(self.items())

    @classmethod
    def _columns(cls) -> tuple[str, ...]:
        cached = _COLUMNS.get(cls)
        if cached is None:
            cached = tuple(f.name for f in dataclasses.fields(cls) if f.name != "extra")
            _COLUMNS[cls] = cached
        return cached

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> StoredRow:
        """Build from a stored row; undeclared columns go to ``extra``. The session id and
        the recorder repeat on every row, so one copy of each is shared (interned): a 1 Hz
        feed would otherwise hold 10,800 copies of the same 32 characters."""
        names = cls._columns()
        known = {k: v for k, v in values.items() if k in names}
        for shared in ("session_id", "recorded_by"):
            if isinstance(known.get(shared), str):
                known[shared] = sys.intern(known[shared])
        rest = {k: v for k, v in values.items() if k not in names}
        return cls(**known, extra=MappingProxyType(rest) if rest else _EMPTY)


_COLUMNS: dict[type, tuple[str, ...]] = {}
_SHARED = ("session_id", "recorded_by")  # repeated on every row: one interned copy each
_EXTRA_AT = [f.name for f in dataclasses.fields(StoredRow)].index("extra")


@dataclass(frozen=True, slots=True)
class VitalsRow(StoredRow):
    TABLE: ClassVar[str] = "vitals"

    hr: int | None = None
    sbp: int | None = None
    dbp: int | None = None
    spo2: int | None = None
    rr: int | None = None
    temp_c: float | None = None
    etco2: int | None = None
    on_oxygen: int = 0
    note: str | None = None
    # Set when the row is a confirmed device reading (migration 0014): which one, and its source.
    device_reading_id: int | None = None
    source: str | None = None

    def value(self, key: str) -> Any:
        """One vital by its registry key (``kapmonitor.domain.vitals``)."""
        return self[key]


@dataclass(frozen=True, slots=True)
class ObservationRow(StoredRow):
    TABLE: ClassVar[str] = "observations"

    moaas: int | None = None
    rass: int | None = None
    dissociation: int | None = None
    features: str = "[]"
    cadss_total: int | None = None
    other_scores: str = "{}"
    note: str | None = None


@dataclass(frozen=True, slots=True)
class DoseRow(StoredRow):
    TABLE: ClassVar[str] = "doses"

    drug: str = ""
    drug_other: str | None = None
    route: str = ""
    dose_mg: float = 0.0
    dose_mg_per_kg: float | None = None
    lot_number: str | None = None
    is_booster: int = 0
    note: str | None = None


@dataclass(frozen=True, slots=True)
class VitalScoreRow(StoredRow):
    TABLE: ClassVar[str] = "vital_scores"

    vitals_id: int = 0
    news2_total: int = 0
    news2_band: str = ""
    news2_parts: str = "{}"
    news2_missing: str = "[]"


@dataclass(frozen=True, slots=True)
class AlarmRow(StoredRow):
    TABLE: ClassVar[str] = "alarms"

    source_table: str = ""
    source_id: int = 0
    rule_id: str = ""
    parameter: str = ""
    value: float = 0.0
    priority: str = ""
    limit_text: str = ""
    message: str = ""
    rule_source: str = ""


@dataclass(frozen=True, slots=True)
class AlarmAcknowledgementRow(StoredRow):
    TABLE: ClassVar[str] = "alarm_acknowledgements"

    alarm_id: int = 0
    response: str = ""
    detail: str | None = None
    symptoms: str = "[]"
    risk_assessment: str | None = None


@dataclass(frozen=True, slots=True)
class PhaseChangeRow(StoredRow):
    TABLE: ClassVar[str] = "phase_changes"

    phase: str = ""


@dataclass(frozen=True, slots=True)
class AdverseEventRow(StoredRow):
    TABLE: ClassVar[str] = "adverse_events"

    term: str = ""
    verbatim: str | None = None
    code: str | None = None
    grade: int = 0
    serious: int = 0
    serious_criterion: str | None = None
    action: str = ""
    action_detail: str | None = None
    relatedness: str = ""


@dataclass(frozen=True, slots=True)
class InterventionRow(StoredRow):
    TABLE: ClassVar[str] = "interventions"

    category: str = ""
    medication: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class SessionEndRow(StoredRow):
    TABLE: ClassVar[str] = "session_ends"

    disposition: str = ""
    disposition_other: str | None = None
    escort: str | None = None
    summary: str = ""


@dataclass(frozen=True, slots=True)
class AdverseEventOutcomeRow(StoredRow):
    TABLE: ClassVar[str] = "adverse_event_outcomes"

    adverse_event_id: int = 0
    outcome: str = ""
    note: str | None = None


@dataclass(frozen=True, slots=True)
class SessionProtocolRow(StoredRow):
    TABLE: ClassVar[str] = "session_protocols"

    protocol_id: str = ""
    protocol_name: str = ""
    protocol_version: int = 0
    protocol_json: str = "{}"
    origin: str = ""


@dataclass(frozen=True, slots=True)
class OverrideRow(StoredRow):
    TABLE: ClassVar[str] = "overrides"

    kind: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DischargeAssessmentRow(StoredRow):
    TABLE: ClassVar[str] = "discharge_assessments"

    score_name: str = ""
    total: int = 0
    maximum: int = 0
    pass_mark: int = 0
    passed: int = 0
    items: str = "{}"
    checklist: str = "{}"
    ready: int = 0
    reasons: str = "[]"
    override_reason: str | None = None


@dataclass(frozen=True, slots=True)
class QuestionnaireResponseRow(StoredRow):
    TABLE: ClassVar[str] = "questionnaire_responses"

    questionnaire_id: str = ""
    timing: str = ""
    answers: str = "{}"
    total: int | None = None
    band: str | None = None
    safety_flags: str = "[]"


@dataclass(frozen=True, slots=True)
class News2ScaleChoiceRow(StoredRow):
    TABLE: ClassVar[str] = "news2_scale_choices"

    scale: int = 1
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AlarmChecklistStepRow(StoredRow):
    TABLE: ClassVar[str] = "alarm_checklist_steps"

    alarm_id: int = 0
    checklist: str = ""
    step: str = ""
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ReviewCommentRow(StoredRow):
    """A supervisor's comment on a moment of the session (review, append only)."""

    TABLE: ClassVar[str] = "review_comments"

    text: str = ""


@dataclass(frozen=True, slots=True)
class AddendumRow(StoredRow):
    """Text added after sign-off (review, append only)."""

    TABLE: ClassVar[str] = "addenda"

    text: str = ""


@dataclass(frozen=True, slots=True)
class SignatureRow(StoredRow):
    TABLE: ClassVar[str] = "signatures"

    printed_name: str = ""
    role: str = ""
    meaning: str = ""


@dataclass(frozen=True, slots=True)
class DeviceReadingRow(StoredRow):
    """A device's value as it arrived: pending until a clinician's decision (issue 13)."""

    TABLE: ClassVar[str] = "device_readings"

    device_time: int = 0
    received_at: str = ""
    vital: str = ""
    value: float | None = None
    unit_received: str = ""
    code: str = ""
    device_id: str = ""
    source: str = ""
    message_id: str = ""
    flags: str = "[]"


@dataclass(frozen=True, slots=True)
class DeviceReadingReviewRow(StoredRow):
    """A decision on one device reading: confirmed (the vitals row it became) or artefact."""

    TABLE: ClassVar[str] = "device_reading_reviews"

    device_reading_id: int = 0
    decision: str = ""
    reason: str | None = None
    automatic: int = 0
    vitals_id: int | None = None


@dataclass(frozen=True, slots=True)
class OtherRow(StoredRow):
    """A table without its own value yet (the REMS session details): the shared columns
    typed, the rest in ``extra``, still readable as ``row["column"]``."""


ROW_TYPES: dict[str, type[StoredRow]] = {
    cls.TABLE: cls
    for cls in (
        VitalsRow,
        ObservationRow,
        DoseRow,
        VitalScoreRow,
        AlarmRow,
        AlarmAcknowledgementRow,
        PhaseChangeRow,
        AdverseEventRow,
        InterventionRow,
        SessionEndRow,
        AdverseEventOutcomeRow,
        SessionProtocolRow,
        OverrideRow,
        DischargeAssessmentRow,
        QuestionnaireResponseRow,
        News2ScaleChoiceRow,
        AlarmChecklistStepRow,
        ReviewCommentRow,
        AddendumRow,
        SignatureRow,
        DeviceReadingRow,
        DeviceReadingReviewRow,
    )
}

# Every vital of the registry is a field of the vitals row (a test holds this when one is added).
MISSING_VITAL_FIELDS = tuple(k for k in VITAL_KEYS if k not in VitalsRow._columns())


R = TypeVar("R", bound=StoredRow)


def rows_as(row_type: type[R], rows: Iterable[StoredRow]) -> list[R]:
    """``rows`` as ``row_type``, for a rule that reads one table's fields by attribute; a row
    of another type (a plain mapping, another table's row) is a fault said at once, never a
    reading silently left out."""
    found = list(rows)
    for row in found:
        if type(row) is not row_type:
            raise TypeError(f"expected {row_type.__name__}, got {type(row).__name__}")
    return cast("list[R]", found)


def row_reader(table: str, names: Sequence[str]) -> Callable[[Sequence[Any]], StoredRow]:
    """A maker of ``table``'s typed rows from result tuples whose columns are ``names`` (a
    cursor's description): the same value :func:`typed_row` builds, without a dict per row,
    so loading a three-hour 1 Hz record costs little more than reading it."""
    row_type = ROW_TYPES.get(table, OtherRow)
    declared = set(row_type._columns())
    position = {name: i for i, name in enumerate(names)}
    order: list[tuple[int | None, Any]] = []
    for f in dataclasses.fields(row_type):
        if f.name == "extra":
            order.append((None, _EMPTY))
        elif f.name in position or f.default is not dataclasses.MISSING:
            order.append((position.get(f.name), f.default))
        else:
            raise ValueError(f"{table} rows need a {f.name} column")
    rest = [(name, i) for i, name in enumerate(names) if name not in declared]
    shared = [i for i, f in enumerate(dataclasses.fields(row_type)) if f.name in _SHARED]

    def make(values: Sequence[Any]) -> StoredRow:
        args = [default if i is None else values[i] for i, default in order]
        for at in shared:
            if isinstance(args[at], str):
                args[at] = sys.intern(args[at])
        if rest:
            extra = {name: values[i] for name, i in rest}
            args[_EXTRA_AT] = MappingProxyType(extra)
        return row_type(*args)

    return make


def typed_row(table: str, values: Mapping[str, Any]) -> StoredRow:
    """The typed value of one stored row of ``table`` (a row already typed is kept as it is,
    so a log the store typed is not copied again by the model built from it)."""
    row_type = ROW_TYPES.get(table, OtherRow)
    if isinstance(values, StoredRow) and type(values) is row_type:
        return values
    return row_type.from_mapping(values)
