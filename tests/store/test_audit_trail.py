"""The audit trail and ``verify``: every row is chained; tampering with raw SQL is named.

The tamper tests act as someone with the sqlite3 shell would: drop the append-only triggers,
then edit, delete or insert rows directly. ``verify`` must catch each and name the row.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database, Migrations

from kapmonitor.demo import record_demo
from kapmonitor.domain.clock import FakeClock
from kapmonitor.store import audit
from kapmonitor.store.database import StoreError
from kapmonitor.store.schema import MIGRATION_SET, migrations
from kapmonitor.store.verify import verify_database
from tests.factories import T0, open_store


class _Insider(sqlite3.Connection):
    """A tamperer's connection: the triggers are dropped for the edit and put back, exactly as
    they were, when it commits, so the file's schema shows no trace (the schema check's part is
    tested in test_tamper.py); what is left to find is the edit itself."""

    saved: list[str]

    def commit(self) -> None:
        for sql in self.saved:
            self.execute(sql)
        self.saved = []
        super().commit()


def raw(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection with every trigger dropped, as a tamperer would."""
    conn = sqlite3.connect(path, factory=_Insider)
    found = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
    conn.saved = [sql for _name, sql in found]
    for name, _sql in found:
        conn.execute(f"DROP TRIGGER {name}")
    return conn


def test_every_row_the_app_wrote_is_audited_and_verify_passes(demo_path: Path) -> None:
    report = verify_database(demo_path)
    assert report.ok, report.lines
    conn = sqlite3.connect(demo_path)
    vitals = conn.execute("SELECT count(*) FROM vitals").fetchone()[0]
    audited = conn.execute(
        "SELECT count(*) FROM audit WHERE table_name = 'vitals' AND action = 'insert'"
    ).fetchone()[0]
    derived = conn.execute(
        "SELECT count(*) FROM audit WHERE table_name IN ('alarms', 'vital_scores')"
    ).fetchone()[0]
    assert vitals == audited > 20
    assert derived >= vitals  # NEWS2 and alarms are audited with their reading
    # Every entry records a row, but the key marker that starts the keyed chain (0011).
    assert (
        report.rows_checked
        == conn.execute("SELECT count(*) FROM audit WHERE action != 'audit_key'").fetchone()[0]
    )
    assert report.lines[0].startswith("OK: audit chain intact")


def test_an_edited_row_is_named(demo_path: Path) -> None:
    conn = raw(demo_path)
    row_id = conn.execute("SELECT id FROM vitals ORDER BY id LIMIT 1 OFFSET 3").fetchone()[0]
    conn.execute("UPDATE vitals SET sbp = sbp - 30 WHERE id = ?", [row_id])
    conn.commit()
    report = verify_database(demo_path)
    assert not report.ok
    assert report.problems == [
        f"vitals row {row_id}: altered after it was recorded (audit entry "
        f"#{audit_entry(demo_path, 'vitals', row_id)})"
    ]


def test_a_deleted_row_is_named(demo_path: Path) -> None:
    conn = raw(demo_path)
    row_id = conn.execute("SELECT id FROM adverse_events LIMIT 1").fetchone()[0]
    conn.execute("DELETE FROM adverse_event_outcomes")  # it would dangle otherwise
    conn.execute("DELETE FROM adverse_events WHERE id = ?", [row_id])
    conn.commit()
    problems = verify_database(demo_path).problems
    assert any(p.startswith(f"adverse_events row {row_id}: removed") for p in problems)
    assert any(p.startswith("adverse_event_outcomes row ") for p in problems)


def test_an_inserted_row_is_named(demo_path: Path) -> None:
    conn = raw(demo_path)
    columns = [c[1] for c in conn.execute("PRAGMA table_info(vitals)") if c[1] != "id"]
    conn.execute(
        f"INSERT INTO vitals ({', '.join(columns)}) SELECT {', '.join(columns)} FROM vitals "
        "ORDER BY id DESC LIMIT 1"
    )
    new_id = conn.execute("SELECT max(id) FROM vitals").fetchone()[0]
    conn.commit()
    assert verify_database(demo_path).problems == [
        f"vitals row {new_id}: inserted outside the app (no audit entry)"
    ]


