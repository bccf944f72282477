"""Supervisor review: amendments, review comments, sign-off and addenda.

The database enforces the hard rules (a signature needs an active supervisor or administrator
account and an ended session; a signed session takes no new clinical rows; an addendum needs a
signature). This module adds the rules that need a person: the password is checked again at the
moment of signing (21 CFR 11.200: signing is a deliberate act, not a side effect of being signed
in), the signer confirms every quality flag of the session (an early discharge, a tenfold dose
correction…) and the flags confirmed are stored with the signature as an audit entry, clinicians
amend only their own entries, and every refusal is audited with who tried what.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime
from typing import Any

from kapmonitor.domain.changes import Changes
from kapmonitor.domain.clock import to_iso
from kapmonitor.domain.quality import AUDITED_OVERRIDES, QualityFlag, quality_flags
from kapmonitor.domain.records import Entry
from kapmonitor.domain.validation import FieldError, ValidationError, check_text_length
from kapmonitor.store import anchors, audit, permissions, signatures
from kapmonitor.store.accounts import Accounts, User
from kapmonitor.store.database import plain_errors
from kapmonitor.store.inserts import insert_returning
from kapmonitor.store.schema import SIGNING_ROLES
from kapmonitor.store.session_store import SessionLog, SessionStore

DEFAULT_MEANING = "reviewed and approved"
AMENDING_ROLES = permissions.AMENDING_ROLES
COMMENTING_ROLES = permissions.COMMENTING_ROLES
# The audit action that stores, with a signature, the quality flags its signer confirmed.
FLAGS_CONFIRMED = "flags_confirmed"


def session_quality_flags(
    store: SessionStore, log: SessionLog, now: datetime | None = None
) -> list[QualityFlag]:
    """A session's quality flags, the same wherever a supervisor sees them (the review tab,
    the sign dialog, the store's check at signing, the PDF report): the current rows, every
    superseded version (corrections are judged against what they replaced) and the session's
    audited overrides (the critical-alarm sound turned off, with its reason)."""
    current = {table: log.current(table) for table in log.rows}
    marks = ", ".join("?" * len(AUDITED_OVERRIDES))
    current["audit"] = list(
        store.db.query(
            f"SELECT id, at, actor, action, detail FROM audit WHERE session_id = ? "
            f"AND action IN ({marks}) ORDER BY id",
            [log.id, *AUDITED_OVERRIDES],
        )
    )
    return quality_flags(
        log.session,
        current,
        log.protocol,
        now or store.clock.now(),
        ref=store.ref,
        history=log.rows,
    )


class Review:
    """Review operations on a store, each checked against the acting user's role."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store
        self.db = store.db
        self.path = store.path
        self.accounts = Accounts(store.db, store.clock)

    # --- reading -------------------------------------------------------------------------

    def signatures(self, session_id: str) -> list[dict[str, Any]]:
        return list(
            self.db.query("SELECT * FROM signatures WHERE session_id = ? ORDER BY id", [session_id])
        )

    def is_signed(self, session_id: str) -> bool:
        return bool(self.signatures(session_id))

    def quality_flags(self, session_id: str) -> list[QualityFlag]:
        """The session's quality flags as the signer must confirm them: from the current rows
        and, for corrections, the versions they replaced, against the session's own protocol."""
        return session_quality_flags(self.store, self.store.load(session_id))

    def confirmations(self, session_id: str) -> list[dict[str, Any]]:
        """What each signature of the session confirmed: ``{"signature_id", "flags"}`` read
        back from the audit trail (each flag as :meth:`QualityFlag.as_record` wrote it)."""
        rows = self.db.execute(
            "SELECT detail FROM audit WHERE action = ? AND session_id = ? ORDER BY id",
            [FLAGS_CONFIRMED, session_id],
        ).fetchall()
        return [json.loads(detail) for (detail,) in rows]

    # --- writing -------------------------------------------------------------------------

    @plain_errors()
    def sign(
        self,
        session_id: str,
        username: str,
        secret: str,
        meaning: str = DEFAULT_MEANING,
        confirmed: Collection[str] = (),
    ) -> Changes:
        """Sign with the password typed now; the session is locked from this commit on.
        Returns the signature row (``primary_id`` is its id) and the audit actions written.

        ``confirmed`` holds the :attr:`QualityFlag.key` of every flag the signer ticked. Every
        flag the session has now must be among them, or nothing is signed: a flag that appeared
        (or changed its words) after the dialog opened has not been seen. The flags confirmed
        are written with the signature, in the same transaction, as a ``flags_confirmed``
        audit entry, so they are as append-only and tamper-evident as the signature."""
        user, key, private = self.accounts.unlock_signing_key(username, secret, "signature")
        self.accounts.require(user, *SIGNING_ROLES, action="sign a session", session_id=session_id)
        self._refuse_unaudited_role(user, session_id)
        refused = permissions.why_not_sign(self.db, session_id, user)
        if refused is not None:  # already signed, or still being recorded
            raise refused.error()
        if not meaning.strip():
            raise ValidationError(FieldError("meaning", "Say what the signature means"))
        flags = self.quality_flags(session_id)
        ticked = set(confirmed)
        left = [flag for flag in flags if flag.key not in ticked]
        if left:
            stale = ticked - {flag.key for flag in flags}
            changed = (
                " The flags changed since they were shown: close this dialog and review them again."
                if stale
                else ""
            )
            raise ValidationError(
                FieldError(
                    "flags",
                    f"Confirm every quality flag before signing: {len(left)} of {len(flags)} "
                    f"not confirmed.{changed}",
                )
            )
        now = to_iso(self.store.clock.now())
        with self.db.atomic():
            signature = insert_returning(
                self.db,
                "signatures",
                {
                    "session_id": session_id,
                    "observed_at": now,
                    "recorded_at": now,
                    "recorded_by": user.username,
                    "printed_name": user.display_name,
                    "role": user.role,
                    "meaning": meaning,
                },
            )
            signature_id = signature.id
            signatures.seal_signature(
                self.db,
                session_id,
                {
                    "id": signature_id,
                    "recorded_by": user.username,
                    "printed_name": user.display_name,
                    "role": user.role,
                    "meaning": meaning,
                    "recorded_at": now,
                },
                private,
                key,
            )
            at = self.store.clock.now()
            audit.seal(self.db, user.username, "signature", at, session_id)
            audit.event(
                self.db,
                user.username,
                FLAGS_CONFIRMED,
                at,
                {"signature_id": signature_id, "flags": [flag.as_record() for flag in flags]},
                session_id,
            )
        anchors.note(self.db, "sign-off")  # the signed head, in the anchor log outside the file
        return Changes(
            session_id, "signature", (("signatures", signature),), ("signature", FLAGS_CONFIRMED)
        )

    @plain_errors()
    def attest(self, session_id: str, username: str, secret: str) -> Changes:
        """An attending clinician attests the record at the session's end with their own key
        (the password typed now opens it): the statement a sign-off signs, over the rows as
        they are now. It locks nothing; a correction later is a new row, not covered."""
        user, key, private = self.accounts.unlock_signing_key(username, secret, "attestation")
        ended = self.db.execute(
            "SELECT 1 FROM session_ends WHERE session_id = ? AND voided = 0", [session_id]
        ).fetchone()
        if ended is None:
            raise ValidationError(FieldError("session", "The session has not ended yet"))
        attending = {
            r[0]
            for r in self.db.execute(
                "SELECT name FROM session_clinicians WHERE session_id = ?", [session_id]
            )
        }
        if user.display_name not in attending:
            self._audit_refusal(user, "attest a session they did not attend", session_id)
            raise permissions.AccessRefused(
                f"{user.display_name} is not an attending clinician of this session", "role"
            )
        if self.db.execute(
            "SELECT 1 FROM attestations WHERE session_id = ? AND signer = ?",
            [session_id, user.username],
        ).fetchone():
            raise ValidationError(
                FieldError("session", f"{user.display_name} has already attested this session")
            )
        at = self.store.clock.now()
        with self.db.atomic():
            signatures.attest(
                self.db,
                session_id,
                {"username": user.username, "display_name": user.display_name, "role": user.role},
                private,
                key,
                to_iso(at),
            )
            audit.seal(self.db, user.username, "attestation", at, session_id)
        return Changes(session_id, "attestation", (), ("attestation",))

    def attestations(self, session_id: str) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT * FROM attestations WHERE session_id = ? ORDER BY id", [session_id]
            )
        )

    @plain_errors()
    def add_review_comment(self, session_id: str, user: User, at: datetime, text: str) -> Changes:
        """A supervisor's comment pinned to a moment of the session (before sign-off)."""
        self.accounts.require(
            user, *COMMENTING_ROLES, action="add a review comment", session_id=session_id
        )
        self._refuse_if_signed(session_id)
        return self._insert_note("review_comments", session_id, user, at, text, "review_comment")

    @plain_errors()
    def add_addendum(self, session_id: str, user: User, text: str) -> Changes:
        """After sign-off, the only way to add to a session: marked as an addendum."""
        refused = permissions.why_not_addendum(self.db, session_id)
        if refused is not None:
            raise refused.error()
        return self._insert_note(
            "addenda", session_id, user, self.store.clock.now(), text, "addendum"
        )

    @plain_errors()
    def amend(
        self,
        session_id: str,
        user: User,
        original_id: int,
        entry: Entry,
        reason: str,
        *,
        void: bool = False,
    ) -> Changes:
        """A clinician corrects their own entry before sign-off; the original stays."""
        self.accounts.require(user, *AMENDING_ROLES, action="amend an entry", session_id=session_id)
        refused = permissions.why_not_amend(self.db, session_id, user, entry.table, original_id)
        if refused is not None:
            if refused.kind == "author":
                self._audit_refusal(user, "amend another clinician's entry", session_id)
            raise refused.error()
        return self.store.correct(
            session_id, original_id, entry, reason, user.display_name, void=void
        )

    def seal(self, session_id: str) -> dict[str, Any] | None:
        """The cryptographic seal of the session's signature (None when unsigned)."""
        rows = list(
            self.db.query(
                "SELECT * FROM signature_seals WHERE session_id = ? ORDER BY id", [session_id]
            )
        )
        return rows[0] if rows else None

    def signed_elsewhere(self, session_id: str) -> list[dict[str, Any]]:
        """Signatures that came with an imported session: never signatures made here."""
        return list(
            self.db.query(
                "SELECT * FROM imported_signatures WHERE session_id = ? ORDER BY id", [session_id]
            )
        )

    # --- helpers -------------------------------------------------------------------------

    def _refuse_unaudited_role(self, user: User, session_id: str) -> None:
        """The role that counts for signing is the audited one (the administrator's path
        writes ``account_roles``): a role raised with SQL in ``users`` does not sign."""
        found = self.db.execute(
            "SELECT role FROM account_roles WHERE username = ? ORDER BY id DESC LIMIT 1",
            [user.username],
        ).fetchone()
        if found is not None and found[0] == user.role:
            return
        self._audit_refusal(user, "sign with a role not in the audited role history", session_id)
        raise permissions.AccessRefused(
            f"{user.display_name}'s role ({user.role}) was not given through the "
            "administrator's account path: nothing was signed. Ask the administrator.",
            field="role",
        )

    def _refuse_if_signed(self, session_id: str) -> None:
        refused = permissions.why_not_change(self.db, session_id)
        if refused is not None:
            raise refused.error()

    def _insert_note(
        self, table: str, session_id: str, user: User, at: datetime, text: str, action: str
    ) -> Changes:
        if not text.strip():
            raise ValidationError(FieldError("text", "Write the text"))
        check_text_length("text", text)
        now = self.store.clock.now()
        with self.db.atomic():
            note = insert_returning(
                self.db,
                table,
                {
                    "session_id": session_id,
                    "observed_at": to_iso(at),
                    "recorded_at": to_iso(now),
                    "recorded_by": user.display_name,
                    "text": text.strip(),
                },
            )
            audit.seal(self.db, user.username, action, now, session_id)
        return Changes(session_id, action, ((table, note),), (action,))

    def _audit_refusal(self, user: User, action: str, session_id: str) -> None:
        with self.db.atomic():
            audit.event(
                self.db,
                user.username,
                "refused",
                self.store.clock.now(),
                {"attempted": action, "role": user.role},
                session_id,
            )
