"""Signatures that cannot be forged: each account's Ed25519 key, and what a sign-off signs.

Every account has an Ed25519 key pair (created with the account, or at the first password entry
after migration 0012 for an account older than it). The private key is stored only wrapped:
AES-256-GCM under a key derived from the account's password with scrypt, so whoever swaps the
``password_hash`` for one they know can sign in, but cannot open the key and so cannot make a
signature that verifies. The public key and its fingerprint are stored in ``signing_keys``
(append-only, audited), printed on the account sheet (``kapmonitor accounts --sheet``) and
written to the audit trail, so a key planted later is not on the sheet the administrator kept.

A sign-off signs a *statement*: the session id, the signer, their role and printed name, the
meaning, the time and the session's **content hash** (SHA-256 over the canonical content of the
session row and of every row a signature locks, in table and id order, with the highest id
covered per table, plus the audit chain head at signing). ``kapmonitor verify`` recomputes the
content hash from the rows with ids up to the ones covered, and checks every signature with the
signer's public key (:func:`check_signatures`).

Qt-free, like the rest of the store.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from sqlite_utils import Database

from kapmonitor.domain.clock import to_iso
from kapmonitor.store import audit
from kapmonitor.store.database import StoreError
from kapmonitor.store.schema import LOCKED_BY_SIGNATURE

STATEMENT_VERSION = 1
WRAP_MAXMEM = 512 * 1024 * 1024
# The tables a signature's content hash covers, besides the session row itself: every table a
# signature locks (so no row can join them after signing), in this fixed order, and the device
# readings (0014) with their reviews, so a pending or artefact-marked device value is part of what
# was signed too. Each seal stores the tables and ids it covered, so a table added here never
# changes the hash of a signature made before it.
COVERED_TABLES: tuple[str, ...] = (
    *LOCKED_BY_SIGNATURE,
    "device_readings",
    "device_reading_reviews",
)


@dataclass(frozen=True)
class KdfCost:
    """scrypt parameters; stored with every hash and wrapped key, so a raised cost never
    strands an old one."""

    n: int
    r: int
    p: int


class KeyUnavailable(StoreError):
    """The signing key cannot be opened with the password typed (or the account has none)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "signing_key")


def derive(secret: str, salt: bytes, cost: KdfCost) -> bytes:
    """32 bytes from a password: scrypt with the given cost (memory-hard, so guessing is slow)."""
    return hashlib.scrypt(
        secret.encode(), salt=salt, n=cost.n, r=cost.r, p=cost.p, maxmem=WRAP_MAXMEM, dklen=32
    )


# --- keys ------------------------------------------------------------------------------------


def public_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def fingerprint(public_key_hex: str) -> str:
    """SHA-256 of the raw public key, hex: what the account sheet prints (grouped by 4)."""
    return hashlib.sha256(bytes.fromhex(public_key_hex)).hexdigest()


def printable(fp: str) -> str:
    """A fingerprint as a person compares it: the first 32 hex digits in groups of four."""
    return " ".join(fp[i : i + 4] for i in range(0, 32, 4))


def wrap(private: Ed25519PrivateKey, secret: str, cost: KdfCost) -> str:
    """The private key sealed under the password (scrypt → AES-256-GCM), as JSON text."""
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    sealed = AESGCM(derive(secret, salt, cost)).encrypt(nonce, raw, b"kapmonitor/signing-key")
    return json.dumps(
        {
            "kdf": "scrypt",
            "n": cost.n,
            "r": cost.r,
            "p": cost.p,
            "salt": salt.hex(),
            "nonce": nonce.hex(),
            "sealed": sealed.hex(),
        },
        sort_keys=True,
    )


def unwrap(wrapped: str, secret: str) -> Ed25519PrivateKey:
    """The private key, or KeyUnavailable when the password does not open it."""
    try:
        fields = json.loads(wrapped)
        cost = KdfCost(int(fields["n"]), int(fields["r"]), int(fields["p"]))
        key = derive(secret, bytes.fromhex(fields["salt"]), cost)
        raw = AESGCM(key).decrypt(
            bytes.fromhex(fields["nonce"]),
            bytes.fromhex(fields["sealed"]),
            b"kapmonitor/signing-key",
        )
        return Ed25519PrivateKey.from_private_bytes(raw)
    except (InvalidTag, ValueError, KeyError, TypeError) as exc:
        raise KeyUnavailable(
            "Your signing key does not open with this password. If your password was reset "
            "by someone else, or the account was changed outside KAP Monitor, ask the "
            "administrator: nothing was signed."
        ) from exc


