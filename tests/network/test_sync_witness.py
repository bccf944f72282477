"""The laptop killed mid-sync, the laptop rolled back or replaced behind the app's back, and the
command line's network commands, against a real PostgreSQL."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kapmonitor import cli
from kapmonitor.network import state, witness
from kapmonitor.network.connection import NetworkError
from kapmonitor.network.sync import sync_once
from kapmonitor.network.verify_server import check_against_server
from tests.network.conftest import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    Archive,
    Laptop,
    local_counts,
    make_laptop,
    record_demo_session,
    server_counts,
)

ROOT = Path(__file__).resolve().parents[2]


def test_a_laptop_killed_mid_sync_resumes_and_nothing_is_lost(
    archive: Archive, tmp_path: Path
) -> None:
    url = archive.add_laptop("room-1")
    laptop = make_laptop(tmp_path, "room-1")
    record_demo_session(laptop, seed=7)
    marker = tmp_path / "stalled"
    env = {**os.environ, "KAP_TEST_KEYS": laptop.keys.payload().hex(), "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("sync_child.py")),
            str(laptop.path),
            url,
            str(marker),
        ],
        env=env,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 120  # a wait for the child, not a timed assertion
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the child never reached batch 3"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert sum(server_counts(archive, "room-1").values()) == 20  # batch 3 never committed
    result = sync_once(laptop.path, url, laptop.keys, batch_rows=10)
    assert result.stored == sum(local_counts(laptop).values()) - 20
    assert server_counts(archive, "room-1") == local_counts(laptop)


def _copy_file(laptop: Laptop, to: Path) -> None:
    to.mkdir()
    for path in laptop.path.parent.glob(f"{laptop.path.name}*"):
        if not path.name.endswith(state.SUFFIX):
            shutil.copy2(path, to / path.name)


def _restore_file(laptop: Laptop, kept: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{laptop.path}{suffix}").unlink(missing_ok=True)
    for path in kept.iterdir():
        shutil.copy2(path, laptop.path.parent / path.name)


def test_a_laptop_rolled_back_to_an_earlier_copy_is_named_and_its_sync_refused(
    archive: Archive, tmp_path: Path
) -> None:
    url = archive.add_laptop("room-1")
    laptop = make_laptop(tmp_path / "laptop", "room-1")
    record_demo_session(laptop, seed=8)
    sync_once(laptop.path, url, laptop.keys)
    _copy_file(laptop, tmp_path / "earlier")  # what an insider keeps, to put back later
    record_demo_session(laptop, seed=9)  # a second session, with its signature to lose
    sync_once(laptop.path, url, laptop.keys)
    problems, notes = check_against_server(laptop.path, archive.admin_url, laptop.keys)
    assert problems == [] and "agree" in notes[0]
    before = server_counts(archive, "room-1")

    _restore_file(laptop, tmp_path / "earlier")
    problems, _notes = check_against_server(laptop.path, archive.admin_url, laptop.keys)
    assert len(problems) == 1
    assert "laptop room-1" in problems[0] and "rolled back" in problems[0]
    # new rows recorded on the restored copy would reuse row numbers the server holds: refused
    record_demo_session(laptop, seed=10)
    with pytest.raises(NetworkError, match="Sync refused: laptop room-1"):
        sync_once(laptop.path, url, laptop.keys)
    assert server_counts(archive, "room-1") == before  # nothing sent, nothing overwritten


def test_a_laptop_file_replaced_by_another_database_is_named(
    archive: Archive, tmp_path: Path
) -> None:
    url = archive.add_laptop("room-1")
    first = make_laptop(tmp_path / "a", "room-1")
    record_demo_session(first, seed=11)
    sync_once(first.path, url, first.keys)
    other = make_laptop(tmp_path / "b", "room-1")  # a fresh file under the same laptop's role
    record_demo_session(other, seed=12)
    with pytest.raises(NetworkError, match="replaced by another one"):
        sync_once(other.path, url, other.keys)
    problems, _ = check_against_server(other.path, archive.admin_url, other.keys)
    assert len(problems) == 1 and "laptop room-1" in problems[0] and "replaced" in problems[0]


def test_a_rewritten_entry_is_named_with_its_number() -> None:
    heads = [witness.Head("room-3", "ident", 5, "m5"), witness.Head("room-3", "ident", 9, "m9")]
    macs = {i: f"m{i}" for i in range(1, 12)}
    assert witness.disagreements("ident", macs, heads) == []
    macs[5] = "recomputed"
    (problem,) = witness.disagreements("ident", macs, heads)
    assert "laptop room-3" in problem and "#5" in problem and "rewritten" in problem


def test_the_command_line_sets_up_syncs_reports_and_verifies(
    archive: Archive,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["server", "init", "--server", archive.admin_url]) == 0
    assert "up to date" in capsys.readouterr().out
    secret = tmp_path / "room-1.password"
    assert (
        cli.main(
            [
                "server",
                "add-laptop",
                "room-1",
                "--server",
                archive.admin_url,
                "--password-out",
                str(secret),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    password = secret.read_text().strip()
    assert password not in out and "kapmonitor sync --server" in out
    assert oct(secret.stat().st_mode & 0o777) == "0o600"
    assert (
        cli.main(["server", "add-laptop", "room-2", "--server", archive.admin_url])
        == cli.EXIT_STORE
    )
    err = capsys.readouterr().err
    assert "say where the new role's password goes" in err
    assert archive.query("SELECT laptop_id FROM kap.laptops") == [("room-1",)]

    laptop = make_laptop(tmp_path / "laptop", "room-1")
    record_demo_session(laptop, seed=13)
    # the database is unlocked as every command unlocks it: the environment (cli_keys)
    monkeypatch.setenv("KAPMONITOR_USER", ADMIN_USER)
    monkeypatch.setenv("KAPMONITOR_PASSWORD", ADMIN_PASSWORD)
    monkeypatch.setenv("PGPASSWORD", password)  # libpq's own way: never on the command line
    role_url = archive.laptop_url("room-1", password).replace(f":{password}@", "@")
    assert cli.main(["sync", "--db", str(laptop.path), "status"]) == 0
    assert "Pending: " in capsys.readouterr().out
    assert cli.main(["sync", "--db", str(laptop.path), "--server", role_url]) == 0
    assert "Synced as laptop room-1" in capsys.readouterr().out
    assert cli.main(["sync", "--db", str(laptop.path)]) == 0  # the saved server, no password
    assert " 0 row(s) sent" in capsys.readouterr().out
    assert cli.main(["sync", "--db", str(laptop.path), "status"]) == 0
    status = capsys.readouterr().out
    assert "Pending: nothing" in status and password not in status
    assert cli.main(["verify", "--db", str(laptop.path), "--server", role_url]) == 0
    assert "recorded chain head(s) agree" in capsys.readouterr().out

    kept = tmp_path / "kept"
    _copy_file(laptop, kept)
    record_demo_session(laptop, seed=14)
    assert cli.main(["sync", "--db", str(laptop.path)]) == 0
    capsys.readouterr()
    _restore_file(laptop, kept)
    assert cli.main(["verify", "--db", str(laptop.path), "--server", role_url]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "laptop room-1" in out and "rolled back" in out
    offline = role_url.replace(f":{archive.server.port}/", ":1/")
    assert cli.main(["sync", "--db", str(laptop.path), "--server", offline]) != 0
    err = capsys.readouterr().err
    assert "cannot be reached" in err and "Traceback" not in err
