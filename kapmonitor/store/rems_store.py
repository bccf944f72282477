"""REMS records that live outside the bedside entries: what was asked at the start of an
esketamine session, and who submitted the Patient Monitoring Form, when.

Both are append-only (database triggers) and sealed into the audit trail in the same transaction
as the row. A submission is recorded from the review window's archive (or a script) after the
session; marking it twice is refused, because the form goes to the REMS once per session and a
second "submitted" row would blur who actually sent it.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from kapmonitor.domain.clock import Clock, from_iso, to_iso
from kapmonitor.domain.rems import (
    RemsDefaults,
    RemsField,
    RemsStart,
    SubmissionStatus,
    default_rems_defaults,
    rems_summary,
    submission_status,
)
from kapmonitor.domain.validation import FieldError, ValidationError
from kapmonitor.store import audit
from kapmonitor.store.database import StoreError

if TYPE_CHECKING:
    from kapmonitor.store.session_store import SessionLog

SUBMITTED_ACTION = "rems_form_submitted"
# The pre-dose BP decisions the dose form records as audit events (kapmonitor.domain.dose_guards).
BP_DECISION_ACTIONS = {
    "dose_bp_proceed": "proceed",
    "dose_bp_override": "override",
    "dose_bp_deferred": "defer",
}


def bp_decisions(db: Database, session_id: str) -> list[dict[str, Any]]:
    """The documented pre-dose BP decisions of a session, as rows the REMS form reads:
    ``observed_at`` (when decided), ``decision`` (proceed / override / defer), ``reason``,
    ``recorded_by`` and ``bp_observed_at`` (the reading decided on)."""
    actions = list(BP_DECISION_ACTIONS)
    marks = ", ".join("?" for _ in actions)
    rows = []
    for entry in db.query(
        f"SELECT id, at, actor, action, detail FROM audit WHERE session_id = ? "
        f"AND action IN ({marks}) ORDER BY id",
        [session_id, *actions],
    ):
        detail = json.loads(entry["detail"] or "{}")
        rows.append(
            {
                "id": entry["id"],
                "observed_at": entry["at"],
                "decision": BP_DECISION_ACTIONS[entry["action"]],
                "reason": detail.get("reason", ""),
                "recorded_by": detail.get("recorded_by") or entry["actor"],
                "bp_observed_at": detail.get("bp_observed_at"),
            }
        )
    return rows


def form_fields(db: Database, log: SessionLog, fallback_setting: str = "") -> list[RemsField]:
    """The REMS form of a stored session, from everything the record holds: the entries, the
    start details, the pre-dose BP decisions and the session's own protocol copy. The window,
    the review and the scenario runner all fill the form here."""
    current = {table: log.current(table) for table in log.rows}
    current["bp_decisions"] = bp_decisions(db, log.id)
    return rems_summary(
        log.session,
        log.clinicians,
        current,
        log.first_ready_at(),
        log.ended_at(),
        setting=fallback_setting,
        protocol=log.protocol,
    )


def insert_start_details(
    db: Database, session_id: str, details: RemsStart, stamp: dict[str, str], observed_at: str
) -> None:
    """Write the start details inside the caller's transaction (the session's own start), so a
    session and its REMS answers commit together or not at all."""
    db["rems_session_details"].insert(
        {"session_id": session_id, "observed_at": observed_at, **stamp, **details.row()}
    )


def start_details(db: Database, session_id: str) -> dict[str, Any] | None:
    rows = list(
        db.query(
            "SELECT * FROM rems_session_details WHERE session_id = ? AND voided = 0 "
            "AND id NOT IN (SELECT supersedes_id FROM rems_session_details "
            "WHERE supersedes_id IS NOT NULL) ORDER BY id DESC LIMIT 1",
            [session_id],
        )
    )
    if not rows:
        return None
    row = rows[0]
    row["contraindications"] = json.loads(row["contraindications"])
    return row


def submissions(db: Database, session_id: str) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT * FROM rems_submissions WHERE session_id = ? ORDER BY observed_at, id",
            [session_id],
        )
    )


def treatment_time(db: Database, session_id: str) -> datetime:
    """The first esketamine dose (else any first dose, else the session start): the form's
    treatment date and the start of its 7 days."""
    found = db.execute(
        "SELECT observed_at FROM doses WHERE session_id = ? AND voided = 0 "
        "ORDER BY (drug = 'esketamine') DESC, observed_at LIMIT 1",
        [session_id],
    ).fetchone()
    if found is None:
        found = db.execute("SELECT observed_at FROM sessions WHERE id = ?", [session_id]).fetchone()
    if found is None:
        raise StoreError(f"Session {session_id} does not exist.", "missing")
    return from_iso(found[0])


def status(
    db: Database, session_id: str, today: date, defaults: RemsDefaults | None = None
) -> SubmissionStatus:
    return submission_status(
        treatment_time(db, session_id), submissions(db, session_id), today, defaults
    )


def mark_submitted(
    db: Database,
    session_id: str,
    submitted_by: str,
    submitted_at: datetime,
    recorded_by: str,
    clock: Clock,
    reference: str = "",
    note: str = "",
) -> int:
    """Record that the form was submitted (by whom, when); refused for a non-REMS session, a
    future time, a time before the treatment, or a session already marked submitted."""
    errors: list[FieldError] = []
    if not submitted_by.strip():
        errors.append(FieldError("submitted_by", "Say who submitted the form"))
    if not recorded_by.strip():
        errors.append(FieldError("submitted_by", "Choose who is recording"))
    now = clock.now()
    if submitted_at > now:
        errors.append(FieldError("submitted_at", "The submission time is in the future"))
    if submitted_at < treatment_time(db, session_id):
        errors.append(FieldError("submitted_at", "The form is submitted after the treatment"))
    if not is_rems_session(db, session_id):
        errors.append(
            FieldError("submitted_by", "The REMS form applies to esketamine REMS sessions only")
        )
    if submissions(db, session_id):
        first = submissions(db, session_id)[0]
        errors.append(
            FieldError(
                "submitted_by",
                f"Already marked submitted by {first['submitted_by']} on "
                f"{from_iso(first['observed_at']).astimezone():%Y-%m-%d}",
            )
        )
    if errors:
        raise ValidationError(errors)
    with db.atomic():
        row_id = (
            db["rems_submissions"]
            .insert(
                {
                    "session_id": session_id,
                    "observed_at": to_iso(submitted_at),
                    "recorded_at": to_iso(now),
                    "recorded_by": recorded_by.strip(),
                    "submitted_by": submitted_by.strip(),
                    "reference": reference.strip() or None,
                    "note": note.strip() or None,
                }
            )
            .last_pk
        )
        audit.seal(db, recorded_by.strip(), SUBMITTED_ACTION, now, session_id)
    return int(row_id)


def is_rems_session(db: Database, session_id: str) -> bool:
    found = db.execute(
        "SELECT protocol_json FROM session_protocols WHERE session_id = ? ORDER BY id DESC LIMIT 1",
        [session_id],
    ).fetchone()
    return bool(found) and bool(json.loads(found[0]).get("rems"))


__all__ = [
    "BP_DECISION_ACTIONS",
    "SUBMITTED_ACTION",
    "bp_decisions",
    "default_rems_defaults",
    "form_fields",
    "insert_start_details",
    "is_rems_session",
    "mark_submitted",
    "start_details",
    "status",
    "submissions",
    "treatment_time",
]