@dataclass(frozen=True)
class KeyRecord:
    id: int
    username: str
    role: str
    public_key: str
    fingerprint: str
    wrapped_key: str
    reason: str
    recorded_at: str


def _record(row: tuple[Any, ...]) -> KeyRecord:
    return KeyRecord(*row)


_KEY_COLUMNS = "id, username, role, public_key, fingerprint, wrapped_key, reason, recorded_at"


def current_key(db: Database, username: str) -> KeyRecord | None:
    """The account's key in force: its newest ``signing_keys`` row."""
    row = db.execute(
        f"SELECT {_KEY_COLUMNS} FROM signing_keys WHERE username = ? ORDER BY id DESC LIMIT 1",
        [username],
    ).fetchone()
    return _record(row) if row else None


def all_keys(db: Database) -> list[KeyRecord]:
    rows = db.execute(f"SELECT {_KEY_COLUMNS} FROM signing_keys ORDER BY id").fetchall()
    return [_record(r) for r in rows]


def store_key(
    db: Database,
    username: str,
    role: str,
    private: Ed25519PrivateKey,
    secret: str,
    cost: KdfCost,
    reason: str,
    actor: str,
    at: datetime,
) -> KeyRecord:
    """Append a key row (call inside the caller's write transaction; the caller seals it) and
    write its fingerprint to the audit trail, where it is chained with everything else."""
    public = public_hex(private)
    fp = fingerprint(public)
    now = to_iso(at)
    db.execute(
        "INSERT INTO signing_keys (username, role, public_key, fingerprint, wrapped_key, reason, "
        "observed_at, recorded_at, recorded_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [username, role, public, fp, wrap(private, secret, cost), reason, now, now, actor],
    )
    audit.event(
        db, actor, "signing_key", at, {"username": username, "fingerprint": fp, "reason": reason}
    )
    found = current_key(db, username)
    assert found is not None
    return found


# --- what a sign-off signs --------------------------------------------------------------------


def covered_now(db: Database, session_id: str) -> dict[str, int]:
    """The highest row id of the session in every covered table (0 when it has none)."""
    covered = {}
    for table in COVERED_TABLES:
        (top,) = db.execute(
            f"SELECT coalesce(max(id), 0) FROM [{table}] WHERE session_id = ?", [session_id]
        ).fetchone()
        covered[table] = int(top)
    return covered


def content_hash(
    db: Database, session_id: str, covered: Mapping[str, int], head: tuple[int, str]
) -> str:
    """SHA-256 over the session row, the session's rows with ids up to ``covered`` in each
    covered table (as :func:`audit.hashed_content` sees them, canonical form), and the audit
    chain head ``(entry id, hash)`` at signing."""
    digest = hashlib.sha256()
    digest.update(f"kapmonitor-session-content/{STATEMENT_VERSION}\n".encode())
    row = db.execute("SELECT rowid FROM sessions WHERE id = ?", [session_id]).fetchone()
    session = audit.row_content(db, "sessions", row[0]) if row else None
    digest.update(audit.canonical({"sessions": session}).encode() + b"\n")
    for table in sorted(covered):
        cursor = db.execute(
            f"SELECT * FROM [{table}] WHERE session_id = ? AND id <= ? ORDER BY id",
            [session_id, int(covered[table])],
        )
        names = [d[0] for d in cursor.description]
        for found in cursor:
            content = audit.hashed_content(table, dict(zip(names, found, strict=True)))
            digest.update(f"{table}\t".encode() + audit.canonical(content).encode() + b"\n")
    digest.update(f"head\t{head[0]}\t{head[1]}\n".encode())
    return digest.hexdigest()


def audit_head(db: Database) -> tuple[int, str]:
    """The newest audit entry (id, hash): a signature names the history it was made on."""
    found = db.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    return (int(found[0]), str(found[1])) if found else (0, audit.GENESIS)


def statement(fields: Mapping[str, Any]) -> bytes:
    """The bytes an Ed25519 signature covers: the statement's fields in canonical JSON."""
    wanted = (
        "session_id",
        "signer",
        "printed_name",
        "role",
        "meaning",
        "signed_at",
        "content_hash",
        "audit_head_id",
        "audit_head_hash",
        "key_fingerprint",
    )
    body = {name: fields.get(name) for name in wanted}
    body["v"] = STATEMENT_VERSION
    return audit.canonical(body).encode()


