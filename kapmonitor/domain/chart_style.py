"""How the trend chart looks, declared once for every renderer.

Why here: the live chart (pyqtgraph) and the PDF chart (QPainter) each had their own table of
series shapes, dashes and colours, and the two had drifted. Both now read this module; it holds
no Qt type, so colours are hex strings (``#RRGGBB``), fills are RGBA tuples and line styles are
the names in :data:`DASHES`, which each renderer maps onto its own pen styles.

Every series and every marker kind differs by symbol shape or dash as well as by colour, because
colour alone is unreliable for colour-blind readers, on the night palette and on poor displays
(a test checks it). Night colours are muted and never pure white: the room is dimmed.

A new charted vital sign needs one :class:`SeriesStyle` below (a test fails until it has one).

Device readings awaiting a clinician (issue 13) are drawn in each series' *pending* look, declared
here once (:data:`PENDING`): the same symbol and colour family, lighter (mixed toward the
background) and hollow, on a thin dotted line, so a value nobody has confirmed never reads as part
of the record. A reading marked artefact stays on the chart as a small grey cross
(:data:`ARTEFACT`), never removed. Device data that stop for longer than :data:`GAP_FACTOR` times
the series' usual interval are drawn with a gap (:func:`gap_limit`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ARTEFACT",
    "DASHES",
    "DAY",
    "FLAGGED_MIX",
    "GAP_FACTOR",
    "GAP_MIN_S",
    "GAP_WINDOW",
    "KEY_PERIOD_MIN",
    "KEY_PHASE_MIN",
    "MARKER_STYLES",
    "NIGHT",
    "PENDING",
    "SERIES_STYLES",
    "SYMBOLS",
    "SYMBOLS_MAX_POINTS",
    "ArtefactStyle",
    "ChartPalette",
    "MarkerStyle",
    "PendingStyle",
    "SeriesStyle",
    "blend",
    "flagged_color",
    "gap_limit",
    "marker_style",
    "palette",
    "pending_color",
]

#: Line styles a renderer must know.
DASHES: tuple[str, ...] = ("solid", "dash", "dot", "dashdot", "dashdotdot")

#: Symbol shapes (pyqtgraph's names, which the PDF renderer draws too): ▲ t1, ▼ t, ▶ t2, ● o,
#: ◆ d, ■ s, + and x; "ring" ○ is the alarm's shape in the PDF's marker band.
SYMBOLS: tuple[str, ...] = ("t1", "t", "t2", "o", "d", "s", "+", "x", "ring")


@dataclass(frozen=True)
class SeriesStyle:
    """One series: its legend text, symbol, dash and colours by day and by night."""

    key: str
    legend: str
    symbol: str
    dash: str
    day: str
    night: str

    def color(self, night: bool) -> str:
        return self.night if night else self.day


@dataclass(frozen=True)
class MarkerStyle:
    """One kind of event line. ``shape`` marks the event in the PDF's band above the panels."""

    kind: str
    name: str  # "Dose": the legend and the start of the hover text
    dash: str
    shape: str
    day: str
    night: str
    width: float = 2.0  # live chart pen width, px; the dose line is a little heavier

    def color(self, night: bool) -> str:
        return self.night if night else self.day


@dataclass(frozen=True)
class ChartPalette:
    """The chart's chrome in one lighting condition."""

    background: str
    foreground: str  # axis text, the live chart's badges
    axis: str  # axis lines and the PDF's panel frames
    grid: str  # the PDF's grid lines
    grid_alpha: float  # the live chart's grid opacity
    legend_fill: tuple[int, int, int, int]
    label_fill: tuple[int, int, int, int]
    threshold: str  # the PDF's alarm-limit lines and count badges
    ink: str  # text on the PDF


SERIES_STYLES: dict[str, SeriesStyle] = {
    s.key: s
    for s in (
        SeriesStyle("sbp", "SBP", "t1", "solid", "#C0392B", "#C46A5E"),
        SeriesStyle("dbp", "DBP", "t", "dash", "#B86100", "#C29A5B"),
        SeriesStyle("hr", "HR", "o", "dot", "#047857", "#6FA883"),
        SeriesStyle("spo2", "SpO₂", "d", "solid", "#1D4ED8", "#6C8FC7"),
        SeriesStyle("rr", "RR", "s", "solid", "#6D28D9", "#9A88C4"),
        SeriesStyle("etco2", "EtCO₂", "t2", "dash", "#A16207", "#B8A05E"),
        SeriesStyle("moaas", "MOAA/S", "+", "solid", "#0E7490", "#5E9EA3"),
        SeriesStyle("dissociation", "Dissoc.", "x", "dash", "#BE185D", "#B5769A"),
    )
}

MARKER_STYLES: dict[str, MarkerStyle] = {
    m.kind: m
    for m in (
        MarkerStyle("dose", "Dose", "solid", "t", "#166534", "#6F9E76", width=2.5),
        MarkerStyle("adverse", "Adverse effect", "dash", "s", "#B91C1C", "#C0625A"),
        MarkerStyle("alarm", "Alarm", "dashdot", "ring", "#C2410C", "#C08A50"),
        MarkerStyle("note", "Note", "dot", "d", "#475569", "#87929E"),
        MarkerStyle("phase", "Phase", "dashdotdot", "o", "#6D28D9", "#9585C0"),
    )
}

