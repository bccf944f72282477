"""A second copy of the app on the same database file is refused plainly; a copy that crashed
does not block the next start."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from pytestqt.qtbot import QtBot

from kapmonitor.ui.app import instance_lock

HOLD = """
import sys, time
from PySide6.QtCore import QLockFile
lock = QLockFile(sys.argv[1] + ".lock")
lock.setStaleLockTime(0)
assert lock.tryLock(1000)
print("locked", flush=True)
time.sleep(60)
"""


def test_a_second_instance_is_refused_and_a_crashed_one_does_not_block(
    qtbot: QtBot, tmp_path: Path
) -> None:
    db = tmp_path / "clinic.sqlite"
    other = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "locked"
        lock, refusal = instance_lock(db)
        assert lock is None
        assert f"already open on {db} (process {other.pid}" in refusal
    finally:
        other.send_signal(signal.SIGKILL)  # it crashes, leaving its lock file behind
        other.wait()
    assert Path(f"{db}.lock").exists()
    time.sleep(0.1)
    lock, refusal = instance_lock(db)
    assert lock is not None and refusal == ""
    again, refusal = instance_lock(db)  # and this window now holds it
    assert again is None and "already open" in refusal
    lock.unlock()
