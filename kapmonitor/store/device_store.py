"""Device readings in the store: pending as they arrive, part of the record once confirmed.

Issue 13. A value a monitor sends is not a clinical record until someone has seen it (artefacts
stored as true values are a known failure of automated anaesthesia records), so it is stored
*pending* in ``device_readings`` and becomes part of the record in one of two ways:

- a clinician confirms it (:func:`confirm_device_readings`): a normal ``vitals`` row is written,
  its ``device_reading_id``/``source`` pointing back to the reading, with a ``confirmed`` review
  row naming that vitals row. Everything that reads vitals (chart, NEWS2, alarms, PDF, CSV,
  JSON, FHIR) then reads the confirmed value unchanged, attributed to the clinician who
  confirmed it;
- the session's protocol confirms it automatically (``[devices] auto_confirm``, e.g. the 1 Hz
  SpO2/HR trend) in the same transaction that stores it, unless the device flagged it or it would
  not pass the checks a typed value passes (plausibility range, a time not in the future): then it
  waits pending like any other.

A reading judged wrong is marked artefact with a reason (:func:`mark_device_artefact`); it is
never deleted. Alarms are evaluated on pending values too, in the write that stores them
(:func:`kapmonitor.store.protocol_effects.after_device_readings`), so a real desaturation never
waits for a click; such an alarm names the reading and says "device, unconfirmed", and is not
raised a second time when the reading is confirmed.

Every function returns a :class:`~kapmonitor.domain.changes.Changes` once committed, carrying the
device rows it wrote, so a view can chart pending values without reading them back.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kapmonitor.devices.reading import DeviceReading
from kapmonitor.domain.changes import Changes
from kapmonitor.domain.clock import from_iso, to_iso
from kapmonitor.domain.device_flags import blocking_flags, flag_caption
from kapmonitor.domain.records import VitalSigns
from kapmonitor.domain.session_rows import DeviceReadingRow, StoredRow, typed_row
from kapmonitor.domain.validation import FieldError, ValidationError, check_text_length
from kapmonitor.domain.vitals import VITAL_SIGNS
from kapmonitor.store import permissions, protocol_effects
from kapmonitor.store.database import explain, plain_errors
from kapmonitor.store.inserts import insert_many_returning, insert_returning, rows_of

if TYPE_CHECKING:
    from kapmonitor.domain.protocol import Protocol
    from kapmonitor.store.session_store import SessionStore

__all__ = [
    "ACTION_ARTEFACT",
    "ACTION_CONFIRMED",
    "ACTION_READINGS",
    "add_device_messages",
    "add_device_readings",
    "confirm_device_readings",
    "device_recorder",
    "mark_device_artefact",
]

ACTION_READINGS = "device_readings"  # the audit action of a device message stored
ACTION_CONFIRMED = "device_readings_confirmed"
ACTION_ARTEFACT = "device_readings_artefact"
_INTEGER = {sign.key for sign in VITAL_SIGNS if sign.is_integer}
_COLUMNS = (
    "session_id",
    "observed_at",
    "recorded_at",
    "recorded_by",
    "device_time",
    "received_at",
    "vital",
    "value",
    "unit_received",
    "code",
    "device_id",
    "source",
    "message_id",
    "flags",
)

Written = list[tuple[str, StoredRow]]


def device_recorder(device_id: str) -> str:
    """Who recorded a device reading: the device (``device:<id>``), never a clinician."""
    return f"device:{device_id.strip()}"


def _check_session(store: SessionStore, session_id: str) -> None:
    refused = permissions.why_not_add(store.db, session_id, "device_readings")
    if refused is not None:
        raise refused.error()


@plain_errors()
def add_device_readings(
    store: SessionStore, session_id: str, readings: Sequence[DeviceReading]
) -> Changes:
    """Store one device message's readings pending, in one transaction, and return once it has
    committed: this is the sink the device listeners call before they acknowledge (``AA``).

    A reading already stored (same session, device, message id and vital: a resend after a crash
    or a restart) is not stored again and is left out of the change. In the same transaction:
    the protocol's automatic confirmations, and the alarms the still-pending values raise.
    """
    if not readings:
        return Changes(session_id, ACTION_READINGS)
    _check_session(store, session_id)
    actor = device_recorder(readings[0].device_id)
    with store.db.atomic():
        facts = protocol_effects.DoseFacts(store.db, session_id)
        written = _store_message(store, session_id, readings, store.protocol_for(session_id), facts)
        if written:
            store._seal(actor, ACTION_READINGS, session_id)
    return Changes(session_id, ACTION_READINGS, tuple(written))


def _store_message(
    store: SessionStore,
    session_id: str,
    readings: Sequence[DeviceReading],
    protocol: Protocol | None,
    facts: protocol_effects.DoseFacts,
) -> Written:
    """One message's readings, their automatic confirmations and alarms, inside the caller's
    transaction (``facts``: its dose time and baseline); the caller seals them into the audit
    trail."""
    now = store.clock.now()
    stamp_at = to_iso(now)
    written: Written = []
    auto = set(protocol.auto_confirm) if protocol is not None else set()
    actor = device_recorder(readings[0].device_id)
    stored = _insert_readings(store, session_id, readings, stamp_at)
    written += [("device_readings", row) for row in stored]
    automatic = [r for r in stored if _auto_confirmable(r, auto)]
    confirmed_ids: set[int] = set()
    if automatic and protocol is not None:
        by = f"protocol:{protocol.id}"
        for group in _groups(automatic):
            entry = _entry_or_none(store, group, now)
            if entry is None:
                continue  # would not pass a typed value's checks: it waits pending
            written += _write_confirmation(
                store, session_id, group, entry, by, stamp_at, automatic=True, facts=facts
            )
            confirmed_ids.update(r.id for r in group)
    pending = [r for r in stored if r.id not in confirmed_ids]
    if pending:
        written += protocol_effects.after_device_readings(
            store.db,
            protocol,
            session_id,
            pending,
            {"recorded_at": stamp_at, "recorded_by": actor},
            facts,
        )
    return written


def add_device_messages(
    store: SessionStore, session_id: str, messages: Sequence[Sequence[DeviceReading]]
) -> list[Changes | Exception]:
    """Store several device messages in ONE transaction (group commit): one result per message,
    in order, each the :class:`Changes` :func:`add_device_readings` would have returned or the
    exception that refused that message alone. Returns only once the transaction has committed.

    Why: every commit in WAL mode with ``synchronous=FULL`` is an fsync of the log, so a gateway
    flushing its buffer one commit per message is bounded by the disk; one commit for everything
    that arrived while the previous commit ran keeps the listener ahead of it, and the commit is
    still the point after which each of these messages may be answered ``AA``.

    Each message is written as :func:`add_device_readings` writes it. A message refused for
    itself (a value the schema refuses, any error of its own) is rolled back alone and its
    exception returned in its place, the others go on: the batch is first written straight
    through, and only when a message fails is it rolled back whole and written again with one
    savepoint per message (two statements a message saved on the usual batch, where nothing
    fails). The session's permission is checked once for the batch (one transaction: it cannot
    change inside it; a refusal refuses every message), and the first dose and baseline are
    read once (:class:`~kapmonitor.store.protocol_effects.DoseFacts`). Rows are sealed into the
    audit trail with their own device as the actor, one seal per run of messages from the same
    device (so the per-row audit entries are those one seal per message would write, at a
    fraction of the cost). A fault of the database itself (I/O, disk full, a transaction the
    engine abandoned) or a failed commit is raised, and then NO message of the batch was
    stored: the caller must not acknowledge any of them. A message repeated inside the batch
    (same device, message id and vital) is stored once; the repeat's change is empty, as for a
    resend.
    """
    try:
        _check_session(store, session_id)
        protocol = store.protocol_for(session_id)
        try:
            return _write_batch(store, session_id, messages, protocol, savepoints=False)
        except _MessageFailed:
            pass  # rolled back whole: again, each message in its own savepoint
        return _write_batch(store, session_id, messages, protocol, savepoints=True)
    except (sqlite3.Error, OSError) as exc:
        raise explain(exc, store.path) from exc


class _MessageFailed(Exception):
    """One message of a batch written straight through failed for itself: roll back, redo."""


def _write_batch(
    store: SessionStore,
    session_id: str,
    messages: Sequence[Sequence[DeviceReading]],
    protocol: Protocol | None,
    *,
    savepoints: bool,
) -> list[Changes | Exception]:
    """One transaction for ``messages``; with ``savepoints`` each message in its own (a failed
    one rolled back alone, its exception in its place), else :class:`_MessageFailed` at the
    first message that fails for itself (the transaction is then rolled back)."""
    results: list[Changes | Exception] = []
    db = store.db
    with db.atomic():
        facts = protocol_effects.DoseFacts(db, session_id)
        if not savepoints and _together_allowed(messages, facts):
            try:
                return _write_together(store, session_id, messages, protocol, facts)
            except Exception as exc:
                if _batch_fatal(exc) or not db.conn.in_transaction:
                    raise
                raise _MessageFailed from exc
        unsealed: str | None = None  # the device whose rows await the seal
        for readings in messages:
            if not readings:
                results.append(Changes(session_id, ACTION_READINGS))
                continue
            actor = device_recorder(readings[0].device_id)
            if unsealed is not None and unsealed != actor:
                store._seal(unsealed, ACTION_READINGS, session_id)
                unsealed = None
            try:
                if savepoints:
                    with db.atomic():  # a savepoint: this message alone rolls back
                        written = _store_message(store, session_id, readings, protocol, facts)
                else:
                    written = _store_message(store, session_id, readings, protocol, facts)
            except Exception as exc:
                if _batch_fatal(exc) or not db.conn.in_transaction:
                    raise
                if not savepoints:
                    raise _MessageFailed from exc
                facts = protocol_effects.DoseFacts(db, session_id)  # it may have seen the undone
                results.append(exc)
                continue
            results.append(Changes(session_id, ACTION_READINGS, tuple(written)))
            if written:
                unsealed = actor
        if unsealed is not None:
            store._seal(unsealed, ACTION_READINGS, session_id)
    return results


def _together_allowed(
    messages: Sequence[Sequence[DeviceReading]], facts: protocol_effects.DoseFacts
) -> bool:
    """Whether a batch may be written table by table (:func:`_write_together`) and give what
    message by message would. Not when a reading was observed before the session's first
    dose: such a vitals row may join the pre-dose baseline, and a later message's alarms must
    not be judged against a baseline holding readings of messages after it."""
    dose_at = facts.dose_at()
    if dose_at is None:
        return True  # no dose: nothing is judged against a baseline
    seen: set[datetime] = set()  # a message's readings share one time: one strftime each
    for readings in messages:
        for reading in readings:
            observed = reading.observed_at or reading.received_at
            if observed not in seen:
                seen.add(observed)
                if to_iso(observed) < dose_at:
                    return False
    return True


def _write_together(
    store: SessionStore,
    session_id: str,
    messages: Sequence[Sequence[DeviceReading]],
    protocol: Protocol | None,
    facts: protocol_effects.DoseFacts,
) -> list[Changes | Exception]:
    """A batch written a table at a time, inside the caller's transaction: every reading in
    one statement, every automatic confirmation's vitals row in one, their scores in one, their
    review rows in one; alarms are still judged and inserted message by message, in order
    (alarm folding reads the alarms before it). Each message's :class:`Changes` holds the rows
    message-by-message writing gives it (its readings, its vitals rows, their scores, alarms
    and reviews), and the rows are sealed with their own device as the actor, a seal per run
    of messages from one device.

    Why: a statement costs several times what one more row in it costs, and a gateway's
    flush of hundreds of messages wrote four statements a message (issue 13's 2,000
    messages/s into the store). Raises at the first failure (the caller rolls the batch back
    and writes it again message by message, each in its own savepoint)."""
    results: list[Changes | Exception] = []
    start = 0
    while start < len(messages):
        actor = _actor_of(messages[start])
        end = start + 1
        while end < len(messages) and _actor_of(messages[end]) in (actor, None):
            end += 1
        run = messages[start:end]
        written = _run_together(store, session_id, run, protocol, facts)
        results += [Changes(session_id, ACTION_READINGS, tuple(w)) for w in written]
        if actor is not None and any(written):
            store._seal(actor, ACTION_READINGS, session_id)
        start = end
    return results


def _actor_of(readings: Sequence[DeviceReading]) -> str | None:
    return device_recorder(readings[0].device_id) if readings else None


def _run_together(
    store: SessionStore,
    session_id: str,
    run: Sequence[Sequence[DeviceReading]],
    protocol: Protocol | None,
    facts: protocol_effects.DoseFacts,
) -> list[Written]:
    """One device's run of messages, table by table (see :func:`_write_together`); what each
    message wrote, in order."""
    now = store.clock.now()
    stamp_at = to_iso(now)
    written: list[Written] = [[] for _ in run]
    owner: dict[tuple[str, str, str], int] = {}  # a reading's key -> its first message
    for index, readings in enumerate(run):
        for reading in readings:
            owner.setdefault((reading.device_id, reading.message_id, reading.vital), index)
    flat = [reading for readings in run for reading in readings]
    stored_by: list[list[StoredRow]] = [[] for _ in run]
    for row in _insert_readings(store, session_id, flat, stamp_at):
        assert isinstance(row, DeviceReadingRow)
        stored_by[owner[(row.device_id, row.message_id, row.vital)]].append(row)
    auto = set(protocol.auto_confirm) if protocol is not None else set()
    by = f"protocol:{protocol.id}" if protocol is not None else ""
    stamp = {"recorded_at": stamp_at, "recorded_by": by}
    confirmations: list[tuple[int, list[StoredRow], dict[str, Any]]] = []
    pending_by: list[list[StoredRow]] = []
    for index, stored in enumerate(stored_by):
        written[index] += [("device_readings", row) for row in stored]
        confirmed: set[int] = set()
        automatic = [r for r in stored if _auto_confirmable(r, auto)]
        if automatic and protocol is not None:
            for group in _groups(automatic):
                entry = _entry_or_none(store, group, now)
                if entry is None:
                    continue  # would not pass a typed value's checks: it waits pending
                first = min(group, key=lambda r: r.id)
                row = {
                    "session_id": session_id,
                    **entry.row(),
                    **stamp,
                    "device_reading_id": first.id,
                    "source": first["source"],
                }
                confirmations.append((index, group, row))
                confirmed.update(r.id for r in group)
        pending_by.append([r for r in stored if r.id not in confirmed])
    vitals_rows = [row for _, _, row in confirmations]
    vitals = insert_many_returning(store.db, "vitals", vitals_rows)
    made: list[list[tuple[list[StoredRow], StoredRow]]] = [[] for _ in run]
    for (index, group, _row), vitals_row in zip(confirmations, vitals, strict=True):
        made[index].append((group, vitals_row))
    scores: list[tuple[int, dict[str, Any]]] = []
    reviews: list[tuple[int, dict[str, Any]]] = []
    alarms: list[Written] = [[] for _ in run]
    for index, confirmed_here in enumerate(made):  # in message order: alarms fold in order
        for group, vitals_row in confirmed_here:
            written[index].append(("vitals", vitals_row))
            score = protocol_effects.vitals_score(protocol, session_id, vitals_row, stamp, facts)
            scores.append((index, score))
            protocol_effects.vitals_alarms(
                store.db,
                protocol,
                session_id,
                vitals_row,
                stamp,
                frozenset(),  # stored by this write: no alarm can name these readings yet
                facts,
                alarms[index],
            )
            reviews += [(index, _review(session_id, stamp, r.id, vitals_row.id)) for r in group]
        if pending_by[index]:
            device_stamp = {"recorded_at": stamp_at, "recorded_by": _actor_of(run[index]) or ""}
            alarms[index] += protocol_effects.after_device_readings(
                store.db, protocol, session_id, pending_by[index], device_stamp, facts
            )
    stored_scores = insert_many_returning(store.db, "vital_scores", [s for _, s in scores])
    for (index, _score), row in zip(scores, stored_scores, strict=True):
        written[index].append(("vital_scores", row))
    for index, raised in enumerate(alarms):
        written[index] += raised
    stored_reviews = insert_many_returning(
        store.db, "device_reading_reviews", [r for _, r in reviews]
    )
    for (index, _review_row), row in zip(reviews, stored_reviews, strict=True):
        written[index].append(("device_reading_reviews", row))
    return written


def _review(
    session_id: str,
    stamp: dict[str, str],
    reading_id: int,
    vitals_id: int,
    *,
    automatic: bool = True,
) -> dict[str, Any]:
    """The ``confirmed`` review row of a reading that became the vitals row ``vitals_id``."""
    return {
        "session_id": session_id,
        "observed_at": stamp["recorded_at"],
        **stamp,
        "device_reading_id": reading_id,
        "decision": "confirmed",
        "automatic": int(automatic),
        "vitals_id": vitals_id,
    }


def _batch_fatal(exc: BaseException) -> bool:
    """A fault of the database rather than of one message: the whole batch must fail.

    ``plain_errors`` turns sqlite3/OS errors into StoreError with the original as the cause; an
    operational error (I/O, full, locked, a savepoint that could not roll back) means the
    transaction itself can no longer be trusted, while an integrity error or a Python-level
    refusal (validation, permissions) belongs to the one message."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, (sqlite3.OperationalError, sqlite3.DatabaseError, OSError)) and (
            not isinstance(cause, sqlite3.IntegrityError)
        ):
            return True
        cause = cause.__cause__
    return False


