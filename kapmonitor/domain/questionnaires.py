"""Patient self-report questionnaires defined as data in ``resources/questionnaires/``.

Questionnaires are clinical content, so they live in JSON files a clinic can read (and add to, in
its config folder) rather than in code; the code only renders, totals and bands them. A file that
could lead to a wrong total or an unlabelled band is refused whole, naming the file and the field.

File format (one questionnaire per ``*.json`` file; see ``docs/questionnaires.md``)::

    {
      "format": 1,                        # optional; only 1 is understood
      "id": "phq9",                       # unique; a later folder's file replaces the same id
      "title": "Patient Health Questionnaire (PHQ-9)",
      "instructions": "Over the last 2 weeks, ...",
      "source": "Kroenke et al. 2001 ...", # required, non-empty: where the wording comes from
      "scored": true,                     # optional, default true; false = no total, no bands
      "options": [{"value": 0, "label": "Not at all"}, ...],   # default options of every item
      "items": [
        {"id": "q1", "text": "Little interest or pleasure in doing things"},
        {"id": "q9", "text": "...", "alert_if_at_least": 1, "alert": "Tell the clinician"},
        {"id": "intensity", "text": "...",
         "range": {"min": 0, "max": 10, "anchors": {"0": "Not at all", "10": "Extremely"}}},
        {"id": "comments", "text": "Anything you want to tell us?", "free_text": true}
      ],
      "bands": [{"min": 0, "max": 4, "label": "minimal depression"}, ...]
    }

An item takes its answers from, in order: its own ``options`` list, its ``range`` (whole numbers
``min``..``max``; an anchor's text is added to that number's label), or the file's ``options``.
``free_text`` items have no options and are never totalled. For a scored questionnaire the bands
must cover every possible total exactly once, from the lowest to the highest possible total.
``alert_if_at_least`` marks a safety item (PHQ-9 item 9): ``safety_flags`` reports it when the
answer is at or above that value, with the item's ``alert`` text.

INTERFACE (stable; implementation owned by the scores helper):
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
_DEFAULT_ALERT = "Tell the clinician about this answer now."


class QuestionnaireError(ValueError):
    """A questionnaire file is malformed; the message names the file and field."""


@dataclass(frozen=True)
class Option:
    value: int
    label: str


@dataclass(frozen=True)
class Item:
    id: str
    text: str
    options: tuple[Option, ...]  # empty for a free-text item
    free_text: bool = False
    # Safety item: an answer ≥ this is reported by ``safety_flags`` (None = not a safety item).
    alert_if_at_least: int | None = None
    alert: str = ""  # what the clinician is told when the safety item fires

    def values(self) -> tuple[int, ...]:
        return tuple(option.value for option in self.options)


@dataclass(frozen=True)
class Band:
    minimum: int
    maximum: int
    label: str  # e.g. "moderate depression"


@dataclass(frozen=True)
class Questionnaire:
    id: str  # phq9, gad7, post_session
    title: str
    instructions: str  # shown to the patient before the first item
    items: tuple[Item, ...]
    bands: tuple[Band, ...]
    source: str
    scored: bool = True

    def scored_items(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if not item.free_text)

    def total(self, answers: dict[str, int | str]) -> int | None:
        """Sum of the scored items; None unless every scored item is answered.

        An answer that is not one of the item's option values raises ValueError: a typo must not
        become a plausible total."""
        if not self.scored:
            return None
        points: list[int] = []
        for item in self.scored_items():
            answer = answers.get(item.id)
            if answer is None:
                return None
            points.append(_checked_answer(item, answer))
        return sum(points)

    def band_for(self, total: int) -> str:
        for band in self.bands:
            if band.minimum <= total <= band.maximum:
                return band.label
        raise ValueError(f"{self.title}: no band covers a total of {total}")


def _checked_answer(item: Item, answer: int | str) -> int:
    if isinstance(answer, bool) or not isinstance(answer, int) or answer not in item.values():
        allowed = ", ".join(str(v) for v in item.values())
        raise ValueError(f"Item {item.id}: answer must be one of {allowed}; got {answer!r}")
    return answer


def safety_flags(questionnaire: Questionnaire, answers: dict[str, int | str]) -> list[str]:
    """One plain message per safety item answered at or above its alert value (e.g. PHQ-9 item 9
    answered 1 or more), for the UI to show the clinician at once. Unanswered items give none."""
    flags: list[str] = []
    for item in questionnaire.items:
        threshold = item.alert_if_at_least
        answer = answers.get(item.id)
        if threshold is None or isinstance(answer, bool) or not isinstance(answer, int):
            continue
        if answer >= threshold:
            label = next((o.label for o in item.options if o.value == answer), str(answer))
            flags.append(
                f'{questionnaire.title}: "{item.text}" answered {answer} ({label}). '
                f"{item.alert or _DEFAULT_ALERT}"
            )
    return flags


# --- loading -------------------------------------------------------------------------------


class _Reader:
    """Field access that names the file and the field path on any problem."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def fail(self, where: str, problem: str) -> QuestionnaireError:
        return QuestionnaireError(f"{self.origin}: {where}: {problem}")

    def obj(self, data: Any, where: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(where, "must be a JSON object")
        return data

    def text(self, data: dict[str, Any], key: str, where: str, required: bool = True) -> str:
        path = f"{where}.{key}" if where else key
        value = data.get(key, None if required else "")
        if not isinstance(value, str) or (required and not value.strip()):
            raise self.fail(path, "must be a non-empty string" if required else "must be a string")
        return value.strip()

    def integer(self, data: dict[str, Any], key: str, where: str) -> int:
        path = f"{where}.{key}" if where else key
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"must be a whole number; got {value!r}")
        return value

    def boolean(self, data: dict[str, Any], key: str, where: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"{where}.{key}" if where else key, "must be true or false")
        return value

    def array(self, data: dict[str, Any], key: str, where: str) -> list[Any]:
        value = data.get(key)
        if not isinstance(value, list):
            raise self.fail(f"{where}.{key}" if where else key, "must be a list")
        return value


