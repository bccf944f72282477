"""A database file stopped at an earlier schema, as a migration test starts from one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database

from kapmonitor.store.schema import migrations


def file_before(path: Path, migration: str) -> tuple[sqlite3.Connection, Database]:
    """A plain file at ``path`` with every migration before ``migration`` applied."""
    conn = sqlite3.connect(path)
    db = Database(conn)
    db.execute("PRAGMA foreign_keys = ON")
    migrations.apply(db, stop_before=migration)
    return conn, db


def insert_session(db: Database, session_id: str, stamp: str) -> None:
    """One session row written the way the oldest schema took it (recorded by Dr A)."""
    db.execute(
        "INSERT INTO sessions (id, patient_code, sex, weight_kg, indication, eligibility, "
        "concomitant_medicines, session_limit_minutes, app_version, observed_at, "
        "recorded_at, recorded_by) VALUES (?, 'KAP-1', 'female', 70, 'trd', '{}', '[]', "
        "180, 'x', ?, ?, 'Dr A')",
        [session_id, stamp, stamp],
    )
