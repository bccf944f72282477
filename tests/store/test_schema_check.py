"""The expected schema is generated from the migrations and compared on every open and by verify;
a file whose structure differs is refused for writing, still readable and verifiable."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from kapmonitor.store import schema_check
from kapmonitor.store.database import StoreError, connect_readonly
from kapmonitor.store.schema import migrations
from kapmonitor.store.verify import verify_database
from tests.factories import open_store


def test_a_file_the_app_made_matches_the_expected_schema(tmp_path: Path) -> None:
    store = open_store(tmp_path / "a.sqlite")
    assert schema_check.differences(store.db) == []
    kinds = {kind for kind, _name in schema_check.current(store.db)}
    assert kinds == {"table", "index", "trigger"}  # every kind the migrations make is compared
    assert ("trigger", "users_role_change") in schema_check.current(store.db)
    store.close()


def test_a_file_of_an_earlier_version_is_held_to_that_versions_schema(tmp_path: Path) -> None:
    """A backup from before 0011 is not reported as changed: it is compared with what its own
    migrations make."""
    conn = sqlite3.connect(tmp_path / "old.sqlite")
    migrations.apply(Database(conn), stop_before="0011_keyed_audit")
    conn.commit()
    db = Database(conn)
    assert ("trigger", "users_role_change") not in schema_check.current(db)
    assert schema_check.differences(db) == []
    conn.close()


def test_an_extra_index_is_named_and_the_app_will_not_write(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    open_store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("CREATE INDEX speedy ON vitals(hr)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError) as refused:
        open_store(path)
    assert refused.value.kind == "schema"
    assert "index speedy was not made by KAP Monitor" in str(refused.value)
    assert "it can be opened read-only and verified" in str(refused.value)
    reader = connect_readonly(path)  # read-only: listed, exported, verified
    assert reader.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
    reader.conn.close()
    assert verify_database(path).problems == [
        "the file's structure was changed outside KAP Monitor: index speedy was not made by "
        "KAP Monitor"
    ]


def test_a_line_break_is_not_a_change_but_a_word_is(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    open_store(path).close()
    conn = sqlite3.connect(path)
    (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'doses_no_delete'").fetchone()
    conn.execute("DROP TRIGGER doses_no_delete")
    conn.execute(sql.replace("\n", "\n\n  "))
    conn.commit()
    assert schema_check.differences(Database(conn)) == []
    conn.execute("DROP TRIGGER doses_no_delete")
    conn.execute(sql.replace("BEFORE DELETE", "AFTER DELETE"))
    conn.commit()
    assert schema_check.differences(Database(conn)) == ["trigger doses_no_delete was rewritten"]
    conn.close()


def test_the_expected_schema_is_made_by_the_migrations_not_kept_by_hand() -> None:
    names = frozenset(m.name for m in migrations._migrations)
    expected = schema_check.expected(names)
    assert schema_check.expected(names) is expected  # computed once per process
    smaller = schema_check.expected(frozenset(n for n in names if n != "0011_keyed_audit"))
    assert set(expected) - set(smaller) == {("trigger", "users_role_change")}
