"""What the trend chart shows, without Qt: one description drawn by every chart renderer.

Why: a session's rows used to become a chart three times (the bedside window fed the live chart,
the review view replayed rows into it, and the PDF built its own data), and the copies drifted:
different axis ranges, alarm labels, and only one removed duplicate limit lines. Now:

* :func:`picture_of` builds a :class:`ChartPicture` from a session's current rows and its
  protocol; the review chart and the PDF chart draw it;
* :func:`chart_delta` turns one committed row into a :class:`ChartDelta` (points and markers)
  that the live chart applies reading by reading without rebuilding; :func:`picture_of` is made
  of the same deltas, so the live chart and the whole picture cannot disagree;
* :func:`limit_lines` gives the protocol's alarm limits as lines, duplicates removed once;
* the lanes and their fixed ranges are the registry's :data:`~kapmonitor.domain.vitals.CHART_LANES`,
  and x is minutes since the first dose (since the session start before any dose).

Device readings (issue 13) are not part of the record until confirmed, so they are not in a
:class:`ChartPicture` (the review chart and the PDF draw the record). The live chart shows them
apart: :func:`device_delta` turns a device write's :class:`~kapmonitor.domain.changes.Changes`
into pending points and decisions (a confirmed reading's pending point goes, its vitals row is
charted as any other; an artefact's point becomes a marked artefact, kept).

**Gaps in device data on the record's curve.** A vitals row the protocol confirmed automatically
(the 1 Hz SpO₂/HR trend) is drawn by the record's own curve. When the feed pauses, two such points
further apart than the gap rule (:func:`~kapmonitor.domain.chart_style.gap_limit`: 3 × the usual
interval, at least 3 s) are not joined: :class:`DeviceGaps` puts a NaN between them (renderers draw
with ``connect="finite"`` or split the line there). Only between two device points: hand-entered
readings 15 minutes apart are normal, and a hand reading next to a device one is joined. It is
decided from the new point and the previous one of its series (and a short window of recent
intervals), so the live save path's cost stays flat however long the record is; the picture and the
live chart use the same tracker, so the review chart and the PDF show the same gaps.

How it looks (symbols, dashes, colours) is :mod:`kapmonitor.domain.chart_style`.
All times here are POSIX epoch seconds; x values are minutes since :attr:`ChartPicture.origin`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from kapmonitor.domain.changes import Changes
from kapmonitor.domain.chart_style import GAP_WINDOW, gap_limit, marker_style
from kapmonitor.domain.clock import from_iso
from kapmonitor.domain.device_flags import blocking_flags
from kapmonitor.domain.protocol import Protocol as ClinicalProtocol
from kapmonitor.domain.reference import Reference
from kapmonitor.domain.session_rows import (
    AdverseEventRow,
    AlarmRow,
    DoseRow,
    InterventionRow,
    StoredRow,
)
from kapmonitor.domain.vitals import CHART_LANES, ChartLane, charted_vitals

__all__ = [
    "CHART_SERIES",
    "MARKER_KINDS",
    "MARKER_TABLES",
    "SERIES_KEYS",
    "ChartDelta",
    "ChartMarker",
    "ChartPicture",
    "ChartSeries",
    "DeviceGaps",
    "DevicePoint",
    "LimitLine",
    "SeriesSpec",
    "SessionRows",
    "alarm_label",
    "build_picture",
    "chart_delta",
    "device_delta",
    "device_points_delta",
    "labelled_ticks",
    "limit_lines",
    "marker_tip",
    "picture_of",
    "series_spec",
]


@dataclass(frozen=True)
class SeriesSpec:
    """One charted series: its key (the row's column), its lane and the table it comes from."""

    key: str
    lane: str
    table: str  # "vitals" or "observations"


#: The scores drawn on the last lane: observations, not vital signs, so not in the registry.
_SCORES: tuple[SeriesSpec, ...] = (
    SeriesSpec("moaas", "sedation", "observations"),
    SeriesSpec("dissociation", "sedation", "observations"),
)

#: Every charted series in drawing order: the registry's charted vitals, then the scores.
CHART_SERIES: tuple[SeriesSpec, ...] = (
    *(SeriesSpec(v.key, v.lane or "", "vitals") for v in charted_vitals()),
    *_SCORES,
)
SERIES_KEYS: tuple[str, ...] = tuple(s.key for s in CHART_SERIES)
_SPEC = {s.key: s for s in CHART_SERIES}
_BY_TABLE: dict[str, tuple[str, ...]] = {
    table: tuple(s.key for s in CHART_SERIES if s.table == table)
    for table in ("vitals", "observations")
}

#: Marker kinds a renderer must draw (an unknown kind is drawn as a note).
MARKER_KINDS: tuple[str, ...] = ("dose", "adverse", "note", "alarm", "phase")

#: The tables whose rows are events on the chart, and the kind each becomes.
MARKER_TABLES: dict[str, str] = {
    "doses": "dose",
    "adverse_events": "adverse",
    "interventions": "note",
    "alarms": "alarm",
}


def labelled_ticks(lanes: tuple[ChartLane, ...] = CHART_LANES) -> tuple[tuple[float, ...], ...]:
    """The ticks each lane labels, top to bottom: all its ticks, except one on its bottom edge
    when the lane below labels its top edge (SpO₂ 70 over RR/EtCO₂ 60), since the two labels
    would print over each other where the lanes meet; its grid line stays."""
    labelled = []
    for index, lane in enumerate(lanes):
        ticks = lane.ticks
        below = lanes[index + 1] if index + 1 < len(lanes) else None
        if below is not None and below.ticks and below.ticks[-1] >= below.y_max:
            ticks = tuple(t for t in ticks if t > lane.y_min)
        labelled.append(ticks)
    return tuple(labelled)


def series_spec(key: str) -> SeriesSpec:
    """The series ``key``; a KeyError names an uncharted key."""
    return _SPEC[key]


@dataclass(frozen=True)
class ChartMarker:
    """An event line: when, what kind and its label (the full text; renderers may shorten it
    on screen but show it whole on hover)."""

    t: float
    kind: str
    label: str


@dataclass(frozen=True)
class LimitLine:
    """A protocol alarm limit drawn as a horizontal line on its series' lane."""

    series: str
    lane: str
    value: float
    label: str


@dataclass(frozen=True)
class DevicePoint:
    """A device reading on the chart, by the stored reading's id (what a decision names)."""

    series: str
    t: float
    value: float
    reading_id: int


@dataclass(frozen=True)
class ChartDelta:
    """What one committed row adds to the chart: points ``(series, t, value)`` and markers;
    for a device write, the pending readings it stored, the artefact readings to draw crossed
    (a whole redraw), and decisions ``(reading id, "confirmed" | "artefact")``. ``device``
    says the points are a vitals row made from a device reading (the gap rule applies between
    two such points, :class:`DeviceGaps`)."""

    points: tuple[tuple[str, float, float], ...] = ()
    markers: tuple[ChartMarker, ...] = ()
    pending: tuple[DevicePoint, ...] = ()
    artefacts: tuple[DevicePoint, ...] = ()
    decided: tuple[tuple[int, str], ...] = ()
    device: bool = False
    flagged: tuple[DevicePoint, ...] = ()  # pending, but the device doubted them (no F)

    def __bool__(self) -> bool:
        return bool(
            self.points
            or self.markers
            or self.pending
            or self.artefacts
            or self.decided
            or self.flagged
        )


class DeviceGaps:
    """Where the record's curve breaks in device data (module docstring), series by series.

    :meth:`breaks` is asked once per new point in time order; it keeps, per series, only the
    previous point (its time, and whether a device gave it) and the last :data:`GAP_WINDOW`
    intervals between device points, so each call costs the same at the first point and the
    10,800th. A back-dated point (earlier than the previous one) never breaks and changes
    nothing: back-dated device rows are rare, and a redraw of the session decides them right."""

    __slots__ = ("_intervals", "_last")

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, bool]] = {}
        self._intervals: dict[str, deque[float]] = {}

    def clear(self) -> None:
        self._last.clear()
        self._intervals.clear()

    def breaks(self, key: str, t: float, device: bool) -> bool:
        """Whether the line to the point ``(t, device)`` of ``key`` must break: it and the
        previous point both came from a device, further apart than the series' gap limit."""
        last = self._last.get(key)
        if last is not None and t < last[0]:
            return False
        self._last[key] = (t, device)
        if last is None or not (device and last[1]):
            return False
        step = t - last[0]
        recent = self._intervals.setdefault(key, deque(maxlen=GAP_WINDOW))
        limit = gap_limit(list(recent))
        recent.append(step)
        return step > limit


