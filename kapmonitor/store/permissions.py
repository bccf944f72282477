"""Who may do what to a session, and why not: the one place these rules are written.

Each ``why_not_*`` function answers a question the windows ask before they open a form (may this
entry be added, corrected, amended, signed…?) and the store's own checks ask before they write:
``None`` when allowed, else the plain-language reason. The store raises with exactly that reason
(:meth:`Reason.error`), and the windows show the same words, so a rule is stated once and a
refusal reads the same whether the window or the store met it first. The database triggers stay
the last line (a signed session takes no rows whatever the caller); these answers come first so
nobody types a whole form to be refused.

Qt-free: the bedside, the review room, scripts and the scenario runner share it.
"""

from __future__ import annotations

import sqlite3
from typing import Protocol

from sqlite_utils import Database

from kapmonitor.domain.validation import FieldError, ValidationError
from kapmonitor.store.database import StoreError
from kapmonitor.store.schema import SIGNING_ROLES

AMENDING_ROLES = ("clinician", "supervisor", "administrator")
COMMENTING_ROLES = SIGNING_ROLES

# Entries the bedside closes once the session has ended: after the end, corrections, late
# adverse-effect outcomes, notes and interventions, the post-session questionnaire, the REMS
# details, alarm acknowledgements and the discharge check stay open.
CLOSED_AFTER_END = (
    "vitals",
    "doses",
    "observations",
    "adverse_events",
    "news2_scale_choices",
    "phase_changes",
    "session_ends",
    # A monitor left connected after the session's end keeps sending: its readings are refused
    # (the listener answers AE with this reason), never added to a closed record.
    "device_readings",
)
# Rows the store works out itself (scores, alarms, the protocol copy): they follow the entry they
# came from, so a correction goes to that entry instead.
DERIVED_TABLES = ("vital_scores", "alarms", "session_protocols")

# Kinds of refusal, so the store raises the error type its callers (and tests) expect.
ACCESS_KINDS = ("role", "author", "already_signed", "not_ended", "not_signed")
STORE_KINDS = ("signed", "ended", "missing_session")


class AccessRefused(ValidationError):
    """A plain refusal: wrong password, locked out, or not allowed for this role."""

    def __init__(self, message: str, field: str = "password") -> None:
        super().__init__(FieldError(field, message))
        self.message = message


class Reason(str):
    """The words of a refusal, with what kind of refusal it is and the field it concerns.

    A ``str``, so a window shows it as it is; :meth:`error` is what the store raises."""

    kind: str
    field: str

    def __new__(cls, text: str, kind: str, field: str = "") -> Reason:
        reason = super().__new__(cls, text)
        reason.kind = kind
        reason.field = field
        return reason

    def error(self) -> Exception:
        """The exception the store raises for this refusal, carrying exactly these words."""
        if self.kind in ACCESS_KINDS:
            return AccessRefused(str(self), field=self.field or "role")
        if self.kind in STORE_KINDS:
            return StoreError(str(self), "missing" if self.kind == "missing_session" else self.kind)
        return ValidationError(FieldError(self.field or "reason", str(self)))


class Person(Protocol):
    """What a rule needs to know of the acting account (:class:`accounts.User` fits)."""

    @property
    def display_name(self) -> str: ...

    @property
    def role(self) -> str: ...


# --- facts --------------------------------------------------------------------------------


def signed_by(db: Database, session_id: str) -> str | None:
    """The printed name of whoever signed the session, or None while it is unsigned."""
    found = db.execute(
        "SELECT printed_name FROM signatures WHERE session_id = ? ORDER BY id LIMIT 1",
        [session_id],
    ).fetchone()
    return found[0] if found else signed_centrally_by(db, session_id)


def signed_centrally_by(db: Database, session_id: str) -> str | None:
    """Who signed the session at the clinic's central archive, when that sign-off came back
    verified against this file's rows (kapmonitor.store.central_signatures): it closes the
    session as a local sign-off does. None otherwise, or in a file older than migration 0015."""
    try:
        found = db.execute(
            "SELECT printed_name FROM central_reviews WHERE session_id = ? "
            "AND kind = 'signature' AND status = 'verified' ORDER BY id LIMIT 1",
            [session_id],
        ).fetchone()
    except sqlite3.OperationalError:
        return None
    return f"{found[0]} (at the centre)" if found else None


def has_ended(db: Database, session_id: str) -> bool:
    """Whether the session's end stands (a voided end reopens it; a corrected one does not)."""
    found = db.execute(
        "SELECT 1 FROM session_ends e WHERE session_id = ? AND voided = 0 AND NOT EXISTS "
        "(SELECT 1 FROM session_ends c WHERE c.supersedes_id = e.id) LIMIT 1",
        [session_id],
    ).fetchone()
    return found is not None


