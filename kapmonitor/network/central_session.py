"""Open one session of the central archive as the laptop's own reading code expects it.

The central archive's tables mirror the laptop's column for column (keyed by ``(laptop_id,
local_id)``). Opening a session fetches that session's rows of one laptop from every mirrored
table and materialises them into a throw-away **in-memory SQLite database built from the laptop
schema** (:mod:`kapmonitor.store.schema`'s migrations), so the existing read-only code (the
report's sections, the PDF, the CSV / JSON / FHIR writers of the export registry,
``SessionStore.load`` and the session model) runs on it unchanged. Nothing is written back
anywhere: the copy lives in memory only, is switched to ``query_only`` once loaded, and is gone
when closed.

**The schema without its triggers.** The laptop's triggers police *writes*: append-only
(UPDATE/DELETE refused), a correction of the same session, a signature only by a supervisor of
an ended session (reading ``users``, which is never sent), nothing added after signing. Loading a
signed session's rows with their original ids would trip the last three, although every row was
accepted by those very triggers on its laptop when it was written. The copy is therefore made
from a migrated schema with every trigger dropped: same tables, columns, CHECK constraints and
indexes, no trigger; and since it is ``query_only`` from the moment it is loaded, nothing the
triggers guard against can happen to it. Foreign keys are off in the copy for the same reason
(``users`` is not sent, so a row naming a user would not load). The migrated template is made
once per process (~0.1 s) and copied with SQLite's backup API for each session.

**What the copy holds besides the session's rows.** The laptop's ``clinic_settings`` and
``account_roles`` (small, not per session; the report reads the clinic's settings), and, from
``audit``, the session's own entries plus the laptop's first entry and the newest one the server
holds: the first names the laptop's database identity and the newest is its chain head, so an
export made here carries the same ``audit_anchor`` as one made on the laptop at the time of the
last sync (a laptop that has written entries since, e.g. its own export's entry, has moved on:
then the anchors differ, and that difference is the truth). Users, PIN hashes and signing keys
are never sent, so they are not here.

Qt-free, and psycopg is imported inside functions only.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from kapmonitor.network.connection import NetworkError, connect, explain
from kapmonitor.store.errors import StoreError

# Mirror columns that are the server's own, not the laptop's.
SERVER_COLUMNS = frozenset({"laptop_id", "local_id", "server_received_at"})
# Laptop tables with no session_id copied whole for the laptop (small, read by the report).
WHOLE_TABLES = ("clinic_settings", "account_roles")

_template_lock = threading.Lock()
_template: sqlite3.Connection | None = None
_shape: dict[str, tuple[list[str], bool, bool]] | None = None  # table -> (columns, rowid, session)


@dataclass
class CentralSession:
    """One session of one laptop, materialised in memory, read-only.

    ``db`` is a :class:`sqlite_utils.Database` with the laptop schema; hand it (or
    :meth:`store`) to the report and export code exactly as a laptop's read connection.
    Close it when done (or use it as a context manager)."""

    laptop_id: str
    session_id: str
    db: Database
    rows: int  # rows materialised (all tables)

    @property
    def label(self) -> str:
        """How messages and the window name where the session came from."""
        return f"{self.laptop_id}/{self.session_id}"

    def store(self) -> Any:
        """A :class:`~kapmonitor.store.session_store.SessionStore` over the copy, for
        ``store.load(session_id)`` and the review's readers. Do not call its ``close()`` (that
        would note an anchor for a file that does not exist): close this object instead."""
        from kapmonitor.store.session_store import SessionStore

        return SessionStore(self.db, f"central:{self.label}")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> CentralSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _build_template() -> tuple[sqlite3.Connection, dict[str, tuple[list[str], bool, bool]]]:
    """The laptop schema, migrated once into memory, every trigger dropped (see the module)."""
    from kapmonitor.store.schema import migrations

    conn = sqlite3.connect(":memory:", check_same_thread=False)
    db = Database(conn, execute_plugins=False)
    migrations.apply(db)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
        conn.execute(f"DROP TRIGGER [{name}]")
    # Migrating writes the audit trail's first entry (its key marker): this copy's trail is
    # the laptop's, loaded with the session, so the template's own goes.
    conn.execute("DELETE FROM audit")
    conn.commit()
    shape: dict[str, tuple[list[str], bool, bool]] = {}
    for (table,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY rowid"
    ).fetchall():
        info = conn.execute(f"PRAGMA table_info([{table}])").fetchall()
        columns = [str(c[1]) for c in info]
        integer_key = any(c[5] == 1 and str(c[2]).upper() == "INTEGER" for c in info)
        shape[table] = (columns, not integer_key, "session_id" in columns)
    return conn, shape


def _empty_copy() -> tuple[sqlite3.Connection, dict[str, tuple[list[str], bool, bool]]]:
    """A fresh in-memory copy of the template (SQLite's backup API: ~1 ms, not ~0.1 s)."""
    global _template, _shape
    with _template_lock:
        if _template is None or _shape is None:
            _template, _shape = _build_template()
        target = sqlite3.connect(":memory:", check_same_thread=False)
        _template.backup(target)
        return target, _shape


def _server_tables(pg: Any) -> dict[str, set[str]]:
    """The mirrored tables on the server and their columns (the laptop's plus its own)."""
    found: dict[str, set[str]] = {}
    for table, column in pg.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'kap'"
    ).fetchall():
        found.setdefault(str(table), set()).add(str(column))
    return found