def _options(reader: _Reader, raw: list[Any], where: str) -> tuple[Option, ...]:
    options = []
    for index, entry in enumerate(raw):
        spot = f"{where}[{index}]"
        entry = reader.obj(entry, spot)
        options.append(
            Option(reader.integer(entry, "value", spot), reader.text(entry, "label", spot))
        )
    if not options:
        raise reader.fail(where, "needs at least one option")
    if len({o.value for o in options}) != len(options):
        raise reader.fail(where, "two options share a value")
    return tuple(options)


def _range_options(reader: _Reader, raw: Any, where: str) -> tuple[Option, ...]:
    spec = reader.obj(raw, where)
    low, high = reader.integer(spec, "min", where), reader.integer(spec, "max", where)
    if low > high:
        raise reader.fail(f"{where}.max", f"{high} is below min {low}")
    anchors = reader.obj(spec.get("anchors", {}), f"{where}.anchors")
    for key, text in anchors.items():
        if not key.lstrip("-").isdigit() or not low <= int(key) <= high:
            raise reader.fail(f"{where}.anchors.{key}", f"must be a whole number {low}–{high}")
        if not isinstance(text, str) or not text.strip():
            raise reader.fail(f"{where}.anchors.{key}", "must be a non-empty string")
    labels = {int(k): v.strip() for k, v in anchors.items()}
    return tuple(
        Option(v, f"{v} — {labels[v]}" if v in labels else str(v)) for v in range(low, high + 1)
    )