DAY = ChartPalette(
    background="#FBFBF8",
    foreground="#1F2328",
    axis="#3A4048",
    grid="#D9DCE1",
    grid_alpha=0.18,
    legend_fill=(251, 251, 248, 215),
    label_fill=(251, 251, 248, 200),
    threshold="#6B7280",
    ink="#1F2328",
)

NIGHT = ChartPalette(
    background="#101418",
    foreground="#A9B1BA",
    axis="#6E7883",
    grid="#2A3138",
    grid_alpha=0.12,
    legend_fill=(16, 20, 24, 215),
    label_fill=(16, 20, 24, 200),
    threshold="#87929E",
    ink="#A9B1BA",
)

#: Above this many points a series is "dense": per-point symbols would merge into a smear (and
#: cost far more to draw than the line), so only key symbols are drawn.
SYMBOLS_MAX_POINTS = 600

#: In dense mode each series still shows its symbol once per five minutes ("key symbols"), so it
#: stays recognisable without colour. The grid is anchored to the clock, not to the point count,
#: so key symbols never move as data arrive.
KEY_PERIOD_MIN = 5.0

#: Series sharing a lane put their key symbols at staggered times so they do not overlap.
KEY_PHASE_MIN: dict[str, float] = {
    "dbp": 100 / 60,
    "hr": 200 / 60,
    "etco2": 150 / 60,
    "dissociation": 150 / 60,
}


def palette(night: bool) -> ChartPalette:
    return NIGHT if night else DAY


def marker_style(kind: str) -> MarkerStyle:
    """The style of ``kind``; an unknown kind is drawn as a note rather than failing, so a new
    event type can never take a chart down mid-session."""
    return MARKER_STYLES.get(kind, MARKER_STYLES["note"])


# --- device readings awaiting a clinician (issue 13) ----------------------------------------


@dataclass(frozen=True)
class PendingStyle:
    """How a pending device value differs from a confirmed one, for every series alike.

    ``mix`` is how far the series colour moves toward the background (0 the colour itself, 1 the
    background): lighter, yet the same hue, so it still reads as "SpO₂" beside the confirmed
    line. ``hollow`` symbols (filled with the background) and a thinner dotted ``dash`` keep
    pending points apart from confirmed ones without relying on colour."""

    mix: float
    hollow: bool
    dash: str
    width: float


@dataclass(frozen=True)
class ArtefactStyle:
    """A reading marked artefact: kept on the chart, crossed and greyed, never a data point."""

    symbol: str
    day: str
    night: str
    size_delta: int  # px added to the series symbol size

    def color(self, night: bool) -> str:
        return self.night if night else self.day


PENDING = PendingStyle(mix=0.5, hollow=True, dash="dot", width=1.5)
ARTEFACT = ArtefactStyle(symbol="x", day="#8A9099", night="#5F6870", size_delta=1)
#: A pending reading the device itself flagged (probe off, artefact, preliminary, out of range):
#: the artefact's cross, lighter still (this share of the way to the background), since nobody
#: has judged it yet; it is not confirmable by F (kapmonitor/domain/device_flags.py).
FLAGGED_MIX = 0.45

#: A series' device data with no reading for longer than this many times its usual interval
#: (the median of the last :data:`GAP_WINDOW` intervals) are drawn with a gap, not bridged.
GAP_FACTOR = 3.0
#: The shortest gap drawn, seconds: a 1 Hz feed jittering by a second is not a gap.
GAP_MIN_S = 3.0
GAP_WINDOW = 30


def blend(color: str, toward: str, share: float) -> str:
    """``color`` moved ``share`` (0..1) of the way toward ``toward``, both ``#RRGGBB``."""
    a = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
    b = [int(toward[i : i + 2], 16) for i in (1, 3, 5)]
    mixed = (round(x + (y - x) * share) for x, y in zip(a, b, strict=True))
    return "#" + "".join(f"{v:02X}" for v in mixed)


def pending_color(key: str, night: bool) -> str:
    """The pending look of series ``key``: its colour mixed toward the chart background."""
    return blend(SERIES_STYLES[key].color(night), palette(night).background, PENDING.mix)


def flagged_color(night: bool) -> str:
    """The cross of a device-flagged pending reading: the artefact grey, lighter."""
    return blend(ARTEFACT.color(night), palette(night).background, FLAGGED_MIX)


def gap_limit(intervals: list[float]) -> float:
    """The interval (s) above which a series' device data count as interrupted: GAP_FACTOR
    times the median of the last intervals (a 1 Hz feed: 3 s; NIBP every 5 min: 15 min), never
    under GAP_MIN_S. With no interval yet nothing is a gap."""
    recent = sorted(intervals[-GAP_WINDOW:])
    if not recent:
        return float("inf")
    middle = len(recent) // 2
    median = recent[middle] if len(recent) % 2 else (recent[middle - 1] + recent[middle]) / 2
    return max(GAP_MIN_S, GAP_FACTOR * median)