@dataclass
class ChartSeries:
    """One series' points in time order: ``t`` epoch seconds, ``y`` values (finite, except a
    NaN where the curve breaks in device data: it has the previous point's time)."""

    key: str
    lane: str
    t: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)


@dataclass
class ChartPicture:
    """The whole chart of one session: series, markers, limit lines and axes."""

    start: float  # session start, epoch seconds
    origin: float  # x = 0: the first dose, else the start
    since_dose: bool
    series: dict[str, ChartSeries]
    markers: list[ChartMarker] = field(default_factory=list)
    limits: list[LimitLine] = field(default_factory=list)
    end: float | None = None  # the session end, when it has ended
    lanes: tuple[ChartLane, ...] = CHART_LANES
    gaps: DeviceGaps = field(default_factory=DeviceGaps, repr=False, compare=False)

    @property
    def x_title(self) -> str:
        return "Minutes since first dose" if self.since_dose else "Minutes since session start"

    def x(self, t: float) -> float:
        """Minutes since the origin."""
        return (t - self.origin) / 60.0

    def xy(self, key: str) -> tuple[list[float], list[float]]:
        """(x minutes, values) of one series."""
        s = self.series[key]
        return [(t - self.origin) / 60.0 for t in s.t], list(s.y)

    def lane_series(self, lane: str) -> list[str]:
        return [s.key for s in CHART_SERIES if s.lane == lane]

    def lane_limits(self, lane: str) -> list[LimitLine]:
        return [limit for limit in self.limits if limit.lane == lane]

    def x_range(self) -> tuple[float, float]:
        """A static chart's window: from at least 15 min before the dose (from the start when
        there is none) to at least 60 min, out to the data, in whole quarter hours."""
        ts = [s.t[0] for s in self.series.values() if s.t]
        ts += [s.t[-1] for s in self.series.values() if s.t]
        ts += [m.t for m in self.markers]
        if self.end is not None:
            ts.append(self.end)
        lo = min((self.x(t) for t in ts), default=0.0)
        hi = max((self.x(t) for t in ts), default=60.0)
        x0 = min(-15.0 if self.since_dose else 0.0, math.floor(lo / 15) * 15)
        x1 = max(60.0, math.ceil(hi / 15) * 15)
        return x0, x1

    def apply(self, delta: ChartDelta) -> None:
        """Fold one row's delta in (points kept in time order; a NaN before a point the gap
        rule separates from the previous one)."""
        for key, t, value in delta.points:
            s = self.series[key]
            if self.gaps.breaks(key, t, delta.device) and s.t:
                s.t.append(s.t[-1])
                s.y.append(math.nan)
            if not s.t or t >= s.t[-1]:
                s.t.append(t)
                s.y.append(value)
            else:  # back-dated entry: rare
                i = next(i for i, old in enumerate(s.t) if old > t)
                s.t.insert(i, t)
                s.y.insert(i, value)
        self.markers.extend(delta.markers)


