"""A real fsync failure (EIO) under SQLite, and what the app says about the entry.

SQLite calls ``fsync``/``fdatasync`` from the C library, so a small shared library preloaded into
a child process (``LD_PRELOAD``) makes them fail with EIO on the WAL while a flag file exists:
SQLite's own error path runs, as on a failing disk. The reported bug, reproduced here first: the
app said "not saved", yet when the app was killed and the file reopened the entry was there
(SQLite's WAL recovery found the frames the failed commit had written); saving it again made a
duplicate. Each case kills or closes the child, then counts the rows from a fresh process.

What this does not reproduce: a disk that loses the written pages too (then nothing comes back,
which "not saved" already says), and Windows/macOS, where the shim does not apply.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from kapmonitor.store.database import connect_readonly
from kapmonitor.store.key_slots import DatabaseKeys

ROOT = Path(__file__).resolve().parents[2]

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static int should_fail(int fd) {
    const char *flag = getenv("FAILSYNC_FLAG");
    if (!flag || access(flag, F_OK) != 0) return 0;
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0) return 0;
    target[n] = 0;
    size_t len = strlen(target);
    if (len < 4 || strcmp(target + len - 4, "-wal") != 0) return 0;
    if (!getenv("FAILSYNC_PERSIST")) unlink(flag);
    return 1;
}
int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = dlsym(RTLD_NEXT, "fsync");
    if (should_fail(fd)) { errno = EIO; return -1; }
    return real(fd);
}
int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = dlsym(RTLD_NEXT, "fdatasync");
    if (should_fail(fd)) { errno = EIO; return -1; }
    return real(fd);
}
"""

CHILD = r"""
import os, sys
from pathlib import Path
from kapmonitor.domain.records import VitalSigns
from kapmonitor.store import commit_check
from kapmonitor.store.database import StoreError
from kapmonitor.store.session_store import SessionStore
from tests.factories import session_start

db, flag, ending = Path(sys.argv[1]), Path(os.environ["FAILSYNC_FLAG"]), sys.argv[2]
if os.environ.get("WITHOUT_FIX"):
    commit_check.void_unfinished_commit = lambda db: True  # the app as it was
keys = None
if os.environ.get("ENCRYPTED"):
    from kapmonitor.store import encryption
    from kapmonitor.store.key_slots import DatabaseKeys

    keys = DatabaseKeys(master=bytes(range(32)))
store = SessionStore.open(db, keys=keys)
if keys is not None:
    encryption.remember(db, keys)
session_id = store.start_session(session_start(store.clock), "Dr A")
def vitals():
    return VitalSigns(observed_at=store.clock.now(), hr=88, sbp=131, dbp=84, spo2=96, rr=15)
store.add(session_id, vitals(), "Dr A")
entry = vitals()
flag.write_text("fail the next fsync of the WAL")
try:
    store.add(session_id, entry, "Dr A")
    print("SAVED")
except StoreError as exc:
    print("NOT SAVED:", exc)
sys.stdout.flush()
if ending == "retry":
    flag.unlink(missing_ok=True)
    store.add(session_id, entry, "Dr A")
    print("RETRY SAVED")
    sys.stdout.flush()
if ending in ("kill", "retry"):
    os._exit(9)  # the app killed: no clean close, no checkpoint
store.close()
"""


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The preload library, built here: these tests prove nothing without it, so they fail
    (not skip) when no C compiler is found."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None or not sys.platform.startswith("linux"):
        pytest.fail("a C compiler on Linux is needed to build the fsync-failure shim")
    folder = tmp_path_factory.mktemp("shim")
    (folder / "failsync.c").write_text(SHIM)
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-o", "failsync.so", "failsync.c", "-ldl"],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    return folder / "failsync.so"


def _run(shim: Path, db: Path, ending: str, **env: str) -> str:
    environ = {
        **os.environ,
        "LD_PRELOAD": str(shim),
        "FAILSYNC_FLAG": str(db.parent / "fail-now"),
        "PYTHONPATH": str(ROOT),
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(db), ending],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environ,
        timeout=120,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


def _vitals_rows(db: Path, keys: DatabaseKeys | None = None) -> int:
    raw = connect_readonly(db, keys) if keys else sqlite3.connect(db)  # a cold open: recovery
    try:
        return raw.execute("SELECT count(*) FROM vitals").fetchone()[0]
    finally:
        raw.close()


def test_the_reported_bug_without_the_fix(shim: Path, tmp_path: Path) -> None:
    """The premise: "not saved", then killed, and the entry is there on reopening."""
    db = tmp_path / "c.sqlite"
    out = _run(shim, db, "kill", WITHOUT_FIX="1")
    assert "NOT SAVED" in out
    assert _vitals_rows(db) == 2, "the failing fsync did not leave a recoverable commit"


def test_not_saved_stays_true_when_the_app_is_killed(shim: Path, tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    out = _run(shim, db, "kill")
    assert "NOT SAVED" in out and "full or failing" in out
    assert _vitals_rows(db) == 1  # the first reading only: the failed one did not come back


def test_not_saved_stays_true_after_a_clean_close(shim: Path, tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    assert "NOT SAVED" in _run(shim, db, "close")
    assert _vitals_rows(db) == 1


def test_saving_again_after_not_saved_makes_one_entry(shim: Path, tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    out = _run(shim, db, "retry")
    assert "NOT SAVED" in out and "RETRY SAVED" in out
    assert _vitals_rows(db) == 2  # the first reading and the retried one, no duplicate


def test_a_disk_that_keeps_failing_gets_an_honest_answer(shim: Path, tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    out = _run(shim, db, "kill", FAILSYNC_PERSIST="1")
    assert "cannot tell whether this entry was stored" in out
    (tmp_path / "fail-now").unlink(missing_ok=True)
    assert _vitals_rows(db) == 1


@pytest.mark.parametrize("fixed", [False, True])
def test_the_same_on_an_encrypted_database(shim: Path, tmp_path: Path, fixed: bool) -> None:
    """SQLCipher writes its WAL the same way: the bug, then the fix, on an encrypted file."""
    db = tmp_path / "c.sqlite"
    env = {"ENCRYPTED": "1"} | ({} if fixed else {"WITHOUT_FIX": "1"})
    assert "NOT SAVED" in _run(shim, db, "kill", **env)
    assert _vitals_rows(db, DatabaseKeys(master=bytes(range(32)))) == (1 if fixed else 2)
