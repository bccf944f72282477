"""The archive's backup, as docs/network.md tells an administrator to take it, restored after a
loss: the laptops' next passes resend what the restored (older) server lacks, and nothing else.

Run against the real PostgreSQL the other network tests use: ``pg_dump --format=custom`` of the
archive after a first sync, more sessions synced, the database lost and restored from the dump
with ``pg_restore``; the restored archive is behind the laptop, which is not a rollback of the
laptop (its newest recorded head is older, not different), so the next pass converges."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg

from kapmonitor.network.sync import sync_once
from kapmonitor.network.verify_server import check_against_server
from tests.network.conftest import (
    Archive,
    local_counts,
    make_laptop,
    record_demo_session,
    server_counts,
)


def _tool(archive: Archive, name: str, *args: str) -> None:
    done = subprocess.run(
        [str(archive.server.bindir / name), *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_a_restored_older_archive_is_caught_up_by_the_laptops_next_pass(
    archive: Archive, tmp_path: Path
) -> None:
    url = archive.add_laptop("room-1")
    laptop = make_laptop(tmp_path / "room-1", "room-1")
    record_demo_session(laptop, 1)
    sync_once(laptop.path, url, laptop.keys)
    dump = tmp_path / "archive.dump"
    # The nightly backup (docs/network.md, "Backup of the server").
    _tool(archive, "pg_dump", "--format=custom", f"--file={dump}", f"--dbname={archive.admin_url}")
    at_backup = server_counts(archive, "room-1")

    second = record_demo_session(laptop, 2)
    sync_once(laptop.path, url, laptop.keys)
    assert server_counts(archive, "room-1") == local_counts(laptop)

    # The server is lost and restored from last night's dump: its roles live in the cluster
    # (a new cluster gets them from `pg_dumpall --roles-only`, as the docs say).
    with psycopg.connect(archive.server.url(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {archive.name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {archive.name}")
    _tool(archive, "pg_restore", f"--dbname={archive.admin_url}", "--exit-on-error", str(dump))
    assert server_counts(archive, "room-1") == at_backup
    assert archive.query("SELECT count(*) FROM kap.sessions WHERE id = %s", [second]) == [(0,)]

    result = sync_once(laptop.path, url, laptop.keys)
    assert result.stored == sum(local_counts(laptop).values()) - sum(at_backup.values())
    assert server_counts(archive, "room-1") == local_counts(laptop)
    assert archive.query("SELECT count(*) FROM kap.sessions WHERE id = %s", [second]) == [(1,)]
    # The restored archive's summary (the central list's status and counts) is whole again.
    assert archive.query("SELECT count(*) FROM kap.session_summary WHERE laptop_id = 'room-1'") == [
        (2,)
    ]
    problems, notes = check_against_server(laptop.path, archive.admin_url, laptop.keys)
    assert problems == [] and notes
    # A second pass sends nothing: converged.
    assert sync_once(laptop.path, url, laptop.keys).stored == 0