def test_an_edited_audit_entry_and_a_removed_one_break_the_chain(demo_path: Path) -> None:
    conn = raw(demo_path)
    conn.execute("UPDATE audit SET actor = 'someone else' WHERE id = 10")
    conn.execute("DELETE FROM audit WHERE id = 20")
    conn.commit()
    problems = verify_database(demo_path).problems
    assert "audit entry #10: altered (its hash does not match)" in problems
    assert "audit entries #20–#20: removed from the trail" in problems
    assert any(p.startswith("audit entry #21: does not follow") for p in problems)


def test_a_rewritten_audit_trail_still_cannot_hide_an_edit(demo_path: Path) -> None:
    """Editing a row and its audit entry's row hash breaks that entry's own chained hash."""
    conn = raw(demo_path)
    row_id = conn.execute("SELECT min(id) FROM doses").fetchone()[0]
    conn.execute("UPDATE doses SET dose_mg = 500 WHERE id = ?", [row_id])
    entry = audit_entry(demo_path, "doses", row_id, conn)
    content = dict(
        zip(
            [c[1] for c in conn.execute("PRAGMA table_info(doses)")],
            conn.execute("SELECT * FROM doses WHERE id = ?", [row_id]).fetchone(),
            strict=True,
        )
    )
    conn.execute("UPDATE audit SET row_hash = ? WHERE id = ?", [audit.row_hash(content), entry])
    conn.commit()
    assert verify_database(demo_path).problems == [
        f"audit entry #{entry}: altered (its hash does not match)"
    ]


def test_verify_refuses_plainly_what_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="There is no database"):
        verify_database(tmp_path / "missing.sqlite")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="not a KAP Monitor database"):
        verify_database(junk)


def test_a_file_from_before_the_trail_is_sealed_as_a_baseline(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    clock = FakeClock(T0)
    store = open_store(path, clock)
    for _ in record_demo(store, clock, T0, 0.0, random.Random(5)):
        pass
    store.close()
    old = tmp_path / "schema2.sqlite"  # a real schema-2 file, holding the demo's rows
    schema2 = Migrations(MIGRATION_SET)
    schema2._migrations = [m for m in migrations._migrations if m.name.startswith(("0001", "0002"))]
    conn = sqlite3.connect(old)
    schema2.apply(Database(conn))
    conn.execute("ATTACH DATABASE ? AS demo", [str(path)])
    tables = [r[0] for r in conn.execute("SELECT name FROM main.sqlite_master WHERE type='table'")]
    for table in tables:
        if table.startswith("_"):
            continue
        columns = [c[1] for c in conn.execute(f"PRAGMA main.table_info({table})")]
        names = ", ".join(columns)
        # A row schema 2 could not hold (an alarm from a questionnaire) is left out.
        conn.execute(
            f"INSERT OR IGNORE INTO main.{table} ({names}) SELECT {names} FROM demo.{table}"
        )
    conn.commit()
    conn.close()
    path = old
    open_store(path, clock).close()  # opening migrates and seals what is there
    report = verify_database(path)
    assert report.ok, report.lines
    baseline = (
        sqlite3.connect(path)
        .execute("SELECT count(*) FROM audit WHERE action = 'baseline'")
        .fetchone()[0]
    )
    assert baseline == report.rows_checked


def audit_entry(path: Path, table: str, row_id: int, conn: sqlite3.Connection | None = None) -> int:
    conn = conn or sqlite3.connect(path)
    return conn.execute(
        "SELECT max(id) FROM audit WHERE table_name = ? AND row_id = ?", [table, row_id]
    ).fetchone()[0]
