"""NEWS2 (Royal College of Physicians, 2017) for a vital-signs set, shown as information only.

In KAP, dissociation is expected and is not delirium; the score treats any dissociation or a MOAA/S
below 5 as "new confusion" (3 points) per the RCP NEWS2 chart (2017), so it reads high during the
peak by design — the window says so (``KAP_CAVEAT``).

The bands below are the Royal College of Physicians NEWS2 chart (2017). They are written as upper
bounds ("≤ 8 → 3, ≤ 11 → 1, …") so that every edge of the chart appears once and a value between
two whole numbers (e.g. a temperature of 36.05) falls on the same side as the chart's printed range
it follows. These are the published chart, not clinic thresholds: changing them would no longer be
NEWS2, so they are not protocol settings.

SpO₂ has two scales (RCP NEWS2 2017, chart 2). Scale 1 is for everyone else; Scale 2 is for a
patient with hypercapnic respiratory failure whose prescribed target is 88–92 %, chosen by a
clinician for that patient and recorded with the reason (``ScaleChoice``). On Scale 2 a saturation
of 93 % or more scores only when the patient is on oxygen (over-oxygenation), and 88–92 % scores 0.

A parameter that was not measured scores 0 and is listed in ``missing``; a set with anything
missing gets no band at all (``band == "incomplete"``): a partial total with a reassuring band
would read as "low risk" when nobody looked. Consciousness counts only from an observation within
the protocol's freshness window before the reading (``alert_within_window``): a MOAA/S from before
the dose says nothing about the patient now.

INTERFACE (stable; implementation owned by the scores helper):
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from kapmonitor.domain.clock import from_iso
from kapmonitor.domain.records import Entry
from kapmonitor.domain.reference import Reference
from kapmonitor.domain.validation import Collector, check_time

Band = Literal["routine", "low", "low-medium", "medium", "high"]
Scale = Literal[1, 2]
INCOMPLETE = "incomplete"  # the stored band of a set with a parameter not measured
SCALES: tuple[Scale, ...] = (1, 2)
SCALE_NAMES = {
    1: "SpO₂ Scale 1",
    2: "SpO₂ Scale 2 (hypercapnic respiratory failure, target 88–92 %)",
}
KAP_CAVEAT = (
    "NEWS2 is shown for information. Dissociation during KAP scores as new confusion (3), so a "
    "raised score at the drug's peak is expected; act on the protocol's alarms."
)

# (upper bound inclusive, points); the last row has no upper bound. RCP NEWS2 chart (2017).
_RR: tuple[tuple[float | None, int], ...] = ((8, 3), (11, 1), (20, 0), (24, 2), (None, 3))
_SPO2_SCALE1: tuple[tuple[float | None, int], ...] = ((91, 3), (93, 2), (95, 1), (None, 0))
# RCP NEWS2 (2017) chart 2, SpO₂ Scale 2. Up to 92 % the chart is the same on air and on oxygen;
# from 93 % it scores only on oxygen (on air, ≥ 93 scores 0).
_SPO2_SCALE2: tuple[tuple[float | None, int], ...] = ((83, 3), (85, 2), (87, 1), (92, 0))
_SPO2_SCALE2_ON_OXYGEN: tuple[tuple[float | None, int], ...] = ((94, 1), (96, 2), (None, 3))
_SBP: tuple[tuple[float | None, int], ...] = ((90, 3), (100, 2), (110, 1), (219, 0), (None, 3))
_HR: tuple[tuple[float | None, int], ...] = (
    (40, 3),
    (50, 1),
    (90, 0),
    (110, 1),
    (130, 2),
    (None, 3),
)
_TEMP: tuple[tuple[float | None, int], ...] = (
    (35.0, 3),
    (36.0, 1),
    (38.0, 0),
    (39.0, 1),
    (None, 2),
)
_ON_OXYGEN_POINTS = 2
_NOT_ALERT_POINTS = 3


@dataclass(frozen=True)
class News2:
    total: int  # of the parameters measured: a partial total when ``missing`` is not empty
    band: Band | Literal["incomplete"]  # "incomplete" whenever a parameter is missing
    parts: dict[str, int]  # rr, spo2, oxygen, sbp, hr, consciousness, temp -> points
    missing: tuple[str, ...]  # parameters not measured (scored as 0, no band)
    scale: Scale = 1  # the SpO₂ scale used

    @property
    def complete(self) -> bool:
        return not self.missing

    def summary(self) -> str:
        """ "5 (medium)", or "3 partial (incomplete)" when a parameter is missing."""
        if self.complete:
            return f"{self.total} ({self.band})"
        return f"{self.total} partial ({INCOMPLETE})"


def _points(value: float, table: tuple[tuple[float | None, int], ...]) -> int:
    for upper, points in table:
        if upper is None or value <= upper:
            return points
    raise AssertionError("a NEWS2 table must end with an open row")  # pragma: no cover


def spo2_points(spo2: float, on_oxygen: bool, scale: Scale = 1) -> int:
    """Points for a saturation on the chosen scale (RCP NEWS2 2017, charts 1 and 2)."""
    if scale == 1:
        return _points(spo2, _SPO2_SCALE1)
    if spo2 <= 92:
        return _points(spo2, _SPO2_SCALE2)
    return _points(spo2, _SPO2_SCALE2_ON_OXYGEN) if on_oxygen else 0


def score(
    rr: int | None,
    spo2: int | None,
    on_oxygen: bool,
    sbp: int | None,
    hr: int | None,
    alert: bool | None,
    temp_c: float | None,
    scale: Scale = 1,
) -> News2:
    """NEWS2 from the RCP chart on SpO₂ ``scale`` 1 or 2. ``alert`` None = consciousness not
    assessed (or not recently enough). Any parameter missing: band ``"incomplete"``."""
    if scale not in SCALES:
        raise ValueError(f"NEWS2 has SpO₂ scales 1 and 2, not {scale!r}")
    measured: dict[str, tuple[float | None, tuple[tuple[float | None, int], ...]]] = {
        "rr": (rr, _RR),
        "sbp": (sbp, _SBP),
        "hr": (hr, _HR),
        # One decimal, as the chart prints it, so 36.04 is not read as "above 36.0".
        "temp": (None if temp_c is None else round(temp_c, 1), _TEMP),
    }
    parts: dict[str, int] = {}
    missing: list[str] = []
    for name, (value, table) in measured.items():
        if value is None:
            missing.append(name)
            parts[name] = 0
        else:
            parts[name] = _points(value, table)
    if spo2 is None:
        missing.append("spo2")
        parts["spo2"] = 0
    else:
        parts["spo2"] = spo2_points(spo2, on_oxygen, scale)
    parts["oxygen"] = _ON_OXYGEN_POINTS if on_oxygen else 0
    if alert is None:
        missing.append("consciousness")
    parts["consciousness"] = 0 if alert is None or alert else _NOT_ALERT_POINTS
    order = ("rr", "spo2", "oxygen", "sbp", "hr", "consciousness", "temp")
    parts = {name: parts[name] for name in order}
    total = sum(parts.values())
    missing_in_order = tuple(name for name in order if name in missing)
    return News2(
        total=total,
        band=INCOMPLETE if missing_in_order else band(total, parts),
        parts=parts,
        missing=missing_in_order,
        scale=scale,
    )


def band(total: int, parts: dict[str, int]) -> Band:
    """The band of a COMPLETE set (``score`` gives an incomplete one none): 0 routine; 1–4 low;
    a 3 in any single parameter low-medium; 5–6 medium; ≥7 high."""
    if total >= 7:
        return "high"
    if total >= 5:
        return "medium"
    if any(points >= 3 for points in parts.values()):
        return "low-medium"
    if total >= 1:
        return "low"
    return "routine"


def alert_from_observation(moaas: int | None, dissociation: int | None) -> bool | None:
    """NEWS2 consciousness from a KAP observation: any dissociation (≥ 1) or MOAA/S below 5 counts
    as "new confusion" (not alert), per the KAP caveat. Neither assessed → None (missing)."""
    if moaas is None and dissociation is None:
        return None
    if dissociation is not None and dissociation >= 1:
        return False
    return not (moaas is not None and moaas < 5)


def alert_within_window(
    observation: dict[str, Any] | None, reading_at: str, window_minutes: float
) -> bool | None:
    """Consciousness for a vital-signs set taken at ``reading_at`` (UTC text): from the latest
    observation at or before it, and only if that observation is at most ``window_minutes``
    older. An older one, or none, is "not assessed" (None), which makes the set incomplete."""
    if observation is None or observation["observed_at"] > reading_at:
        return None
    age = from_iso(reading_at) - from_iso(observation["observed_at"])
    if age > timedelta(minutes=window_minutes):
        return None
    return alert_from_observation(observation.get("moaas"), observation.get("dissociation"))


@dataclass(frozen=True)
class ScaleChoice(Entry):
    """A clinician's choice of SpO₂ scale for this patient, with the reason: Scale 2 only for
    confirmed hypercapnic respiratory failure (RCP NEWS2 2017), so the reason is required both
    ways and kept (append-only; the newest choice at or before a reading is the one in force)."""

    table: ClassVar[str] = "news2_scale_choices"
    kind: ClassVar[str] = "news2_scale"
    scale: int
    reason: str
    observed_at: datetime

    def validate(self, ref: Reference, now: datetime) -> None:
        errors = Collector()
        if self.scale not in SCALES:
            errors.add("scale", "Choose SpO₂ Scale 1 or Scale 2")
        if not self.reason.strip():
            errors.add(
                "reason",
                "Give the reason for the SpO₂ scale (e.g. hypercapnic respiratory failure with "
                "a prescribed target of 88–92 %)",
            )
        check_time(errors, "observed_at", self.observed_at, now)
        errors.raise_if_any()

    def columns(self) -> dict[str, Any]:
        return {"scale": int(self.scale), "reason": self.reason.strip()}


def scale_in_force(choices: list[dict[str, Any]], at: str) -> Scale:
    """The SpO₂ scale chosen for a reading at ``at`` (UTC text): the newest current choice at or
    before it; Scale 1 when none (the RCP default for every patient not prescribed Scale 2)."""
    found: Scale = 1
    for row in sorted(choices, key=lambda r: (r["observed_at"], r["id"])):
        if row["observed_at"] <= at and row["scale"] in SCALES:
            found = row["scale"]
    return found


def scale_label(scale: int) -> str:
    """The caption beside the score: "NEWS2" on Scale 1, "NEWS2 (Scale 2)" on Scale 2."""
    return "NEWS2 (Scale 2)" if scale == 2 else "NEWS2"
