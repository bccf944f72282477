"""The device readings a session's live chart still draws, read once when the session opens.

Issue 13: the bedside chart shows device readings that await a clinician (pending) and those
marked artefact (kept, crossed). A confirmed reading is charted as the vitals row it became, so
it is not read here. The session model keeps only the newest pending reading of each vital;
this read is the chart's, when a session is opened or redrawn after a correction (rare), and
returns plain tuples rather than typed rows: a three-hour 1 Hz feed left pending is 21,600 of
them.
"""

from __future__ import annotations

from sqlite_utils import Database

__all__ = ["DevicePointRow", "charted_device_readings"]

#: ``(reading id, vital, observed_at, value, decision, flags)``; decision None (pending) or
#: "artefact"; flags the device's JSON list (a flagged pending reading is drawn apart).
DevicePointRow = tuple[int, str, str, float | None, str | None, str | None]


def charted_device_readings(db: Database, session_id: str) -> list[DevicePointRow]:
    """The session's pending and artefact-marked device readings with a value, in clinical
    time order."""
    cursor = db.execute(
        "SELECT r.id, r.vital, r.observed_at, r.value, v.decision, r.flags FROM device_readings r "
        "LEFT JOIN device_reading_reviews v ON v.device_reading_id = r.id "
        "WHERE r.session_id = ? AND r.value IS NOT NULL "
        "AND (v.decision IS NULL OR v.decision = 'artefact') ORDER BY r.observed_at, r.id",
        [session_id],
    )
    return [
        (int(i), str(k), str(at), value, decision, flags)
        for i, k, at, value, decision, flags in cursor
    ]
