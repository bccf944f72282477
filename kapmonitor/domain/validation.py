"""Turning what a clinician typed into trusted values, or a reason why not.

Every refusal names the field and says why in words a clinician reads in a second; the form keeps
what was typed so nothing is lost. Ranges come from ``resources/plausibility.json``.
"""

from __future__ import annotations

import math
import re
from dataclasses import fields, is_dataclass
from datetime import datetime, timedelta

from kapmonitor.domain.reference import Limit
from kapmonitor.domain.refusals import FieldError, ValidationError

# An entry timed this far in the future is a typo (or a wrong laptop clock), not an observation.
FUTURE_TOLERANCE = timedelta(minutes=5)


class Collector:
    """Gathers every field's problem so the form can show them all at once."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, field: str, message: str) -> None:
        self.errors.append(FieldError(field, message))

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


#: The longest free text (a note, a detail, a reason) one field holds, in characters: what an
#: entry form accepts, what the store writes and what an import of an export takes back
#: (kapmonitor/reports/import_limits.py), so everything the app records can be re-imported. About
#: eight printed pages; the PDF prints the first 2,000 and points to the JSON export for the rest.
MAX_TEXT_CHARS = 20_000


def check_text_lengths(record: object) -> None:
    """Refuse a record whose text fields are longer than :data:`MAX_TEXT_CHARS`, naming each
    field, before anything is stored (a pasted log or a runaway script must not become part of
    an append-only record that can then never be exported and imported whole)."""
    errors = Collector()
    for name, value in _text_fields(record):
        if len(value) > MAX_TEXT_CHARS:
            errors.add(name, _too_long(value))
    errors.raise_if_any()


def check_text_length(field: str, text: str) -> None:
    """The same rule for one free-text value that is not a record (a reason, a comment)."""
    if len(text) > MAX_TEXT_CHARS:
        raise ValidationError(FieldError(field, _too_long(text)))


def _too_long(text: str) -> str:
    return (
        f"This text is {len(text):,} characters long; the longest one field can hold "
        f"is {MAX_TEXT_CHARS:,}. Shorten it or split it into several entries."
    )


def _text_fields(record: object) -> list[tuple[str, str]]:
    if not is_dataclass(record):
        return []
    found: list[tuple[str, str]] = []
    for item in fields(record):
        value = getattr(record, item.name)
        if isinstance(value, str):
            found.append((item.name, value))
        elif isinstance(value, tuple):
            found.extend((item.name, v) for v in value if isinstance(v, str))
        elif is_dataclass(value):
            found.extend(_text_fields(value))
    return found


_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)$")
_BP = re.compile(r"^\s*(\d{1,3})\s*[/\\ ]\s*(\d{1,3})\s*$")


def parse_number(text: str | None, label: str) -> float | None:
    """Blank means "not measured"; anything else must be a plain decimal number."""
    if text is None:
        return None
    cleaned = text.strip()
    if not cleaned:
        return None
    if not _NUMBER.match(cleaned):
        raise ValueError(f"{label}: “{cleaned}” is not a number")
    value = float(cleaned.replace(",", "."))
    if not math.isfinite(value):
        raise ValueError(f"{label}: “{cleaned}” is not a number")
    return value


def parse_int(text: str | None, label: str) -> int | None:
    value = parse_number(text, label)
    if value is None:
        return None
    if value != int(value):
        raise ValueError(f"{label}: whole numbers only (got {text.strip() if text else text})")
    return int(value)


def parse_bp(text: str | None) -> tuple[int, int] | None:
    """Blood pressure is typed as one entry, ``120/80`` (a space or backslash also separates)."""
    if text is None or not text.strip():
        return None
    match = _BP.match(text)
    if not match:
        raise ValueError(
            f"Blood pressure: type it as systolic/diastolic, e.g. 120/80 (got “{text.strip()}”)"
        )
    return int(match.group(1)), int(match.group(2))


def check_range(errors: Collector, field: str, value: float | None, limit: Limit) -> None:
    if value is None:
        return
    if not math.isfinite(value) or not limit.minimum <= value <= limit.maximum:
        errors.add(
            field,
            f"{limit.label} {_fmt(value)} {limit.unit} is not possible: "
            f"enter {_fmt(limit.minimum)}–{_fmt(limit.maximum)} {limit.unit}",
        )


def check_time(errors: Collector, field: str, when: datetime, now: datetime) -> None:
    if when.tzinfo is None:
        errors.add(field, "Time has no time zone")
    elif when - now > FUTURE_TOLERANCE:
        errors.add(field, "Time is in the future: check the time of the observation")


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
