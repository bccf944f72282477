"""The tamper-evident audit trail: every row the app writes, chained by hash.

Each audit row records who did what (an insert, a correction, a sign-in, a signature, an
export…), when, and — for a written row — a SHA-256 of that row's full content. Each audit row's
own hash covers its content and the previous audit row's hash, so removing, altering or
reordering audit rows breaks the chain, and a clinical row edited, deleted or inserted with raw
SQL no longer matches (or lacks) its audit entry. ``kapmonitor verify`` walks both (see
:mod:`kapmonitor.store.verify`).

Which rows to audit is not left to each code path's memory: ``install`` creates TEMP triggers on
the app's own connection that note every row it inserts (or, for ``users``, updates) in a temp
table, and ``seal`` — called at the end of each write transaction — turns those notes into chained
audit rows. Rows written by any other connection (a script, the sqlite3 shell) are never noted, so
they stay unaudited and ``verify`` names them.

The chain is keyed. Since migration 0011 each entry's ``hash`` is an HMAC-SHA256 with the
database's audit key (``key_slots.keys_of(db).subkey(AUDIT_MAC)``, which lives only in the key
slots), over the previous entry's MAC and the entry's fields: recomputing the chain after an edit
needs a clinician's credentials, not just SQLite. A *key marker* entry (action ``audit_key``)
starts each keyed stretch: it names the key (a fingerprint, never the key) and records a SHA-256
digest of every entry before it, so entries chained before the key existed (the unkeyed SHA-256
chain of earlier versions) or under an earlier key (before a rekey) are pinned by the first
entry that can only be made with the current key. A marker is appended automatically before the
first entry written under a key other than the newest marker's. A plain (unencrypted) file
carries ``PLAIN_KEYS``, whose audit key is public: ``verify`` says so, and only anchors kept
outside the file (:mod:`kapmonitor.store.anchors`) then catch a rewrite.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from kapmonitor.domain.clock import to_iso
from kapmonitor.domain.vitals import VITAL_KEYS
from kapmonitor.store import key_slots

GENESIS = "0" * 64
_PENDING_NAME = "kapmonitor_pending_audit"  # trigger bodies may not qualify a table name
PENDING = f"temp.{_PENDING_NAME}"
# Tables whose rows are hashed into the trail (everything but the trail and bookkeeping).
_SKIP = {"audit", "_sqlite_migrations", "sqlite_sequence", "sqlite_stat1"}
_UPDATABLE = ("users",)  # the only table whose rows change (password, active); each change audited
UPDATABLE = _UPDATABLE


def audited_tables(db: Database) -> list[str]:
    names = db.execute(
        "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    return sorted(n[0] for n in names if n[0] not in _SKIP)


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
# The C encoder ``_CANONICAL.encode`` itself makes for every call, made once (None where the
# interpreter has no C accelerator: then the encoder above is used as it is).
_C_CANONICAL = (
    json.encoder.c_make_encoder(
        None,  # no circular check: what is hashed is a flat row or a flat mapping
        _CANONICAL.default,
        json.encoder.encode_basestring,  # ensure_ascii=False
        None,  # no indent
        ":",
        ",",
        True,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan, as dumps
    )
    if json.encoder.c_make_encoder is not None
    else None
)


def canonical(value: Mapping[str, Any]) -> str:
    """The one text form that is hashed: sorted keys, no spaces, floats as Python writes them.

    It is ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``,
    with the encoder made once instead of per call (``dumps`` builds one each time with these
    options): a device batch hashes every row it seals. Tests hold the two to the same text
    for any mapping of JSON values."""
    if _C_CANONICAL is not None and type(value) is dict:
        return "".join(_C_CANONICAL(value, 0))
    return _CANONICAL.encode(value)


# The vital-sign columns of the first schema (0001), frozen: history, not a list to extend.
_VITALS_V1 = ("hr", "sbp", "dbp", "spo2", "rr", "temp_c")
# Columns a migration added to a table that already held sealed rows, as nullable clinical
# values: every registry vital after the first schema's (0010: ``vitals.etco2``), so the next
# vital sign needs no edit here. A NULL in one of them is left out of the hashed content, so a
# row sealed before the column existed hashes as it did then and still verifies, without
# resealing every old row; a value in it is hashed like any other, so filling it in later
# (which the append-only triggers refuse anyway) would still show.
HASHED_ONLY_WHEN_SET: dict[str, tuple[str, ...]] = {
    # 0014: the device reading a confirmed vitals row came from, and its source (NULL: typed).
    "vitals": (*(key for key in VITAL_KEYS if key not in _VITALS_V1), "device_reading_id", "source")
}


def row_content(db: Database, table: str, rowid: int) -> dict[str, Any] | None:
    cursor = db.execute(f"SELECT * FROM main.[{table}] WHERE rowid = ?", [rowid])
    found = cursor.fetchone()
    if found is None:
        return None
    return hashed_content(table, dict(zip([d[0] for d in cursor.description], found, strict=True)))


def hashed_content(table: str, content: Mapping[str, Any]) -> dict[str, Any]:
    """A row's content as it is hashed: every column, less a NULL in a late-added column."""
    late = HASHED_ONLY_WHEN_SET.get(table, ())
    return {k: v for k, v in content.items() if not (v is None and k in late)}


