"""NEWS2 (Royal College of Physicians, 2017) for a vital-signs set, shown as information only.

In KAP, dissociation is expected and is not delirium; the score treats any dissociation or a MOAA/S
below 5 as "new confusion" (3 points) per the RCP NEWS2 chart (2017), so it reads high during the
peak by design — the window says so (``KAP_CAVEAT``).

The bands below are the Royal College of Physicians NEWS2 chart (2017, SpO₂ scale 1). They are
written as upper bounds ("≤ 8 → 3, ≤ 11 → 1, …") so that every edge of the chart appears once and a
value between two whole numbers (e.g. a temperature of 36.05) falls on the same side as the chart's
printed range it follows. A parameter that was not measured scores 0 and is listed in ``missing``,
so an incomplete score is never mistaken for a reassuring one.

INTERFACE (stable; implementation owned by the scores helper):
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Band = Literal["routine", "low", "low-medium", "medium", "high"]
KAP_CAVEAT = (
    "NEWS2 is shown for information. Dissociation during KAP scores as new confusion (3), so a "
    "raised score at the drug's peak is expected; act on the protocol's alarms."
)

# (upper bound inclusive, points); the last row has no upper bound. RCP NEWS2 chart (2017).
_RR: tuple[tuple[float | None, int], ...] = ((8, 3), (11, 1), (20, 0), (24, 2), (None, 3))
_SPO2_SCALE1: tuple[tuple[float | None, int], ...] = ((91, 3), (93, 2), (95, 1), (None, 0))
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
    total: int
    band: Band
    parts: dict[str, int]  # rr, spo2, oxygen, sbp, hr, consciousness, temp -> points
    missing: tuple[str, ...]  # parameters not measured (scored as 0, flagged incomplete)

    @property
    def complete(self) -> bool:
        return not self.missing


def _points(value: float, table: tuple[tuple[float | None, int], ...]) -> int:
    for upper, points in table:
        if upper is None or value <= upper:
            return points
    raise AssertionError("a NEWS2 table must end with an open row")  # pragma: no cover


def score(
    rr: int | None,
    spo2: int | None,
    on_oxygen: bool,
    sbp: int | None,
    hr: int | None,
    alert: bool | None,
    temp_c: float | None,
) -> News2:
    """NEWS2 from the RCP table (SpO₂ scale 1). ``alert`` None = consciousness not assessed."""
    measured: dict[str, tuple[float | None, tuple[tuple[float | None, int], ...]]] = {
        "rr": (rr, _RR),
        "spo2": (spo2, _SPO2_SCALE1),
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
    parts["oxygen"] = _ON_OXYGEN_POINTS if on_oxygen else 0
    if alert is None:
        missing.append("consciousness")
    parts["consciousness"] = 0 if alert is None or alert else _NOT_ALERT_POINTS
    order = ("rr", "spo2", "oxygen", "sbp", "hr", "consciousness", "temp")
    parts = {name: parts[name] for name in order}
    total = sum(parts.values())
    return News2(
        total=total,
        band=band(total, parts),
        parts=parts,
        missing=tuple(name for name in order if name in missing),
    )


def band(total: int, parts: dict[str, int]) -> Band:
    """0 routine; 1–4 low; a 3 in any single parameter low-medium; 5–6 medium; ≥7 high."""
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