def _signed(
    db: Database,
    session_id: str,
    who: Mapping[str, Any],
    private: Ed25519PrivateKey,
    key: KeyRecord,
) -> dict[str, Any]:
    """A sign-off's or an attestation's fields: who signs and what for (``who``), then the
    session's content hash and the chain head as they stand, the key, and the signature over the
    statement. One place, so the two kinds of signature can never cover different things."""
    covered = covered_now(db, session_id)
    head = audit_head(db)
    fields: dict[str, Any] = {
        "session_id": session_id,
        **who,
        "content_hash": content_hash(db, session_id, covered, head),
        "covered": json.dumps(covered, sort_keys=True),
        "audit_head_id": head[0],
        "audit_head_hash": head[1],
        "key_fingerprint": key.fingerprint,
        "public_key": key.public_key,
    }
    fields["signature"] = private.sign(statement(fields)).hex()
    return fields


def _insert_signed(db: Database, table: str, fields: Mapping[str, Any], at: str, by: str) -> None:
    """Append the signed row, time-stamped and attributed like every clinical row."""
    names = [*fields]
    db.execute(
        f"INSERT INTO {table} ({', '.join(names)}, observed_at, recorded_at, recorded_by) "
        f"VALUES ({', '.join('?' * len(names))}, ?, ?, ?)",
        [fields[n] for n in names] + [at, at, by],
    )


def seal_signature(
    db: Database,
    session_id: str,
    signature_row: Mapping[str, Any],
    private: Ed25519PrivateKey,
    key: KeyRecord,
) -> dict[str, Any]:
    """Sign the session as it stands and append the seal row (inside the signing transaction,
    after the ``signatures`` row, before the audit seal). Returns the seal's fields."""
    fields = _signed(
        db,
        session_id,
        {
            "signature_id": signature_row["id"],
            "signer": signature_row["recorded_by"],
            "printed_name": signature_row["printed_name"],
            "role": signature_row["role"],
            "meaning": signature_row["meaning"],
            "signed_at": signature_row["recorded_at"],
        },
        private,
        key,
    )
    signer, now = signature_row["recorded_by"], signature_row["recorded_at"]
    _insert_signed(db, "signature_seals", {**fields, "legacy": 0}, now, signer)
    return fields


ATTESTATION_MEANING = "attests the record at the session's end"


def attest(
    db: Database,
    session_id: str,
    signer: Mapping[str, str],
    private: Ed25519PrivateKey,
    key: KeyRecord,
    at: str,
) -> dict[str, Any]:
    """A clinician's attestation of the session as it stands at its end: the sign-off's
    statement over the content hash, made with their own key (inside the caller's write
    transaction, before its audit seal). ``signer`` holds username, display_name and role."""
    fields = _signed(
        db,
        session_id,
        {
            "signer": signer["username"],
            "printed_name": signer["display_name"],
            "role": signer["role"],
            "meaning": ATTESTATION_MEANING,
            "signed_at": at,
        },
        private,
        key,
    )
    _insert_signed(db, "attestations", fields, at, signer["username"])
    return fields


def signature_valid(fields: Mapping[str, Any], public_key_hex: str) -> bool:
    """Whether ``fields['signature']`` is the key's Ed25519 signature of the statement."""
    try:
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
        public.verify(bytes.fromhex(str(fields.get("signature") or "")), statement(fields))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


# --- checking every signature (kapmonitor verify) ---------------------------------------------


