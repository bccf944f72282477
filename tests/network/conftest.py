"""One real PostgreSQL server for the whole test session; each test gets its own database.

The server is started once (initdb ~1 s) and stopped at the end of the session. Each test gets a
fresh database with the server schema applied (``server init``), so tests stay independent; a
test that stops the server (an outage) starts it again before it ends.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from kapmonitor.domain.clock import FakeClock
from kapmonitor.network import admin
from kapmonitor.network.local_server import PgServer
from kapmonitor.store import encrypted_store, encryption, key_slots
from kapmonitor.store.key_slots import DatabaseKeys, KdfCost
from kapmonitor.store.session_store import SessionStore
from tests.factories import T0

_numbers = itertools.count(1)
ADMIN_USER, ADMIN_PASSWORD = "Admin", "violet orchard lantern 42"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server = PgServer()
    server.start()
    yield server
    server.close()


@dataclass
class Archive:
    """A fresh central database on the shared server."""

    server: PgServer
    name: str

    @property
    def admin_url(self) -> str:
        return self.server.url(self.name)

    def laptop_url(self, laptop: str, password: str) -> str:
        return self.server.url(self.name, admin.role_name(self.name, laptop), password)

    def add_laptop(self, laptop: str) -> str:
        """Register ``laptop``; returns its role's connection URL (with the password)."""
        added = admin.add_laptop(self.admin_url, laptop)
        return self.laptop_url(laptop, added.password)

    def query(self, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
        with psycopg.connect(self.admin_url) as conn:
            return conn.execute(sql, params or []).fetchall()


@pytest.fixture
def archive(pg_server: PgServer) -> Iterator[Archive]:
    name = f"kap_t{next(_numbers)}"
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    admin.init_server(pg_server.url(name))
    yield Archive(pg_server, name)


@pytest.fixture(autouse=True)
def _cheap_key_slots(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Key slots derive with a small scrypt cost (the shipped one is ~0.5 s per derivation)."""
    monkeypatch.setattr(key_slots, "PASSWORD_COST", KdfCost(n=2**10))
    monkeypatch.setattr(key_slots, "RECOVERY_COST", KdfCost(n=2**10))
    encryption.forget_all()
    yield
    encryption.forget_all()


@dataclass
class Laptop:
    """One simulated laptop: an encrypted database and its clock."""

    path: Path
    keys: DatabaseKeys
    clock: FakeClock

    def store(self) -> SessionStore:
        return SessionStore.open(self.path, self.clock, keys=self.keys)


def make_laptop(folder: Path, name: str, clock: FakeClock | None = None) -> Laptop:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.sqlite"
    clock = clock or FakeClock(T0)
    opened = encrypted_store.create(path, clock, ADMIN_USER, "Dr Admin", ADMIN_PASSWORD)
    return Laptop(path, opened.keys, clock)


def record_demo_session(laptop: Laptop, seed: int) -> str:
    """A whole realistic session (the demo's script) recorded on ``laptop``; its id."""
    import random

    from kapmonitor.demo import record_demo

    store = laptop.store()
    try:
        session_id = ""
        for kind, ident in record_demo(
            store, laptop.clock, laptop.clock.now(), 0.0, random.Random(seed)
        ):
            if kind == "session":
                session_id = str(ident)
        return session_id
    finally:
        store.close()


def local_counts(laptop: Laptop) -> dict[str, int]:
    """Rows per sent table on the laptop."""
    from kapmonitor.network.server_schema import sent_tables
    from kapmonitor.store.database import connect_readonly

    db = connect_readonly(laptop.path, laptop.keys)
    try:
        return {
            t: int(db.execute(f"SELECT count(*) FROM [{t}]").fetchone()[0]) for t in sent_tables(db)
        }
    finally:
        db.close()


def server_counts(archive: Archive, laptop_id: str) -> dict[str, int]:
    """Rows per table the server holds for ``laptop_id`` (duplicates impossible: primary key)."""
    import tempfile

    from kapmonitor.network.server_schema import sent_tables
    from kapmonitor.store.database import connect as connect_laptop

    shape = connect_laptop(Path(tempfile.mkdtemp()) / "shape.sqlite")
    tables = sent_tables(shape)
    shape.close()
    union = " UNION ALL ".join(
        f"SELECT '{t}', count(*) FROM kap.{t} WHERE laptop_id = %s" for t in tables
    )
    return {str(t): int(n) for t, n in archive.query(union, [laptop_id] * len(tables))}
