"""One insert that hands back what it stored, so a write can say what it wrote."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from sqlite_utils import Database

from kapmonitor.domain.session_rows import StoredRow, row_reader


def insert_returning(db: Database, table: str, row: dict[str, Any]) -> StoredRow:
    """``INSERT … RETURNING *``: the stored row (its id and column defaults) from the insert
    itself, not from a second read after the commit (SQLite 3.35 or newer)."""
    cursor = db.execute(
        f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))}) RETURNING *",
        list(row.values()),
    )
    found = cursor.fetchone()
    return reader(table, tuple(d[0] for d in cursor.description))(found)


_MAX_PARAMETERS = 32_000  # bound values per statement: under SQLite's 32,766 (3.32 and newer)


def insert_many_returning(
    db: Database, table: str, rows: Sequence[dict[str, Any]]
) -> list[StoredRow]:
    """Rows of one shape (the same columns, in the same order) in as few multi-row
    ``INSERT … RETURNING *`` as the parameter limit allows, returned in the order given.

    Why: a device group commit writes hundreds of rows of each kind, and a statement costs
    several times what one more row in a statement costs (its trip through the driver, its
    triggers' set-up, building its result). The rows come back sorted by id, which is the
    order they were inserted in (``rows_of``)."""
    if not rows:
        return []
    columns = list(rows[0])
    per_statement = max(1, _MAX_PARAMETERS // len(columns))
    marks = f"({', '.join('?' * len(columns))})"
    stored: list[StoredRow] = []
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        values: list[Any] = []
        for row in chunk:
            if len(row) != len(columns):
                raise ValueError(f"{table} rows of different shapes in one insert")
            values.extend(row[c] for c in columns)
        cursor = db.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
            f"{', '.join([marks] * len(chunk))} RETURNING *",
            values,
        )
        stored += rows_of(table, cursor)
    return stored


@lru_cache(maxsize=256)
def reader(table: str, names: tuple[str, ...]) -> Callable[[Sequence[Any]], StoredRow]:
    """The typed-row maker for ``table``'s result tuples whose columns are ``names``, made once
    per shape: a device feed's inserts hand back thousands of rows of the same few shapes, and
    building a dict per row only to build the typed row from it was a fifth of their cost."""
    return row_reader(table, names)


def rows_of(table: str, cursor: Any) -> list[StoredRow]:
    """What a multi-row ``INSERT … RETURNING *`` on ``cursor`` stored, as ``table``'s typed
    rows sorted by id: the order they were inserted in."""
    found = cursor.fetchall()
    if not found:
        return []
    make = reader(table, tuple(d[0] for d in cursor.description))
    return sorted((make(values) for values in found), key=_row_id)


def _row_id(row: StoredRow) -> int:
    return row.id
