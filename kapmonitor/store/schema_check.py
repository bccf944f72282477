"""The expected schema: the file's tables, triggers, CHECKs, indexes and views, compared with
what KAP Monitor's own migrations make.

The append-only and signature triggers only hold while they are the ones the app created. An
insider with SQLite can drop them, rewrite one (or a CHECK) through ``PRAGMA writable_schema``,
or plant an AFTER INSERT trigger that quietly changes what the app saves (a typed 212/118
stored as 138/84, its critical alarm never raised). So every open for writing
(:func:`kapmonitor.store.database.connect`) and every ``verify`` compares the ``sql`` of each
object in ``sqlite_master`` with the same migrations run on a fresh in-memory database: the
expected schema is generated, never a hand-kept copy, so a new migration needs no edit here.
A file that differs is refused for writing (``StoreError`` kind ``"schema"``); it can still be
opened read-only, exported and verified.

What this does not catch: a trigger dropped and later recreated exactly (no trace in the
schema; the rows written meanwhile are what ``verify`` names), nor a change to a TEMP object of
another connection (which never reaches the file).
"""

from __future__ import annotations

import re
import sqlite3
from functools import lru_cache
from pathlib import Path

from sqlite_utils import Database, Migrations

from kapmonitor.store.schema import MIGRATION_SET, migrations

Schema = dict[tuple[str, str], str]  # (type, name) -> normalised sql
_SHOWN = 4  # names listed per kind of difference before "…"


def _normal(sql: str | None) -> str:
    """Whitespace runs are one space: a line break is not a change of structure."""
    return re.sub(r"\s+", " ", sql or "").strip()


def current(db: Database) -> Schema:
    """The file's own schema (the main database; SQLite's internal objects left out)."""
    rows = db.execute(
        "SELECT type, name, sql FROM main.sqlite_master WHERE name NOT LIKE 'sqlite\\_%' "
        "ESCAPE '\\'"
    ).fetchall()
    return {(kind, name): _normal(sql) for kind, name, sql in rows}


def applied(db: Database) -> frozenset[str]:
    """The names of the migrations the file says it has had."""
    try:
        rows = db.execute(
            "SELECT name FROM _sqlite_migrations WHERE migration_set = ?", [MIGRATION_SET]
        ).fetchall()
    except sqlite3.Error:
        return frozenset()
    return frozenset(r[0] for r in rows)


@lru_cache(maxsize=8)
def expected(names: frozenset[str]) -> Schema:
    """The schema KAP Monitor's migrations ``names`` make, run on a fresh in-memory database
    (computed once per set of migrations and process: about the cost of creating a new file)."""
    chosen = Migrations(MIGRATION_SET)
    chosen._migrations = [m for m in migrations._migrations if m.name in names]
    conn = sqlite3.connect(":memory:")
    try:
        db = Database(conn, execute_plugins=False)
        chosen.apply(db)
        return current(db)
    finally:
        conn.close()


def differences(db: Database) -> list[str]:
    """What differs from the expected schema, in plain words; empty when nothing does."""
    names = applied(db)
    known = {m.name for m in migrations._migrations}
    if not names <= known:  # a newer version's file: database.connect says so in its own words
        return []
    want, have = expected(names), current(db)
    found: list[str] = []
    missing = sorted(k for k in want if k not in have)
    extra = sorted(k for k in have if k not in want)
    changed = sorted(k for k in want if k in have and want[k] != have[k])
    if missing:
        found.append(_listed(missing, "missing", "is missing"))
    if changed:
        found.append(_listed(changed, "rewritten", "was rewritten"))
    if extra:
        found.append(_listed(extra, "not made by KAP Monitor", "was not made by KAP Monitor"))
    return found


def _listed(objects: list[tuple[str, str]], many: str, one: str) -> str:
    if len(objects) == 1:
        kind, name = objects[0]
        return f"{kind} {name} {one}"
    shown = ", ".join(f"{kind} {name}" for kind, name in objects[:_SHOWN])
    more = ", …" if len(objects) > _SHOWN else ""
    return f"{len(objects)} objects {many} ({shown}{more})"


def refuse_if_changed(db: Database, path: Path | str) -> None:
    """Refuse to write to a file whose structure differs from KAP Monitor's (``connect``)."""
    from kapmonitor.store.errors import StoreError  # not from database: it imports this module

    found = differences(db)
    if found:
        raise StoreError(
            f"{path}: this file's structure was changed outside KAP Monitor: "
            f"{'; '.join(found)}. Nothing was written to it; it can be opened read-only and "
            "verified (kapmonitor verify).",
            "schema",
        )
