"""Device codes and units onto the vital-sign registry, read from ``resources/device_codes.json``.

Why data: each monitor family speaks its own mix of LOINC and IEEE 11073 (MDC) codes and unit
spellings, and a clinic meeting a new gateway should add a row, not change code. The registry
(:mod:`kapmonitor.domain.vitals`) stays the only list of vital signs: every mapped code names a
registry key (checked on load), and every value leaves here in the registry's own unit, converted
where the device used another (kPa -> mmHg for EtCO₂, °F -> °C). A unit this table does not know
is refused, never guessed: 37 in °F is not 37 in °C.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from kapmonitor.domain.vitals import VITAL_KEYS, vital
from kapmonitor.paths import resources_dir

__all__ = ["CodeEntry", "CodeMap", "MappingError", "default_code_map"]


class MappingError(ValueError):
    """A code or unit the map cannot turn into a registry value; the message is the reason."""


@dataclass(frozen=True)
class CodeEntry:
    system: str  # "LN" or "MDC", the map's canonical names
    code: str
    name: str
    vital: str | None  # None: known (acknowledged) but not a registry vital, not stored
    source: str


@dataclass(frozen=True)
class UnitRule:
    factor: float
    offset: float


class CodeMap:
    """Lookup of an observation code (any spelling of its coding system) and unit conversion."""

    def __init__(self, data: dict) -> None:
        self._systems: dict[str, str] = {}
        for canonical, aliases in data["systems"].items():
            for alias in aliases:
                self._systems[alias.upper()] = canonical
        self._by_code: dict[tuple[str, str], CodeEntry] = {}
        self._by_name: dict[str, CodeEntry] = {}
        for row in data["codes"]:
            entry = CodeEntry(row["system"], row["code"], row["name"], row["vital"], row["source"])
            if entry.vital is not None and entry.vital not in VITAL_KEYS:
                raise ValueError(f"device code {entry.code} maps to unknown vital {entry.vital}")
            if entry.system not in data["systems"]:
                raise ValueError(f"device code {entry.code} has unknown system {entry.system}")
            self._by_code[(entry.system, entry.code)] = entry
            if entry.name.startswith("MDC_"):
                self._by_name[entry.name.upper()] = entry
        self._units: dict[str, dict[str, UnitRule]] = {}
        for key, rules in data["units"].items():
            if key not in VITAL_KEYS:
                raise ValueError(f"unit rules for unknown vital {key}")
            if isinstance(rules, str):  # "dbp": "sbp" shares sbp's rules
                rules = data["units"][rules]
            self._units[key] = {
                r["unit"].casefold(): UnitRule(float(r["factor"]), float(r.get("offset", 0.0)))
                for r in rules
            }

    @classmethod
    def load(cls, path: Path | None = None) -> CodeMap:
        path = path or resources_dir() / "device_codes.json"
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def lookup(self, identifier: str, text: str = "", system: str = "") -> CodeEntry | None:
        """The entry for an OBX-3 (identifier ^ text ^ coding system), or None when unknown.

        A coding system the map does not name is tried as LOINC (codes with a dash) or MDC (all
        digits); an MDC reference id in the text ("MDC_PULS_OXIM_SAT_O2") is enough on its own.
        """
        identifier = identifier.strip()
        canonical = self._systems.get(system.strip().upper())
        if canonical is None and identifier:
            canonical = "LN" if "-" in identifier else "MDC" if identifier.isdigit() else None
        if canonical is not None and (canonical, identifier) in self._by_code:
            return self._by_code[(canonical, identifier)]
        for candidate in (text, identifier):
            entry = self._by_name.get(candidate.strip().upper())
            if entry is not None:
                return entry
        return None

    def convert(self, vital_key: str, value: float, unit_id: str, unit_text: str = "") -> float:
        """``value`` in the registry's unit for ``vital_key``; MappingError if the unit is unknown.

        OBX-6 carries an identifier and a text (``266016^MDC_DIM_MMHG^MDC``, ``mm[Hg]^mmHg^UCUM``):
        either is enough.
        """
        rules = self._units.get(vital_key, {})
        for candidate in (unit_id, unit_text):
            rule = rules.get(candidate.strip().casefold())
            if rule is not None and (candidate.strip() or not (unit_id or unit_text).strip()):
                converted = value * rule.factor + rule.offset
                return round(converted, vital(vital_key).decimals + 2)
        shown = unit_id or unit_text or "none"
        raise MappingError(f"unit {shown!r} is not known for {vital(vital_key).short}")


@cache
def default_code_map() -> CodeMap:
    """The bundled table, read once."""
    return CodeMap.load()
