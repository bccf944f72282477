"""Supervisors' review rows written at the clinic's central archive, received on the laptop.

A supervisor reviewing at the centre (kapmonitor.network.central_review) signs, comments on and
adds addenda to one laptop's session. The laptop's next sync brings those rows back
(kapmonitor.network.review_return); this module stores them: append-only in
``central_reviews`` (migration 0015), each sealed into the laptop's own audit chain under the
actor ``central:<reviewer role>``, stored once however often the pull is replayed
(``central_id`` is unique).

A central sign-off is not taken on trust: it is checked here, against the laptop's OWN rows,
before it is stored, and its status is stored with it in words:

- ``verified``: the Ed25519 signature verifies with the key in the row, that key is the one the
  server registered for the reviewer, the chain head it names is this laptop's own, and the
  content hash recomputed from this laptop's rows (ids up to those covered) equals the signed one,
  with no row of the session added since;
- ``earlier_state``: all of that, but ``rows_added`` rows were added to the session on the laptop
  after the state the supervisor signed (it signs what the server held then, not what is here);
- ``invalid``: anything else (another key, an altered statement, different content): never
  shown as signed.

A verified central sign-off closes the session on the laptop as a local sign-off does: the
migration's triggers refuse new rows in every table a signature locks (an addendum is the way to
add), because a clinician reading "signed" expects a closed record. An ``earlier_state`` or
``invalid`` one closes nothing. Qt-free.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from kapmonitor.domain.clock import to_iso
from kapmonitor.store import audit, signatures

TABLE = "central_reviews"
KINDS = ("signature", "comment", "addendum")
STATUSES = ("verified", "earlier_state", "invalid", "note")
# The audit action sealing a received row, and the actor prefix naming the central reviewer.
ACTION = "central_review"
ACTOR_PREFIX = "central:"


@dataclass(frozen=True)
class Verdict:
    """What the laptop concluded about a central sign-off: a status and the words for it."""

    status: str
    rows_added: int
    words: str


def statement_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """A central sign-off's statement fields, in the shape of a local seal's
    (:func:`kapmonitor.store.signatures.statement`): the signer is the reviewer's server role."""
    return {
        "session_id": row.get("session_id"),
        "signer": row.get("reviewer"),
        "printed_name": row.get("printed_name"),
        "role": row.get("role_title"),
        "meaning": row.get("meaning"),
        "signed_at": row.get("written_at"),
        "content_hash": row.get("content_hash"),
        "audit_head_id": row.get("audit_head_id"),
        "audit_head_hash": row.get("audit_head_hash"),
        "key_fingerprint": row.get("key_fingerprint"),
        "signature": row.get("signature"),
    }


def check(db: Database, row: Mapping[str, Any], registered_fingerprint: str | None) -> Verdict:
    """Check a central sign-off against this laptop's own rows (see the module docstring)."""
    session_id = str(row.get("session_id") or "")
    public = str(row.get("public_key") or "")
    claimed_fp = str(row.get("key_fingerprint") or "")
    if not registered_fingerprint:
        return Verdict("invalid", 0, "its reviewer has no key registered at the server")
    if signatures.fingerprint_or_none(public) != claimed_fp or claimed_fp != registered_fingerprint:
        return Verdict("invalid", 0, "it was not made with the reviewer's registered key")
    if not signatures.signature_valid(statement_fields(row), public):
        return Verdict("invalid", 0, "the signature does not verify (forged, or altered)")
    try:
        head = (int(row["audit_head_id"]), str(row["audit_head_hash"]))
        covered = {str(k): int(v) for k, v in json.loads(str(row["covered"])).items()}
    except (KeyError, ValueError, TypeError, AttributeError):
        return Verdict("invalid", 0, "its record of what it covers is unreadable")
    if not set(covered) <= set(signatures.COVERED_TABLES):
        return Verdict("invalid", 0, "it covers tables this laptop does not sign")
    found = db.execute("SELECT hash FROM audit WHERE id = ?", [head[0]]).fetchone()
    if head[0] and (found is None or found[0] != head[1]):
        return Verdict("invalid", 0, "it names an audit history this laptop does not have")
    if signatures.content_hash(db, session_id, covered, head) != row.get("content_hash"):
        return Verdict(
            "invalid", 0, "this laptop's record differs from the one signed at the centre"
        )
    added = 0
    for table in signatures.COVERED_TABLES:
        (n,) = db.execute(
            f"SELECT count(*) FROM [{table}] WHERE session_id = ? AND id > ?",
            [session_id, covered.get(table, 0)],
        ).fetchone()
        added += int(n)
    if added:
        return Verdict(
            "earlier_state",
            added,
            f"signed an earlier state: {added} row(s) added on this laptop since",
        )
    return Verdict("verified", 0, "verified: matches this laptop's record")


