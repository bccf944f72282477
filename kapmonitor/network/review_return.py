"""Bring supervisors' central review rows back to the laptop whose session they are about.

Run by every sync pass after the push (:func:`kapmonitor.network.sync.sync_once`): the laptop
asks the server, with its own role, for the ``kap.central_reviews`` rows it does not hold yet
(row-level security gives a laptop its own sessions' rows only), each with the fingerprint the
server registered for its reviewer, and stores them through the store
(:func:`kapmonitor.store.central_signatures.receive`): append-only, audited on the laptop's
chain, a sign-off checked against the laptop's OWN rows before it is stored with its status.

Idempotent and resumable: it reads rows after the highest central id the laptop holds, in
batches, each batch committed on the laptop before the next is read; a pull interrupted or
replayed stores each row once (``central_id`` is unique). Nothing else on the laptop changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kapmonitor.network.connection import connect, explain
from kapmonitor.store import central_signatures
from kapmonitor.store.database import connect as connect_laptop
from kapmonitor.store.database import connect_readonly
from kapmonitor.store.key_slots import DatabaseKeys

BATCH = 200
_COLUMNS = (
    "r.id, r.laptop_id, r.session_id, r.kind, r.reviewer, r.printed_name, r.role_title, "
    "r.written_at, r.observed_at, r.text, r.meaning, r.content_hash, r.covered, "
    "r.audit_head_id, r.audit_head_hash, r.key_fingerprint, r.public_key, r.signature, "
    "v.fingerprint AS registered_fingerprint"
)


@dataclass
class ReturnResult:
    read: int = 0  # rows read from the server (a replay reads again)
    stored: int = 0  # rows stored on the laptop (each once)


def _held(db_path: Path, keys: DatabaseKeys | None) -> int:
    db = connect_readonly(db_path, keys)
    try:
        found = db.execute(
            "SELECT 1 FROM sqlite_master WHERE name = ?", [central_signatures.TABLE]
        ).fetchone()
        return central_signatures.held_up_to(db) if found else 0
    finally:
        db.close()


def fetch(pg: Any, after: int, limit: int = BATCH) -> list[dict[str, Any]]:
    """This laptop's central review rows after central id ``after`` (its own only: RLS, and
    checked again here against the role's laptop)."""
    cursor = pg.execute(
        f"SELECT {_COLUMNS} FROM kap.central_reviews r "
        "LEFT JOIN kap.reviewers v ON v.role_name = r.reviewer "
        "WHERE r.id > %s AND r.laptop_id = kap.my_laptop() ORDER BY r.id LIMIT %s",
        [after, limit],
    )
    names = [d.name for d in cursor.description]
    rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    pg.commit()
    return rows


def pull(
    db_path: Path | str,
    url: str,
    keys: DatabaseKeys | None = None,
    batch: int = BATCH,
    after_batch: Any = None,
) -> ReturnResult:
    """Store the central review rows this laptop lacks; raises NetworkError/StoreError plainly.
    ``after_batch`` (tests): called after each batch is committed on the laptop."""
    import psycopg

    path = Path(db_path)
    result = ReturnResult()
    mark = _held(path, keys)
    pg = connect(url)
    laptop = None
    try:
        if not pg.execute("SELECT to_regclass('kap.central_reviews') IS NOT NULL").fetchone()[0]:
            return result  # a server not yet at schema 4: nothing can come back from it
        while True:
            rows = fetch(pg, mark, max(1, batch))
            if not rows:
                break
            result.read += len(rows)
            if laptop is None:
                laptop = connect_laptop(path, keys)
            registered = {str(r["reviewer"]): str(r["registered_fingerprint"] or "") for r in rows}
            result.stored += central_signatures.receive(laptop, rows, registered, datetime.now(UTC))
            mark = max(int(r["id"]) for r in rows)
            if after_batch is not None:
                after_batch(mark)
            if len(rows) < batch:
                break
    except psycopg.Error as exc:
        raise explain(exc, url) from exc
    finally:
        pg.close()
        if laptop is not None:
            laptop.close()
    return result
