"""What the protocol engine writes beside a reading, in the same transaction.

A vital-signs set gets its NEWS2 score and one alarm row per vital sign beyond a limit (the
most urgent rule, naming any other it crossed); an observation
gets alarms for MOAA/S and RASS. Writing them with the reading means an alarm can never be lost
between "saved" and "shown", and the record says what the protocol said at the time.

Each ``after_*`` returns the rows it wrote, as ``(table, row)``, so the store's change object
(:mod:`kapmonitor.domain.changes`) carries them and no view reads them back after the commit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlite_utils import Database

from kapmonitor.domain import alarm_rules, news2
from kapmonitor.domain.protocol import DEFAULT_DISCHARGE_FRESHNESS_MINUTES, Protocol
from kapmonitor.domain.reference import Reference
from kapmonitor.domain.session_rows import StoredRow
from kapmonitor.domain.vitals import VITAL_KEYS
from kapmonitor.store.inserts import insert_returning

Written = list[tuple[str, StoredRow]]


def _first_dose_at(db: Database, session_id: str) -> str | None:
    row = db.execute(
        "SELECT min(observed_at) FROM doses WHERE session_id = ? AND voided = 0 "
        "AND id NOT IN (SELECT supersedes_id FROM doses WHERE supersedes_id IS NOT NULL)",
        [session_id],
    ).fetchone()
    return row[0] if row else None


def _current_rows(
    db: Database,
    table: str,
    session_id: str,
    where: str = "",
    params: Sequence[Any] = (),
    order: str = "ORDER BY observed_at, id",
) -> list[dict[str, Any]]:
    # A plain read (sqlite-utils' query() wraps each SELECT in a savepoint: three statements
    # where one does, on the path every device message takes).
    cursor = db.execute(
        f"SELECT * FROM {table} t WHERE session_id = ? AND voided = 0 AND id NOT IN "
        f"(SELECT supersedes_id FROM {table} WHERE supersedes_id IS NOT NULL) {where} "
        f"{order}",
        [session_id, *params],
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def baseline(db: Database, session_id: str, before: str | None) -> dict[str, Any] | None:
    """The pre-dose baseline: the latest pre-dose value of each vital (None before any)."""
    where, params = ("AND observed_at < ?", [before]) if before else ("", [])
    rows = _current_rows(db, "vitals", session_id, where, params)
    if not rows:
        return None
    values: dict[str, Any] = {}
    for row in rows:
        for key in VITAL_KEYS:
            if row[key] is not None:
                values[key] = row[key]
    return values


def _latest_observation(
    db: Database, session_id: str, at: str, where: str = ""
) -> dict[str, Any] | None:
    # Only the newest is needed: with a device feed there may be thousands before it.
    rows = _current_rows(
        db,
        "observations",
        session_id,
        f"AND observed_at <= ? {where}",
        [at],
        order="ORDER BY observed_at DESC, id DESC LIMIT 1",
    )
    return rows[0] if rows else None


_UNREAD: Any = object()
_END_OF_TIME = "\uffff"  # after every UTC text time


def _found_at(observation: Mapping[str, Any] | None) -> str:
    """An observation's time, or the start of time when there is none."""
    return "" if observation is None else str(observation["observed_at"])