def _rows(db: Database, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cursor = db.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _role_at(db: Database, username: str, recorded_at: str) -> str | None:
    """The role the account held at ``recorded_at`` by its audited role history
    (``account_roles``, written at creation and by the administrator's role change)."""
    found = db.execute(
        "SELECT role FROM account_roles WHERE username = ? AND recorded_at <= ? "
        "ORDER BY id DESC LIMIT 1",
        [username, recorded_at],
    ).fetchone()
    return found[0] if found else None


def _key_log(db: Database, sources: Sequence[Path | str]) -> tuple[set[str], int] | None:
    """The fingerprints the clinic's anchor logs among ``sources`` recorded for this database
    (``signing_key`` lines), and the lowest chain entry at which such a line was written; None
    when no source given holds any (no log of keys was kept, or none was given)."""
    from kapmonitor.store import anchors

    me = anchors.identity(db)
    found: set[str] = set()
    first: int | None = None
    for source in sources:
        try:
            read = anchors.read(source)
        except (ValueError, OSError):
            continue  # the anchor check names an unreadable source
        for anchor in read:
            parts = anchor.event.split()
            if len(parts) >= 3 and parts[0] == "signing_key" and anchor.db in ("", me):
                found.add(parts[2])
                first = anchor.entry if first is None else min(first, anchor.entry)
    return None if first is None else (found, first)


def _unlogged_key(
    db: Database, label: str, seal: Mapping[str, Any], log: tuple[set[str], int]
) -> str | None:
    """A signature's key missing from an anchor log that was already recording keys when the
    key was made (by the key row's audit entry): planted outside the app, or the log cut."""
    fingerprints, first = log
    if seal["key_fingerprint"] in fingerprints:
        return None
    made = db.execute(
        "SELECT min(a.id) FROM signing_keys k JOIN audit a ON a.table_name = 'signing_keys' "
        "AND a.row_id = k.id WHERE k.username = ? AND k.fingerprint = ?",
        [seal["signer"], seal["key_fingerprint"]],
    ).fetchone()[0]
    if made is not None and made < first:
        return None  # made before the log recorded keys: it cannot be expected there
    return (
        f"{label}: signed with a key ({printable(str(seal['key_fingerprint']))}) that the anchor "
        "log never recorded, though it was recording keys by then (a key planted outside the app)"
    )


def check_signatures(db: Database, anchor_sources: Sequence[Path | str] = ()) -> list[str]:
    """Every problem with the database's signatures, in plain words (empty when all hold).

    For each ``signatures`` row: its seal exists; the key it names is one of the signer's keys
    in ``signing_keys``; the Ed25519 signature verifies with it; the role signed is the role the
    account held then (``account_roles``); the audit head it names is still in the trail; and
    the session's content hash, recomputed from its rows with ids up to those covered, still
    matches. Signatures from before migration 0012 carry a *legacy* seal and are not checked
    cryptographically (they were never signed with a key). Given the clinic's anchor log
    (``verify --anchors``), a signature's key must be in it when the log was recording keys by
    the time the key was made."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "signature_seals" not in tables:
        return []
    problems: list[str] = []
    log = _key_log(db, anchor_sources) if anchor_sources else None
    seals: dict[int, list[dict[str, Any]]] = {}
    for seal in _rows(db, "SELECT * FROM signature_seals ORDER BY id"):
        seals.setdefault(int(seal["signature_id"]), []).append(seal)
    for signature in _rows(db, "SELECT * FROM signatures ORDER BY id"):
        label = f"signature #{signature['id']} of session {signature['session_id']}"
        found = seals.get(int(signature["id"]), [])
        if not found:
            problems.append(
                f"{label} (by {signature['recorded_by']}): has no cryptographic seal, so it was "
                "not made by KAP Monitor's sign path (a signature row written another way)"
            )
            continue
        seal = found[0]
        if seal["legacy"]:
            continue
        problems.extend(_check_seal(db, label, signature, seal))
        unlogged = _unlogged_key(db, label, seal, log) if log is not None else None
        if unlogged is not None:
            problems.append(unlogged)
    if "attestations" in tables:
        for row in _rows(db, "SELECT * FROM attestations ORDER BY id"):
            label = f"attestation #{row['id']} of session {row['session_id']} by {row['signer']}"
            problems.extend(_check_seal(db, label, row, row, locks=False))
            clinicians = {
                r[0]
                for r in db.execute(
                    "SELECT name FROM session_clinicians WHERE session_id = ?",
                    [row["session_id"]],
                )
            }
            if row["printed_name"] not in clinicians:
                problems.append(f"{label}: {row['printed_name']} did not attend the session")
            unlogged = _unlogged_key(db, label, row, log) if log is not None else None
            if unlogged is not None:
                problems.append(unlogged)
    return problems


def _check_seal(
    db: Database,
    label: str,
    signature: Mapping[str, Any],
    seal: Mapping[str, Any],
    locks: bool = True,
) -> list[str]:
    """The checks of one signed statement (a sign-off's seal, or an attestation, which is its
    own seal and locks nothing: rows added after it are corrections, not tampering)."""
    problems: list[str] = []
    signer = str(signature["recorded_by"])
    for name in ("session_id", "printed_name", "role", "meaning"):
        if seal[name] != signature[name]:
            problems.append(f"{label}: its {name.replace('_', ' ')} differs from what was signed")
    if seal["signer"] != signer:
        problems.append(f"{label}: signed by {seal['signer']}, but the row names {signer}")
    key = db.execute(
        "SELECT public_key FROM signing_keys WHERE username = ? AND fingerprint = ? LIMIT 1",
        [seal["signer"], seal["key_fingerprint"]],
    ).fetchone()
    if key is None:
        problems.append(
            f"{label}: signed with a key that is not one of {seal['signer']}'s keys "
            f"(fingerprint {printable(str(seal['key_fingerprint']))}): unknown key"
        )
    elif not signature_valid(seal, key[0]):
        problems.append(
            f"{label}: the signature does not verify with {seal['signer']}'s public key "
            "(forged, or its statement was altered)"
        )
    held = _role_at(db, str(seal["signer"]), str(seal["signed_at"]))
    if held is not None and held != seal["role"]:
        problems.append(
            f"{label}: signed as {seal['role']}, but {seal['signer']} was a {held} then by the "
            "audited role history (a role raised outside the administrator's path)"
        )
    head = db.execute("SELECT hash FROM audit WHERE id = ?", [seal["audit_head_id"]]).fetchone()
    if seal["audit_head_id"] and (head is None or head[0] != seal["audit_head_hash"]):
        problems.append(
            f"{label}: the audit trail it was signed on (entry #{seal['audit_head_id']}) has "
            "been rewritten or removed"
        )
    try:
        covered = {str(k): int(v) for k, v in json.loads(seal["covered"]).items()}
    except (ValueError, TypeError, AttributeError):
        covered = None
    if covered is None:
        problems.append(f"{label}: its record of the rows it covers is unreadable")
    else:
        head_pair = (int(seal["audit_head_id"]), str(seal["audit_head_hash"]))
        recomputed = content_hash(db, str(seal["session_id"]), covered, head_pair)
        if recomputed != seal["content_hash"]:
            problems.append(
                f"{label}: the session's content no longer matches what was signed (a row "
                "covered by the signature was altered, removed or inserted)"
            )
        for table, top in sorted(covered.items()) if locks else ():
            (later,) = db.execute(
                f"SELECT count(*) FROM [{table}] WHERE session_id = ? AND id > ?",
                [seal["session_id"], top],
            ).fetchone()
            if later:  # a signed session takes no rows here: the lock was got round
                problems.append(
                    f"{label}: {later} {table} row(s) were added to the session after it was signed"
                )
    return problems


# --- signatures that come with an import --------------------------------------------------------

# Tables of a session document that carry signatures: never inserted as signatures made here.
IMPORTED_TABLE = "imported_signatures"
SIGNATURE_TABLES = ("signatures", "signature_seals", "attestations", IMPORTED_TABLE)
# What an imported signature or attestation carries besides its statement, as stored here.
_SEALED_FIELDS = (
    "signer",
    "printed_name",
    "role",
    "meaning",
    "signed_at",
    "content_hash",
    "key_fingerprint",
    "public_key",
    "signature",
)


def _check_statement(
    db: Database, session_id: str, fields: Mapping[str, Any], statement_bytes: bytes
) -> str:
    """``verified`` when the statement is this session's and verifies with a key this database
    knows for the signer (the fingerprint in ``signing_keys``, which the account sheet and the
    audit trail anchor); ``unknown_key`` when it verifies only with the key the file carries;
    ``invalid`` otherwise."""
    try:
        claimed = json.loads(statement_bytes)
    except ValueError:
        return "invalid"
    if not isinstance(claimed, dict) or claimed.get("session_id") != session_id:
        return "invalid"
    for name in ("signer", "printed_name", "role", "meaning", "key_fingerprint"):
        if claimed.get(name) != fields.get(name):
            return "invalid"

    def good(public_hex: str) -> bool:
        try:
            public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
            public.verify(bytes.fromhex(str(fields.get("signature") or "")), statement_bytes)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True

    known = db.execute(
        "SELECT public_key FROM signing_keys WHERE fingerprint = ? LIMIT 1",
        [str(fields.get("key_fingerprint") or "")],
    ).fetchone()
    if known is not None:
        return "verified" if good(known[0]) else "invalid"
    carried = str(fields.get("public_key") or "")
    if carried and fingerprint_or_none(carried) == fields.get("key_fingerprint") and good(carried):
        return "unknown_key"
    return "invalid"


def fingerprint_or_none(public_key_hex: str) -> str | None:
    try:
        return fingerprint(public_key_hex)
    except ValueError:
        return None


def signed_elsewhere(
    db: Database, session_id: str, tables: Mapping[str, list[dict[str, Any]]], actor: str, at: str
) -> dict[str, list[dict[str, Any]]]:
    """The document's tables with every signature taken out of ``signatures`` (and its seal)
    and put in ``imported_signatures``: "signed elsewhere, by …", its status worked out here
    (never taken from the file), the session not locked by it. ``at`` is the import time."""
    out = {name: rows for name, rows in tables.items() if name not in SIGNATURE_TABLES}
    seals = {
        row.get("signature_id"): row
        for row in tables.get("signature_seals", [])
        if isinstance(row, dict)
    }
    incoming: list[dict[str, Any]] = []
    for row in tables.get("signatures", []):
        seal = seals.get(row.get("ref"))
        fields: dict[str, Any] = {
            "signer": row.get("recorded_by"),
            "printed_name": row.get("printed_name"),
            "role": row.get("role"),
            "meaning": row.get("meaning"),
            "signed_at": row.get("recorded_at"),
        }
        if seal is None or seal.get("legacy"):
            incoming.append({**fields, "status": "unsealed"})
            continue
        claimed = {**seal, "session_id": session_id}
        text = statement(claimed)
        sealed = {
            **fields,
            "content_hash": seal.get("content_hash"),
            "key_fingerprint": seal.get("key_fingerprint"),
            "public_key": seal.get("public_key"),
            "signature": seal.get("signature"),
            "statement": text.decode(),
        }
        same = all(seal.get(k) == fields[k] for k in ("signer", "printed_name", "role", "meaning"))
        status = _check_statement(db, session_id, sealed, text) if same else "invalid"
        incoming.append({**sealed, "status": status})
    for row in tables.get("attestations", []):  # a clinician's attestation, made elsewhere
        claimed = {**row, "session_id": session_id}
        text = statement(claimed)
        sealed = {name: row.get(name) for name in _SEALED_FIELDS}
        sealed["statement"] = text.decode()
        incoming.append({**sealed, "status": _check_statement(db, session_id, sealed, text)})
    for row in tables.get(IMPORTED_TABLE, []):  # signed elsewhere already: checked again here
        kept = {name: row.get(name) for name in (*_SEALED_FIELDS, "statement")}
        text = str(kept.get("statement") or "")
        status = _check_statement(db, session_id, kept, text.encode()) if text else "unsealed"
        incoming.append({**kept, "status": status})
    if incoming:
        out[IMPORTED_TABLE] = [
            {
                **row,
                "ref": ref,
                "observed_at": at,
                "recorded_at": at,
                "recorded_by": actor,
            }
            for ref, row in enumerate(incoming, 1)
        ]
    return out


STATUS_WORDS = {
    "verified": "verified with a key known here",
    "unknown_key": "NOT verified: the signer's key is not known here",
    "invalid": "NOT valid: the signature does not check",
    "unsealed": "NOT verified: it carries no cryptographic signature",
}


def elsewhere_text(db: Database, session_id: str) -> str:
    """How the review shows an imported session's signatures: "Signed elsewhere, by Dr M. Chen,
    supervisor (verified with a key known here)"; empty when there are none."""
    rows = db.execute(
        "SELECT printed_name, role, status FROM imported_signatures WHERE session_id = ? "
        "ORDER BY id",
        [session_id],
    ).fetchall()
    return "; ".join(
        f"Signed elsewhere, by {name}, {role or 'role not given'} "
        f"({STATUS_WORDS.get(status, status)}) — not a signature made here"
        for name, role, status in rows
    )


def attested_text(db: Database, session_id: str) -> str:
    """How the review shows the clinicians' attestations: "Attested at the end by Dr Lee,
    Nurse Kim"; empty when none."""
    names = [
        r[0]
        for r in db.execute(
            "SELECT printed_name FROM attestations WHERE session_id = ? ORDER BY id", [session_id]
        )
    ]
    return f"Attested at the end by {', '.join(names)}" if names else ""
