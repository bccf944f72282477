"""``kapmonitor verify``: walk the audit chain and cross-check it against every row.

The kinds of damage named, each with its table and row or entry number:
- an audit entry altered, removed or inserted (its MAC, or the link to the one before, fails);
  an entry whose hash is the public unkeyed SHA-256 where the keyed MAC belongs is named as a
  chain recomputed without the key;
- a row whose content no longer matches the hash recorded when the app wrote it (altered), or a
  row with more than one entry recording it (an entry appended to cover an edit: every entry of
  a row is checked, not only the latest);
- an audited row that is gone (removed), or a row with no audit entry (inserted outside the app);
- the file's structure (tables, triggers, CHECKs, indexes, views) differing from what KAP Monitor
  makes (:mod:`kapmonitor.store.schema_check`);
- given anchors kept outside the file (backups, PDFs, exports, the anchor log), a cut tail, a
  rollback to an earlier copy or a rewritten history (:mod:`kapmonitor.store.anchors`).

It opens the file read-only, so verifying never changes what it verifies. Notes that are not
damage (entries from before the keyed chain; a plain file whose audit key is public) are printed
after the verdict, so a clinic knows what the "OK" rests on.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from kapmonitor.store import audit, key_slots
from kapmonitor.store.database import StoreError, connect_readonly, explain

# Entries the app itself adds for a row it already recorded: a migration that changed the
# content of stored rows seals them again, openly, under its own action. Any other second entry
# for a row of an append-only table is an entry appended to cover an edit.
RESEALS: dict[str, frozenset[str]] = {"schema_0005": frozenset({"alarm_acknowledgements"})}
KEYED_MIGRATION = "0011_keyed_audit"

PLAIN_KEY_NOTE = (
    "Warning: this file is not encrypted, so its audit key is public: anyone with the file and "
    "SQLite can recompute the chain. Only anchors kept outside the file (kapmonitor verify "
    "--anchors …: backups, PDFs, exports, the anchor log) catch a rewrite of anchored history."
)


@dataclass
class VerifyReport:
    entries: int = 0
    rows_checked: int = 0
    tables: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    head: tuple[int, str] | None = None  # the newest entry: (number, MAC)
    anchors_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def lines(self) -> list[str]:
        anchored = f"; {self.anchors_checked} anchor(s) agree" if self.anchors_checked else ""
        if self.ok:
            return [
                f"OK: audit chain intact ({self.entries} entries); {self.rows_checked} rows in "
                f"{self.tables} tables match their audit entries{anchored}.",
                *self.notes,
            ]
        return [
            f"FAILED: {len(self.problems)} problem(s) found "
            f"({self.entries} audit entries, {self.rows_checked} rows checked):",
            *(f"  {p}" for p in self.problems),
            *self.notes,
        ]


def verify_database(
    path: Path,
    keys: key_slots.DatabaseKeys | None = None,
    anchors: Sequence[Path | str] = (),
) -> VerifyReport:
    """Verify the file at ``path``; a missing or unreadable file is a plain StoreError.

    ``keys`` are the unlocked database's keys (``PLAIN_KEYS`` for a plain file); ``anchors``
    are anchor logs, backups, PDFs or exports (or ``#N:MAC`` typed from a printout) to hold the
    file's chain against.
    """
    path = Path(path)
    if not path.exists():
        raise StoreError(f"There is no database at {path}.", "missing")
    try:
        db = connect_readonly(path)  # keyed (and its keys attached) when encrypted
        conn = db.conn
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.Error as exc:
        raise explain(exc, path) from exc
    try:
        if "audit" not in tables:
            raise StoreError(
                f"{path} has no audit trail (it was written by a KAP Monitor before 0.2 and "
                "never opened by a newer one); open it once with KAP Monitor to start one.",
                "unaudited",
            )
        return verify(db, keys, anchors)
    except sqlite3.Error as exc:
        raise explain(exc, path) from exc
    finally:
        conn.close()


def verify(
    db: Database,
    keys: key_slots.DatabaseKeys | None = None,
    anchors: Sequence[Path | str] = (),
) -> VerifyReport:
    from kapmonitor.store import schema_check

    report = VerifyReport()
    for difference in schema_check.differences(db):
        report.problems.append(
            f"the file's structure was changed outside KAP Monitor: {difference}"
        )
    recorded = _walk_chain(db, report, keys or key_slots.keys_of(db))
    _cross_check(db, recorded, report)
    if anchors:
        from kapmonitor.store import anchors as anchor_check

        anchor_check.check(db, anchors, report)
    # --- signatures (kapmonitor.store.signatures, H3): each signature checked with its
    # signer's public key, against the session's content as it was when signed, and its key
    # against the anchor log's record of keys when one is given.
    from kapmonitor.store import signatures

    report.problems.extend(signatures.check_signatures(db, anchors))
    return report


@dataclass
class _Segment:
    """A stretch of the chain under one key (or unkeyed, before the first key marker)."""

    start: int
    key: bytes | None
    key_id: str | None  # None: the unkeyed stretch before the keyed chain
    end: int = 0


def _ranges(numbers: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs


def _entries_text(first: int, last: int) -> str:
    return f"audit entry #{first}" if first == last else f"audit entries #{first}–#{last}"


def _keyed_required(db: Database) -> bool:
    """Whether this file's schema includes the keyed chain (so an unkeyed trail is a rewrite)."""
    if db.execute("PRAGMA user_version").fetchone()[0] >= 11:
        return True
    try:
        found = db.execute(
            "SELECT 1 FROM _sqlite_migrations WHERE name = ?", [KEYED_MIGRATION]
        ).fetchone()
    except sqlite3.Error:
        return False
    return found is not None


def _walk_chain(
    db: Database, report: VerifyReport, keys: key_slots.DatabaseKeys
) -> dict[tuple[str, int], list[tuple[int, str | None, str, str]]]:
    """Check each link and MAC; return every entry recorded for each (table, row)."""
    held = {audit.PLAIN_KEY_ID: audit.audit_key(key_slots.PLAIN_KEYS)}
    given = audit.audit_key(keys)
    held[audit.key_id(given)] = given
    recorded: dict[tuple[str, int], list[tuple[int, str | None, str, str]]] = {}
    altered: list[int] = []
    unkeyed: list[int] = []
    segments: list[_Segment] = []
    running = hashlib.sha256()
    previous = audit.GENESIS
    expected_id = None
    for entry in audit.entries(db):
        number = entry["id"]
        if expected_id is not None and number != expected_id:
            report.problems.append(
                f"audit entries #{expected_id}–#{number - 1}: removed from the trail"
            )
        expected_id = number + 1
        fields = {name: entry[name] for name in audit.CHAINED_FIELDS}
        if entry["actor"] == audit.SYSTEM and entry["action"] == audit.KEY_MARKER:
            _check_marker(entry, report, segments, running.hexdigest(), held)
        elif not segments:
            segments.append(_Segment(number, None, None))
        segment = segments[-1]
        segment.end = number
        if entry["prev_hash"] != previous:
            report.problems.append(
                f"audit entry #{number}: does not follow the entry before it "
                "(an entry was removed, inserted or reordered)"
            )
        if segment.key_id is None:
            if audit.entry_hash(entry["prev_hash"], fields) != entry["hash"]:
                altered.append(number)
        elif segment.key is not None and (
            audit.entry_mac(segment.key, entry["prev_hash"], fields) != entry["hash"]
        ):
            public = audit.entry_hash(entry["prev_hash"], fields) == entry["hash"]
            (unkeyed if public else altered).append(number)
        report.entries += 1
        running.update(audit.entry_digest_line(entry))
        previous = entry["hash"]
        report.head = (number, entry["hash"])
        if entry["table_name"] is not None and entry["row_id"] is not None:
            recorded.setdefault((entry["table_name"], entry["row_id"]), []).append(
                (number, entry["row_hash"], entry["action"], entry["actor"])
            )
    for first, last in _ranges(altered):
        its = "its hash does not" if first == last else "their hashes do not"
        report.problems.append(f"{_entries_text(first, last)}: altered ({its} match)")
    for first, last in _ranges(unkeyed):
        report.problems.append(
            f"{_entries_text(first, last)}: rewritten with the public unkeyed hash where the "
            "keyed MAC belongs (the chain was recomputed without the database's audit key)"
        )
    _segment_notes(db, report, segments)
    return recorded


def _check_marker(
    entry: dict[str, Any],
    report: VerifyReport,
    segments: list[_Segment],
    digest_before: str,
    held: dict[str, bytes],
) -> None:
    """A key marker starts a keyed stretch; it must pin exactly the entries before it."""
    number = entry["id"]
    try:
        detail = json.loads(entry["detail"])
        kid = str(detail["key_id"])
        before, digest = int(detail["before"]), str(detail["digest"])
    except (ValueError, TypeError, KeyError):
        report.problems.append(f"audit entry #{number}: a key marker that cannot be read")
        kid, before, digest = "", -1, ""
    if before != report.entries or digest != digest_before:
        report.problems.append(
            f"audit entry #{number} (where the keyed chain starts or its key changes) does not "
            f"match the {report.entries} entries before it: entries before #{number} were "
            "altered, removed or inserted"
        )
    downgrade = segments and segments[-1].key_id not in (None, audit.PLAIN_KEY_ID)
    if downgrade and kid == audit.PLAIN_KEY_ID:
        report.problems.append(
            f"audit entry #{number}: switches an encrypted database's chain to the public key "
            "of a plain file (a forged continuation)"
        )
    segments.append(_Segment(number, held.get(kid), kid))


def _segment_notes(db: Database, report: VerifyReport, segments: list[_Segment]) -> None:
    if not segments:
        return
    keyed = [s for s in segments if s.key_id is not None]
    if not keyed:
        if _keyed_required(db):
            report.problems.append(
                "the audit trail has no keyed entries although this file's schema includes the "
                "keyed chain (migration 0011): the chain was recomputed without its key"
            )
        else:
            report.notes.append(
                f"Note: this file is from before the keyed audit chain: its {report.entries} "
                "entries are chained with an unkeyed hash that anyone can recompute."
            )
        return
    if segments[0].key_id is None:
        first = segments[0]
        report.notes.append(
            f"Note: {_entries_text(first.start, first.end)}: from before the keyed chain (an "
            f"unkeyed hash anyone could recompute); entry #{keyed[0].start} pinned them when the "
            "keyed chain started."
        )
    last = keyed[-1]
    for earlier, later in itertools.pairwise(keyed):
        if earlier.key_id == audit.PLAIN_KEY_ID and last.key_id != audit.PLAIN_KEY_ID:
            report.notes.append(
                f"Note: {_entries_text(earlier.start, earlier.end)}: sealed while the file was "
                "plain (under its public key); anyone could have recomputed them until entry "
                f"#{later.start} pinned them."
            )
        if earlier.key is None:
            report.notes.append(
                f"Note: {_entries_text(earlier.start, earlier.end)}: sealed under an earlier "
                f"database key; checked through the digest entry #{later.start} recorded of "
                "them, not one by one."
            )
    if last.key is None:
        report.problems.append(
            f"{_entries_text(last.start, last.end)}: sealed with a key this check was not "
            "given; unlock the database to verify them (or they were forged under a made-up key)"
        )
    elif last.key_id == audit.PLAIN_KEY_ID:
        report.notes.append(PLAIN_KEY_NOTE)


def _cross_check(
    db: Database,
    recorded: dict[tuple[str, int], list[tuple[int, str | None, str, str]]],
    report: VerifyReport,
) -> None:
    tables = audit.audited_tables(db)
    report.tables = len(tables)
    seen: set[tuple[str, int]] = set()
    for table in tables:
        cursor = db.execute(f"SELECT rowid AS __rowid__, * FROM [{table}] ORDER BY rowid")
        names = [d[0] for d in cursor.description]
        for found in cursor:
            content: dict[str, Any] = dict(zip(names, found, strict=True))
            rowid = content.pop("__rowid__")
            report.rows_checked += 1
            key = (table, rowid)
            seen.add(key)
            label = _label(table, rowid, content)
            entries = recorded.get(key)
            if not entries:
                report.problems.append(f"{label}: inserted outside the app (no audit entry)")
                continue
            number, digest = _expected_entry(label, table, entries, report)
            if audit.row_hash(audit.hashed_content(table, content)) != digest:
                report.problems.append(
                    f"{label}: altered after it was recorded (audit entry #{number})"
                )
    for (table, rowid), entries in sorted(recorded.items()):
        if (table, rowid) not in seen:
            report.problems.append(
                f"{table} row {rowid}: removed (recorded by audit entry #{entries[0][0]})"
            )


def _expected_entry(
    label: str,
    table: str,
    entries: list[tuple[int, str | None, str, str]],
    report: VerifyReport,
) -> tuple[int, str | None]:
    """The entry a row must match, naming every entry that should not be there.

    A row of an updatable table (``users``) must match its newest entry, each change being
    sealed. A row of an append-only table is recorded once, when written; a later entry for it
    is an entry appended to cover an edit, unless it is a migration's open re-seal.
    """
    if table in audit.UPDATABLE:
        number, digest, _action, _actor = entries[-1]
        return number, digest
    number, digest = entries[0][0], entries[0][1]
    for later, later_digest, action, actor in entries[1:]:
        if actor == audit.SYSTEM and table in RESEALS.get(action, frozenset()):
            number, digest = later, later_digest
            continue
        report.problems.append(
            f"{label}: a second audit entry #{later} ({action} by {actor}) was added for a row "
            f"already recorded by entry #{entries[0][0]} (an entry appended to cover an edit)"
        )
    return number, digest


def _label(table: str, rowid: int, content: dict[str, Any]) -> str:
    if table == "sessions":
        return f"sessions row {rowid} (session {content.get('id')})"
    return f"{table} row {rowid}"
