"""Where the text labels of chart event markers go, so that they never overlap.

A session's events (doses, adverse effects, alarms, notes, phase changes) cluster: a dose, a
nausea report, two alarms and a note can all fall within five minutes, which on a 700-pixel chart
is a few pixels. Drawn naively their labels print over each other, and a label near the plot
edge gets clipped (a dose once read "0 mg IM" instead of "700 mg IM"). This module decides, in
plain pixel arithmetic and without Qt, where every label goes, so the live chart
(``kapmonitor/ui/widgets/trend_chart.py``) and the PDF chart
(``kapmonitor/reports/chart_image.py``) lay out labels the same way and the rules can be
tested exhaustively:

* labels sit in horizontal **lanes** (rows) beside their marker line, right of it if they fit,
  else left of it, else over it, always wholly inside the plot;
* **doses are placed first** and only ever with their full text: the amount is what a clinician
  looks for, and an abbreviated or truncated dose is worse than none;
* other labels are placed by clinical priority (adverse effects, alarms, phase changes, notes),
  each with its full text in any free lane if possible, else with a shorter form ("AE G2", "AE");
* what still does not fit is collapsed into a **count badge** ("+3") near the events it stands
  for; the caller gives the badge (and every marker line) the full texts as a tooltip, and the
  timeline lists them anyway.

Widths are measured by the caller (it knows the font) and passed in; the layout only compares
intervals, so it costs microseconds per label and is recomputed only when the events or the
chart geometry change.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

__all__ = [
    "KIND_PRIORITY",
    "Badge",
    "EventLabel",
    "LabelLayout",
    "PlacedLabel",
    "badge_text",
    "label_texts",
    "layout_labels",
]

KIND_PRIORITY: dict[str, int] = {"dose": 0, "adverse": 1, "alarm": 2, "phase": 3, "note": 4}
"""Lower is placed first. Doses lead because the amount must always be readable; adverse
effects before alarms because alarms are frequent and also shown in the alarm banner."""

_UNKNOWN_PRIORITY = 5

_SHORT_NAMES: dict[str, str] = {"adverse": "AE", "alarm": "Alarm", "note": "Note", "phase": "Phase"}
"""The shortest form of a label when even the middle form does not fit."""

_GRADE = re.compile(r"\s(G\d)$")


def label_texts(kind: str, text: str) -> tuple[str, ...]:
    """The forms a marker's label may take, full text first, shorter after.

    A dose has only its full text ("700 mg IM"). An adverse effect "Nausea G2" may become
    "AE G2", then "AE"; an alarm "CRITICAL: SPO2 85" may become "SPO2 85", then "Alarm"; notes
    and phase changes may become "Note" / "Phase". Unknown kinds shorten to "Event".
    """
    if kind == "dose":
        return (text,)
    forms = [text]
    if kind == "adverse":
        grade = _GRADE.search(text)
        if grade:
            forms.append(f"AE {grade.group(1)}")
    elif kind == "alarm" and ": " in text:
        forms.append(text.split(": ", 1)[1])
    forms.append(_SHORT_NAMES.get(kind, "Event"))
    unique: list[str] = []
    for form in forms:
        if form and form not in unique:
            unique.append(form)
    return tuple(unique)


def badge_text(count: int) -> str:
    """The text of a count badge standing for ``count`` markers whose labels did not fit."""
    return f"+{count}"


@dataclass(frozen=True)
class EventLabel:
    """One marker to be labelled.

    ``x`` is the marker line's position in pixels; ``texts`` the allowed forms, full text first
    (see :func:`label_texts`); ``widths`` the width in pixels of the label box drawn for each
    form, padding included.
    """

    key: Hashable
    x: float
    kind: str
    texts: tuple[str, ...]
    widths: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.texts or len(self.texts) != len(self.widths):
            raise ValueError("an event label needs one width per text form, and at least one")

    @property
    def priority(self) -> int:
        return KIND_PRIORITY.get(self.kind, _UNKNOWN_PRIORITY)


@dataclass(frozen=True)
class PlacedLabel:
    """A label drawn at ``[left, left + width]`` in lane ``lane`` with text ``texts[form]``.

    ``side`` says where the box is relative to its line: "right", "left" or "over" (a box wider
    than the room on either side, centred on the line and pushed inside the plot).
    """

    key: Hashable
    kind: str
    text: str
    full_text: str
    form: int
    lane: int
    left: float
    width: float
    side: str

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def abbreviated(self) -> bool:
        return self.form > 0


@dataclass(frozen=True)
class Badge:
    """A count badge at ``[left, left + width]`` in lane ``lane`` for the markers ``keys``."""

    keys: tuple[Hashable, ...]
    lane: int
    left: float
    width: float

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def text(self) -> str:
        return badge_text(len(self.keys))


@dataclass(frozen=True)
class LabelLayout:
    """The result: labels placed, badges, and (only when nothing at all fits) markers left bare."""

    labels: tuple[PlacedLabel, ...]
    badges: tuple[Badge, ...]
    unshown: tuple[Hashable, ...]
    lanes: int

    def boxes(self) -> list[tuple[int, float, float]]:
        """(lane, left, right) of every label and badge."""
        return [(b.lane, b.left, b.right) for b in (*self.labels, *self.badges)]


class _Lanes:
    """Occupied intervals per lane; ``gap`` pixels are kept free between neighbours."""

    def __init__(self, count: int, gap: float) -> None:
        self.gap = gap
        self.items: list[list[tuple[float, float, object]]] = [[] for _ in range(count)]

    def blockers(self, lane: int, left: float, right: float) -> list[object]:
        gap = self.gap
        return [owner for lo, hi, owner in self.items[lane] if left < hi + gap and lo < right + gap]

    def free(self, lane: int, left: float, right: float) -> bool:
        gap = self.gap
        return not any(left < hi + gap and lo < right + gap for lo, hi, _ in self.items[lane])

    def add(self, lane: int, left: float, right: float, owner: object) -> None:
        self.items[lane].append((left, right, owner))

    def remove(self, owner: object) -> None:
        for lane in self.items:
            lane[:] = [item for item in lane if item[2] is not owner]


def _positions(
    x: float, width: float, lo: float, hi: float, offset: float, allow_over: bool
) -> list[tuple[float, str]]:
    """Candidate left edges for a box of ``width`` belonging to a line at ``x``, best first."""
    found: list[tuple[float, str]] = []
    if width > hi - lo:
        return found
    if x + offset >= lo and x + offset + width <= hi:
        found.append((x + offset, "right"))
    if x - offset - width >= lo and x - offset <= hi:
        found.append((x - offset - width, "left"))
    if allow_over and not found:
        found.append((min(max(x - width / 2, lo), hi - width), "over"))
    return found


def layout_labels(
    labels: Sequence[EventLabel],
    *,
    left: float,
    right: float,
    lanes: int,
    gap: float = 4.0,
    offset: float = 3.0,
    badge_width: Callable[[int], float],
    allow_over: bool = True,
) -> LabelLayout:
    """Place ``labels`` in ``lanes`` rows between ``left`` and ``right`` without any overlap.

    ``offset`` is the distance from a line to its box (negative: the box starts before the line,
    e.g. to include a symbol drawn on it); ``gap`` the free space kept between boxes in a lane;
    ``badge_width(n)`` the width of the badge text for ``n`` markers (measured once, for the
    largest possible count, so merging more markers into a badge never widens it).
    ``allow_over`` lets a box that fits on neither side of its line sit over it.
    """
    lanes = max(1, int(lanes))
    room = _Lanes(lanes, gap)
    placed: dict[Hashable, PlacedLabel] = {}
    left_over: list[EventLabel] = []
    order = sorted(labels, key=lambda e: (e.priority, e.x))
    for event in order:
        spot = _place_label(event, room, left, right, offset, allow_over)
        if spot is None:
            left_over.append(event)
        else:
            placed[event.key] = spot

    width = badge_width(max(1, len(labels)))
    badges: list[_BadgeDraft] = []
    unshown: list[Hashable] = []
    by_key = {e.key: e for e in labels}
    for cluster in _clusters(left_over, width + gap):
        _place_badge(cluster, room, placed, badges, unshown, by_key, left, right, offset, width)

    return LabelLayout(
        labels=tuple(sorted(placed.values(), key=lambda p: (p.lane, p.left))),
        badges=tuple(
            Badge(tuple(sorted(b.keys, key=lambda k: by_key[k].x)), b.lane, b.left, width)
            for b in sorted(badges, key=lambda b: (b.lane, b.left))
        ),
        unshown=tuple(unshown),
        lanes=lanes,
    )


def _place_label(
    event: EventLabel,
    room: _Lanes,
    lo: float,
    hi: float,
    offset: float,
    allow_over: bool,
) -> PlacedLabel | None:
    """Full text in the first free lane, else each shorter form in turn; doses: full text only."""
    forms = range(1) if event.kind == "dose" else range(len(event.texts))
    for form in forms:
        width = event.widths[form]
        for lane in range(len(room.items)):
            for start, side in _positions(event.x, width, lo, hi, offset, allow_over):
                if room.free(lane, start, start + width):
                    spot = PlacedLabel(
                        event.key,
                        event.kind,
                        event.texts[form],
                        event.texts[0],
                        form,
                        lane,
                        start,
                        width,
                        side,
                    )
                    room.add(lane, start, start + width, spot)
                    return spot
    return None


@dataclass
class _BadgeDraft:
    keys: list[Hashable]
    lane: int
    left: float


def _clusters(events: list[EventLabel], reach: float) -> list[list[EventLabel]]:
    """Unplaced markers grouped left to right while each is within ``reach`` of the first."""
    groups: list[list[EventLabel]] = []
    for event in sorted(events, key=lambda e: e.x):
        if groups and event.x - groups[-1][0].x <= reach:
            groups[-1].append(event)
        else:
            groups.append([event])
    return groups


def _place_badge(
    cluster: list[EventLabel],
    room: _Lanes,
    placed: dict[Hashable, PlacedLabel],
    badges: list[_BadgeDraft],
    unshown: list[Hashable],
    by_key: dict[Hashable, EventLabel],
    lo: float,
    hi: float,
    offset: float,
    width: float,
) -> None:
    """Put one badge near ``cluster``, trying in turn: the nearest free gap; a badge already
    near; the place of nearby labels no more important (they join the badge); the nearest
    badge anywhere; the place of any labels but doses. Only if all fail are the markers left
    bare (their lines still carry the full text)."""
    keys = [e.key for e in cluster]
    starts: list[float] = []
    for event in cluster:
        starts += [s for s, _side in _positions(event.x, width, lo, hi, offset, True)]
    centre = sum(e.x for e in cluster) / len(cluster)
    # Also just beside whatever is already drawn nearby: the badge slides to the nearest gap.
    reach = 4 * width
    for lane_items in room.items:
        for item_lo, item_hi, _owner in lane_items:
            for start in (item_hi + room.gap, item_lo - room.gap - width):
                if lo <= start and start + width <= hi and abs(start + width / 2 - centre) <= reach:
                    starts.append(start)
    starts.sort(key=lambda s: abs(s + width / 2 - centre))
    for start in starts:  # the nearest gap in any lane
        for lane in range(len(room.items)):
            if room.free(lane, start, start + width):
                draft = _BadgeDraft(keys, lane, start)
                room.add(lane, start, start + width, draft)
                badges.append(draft)
                return
    # No gap nearby: join a badge that is near anyway, rather than hide another label.
    nearby = [b for b in badges if abs(b.left + width / 2 - centre) <= reach]
    if nearby:
        min(nearby, key=lambda b: abs(b.left + width / 2 - centre)).keys.extend(keys)
        return
    # Make room by folding nearby labels no more important than these into the badge; failing
    # that, join the nearest badge however far; failing that (no badge yet), fold any label
    # but a dose. A badge for an alarm never hides an adverse effect that has room.
    most_important = min(e.priority for e in cluster)
    if _fold_into_badge(keys, starts, width, room, placed, badges, by_key, most_important):
        return
    if badges:
        min(badges, key=lambda b: abs(b.left + width / 2 - centre)).keys.extend(keys)
        return
    if _fold_into_badge(keys, starts, width, room, placed, badges, by_key, -1):
        return
    unshown.extend(keys)


def _fold_into_badge(
    keys: list[Hashable],
    starts: list[float],
    width: float,
    room: _Lanes,
    placed: dict[Hashable, PlacedLabel],
    badges: list[_BadgeDraft],
    by_key: dict[Hashable, EventLabel],
    priority_from: int,
) -> bool:
    """Place a badge where only labels of priority ``priority_from`` or less important stand
    (never a dose, never another badge); those labels join the badge. Fewest labels lost wins,
    then the least important. False when no such place exists."""
    best: tuple[tuple[int, int], int, float, list[PlacedLabel]] | None = None
    for lane in range(len(room.items)):
        for start in starts:
            blockers = room.blockers(lane, start, start + width)
            if all(
                isinstance(b, PlacedLabel)
                and b.kind != "dose"
                and by_key[b.key].priority >= priority_from
                for b in blockers
            ):
                victims = [b for b in blockers if isinstance(b, PlacedLabel)]
                cost = (len(victims), -sum(by_key[v.key].priority for v in victims))
                if best is None or cost < best[0]:
                    best = (cost, lane, start, victims)
    if best is None:
        return False
    _cost, lane, start, victims = best
    for victim in victims:
        room.remove(victim)
        del placed[victim.key]
    draft = _BadgeDraft(keys + [v.key for v in victims], lane, start)
    room.add(lane, start, start + width, draft)
    badges.append(draft)
    return True
