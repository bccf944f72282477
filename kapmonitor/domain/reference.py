"""Reference data loaded from ``resources/``: pick-lists, scales and plausibility ranges.

Clinical numbers and vocabularies are data a clinic can read and edit, never constants in code.
Scale files found in the user's config folder (``scales/*.json``) are added to the shipped ones, so
a clinic can add a scale without a new build.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any


class ReferenceDataError(Exception):
    """A reference file is missing or malformed; the message names the file and the problem."""


@dataclass(frozen=True)
class Choice:
    code: str
    label: str
    description: str = ""
    source: str = ""  # where the entry comes from (e.g. the label naming an adverse effect)


@dataclass(frozen=True)
class ScaleLevel:
    value: int
    label: str
    description: str


@dataclass(frozen=True)
class Scale:
    id: str
    name: str
    title: str
    kind: str  # "ordinal" (pick one level) or "total" (a number between min and max)
    source: str
    levels: tuple[ScaleLevel, ...] = ()
    minimum: int = 0
    maximum: int = 0
    features: tuple[Choice, ...] = ()
    optional: bool = True

    def values(self) -> list[int]:
        if self.kind == "ordinal":
            return [lvl.value for lvl in self.levels]
        return list(range(self.minimum, self.maximum + 1))

    def level(self, value: int) -> ScaleLevel | None:
        return next((lvl for lvl in self.levels if lvl.value == value), None)

    def describe(self, value: int | None) -> str:
        if value is None:
            return "—"
        lvl = self.level(value)
        return lvl.label if lvl else str(value)

    def validate(self, value: int) -> None:
        if self.kind == "ordinal":
            if value not in self.values():
                allowed = ", ".join(str(v) for v in self.values())
                raise ValueError(f"{self.name} must be one of {allowed}; got {value}")
        elif not self.minimum <= value <= self.maximum:
            raise ValueError(
                f"{self.name} total must be between {self.minimum} and {self.maximum}; got {value}"
            )


@dataclass(frozen=True)
class Limit:
    key: str
    label: str
    unit: str
    minimum: float
    maximum: float
    source: str


@dataclass(frozen=True)
class Reference:
    catalogues: dict[str, tuple[Choice, ...]]
    scales: dict[str, Scale]
    limits: dict[str, Limit]
    sources: dict[str, str] = field(default_factory=dict)

    def choices(self, name: str) -> tuple[Choice, ...]:
        return self.catalogues[name]

    def codes(self, name: str) -> set[str]:
        return {str(c.code) for c in self.catalogues[name]}

    def label(self, catalogue: str, code: str | int | None) -> str:
        if code is None:
            return ""
        for choice in self.catalogues[catalogue]:
            if str(choice.code) == str(code):
                return choice.label
        return str(code)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ReferenceDataError(f"{path}: file not found") from exc
    except json.JSONDecodeError as exc:
        raise ReferenceDataError(
            f"{path}: line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc


def parse_scale(data: Any, origin: str) -> Scale:
    """Build a scale from its JSON, refusing what a form could not render safely."""
    if not isinstance(data, dict):
        raise ReferenceDataError(f"{origin}: a scale must be a JSON object")
    try:
        kind = data["kind"]
        if kind not in ("ordinal", "total"):
            raise ReferenceDataError(f"{origin}: kind must be 'ordinal' or 'total', not {kind!r}")
        if not str(data.get("source", "")).strip():
            raise ReferenceDataError(f"{origin}: every scale needs a 'source' label")
        levels = tuple(
            ScaleLevel(int(lvl["value"]), str(lvl["label"]), str(lvl.get("description", "")))
            for lvl in data.get("levels", [])
        )
        if kind == "ordinal" and not levels:
            raise ReferenceDataError(f"{origin}: an ordinal scale needs 'levels'")
        if len({lvl.value for lvl in levels}) != len(levels):
            raise ReferenceDataError(f"{origin}: two levels share a value")
        minimum = int(data.get("min", min((lvl.value for lvl in levels), default=0)))
        maximum = int(data.get("max", max((lvl.value for lvl in levels), default=0)))
        if minimum > maximum:
            raise ReferenceDataError(f"{origin}: min {minimum} is above max {maximum}")
        features = tuple(Choice(str(f["id"]), str(f["label"])) for f in data.get("features", []))
        return Scale(
            id=str(data["id"]),
            name=str(data["name"]),
            title=str(data.get("title", data["name"])),
            kind=kind,
            source=str(data["source"]),
            levels=levels,
            minimum=minimum,
            maximum=maximum,
            features=features,
            optional=bool(data.get("optional", True)),
        )
    except KeyError as exc:
        raise ReferenceDataError(f"{origin}: missing field {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise ReferenceDataError(f"{origin}: {exc}") from exc


def _load_scales(folders: list[Path]) -> dict[str, Scale]:
    scales: dict[str, Scale] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            scale = parse_scale(_read_json(path), str(path))
            scales[scale.id] = scale
    return scales


def _load_catalogues(path: Path) -> dict[str, tuple[Choice, ...]]:
    data = _read_json(path)
    out: dict[str, tuple[Choice, ...]] = {}
    for name, items in data.items():
        if name.startswith("_"):
            continue
        out[name] = tuple(
            Choice(
                code=item["code"] if isinstance(item["code"], str) else str(item["code"]),
                label=item["label"],
                description=item.get("description", ""),
                source=item.get("source", ""),
            )
            for item in items
        )
    return out


def _load_limits(path: Path) -> dict[str, Limit]:
    data = _read_json(path)
    default_source = data.get("source", "")
    limits: dict[str, Limit] = {}
    for key, spec in data["limits"].items():
        lo, hi = float(spec["min"]), float(spec["max"])
        if lo > hi:
            raise ReferenceDataError(f"{path}: {key}: min {lo} is above max {hi}")
        limits[key] = Limit(
            key, spec["label"], spec["unit"], lo, hi, spec.get("source", default_source)
        )
    return limits


def load_reference(resources: Path, user_config: Path | None = None) -> Reference:
    folders = [resources / "scales"]
    if user_config is not None:
        folders.append(user_config / "scales")
    return Reference(
        catalogues=_load_catalogues(resources / "catalogues.json"),
        scales=_load_scales(folders),
        limits=_load_limits(resources / "plausibility.json"),
    )


@cache
def default_reference() -> Reference:
    """The shipped reference data plus the clinic's own scales; loaded once per process."""
    from kapmonitor.paths import resources_dir, user_config_dir

    return load_reference(resources_dir(), user_config_dir())