class DoseFacts:
    """The first dose's time and the pre-dose baseline for one session, read when first needed
    and kept for one write transaction (a device group commit evaluates hundreds of messages
    against the same two facts; re-reading them per message was a third of its statements).

    It also keeps what a NEWS2 score reads besides the reading (the consciousness observations
    and the SpO₂ scale choices), read once for the transaction instead of twice per message.

    Valid only while nothing but device writes happen in the transaction: those never write a
    dose, an observation or a scale choice, and a vitals row they write changes the baseline
    only when it was observed before the first dose, which :func:`after_vitals` reports through
    :meth:`vitals_written` (the baseline is then read again). A fresh object is exactly the
    per-call reads of before."""

    def __init__(self, db: Database, session_id: str) -> None:
        self.db = db
        self.session_id = session_id
        self._dose_at: Any = _UNREAD
        self._baseline: Any = _UNREAD
        self._consciousness: Any = _UNREAD  # (time asked, answer, next observation's time)
        self._scale_choices: Any = _UNREAD

    def latest_consciousness(self, at: str) -> dict[str, Any] | None:
        """The newest current observation with a MOAA/S or dissociation score at or before
        ``at``, as :func:`_latest_observation` finds it (device writes never add one).

        A record may hold thousands of observations, so none is read in bulk: the first call
        reads the one answer; a later one with another time also reads when the next such
        observation comes, and every time before that has the same answer (a device batch's
        consecutive seconds are answered from it)."""
        known = self._consciousness
        if known is not _UNREAD:
            first_at, found, until = known
            if at == first_at or (until is not None and _found_at(found) <= at < until):
                return found  # type: ignore[no-any-return]
            if until is None and at > first_at:
                until = self._next_consciousness(first_at)
                self._consciousness = (first_at, found, until)
                if at < until:
                    return found  # type: ignore[no-any-return]
        found = _latest_observation(self.db, self.session_id, at, _CONSCIOUSNESS)
        self._consciousness = (at, found, None)
        return found

    def _next_consciousness(self, after: str) -> str:
        """When the first such observation after ``after`` was made (or past any time)."""
        rows = _current_rows(
            self.db,
            "observations",
            self.session_id,
            f"AND observed_at > ? {_CONSCIOUSNESS}",
            [after],
            order="ORDER BY observed_at, id LIMIT 1",
        )
        return str(rows[0]["observed_at"]) if rows else _END_OF_TIME

    def scale_choices(self) -> list[dict[str, Any]]:
        """The session's current NEWS2 scale choices (device writes never add one)."""
        if self._scale_choices is _UNREAD:
            self._scale_choices = _current_rows(self.db, "news2_scale_choices", self.session_id)
        return self._scale_choices  # type: ignore[no-any-return]

    def dose_at(self) -> str | None:
        if self._dose_at is _UNREAD:
            self._dose_at = _first_dose_at(self.db, self.session_id)
        return self._dose_at  # type: ignore[no-any-return]

    def baseline(self) -> dict[str, Any] | None:
        """The pre-dose baseline (read only once a dose exists: before it, there is none)."""
        if self._baseline is _UNREAD:
            self._baseline = baseline(self.db, self.session_id, self.dose_at())
        return self._baseline  # type: ignore[no-any-return]

    def vitals_written(self, observed_at: str) -> None:
        """A vitals row was written: before the first dose (or with no dose yet) it may be part
        of the baseline, so the baseline is read again when next needed."""
        if self._baseline is _UNREAD:
            return  # nothing kept yet (and the dose's time was read before any baseline)
        if self._dose_at is None or observed_at < self._dose_at:
            self._baseline = _UNREAD


def _insert(db: Database, table: str, row: dict[str, Any], written: Written) -> None:
    written.append((table, insert_returning(db, table, row)))


_CONSCIOUSNESS = "AND (moaas IS NOT NULL OR dissociation IS NOT NULL)"


def news2_for_reading(
    protocol: Protocol | None, row: Mapping[str, Any], facts: DoseFacts
) -> news2.News2:
    """NEWS2 for one stored vitals row: on the SpO₂ scale chosen for the patient at that time,
    with consciousness only from an observation (MOAA/S or dissociation) within the protocol's
    freshness window before the reading (an older one, or none, leaves the set incomplete).
    Both are read through the transaction's :class:`DoseFacts` (once for a device batch)."""
    at = row["observed_at"]
    observation = facts.latest_consciousness(at)
    window = (
        protocol.discharge_freshness_minutes
        if protocol is not None
        else DEFAULT_DISCHARGE_FRESHNESS_MINUTES
    )
    scale = news2.scale_in_force(facts.scale_choices(), at)
    return news2.score(
        rr=row["rr"],
        spo2=row["spo2"],
        on_oxygen=bool(row["on_oxygen"]),
        sbp=row["sbp"],
        hr=row["hr"],
        alert=news2.alert_within_window(observation, at, window),
        temp_c=row["temp_c"],
        scale=scale,
    )


