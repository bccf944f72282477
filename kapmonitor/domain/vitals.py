"""The vital-sign registry: every vital sign the app records, declared once.

Why one table: the list of vital signs used to live in six places (the entry record, the store's
alarm effects, the protocol's parameters, the live chart, the PDF chart, the FHIR export), and
adding one meant touching about eighteen files that had already drifted apart. Every layer now
loops over :data:`VITAL_SIGNS`: the entry form and its validation, the store's columns and
alarm effects, the protocol's alarm parameters, the big numbers, the chart lanes, the PDF, CSV,
JSON and FHIR exports.

The *plausible range* (what entry refuses as impossible) is not repeated here: it is an editable
clinic default in ``resources/plausibility.json`` under the same key, read through
:class:`kapmonitor.domain.reference.Reference`; a test keeps the two in step.

To add a vital sign: one :class:`VitalSign` below, its plausibility entry, a schema migration
adding the column, and (if it is charted) a style in the chart style. docs/vital-signs.md walks
through it with end-tidal CO₂ as the example.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "CHART_LANES",
    "VITAL_KEYS",
    "VITAL_SIGNS",
    "ChartLane",
    "VitalSign",
    "charted_vitals",
    "lane",
    "vital",
]


@dataclass(frozen=True)
class ChartLane:
    """One horizontal band of the trend chart, shared by the vitals drawn on the same scale.

    The axis range is fixed, not automatic: a chart whose scale jumps as values arrive hides a
    trend from someone glancing at it across the room."""

    key: str
    title: str  # the axis title, with units
    y_min: float
    y_max: float
    ticks: tuple[float, ...]  # major ticks, always labelled
    stretch: int  # relative height


#: The chart's lanes, top to bottom. The last lane carries the sedation and dissociation scores,
#: which are observations rather than vital signs (their series are declared in the chart style).
CHART_LANES: tuple[ChartLane, ...] = (
    ChartLane(
        "haemodynamics",
        "BP mmHg · HR /min",
        20.0,
        220.0,
        tuple(float(v) for v in range(40, 221, 40)),
        45,
    ),
    ChartLane("oxygenation", "SpO₂ %", 70.0, 100.0, (70.0, 80.0, 90.0, 100.0), 18),
    ChartLane("ventilation", "RR /min · EtCO₂ mmHg", 0.0, 60.0, (0.0, 20.0, 40.0, 60.0), 18),
    ChartLane("sedation", "MOAA/S · Dissoc.", -0.4, 5.4, (0.0, 1.0, 2.0, 3.0, 4.0, 5.0), 19),
)


@dataclass(frozen=True)
class VitalSign:
    """Everything the app needs to know about one vital sign, whichever layer asks."""

    key: str  # the column in ``vitals``, the record field, the protocol's alarm parameter
    label: str  # "Heart rate": form labels, alarm messages, report headings
    short: str  # "HR": the big number's caption, table headers, the chart legend
    unit: str  # as shown: "/min", "mmHg", "°C"
    ucum: str  # UCUM code for exports: "/min", "mm[Hg]", "Cel", "%"
    decimals: int  # 0: stored and shown as an integer; 1: one decimal place
    loinc: str  # the LOINC code of the observation
    loinc_display: str
    field: str  # the entry form's field (systolic and diastolic share "bp")
    lane: str | None = None  # the chart lane key, or None when not charted
    news2: str | None = None  # the NEWS2 parameter it scores, if any
    fhir_profile: str | None = None  # the FHIR vital-signs profile id, if the vital has one
    alarm: bool = True  # protocols may set alarm limits on it
    alarm_label: str = ""  # the name in alarm messages and protocol labels, if not ``label``

    @property
    def alarm_name(self) -> str:
        """The name an alarm banner uses: short enough to read across the room ("SpO₂")."""
        return self.alarm_label or self.label

    @property
    def is_integer(self) -> bool:
        return self.decimals == 0

    def parse(self, value: object) -> int | float | None:
        """A stored or imported value in the vital's own type (integers stay integers)."""
        if value is None or value == "":
            return None
        number = float(value)  # type: ignore[arg-type]
        return round(number) if self.is_integer else round(number, self.decimals)

    def format(self, value: float | None) -> str:
        """The value as the window and the reports print it, without the unit."""
        if value is None:
            return ""
        return f"{value:.{self.decimals}f}"


#: The registry, in the order the form, the big numbers and the reports show them.
VITAL_SIGNS: tuple[VitalSign, ...] = (
    VitalSign(
        "sbp", "Systolic blood pressure", "SBP", "mmHg", "mm[Hg]", 0,
        "8480-6", "Systolic blood pressure", "bp", lane="haemodynamics", news2="sbp",
        alarm_label="Systolic BP",
    ),
    VitalSign(
        "dbp", "Diastolic blood pressure", "DBP", "mmHg", "mm[Hg]", 0,
        "8462-4", "Diastolic blood pressure", "bp", lane="haemodynamics",
        alarm_label="Diastolic BP",
    ),
    VitalSign(
        "hr", "Heart rate", "HR", "/min", "/min", 0,
        "8867-4", "Heart rate", "hr", lane="haemodynamics", news2="hr", fhir_profile="heartrate",
    ),
    VitalSign(
        "spo2", "Oxygen saturation", "SpO₂", "%", "%", 0,
        "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "spo2",
        lane="oxygenation", news2="spo2", fhir_profile="oxygensat", alarm_label="SpO₂",
    ),
    VitalSign(
        "rr", "Respiratory rate", "RR", "/min", "/min", 0,
        "9279-1", "Respiratory rate", "rr", lane="ventilation", news2="rr",
        fhir_profile="resprate",
    ),
    VitalSign(
        "etco2", "End-tidal CO₂", "EtCO₂", "mmHg", "mm[Hg]", 0,
        "19891-1", "Carbon dioxide [Partial pressure] in Exhaled gas --at end expiration",
        "etco2", lane="ventilation", alarm_label="EtCO₂",
    ),
    VitalSign(
        "temp_c", "Temperature", "Temp", "°C", "Cel", 1,
        "8310-5", "Body temperature", "temp_c", news2="temp", fhir_profile="bodytemp",
    ),
)  # fmt: skip

VITAL_KEYS: tuple[str, ...] = tuple(v.key for v in VITAL_SIGNS)

_BY_KEY = {v.key: v for v in VITAL_SIGNS}
_LANES = {lane.key: lane for lane in CHART_LANES}


def vital(key: str) -> VitalSign:
    """The registry entry for ``key``; a KeyError names the unknown key."""
    return _BY_KEY[key]


def lane(key: str) -> ChartLane:
    return _LANES[key]


def charted_vitals() -> Iterator[VitalSign]:
    """The vitals drawn on the trend chart, in registry order."""
    return (v for v in VITAL_SIGNS if v.lane is not None)
