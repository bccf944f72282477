"""``kapmonitor capture`` end to end (issue 13): the real command in its own process, fed by the
real simulator over MLLP, stopped by SIGTERM; what it printed is what the database holds."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from kapmonitor.domain.clock import FakeClock
from kapmonitor.store.verify import verify_database
from tests.factories import T0, open_store, protocol, session_start

LINE = re.compile(r"^(pending [a-z0-9_]+|confirmed vitals|alarm (advisory|warning|critical)) \d+$")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAPMONITOR_")}
    return {**env, "PYTHONUNBUFFERED": "1"}


def make_session(path: Path) -> str:
    clock = FakeClock(T0)
    store = open_store(path, clock)
    sid = store.start_session(session_start(clock), "Dr A", protocol=protocol("clinic-ketamine"))
    store.close()
    return sid


def start_capture(db: Path, sid: str, *extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kapmonitor",
            "capture",
            "--db",
            str(db),
            "--session",
            sid,
            "--mllp",
            "127.0.0.1:0",
            "--match",
            "bed:BED-1",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    assert proc.stdout is not None
    first = proc.stdout.readline().strip()
    assert first.startswith("listening 127.0.0.1:"), (
        first,
        proc.stderr.read() if proc.poll() is not None else "",
    )
    return proc, first.split()[1]


def simulate(address: str, seconds: int, profile: str = "mindray") -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kapmonitor",
            "simulate-monitor",
            "--to",
            address,
            "--rate",
            "0",
            "--duration",
            str(seconds),
            "--profile",
            profile,
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_capture_stores_what_it_prints_and_stops_on_sigterm(tmp_path: Path) -> None:
    db = tmp_path / "clinic.sqlite"
    sid = make_session(db)
    proc, address = start_capture(db, sid)
    try:
        summary = simulate(address, 20)
        assert "AA" in summary
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    lines = [line for line in out.splitlines() if line]
    assert lines and all(LINE.match(line) for line in lines), lines[:5]
    printed = {int(line.split()[2]) for line in lines if line.startswith("pending")}
    conn = sqlite3.connect(db)
    stored = {
        r[0] for r in conn.execute("SELECT id FROM device_readings WHERE session_id = ?", [sid])
    }
    devices = {r[0] for r in conn.execute("SELECT DISTINCT source FROM device_readings")}
    confirmed = {
        r[0] for r in conn.execute("SELECT id FROM vitals WHERE device_reading_id IS NOT NULL")
    }
    conn.close()
    assert printed == stored and len(stored) >= 20
    assert devices == {"mllp"}
    assert confirmed == {int(x.split()[2]) for x in lines if x.startswith("confirmed")}
    assert confirmed, "the protocol's SpO2/HR trend is confirmed as it arrives"
    assert verify_database(db).problems == []


def test_capture_for_a_session_not_in_the_file_is_refused_plainly(tmp_path: Path) -> None:
    db = tmp_path / "clinic.sqlite"
    make_session(db)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kapmonitor",
            "capture",
            "--db",
            str(db),
            "--session",
            "f" * 32,
            "--mllp",
            "127.0.0.1:0",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert done.returncode != 0
    assert "does not exist" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_capture_never_creates_a_database(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kapmonitor",
            "capture",
            "--db",
            str(tmp_path / "none.sqlite"),
            "--session",
            "f" * 32,
            "--mllp",
            "127.0.0.1:0",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert done.returncode != 0 and "There is no database" in done.stderr
    assert not (tmp_path / "none.sqlite").exists()


PASSWORD = "violet orchard lantern 42"
ADMIN = {"KAPMONITOR_USER": "admin", "KAPMONITOR_PASSWORD": PASSWORD}


def _cli(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "kapmonitor", *args],
        capture_output=True,
        text=True,
        env={**_env(), **env},
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return done.stdout


def _running_session(db: Path) -> str:
    """A session started (and left running) in the encrypted file, as the window would."""
    from kapmonitor.store import encrypted_store
    from kapmonitor.store.session_store import SessionStore

    clock = FakeClock(T0)
    opened = encrypted_store.unlock(db, "admin", PASSWORD, clock)
    store = SessionStore.open(db, clock, keys=opened.keys)
    sid = store.start_session(session_start(clock), "Dr A", protocol=protocol("clinic-ketamine"))
    store.close()
    return sid


def test_capture_unlocks_an_encrypted_database_like_every_command(tmp_path: Path) -> None:
    db = tmp_path / "clinic.sqlite"
    recovery = tmp_path / "recovery.txt"
    _cli(
        "init", "--db", str(db), "--admin", "admin", "--display-name", "Dr Admin",
        "--recovery-out", str(recovery), env={"KAPMONITOR_PASSWORD": PASSWORD},
    )  # fmt: skip
    _cli("demo", "--db", str(db), "--seed", "7", env=ADMIN)
    ended = _cli("sessions", "--db", str(db), env=ADMIN).splitlines()[1].split()[0]
    # The demo's session has ended: a monitor still sending to it is refused in words.
    refused = subprocess.run(
        [sys.executable, "-m", "kapmonitor", "capture", "--db", str(db), "--session", ended,
         "--mllp", "127.0.0.1:0", "--match", "bed:BED-1"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, env={**_env(), **ADMIN},
        timeout=60,
    )  # fmt: skip
    assert refused.returncode == 2 and "This session has ended" in refused.stderr, refused.stderr
    sid = _running_session(db)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kapmonitor", "capture", "--db", str(db), "--session", sid,
         "--mllp", "127.0.0.1:0", "--match", "bed:BED-1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**_env(), **ADMIN},
    )  # fmt: skip
    assert proc.stdout is not None
    first = proc.stdout.readline().strip()
    try:
        assert first.startswith("listening "), first
        simulate(first.split()[1], 5)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert PASSWORD not in out + err
    assert sum(line.startswith("pending ") for line in out.splitlines()) >= 5
    assert "OK: audit chain intact" in _cli("verify", "--db", str(db), env=ADMIN)
    assert b"SQLite format 3" not in db.read_bytes()[:16]