def after_vitals(
    db: Database,
    protocol: Protocol | None,
    session_id: str,
    row: Mapping[str, Any],
    stamp: dict[str, str],
    already_alarmed: frozenset[str] = frozenset(),
    facts: DoseFacts | None = None,
) -> Written:
    """The stored vitals ``row``'s NEWS2 score and its protocol alarms; ``already_alarmed``
    names vitals whose alarm was already raised by the pending device reading this row
    confirms (the alarm stands, naming that reading: it is not raised twice). ``facts``: the
    transaction's :class:`DoseFacts` (a device group commit), told of this row."""
    facts = facts if facts is not None else DoseFacts(db, session_id)
    written: Written = []
    score = vitals_score(protocol, session_id, row, stamp, facts)
    _insert(db, "vital_scores", score, written)
    vitals_alarms(db, protocol, session_id, row, stamp, already_alarmed, facts, written)
    return written


def vitals_score(
    protocol: Protocol | None,
    session_id: str,
    row: Mapping[str, Any],
    stamp: dict[str, str],
    facts: DoseFacts,
) -> dict[str, Any]:
    """The ``vital_scores`` row (NEWS2) of the stored vitals ``row``, not yet inserted: a
    device group commit inserts a batch's scores in one statement. Tells ``facts`` of the
    row first (a vitals row before the dose changes the baseline)."""
    facts.vitals_written(row["observed_at"])
    result = news2_for_reading(protocol, row, facts)
    return {
        "session_id": session_id,
        "observed_at": row["observed_at"],
        **stamp,
        "vitals_id": row["id"],
        "news2_total": result.total,
        "news2_band": result.band,
        "news2_parts": json.dumps({**result.parts, "spo2_scale": result.scale}, sort_keys=True),
        "news2_missing": json.dumps(list(result.missing)),
    }


def vitals_alarms(
    db: Database,
    protocol: Protocol | None,
    session_id: str,
    row: Mapping[str, Any],
    stamp: dict[str, str],
    already_alarmed: frozenset[str],
    facts: DoseFacts,
    written: Written,
) -> None:
    """The protocol alarms of the stored vitals ``row``, inserted at once (a later reading's
    alarm folding reads them), appended to ``written``."""
    if protocol is None:
        return
    dose_at = facts.dose_at()
    after_dose = dose_at is not None and row["observed_at"] >= dose_at
    base = facts.baseline() if after_dose else None
    values = {key: None if key in already_alarmed else row[key] for key in VITAL_KEYS}
    device = row.get("device_reading_id") is not None  # a device's value, folded (below)
    common = {"session_id": session_id, "observed_at": row["observed_at"], **stamp}
    _record_findings(
        db, protocol, "vitals", row["id"], values, base, after_dose, common, written, fold=device
    )


#: How an alarm raised by a pending device reading says so, in its message (issue 13).
DEVICE_UNCONFIRMED = "device, unconfirmed"

_ACTIVE_ALARM_LEVELS = (
    "SELECT a.priority FROM alarms a WHERE a.session_id = ? AND a.parameter = ? "
    "AND a.voided = 0 AND NOT EXISTS (SELECT 1 FROM alarms c WHERE c.supersedes_id = a.id) "
    "AND NOT EXISTS (SELECT 1 FROM alarm_acknowledgements k WHERE k.alarm_id = a.id "
    "AND k.voided = 0 AND NOT EXISTS "
    "(SELECT 1 FROM alarm_acknowledgements c WHERE c.supersedes_id = k.id))"
)