_NO_FLAGS = "[]"
_ROW_MARKS = f"({', '.join('?' * len(_COLUMNS))})"
_PER_STATEMENT = 512  # readings per INSERT: 7,168 values, well under SQLite's 32,766


def _reading_values(
    session_id: str, reading: DeviceReading, stamp_at: str, iso: dict[datetime, str]
) -> tuple[object, ...]:
    """One reading's column values; ``iso`` remembers the message's times as text (its readings
    share them: one ``strftime`` each, not one per reading)."""
    received = iso.get(reading.received_at) or iso.setdefault(
        reading.received_at, to_iso(reading.received_at)
    )
    if reading.observed_at is None:
        observed = received
    else:
        observed = iso.get(reading.observed_at) or iso.setdefault(
            reading.observed_at, to_iso(reading.observed_at)
        )
    flags = json.dumps(sorted(str(f) for f in reading.flags)) if reading.flags else _NO_FLAGS
    return (
        session_id,
        observed,
        stamp_at,
        device_recorder(reading.device_id),
        int(reading.observed_at is not None),
        received,
        reading.vital,
        reading.value,
        reading.unit,
        reading.code,
        reading.device_id,
        reading.source,
        reading.message_id,
        flags,
    )


def _insert_readings(
    store: SessionStore,
    session_id: str,
    readings: Sequence[DeviceReading],
    stamp_at: str,
) -> list[StoredRow]:
    """One message's readings as stored, in the order given, with one multi-row
    ``INSERT … ON CONFLICT DO NOTHING RETURNING *`` (one statement per message, not one per
    reading: statements are most of a device batch's cost). A reading already stored (a resend),
    or repeated in the message, is skipped as one insert per reading skipped it; the rows come
    back sorted by id, which is the order they were inserted in."""
    rows: list[StoredRow] = []
    for start in range(0, len(readings), _PER_STATEMENT):
        chunk = readings[start : start + _PER_STATEMENT]
        iso: dict[datetime, str] = {}
        values = [
            v for reading in chunk for v in _reading_values(session_id, reading, stamp_at, iso)
        ]
        cursor = store.db.execute(
            f"INSERT INTO device_readings ({', '.join(_COLUMNS)}) VALUES "
            f"{', '.join([_ROW_MARKS] * len(chunk))}"
            " ON CONFLICT (session_id, device_id, message_id, vital) DO NOTHING RETURNING *",
            values,
        )
        rows += rows_of("device_readings", cursor)
    return rows


