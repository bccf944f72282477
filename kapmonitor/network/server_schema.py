"""The server's schema: versioned SQL files applied in order, each recorded in a version table.

Why versioned SQL applied by the app (not Alembic): the server's tables are plain mirrors of the
laptop's append-only tables, written once per laptop schema change; a numbered file per change,
applied inside one transaction with its number recorded in ``kap.schema_versions``, is all the
tool needed, and it adds no dependency to the laptop's install. Files live in
``resources/server_schema/NNNN_name.sql`` (bundled with the frozen build like every resource).

Each mirrored table holds the laptop's columns unchanged (times stay the laptop's text), keyed by
``(laptop_id, local_id)`` (``local_id`` is the laptop's rowid: ids grow, rows are never removed),
plus ``server_received_at``, the server's own clock. Triggers refuse UPDATE, DELETE and TRUNCATE;
row-level security lets a laptop's role read and insert only its own rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from kapmonitor.paths import resources_dir
from kapmonitor.store.errors import StoreError

SCHEMA = "kap"
VERSION_TABLE = f"{SCHEMA}.schema_versions"
LAPTOP_GROUP = "kap_laptop"  # every laptop's role is a member: INSERT and (own rows) SELECT
REVIEWER_GROUP = "kap_reviewer"  # central review (a later step): SELECT on everything
# Laptop tables never sent: password and PIN hashes, wrapped private keys, migration bookkeeping,
# and the central review rows (they came from the server: kapmonitor.network.review_return).
NOT_SENT = frozenset(
    {"_sqlite_migrations", "users", "account_pins", "signing_keys", "central_reviews"}
)
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Advisory lock key: two `server init` runs at once apply each version once.
_LOCK_KEY = 0x6B61_7000
_TYPES = {"INTEGER": "bigint", "REAL": "double precision", "TEXT": "text"}


@dataclass(frozen=True)
class Version:
    number: int
    name: str
    path: Path


def schema_folder() -> Path:
    return resources_dir() / "server_schema"


def versions(folder: Path | None = None) -> list[Version]:
    """Every schema file, in order; numbers must run 1, 2, 3… with no gap or repeat."""
    found: list[Version] = []
    for path in sorted((folder or schema_folder()).glob("*.sql")):
        match = _FILE.match(path.name)
        if match is None:
            raise StoreError(f"{path.name}: a server schema file must be named NNNN_name.sql")
        found.append(Version(int(match.group(1)), match.group(2), path))
    for expected, version in enumerate(found, start=1):
        if version.number != expected:
            raise StoreError(f"server schema files are not numbered 1..N ({version.path.name})")
    return found


def latest() -> int:
    return len(versions())


def current_version(conn: Any) -> int:
    """The newest version applied on the server (0: an empty database)."""
    found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [VERSION_TABLE]).fetchone()
    if not found[0]:
        return 0
    row = conn.execute(f"SELECT coalesce(max(version), 0) FROM {VERSION_TABLE}").fetchone()
    return int(row[0])


def apply(conn: Any, upto: int | None = None, folder: Path | None = None) -> list[int]:
    """Apply every version after the server's, up to ``upto`` (default: all); returns those
    applied. Each version runs in its own transaction with its row in the version table, so a
    failure leaves the server at the last whole version."""
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version integer PRIMARY KEY, "
            "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), "
            "applied_by text NOT NULL DEFAULT current_user)"
        )
        have = current_version(conn)
        for version in versions(folder):
            if version.number <= have or (upto is not None and version.number > upto):
                continue
            with conn.transaction():
                conn.execute(version.path.read_text(encoding="utf-8"))
                conn.execute(
                    f"INSERT INTO {VERSION_TABLE} (version, name) VALUES (%s, %s)",
                    [version.number, version.name],
                )
            applied.append(version.number)
    return applied


def sent_tables(db: Database) -> list[str]:
    """The laptop tables a laptop sends, in creation order (sessions before their rows)."""
    names = db.execute(
        "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY rowid"
    ).fetchall()
    return [n[0] for n in names if n[0] not in NOT_SENT]


def laptop_columns(db: Database, table: str) -> list[tuple[str, str]]:
    """A laptop table's columns as (name, server type)."""
    columns = []
    for _cid, name, decl, *_rest in db.execute(f"PRAGMA table_info([{table}])").fetchall():
        kind = _TYPES.get((decl or "").upper())
        if kind is None:
            raise StoreError(f"{table}.{name}: no server type for the laptop type {decl!r}")
        columns.append((name, kind))
    return columns


def mirror_sql(db: Database, tables: list[str] | None = None) -> str:
    """Draft SQL creating the server's mirror of ``tables`` (default: every sent table) of the
    laptop schema ``db``: how a new version's file is begun when the laptop's schema grows (then
    read and trimmed by hand; the test in tests/network/test_server_schema.py fails until the
    server covers every laptop column)."""
    parts = []
    for table in tables or sent_tables(db):
        columns = ",\n".join(f"    {name} {kind}" for name, kind in laptop_columns(db, table))
        parts.append(
            f"CREATE TABLE {SCHEMA}.{table} (\n"
            f"    laptop_id text NOT NULL DEFAULT {SCHEMA}.my_laptop()\n"
            f"        REFERENCES {SCHEMA}.laptops (laptop_id),\n"
            "    local_id bigint NOT NULL,\n"
            "    server_received_at timestamptz NOT NULL DEFAULT now(),\n"
            f"{columns},\n"
            "    PRIMARY KEY (laptop_id, local_id)\n);\n"
            f"SELECT {SCHEMA}.protect('{table}');\n"
        )
    return "\n".join(parts)