def folded(db: Database, session_id: str, parameter: str, priority: str) -> bool:
    """Alarm folding for device feeds (issue 13): a device value crossing a limit raises no new
    alarm row (and so no sound) while an alarm of the same vital at this level or worse is
    active, unacknowledged, for the session; a 1 Hz desaturation otherwise raised one a second,
    and alarm fatigue is how a real one is missed. A worse level raises. Once acknowledged, the
    next crossing raises again: this protocol has no re-alarm delay or suppression for typed
    entries either (each crossing is an alarm), so there is no second mechanism to reuse.
    Typed entries are never folded. One indexed look-up per finding, not per reading."""
    rank = {"advisory": 0, "warning": 1, "critical": 2}
    wanted = rank.get(priority, 0)
    return any(
        rank.get(level, 0) >= wanted
        for (level,) in db.execute(_ACTIVE_ALARM_LEVELS, [session_id, parameter])
    )


def after_device_readings(
    db: Database,
    protocol: Protocol | None,
    session_id: str,
    rows: Sequence[Mapping[str, Any]],
    stamp: dict[str, str],
    facts: DoseFacts | None = None,
) -> Written:
    """Alarms on pending device readings (one device message's ``device_readings`` rows), so a
    real desaturation does not wait for a click: the same protocol rules as a vitals row, each
    alarm naming the reading it came from (``source_table`` 'device_readings') and saying
    "device, unconfirmed". A reading the device itself marked artefact, or without a value, is
    not evaluated. No NEWS2: a score is worked out only for confirmed vitals. ``facts``: the
    transaction's :class:`DoseFacts` (a device group commit), else read afresh."""
    written: Written = []
    if protocol is None:
        return written
    by_vital: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        if row["value"] is not None and "artefact" not in json.loads(row["flags"]):
            by_vital[row["vital"]] = row
    if not by_vital:
        return written
    observed = max(r["observed_at"] for r in by_vital.values())
    facts = facts if facts is not None else DoseFacts(db, session_id)
    dose_at = facts.dose_at()
    after_dose = dose_at is not None and observed >= dose_at
    base = facts.baseline() if after_dose else None
    values = {key: (by_vital[key]["value"] if key in by_vital else None) for key in VITAL_KEYS}
    found = alarm_rules.evaluate(protocol, values, base, after_dose)
    first = next(iter(by_vital.values()))
    for finding in alarm_rules.one_per_parameter(found):
        if folded(db, session_id, finding.parameter, finding.priority):
            continue
        reading = by_vital.get(finding.parameter, first)
        _insert(
            db,
            "alarms",
            {
                "session_id": session_id,
                "observed_at": reading["observed_at"],
                **stamp,
                "source_table": "device_readings",
                "source_id": reading["id"],
                "rule_id": finding.rule_id,
                "parameter": finding.parameter,
                "value": float(finding.value),
                "priority": finding.priority,
                "limit_text": finding.limit_text,
                "message": f"{finding.message} ({DEVICE_UNCONFIRMED})",
                "rule_source": finding.source,
            },
            written,
        )
    return written


def after_observation(
    db: Database,
    protocol: Protocol | None,
    session_id: str,
    row: Mapping[str, Any],
    stamp: dict[str, str],
) -> Written:
    """The stored observation ``row``'s protocol alarms (MOAA/S, RASS)."""
    written: Written = []
    if protocol is None:
        return written
    dose_at = _first_dose_at(db, session_id)
    after_dose = dose_at is not None and row["observed_at"] >= dose_at
    common = {"session_id": session_id, "observed_at": row["observed_at"], **stamp}
    values = {"moaas": row["moaas"], "rass": row["rass"]}
    _record_findings(
        db, protocol, "observations", row["id"], values, None, after_dose, common, written
    )
    return written