def _auto_confirmable(row: StoredRow, auto: set[str]) -> bool:
    if isinstance(row, DeviceReadingRow):  # attributes: a device batch asks this of every row
        return row.vital in auto and row.value is not None and row.flags == "[]"
    return row["vital"] in auto and row["value"] is not None and row["flags"] == "[]"


def _groups(rows: Iterable[StoredRow]) -> list[list[StoredRow]]:
    """Readings that become one vitals row: one device message at one observed time (a BP's
    systolic and diastolic, the SpO2 and pulse of one oximeter line)."""
    groups: dict[tuple[str, str, str], list[StoredRow]] = {}
    for row in rows:
        key = (row["device_id"], row["message_id"], row.observed_at)
        groups.setdefault(key, []).append(row)
    return list(groups.values())


def _entry(group: Sequence[StoredRow]) -> VitalSigns:
    """The vitals set a group of readings confirms (a vital twice in one group: refused)."""
    values: dict[str, Any] = {}
    for row in group:
        if row["vital"] in values:
            raise ValidationError(
                FieldError("ids", f"Two {row['vital']} readings from one message: confirm one")
            )
        value = row["value"]
        values[row["vital"]] = round(value) if row["vital"] in _INTEGER else value
    return VitalSigns(from_iso(group[0].observed_at), **values)