def row_hash(content: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(content).encode()).hexdigest()


def entry_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """The unkeyed chain link of entries made before the keyed chain (and of older versions):
    a SHA-256 of the previous hash and this entry's fields. Anyone can recompute it."""
    return hashlib.sha256(f"{prev_hash}\n{canonical(fields)}".encode()).hexdigest()


def entry_mac(key: bytes, prev_hash: str, fields: Mapping[str, Any]) -> str:
    """The keyed chain link: HMAC-SHA256 with the audit key over what ``entry_hash`` covers."""
    message = f"{prev_hash}\n{canonical(fields)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


KEY_MARKER = "audit_key"  # the action of the entry that starts a keyed stretch
SYSTEM = "system"


def audit_key(keys: key_slots.DatabaseKeys) -> bytes:
    """The MAC key of the audit chain for these database keys."""
    return keys.subkey(key_slots.AUDIT_MAC)


def key_id(key: bytes) -> str:
    """A fingerprint naming an audit key in the file without revealing it."""
    return hmac.new(key, b"kapmonitor audit key id", hashlib.sha256).hexdigest()[:16]


PLAIN_KEY_ID = key_id(audit_key(key_slots.PLAIN_KEYS))


def entry_digest_line(entry: Mapping[str, Any]) -> bytes:
    """What a key marker's digest covers of one earlier entry: number, hash and fields."""
    fields = {name: entry[name] for name in CHAINED_FIELDS}
    return f"{entry['id']}\t{entry['hash']}\t{canonical(fields)}\n".encode()


def _connection_key(db: Database) -> tuple[bytes, str, bool]:
    """The audit key of the keys attached to ``db`` (derived once per keys object)."""
    keys = key_slots.keys_of(db)
    cached = getattr(db, "_kapmonitor_audit_key", None)
    if cached is not None and cached[0] is keys:
        return cached[1]
    key = audit_key(keys)
    found = (key, key_id(key), keys.encrypted)
    db._kapmonitor_audit_key = (keys, found)  # type: ignore[attr-defined]
    return found


def current_marker(db: Database) -> dict[str, Any] | None:
    """The detail of the newest key marker, or None when the chain has none (all unkeyed)."""
    found = db.execute(
        "SELECT detail FROM audit WHERE actor = ? AND action = ? ORDER BY id DESC LIMIT 1",
        [SYSTEM, KEY_MARKER],
    ).fetchone()
    if found is None:
        return None
    detail = json.loads(found[0])
    return detail if isinstance(detail, dict) else None


def _keyed(db: Database, at: str) -> bytes:
    """The key to chain the next entries with; appends a key marker first when the newest
    marker names another key (or there is none yet: the start of the keyed chain)."""
    key, kid, encrypted = _connection_key(db)
    marker = current_marker(db)
    if marker is not None and marker.get("key_id") == kid:
        return key
    digest = hashlib.sha256()
    before = 0
    for entry in entries(db):
        digest.update(entry_digest_line(entry))
        before += 1
    detail = {
        "key_id": kid,
        "encrypted": encrypted,
        "before": before,
        "digest": digest.hexdigest(),
        "previous_key_id": marker.get("key_id") if marker else None,
    }
    fields = {
        "at": at,
        "actor": SYSTEM,
        "action": KEY_MARKER,
        "session_id": None,
        "table_name": None,
        "row_id": None,
        "row_hash": None,
        "detail": canonical(detail),
    }
    _insert(db, fields, key)
    return key


def ensure_keyed(db: Database, at: datetime) -> None:
    """Start the keyed chain now (migration 0011) rather than at the next write."""
    _keyed(db, to_iso(at))


CHAINED_FIELDS = (
    "at",
    "actor",
    "action",
    "session_id",
    "table_name",
    "row_id",
    "row_hash",
    "detail",
)


_AUTHORISED = "_kapmonitor_authorised"