class SessionRows(Protocol):
    """What the builder reads of a session (the store's ``SessionLog`` fits)."""

    def current(self, table: str) -> list[StoredRow]: ...
    def started_at(self) -> datetime: ...
    def first_dose_at(self) -> datetime | None: ...
    def ended_at(self) -> datetime | None: ...
    @property
    def protocol(self) -> ClinicalProtocol | None: ...


# --- labels ---------------------------------------------------------------------------------


def alarm_label(row: AlarmRow) -> str:
    """ "CRITICAL: SBP 182": the priority first, as read across the room."""
    return f"{row.priority.upper()}: {row.parameter.upper()} {row.value:g}"


def _label(row: StoredRow, ref: Reference) -> str:
    if isinstance(row, DoseRow):
        route = ref.label("routes", row.route).split(" (")[0]
        return f"{row.dose_mg:g} mg {route}"
    if isinstance(row, AdverseEventRow):
        term = row.verbatim if row.term == "other" else ref.label("adverse_effects", row.term)
        return f"{term} G{row.grade}"
    if isinstance(row, InterventionRow):
        return str(row.medication or row.detail or ref.label("intervention_kinds", row.category))
    if isinstance(row, AlarmRow):
        return alarm_label(row)
    raise TypeError(f"{type(row).__name__} has no chart marker")


def marker_tip(marker: ChartMarker, origin: float | None) -> str:
    """The full description shown on hover: kind, local clock time, minutes since the origin,
    and the whole label."""
    kind = marker_style(marker.kind).name if marker.kind in MARKER_KINDS else "Event"
    clock = datetime.fromtimestamp(marker.t).strftime("%H:%M")
    minutes = 0.0 if origin is None else (marker.t - origin) / 60.0
    return f"{kind} at {clock} ({minutes:+.0f} min): {marker.label}"


# --- building -------------------------------------------------------------------------------


def chart_delta(table: str, row: StoredRow, ref: Reference) -> ChartDelta:
    """What one current row of ``table`` adds to the chart (empty for tables not charted).

    Missing values (``None``, NaN) leave their series untouched. A series is read as the
    row's field of the same name (every charted vital is a field of ``VitalsRow``)."""
    keys = _BY_TABLE.get(table)
    if keys is not None:
        t = from_iso(row.observed_at).timestamp()
        points = []
        for key in keys:
            value = getattr(row, key)
            if value is None:
                continue
            number = float(value)
            if math.isfinite(number):
                points.append((key, t, number))
        device = table == "vitals" and getattr(row, "device_reading_id", None) is not None
        return ChartDelta(points=tuple(points), device=device)
    kind = MARKER_TABLES.get(table)
    if kind is None:
        return ChartDelta()
    t = from_iso(row.observed_at).timestamp()
    return ChartDelta(markers=(ChartMarker(t, kind, _label(row, ref)),))


