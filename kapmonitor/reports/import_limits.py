"""What an import refuses beyond the schema: sizes, lengths, numbers, ids and stamps.

Why: an import is the one way text written elsewhere (another laptop, a script, a hand-edited
file) enters the record, and it used to take anything the column types allowed: one 100 MB note
(its PDF then never finished), ``weight_kg: 1e400`` stored as infinity (the export could not be
re-imported), a session id ``../../x`` (``export --all`` then wrote outside ``--out``), and any
``recorded_by``/``recorded_at``. Every limit is a named constant here, documented in
docs/json-format.md ("What an import refuses"); a refusal names the row and the field, never the
clinical value, and nothing of the file is stored.

The rules:

- a JSON file larger than :data:`MAX_IMPORT_BYTES` is not read at all (a database file is not
  size-limited: each of its sessions is checked like a JSON document);
- text: a free-text cell longer than :data:`MAX_TEXT_CHARS` characters, a JSON-text cell (a stored
  protocol, a checklist) longer than :data:`MAX_JSON_TEXT_CHARS`;
- numbers: non-finite ones (``NaN``, ``Infinity`` and ``1e400``, which JSON reads as infinity);
  a column named like a plausibility range (``resources/plausibility.json``: ``sbp``, ``hr``,
  ``spo2``, ``weight_kg``, ``dose_mg``...) outside that range, as the entry form would refuse it;
- the session id must match :data:`kapmonitor.paths.SESSION_ID_PATTERN` (32 lower-case hex);
- times: every UTC time column must be the app's form ``YYYY-MM-DDTHH:MM:SS.mmmZ`` and a real
  date; ``recorded_at`` not later than the importing computer's clock plus
  :data:`FUTURE_TOLERANCE` (5 minutes, the entry form's own tolerance); ``observed_at`` not later
  than its ``recorded_at`` plus the same tolerance (nothing is recorded before it happens, beyond
  the form's allowance);
- ``recorded_by``: text of 1 to :data:`MAX_NAME_CHARS` characters with no control characters and
  no leading or trailing space (what the store's own stamp writes).

Not covered: a plausible but false value (a typed 120/80 that was 180/110), a real clinician's name
in ``recorded_by`` typed by someone else, or a recorded_at back-dated within the past: an import
is data from elsewhere and is audited as an import, not proven.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from kapmonitor.domain.clock import from_iso
from kapmonitor.domain.reference import Reference, default_reference
from kapmonitor.domain.validation import FUTURE_TOLERANCE, MAX_TEXT_CHARS
from kapmonitor.paths import is_session_id
from kapmonitor.store.database import StoreError
from kapmonitor.store.session_tables import Column

#: The largest JSON export file an import reads: 32 MB. A three-hour session recorded at 1 Hz
#: exports to 9.2 MB (measured: docs/json-format.md), so this leaves room and refuses a flood.
MAX_IMPORT_BYTES = 32 * 1024 * 1024
#: The longest JSON-text cell (a stored protocol, a checklist's answers), in characters.
MAX_JSON_TEXT_CHARS = 1_000_000
#: The longest ``recorded_by`` name.
MAX_NAME_CHARS = 200
UTC_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def refused(message: str) -> StoreError:
    return StoreError(
        f"not a valid KAP Monitor export: {message}; nothing was imported.", "invalid"
    )


def check_file_size(path: Path) -> None:
    """Refuse a JSON file over :data:`MAX_IMPORT_BYTES` before reading a byte of it."""
    try:
        size = Path(path).stat().st_size
    except OSError as exc:
        raise StoreError(f"Cannot read {path}: {exc.strerror or exc}.", "unreadable") from exc
    if size > MAX_IMPORT_BYTES:
        raise StoreError(
            f"{path} is {size / 1024 / 1024:.1f} MB, more than an import reads "
            f"({MAX_IMPORT_BYTES // 1024 // 1024} MB); nothing was imported.",
            "too_large",
        )


def finite_float(text: str) -> float:
    """JSON's ``parse_float``: ``1e400`` is infinity to Python, and refused here."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is not a finite number")
    return value


def check_session_id(value: Any) -> str:
    if not is_session_id(value):
        raise refused(
            "the session id must be 32 lower-case hexadecimal characters, as the app makes them"
        )
    return str(value)


def check_cell(where: str, column: Column, value: Any, ref: Reference | None = None) -> None:
    """One cell's limits (its type was checked before): finite, plausible, not too long."""
    if isinstance(value, float) and not math.isfinite(value):
        raise refused(f"{where}: {column.name} is not a finite number")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        limit = (ref or default_reference()).limits.get(column.name)
        if limit is not None and not limit.minimum <= value <= limit.maximum:
            raise refused(
                f"{where}: {column.name} is outside the plausible range "
                f"{limit.minimum:g}–{limit.maximum:g} {limit.unit}"
            )
    if isinstance(value, str):
        longest = MAX_JSON_TEXT_CHARS if column.json_text else MAX_TEXT_CHARS
        if len(value) > longest:
            raise refused(f"{where}: {column.name} is longer than {longest:,} characters")
        if column.utc_time:
            _check_time(where, column.name, value)


def _check_time(where: str, name: str, value: str) -> datetime:
    if not UTC_TIME.fullmatch(value):
        raise refused(f"{where}: {name} must be a UTC time like 2026-03-02T09:00:00.000Z")
    try:
        return from_iso(value)
    except ValueError as exc:
        raise refused(f"{where}: {name} is not a real date and time") from exc


def check_stamps(where: str, row: Mapping[str, Any], now: datetime) -> None:
    """``recorded_by`` and ``recorded_at`` as the store writes them, and in time order."""
    if "recorded_by" in row:
        name = row["recorded_by"]
        if (
            not isinstance(name, str)
            or not name.strip()
            or name != name.strip()
            or len(name) > MAX_NAME_CHARS
            or _CONTROL.search(name)
        ):
            raise refused(
                f"{where}: recorded_by must be a name of 1 to {MAX_NAME_CHARS} characters, "
                "without line breaks or control characters"
            )
    recorded = row.get("recorded_at")
    if recorded is None:
        return
    if not isinstance(recorded, str):
        raise refused(f"{where}: recorded_at must be a UTC time")
    at = _check_time(where, "recorded_at", recorded)
    if at - now > FUTURE_TOLERANCE:
        raise refused(f"{where}: recorded_at is in the future (this computer's clock)")
    observed = row.get("observed_at")
    if (
        isinstance(observed, str)
        and UTC_TIME.fullmatch(observed)
        and _check_time(where, "observed_at", observed) - at > FUTURE_TOLERANCE
    ):
        raise refused(f"{where}: recorded_at is before the time it records (observed_at)")


__all__ = [
    "FUTURE_TOLERANCE",
    "MAX_IMPORT_BYTES",
    "MAX_JSON_TEXT_CHARS",
    "MAX_NAME_CHARS",
    "MAX_TEXT_CHARS",
    "check_cell",
    "check_file_size",
    "check_session_id",
    "check_stamps",
    "finite_float",
]