def install(db: Database) -> None:
    """Note every insert (and users update) made through this connection, for ``seal``; and
    give the connection ``kapmonitor_authorised`` for the guarded changes (:func:`authorise`)."""
    if not hasattr(db, _AUTHORISED):
        allowed: set[tuple[str, int]] = set()
        setattr(db, _AUTHORISED, allowed)
        db.conn.create_function(
            "kapmonitor_authorised",
            2,
            lambda what, row_id: int((str(what), int(row_id)) in allowed),
            deterministic=False,
        )
    db.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {_PENDING_NAME} "
        "(seq INTEGER PRIMARY KEY, table_name TEXT NOT NULL, row_id INTEGER NOT NULL)"
    )
    for table in audited_tables(db):
        db.execute(
            f"CREATE TEMP TRIGGER IF NOT EXISTS kapmonitor_audit_{table}_insert "
            f"AFTER INSERT ON main.[{table}] BEGIN "
            f"INSERT INTO {_PENDING_NAME} (table_name, row_id) "
            f"VALUES ('{table}', NEW.rowid); END"
        )
    for table in _UPDATABLE:
        if table in audited_tables(db):
            db.execute(
                f"CREATE TEMP TRIGGER IF NOT EXISTS kapmonitor_audit_{table}_update "
                f"AFTER UPDATE ON main.[{table}] BEGIN "
                f"INSERT INTO {_PENDING_NAME} (table_name, row_id) "
                f"VALUES ('{table}', NEW.rowid); END"
            )


@contextmanager
def authorise(db: Database, what: str, row_id: int) -> Iterator[None]:
    """Let this connection make one guarded change (``what`` of the ``users`` row ``row_id``)
    for the length of the block: the database's trigger refuses it otherwise.

    ``what`` is ``"role"`` (migration 0011's ``users_role_change``); a later guarded column uses
    its own name with a trigger ``WHEN NOT kapmonitor_authorised('<what>', OLD.id)``. The caller
    is the audited administrator path: it checks who asks, makes the change inside a write
    transaction and seals it (the users row's new content is audited by ``seal``).
    """
    allowed: set[tuple[str, int]] | None = getattr(db, _AUTHORISED, None)
    if allowed is None:
        install(db)
        allowed = getattr(db, _AUTHORISED)
    token = (what, int(row_id))
    allowed.add(token)
    try:
        yield
    finally:
        allowed.discard(token)


def _last_hash(db: Database) -> str:
    found = db.execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    return found[0] if found else GENESIS


def _append(db: Database, fields: dict[str, Any], key: bytes | None = None) -> str:
    """Chain one entry after the newest, keyed with the connection's audit key."""
    return _insert(db, fields, key if key is not None else _keyed(db, fields["at"]))


def _insert(db: Database, fields: dict[str, Any], key: bytes) -> str:
    prev = _last_hash(db)
    digest = entry_mac(key, prev, fields)
    detail = fields["detail"]
    db.execute(
        "INSERT INTO audit (at, actor, action, session_id, table_name, row_id, row_hash, detail, "
        "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            fields["at"],
            fields["actor"],
            fields["action"],
            fields["session_id"],
            fields["table_name"],
            fields["row_id"],
            fields["row_hash"],
            detail,
            prev,
            digest,
        ],
    )
    return digest


def _fields(
    at: datetime,
    actor: str,
    action: str,
    session_id: str | None,
    table: str | None = None,
    rowid: int | None = None,
    digest: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "at": to_iso(at),
        "actor": actor.strip() or "unknown",
        "action": action,
        "session_id": session_id,
        "table_name": table,
        "row_id": rowid,
        "row_hash": digest,
        "detail": canonical(detail or {}),
    }