def _entry_or_none(
    store: SessionStore, group: Sequence[StoredRow], now: datetime
) -> VitalSigns | None:
    try:
        entry = _entry(group)
        entry.validate(store.ref, now)
    except ValidationError:
        return None
    return entry


def _write_confirmation(
    store: SessionStore,
    session_id: str,
    group: Sequence[StoredRow],
    entry: VitalSigns,
    by: str,
    stamp_at: str,
    *,
    automatic: bool,
    facts: protocol_effects.DoseFacts | None = None,
) -> Written:
    """The vitals row a group of readings becomes, its NEWS2 and alarms, and one review row per
    reading naming it. Inside the caller's transaction (``facts``: its dose time and baseline
    when it is a device group commit)."""
    written: Written = []
    first = min(group, key=lambda r: r.id)
    stamp = {"recorded_at": stamp_at, "recorded_by": by}
    extra = {"device_reading_id": first.id, "source": first["source"]}
    vitals = store._insert(session_id, entry, stamp, extra, into=written)
    # A reading confirmed automatically was stored by this same write, after which only its
    # confirmation runs: no alarm can name it yet, so there is nothing to look up.
    alarmed = frozenset() if automatic else _already_alarmed(store, [r.id for r in group])
    written += protocol_effects.after_vitals(
        store.db, store.protocol_for(session_id), session_id, vitals, stamp, alarmed, facts
    )
    reviews = [_review(session_id, stamp, row.id, vitals.id, automatic=automatic) for row in group]
    stored = insert_many_returning(store.db, "device_reading_reviews", reviews)
    written += [("device_reading_reviews", row) for row in stored]
    return written


