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
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from kapmonitor.domain.clock import to_iso
from kapmonitor.domain.vitals import VITAL_KEYS

GENESIS = "0" * 64
_PENDING_NAME = "kapmonitor_pending_audit"  # trigger bodies may not qualify a table name
PENDING = f"temp.{_PENDING_NAME}"
# Tables whose rows are hashed into the trail (everything but the trail and bookkeeping).
_SKIP = {"audit", "_sqlite_migrations", "sqlite_sequence", "sqlite_stat1"}
_UPDATABLE = ("users",)  # the only table whose rows change (password, active); each change audited


def audited_tables(db: Database) -> list[str]:
    names = db.execute(
        "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    return sorted(n[0] for n in names if n[0] not in _SKIP)


def canonical(value: Mapping[str, Any]) -> str:
    """The one text form that is hashed: sorted keys, no spaces, floats as Python writes them."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# The vital-sign columns of the first schema (0001), frozen: history, not a list to extend.
_VITALS_V1 = ("hr", "sbp", "dbp", "spo2", "rr", "temp_c")
# Columns a migration added to a table that already held sealed rows, as nullable clinical
# values: every registry vital after the first schema's (0010: ``vitals.etco2``), so the next
# vital sign needs no edit here. A NULL in one of them is left out of the hashed content, so a
# row sealed before the column existed hashes as it did then and still verifies, without
# resealing every old row; a value in it is hashed like any other, so filling it in later
# (which the append-only triggers refuse anyway) would still show.
HASHED_ONLY_WHEN_SET: dict[str, tuple[str, ...]] = {
    "vitals": tuple(key for key in VITAL_KEYS if key not in _VITALS_V1)
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
    """The chain link: the previous hash and this entry's fields, in canonical form."""
    return hashlib.sha256(f"{prev_hash}\n{canonical(fields)}".encode()).hexdigest()


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


def install(db: Database) -> None:
    """Note every insert (and users update) made through this connection, for ``seal``."""
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


def _last_hash(db: Database) -> str:
    found = db.execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    return found[0] if found else GENESIS


def _append(db: Database, fields: dict[str, Any]) -> str:
    prev = _last_hash(db)
    digest = entry_hash(prev, fields)
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
    """
    pending = db.execute(f"SELECT seq, table_name, row_id FROM {PENDING} ORDER BY seq").fetchall()
    sealed = 0
    for _seq, table, rowid in pending:
        content = row_content(db, table, rowid)
        if content is None:
            continue
        owner = content.get("session_id") if table != "sessions" else content.get("id")
        fields = _fields(at, actor, action, owner or session_id, table, rowid, row_hash(content))
        _append(db, fields)
        sealed += 1
    db.execute(f"DELETE FROM {PENDING}")
    return sealed


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
