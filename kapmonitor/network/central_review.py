"""Sign-off, comments and addenda written at the clinic's central archive (Qt-free).

A supervisor registered with ``kapmonitor server add-reviewer`` signs in to the archive with their
reviewer role and reviews one laptop's session there. What they write goes to
``kap.central_reviews`` (server schema 0004): INSERT-only, in their own name (the server fills the
reviewer, printed name and role from ``kap.reviewers``), readable by the originating laptop's role
only, and brought back to that laptop by its next sync (:mod:`review_return`).

A sign-off signs the same statement as a local seal (:func:`kapmonitor.store.signatures.statement`:
session id, signer, printed name, role, meaning, signed_at, content hash, audit head, key
fingerprint) with the supervisor's Ed25519 key. The content hash is computed with the laptop's
own function (:func:`kapmonitor.store.signatures.content_hash`) over the session AS THE SERVER
HOLDS IT (:mod:`kapmonitor.network.central_session`: its mirror rows in an in-memory copy of the
laptop schema), covering every row the server holds of the session, with the laptop's newest
audit entry the server holds as the head. Signing is a deliberate act: the password is typed
for it, and opens the key here, on the supervisor's machine (the server keeps only the
password-wrapped copy made by ``add-reviewer``).

Refusals are :class:`~kapmonitor.network.connection.NetworkError` in plain words: the session is
not on the server, not ended, already signed; the password does not open the key; the role is
not a registered reviewer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kapmonitor.domain.clock import to_iso
from kapmonitor.network.connection import NetworkError, connect, explain
from kapmonitor.store import signatures
from kapmonitor.store.errors import StoreError

DEFAULT_MEANING = "reviewed and approved"


@dataclass(frozen=True)
class Reviewer:
    """The signed-in reviewer as the server registered them."""

    role_name: str
    printed_name: str
    role_title: str
    public_key: str
    fingerprint: str


@dataclass(frozen=True)
class CentralSignOff:
    """A sign-off stored at the centre (what the review window shows after signing)."""

    central_id: int
    laptop_id: str
    session_id: str
    printed_name: str
    role_title: str
    meaning: str
    signed_at: str
    content_hash: str
    key_fingerprint: str


def reviewer(pg: Any) -> Reviewer:
    """The connection's reviewer (a plain refusal for a role that is not one)."""
    found = pg.execute(
        "SELECT role_name, printed_name, role_title, public_key, fingerprint "
        "FROM kap.reviewers WHERE role_name = session_user"
    ).fetchone()
    if found is None:
        raise NetworkError(
            "This server role is not a registered reviewer (kapmonitor server add-reviewer "
            "makes one); nothing was written.",
            "not-a-reviewer",
        )
    return Reviewer(*(str(v) for v in found))


def _session_state(pg: Any, laptop_id: str, session_id: str) -> tuple[bool, str]:
    """(ended, who signed it already: words, or "") for a session the server holds."""
    if (
        pg.execute(
            "SELECT 1 FROM kap.sessions WHERE laptop_id = %s AND id = %s", [laptop_id, session_id]
        ).fetchone()
        is None
    ):
        raise NetworkError(
            f"The archive holds no session {session_id} from laptop {laptop_id}: nothing was "
            "written.",
            "no-session",
        )
    ended = pg.execute(
        "SELECT 1 FROM kap.session_ends WHERE laptop_id = %s AND session_id = %s "
        "AND coalesce(voided, 0) = 0",
        [laptop_id, session_id],
    ).fetchone()
    central = pg.execute(
        "SELECT printed_name, written_at FROM kap.central_reviews WHERE laptop_id = %s "
        "AND session_id = %s AND kind = 'signature'",
        [laptop_id, session_id],
    ).fetchone()
    if central is not None:
        return ended is not None, f"at the centre by {central[0]} ({central[1][:16]} UTC)"
    local = pg.execute(
        "SELECT printed_name FROM kap.signatures WHERE laptop_id = %s AND session_id = %s "
        "ORDER BY local_id LIMIT 1",
        [laptop_id, session_id],
    ).fetchone()
    if local is not None:
        return ended is not None, f"on its laptop by {local[0]}"
    return ended is not None, ""


def server_content(pg: Any, laptop_id: str, session_id: str) -> dict[str, Any]:
    """What a central sign-off covers, computed as the laptop computes a local seal's
    (:func:`~kapmonitor.store.signatures.covered_now`, :func:`~kapmonitor.store.signatures
    .audit_head`, :func:`~kapmonitor.store.signatures.content_hash`) on the session as the server
    holds it (:func:`kapmonitor.network.central_session.materialise`): the content hash, the ids
    covered per table, and the head (the laptop's newest audit entry the server holds)."""
    from kapmonitor.network.central_session import materialise

    with materialise(pg, session_id, laptop_id) as copy:
        covered = signatures.covered_now(copy.db, session_id)
        head = signatures.audit_head(copy.db)
        digest = signatures.content_hash(copy.db, session_id, covered, head)
    return {"content_hash": digest, "covered": covered, "head": head}