def _already_alarmed(store: SessionStore, reading_ids: Sequence[int]) -> frozenset[str]:
    marks = ", ".join("?" * len(reading_ids))
    found = store.db.execute(
        "SELECT DISTINCT parameter FROM alarms WHERE source_table = 'device_readings' "
        f"AND source_id IN ({marks})",
        list(reading_ids),
    ).fetchall()
    return frozenset(r[0] for r in found)


def _insert_review(store: SessionStore, row: dict[str, Any]) -> StoredRow:
    return insert_returning(store.db, "device_reading_reviews", row)


def _pending(store: SessionStore, session_id: str, ids: Sequence[int]) -> list[StoredRow]:
    """The readings ``ids`` of this session, each still awaiting a decision (else refused)."""
    unique = list(dict.fromkeys(int(i) for i in ids))
    if not unique:
        raise ValidationError(FieldError("ids", "Choose the device readings to decide on"))
    rows = store.db.execute(
        f"SELECT r.*, v.decision FROM device_readings r LEFT JOIN device_reading_reviews v "
        f"ON v.device_reading_id = r.id WHERE r.id IN ({', '.join('?' * len(unique))})",
        unique,
    )
    columns = [d[0] for d in rows.description]
    found = {r[0]: dict(zip(columns, r, strict=True)) for r in rows}
    result: list[StoredRow] = []
    for reading_id in unique:
        row = found.get(reading_id)
        if row is None or row["session_id"] != session_id:
            raise ValidationError(
                FieldError("ids", f"Device reading {reading_id} is not in this session")
            )
        if row["decision"] is not None:
            raise ValidationError(
                FieldError("ids", f"Device reading {reading_id} was already {row['decision']}")
            )
        del row["decision"]
        result.append(typed_row("device_readings", row))
    return result


