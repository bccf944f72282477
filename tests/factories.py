"""Small builders shared by tests, so each test states only what it is about."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.protocol import Protocol, load_protocols
from kapmonitor.domain.records import SessionStart
from kapmonitor.domain.reference import default_reference
from kapmonitor.domain.session_rows import StoredRow, typed_row
from kapmonitor.paths import resources_dir
from kapmonitor.store.session_store import SessionStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CHECKLIST_ALL = {c.code: True for c in default_reference().choices("eligibility_checklist")}


def stored_row(table: str, observed_at: str, **columns: object) -> StoredRow:
    """A typed stored row of ``table`` as the store reads it back, the shared columns filled in
    (id 1, session "s1", recorded when observed, by Dr A) unless given."""
    shared: dict[str, object] = {
        "id": 1,
        "session_id": "s1",
        "recorded_at": observed_at,
        "recorded_by": "Dr A",
    }
    return typed_row(table, {**shared, "observed_at": observed_at, **columns})


def session_start(clock: FakeClock, **overrides: object) -> SessionStart:
    values: dict[str, object] = {
        "patient_code": "KAP-0042",
        "sex": "female",
        "weight_kg": 70.0,
        "indication": "trd",
        "clinicians": ("Dr A", "Nurse B"),
        "started_at": clock.now(),
        "age_years": 41,
        "checklist": dict(CHECKLIST_ALL),
    }
    values.update(overrides)
    return SessionStart(**values)  # type: ignore[arg-type]


@cache
def protocols() -> dict[str, Protocol]:
    return load_protocols([resources_dir() / "protocols"]).protocols


def protocol(protocol_id: str) -> Protocol:
    return protocols()[protocol_id]


def open_store(path: Path, clock: FakeClock | None = None) -> SessionStore:
    return SessionStore.open(path, clock or FakeClock(T0))