def _item(
    reader: _Reader, raw: Any, where: str, default_options: tuple[Option, ...] | None
) -> Item:
    data = reader.obj(raw, where)
    free_text = reader.boolean(data, "free_text", where, False)
    if free_text:
        options: tuple[Option, ...] = ()
    elif "options" in data:
        options = _options(reader, reader.array(data, "options", where), f"{where}.options")
    elif "range" in data:
        options = _range_options(reader, data["range"], f"{where}.range")
    elif default_options is not None:
        options = default_options
    else:
        raise reader.fail(where, "needs 'options', 'range' or the file's 'options'")
    threshold = None
    if "alert_if_at_least" in data:
        threshold = reader.integer(data, "alert_if_at_least", where)
        if free_text or not any(o.value >= threshold for o in options):
            raise reader.fail(f"{where}.alert_if_at_least", "no answer could ever reach it")
    return Item(
        id=reader.text(data, "id", where),
        text=reader.text(data, "text", where),
        options=options,
        free_text=free_text,
        alert_if_at_least=threshold,
        alert=reader.text(data, "alert", where, required=False),
    )


def _bands(reader: _Reader, raw: list[Any], items: tuple[Item, ...]) -> tuple[Band, ...]:
    bands = []
    for index, entry in enumerate(raw):
        spot = f"bands[{index}]"
        entry = reader.obj(entry, spot)
        band = Band(
            reader.integer(entry, "min", spot),
            reader.integer(entry, "max", spot),
            reader.text(entry, "label", spot),
        )
        if band.minimum > band.maximum:
            raise reader.fail(f"{spot}.max", f"{band.maximum} is below min {band.minimum}")
        bands.append(band)
    scored = [item for item in items if not item.free_text]
    lowest = sum(min(item.values()) for item in scored)
    highest = sum(max(item.values()) for item in scored)
    expected = lowest
    for index, band in enumerate(sorted(bands, key=lambda b: b.minimum)):
        if band.minimum != expected:
            raise reader.fail(
                "bands", f"totals from {expected} are not covered exactly once (band {index})"
            )
        expected = band.maximum + 1
    if expected != highest + 1:
        raise reader.fail("bands", f"must cover every total from {lowest} to {highest}")
    return tuple(bands)


def parse_questionnaire(data: Any, origin: str) -> Questionnaire:
    """Build a questionnaire from its JSON, refusing anything that could mislead."""
    reader = _Reader(origin)
    data = reader.obj(data, "file")
    if data.get("format", FORMAT_VERSION) != FORMAT_VERSION:
        raise reader.fail("format", f"only format {FORMAT_VERSION} is understood")
    scored = reader.boolean(data, "scored", "", True)
    default_options = None
    if "options" in data:
        default_options = _options(reader, reader.array(data, "options", ""), "options")
    raw_items = reader.array(data, "items", "")
    if not raw_items:
        raise reader.fail("items", "needs at least one item")
    items = tuple(
        _item(reader, raw, f"items[{index}]", default_options)
        for index, raw in enumerate(raw_items)
    )
    ids = [item.id for item in items]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise reader.fail("items", f"item ids repeat: {', '.join(duplicates)}")
    if scored and not any(not item.free_text for item in items):
        raise reader.fail("items", "a scored questionnaire needs at least one answerable item")
    bands: tuple[Band, ...] = ()
    if scored:
        bands = _bands(reader, reader.array(data, "bands", ""), items)
    return Questionnaire(
        id=reader.text(data, "id", ""),
        title=reader.text(data, "title", ""),
        instructions=reader.text(data, "instructions", ""),
        items=items,
        bands=bands,
        source=reader.text(data, "source", ""),
        scored=scored,
    )


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise QuestionnaireError(
            f"{path}: line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionnaireError(f"{path}: cannot be read: {exc}") from exc


def load_questionnaires(folders: list[Path]) -> dict[str, Questionnaire]:
    """Every ``*.json`` in the folders (missing folders are skipped); a later folder's file
    replaces an earlier one with the same id. A malformed file raises QuestionnaireError."""
    found: dict[str, Questionnaire] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            questionnaire = parse_questionnaire(_read(path), str(path))
            found[questionnaire.id] = questionnaire
    return found