@plain_errors()
def confirm_device_readings(
    store: SessionStore, session_id: str, ids: Sequence[int], by: str
) -> Changes:
    """A clinician confirms pending readings: each device message's readings become one vitals
    row (attributed to ``by``, pointing back to the reading), with NEWS2 and the protocol's
    alarms, and one ``confirmed`` review row per reading; one transaction, audited.

    Refused, with a sentence, for a reading without a value (probe off), one the device flagged
    (artefact, preliminary, out of range: ``domain/device_flags.py``), one already decided,
    one of another session, a systolic without its diastolic, or a value a typed entry would
    not take (outside the plausibility range): mark it artefact, or type the value instead."""
    _check_session(store, session_id)
    stamp = store._stamp(by)
    now = store.clock.now()
    rows = _pending(store, session_id, ids)
    for row in rows:
        if row["value"] is None:
            raise ValidationError(
                FieldError("ids", f"Device reading {row.id} has no value ({row['flags']})")
            )
        doubted = blocking_flags(row["flags"])
        if doubted:  # the device's own doubt: a clinician marks it artefact or types the value
            raise ValidationError(
                FieldError(
                    "ids",
                    f"Device reading {row.id} was flagged by the device ({flag_caption(doubted)})"
                    ": mark it artefact, or type the value",
                )
            )
    entries = []
    for group in _groups(rows):
        entry = _entry(group)
        entry.validate(store.ref, now)
        entries.append((group, entry))
    written: Written = []
    with store.db.atomic():
        for group, entry in entries:
            written += _write_confirmation(
                store,
                session_id,
                group,
                entry,
                stamp["recorded_by"],
                stamp["recorded_at"],
                automatic=False,
            )
        store._seal(stamp["recorded_by"], ACTION_CONFIRMED, session_id)
    return Changes(session_id, ACTION_CONFIRMED, tuple(written))


@plain_errors()
def mark_device_artefact(
    store: SessionStore, session_id: str, ids: Sequence[int], by: str, reason: str
) -> Changes:
    """A clinician marks pending readings artefact, with a reason: one review row each; the
    readings stay in the record as they arrived (never deleted), and never become vitals."""
    if not reason or not reason.strip():
        raise ValidationError(FieldError("reason", "Say why the reading is an artefact"))
    check_text_length("reason", reason)
    _check_session(store, session_id)
    stamp = store._stamp(by)
    rows = _pending(store, session_id, ids)
    written: Written = []
    with store.db.atomic():
        for row in rows:
            review = {
                "session_id": session_id,
                "observed_at": stamp["recorded_at"],
                **stamp,
                "device_reading_id": row.id,
                "decision": "artefact",
                "reason": reason.strip(),
            }
            written.append(("device_reading_reviews", _insert_review(store, review)))
        store._seal(stamp["recorded_by"], ACTION_ARTEFACT, session_id)
    return Changes(session_id, ACTION_ARTEFACT, tuple(written))
