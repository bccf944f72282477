"""Discharge readiness: modified Aldrete or PADSS, a short checklist, and the minimum time.

A patient leaves a KAP session only when several independent things are true at once (modified
Aldrete 1995; ASA 2018 sedation guidelines): a passing score, every checklist item confirmed, the
protocol's minimum monitoring time since the first dose, and a vitals set taken before discharge.
``readiness`` therefore lists *every* unmet condition in plain words rather than the first one, so
the clinician sees the whole gap.

Scores never guess: an item whose input is missing scores 0 and its ``basis`` says why, and the
PADSS surgical-bleeding item is recorded as not applicable (``points=None``) so its maximum is 8,
shown as such, never silently rescaled to 10. Percent changes are compared in whole numbers
(``|now − baseline| × 100`` against ``limit × baseline``) so the boundaries are exact.

INTERFACE (stable; implementation owned by the scores helper):
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

ScoreName = Literal["aldrete", "padss"]

# Checklist items a clinician confirms (ASA 2018 sedation discharge criteria); codes are stored.
CHECKLIST: tuple[tuple[str, str], ...] = (
    ("escort_present", "Responsible adult escort present"),
    ("oriented", "Alert and oriented"),
    ("ambulating", "Walking steadily"),
    ("minimal_nausea", "Little or no nausea"),
    ("instructions_given", "Written instructions given (no driving until next day, etc.)"),
)

_SCORE_TITLES: dict[str, str] = {"aldrete": "Modified Aldrete", "padss": "PADSS"}
_ITEM_MAXIMUM = 2


@dataclass(frozen=True)
class ScoreItem:
    code: str  # e.g. "activity", "circulation", "surgical_bleeding"
    label: str
    points: int | None  # None = not applicable (PADSS surgical bleeding in KAP)
    basis: str  # why, e.g. "SBP 132 is 8 % from baseline 122"


@dataclass(frozen=True)
class ScoreResult:
    name: ScoreName
    items: tuple[ScoreItem, ...]
    total: int
    maximum: int  # sum of applicable items' maxima (PADSS in KAP: 8, never silently rescaled)
    pass_mark: int
    passed: bool


@dataclass(frozen=True)
class AldreteInputs:
    activity: int  # 2 moves 4 limbs, 1 two limbs, 0 none (clinician)
    respiration: int  # 2 breathes deeply and coughs, 1 dyspnoea/limited, 0 apnoeic (clinician)
    sbp_now: int | None
    sbp_baseline: int | None  # circulation from the % change
    moaas: int | None  # consciousness: 5 → 2, 3–4 → 1, ≤ 2 → 0
    spo2: int | None
    on_oxygen: bool


@dataclass(frozen=True)
class PadssInputs:
    vitals_now: dict[str, int | None]  # sbp, hr
    vitals_baseline: dict[str, int | None]
    ambulation: int  # 2 steady, 1 needs help, 0 unable / dizzy (clinician)
    nausea_vomiting: int  # 2 minimal, 1 moderate treated, 0 severe (clinician)
    pain_vas: int  # 0–10; 0–3 → 2, 4–6 → 1, 7–10 → 0


# --- shared helpers ------------------------------------------------------------------------


def _clinician_item(
    code: str, label: str, points: int, meanings: tuple[str, str, str]
) -> ScoreItem:
    """An item the clinician rates 0–2 directly; ``meanings`` are for 0, 1 and 2."""
    if isinstance(points, bool) or not isinstance(points, int) or not 0 <= points <= 2:
        raise ValueError(f"{label} must be 0, 1 or 2; got {points!r}")
    return ScoreItem(code, label, points, f"Clinician: {meanings[points]}")


def _pct_text(now: int, baseline: int) -> str:
    """The change as a percentage, one decimal only when it is not whole (so 20.4 % is not shown
    as "20 %" beside a score that treats it as above 20 %)."""
    pct = abs(now - baseline) * 100 / baseline
    text = f"{pct:.1f}".rstrip("0").rstrip(".")
    return f"{text} %"


def _within(now: int, baseline: int, percent: int) -> bool:
    """|now − baseline| is at most ``percent`` % of baseline, compared exactly in integers."""
    return abs(now - baseline) * 100 <= percent * baseline


def _comparable(now: int | None, baseline: int | None) -> bool:
    return now is not None and baseline is not None and baseline > 0


def _result(name: ScoreName, items: tuple[ScoreItem, ...], pass_mark: int) -> ScoreResult:
    applicable = [item for item in items if item.points is not None]
    maximum = _ITEM_MAXIMUM * len(applicable)
    if isinstance(pass_mark, bool) or not 0 <= pass_mark <= maximum:
        raise ValueError(
            f"{_SCORE_TITLES[name]} pass mark {pass_mark} is outside 0–{maximum} "
            f"(the maximum of the applicable items); set a pass mark out of {maximum}"
        )
    total = sum(item.points or 0 for item in applicable)
    return ScoreResult(name, items, total, maximum, pass_mark, total >= pass_mark)


# --- modified Aldrete ----------------------------------------------------------------------


def _aldrete_circulation(sbp_now: int | None, sbp_baseline: int | None) -> ScoreItem:
    label = "Circulation"
    if not _comparable(sbp_now, sbp_baseline):
        return ScoreItem("circulation", label, 0, "no BP to compare (pre-dose and current SBP)")
    assert sbp_now is not None and sbp_baseline is not None
    change = f"SBP {sbp_now} is {_pct_text(sbp_now, sbp_baseline)} from pre-dose {sbp_baseline}"
    if _within(sbp_now, sbp_baseline, 20):
        return ScoreItem("circulation", label, 2, f"{change}: within ±20 %")
    if abs(sbp_now - sbp_baseline) * 100 < 50 * sbp_baseline:
        return ScoreItem("circulation", label, 1, f"{change}: above 20 % and below 50 %")
    return ScoreItem("circulation", label, 0, f"{change}: 50 % or more")


def _aldrete_consciousness(moaas: int | None) -> ScoreItem:
    label = "Consciousness"
    if moaas is None:
        return ScoreItem("consciousness", label, 0, "not assessed (no MOAA/S)")
    if moaas >= 5:
        return ScoreItem("consciousness", label, 2, f"MOAA/S {moaas}: fully awake")
    if moaas >= 3:
        return ScoreItem("consciousness", label, 1, f"MOAA/S {moaas}: arousable on calling")
    return ScoreItem("consciousness", label, 0, f"MOAA/S {moaas}: not responding to voice")


def _aldrete_spo2(spo2: int | None, on_oxygen: bool) -> ScoreItem:
    """Table: > 92 % on air → 2; needs O₂ to keep > 90 % → 1; < 90 % even with O₂ → 0.

    Values the table leaves open score 0, the cautious side: SpO₂ ≤ 92 % on air (a patient who
    would need oxygen is not given the oxygen point without it) and exactly 90 % on oxygen (not
    "kept above 90 %")."""
    label = "SpO₂"
    if spo2 is None:
        return ScoreItem("spo2", label, 0, "not measured")
    if not on_oxygen:
        if spo2 > 92:
            return ScoreItem("spo2", label, 2, f"SpO₂ {spo2} % on air: above 92 %")
        return ScoreItem(
            "spo2",
            label,
            0,
            f"SpO₂ {spo2} % on air is not above 92 %: scored 0 (the table gives 1 only when "
            "oxygen keeps it above 90 %)",
        )
    if spo2 > 90:
        return ScoreItem("spo2", label, 1, f"SpO₂ {spo2} % on oxygen: needs O₂ to keep > 90 %")
    return ScoreItem("spo2", label, 0, f"SpO₂ {spo2} % on oxygen: not above 90 % even with O₂")


def aldrete(inputs: AldreteInputs, pass_mark: int) -> ScoreResult:
    """Modified Aldrete, five items 0–2, maximum 10 (Aldrete 1995)."""
    items = (
        _clinician_item(
            "activity",
            "Activity",
            inputs.activity,
            ("moves no limbs", "moves 2 limbs", "moves 4 limbs"),
        ),
        _clinician_item(
            "respiration",
            "Respiration",
            inputs.respiration,
            ("apnoeic", "dyspnoea or limited breathing", "breathes deeply and coughs"),
        ),
        _aldrete_circulation(inputs.sbp_now, inputs.sbp_baseline),
        _aldrete_consciousness(inputs.moaas),
        _aldrete_spo2(inputs.spo2, inputs.on_oxygen),
    )
    return _result("aldrete", items, pass_mark)


# --- PADSS ---------------------------------------------------------------------------------

_PADSS_VITALS = (("sbp", "SBP"), ("hr", "HR"))


def _padss_vitals(now: dict[str, int | None], baseline: dict[str, int | None]) -> ScoreItem:
    """The larger % change of SBP and HR from baseline: ≤ 20 % → 2, ≤ 40 % → 1, > 40 % → 0.
    Both must be comparable; a missing one scores 0 rather than being assumed normal."""
    label = "Vital signs"
    absent = [
        name for key, name in _PADSS_VITALS if not _comparable(now.get(key), baseline.get(key))
    ]
    if absent:
        return ScoreItem(
            "vital_signs", label, 0, f"no {' or '.join(absent)} to compare with baseline"
        )
    changes: list[tuple[int, int, str]] = []
    for key, name in _PADSS_VITALS:
        value, base = now[key], baseline[key]
        assert value is not None and base is not None
        changes.append((value, base, f"{name} {value} is {_pct_text(value, base)} from {base}"))
    basis = "; ".join(text for _, _, text in changes)
    if all(_within(value, base, 20) for value, base, _ in changes):
        return ScoreItem("vital_signs", label, 2, f"{basis}: all within 20 %")
    if all(_within(value, base, 40) for value, base, _ in changes):
        return ScoreItem("vital_signs", label, 1, f"{basis}: largest change 20–40 %")
    return ScoreItem("vital_signs", label, 0, f"{basis}: a change above 40 %")


def _padss_pain(vas: int) -> ScoreItem:
    label = "Pain"
    if isinstance(vas, bool) or not isinstance(vas, int) or not 0 <= vas <= 10:
        raise ValueError(f"Pain VAS must be 0–10; got {vas!r}")
    if vas <= 3:
        return ScoreItem("pain", label, 2, f"VAS {vas}: 0–3")
    if vas <= 6:
        return ScoreItem("pain", label, 1, f"VAS {vas}: 4–6")
    return ScoreItem("pain", label, 0, f"VAS {vas}: 7–10")


def padss(inputs: PadssInputs, pass_mark: int) -> ScoreResult:
    """PADSS with surgical bleeding not applicable in KAP: maximum 8 (Chung et al. 1995)."""
    items = (
        _padss_vitals(inputs.vitals_now, inputs.vitals_baseline),
        _clinician_item(
            "ambulation",
            "Ambulation",
            inputs.ambulation,
            ("unable to walk or dizzy", "walks with help", "steady gait, no dizziness"),
        ),
        _clinician_item(
            "nausea_vomiting",
            "Nausea and vomiting",
            inputs.nausea_vomiting,
            ("severe", "moderate, treated", "minimal"),
        ),
        _padss_pain(inputs.pain_vas),
        ScoreItem("surgical_bleeding", "Surgical bleeding", None, "not applicable in KAP"),
    )
    return _result("padss", items, pass_mark)


# --- readiness -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reasons: tuple[str, ...]  # every unmet condition, in plain words
    minutes_monitored: float | None
    minimum_minutes: int
    score: ScoreResult | None
    checklist_missing: tuple[str, ...] = field(default_factory=tuple)


def _time_reason(
    first_dose: datetime | None, now: datetime, minimum_minutes: int
) -> tuple[float | None, str | None]:
    if first_dose is None:
        return None, "No dose recorded: the minimum monitoring time counts from the first dose"
    minutes = (now - first_dose).total_seconds() / 60
    if minutes >= minimum_minutes:
        return minutes, None
    # Whole minutes rounded down, so 119.6 min never reads as "120 of the required 120".
    shown = int(minutes) if minutes >= 0 else 0
    return minutes, (
        f"Monitored {shown} min of the required {minimum_minutes} min since the first dose"
    )


def _score_reason(score: ScoreResult | None) -> str | None:
    if score is None:
        return "No discharge score recorded"
    if score.passed:
        return None
    return (
        f"{_SCORE_TITLES[score.name]} score {score.total}/{score.maximum} is below the pass mark "
        f"{score.pass_mark}"
    )


VITALS_REASON = "No vitals before discharge: take a vitals set"


def readiness(
    score: ScoreResult | None,
    checklist: dict[str, bool],
    first_dose: datetime | None,
    now: datetime,
    minimum_minutes: int,
    recent_vitals: bool,
    blockers: tuple[str, ...] = (),
) -> Readiness:
    """Ready only with: a passing score, every checklist item, at least ``minimum_minutes``
    since the first dose, a recent vitals set (the before-discharge check), and no
    ``blockers`` from the discharge gate (:mod:`kapmonitor.domain.discharge_gate`: alarms,
    open adverse events, item 9, sedation and dissociation, stale inputs). The gate's reasons
    come first: they are the ones that keep a patient safe."""
    minutes, time_reason = _time_reason(first_dose, now, minimum_minutes)
    unchecked = tuple(code for code, _ in CHECKLIST if checklist.get(code) is not True)
    labels = dict(CHECKLIST)
    reasons = list(blockers)
    reasons += [reason for reason in (time_reason, _score_reason(score)) if reason is not None]
    reasons += [f"Checklist: {labels[code].lower()} not confirmed" for code in unchecked]
    if not recent_vitals and not any(r.startswith("No complete vitals set") for r in blockers):
        reasons.append(VITALS_REASON)
    return Readiness(
        ready=not reasons,
        reasons=tuple(reasons),
        minutes_monitored=minutes,
        minimum_minutes=minimum_minutes,
        score=score,
        checklist_missing=unchecked,
    )