def find_laptops(pg: Any, session_id: str) -> list[str]:
    """The laptops that sent the session ``session_id`` (normally one; a session imported from
    one laptop's file into another's is sent by both)."""
    return [
        str(r[0])
        for r in pg.execute(
            "SELECT laptop_id FROM kap.sessions WHERE id = %s ORDER BY laptop_id", [session_id]
        ).fetchall()
    ]


def materialise(pg: Any, session_id: str, laptop_id: str | None = None) -> CentralSession:
    """Read one session from the open psycopg connection ``pg`` (a reviewer's, or any role that
    may read it) into a read-only in-memory copy. ``laptop_id`` may be left out when only one
    laptop sent the session. Raises :class:`StoreError` in plain words when the session is not
    on the server or its laptop is ambiguous."""
    laptops = find_laptops(pg, session_id)
    if laptop_id is None:
        if not laptops:
            raise StoreError(f"There is no session {session_id} in the central archive.", "missing")
        if len(laptops) > 1:
            raise StoreError(
                f"The session {session_id} was sent by several laptops ({', '.join(laptops)}); "
                "say which one.",
                "ambiguous",
            )
        laptop_id = laptops[0]
    elif laptop_id not in laptops:
        raise StoreError(
            f"There is no session {session_id} from the laptop {laptop_id} in the central archive.",
            "missing",
        )
    conn, shape = _empty_copy()
    try:
        total = _load(pg, conn, shape, laptop_id, session_id)
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("PRAGMA query_only = ON")  # from here on, the copy refuses every write
    except BaseException:
        conn.close()
        raise
    return CentralSession(laptop_id, session_id, Database(conn, execute_plugins=False), total)


def _load(
    pg: Any,
    conn: sqlite3.Connection,
    shape: dict[str, tuple[list[str], bool, bool]],
    laptop_id: str,
    session_id: str,
) -> int:
    server = _server_tables(pg)
    total = 0
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("BEGIN")
    for table, (columns, with_rowid, per_session) in shape.items():
        on_server = server.get(table)
        if on_server is None or not SERVER_COLUMNS.issubset(on_server):
            # Never sent (users, PIN hashes, signing keys, migration bookkeeping), or a table of
            # the server's own under the same name (not a mirror of the laptop's rows).
            continue
        wanted = [c for c in columns if c in on_server]
        listed = ", ".join(f'"{c}"' for c in wanted)
        if table == "sessions":
            where, params = "laptop_id = %s AND id = %s", [laptop_id, session_id]
        elif table == "audit":
            where = (
                "laptop_id = %s AND (session_id = %s OR local_id = (SELECT min(local_id) FROM "
                "kap.audit WHERE laptop_id = %s) OR local_id = (SELECT max(local_id) FROM "
                "kap.audit WHERE laptop_id = %s))"
            )
            params = [laptop_id, session_id, laptop_id, laptop_id]
        elif per_session:
            where, params = "laptop_id = %s AND session_id = %s", [laptop_id, session_id]
        elif table in WHOLE_TABLES:
            where, params = "laptop_id = %s", [laptop_id]
        else:
            continue
        rows = pg.execute(
            f"SELECT local_id, {listed} FROM kap.{table} WHERE {where} ORDER BY local_id", params
        ).fetchall()
        if not rows:
            continue
        names = (["rowid"] if with_rowid else []) + wanted
        holes = ", ".join("?" * len(names))
        quoted = ", ".join(f"[{n}]" for n in names)
        data = rows if with_rowid else [r[1:] for r in rows]
        try:
            conn.executemany(f"INSERT INTO [{table}] ({quoted}) VALUES ({holes})", data)
        except sqlite3.Error as exc:
            conn.rollback()
            raise StoreError(
                f"The central archive's copy of session {session_id} (laptop {laptop_id}) does "
                f"not fit this version's schema ({table}: {exc}); nothing was changed.",
                "schema",
            ) from exc
        total += len(rows)
    conn.commit()
    return total


def open_session(url: str, session_id: str, laptop_id: str | None = None) -> CentralSession:
    """Connect to the archive at ``url``, materialise one session, disconnect.

    The errors are plain sentences (:class:`NetworkError` for an unreachable server or a role
    without the right to read; :class:`StoreError` for a session not there)."""
    import psycopg

    pg = connect(url)
    try:
        return materialise(pg, session_id, laptop_id)
    except psycopg.Error as exc:
        raise explain(exc, url) from exc
    finally:
        pg.close()


__all__ = [
    "CentralSession",
    "NetworkError",
    "find_laptops",
    "materialise",
    "open_session",
]