def sign_centrally(
    url: str,
    laptop_id: str,
    session_id: str,
    password: str,
    meaning: str = DEFAULT_MEANING,
    now: datetime | None = None,
) -> CentralSignOff:
    """Sign one laptop's ended session at the centre with the reviewer's key, opened here by
    ``password`` (typed for this signature). Refuses in plain words (see the module doc)."""
    import psycopg

    if not meaning.strip():
        raise NetworkError("Say what the signature means; nothing was signed.", "meaning")
    pg = connect(url)
    try:
        who = reviewer(pg)
        ended, signed = _session_state(pg, laptop_id, session_id)
        if not ended:
            raise NetworkError(
                "The session has not ended on its laptop (or its end has not reached the "
                "archive yet): it cannot be signed; nothing was signed.",
                "not-ended",
            )
        if signed:
            raise NetworkError(
                f"The session is already signed ({signed}); nothing was signed. Add an addendum "
                "instead.",
                "already-signed",
            )
        wrapped = pg.execute("SELECT kap.my_signing_key()").fetchone()[0]
        try:
            private = signatures.unwrap(str(wrapped or ""), password)
        except StoreError as exc:
            raise NetworkError(
                f"The password is not right for {who.printed_name}'s signing key: nothing was "
                "signed.",
                "password",
            ) from exc
        if signatures.public_hex(private) != who.public_key:
            raise NetworkError(
                "The signing key stored for you does not match your registered public key: "
                "nothing was signed. Ask the administrator.",
                "key",
            )
        content = server_content(pg, laptop_id, session_id)
        signed_at = to_iso(now or datetime.now(UTC))
        fields = {
            "session_id": session_id,
            "signer": who.role_name,
            "printed_name": who.printed_name,
            "role": who.role_title,
            "meaning": meaning.strip(),
            "signed_at": signed_at,
            "content_hash": content["content_hash"],
            "audit_head_id": content["head"][0],
            "audit_head_hash": content["head"][1],
            "key_fingerprint": who.fingerprint,
        }
        signature = private.sign(signatures.statement(fields)).hex()
        (central_id,) = pg.execute(
            "INSERT INTO kap.central_reviews (laptop_id, session_id, kind, printed_name, "
            "role_title, written_at, meaning, content_hash, covered, audit_head_id, "
            "audit_head_hash, key_fingerprint, public_key, signature) VALUES (%s, %s, "
            "'signature', '', '', %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            [
                laptop_id,
                session_id,
                signed_at,
                fields["meaning"],
                fields["content_hash"],
                json.dumps(content["covered"], sort_keys=True),
                fields["audit_head_id"],
                fields["audit_head_hash"],
                who.fingerprint,
                who.public_key,
                signature,
            ],
        ).fetchone()
        pg.commit()  # the earlier reads opened the transaction: commit it whole
    except psycopg.errors.UniqueViolation as exc:
        raise NetworkError(
            "The session is already signed (someone signed it a moment ago); nothing was signed.",
            "already-signed",
        ) from exc
    except psycopg.Error as exc:
        raise explain(exc, url) from exc
    finally:
        pg.close()
    return CentralSignOff(
        int(central_id),
        laptop_id,
        session_id,
        who.printed_name,
        who.role_title,
        fields["meaning"],
        signed_at,
        str(fields["content_hash"]),
        who.fingerprint,
    )


def _note(
    url: str,
    laptop_id: str,
    session_id: str,
    kind: str,
    text: str,
    moment: datetime | None,
    now: datetime | None,
) -> int:
    import psycopg

    if not text.strip():
        raise NetworkError("Write the text; nothing was written.", "text")
    pg = connect(url)
    try:
        reviewer(pg)
        _ended, signed = _session_state(pg, laptop_id, session_id)
        if kind == "comment" and signed:
            raise NetworkError(
                f"The session is signed ({signed}): add an addendum instead of a comment; "
                "nothing was written.",
                "signed",
            )
        if kind == "addendum" and not signed:
            raise NetworkError(
                "An addendum is for a signed session: before sign-off, add a comment; nothing "
                "was written.",
                "not-signed",
            )
        written = to_iso(now or datetime.now(UTC))
        (central_id,) = pg.execute(
            "INSERT INTO kap.central_reviews (laptop_id, session_id, kind, printed_name, "
            "role_title, written_at, observed_at, text) VALUES (%s, %s, %s, '', '', %s, %s, "
            "%s) RETURNING id",
            [
                laptop_id,
                session_id,
                kind,
                written,
                to_iso(moment) if moment is not None else None,
                text.strip(),
            ],
        ).fetchone()
        pg.commit()  # the earlier reads opened the transaction: commit it whole
    except psycopg.Error as exc:
        raise explain(exc, url) from exc
    finally:
        pg.close()
    return int(central_id)


def comment_centrally(
    url: str, laptop_id: str, session_id: str, text: str, moment: datetime | None = None
) -> int:
    """A supervisor's comment at the centre, pinned to ``moment`` of the session (before
    sign-off, as a local review comment); returns its central id."""
    return _note(url, laptop_id, session_id, "comment", text, moment, None)


def addendum_centrally(url: str, laptop_id: str, session_id: str, text: str) -> int:
    """An addendum at the centre (only for a signed session, as locally); its central id."""
    return _note(url, laptop_id, session_id, "addendum", text, None, None)


def central_reviews(url: str, laptop_id: str, session_id: str) -> list[dict[str, Any]]:
    """What the centre holds for one session (sign-off, comments, addenda), oldest first."""
    import psycopg

    pg = connect(url)
    try:
        cursor = pg.execute(
            "SELECT id, kind, reviewer, printed_name, role_title, written_at, observed_at, text, "
            "meaning, content_hash, key_fingerprint FROM kap.central_reviews "
            "WHERE laptop_id = %s AND session_id = %s ORDER BY id",
            [laptop_id, session_id],
        )
        names = [d.name for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    except psycopg.Error as exc:
        raise explain(exc, url) from exc
    finally:
        pg.close()
