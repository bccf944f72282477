"""The command line on an encrypted database: init, unlock from the environment, refusals, rekey,
recovery and the migration of a plain file, each run as a script would run it (a subprocess
with no terminal)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kapmonitor.domain.clock import FakeClock
from kapmonitor.store.accounts import Accounts
from kapmonitor.store.encryption import is_plain
from tests.factories import T0, open_store, session_start

PASSWORD = "violet orchard lantern 42"


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KAPMONITOR_")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "kapmonitor", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=environ,
        stdin=subprocess.DEVNULL,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


ADMIN = {"KAPMONITOR_USER": "admin", "KAPMONITOR_PASSWORD": PASSWORD}


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``init`` then ``demo`` with the administrator's credentials in the environment."""
    folder = tmp_path_factory.mktemp("clinic")
    db, recovery_file = folder / "clinic.sqlite", folder / "recovery.txt"
    out = ok(
        run_cli(
            "init",
            "--db",
            str(db),
            "--admin",
            "admin",
            "--display-name",
            "Dr Admin",
            "--recovery-out",
            str(recovery_file),
            KAPMONITOR_PASSWORD=PASSWORD,
        )
    )
    recovery = recovery_file.read_text().strip()
    assert recovery not in out and len(recovery.split("-")) == 8
    assert stat.S_IMODE(recovery_file.stat().st_mode) == 0o600
    ok(run_cli("demo", "--db", str(db), "--seed", "7", **ADMIN))
    return db, recovery


def test_init_and_demo_write_an_encrypted_file_that_the_commands_open_with_credentials(
    clinic: tuple[Path, str],
) -> None:
    db, _ = clinic
    assert not is_plain(db)
    listing = ok(run_cli("sessions", "--db", str(db), **ADMIN))
    code = listing.splitlines()[1].split()[1]
    assert code.startswith("KAP-")
    for name in (db.name, f"{db.name}-wal"):
        path = db.parent / name
        assert not path.exists() or code.encode() not in path.read_bytes()
    assert "OK: audit chain intact" in ok(run_cli("verify", "--db", str(db), **ADMIN))
    backed = ok(run_cli("backup", "--db", str(db), **ADMIN))
    backup = Path(backed.split(" to ", 1)[1].split(" (")[0])
    assert not is_plain(backup) and code.encode() not in backup.read_bytes()


def test_without_credentials_or_with_a_wrong_password_the_command_refuses_plainly(
    clinic: tuple[Path, str],
) -> None:
    db, _ = clinic
    done = run_cli("sessions", "--db", str(db))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "KAPMONITOR_USER" in done.stderr and "KAPMONITOR_PASSWORD" in done.stderr
    done = run_cli("sessions", "--db", str(db), KAPMONITOR_USER="admin", KAPMONITOR_PASSWORD="x")
    assert done.returncode == 2 and "Wrong user name or password" in done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr
    done = run_cli(
        "init", "--db", str(db), "--admin", "a", "--display-name", "A", KAPMONITOR_PASSWORD="x"
    )
    assert done.returncode == 2 and "already a database" in done.stderr


def test_rekey_and_recover_from_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "clinic.sqlite"
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    ok(
        run_cli(
            "init",
            "--db",
            str(db),
            "--admin",
            "admin",
            "--display-name",
            "Dr Admin",
            "--recovery-out",
            str(first),
            KAPMONITOR_PASSWORD=PASSWORD,
        )
    )
    before = db.read_bytes()[:4096]
    out = ok(run_cli("rekey", "--db", str(db), "--recovery-out", str(second), **ADMIN))
    assert "slots kept for admin" in out
    assert db.read_bytes()[:4096] != before  # every page re-encrypted
    assert "OK: audit chain intact" in ok(run_cli("verify", "--db", str(db), **ADMIN))
    old = run_cli(
        "recover",
        "--db",
        str(db),
        "--admin",
        "admin",
        KAPMONITOR_RECOVERY_KEY=first.read_text().strip(),
        KAPMONITOR_PASSWORD="plum quartz ferry 2031 window",
    )
    assert old.returncode == 2 and "recovery key does not unlock" in old.stderr
    ok(
        run_cli(
            "recover",
            "--db",
            str(db),
            "--admin",
            "admin",
            KAPMONITOR_RECOVERY_KEY=second.read_text().strip(),
            KAPMONITOR_PASSWORD="plum quartz ferry 2031 window",
        )
    )
    ok(
        run_cli(
            "sessions",
            "--db",
            str(db),
            KAPMONITOR_USER="admin",
            KAPMONITOR_PASSWORD="plum quartz ferry 2031 window",
        )
    )


def test_a_plain_database_is_encrypted_when_the_administrator_runs_a_command(
    tmp_path: Path,
) -> None:
    db = tmp_path / "clinic.sqlite"
    clock = FakeClock(T0)
    store = open_store(db, clock)
    Accounts(store.db, clock).create_first_administrator("admin", "Dr Admin", PASSWORD)
    store.start_session(session_start(clock, patient_code="PLAIN-0077"), "Dr A")
    store.close()
    assert b"PLAIN-0077" in db.read_bytes() or b"PLAIN-0077" in Path(f"{db}-wal").read_bytes()
    # without credentials a plain file still opens as before
    assert "PLAIN-0077" in ok(run_cli("sessions", "--db", str(db)))
    done = run_cli("sessions", "--db", str(db), **ADMIN)
    assert "PLAIN-0077" in ok(done)
    assert "now encrypted" in done.stderr and "recovery key" in done.stderr
    assert not is_plain(db) and b"PLAIN-0077" not in db.read_bytes()
    assert not (tmp_path / f"{db.name}.plain-before-encryption").exists()
