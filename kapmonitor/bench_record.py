"""The session every benchmark record starts from: one place for its patient, checklist,
baseline and dose, so the window, encryption and device figures are measured beside the same
kind of record (what differs is only what each writes in bulk after it)."""

from __future__ import annotations

from datetime import datetime

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.protocol import Protocol
from kapmonitor.domain.records import Dose, SessionStart, VitalSigns
from kapmonitor.store.session_store import SessionStore


def start_bench_session(
    store: SessionStore, started_at: datetime, patient_code: str, protocol: Protocol | None = None
) -> str:
    """A session as the start form would make it (every eligibility item checked)."""
    checklist = {c.code: True for c in store.ref.choices("eligibility_checklist")}
    return store.start_session(
        SessionStart(
            patient_code=patient_code,
            sex="female",
            weight_kg=70,
            indication="trd",
            clinicians=("Dr Bench", "Nurse Bench"),
            started_at=started_at,
            age_years=40,
            checklist=checklist,
        ),
        "Dr Bench",
        protocol=protocol,
    )


def baseline_and_dose(store: SessionStore, session_id: str, clock: FakeClock) -> datetime:
    """A baseline vital-signs set five minutes in, the dose five minutes later; its time."""
    clock.advance(minutes=5)
    store.add(session_id, VitalSigns(clock.now(), hr=72, sbp=124, dbp=78, spo2=98, rr=14), "Dr B")
    clock.advance(minutes=5)
    dose_at = clock.now()
    store.add(session_id, Dose("ketamine", "im", 50, dose_at), "Dr Bench")
    return dose_at
