"""The append-only session log: the one way the window, the demo and scripts write and read.

A method returns only after its transaction has committed, so a caller may show the entry as
saved the moment it returns. Every record is validated again here (the form is not the only
caller), and stamped with ``recorded_at`` from the injected clock and the recorder's name.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlite_utils import Database

from kapmonitor import __version__
from kapmonitor.domain import discharge_gate, dose_gate, dose_guards, suicidality
from kapmonitor.domain.changes import Changes
from kapmonitor.domain.checklists import AlarmChecklistStep
from kapmonitor.domain.clock import Clock, SystemClock, from_iso, to_iso
from kapmonitor.domain.protocol import Protocol, stored_protocol
from kapmonitor.domain.records import (
    AdverseEvent,
    AdverseEventOutcome,
    AlarmAcknowledgement,
    DischargeAssessment,
    Dose,
    Entry,
    Observation,
    Override,
    PhaseChange,
    QuestionnaireResponse,
    SessionEnd,
    SessionStart,
    VitalSigns,
)
from kapmonitor.domain.reference import Reference, default_reference
from kapmonitor.domain.session_rows import StoredRow, row_reader, typed_row
from kapmonitor.domain.validation import (
    FieldError,
    ValidationError,
    check_text_length,
    check_text_lengths,
)
from kapmonitor.domain.vitals import VITAL_KEYS
from kapmonitor.store import (
    anchors,
    audit,
    central_signatures,
    commit_check,
    permissions,
    protocol_effects,
    rems_store,
)
from kapmonitor.store.database import StoreError, connect, plain_errors
from kapmonitor.store.inserts import insert_returning
from kapmonitor.store.key_slots import DatabaseKeys
from kapmonitor.store.schema import ENTRY_TABLES, REVIEW_TABLES

R = TypeVar("R", bound=StoredRow)
DEFAULT_SESSION_LIMIT_MINUTES = 180
DISCHARGE_OVERRIDE = "discharge_before_criteria"  # overrides.kind of a discharge although not ready


@dataclass
class SessionLog:
    """Everything recorded for one session, corrections included, as stored rows."""

    session: dict[str, Any]
    clinicians: list[str]
    rows: dict[str, list[StoredRow]] = field(default_factory=dict)
    central_reviews: list[dict[str, Any]] = field(default_factory=list)
    """Sign-offs, comments and addenda made at the clinic's archive and fetched by this laptop
    (migration 0015), each with the laptop's own verdict: kept apart from :attr:`rows`, which
    hold what was recorded here (the rules and the clinical views iterate those)."""

    @property
    def id(self) -> str:
        return self.session["id"]

    def live(self, table: str) -> list[StoredRow]:
        """As :meth:`current`, in stored order: no sort, for a scan that orders for itself."""
        rows = self.rows.get(table, [])
        superseded = {r["supersedes_id"] for r in rows if r.get("supersedes_id") is not None}
        return [r for r in rows if r["id"] not in superseded and not r.get("voided")]

    def current(self, table: str) -> list[StoredRow]:
        """Rows as they stand now: a superseded row is replaced by its latest correction,
        and a voided (entered-in-error) row disappears. Ordered by clinical time."""
        return sorted(self.live(table), key=lambda r: (r["observed_at"], r["id"]))

    def current_of(self, row_type: type[R]) -> list[R]:
        """:meth:`current` of the table ``row_type`` stores, as that type (``log.current_of(
        DoseRow)[0].dose_mg``); a row of another type here is a fault, said at once."""
        rows = self.current(row_type.TABLE)
        if not all(type(r) is row_type for r in rows):
            raise TypeError(f"{row_type.TABLE} rows are not all {row_type.__name__}")
        return cast("list[R]", rows)

    def started_at(self) -> datetime:
        return from_iso(self.session["observed_at"])

    def first_dose_at(self) -> datetime | None:
        doses = self.current("doses")
        return from_iso(doses[0]["observed_at"]) if doses else None

    def cumulative_dose_mg(self) -> float:
        return sum(r["dose_mg"] for r in self.current("doses"))

    def phase(self) -> str:
        if self.current("session_ends"):
            return "ended"
        changes = self.current("phase_changes")
        return changes[-1]["phase"] if changes else "preparation"

    def latest_recorded_at(self) -> datetime:
        """When the newest row was committed: a clock reading earlier than this went back."""
        stamps = [self.session["recorded_at"]]
        stamps += [r["recorded_at"] for rows in self.rows.values() for r in rows]
        return from_iso(max(stamps))

    def ended_at(self) -> datetime | None:
        ends = self.current("session_ends")
        return from_iso(ends[-1]["observed_at"]) if ends else None

    def last_vitals(self) -> dict[str, tuple[Any, str]]:
        """The latest value of each vital with its time: what the big numbers show."""
        latest: dict[str, tuple[Any, str]] = {}
        for row in self.current("vitals"):
            for key in VITAL_KEYS:
                if row[key] is not None:
                    latest[key] = (row[key], row["observed_at"])
        return latest

    @property
    def protocol(self) -> Protocol | None:
        """The protocol copy stored when the session started (None for sessions without one),
        parsed once per stored copy (:func:`~kapmonitor.domain.protocol.stored_protocol`)."""
        rows = self.current("session_protocols")
        return stored_protocol(rows[-1]["protocol_json"]) if rows else None

    def active_alarms(self) -> list[StoredRow]:
        """Alarms no clinician has acknowledged yet, highest priority first, then newest."""
        acknowledged = {r["alarm_id"] for r in self.current("alarm_acknowledgements")}
        rank = {"critical": 0, "warning": 1, "advisory": 2}
        active = [r for r in self.current("alarms") if r["id"] not in acknowledged]
        return sorted(active, key=lambda r: (rank[r["priority"]], r["observed_at"]), reverse=False)

    def news2_for(self, vitals_id: int) -> StoredRow | None:
        return next(
            (r for r in reversed(self.current("vital_scores")) if r["vitals_id"] == vitals_id),
            None,
        )

    def vitals_times(self) -> Sequence[datetime]:
        return [from_iso(r["observed_at"]) for r in self.current("vitals")]

    def has_baseline(self) -> bool:
        return dose_gate.has_baseline(self.current_rows(("doses", "vitals")))

    def current_rows(self, tables: tuple[str, ...] | None = None) -> dict[str, list[StoredRow]]:
        """:meth:`current` for every table (or ``tables``): the shape the domain rules take."""
        return {t: self.current(t) for t in (tables if tables is not None else tuple(self.rows))}

    def first_ready_at(self) -> datetime | None:
        """When an assessment first found the patient ready to leave (REMS asks this)."""
        ready = [r for r in self.current("discharge_assessments") if r["ready"]]
        return from_iso(ready[0]["observed_at"]) if ready else None

    def discharge_cleared(self) -> bool:
        """The latest assessment found the patient ready, or a clinician overrode with a reason."""
        rows = self.current("discharge_assessments")
        return bool(rows) and bool(rows[-1]["ready"] or rows[-1]["override_reason"])

    def open_adverse_events(self) -> list[StoredRow]:
        closed = {
            r["adverse_event_id"]
            for r in self.current("adverse_event_outcomes")
            if r["outcome"] in ("resolved", "resolved_with_sequelae", "fatal")
        }
        return [r for r in self.current("adverse_events") if r["id"] not in closed]


class SessionStore:
    """Writes and reads sessions in one SQLite file."""

    def __init__(
        self,
        db: Database,
        path: Path | str,
        clock: Clock | None = None,
        reference: Reference | None = None,
    ) -> None:
        self.db = db
        self.path = Path(path)
        self.clock = clock or SystemClock()
        self.ref = reference or default_reference()
        self._protocols: dict[str, Protocol | None] = {}

    @classmethod
    def open(
        cls,
        path: Path | str,
        clock: Clock | None = None,
        reference: Reference | None = None,
        keys: DatabaseKeys | None = None,
    ) -> SessionStore:
        """Open the file at ``path``, encrypted with ``keys`` (unlocked from a key slot) or, with
        none, plain or as this process last unlocked it (:func:`database.connect`)."""
        return cls(connect(Path(path), keys), path, clock, reference)

    def close(self) -> None:
        anchors.note(self.db, "close")  # the head at app close, in the anchor log (if chosen)
        self.db.close()

    def _seal(self, actor: str, action: str, session_id: str | None = None) -> None:
        """Chain the rows this transaction wrote into the audit trail before it commits."""
        audit.seal(self.db, actor, action, self.clock.now(), session_id)

    def _stamp(self, recorded_by: str) -> dict[str, str]:
        if not recorded_by or not recorded_by.strip():
            raise ValidationError(FieldError("recorded_by", "Choose who is recording"))
        return {"recorded_at": to_iso(self.clock.now()), "recorded_by": recorded_by.strip()}

    # --- writing -------------------------------------------------------------------------

    @plain_errors()
    def start_session(
        self,
        start: SessionStart,
        recorded_by: str,
        session_limit_minutes: int = DEFAULT_SESSION_LIMIT_MINUTES,
        protocol: Protocol | None = None,
    ) -> str:
        check_text_lengths(start)
        start.validate(self.ref, self.clock.now())
        if protocol is not None:
            session_limit_minutes = protocol.session_limit_minutes
        stamp = self._stamp(recorded_by)
        session_id = uuid.uuid4().hex
        row = start.session_row()
        eligibility = {k: bool(v) for k, v in start.checklist.items()}
        meds = {
            c.code: bool(start.concomitant.get(c.code, False))
            for c in self.ref.choices("concomitant_medicines")
        }
        header = [("sessions", {"id": session_id, **stamp})]  # what tells it was stored
        checked = commit_check.checked_commit(self, session_id, start, "session_started", header)
        with checked, self.db.atomic():
            self.db["sessions"].insert(
                {
                    "id": session_id,
                    **{k: v for k, v in row.items() if not k.startswith(("check_", "med_"))},
                    "eligibility": json.dumps(eligibility, sort_keys=True),
                    "concomitant_medicines": json.dumps(meds, sort_keys=True),
                    "session_limit_minutes": int(session_limit_minutes),
                    "app_version": __version__,
                    **stamp,
                }
            )
            names = [n.strip() for n in start.clinicians if n.strip()]
            for position, name in enumerate(dict.fromkeys(names)):
                self.db["session_clinicians"].insert(
                    {
                        "session_id": session_id,
                        "name": name,
                        "position": position,
                        "observed_at": row["observed_at"],
                        **stamp,
                    }
                )
            self._insert(session_id, PhaseChange("preparation", start.started_at), stamp)
            if protocol is not None:
                self.db["session_protocols"].insert(
                    {
                        "session_id": session_id,
                        "observed_at": row["observed_at"],
                        **stamp,
                        "protocol_id": protocol.id,
                        "protocol_name": protocol.name,
                        "protocol_version": protocol.version,
                        "protocol_json": json.dumps(protocol.to_dict(), sort_keys=True),
                        "origin": protocol.origin or "built-in",
                    }
                )
            if start.rems is not None:
                rems_store.insert_start_details(
                    self.db, session_id, start.rems, stamp, row["observed_at"]
                )
            self._seal(stamp["recorded_by"], "session_started", session_id)
        self._protocols[session_id] = protocol
        return session_id

    def protocol_for(self, session_id: str) -> Protocol | None:
        """The session's stored protocol copy (cached: it never changes)."""
        if session_id not in self._protocols:
            found = self.db.execute(
                "SELECT protocol_json FROM session_protocols WHERE session_id = ? "
                "ORDER BY id DESC LIMIT 1",
                [session_id],
            ).fetchone()
            self._protocols[session_id] = stored_protocol(found[0]) if found else None
        return self._protocols[session_id]

    @plain_errors()
    def add(self, session_id: str, entry: Entry, recorded_by: str) -> Changes:
        """Validate, stamp and commit one entry; returns what the transaction wrote (the entry
        first, then what was derived with it) once committed. A commit error the disk reported
        is checked before it is believed (:mod:`kapmonitor.store.commit_check`)."""
        earlier = commit_check.earlier_save(self, session_id, entry)
        if earlier is not None:  # the retry of an entry that was stored after all
            return earlier
        self._check_open(session_id, entry)
        check_text_lengths(entry)
        entry.validate(self.ref, self.clock.now())
        stamp = self._stamp(recorded_by)
        cleared = self._check_dose_guards(session_id, entry, stamp["recorded_by"])
        written: list[tuple[str, StoredRow]] = []
        checked = commit_check.checked_commit(self, session_id, entry, "insert", written)
        with checked, self.db.atomic():
            row = self._insert(session_id, entry, stamp, into=written)
            for action, detail in cleared:
                audit.event(
                    self.db, stamp["recorded_by"], action, self.clock.now(), detail, session_id
                )
            written += self._derive(session_id, entry, row, stamp)
            if isinstance(entry, Dose) and self._phase(session_id) == "preparation":
                # The first dose moves the session into the dosing phase, at the dose's time.
                phase = PhaseChange("dosing", entry.observed_at)
                self._insert(session_id, phase, stamp, into=written)
            self._seal(stamp["recorded_by"], "insert", session_id)
        return Changes(session_id, "insert", tuple(written), tuple(a for a, _d in cleared))

    def _derive(
        self, session_id: str, entry: Entry, row: StoredRow, stamp: dict[str, str]
    ) -> list[tuple[str, StoredRow]]:
        """NEWS2 and alarms, committed in the same transaction as the reading; returns the
        rows written, so the caller's change needs no second read."""
        protocol = self.protocol_for(session_id)
        written: list[tuple[str, StoredRow]] = []
        if isinstance(entry, VitalSigns):
            written = protocol_effects.after_vitals(self.db, protocol, session_id, row, stamp)
        elif isinstance(entry, Observation):
            written = protocol_effects.after_observation(self.db, protocol, session_id, row, stamp)
        elif isinstance(entry, QuestionnaireResponse):
            # A positive safety item (PHQ-9 item 9) is a critical alarm, with or without protocol.
            written = protocol_effects.after_questionnaire(self.db, session_id, row.id, stamp)
        elif isinstance(entry, DischargeAssessment) and entry.override_reason.strip():
            # Discharging although not ready is a protocol override: in the overrides table
            # too, with its reason, committed (and audited) with the assessment.
            override = Override(DISCHARGE_OVERRIDE, entry.override_reason, entry.observed_at)
            self._insert(session_id, override, stamp, into=written)
        elif isinstance(entry, AdverseEvent):
            # A respiratory or serious adverse event is a critical alarm, with or without protocol.
            written = protocol_effects.after_adverse_event(
                self.db, self.ref, session_id, row.id, stamp
            )
        return written

    def _phase(self, session_id: str) -> str:
        found = self.db.execute(
            "SELECT phase FROM phase_changes WHERE session_id = ? AND voided = 0 "
            "ORDER BY observed_at DESC, id DESC LIMIT 1",
            [session_id],
        ).fetchone()
        return found[0] if found else "preparation"

    @plain_errors()
    def correct(
        self,
        session_id: str,
        original_id: int,
        entry: Entry,
        reason: str,
        recorded_by: str,
        *,
        void: bool = False,
    ) -> Changes:
        """Record ``entry`` as the correction of row ``original_id``; the original stays.
        Returns the correction and what was derived from it again."""
        attempt = ("correction", original_id, entry, reason, void)
        earlier = commit_check.earlier_save(self, session_id, attempt)
        if earlier is not None:  # the retry of a correction that was stored after all
            return earlier
        if not reason or not reason.strip():
            raise ValidationError(FieldError("reason", "A correction needs a reason"))
        check_text_length("reason", reason)
        refused = permissions.why_not_correct(self.db, session_id, entry.table, original_id)
        if refused is not None:
            raise refused.error()
        check_text_lengths(entry)
        entry.validate(self.ref, self.clock.now())
        stamp = self._stamp(recorded_by)
        extra = {
            "supersedes_id": original_id,
            "correction_reason": reason.strip(),
            "voided": int(void),
        }
        written: list[tuple[str, StoredRow]] = []
        checked = commit_check.checked_commit(self, session_id, attempt, "correction", written)
        with checked, self.db.atomic():
            row = self._insert(session_id, entry, stamp, extra, into=written)
            if not void:
                written += self._derive(session_id, entry, row, stamp)
            self._seal(stamp["recorded_by"], "correction", session_id)
        return Changes(session_id, "correction", tuple(written))

    def _insert(
        self,
        session_id: str,
        entry: Entry,
        stamp: dict[str, str],
        extra: dict[str, Any] | None = None,
        *,
        into: list[tuple[str, StoredRow]] | None = None,
    ) -> StoredRow:
        """Insert one entry and return the stored row as written (``RETURNING *``: defaults
        and the id included, without reading it back); ``into`` collects it for the change."""
        row = {"session_id": session_id, **entry.row(), **stamp, **(extra or {})}
        if isinstance(entry, Dose) and entry.weight_kg is None:
            weight = self.db.execute(
                "SELECT weight_kg FROM sessions WHERE id = ?", [session_id]
            ).fetchone()
            if weight:
                row["dose_mg_per_kg"] = round(entry.dose_mg / weight[0], 3)
        stored = insert_returning(self.db, entry.table, row)
        if into is not None:
            into.append((entry.table, stored))
        return stored

    def _check_not_signed(self, session_id: str) -> None:
        """A plain refusal ahead of the database trigger that enforces the same rule."""
        refused = permissions.why_not_change(self.db, session_id)
        if refused is not None:
            raise refused.error()

    def _check_open(self, session_id: str, entry: Entry) -> None:
        exists = self.db.execute("SELECT 1 FROM sessions WHERE id = ?", [session_id]).fetchone()
        if exists is None:
            raise StoreError(f"Session {session_id} does not exist in {self.path}.", "missing")
        refused = permissions.why_not_add(self.db, session_id, entry.table)
        if refused is not None:  # signed, or a monitoring entry after the end
            raise refused.error()
        if isinstance(entry, AdverseEventOutcome):
            owner = self.db.execute(
                "SELECT session_id FROM adverse_events WHERE id = ?", [entry.adverse_event_id]
            ).fetchone()
            if owner is None or owner[0] != session_id:
                raise ValidationError(
                    FieldError("adverse_event_id", "That adverse effect is not in this session")
                )
        if isinstance(entry, AlarmChecklistStep):
            self._check_checklist_step(session_id, entry)
        if isinstance(entry, AlarmAcknowledgement):
            self._check_alarm(session_id, entry.alarm_id)
            self._check_risk_assessment(entry)
        if isinstance(entry, Dose):
            held = suicidality.dose_hold(self.load(session_id).current_rows())
            if held:
                raise ValidationError(FieldError("dose_mg", held))
        protocol = self.protocol_for(session_id)
        if protocol is not None:
            self._check_protocol(session_id, entry, protocol)

    def _check_checklist_step(self, session_id: str, entry: AlarmChecklistStep) -> None:
        """A step belongs to an alarm of this session and is ticked once (a tick is a record of
        what was done and when; ticking it again would blur that)."""
        owner = self.db.execute(
            "SELECT session_id FROM alarms WHERE id = ?", [entry.alarm_id]
        ).fetchone()
        if owner is None or owner[0] != session_id:
            raise ValidationError(FieldError("step", "That alarm is not in this session"))
        done = self.db.execute(
            "SELECT observed_at, recorded_by FROM alarm_checklist_steps s WHERE alarm_id = ? "
            "AND checklist = ? AND step = ? AND voided = 0 AND id NOT IN "
            "(SELECT supersedes_id FROM alarm_checklist_steps WHERE supersedes_id IS NOT NULL)",
            [entry.alarm_id, entry.checklist, entry.step],
        ).fetchone()
        if done is not None:
            raise ValidationError(
                FieldError("step", f"That step was already ticked ({done[0]}, by {done[1]})")
            )

    def _check_alarm(self, session_id: str, alarm_id: int) -> None:
        owner = self.db.execute("SELECT session_id FROM alarms WHERE id = ?", [alarm_id]).fetchone()
        if owner is None or owner[0] != session_id:
            raise ValidationError(FieldError("response", "That alarm is not in this session"))
        done = self.db.execute(
            "SELECT 1 FROM alarm_acknowledgements WHERE alarm_id = ? AND voided = 0", [alarm_id]
        ).fetchone()
        if done:
            raise ValidationError(FieldError("response", "That alarm was already acknowledged"))

    def _check_dose_guards(
        self, session_id: str, entry: Entry, recorded_by: str
    ) -> list[tuple[str, dict[str, Any]]]:
        """The protocol's BP-before-dosing limits and dose guards for a new dose: refuse it
        (the same words the window and the scenario runner show) unless its clearance answers
        every finding; return the audit entries the clearance writes with the dose."""
        protocol = self.protocol_for(session_id)
        if not isinstance(entry, Dose) or protocol is None:
            return []
        log = self.load(session_id)
        review = dose_guards.review_dose(
            protocol,
            log.current_rows(("vitals", "doses")),
            entry.drug,
            entry.route,
            entry.dose_mg,
            entry.weight_kg or log.session.get("weight_kg"),
            entry.observed_at,
        )
        refusals = review.refusals(entry.clearance, recorded_by)
        if refusals:
            raise ValidationError([FieldError("dose_mg", r) for r in refusals])
        shown = {"drug": entry.drug, "route": entry.route, "dose_mg": entry.dose_mg}
        return dose_guards.clearance_events(review, entry.clearance, recorded_by, shown)

    def record_dose_deferral(
        self, session_id: str, finding: dose_guards.BpFinding, reason: str, recorded_by: str
    ) -> Changes:
        """A decision not to dose now because of the BP before it: audited, append-only
        (no clinical row: the change carries the audit action only)."""
        if not reason.strip():
            raise ValidationError(FieldError("reason", "A decision to defer needs a reason"))
        self._check_not_signed(session_id)
        stamp = self._stamp(recorded_by)
        detail = dose_guards.deferral_detail(finding, reason, stamp["recorded_by"])
        with self.db.atomic():
            audit.event(
                self.db,
                stamp["recorded_by"],
                dose_guards.BP_DEFER,
                self.clock.now(),
                detail,
                session_id,
            )
        return Changes(session_id, dose_guards.BP_DEFER, audit_actions=(dose_guards.BP_DEFER,))

    def _check_risk_assessment(self, entry: AlarmAcknowledgement) -> None:
        """A suicidality alarm is acknowledged only with a documented risk assessment."""
        found = list(self.db.query("SELECT * FROM alarms WHERE id = ?", [entry.alarm_id]))
        if found and suicidality.is_safety_alarm(found[0]):
            problems = suicidality.assessment_problems(entry.risk_assessment)
            if problems:
                raise ValidationError([FieldError("risk_assessment", p) for p in problems])

    def _check_protocol(self, session_id: str, entry: Entry, protocol: Protocol) -> None:
        """Rules the protocol makes binding, enforced here so no caller can skip them."""
        if isinstance(entry, Dose):
            log = self.load(session_id)
            blocks = dose_gate.dose_blocks(protocol, log.current_rows())
            if blocks:
                raise ValidationError([FieldError("dose_mg", b.message) for b in blocks])
        going_home = isinstance(entry, SessionEnd) and entry.disposition in (
            "home_with_escort",
            "home_transport",
        )
        if going_home:
            refusals = discharge_gate.home_refusals(
                protocol, self.load(session_id).current_rows(), self.clock.now()
            )
            if refusals:
                raise ValidationError([FieldError("disposition", r) for r in refusals])

    # --- reading -------------------------------------------------------------------------

    @plain_errors()
    def load(self, session_id: str) -> SessionLog:
        session = self.db.execute("SELECT * FROM sessions WHERE id = ?", [session_id])
        columns = [d[0] for d in session.description]
        found = session.fetchone()
        if found is None:
            raise StoreError(f"Session {session_id} does not exist in {self.path}.", "missing")
        clinicians = [
            r[0]
            for r in self.db.execute(
                "SELECT name FROM session_clinicians WHERE session_id = ? ORDER BY position",
                [session_id],
            )
        ]
        log = SessionLog(dict(zip(columns, found, strict=True)), clinicians)
        for table in (*ENTRY_TABLES, *REVIEW_TABLES):
            cursor = self.db.execute(
                f"SELECT * FROM {table} WHERE session_id = ? ORDER BY observed_at, id",
                [session_id],
            )
            make = row_reader(table, [d[0] for d in cursor.description])
            log.rows[table] = [make(r) for r in cursor]
        log.central_reviews = central_signatures.central_rows(self.db, session_id)
        return log

    @plain_errors()
    def rows_after(self, session_id: str, table: str, after_id: int) -> list[dict[str, Any]]:
        """A session's rows of ``table`` newer than ``after_id``: what a save just derived,
        without reloading a three-hour record."""
        if table not in ENTRY_TABLES:
            raise ValueError(f"unknown table {table!r}")
        return list(
            self.db.query(
                f"SELECT * FROM {table} WHERE session_id = ? AND id > ? ORDER BY observed_at, id",
                [session_id, after_id],
            )
        )

    @plain_errors()
    def rows_by_id(self, table: str, ids: Sequence[int]) -> list[StoredRow]:
        """Stored rows of ``table`` by id, typed: how a paged view reads the lines it shows
        (the bedside timeline keeps only their places, not the rows)."""
        if table not in ENTRY_TABLES and table not in REVIEW_TABLES:
            raise ValueError(f"unknown table {table!r}")
        found: list[StoredRow] = []
        for start in range(0, len(ids), 500):  # within SQLite's bound-parameter limit
            chunk = list(ids[start : start + 500])
            cursor = self.db.execute(
                f"SELECT * FROM {table} WHERE id IN ({', '.join('?' * len(chunk))})", chunk
            )
            columns = [d[0] for d in cursor.description]
            found += [typed_row(table, dict(zip(columns, r, strict=True))) for r in cursor]
        return found

    @plain_errors()
    def row(self, table: str, row_id: int) -> StoredRow:
        """One stored row, typed, e.g. to show exactly what was committed."""
        if table not in ENTRY_TABLES:
            raise ValueError(f"unknown table {table!r}")
        rows = self.rows_by_id(table, [row_id])
        if not rows:
            raise StoreError(f"{table} row {row_id} does not exist in {self.path}.", "missing")
        return rows[0]

    @plain_errors()
    def list_sessions(self) -> list[dict[str, Any]]:
        """One summary row per session, newest first."""
        return list(
            self.db.query(
                """
                SELECT s.id, s.patient_code, s.observed_at AS started_at,
                  (SELECT group_concat(name, ', ') FROM
                     (SELECT name FROM session_clinicians c WHERE c.session_id = s.id
                      ORDER BY position)) AS clinicians,
                  (SELECT count(*) FROM doses d WHERE d.session_id = s.id
                     AND d.voided = 0 AND d.id NOT IN
                     (SELECT supersedes_id FROM doses WHERE supersedes_id IS NOT NULL)) AS doses,
                  (SELECT count(*) FROM vitals v WHERE v.session_id = s.id) AS vitals_rows,
                  (SELECT min(observed_at) FROM session_ends e WHERE e.session_id = s.id)
                     AS ended_at
                FROM sessions s ORDER BY s.observed_at DESC
                """
            )
        )

    def unfinished_sessions(self) -> list[dict[str, Any]]:
        return [s for s in self.list_sessions() if s["ended_at"] is None]