def _record_findings(
    db: Database,
    protocol: Protocol,
    table: str,
    source_id: int,
    values: dict[str, Any],
    base: dict[str, Any] | None,
    after_dose: bool,
    common: dict[str, Any],
    written: Written,
    *,
    fold: bool = False,
) -> None:
    found = alarm_rules.evaluate(protocol, values, base, after_dose)
    for finding in alarm_rules.one_per_parameter(found):
        if fold and folded(db, str(common["session_id"]), finding.parameter, finding.priority):
            continue
        _insert(
            db,
            "alarms",
            {
                **common,
                "source_table": table,
                "source_id": source_id,
                "rule_id": finding.rule_id,
                "parameter": finding.parameter,
                "value": float(finding.value),
                "priority": finding.priority,
                "limit_text": finding.limit_text,
                "message": finding.message,
                "rule_source": finding.source,
            },
            written,
        )


def _questionnaire_set() -> dict[str, Any]:
    """The questionnaire definitions the window offers (shipped, then the clinic's own)."""
    from kapmonitor.domain.questionnaires import load_questionnaires
    from kapmonitor.paths import resources_dir, user_config_dir

    return load_questionnaires(
        [resources_dir() / "questionnaires", user_config_dir() / "questionnaires"]
    )


def after_questionnaire(
    db: Database, session_id: str, response_id: int, stamp: dict[str, str]
) -> Written:
    """A safety item answered at or above its alert value (PHQ-9 item 9 ≥ 1, the threshold in the
    questionnaire file) is a critical alarm, written with the questionnaire in one transaction.
    Judged from the stored answers against the definition, not from what the caller flagged."""
    from kapmonitor.domain import suicidality

    row = next(db.query("SELECT * FROM questionnaire_responses WHERE id = ?", [response_id]))
    written: Written = []
    questionnaire = _questionnaire_set().get(row["questionnaire_id"])
    if questionnaire is None:
        return written
    answers = json.loads(row["answers"])
    common = {"session_id": session_id, "observed_at": row["observed_at"], **stamp}
    for found in suicidality.safety_alarms(questionnaire, answers):
        _insert(
            db,
            "alarms",
            {
                **common,
                "source_table": suicidality.SOURCE_TABLE,
                "source_id": response_id,
                "rule_id": suicidality.RULE_ID,
                "parameter": found.parameter,
                "value": float(found.value),
                "priority": "critical",
                "limit_text": found.limit_text,
                "message": found.message,
                "rule_source": found.source,
            },
            written,
        )
    return written


def after_adverse_event(
    db: Database, ref: Reference, session_id: str, ae_id: int, stamp: dict[str, str]
) -> Written:
    """A respiratory adverse event raises the airway alarm, a serious one the escalation alarm
    (both critical, each acknowledged with its checklist), written with the event in one
    transaction. Judged from the stored row by :mod:`kapmonitor.domain.checklists`."""
    from kapmonitor.domain import checklists

    row = next(db.query("SELECT * FROM adverse_events WHERE id = ?", [ae_id]))
    term = str(row["term"])
    label = (
        row["verbatim"]
        if term == "other" and row["verbatim"]
        else ref.label("adverse_effects", term)
    )
    criterion = ref.label("seriousness_criteria", row["serious_criterion"])
    common = {"session_id": session_id, "observed_at": row["observed_at"], **stamp}
    findings = checklists.adverse_event_findings(
        term, label, int(row["grade"]), bool(row["serious"]), criterion
    )
    written: Written = []
    for finding in findings:
        _insert(
            db,
            "alarms",
            {
                **common,
                "source_table": "adverse_events",
                "source_id": ae_id,
                "rule_id": finding.rule_id,
                "parameter": finding.parameter,
                "value": float(finding.value),
                "priority": finding.priority,
                "limit_text": finding.limit_text,
                "message": finding.message,
                "rule_source": finding.source,
            },
            written,
        )
    return written
