"""The command line refuses what would lose data, names the option at fault, never shows a
traceback, and leaves nothing half-made behind (issue 9, part 8).

Every case runs the real ``python -m kapmonitor`` in a subprocess, as a user would, and checks
the exit code, the sentence on stderr and what is (or is not) on disk afterwards.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kapmonitor.demo import record_demo
from kapmonitor.domain.clock import FakeClock
from kapmonitor.store import backup, encrypted_store
from kapmonitor.store.accounts import Accounts
from kapmonitor.store.database import connect_readonly
from kapmonitor.store.signoff import Review
from tests.factories import T0, open_store

READY_WAIT_SECONDS = 90  # a generous ceiling for a cold Qt start on a busy CI machine


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kapmonitor", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )


ADMIN_CREDENTIALS = {"KAPMONITOR_USER": "admin", "KAPMONITOR_PASSWORD": "alpine-harbour-7"}


def refused(done: subprocess.CompletedProcess[str], *words: str) -> None:
    """A plain refusal: non-zero, no traceback, and every word in the sentence."""
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    for word in words:
        assert word in done.stderr, done.stderr


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def signatures(path: Path) -> int:
    """Signatures in the file at ``path`` (plain, or encrypted with a key this test unlocked)."""
    db = connect_readonly(path)
    try:
        return db.execute("SELECT count(*) FROM signatures").fetchone()[0]
    finally:
        db.close()


# --- restore ------------------------------------------------------------------------------------


@pytest.fixture
def signed_after_backup(tmp_path: Path) -> tuple[Path, Path]:
    """A clinic database whose end-of-session backup predates the supervisor's signature:
    restoring that backup over the live file is exactly how the signature was lost."""
    db = tmp_path / "clinic.sqlite"
    clock = FakeClock(T0)
    store = open_store(db, clock)
    for _ in record_demo(store, clock, T0, 0.0, random.Random(4)):
        pass
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    accounts.create_user(admin, "chen", "Dr M. Chen", "supervisor", "copper-meadow-9")
    taken = backup.take_backup(db)
    session_id = store.list_sessions()[0]["id"]
    review = Review(store)
    clock.advance(hours=20)
    flags = [flag.key for flag in review.quality_flags(session_id)]
    review.sign(session_id, "chen", "copper-meadow-9", confirmed=flags)
    store.close()
    assert signatures(db) == 1 and signatures(taken.path) == 0
    return db, taken.path


def gui_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "KAPMONITOR_CONFIG_DIR": str(home / "config"),
        **ADMIN_CREDENTIALS,  # the window encrypts the plain file at start, as its admin
    }


def wait_until(ready: object, process: subprocess.Popen[str], what: str) -> None:
    """Wait for another process to reach a state (not a timing assertion: a readiness wait)."""
    deadline = time.monotonic() + READY_WAIT_SECONDS
    while not ready():  # type: ignore[operator]
        if process.poll() is not None:
            _out, err = process.communicate()
            pytest.fail(f"{what}: the process ended first ({process.returncode}): {err}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not ready after {READY_WAIT_SECONDS} s")
        time.sleep(0.05)


@pytest.fixture
def window(signed_after_backup: tuple[Path, Path], tmp_path: Path) -> Iterator[subprocess.Popen]:
    """The real bedside window, open on the clinic database in another process."""
    from kapmonitor.ui.app import lock_holder

    db, _copy = signed_after_backup
    process = subprocess.Popen(
        [sys.executable, "-m", "kapmonitor", "--db", str(db)],
        env=gui_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            lambda: (
                lock_holder(db)[0] == process.pid
                and process.pid in [h.pid for h in backup.holders(db)]
            ),
            process,
            "the window holding its lock and the database",
        )
        yield process
    finally:
        if process.returncode is None:  # the test did not close it (it failed first)
            process.terminate()
            process.communicate(timeout=60)


def test_restore_refuses_while_the_window_is_open_and_works_once_it_is_closed(
    window: subprocess.Popen, signed_after_backup: tuple[Path, Path]
) -> None:
    db, copy = signed_after_backup
    # The window encrypts the file (and its backup) when the administrator unlocks it: the
    # command line and this test then unlock it the same way.
    wait_until(
        lambda: (
            encrypted_store.state(db) == "encrypted"
            and window.pid in [h.pid for h in backup.holders(db)]
        ),
        window,
        "the window encrypting the database and holding it open",
    )
    encrypted_store.unlock(db, "admin", ADMIN_CREDENTIALS["KAPMONITOR_PASSWORD"], FakeClock(T0))
    env = {**os.environ, **ADMIN_CREDENTIALS}
    before = digest(db)

    done = run_cli("restore", "--db", str(db), str(copy), env=env)
    refused(done, "KAP Monitor window", f"process {window.pid}", "close it first", str(db))
    assert done.returncode == 2
    assert digest(db) == before and signatures(db) == 1  # the signature is still there
    assert not list(db.parent.glob(f"{db.name}.replaced-*"))

    done = run_cli("restore", "--db", str(db), env=env)  # the newest good backup: refused too
    refused(done, f"process {window.pid}")
    assert signatures(db) == 1

    window.terminate()
    window.communicate(timeout=60)
    done = run_cli("restore", "--db", str(db), str(copy), env=env)
    assert done.returncode == 0, done.stderr
    (kept,) = [
        p for p in db.parent.glob(f"{db.name}.replaced-*") if not p.name.endswith(("-wal", "-shm"))
    ]
    assert f"kept as {kept}" in done.stdout
    assert signatures(kept) == 1  # the replaced file, signature and all, is beside it
    assert signatures(db) == 0


HOLD_OPEN = """
import sys, time
from pathlib import Path
from kapmonitor.store.session_store import SessionStore
store = SessionStore.open(Path(sys.argv[1]))
store.list_sessions()
print("open", flush=True)
time.sleep(120)
"""


def test_restore_refuses_while_any_other_program_has_the_file_open(
    signed_after_backup: tuple[Path, Path],
) -> None:
    """Not the window (its lock is free), but a live SQLite connection in another process."""
    db, copy = signed_after_backup
    other = subprocess.Popen(
        [sys.executable, "-c", HOLD_OPEN, str(db)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "open"
        before = digest(db)
        done = run_cli("restore", "--db", str(db), str(copy))
        refused(done, f"process {other.pid}", "open in another program", "Nothing was changed")
        assert digest(db) == before and signatures(db) == 1
        assert not list(db.parent.glob(f"{db.name}.replaced-*"))
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait()
    done = run_cli("restore", "--db", str(db), str(copy))
    assert done.returncode == 0, done.stderr
    assert signatures(db) == 0


def test_restore_names_the_backup_argument_when_it_is_at_fault(tmp_path: Path) -> None:
    db = tmp_path / "clinic.sqlite"
    open_store(db).close()
    before = digest(db)
    refused(run_cli("restore", "--db", str(db), str(tmp_path / "none.sqlite")), "BACKUP:")
    refused(run_cli("restore", "--db", str(db), str(tmp_path)), "BACKUP:", "is a folder")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a backup" * 100)
    refused(run_cli("restore", "--db", str(db), str(junk)), "BACKUP:", "cannot be restored")
    refused(run_cli("restore", "--db", str(db)), "BACKUP:", "No good backup")
    refused(run_cli("restore", "--db", str(tmp_path), str(db)), "--db:", "is a folder")
    assert digest(db) == before


# --- demo ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("pace", ["-1", "nan", "inf", "-inf", "abc", "", "1e9"])
def test_demo_refuses_a_bad_pace_before_writing_anything(tmp_path: Path, pace: str) -> None:
    db = tmp_path / "trial.sqlite"
    done = run_cli("demo", "--db", str(db), f"--pace={pace}")
    refused(done, "kapmonitor demo: error: argument --pace:")
    assert done.returncode == 2 and done.stdout == ""
    assert not db.exists()  # no half-recorded session, not even an empty file


def test_demo_refuses_a_bad_pace_on_an_existing_database_without_adding_a_session(
    tmp_path: Path,
) -> None:
    db = tmp_path / "trial.sqlite"
    assert run_cli("demo", "--db", str(db), "--seed", "1").returncode == 0
    before = digest(db)
    refused(run_cli("demo", "--db", str(db), "--pace", "-1"), "argument --pace")
    assert digest(db) == before


def test_demo_accepts_the_pace_limits(tmp_path: Path) -> None:
    from kapmonitor.cli import MAX_PACE_SECONDS, build_parser

    parser = build_parser()
    for text, value in (("0", 0.0), ("0.01", 0.01), (str(MAX_PACE_SECONDS), MAX_PACE_SECONDS)):
        assert parser.parse_args(["demo", "--db", "x", "--pace", text]).pace == value


def test_demo_refuses_other_bad_arguments(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KAPMONITOR_DB"}
    env["HOME"] = str(tmp_path)
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    done = run_cli("demo", env=env)  # never into the clinic's own (default) database
    refused(done, "kapmonitor demo: error: --db is required", "--db /tmp/trial.sqlite")
    assert done.returncode == 2 and not (tmp_path / "data").exists()
    refused(run_cli("demo", "--db", str(tmp_path / "t.sqlite"), "--seed", "x"), "--seed")
    refused(run_cli("demo", "--db", str(tmp_path)), "--db:", "is a folder")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    refused(run_cli("demo", "--db", str(blocker / "t.sqlite")), "--db:", "is a file, not a folder")


def test_a_stopped_demo_ends_its_session_instead_of_leaving_it_open(tmp_path: Path) -> None:
    db = tmp_path / "trial.sqlite"
    demo = subprocess.Popen(
        [sys.executable, "-m", "kapmonitor", "demo", "--db", str(db), "--pace", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert demo.stdout is not None
    for _ in range(3):
        assert demo.stdout.readline().startswith("committed ")
    demo.send_signal(signal.SIGINT)
    out, err = demo.communicate(timeout=120)
    assert demo.returncode == 130 and "Traceback" not in err, err
    assert "demo stopped" in err
    assert out.splitlines()[-1].startswith("committed end ")
    done = run_cli("sessions", "--db", str(db))
    assert done.returncode == 0
    (row,) = done.stdout.splitlines()[1:]
    assert " ended " in row and " open " not in row


# --- every command names the option at fault ---------------------------------------------------


@pytest.fixture
def clinic(tmp_path: Path) -> Path:
    db = tmp_path / "clinic.sqlite"
    clock = FakeClock(T0)
    store = open_store(db, clock)
    for _ in record_demo(store, clock, T0, 0.0, random.Random(5)):
        pass
    store.close()
    return db


def test_backup_to_an_unwritable_place_blames_out_not_db(clinic: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for out in (blocker, blocker / "sub", Path("/proc/kapmonitor-no-such-folder")):
        done = run_cli("backup", "--db", str(clinic), "--out", str(out))
        refused(done, "--out:", str(out))
        assert "--db" not in done.stderr and "database file" not in done.stderr
    refused(run_cli("backup", "--db", str(tmp_path / "none.sqlite")), "--db:", "no database")
    refused(run_cli("backup", "--db", str(tmp_path)), "--db:", "is a folder")
    refused(run_cli("backup", "--db", str(clinic), "--keep", "0"), "argument --keep")
    assert not (tmp_path / "none-backups").exists()


def test_export_import_verify_sessions_name_the_option_at_fault(
    clinic: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    missing = tmp_path / "none.sqlite"
    for command in (
        ["sessions"],
        ["verify"],
        ["export", "--all", "--format", "json", "--out", str(tmp_path / "o")],
    ):
        refused(run_cli(*command, "--db", str(missing)), "--db:", "no database")
        refused(run_cli(*command, "--db", str(tmp_path)), "--db:", "is a folder")
    assert not missing.exists()
    refused(run_cli("verify", "--db", str(blocker)), "--db:", "not an SQLite file")
    for fmt in ("json", "csv", "fhir", "pdf"):
        done = run_cli(
            "export", "--db", str(clinic), "--all", "--format", fmt, "--out", str(blocker / "x")
        )
        refused(done, "--out:", str(blocker))
    refused(
        run_cli(
            "export",
            "--db",
            str(clinic),
            "--session",
            "nope",
            "--format",
            "json",
            "--out",
            str(tmp_path / "x.json"),
        ),
        "--session:",
        "nope",
    )
    refused(run_cli("import", "--db", str(clinic), str(tmp_path / "none.json")), "FILE:")
    refused(run_cli("import", "--db", str(clinic), str(blocker)), "FILE:")
    refused(run_cli("import", "--db", str(blocker / "x.sqlite"), str(clinic)), "--db:")


def test_bench_checks_its_executables_before_measuring(tmp_path: Path) -> None:
    done = run_cli("bench", "--quick", "--frozen", str(tmp_path / "none"))
    refused(done, "argument --frozen", "not an executable file")
    assert done.returncode == 2 and done.stdout == ""
    refused(run_cli("bench", "--quick", "--bare", str(tmp_path)), "argument --bare")


# --- the window without a screen (issue 9, part 9) ---------------------------------------------


def test_the_window_without_a_display_says_so_plainly(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    env["HOME"] = str(tmp_path)
    db = tmp_path / "trial.sqlite"
    done = run_cli("--db", str(db), env=env)
    refused(done, "needs a desktop session", "xvfb-run -a kapmonitor", "kapmonitor --help")
    assert done.returncode == 3
    assert "qt.qpa" not in done.stderr and "Aborted" not in done.stderr
    assert not db.exists()
    # The commands that need no screen still work there.
    assert run_cli("demo", "--db", str(db), env=env).returncode == 0
    assert run_cli("sessions", "--db", str(db), env=env).returncode == 0


def test_db_given_before_the_command_is_the_one_used(tmp_path: Path) -> None:
    """``kapmonitor --db X demo`` once dropped X and wrote into the clinic's default database."""
    env = {k: v for k, v in os.environ.items() if k != "KAPMONITOR_DB"}
    env["HOME"] = str(tmp_path / "home")
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    db = tmp_path / "trial.sqlite"
    assert run_cli("--db", str(db), "demo", "--seed", "2", env=env).returncode == 0
    done = run_cli("--db", str(db), "sessions", env=env)
    assert done.returncode == 0 and "ended" in done.stdout
    assert not (tmp_path / "data").exists()  # the default database was never touched
