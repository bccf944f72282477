"""What the database says about its own session tables: columns, types and links between rows.

The JSON export, the CSV tables, the JSON Schema and the import all need to know which tables hold
a session's rows, which columns they have and which columns point at other rows. The answer is read
from the database itself (every table with a ``session_id`` column; ``PRAGMA foreign_key_list``
plus ``x_id``/``x_table`` pairs), so a table or column added by a later migration (EtCO₂ in 0010,
say) is exported, validated and imported without touching any of them. It lives in the store
because the store's importer needs it too, and the store may not import the reports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from kapmonitor.store.database import StoreError

# Tables with a session_id column that are not part of a session's clinical record. The central
# review rows (0015) are the archive's, checked by this laptop against its own rows: a session
# document carrying them would hand another file a status ("verified") it never worked out.
EXCLUDED_TABLES = frozenset({"audit", "users", "central_reviews"})
# Triggers refuse clinical rows for a signed session and addenda for an unsigned one, so these
# tables are written last, in this order, on import.
LAST_TABLES = ("signatures", "addenda")


@dataclass(frozen=True)
class Column:
    """One stored column, as the export and the import need to know it."""

    name: str
    type: str  # the declared STRICT type: INTEGER, REAL, TEXT, BLOB or ANY
    notnull: bool
    has_default: bool
    json_text: bool  # a CHECK (json_valid(...)) column: JSON kept as text
    utc_time: bool  # a CHECK (... GLOB 'YYYY-MM-DDTHH:MM:SS.mmmZ') column

    @property
    def required(self) -> bool:
        """A value must be given: the database has no default for a missing one."""
        return self.notnull and not self.has_default


@dataclass(frozen=True)
class Link:
    """A column holding another row's id: of ``target``, or of the table named in ``via``."""

    column: str
    target: str | None = None
    via: str | None = None

    def target_of(self, row: Mapping[str, Any]) -> str | None:
        return self.target if self.target is not None else row.get(self.via or "")


@dataclass(frozen=True)
class TableInfo:
    """A session-linked table: its columns (without ``id`` and ``session_id``) and links."""

    name: str
    columns: tuple[Column, ...]
    links: tuple[Link, ...]
    position: int  # creation order, the tie-break when ordering tables

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def link(self, name: str) -> Link | None:
        return next((lk for lk in self.links if lk.column == name), None)


def schema_version(db: Database) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _table_sql(db: Database) -> list[tuple[str, str]]:
    return [
        (name, sql or "")
        for name, sql in db.execute(
            "SELECT name, sql FROM main.sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY rowid"
        ).fetchall()
    ]


def _columns(db: Database, table: str, sql: str) -> list[Column]:
    json_cols = set(re.findall(r"json_valid\(\s*\[?(\w+)\]?\s*\)", sql))
    utc_cols = set(re.findall(r"(\w+)\s+GLOB\s+'\[0-9\]\[0-9\]\[0-9\]\[0-9\]-", sql))
    return [
        Column(
            name=name,
            type=(decl or "ANY").upper(),
            notnull=bool(notnull) or bool(pk),
            has_default=default is not None,
            json_text=name in json_cols,
            utc_time=name in utc_cols,
        )
        for _cid, name, decl, notnull, default, pk in db.execute(
            f"PRAGMA table_info([{table}])"
        ).fetchall()
    ]


def _links(db: Database, table: str, columns: Iterable[str], linked: set[str]) -> list[Link]:
    """Foreign keys to other session tables, then ``x_id`` columns named by an ``x_table``."""
    names = set(columns)
    links: list[Link] = []
    for fk in db.execute(f"PRAGMA foreign_key_list([{table}])").fetchall():
        target, column, to = fk[2], fk[3], fk[4]
        if target in linked and to in (None, "id"):
            links.append(Link(column, target=target))
    fixed = {lk.column for lk in links}
    for name in sorted(names - fixed):
        if name.endswith("_id") and f"{name[:-3]}_table" in names and name != "session_id":
            links.append(Link(name, via=f"{name[:-3]}_table"))
    return links


def describe_tables(db: Database) -> dict[str, TableInfo]:
    """Every table holding rows of a session (it has ``session_id``), in creation order.

    ``sessions`` itself, the audit trail and the user accounts are not among them.
    """
    found: dict[str, tuple[int, list[Column]]] = {}
    for position, (name, sql) in enumerate(_table_sql(db)):
        if name in EXCLUDED_TABLES or name == "sessions":
            continue
        columns = _columns(db, name, sql)
        names = {c.name for c in columns}
        if "session_id" in names and "id" in names:
            found[name] = (position, columns)
    linked = set(found)
    tables: dict[str, TableInfo] = {}
    for name, (position, columns) in found.items():
        kept = tuple(c for c in columns if c.name not in ("id", "session_id"))
        links = tuple(_links(db, name, (c.name for c in kept), linked))
        tables[name] = TableInfo(name, kept, links, position)
    return tables


def session_columns(db: Database) -> tuple[Column, ...]:
    sql = dict(_table_sql(db)).get("sessions")
    if sql is None:
        raise StoreError("This file has no sessions table: it is not a KAP Monitor database.")
    return tuple(_columns(db, "sessions", sql))
