"""``server init`` needs no superuser: a managed PostgreSQL gives an administrator role with
CREATEROLE that owns the archive's database, and that is enough (docs/network.md, "Set-up for a
group")."""

from __future__ import annotations

import itertools
from pathlib import Path

import psycopg

from kapmonitor.network import admin, server_schema
from kapmonitor.network.local_server import PgServer
from kapmonitor.network.sync import sync_once
from tests.network.conftest import local_counts, make_laptop, record_demo_session

_names = itertools.count(1)


def test_an_administrator_without_superuser_sets_up_the_archive(
    pg_server: PgServer, tmp_path: Path
) -> None:
    n = next(_names)
    database, role, password = f"kap_managed{n}", f"kapadmin{n}", "managed-admin-pass-9"
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN CREATEROLE PASSWORD '{password}'")
        conn.execute(f"CREATE DATABASE {database} OWNER {role}")
    url = pg_server.url(database, role, password)
    with psycopg.connect(url) as conn:
        assert conn.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone() == (False,)
    assert admin.init_server(url) == list(range(1, server_schema.latest() + 1))
    laptop_url = pg_server.url(database, *_laptop(url))
    laptop = make_laptop(tmp_path / "room-1", "room-1")
    record_demo_session(laptop, 5)
    sync_once(laptop.path, laptop_url, laptop.keys)
    with psycopg.connect(url) as conn:
        sent = conn.execute("SELECT count(*) FROM kap.vitals WHERE laptop_id = 'room-1'").fetchone()
    assert sent == (local_counts(laptop)["vitals"],)


def _laptop(url: str) -> tuple[str, str]:
    added = admin.add_laptop(url, "room-1")
    return added.role, added.password