def session_exists(db: Database, session_id: str) -> bool:
    return db.execute("SELECT 1 FROM sessions WHERE id = ?", [session_id]).fetchone() is not None


# --- the rules ----------------------------------------------------------------------------


def why_not_role(user: Person, roles: tuple[str, ...], action: str) -> Reason | None:
    """Whether ``user``'s role is among ``roles`` for ``action`` (e.g. "sign a session")."""
    if user.role in roles:
        return None
    return Reason(
        f"{user.display_name} ({user.role}) may not {action}: it needs a "
        f"{' or '.join(roles)} account",
        "role",
        "role",
    )


def why_not_change(db: Database, session_id: str) -> Reason | None:
    """A signed session is locked: nothing is added, corrected or amended."""
    signer = signed_by(db, session_id)
    if signer is None:
        return None
    return Reason(
        f"This session was signed by {signer} and is locked: nothing can be added, corrected "
        "or amended. A signed and locked session takes addenda only.",
        "signed",
    )


def why_not_add(db: Database, session_id: str, table: str) -> Reason | None:
    """May a new entry go into ``table``? Not once signed, nor (for the monitoring entries of
    :data:`CLOSED_AFTER_END`) once the session has ended."""
    if not session_exists(db, session_id):
        return Reason(f"Session {session_id} does not exist.", "missing_session")
    locked = why_not_change(db, session_id)
    if locked is not None:
        return locked
    if table in CLOSED_AFTER_END and has_ended(db, session_id):
        return Reason("This session has ended; new entries are closed.", "ended")
    return None


def why_not_correct(db: Database, session_id: str, table: str, row_id: int) -> Reason | None:
    """May row ``row_id`` of ``table`` be corrected? Not once signed, not a worked-out row, not
    a row of another session, and only its latest version (a correction chain stays a line)."""
    locked = why_not_change(db, session_id)
    if locked is not None:
        return locked
    if table in DERIVED_TABLES:
        return Reason(
            "Scores, alarms and the protocol copy are worked out from the entries: correct the "
            "entry they came from.",
            "derived",
        )
    owner = db.execute(f"SELECT session_id FROM {table} WHERE id = ?", [row_id]).fetchone()
    if owner is None or owner[0] != session_id:
        return Reason("The entry to correct was not found in this session.", "missing")
    taken = db.execute(f"SELECT 1 FROM {table} WHERE supersedes_id = ?", [row_id]).fetchone()
    if taken is not None:
        return Reason("This entry was already corrected: correct the latest version.", "superseded")
    return None


def why_not_amend(
    db: Database,
    session_id: str,
    user: Person,
    table: str | None = None,
    row_id: int | None = None,
) -> Reason | None:
    """May ``user`` amend (correct from the review room) an entry? Clinicians amend only their
    own entries, before sign-off. Without a row, whether they may amend any entry at all."""
    refused = why_not_role(user, AMENDING_ROLES, "amend an entry") or why_not_change(db, session_id)
    if refused is not None or table is None or row_id is None:
        return refused
    refused = why_not_correct(db, session_id, table, row_id)
    if refused is not None:
        return refused
    (author,) = db.execute(f"SELECT recorded_by FROM {table} WHERE id = ?", [row_id]).fetchone()
    if author != user.display_name:
        return Reason(
            f"Only {author}, who recorded this entry, can amend it; add a review comment instead",
            "author",
            "reason",
        )
    return None


def why_not_sign(db: Database, session_id: str, user: Person) -> Reason | None:
    """A supervisor or administrator signs an ended session, once."""
    refused = why_not_role(user, SIGNING_ROLES, "sign a session")
    if refused is not None:
        return refused
    if signed_by(db, session_id) is not None:
        return Reason("This session is already signed", "already_signed", "meaning")
    if not has_ended(db, session_id):
        return Reason(
            "End the session before signing it (it is still being recorded)",
            "not_ended",
            "meaning",
        )
    return None


def why_not_comment(db: Database, session_id: str, user: Person) -> Reason | None:
    """A supervisor's review comment goes in before sign-off; afterwards only addenda."""
    return why_not_role(user, COMMENTING_ROLES, "add a review comment") or why_not_change(
        db, session_id
    )


def why_not_addendum(db: Database, session_id: str) -> Reason | None:
    """An addendum is the one addition a signed session takes, and only a signed one."""
    if signed_by(db, session_id) is not None:
        return None
    return Reason(
        "Addenda are for signed sessions; before sign-off, add or correct entries",
        "not_signed",
        "text",
    )