def _device_point(
    reading_id: int, vital: str, observed_at: str, value: float | None
) -> DevicePoint | None:
    """A reading of a charted vital with a finite value as a point (else None: not drawn)."""
    spec = _SPEC.get(vital)
    if spec is None or spec.table != "vitals" or value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    return DevicePoint(vital, from_iso(observed_at).timestamp(), number, int(reading_id))


def device_delta(changes: Changes) -> ChartDelta:
    """What a device write adds to the live chart: the readings it stored that still await a
    decision (pending points; one confirmed with the write, by the protocol, is charted as its
    vitals row instead), and each decision it wrote. A reading without a value (probe off) or
    of an uncharted vital (temperature) draws nothing."""
    pending, flagged = [], []
    for row in changes.pending_readings:
        point = _device_point(row.id, row["vital"], row.observed_at, row["value"])
        if point is not None:
            (flagged if blocking_flags(row["flags"]) else pending).append(point)
    decided = tuple(
        (int(r["device_reading_id"]), str(r["decision"]))
        for r in changes.of("device_reading_reviews")
    )
    return ChartDelta(pending=tuple(pending), decided=decided, flagged=tuple(flagged))


def device_points_delta(
    rows: Iterable[tuple[int, str, str, float | None, str | None, str | None]],
) -> ChartDelta:
    """The stored device readings of a session still on the chart (a session opened again):
    ``(id, vital, observed_at, value, decision, flags)`` with decision None (pending; flagged
    when the device doubted it) or "artefact" (confirmed readings are charted as their vitals
    rows)."""
    pending, artefacts, flagged = [], [], []
    for reading_id, vital, observed_at, value, decision, flags in rows:
        point = _device_point(reading_id, vital, observed_at, value)
        if point is None or decision not in (None, "artefact"):
            continue
        if decision == "artefact":
            artefacts.append(point)
        else:
            (flagged if blocking_flags(flags) else pending).append(point)
    return ChartDelta(pending=tuple(pending), artefacts=tuple(artefacts), flagged=tuple(flagged))


def limit_lines(protocol: ClinicalProtocol | None) -> list[LimitLine]:
    """The protocol's absolute alarm limits on charted series, as lines.

    Advisory limits and pre-dose-only limits are left out (the chart is about the dosed
    session and its actionable limits), as are relative rules (a rise from baseline has no fixed
    line). A value drawn once per series: two rules at the same limit (a warning in two
    phases, say) give one line, labelled by the first."""
    if protocol is None:
        return []
    lines: list[LimitLine] = []
    seen: set[tuple[str, float]] = set()
    for rule in protocol.alarms:
        limit = rule.at_or_above if rule.at_or_above is not None else rule.at_or_below
        if limit is None or rule.parameter not in _SPEC or rule.priority == "advisory":
            continue
        if rule.phase == "pre_dose" or (rule.parameter, float(limit)) in seen:
            continue
        seen.add((rule.parameter, float(limit)))
        lines.append(
            LimitLine(rule.parameter, _SPEC[rule.parameter].lane, float(limit), rule.label)
        )
    return lines


def build_picture(
    rows: Mapping[str, Iterable[StoredRow]],
    *,
    start: datetime,
    first_dose: datetime | None,
    end: datetime | None,
    protocol: ClinicalProtocol | None,
    ref: Reference,
) -> ChartPicture:
    """The chart of a session from its current rows (table -> rows, clinical-time order)."""
    series = {s.key: ChartSeries(s.key, s.lane) for s in CHART_SERIES}
    origin = first_dose.timestamp() if first_dose is not None else start.timestamp()
    picture = ChartPicture(
        start=start.timestamp(),
        origin=origin,
        since_dose=first_dose is not None,
        series=series,
        limits=limit_lines(protocol),
        end=None if end is None else end.timestamp(),
    )
    for table in (*_BY_TABLE, *MARKER_TABLES):
        for row in rows.get(table, ()):
            picture.apply(chart_delta(table, row, ref))
    return picture


def picture_of(log: SessionRows, ref: Reference) -> ChartPicture:
    """The chart of a stored session, as the review view and the PDF draw it."""
    tables = (*_BY_TABLE, *MARKER_TABLES)
    return build_picture(
        {table: log.current(table) for table in tables},
        start=log.started_at(),
        first_dose=log.first_dose_at(),
        end=log.ended_at(),
        protocol=log.protocol,
        ref=ref,
    )