def held_up_to(db: Database) -> int:
    """The highest central id this laptop holds (the pull resumes after it)."""
    (top,) = db.execute(f"SELECT coalesce(max(central_id), 0) FROM {TABLE}").fetchone()
    return int(top)


def _time_or(value: Any, fallback: str) -> str:
    """A laptop-format UTC time, or ``fallback`` when the server's text is not one."""
    text = str(value or "")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return fallback
    return to_iso(parsed) if parsed.tzinfo is not None else fallback


def receive(
    db: Database, rows: Iterable[Mapping[str, Any]], registered: Mapping[str, str], at: datetime
) -> int:
    """Store the central review rows this laptop does not hold yet (one transaction, each row
    audited under ``central:<reviewer>``). ``registered`` maps reviewer role to the fingerprint
    the server registered for it. Rows of sessions this laptop does not hold are skipped (the
    server's row-level security should never send one). Returns how many were stored."""
    now = to_iso(at)
    stored = 0
    with db.atomic():
        for row in rows:
            kind = str(row.get("kind"))
            if kind not in KINDS:
                continue
            session_id = str(row.get("session_id") or "")
            if db.execute("SELECT 1 FROM sessions WHERE id = ?", [session_id]).fetchone() is None:
                continue
            if db.execute(
                f"SELECT 1 FROM {TABLE} WHERE central_id = ?", [int(row["id"])]
            ).fetchone():
                continue  # a replayed pull: stored once
            reviewer = str(row.get("reviewer") or "")
            if kind == "signature":
                verdict = check(db, row, registered.get(reviewer))
            else:
                verdict = Verdict("note", 0, "")
            written = _time_or(row.get("written_at"), now)
            moment = _time_or(row.get("observed_at"), written)
            db.execute(
                f"INSERT INTO {TABLE} (central_id, session_id, kind, reviewer, printed_name, "
                "role, written_at, text, meaning, content_hash, covered, audit_head_id, "
                "audit_head_hash, key_fingerprint, public_key, signature, status, rows_added, "
                "status_words, observed_at, recorded_at, recorded_by) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    int(row["id"]),
                    session_id,
                    kind,
                    reviewer,
                    str(row.get("printed_name") or reviewer),
                    str(row.get("role_title") or ""),
                    written,
                    row.get("text"),
                    row.get("meaning"),
                    row.get("content_hash"),
                    row.get("covered"),
                    row.get("audit_head_id"),
                    row.get("audit_head_hash"),
                    row.get("key_fingerprint"),
                    row.get("public_key"),
                    row.get("signature"),
                    verdict.status,
                    verdict.rows_added,
                    verdict.words,
                    moment if kind == "comment" else written,
                    now,
                    str(row.get("printed_name") or reviewer),
                ],
            )
            audit.seal(db, f"{ACTOR_PREFIX}{reviewer}", ACTION, at, session_id)
            stored += 1
    return stored


def rows_for(db: Database, session_id: str) -> list[dict[str, Any]]:
    cursor = db.execute(f"SELECT * FROM {TABLE} WHERE session_id = ? ORDER BY id", [session_id])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def central_rows(db: Database, session_id: str) -> list[dict[str, Any]]:
    """:func:`rows_for`, or nothing in a file older than migration 0015 (opened read-only)."""
    return rows_for(db, session_id) if _has_table(db) else []


def is_closed_centrally(db: Database, session_id: str) -> bool:
    """Whether a verified central sign-off closed the session on this laptop (False in a file
    older than migration 0015, opened read-only)."""
    return _has_table(db) and (
        db.execute(
            f"SELECT 1 FROM {TABLE} WHERE session_id = ? AND kind = 'signature' "
            "AND status = 'verified'",
            [session_id],
        ).fetchone()
        is not None
    )


def central_text(db: Database, session_id: str) -> str:
    """How the review shows what came from the centre, e.g. "Signed at the centre by Dr M. Chen,
    supervisor, 2026-11-28 14:02 UTC (verified: matches this laptop's record) · Comment at the
    centre by Dr M. Chen: …"; empty when nothing came."""
    if not _has_table(db):
        return ""
    parts = []
    for row in rows_for(db, session_id):
        when = str(row["written_at"])[:16].replace("T", " ") + " UTC"
        who = str(row["printed_name"])
        if row["kind"] == "signature" and row["status"] == "invalid":
            parts.append(
                f"A signature from the centre in the name of {who}, {when}, is NOT valid "
                f"({row['status_words']}): the session is not signed by it"
            )
        elif row["kind"] == "signature":
            parts.append(
                f"Signed at the centre by {who}, {row['role']}, {when} ({row['status_words']})"
            )
        elif row["kind"] == "comment":
            parts.append(f"Comment at the centre by {who}, {when}: {row['text']}")
        else:
            parts.append(f"Addendum at the centre by {who}, {when}: {row['text']}")
    return " · ".join(parts)


def _has_table(db: Database) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", [TABLE]).fetchone() is not None
