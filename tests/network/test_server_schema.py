"""The server schema: applied from empty and from every earlier version to the same result,
covering every laptop column, append-only for everyone, and INSERT-only for a laptop's role."""

from __future__ import annotations

import tempfile
from pathlib import Path

import psycopg
import pytest

from kapmonitor.network import admin, server_schema
from kapmonitor.network.local_server import PgServer
from kapmonitor.store.database import connect as connect_laptop
from tests.network.conftest import Archive

SHAPE = """
SELECT c.table_name, c.column_name, c.data_type, c.is_nullable, coalesce(c.column_default, '')
FROM information_schema.columns c WHERE c.table_schema = 'kap'
UNION ALL
SELECT event_object_table, trigger_name, action_timing, event_manipulation, action_statement
FROM information_schema.triggers WHERE trigger_schema = 'kap'
UNION ALL
SELECT tablename, policyname, cmd, array_to_string(roles, ','), coalesce(qual, with_check, '')
FROM pg_policies WHERE schemaname = 'kap'
ORDER BY 1, 2, 3, 4
"""


def _fresh(server: PgServer, name: str) -> str:
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return server.url(name)


def _shape(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(SHAPE).fetchall()


@pytest.mark.parametrize("start", range(server_schema.latest()))
def test_every_earlier_version_upgrades_to_the_same_schema_as_a_fresh_one(
    pg_server: PgServer, start: int
) -> None:
    fresh = _fresh(pg_server, "kap_fresh")
    assert admin.init_server(fresh) == list(range(1, server_schema.latest() + 1))
    older = _fresh(pg_server, f"kap_from_{start}")
    with psycopg.connect(older) as conn:
        server_schema.apply(conn, upto=start)
        assert server_schema.current_version(conn) == start
    assert admin.init_server(older) == list(range(start + 1, server_schema.latest() + 1))
    assert _shape(older) == _shape(fresh)
    assert admin.init_server(older) == []  # a second init changes nothing


def test_the_server_mirrors_every_column_of_every_table_a_laptop_sends(archive: Archive) -> None:
    laptop = connect_laptop(Path(tempfile.mkdtemp()) / "shape.sqlite")
    server = {
        (t, c): kind
        for t, c, kind in archive.query(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'kap'"
        )
    }
    missing = [
        f"{table}.{name} {kind}"
        for table in server_schema.sent_tables(laptop)
        for name, kind in server_schema.laptop_columns(laptop, table)
        if server.get((table, name)) != kind
    ]
    assert missing == [], "add a server schema version for these laptop columns"
    sent = set(server_schema.sent_tables(laptop))
    assert {"sessions", "vitals", "audit", "signatures", "device_readings"} <= sent
    assert not sent & {"users", "account_pins", "signing_keys"}
    for table in sent:
        assert (table, "server_received_at") in server


def test_no_one_can_update_delete_or_truncate_on_the_server(archive: Archive) -> None:
    url = archive.add_laptop("room-1")
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO kap.addenda (local_id, id, text) VALUES (1, 1, 'x')")
    for statement in (
        "UPDATE kap.addenda SET text = 'changed'",
        "DELETE FROM kap.addenda",
        "TRUNCATE kap.addenda",
    ):
        with (
            psycopg.connect(archive.admin_url) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"),
        ):
            conn.execute(statement)  # the owner too: the triggers refuse
    assert archive.query("SELECT text FROM kap.addenda") == [("x",)]


def test_a_laptop_role_may_only_insert_and_read_its_own_rows(archive: Archive) -> None:
    one = archive.add_laptop("room-1")
    two = archive.add_laptop("room-2")
    with psycopg.connect(one) as conn:
        conn.execute("INSERT INTO kap.addenda (local_id, id, text) VALUES (1, 1, 'one')")
    with psycopg.connect(two) as conn:
        conn.execute("INSERT INTO kap.addenda (local_id, id, text) VALUES (1, 1, 'two')")
        assert conn.execute("SELECT text FROM kap.addenda").fetchall() == [("two",)]
    for statement, refusal in (
        ("UPDATE kap.addenda SET text = 'changed'", "permission denied"),
        ("DELETE FROM kap.addenda", "permission denied"),
        ("TRUNCATE kap.addenda", "permission denied"),
        ("INSERT INTO kap.addenda (laptop_id, local_id, id) VALUES ('room-1', 9, 9)", "policy"),
        ("INSERT INTO kap.laptops (laptop_id, role_name) VALUES ('x', 'y')", "permission denied"),
        ("CREATE TABLE kap.mine (x int)", "permission denied"),
    ):
        with psycopg.connect(two) as conn, pytest.raises(psycopg.Error, match=refusal):
            conn.execute(statement)
    assert sorted(archive.query("SELECT laptop_id, text FROM kap.addenda")) == [
        ("room-1", "one"),
        ("room-2", "two"),
    ]


def test_a_laptop_name_is_checked_and_a_second_role_for_it_refused(archive: Archive) -> None:
    archive.add_laptop("room-1")
    with pytest.raises(admin.NetworkError, match="already has a role"):
        archive.add_laptop("room-1")
    with pytest.raises(admin.NetworkError, match="not a laptop name"):
        archive.add_laptop("Room 1; DROP")


def test_the_laptop_password_never_reaches_the_server_in_clear(archive: Archive) -> None:
    """The role is created with a SCRAM verifier made on the client: the server's log (with
    every statement logged) holds no password, and the password still signs in."""
    with psycopg.connect(archive.admin_url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {archive.name} SET log_statement = 'all'")
    added = admin.add_laptop(archive.admin_url, "room-9")
    with psycopg.connect(archive.laptop_url("room-9", added.password)) as conn:
        assert conn.execute("SELECT kap.my_laptop()").fetchone() == ("room-9",)
    assert (
        f'CREATE ROLE "{added.role}" LOGIN PASSWORD \'SCRAM-SHA-256$'
        in archive.server.log.read_text()
    )
    assert added.password not in archive.server.log.read_text()  # logged, without the password
    assert added.password not in repr(added)