def seal(db: Database, actor: str, action: str, at: datetime, session_id: str | None = None) -> int:
    """Chain an audit row for every row this connection wrote since the last seal.

    Call it inside the write transaction, just before it ends, so the rows and their audit
    entries commit (or roll back) together. Returns how many rows were sealed.

    The entries are exactly those one ``_append`` per row would write (same fields, same
    order, each MAC over the previous entry's), made in one pass: the rows' contents are read
    per table in bulk, the chain head is read once (nothing else writes the trail inside this
    transaction) and the entries are inserted with one ``executemany``. Why: a device feed's
    group commit seals hundreds of rows at once, and three statements per row were about half
    of its cost (issue 13's throughput figure).
    """
    pending = db.execute(f"SELECT seq, table_name, row_id FROM {PENDING} ORDER BY seq").fetchall()
    contents = _contents(db, pending)
    common = _fields(at, actor, action, session_id)  # what every entry of this seal shares
    stamp = common["at"]
    texts = _EntryTexts(common)
    entries: list[list[Any]] = []
    key: bytes | None = None
    prev = GENESIS
    for _seq, table, rowid in pending:
        content = contents.get((table, rowid))
        if content is None:
            continue
        owner = content.get("session_id") if table != "sessions" else content.get("id")
        owner = owner or session_id
        digest_of_row = row_hash(content)
        if key is None:
            key = _keyed(db, stamp)  # may append a key marker: the head is read after it
            prev = _last_hash(db)
        text = texts.text(owner, table, rowid, digest_of_row)
        digest = hmac.new(key, f"{prev}\n{text}".encode(), hashlib.sha256).hexdigest()
        entries.append(
            [
                stamp,
                common["actor"],
                action,
                owner,
                table,
                rowid,
                digest_of_row,
                common["detail"],
                prev,
                digest,
            ]
        )
        prev = digest
    if entries:
        db.conn.executemany(
            "INSERT INTO audit (at, actor, action, session_id, table_name, row_id, row_hash, "
            "detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            entries,
        )
    db.execute(f"DELETE FROM {PENDING}")
    return len(entries)


class _EntryTexts:
    """The canonical text of a seal's entries, which differ only in owner, table, row and
    row hash: ``canonical(fields)`` is built from a head and a tail made once per seal (and per
    owner and table) around the row's id and hash, instead of a JSON encoding per entry. The
    keys sort as ``action, actor, at, detail, row_hash, row_id, session_id, table_name``, and a
    row id is an integer and a row hash a hex digest, which JSON writes as they are. Tests hold
    the text to ``canonical`` for any values."""

    def __init__(self, common: Mapping[str, Any]) -> None:
        shared = {name: common[name] for name in ("action", "actor", "at", "detail")}
        self.head = canonical(shared)[:-1] + ',"row_hash":"'
        self.tails: dict[tuple[str | None, str], str] = {}

    def text(self, owner: str | None, table: str, rowid: int, digest: str) -> str:
        tail = self.tails.get((owner, table))
        if tail is None:
            tail = "," + canonical({"session_id": owner, "table_name": table})[1:]
            self.tails[(owner, table)] = tail
        if type(rowid) is not int or not _HEX.fullmatch(digest):
            fields = {"row_id": rowid, "row_hash": digest}  # never in practice: say it plainly
            raise ValueError(f"an audit entry needs an integer row id and a hex hash: {fields}")
        return f'{self.head}{digest}","row_id":{rowid}{tail}'


_HEX = re.compile(r"[0-9a-f]{64}")
_BULK = 500  # row ids per look-up: under SQLite's bound-parameter limit


def _contents(
    db: Database, pending: Sequence[tuple[int, str, int]]
) -> dict[tuple[str, int], dict[str, Any]]:
    """The hashed content of each pending row, read per table in bulk (as ``row_content``
    reads one); a row no longer there is absent."""
    wanted: dict[str, list[int]] = {}
    for _seq, table, rowid in pending:
        wanted.setdefault(table, []).append(rowid)
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for table, rowids in wanted.items():
        unique = list(dict.fromkeys(rowids))
        for start in range(0, len(unique), _BULK):
            chunk = unique[start : start + _BULK]
            cursor = db.execute(
                f"SELECT rowid, * FROM main.[{table}] "
                f"WHERE rowid IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            names = [d[0] for d in cursor.description][1:]
            for rowid, *values in cursor.fetchall():
                found[(table, rowid)] = hashed_content(table, dict(zip(names, values, strict=True)))
    return found


def event(
    db: Database,
    actor: str,
    action: str,
    at: datetime,
    detail: Mapping[str, Any] | None = None,
    session_id: str | None = None,
) -> None:
    """An audited happening that writes no clinical row: sign-in, refusal, export, lock…"""
    _append(db, _fields(at, actor, action, session_id, detail=detail))


def seal_existing(db: Database, at: datetime) -> int:
    """Audit every row already in the file (the migration that introduces the trail)."""
    count = 0
    for table in audited_tables(db):
        for (rowid,) in db.execute(f"SELECT rowid FROM main.[{table}] ORDER BY rowid").fetchall():
            db.execute(f"INSERT INTO {PENDING} (table_name, row_id) VALUES (?, ?)", [table, rowid])
            count += 1
    seal(db, "system", "baseline", at)
    return count


def entries(db: Database) -> Iterable[dict[str, Any]]:
    cursor = db.execute("SELECT * FROM audit ORDER BY id")
    names = [d[0] for d in cursor.description]
    for found in cursor:
        yield dict(zip(names, found, strict=True))
